/* ref_model — the double-precision reference forward (see ref_model.h). */
#include "ref_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const double *base_tensor(const ref_model *r, const char *fmt, int layer)
{
    char name[64];
    snprintf(name, sizeof name, fmt, layer);
    const llm_param_tensor *t = llm_model_tensor(r->m, name);
    if (!t && !strcmp(name, "cls")) t = llm_model_tensor(r->m, "tok_emb"); /* tied */
    return r->w + t->offset;
}

/* the adapter tensor by name, or NULL */
static const double *ad_tensor(const ref_model *r, const char *name)
{
    for (int i = 0; r->ad && i < r->ad->n_tensors; i++)
        if (!strcmp(r->ad->tensors[i].name, name)) return r->aw + r->ad->tensors[i].offset;
    return NULL;
}

static void rms(const double *x, const double *g, double *y, int d, double eps)
{
    double ss = 0;
    for (int j = 0; j < d; j++) ss += x[j] * x[j];
    double s = 1 / sqrt(ss / d + eps);
    for (int j = 0; j < d; j++) y[j] = x[j] * s * g[j];
}

/* y = W x for the base tensor named name, plus alpha/rank * B (A x) when the
 * adapter has name.lora_a and name.lora_b */
static void linear(const ref_model *r, const char *name, const double *x, double *y, int out, int in)
{
    const double *w = base_tensor(r, name, 0);
    for (int o = 0; o < out; o++) {
        double s = 0;
        for (int i = 0; i < in; i++) s += w[(size_t)o * in + i] * x[i];
        y[o] = s;
    }
    char an[80], bn[80];
    snprintf(an, sizeof an, "%s.lora_a", name);
    snprintf(bn, sizeof bn, "%s.lora_b", name);
    const double *A = ad_tensor(r, an), *B = ad_tensor(r, bn);
    if (!A) return;
    int R = r->ad->cfg.rank;
    double scale = (double)r->ad->cfg.alpha / R, *u = malloc(sizeof(double) * R);
    for (int k = 0; k < R; k++) {
        u[k] = 0;
        for (int i = 0; i < in; i++) u[k] += A[(size_t)k * in + i] * x[i];
    }
    for (int o = 0; o < out; o++)
        for (int k = 0; k < R; k++) y[o] += scale * B[(size_t)o * R + k] * u[k];
    free(u);
}

/* the site's linear in layer l */
static void layer_linear(const ref_model *r, const char *site, int l, const double *x, double *y, int out, int in)
{
    char name[64];
    snprintf(name, sizeof name, "layers.%d.%s", l, site);
    linear(r, name, x, y, out, in);
}

static void rotate(double *v, int heads, int E, int pos, double theta)
{
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < E / 2; i++) {
            double a = pos * pow(theta, -2.0 * i / E), *p = v + h * E + 2 * i;
            double x0 = p[0], x1 = p[1];
            p[0] = x0 * cos(a) - x1 * sin(a);
            p[1] = x0 * sin(a) + x1 * cos(a);
        }
}

double ref_model_loss(const ref_model *r, const int32_t *in, const int32_t *tg, int B, int T)
{
    const llm_config *c = &r->m->cfg;
    int D = c->dim, H = c->n_heads, K = c->n_kv_heads, E = D / H, F = c->hidden, V = c->vocab, KE = K * E;
    int N = B * T;
    double *x = calloc((size_t)N * D, sizeof *x), *xn = malloc(sizeof(double) * D);
    double *q = malloc(sizeof(double) * (size_t)N * D), *k = malloc(sizeof(double) * (size_t)N * KE),
           *v = malloc(sizeof(double) * (size_t)N * KE), *att = malloc(sizeof(double) * D),
           *tmp = malloc(sizeof(double) * (F > V ? F : V)), *h1 = malloc(sizeof(double) * F),
           *h3 = malloc(sizeof(double) * F), *p = malloc(sizeof(double) * T);
    const double *virt = ad_tensor(r, "virtual");
    for (int n = 0; n < N; n++)
        memcpy(x + n * D, in[n] < V ? base_tensor(r, "tok_emb", 0) + (size_t)in[n] * D : virt + (size_t)(in[n] - V) * D,
               sizeof(double) * D);
    for (int l = 0; l < c->n_layers; l++) {
        for (int n = 0; n < N; n++) {
            rms(x + n * D, base_tensor(r, "layers.%d.attn.norm", l), xn, D, c->norm_eps);
            layer_linear(r, "attn.wq", l, xn, q + n * D, D, D);
            layer_linear(r, "attn.wk", l, xn, k + n * KE, KE, D);
            layer_linear(r, "attn.wv", l, xn, v + n * KE, KE, D);
            rotate(q + n * D, H, E, n % T, c->rope_theta);
            rotate(k + n * KE, K, E, n % T, c->rope_theta);
        }
        double *xnew = malloc(sizeof(double) * (size_t)N * D);
        for (int n = 0; n < N; n++) {
            int b = n / T, t = n % T;
            for (int h = 0; h < H; h++) {
                int kh = h / (H / K);
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    if (c->window && j <= t - c->window) {
                        p[j] = -INFINITY;
                        continue;
                    }
                    double s = 0;
                    for (int e = 0; e < E; e++) s += q[n * D + h * E + e] * k[(b * T + j) * KE + kh * E + e];
                    p[j] = s / sqrt(E);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j <= t; j++) sum += p[j] = exp(p[j] - mx);
                for (int e = 0; e < E; e++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++) o += p[j] / sum * v[(b * T + j) * KE + kh * E + e];
                    att[h * E + e] = o;
                }
            }
            layer_linear(r, "attn.wo", l, att, tmp, D, D);
            for (int j = 0; j < D; j++) xnew[n * D + j] = x[n * D + j] + tmp[j];
        }
        memcpy(x, xnew, sizeof(double) * (size_t)N * D);
        free(xnew);
        for (int n = 0; n < N; n++) {
            rms(x + n * D, base_tensor(r, "layers.%d.mlp.norm", l), xn, D, c->norm_eps);
            layer_linear(r, "mlp.w1", l, xn, h1, F, D);
            layer_linear(r, "mlp.w3", l, xn, h3, F, D);
            for (int j = 0; j < F; j++) h1[j] = h1[j] / (1 + exp(-h1[j])) * h3[j];
            layer_linear(r, "mlp.w2", l, h1, tmp, D, F);
            for (int j = 0; j < D; j++) x[n * D + j] += tmp[j];
        }
    }
    double loss = 0;
    int counted = 0;
    for (int n = 0; n < N; n++) {
        if (tg[n] < 0) continue;
        rms(x + n * D, base_tensor(r, "norm", 0), xn, D, c->norm_eps);
        linear(r, "cls", xn, tmp, V, D);
        double mx = tmp[0], sum = 0;
        for (int j = 1; j < V; j++) mx = tmp[j] > mx ? tmp[j] : mx;
        for (int j = 0; j < V; j++) sum += exp(tmp[j] - mx);
        loss += log(sum) + mx - tmp[tg[n]];
        counted++;
    }
    free(x), free(xn), free(q), free(k), free(v), free(att), free(tmp), free(h1), free(h3), free(p);
    return loss / counted;
}

/* Central differences in double: truncation ~eps^2 * f''' ~ 1e-10, rounding
 * ~1e-16 / eps ~ 1e-11; the float32 backward carries ~1e-6 relative error
 * per value, so 1e-4 of the tensor's largest gradient plus 1e-3 of the value
 * itself bounds an honest result. */
static void check_gradient(const ref_model *r, double *params, const llm_param_tensor *tensors, int n_tensors,
                           const float *grad, const int32_t *in, const int32_t *tg, int B, int T)
{
    const double eps = 1e-5;
    for (int t = 0; t < n_tensors; t++) {
        const llm_param_tensor *pt = &tensors[t];
        double gmax = 0, worst = 0;
        int64_t worst_i = -1;
        double *fd = malloc(sizeof(double) * (size_t)pt->count);
        for (int64_t i = 0; i < pt->count; i++) {
            double *wi = &params[pt->offset + i], keep = *wi;
            *wi = keep + eps;
            double lp = ref_model_loss(r, in, tg, B, T);
            *wi = keep - eps;
            double lm = ref_model_loss(r, in, tg, B, T);
            *wi = keep;
            fd[i] = (lp - lm) / (2 * eps);
            if (fabs(fd[i]) > gmax) gmax = fabs(fd[i]);
        }
        for (int64_t i = 0; i < pt->count; i++) {
            double diff = fabs(grad[pt->offset + i] - fd[i]) - 1e-3 * fabs(fd[i]);
            if (diff > worst) worst = diff, worst_i = i;
        }
        CHECK_MSG(gmax > 1e-4, "%s: gradient is all but zero (%g): test too weak", pt->name, gmax);
        CHECK_MSG(worst <= 1e-4 * gmax, "%s[%lld]: analytic %.8g, finite difference %.8g (max |g| %g)",
                  pt->name, (long long)worst_i, worst_i >= 0 ? grad[pt->offset + worst_i] : 0.0,
                  worst_i >= 0 ? fd[worst_i] : 0.0, gmax);
        free(fd);
    }
}

void ref_model_check_base_gradient(const ref_model *r, const float *grad, const int32_t *in,
                                   const int32_t *tg, int B, int T)
{
    check_gradient(r, r->w, r->m->tensors, r->m->n_tensors, grad, in, tg, B, T);
}

void ref_model_check_adapter_gradient(const ref_model *r, const float *grad, const int32_t *in,
                                      const int32_t *tg, int B, int T)
{
    check_gradient(r, r->aw, r->ad->tensors, r->ad->n_tensors, grad, in, tg, B, T);
}

double ref_softmax_gap(double so_far, const float *logits, const float *probs, int n)
{
    double mx = logits[0], sum = 0, worst = so_far;
    for (int j = 1; j < n; j++) mx = logits[j] > mx ? logits[j] : mx;
    for (int j = 0; j < n; j++) sum += exp(logits[j] - mx);
    for (int j = 0; j < n; j++) {
        double d = fabs(exp(logits[j] - mx) / sum - probs[j]);
        if (d > worst || isnan(d)) worst = d;
    }
    return worst;
}
