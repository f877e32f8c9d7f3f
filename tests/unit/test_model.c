/* Unit tests for lib/model and lib/grad: the whole model's loss against an
 * independent forward pass written here in double precision, and every
 * gradient of every parameter tensor against central finite differences of
 * that double-precision loss; the check of token ids against the rule
 * written out here; greedy decoding on logits that are NaN, and out of
 * memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "model.h"
#include "nomem.h"

/* ---- the reference: a plain, double-precision Llama forward ---- */

typedef struct ref {
    const llm_model *m; /* for the layout (names and offsets) only */
    const double *w;    /* parameters, same layout as the arena */
} ref;

static const double *tensor(const ref *r, const char *fmt, int layer)
{
    char name[64];
    snprintf(name, sizeof name, fmt, layer);
    const llm_param_tensor *t = llm_model_tensor(r->m, name);
    if (!t && !strcmp(name, "cls")) t = llm_model_tensor(r->m, "tok_emb"); /* tied */
    return r->w + t->offset;
}

static void rms(const double *x, const double *g, double *y, int d, double eps)
{
    double ss = 0;
    for (int j = 0; j < d; j++) ss += x[j] * x[j];
    double s = 1 / sqrt(ss / d + eps);
    for (int j = 0; j < d; j++) y[j] = x[j] * s * g[j];
}

/* y[out] = W[out, in] x[in] */
static void linear(const double *w, const double *x, double *y, int out, int in)
{
    for (int o = 0; o < out; o++) {
        double s = 0;
        for (int i = 0; i < in; i++) s += w[(size_t)o * in + i] * x[i];
        y[o] = s;
    }
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

static double ref_loss(const ref *r, const int32_t *in, const int32_t *tg, int B, int T)
{
    const llm_config *c = &r->m->cfg;
    int D = c->dim, H = c->n_heads, K = c->n_kv_heads, E = D / H, F = c->hidden, V = c->vocab;
    int N = B * T;
    double *x = calloc((size_t)N * D, sizeof *x), *xn = malloc(sizeof(double) * D);
    double *q = malloc(sizeof(double) * (size_t)N * D), *k = malloc(sizeof(double) * (size_t)N * K * E),
           *v = malloc(sizeof(double) * (size_t)N * K * E), *att = malloc(sizeof(double) * D),
           *tmp = malloc(sizeof(double) * (F > V ? F : V)), *h1 = malloc(sizeof(double) * F),
           *h3 = malloc(sizeof(double) * F), *p = malloc(sizeof(double) * T);
    for (int n = 0; n < N; n++) memcpy(x + n * D, tensor(r, "tok_emb", 0) + (size_t)in[n] * D, sizeof(double) * D);
    for (int l = 0; l < c->n_layers; l++) {
        for (int n = 0; n < N; n++) {
            rms(x + n * D, tensor(r, "layers.%d.attn.norm", l), xn, D, c->norm_eps);
            linear(tensor(r, "layers.%d.attn.wq", l), xn, q + n * D, D, D);
            linear(tensor(r, "layers.%d.attn.wk", l), xn, k + n * K * E, K * E, D);
            linear(tensor(r, "layers.%d.attn.wv", l), xn, v + n * K * E, K * E, D);
            rotate(q + n * D, H, E, n % T, c->rope_theta);
            rotate(k + n * K * E, K, E, n % T, c->rope_theta);
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
                    for (int e = 0; e < E; e++) s += q[n * D + h * E + e] * k[(b * T + j) * K * E + kh * E + e];
                    p[j] = s / sqrt(E);
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j <= t; j++) sum += p[j] = exp(p[j] - mx);
                for (int e = 0; e < E; e++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++) o += p[j] / sum * v[(b * T + j) * K * E + kh * E + e];
                    att[h * E + e] = o;
                }
            }
            linear(tensor(r, "layers.%d.attn.wo", l), att, tmp, D, D);
            for (int j = 0; j < D; j++) xnew[n * D + j] = x[n * D + j] + tmp[j];
        }
        memcpy(x, xnew, sizeof(double) * (size_t)N * D);
        free(xnew);
        for (int n = 0; n < N; n++) {
            rms(x + n * D, tensor(r, "layers.%d.mlp.norm", l), xn, D, c->norm_eps);
            linear(tensor(r, "layers.%d.mlp.w1", l), xn, h1, F, D);
            linear(tensor(r, "layers.%d.mlp.w3", l), xn, h3, F, D);
            for (int j = 0; j < F; j++) h1[j] = h1[j] / (1 + exp(-h1[j])) * h3[j];
            linear(tensor(r, "layers.%d.mlp.w2", l), h1, tmp, D, F);
            for (int j = 0; j < D; j++) x[n * D + j] += tmp[j];
        }
    }
    double loss = 0;
    int counted = 0;
    for (int n = 0; n < N; n++) {
        if (tg[n] < 0) continue;
        rms(x + n * D, tensor(r, "norm", 0), xn, D, c->norm_eps);
        linear(tensor(r, "cls", 0), xn, tmp, V, D);
        double mx = tmp[0], sum = 0;
        for (int j = 1; j < V; j++) mx = tmp[j] > mx ? tmp[j] : mx;
        for (int j = 0; j < V; j++) sum += exp(tmp[j] - mx);
        loss += log(sum) + mx - tmp[tg[n]];
        counted++;
    }
    free(x), free(xn), free(q), free(k), free(v), free(att), free(tmp), free(h1), free(h3), free(p);
    return loss / counted;
}

/* ---- the tests ---- */

typedef struct setup {
    llm_model m;
    int B, T;
    int32_t in[64], tg[64];
} setup;

static void make(setup *s, int tie, int window, int kv_heads)
{
    llm_error err = {0};
    llm_config c = {.vocab = 11, .dim = 16, .n_layers = 2, .n_heads = 4, .n_kv_heads = kv_heads,
                    .hidden = 24, .seq_len = 12, .tie = tie, .window = window, .norm_eps = 1e-5f,
                    .rope_theta = 10000.0f};
    CHECK_OK(llm_model_init(&s->m, &c, 5, &err), err);
    unsigned long long rng = 77 + (unsigned)tie;
    /* weights far from zero, so every nonlinearity is exercised */
    for (int64_t i = 0; i < s->m.n_params; i++) s->m.arena[i] = (float)(0.4 * check_normal(&rng));
    for (int i = 0; i < s->m.n_tensors; i++)
        if (s->m.tensors[i].shape.ndim == 1)
            for (int64_t j = 0; j < s->m.tensors[i].count; j++)
                s->m.arena[s->m.tensors[i].offset + j] += 1.0f;
    s->B = 2;
    s->T = 9;
    for (int n = 0; n < s->B * s->T; n++) {
        s->in[n] = (int32_t)(check_uniform(&rng) * 11);
        s->tg[n] = n % 7 == 3 ? -1 : (int32_t)(check_uniform(&rng) * 11); /* some ignored */
    }
}

static void check_model(int tie, int window, int kv_heads)
{
    llm_error err = {0};
    setup s;
    make(&s, tie, window, kv_heads);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &s.m.cfg, s.B, s.T, &err), err);
    float loss = llm_model_forward(&s.m, &a, s.in, s.tg);
    float *grad = calloc((size_t)s.m.n_params, sizeof *grad);
    llm_model_backward(&s.m, &a, grad);

    double *w = malloc(sizeof(double) * (size_t)s.m.n_params);
    for (int64_t i = 0; i < s.m.n_params; i++) w[i] = s.m.arena[i];
    ref r = {&s.m, w};
    double ref_l = ref_loss(&r, s.in, s.tg, s.B, s.T);
    /* float32 forward vs double: ~1e-6 relative rounding over a few hundred
     * operations per value */
    CHECK_NEAR(loss, ref_l, 2e-5 * fabs(ref_l));

    /* central differences in double: truncation ~eps^2 * f''' ~ 1e-10,
     * rounding ~1e-16 / eps ~ 1e-11; the float32 backward carries ~1e-6
     * relative error per value, so 1e-4 of the tensor's largest gradient
     * plus 1e-3 of the value itself bounds an honest result */
    const double eps = 1e-5;
    for (int t = 0; t < s.m.n_tensors; t++) {
        const llm_param_tensor *pt = &s.m.tensors[t];
        double gmax = 0, worst = 0;
        int64_t worst_i = -1;
        double *fd = malloc(sizeof(double) * (size_t)pt->count);
        for (int64_t i = 0; i < pt->count; i++) {
            double *wi = &w[pt->offset + i], keep = *wi;
            *wi = keep + eps;
            double lp = ref_loss(&r, s.in, s.tg, s.B, s.T);
            *wi = keep - eps;
            double lm = ref_loss(&r, s.in, s.tg, s.B, s.T);
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
    free(w);
    free(grad);
    llm_acts_free(&a);
    llm_model_free(&s.m);
}

static void test_gradients_untied_full_gqa(void) { check_model(0, 0, 2); }
static void test_gradients_tied_window(void) { check_model(1, 4, 4); }
static void test_gradients_mqa(void) { check_model(0, 0, 1); }

static void test_config_errors(void)
{
    llm_error err = {0};
    llm_config good = {.vocab = 258, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                       .hidden = 128, .seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_config_check(&good, &err), err);
    llm_config c = good;
    c.n_heads = 5;
    CHECK(llm_config_check(&c, &err) < 0 && strstr(err.msg, "not divisible by heads"));
    c = good;
    c.dim = 36, c.n_heads = 4, c.n_kv_heads = 4; /* head size 9 */
    CHECK(llm_config_check(&c, &err) < 0 && strstr(err.msg, "odd"));
    c = good;
    c.n_kv_heads = 3;
    CHECK(llm_config_check(&c, &err) < 0 && strstr(err.msg, "kv-heads"));
    c = good;
    c.n_layers = 0;
    CHECK(llm_config_check(&c, &err) < 0 && strstr(err.msg, "layers 0"));
}

/* A pass counts its B*T tokens in an int: more are refused before any
 * allocation; the RoPE table the acts carry covers exactly their T positions. */
static void test_acts_limits(void)
{
    llm_error err = {0};
    llm_config c = {.vocab = 258, .dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2,
                    .hidden = 8, .seq_len = 1 << 20, .norm_eps = 1e-5f, .rope_theta = 10000};
    llm_acts a;
    CHECK(llm_acts_init(&a, &c, 1 << 16, 1 << 15, &err) == LLM_ERR_LIMIT);
    CHECK_MSG(strstr(err.msg, "batch 65536 x seq 32768 is 2147483648 tokens in one pass, more than 2147483647"),
              "%s", err.msg);
    CHECK(!a.x && !a.inputs && !a.rope.cos);
    CHECK_OK(llm_acts_init(&a, &c, 2, 24, &err), err);
    CHECK(a.rope.n_pos == 24 && a.rope.max_pos == 24 && a.rope.head_dim == 4);
    llm_acts_free(&a);
}

static void test_layout(void)
{
    llm_error err = {0};
    llm_model m;
    llm_config c = {.vocab = 258, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                    .hidden = 96, .seq_len = 32, .tie = 0, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_model_init(&m, &c, 1, &err), err);
    int64_t per_layer = 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 64 + 3 * 96 * 64;
    CHECK(m.n_params == 2 * 258 * 64 + 2 * per_layer + 64);
    CHECK(m.n_tensors == 1 + 9 * 2 + 2);
    const llm_param_tensor *wk = llm_model_tensor(&m, "layers.1.attn.wk");
    CHECK(wk && wk->shape.dim[0] == 32 && wk->shape.dim[1] == 64);
    CHECK(m.p.layers[1].wk == m.arena + wk->offset);
    CHECK(m.spans[0].decay == 1 && m.spans[1].decay == 0); /* tok_emb 2-D, norm 1-D */
    llm_model_free(&m);
}

/* llm_model_check_ids on every stretch of a list of ids, for every set of
 * allowances, without an adapter, with a LoRA-only one (no virtual tokens)
 * and with a prompt-tuning one of 2, against the rule itself: 0..V-1; the
 * virtual ids V..V+P-1 only when allowed; negatives only as unscored
 * targets.  The first id that breaks it is named by its place from 1. */
static void test_check_ids(void)
{
    llm_error err = {0};
    llm_config c = {.vocab = 10, .dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2, .hidden = 8,
                    .seq_len = 8, .tie = 1, .norm_eps = 1e-5f, .rope_theta = 10000};
    llm_model m;
    CHECK_OK(llm_model_init(&m, &c, 1, &err), err);
    const int32_t ids[] = {0, 9, 3, 10, 11, 12, -1, -7, 257, INT32_MAX, INT32_MIN, 5};
    const int n = (int)(sizeof ids / sizeof ids[0]);
    const llm_adapter_config kinds[3] = {{0}, {.rank = 1, .alpha = 1, .targets = LLM_LORA_ALL}, {.n_virtual = 2}};
    for (int k = 0; k < 3; k++) {
        llm_adapter ad;
        if (k) {
            CHECK_OK(llm_adapter_init(&ad, &m, &kinds[k], 2, &err), err);
            CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
        }
        int P = kinds[k].n_virtual;
        for (unsigned allow = 0; allow < 4; allow++)
            for (int from = 0; from < n; from++)
                for (int len = 0; from + len <= n; len++) {
                    const int32_t *x = ids + from;
                    int want = -1; /* the first id the rule refuses */
                    for (int i = 0; i < len && want < 0; i++) {
                        int ok = (x[i] >= 0 && x[i] < 10) ||
                                 ((allow & LLM_IDS_VIRTUAL) && x[i] >= 10 && x[i] < 10 + P) ||
                                 ((allow & LLM_IDS_UNSCORED) && x[i] < 0);
                        if (!ok) want = i;
                    }
                    int rc = llm_model_check_ids(&m, x, len, allow, &err);
                    if (want < 0) {
                        CHECK_MSG(rc == 0, "adapter %d allow %u ids %d+%d: %s", k, allow, from, len, err.msg);
                        continue;
                    }
                    char expect[96];
                    snprintf(expect, sizeof expect, "token %d of %d: id %d outside the vocabulary (0..9", want + 1,
                             len, (int)x[want]);
                    CHECK_MSG(rc == LLM_ERR_ARG && !strncmp(err.msg, expect, strlen(expect)),
                              "adapter %d allow %u ids %d+%d: rc %d '%s', want '%s...'", k, allow, from, len, rc,
                              err.msg, expect);
                }
        if (k) {
            llm_adapter_detach(&m);
            llm_adapter_free(&ad);
        }
    }
    llm_model_free(&m);
}

/* Greedy decoding on logits that are NaN (one NaN logit makes the whole
 * softmax row NaN): every id it gives is still one of the vocabulary.  No
 * memory for its window: LLM_ERR_NOMEM. */
static void test_greedy_nan(void)
{
    llm_error err = {0};
    llm_config c = {.vocab = 10, .dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2, .hidden = 8,
                    .seq_len = 8, .tie = 0, .norm_eps = 1e-5f, .rope_theta = 10000};
    llm_model m;
    CHECK_OK(llm_model_init(&m, &c, 1, &err), err);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &m.cfg, 1, 8, &err), err);
    for (int last = 7; last <= 9; last += 2) {
        for (int v = 7; v <= last; v++) m.p.cls[v * 8] = NAN; /* logit 7, then 7..9, NaN */
        const int32_t prompt[2] = {4, 5};
        int32_t out[4] = {-2, -2, -2, -2};
        int made = llm_model_greedy(&m, &a, prompt, 2, 4, out, &err);
        CHECK(made >= 1 && made <= 4);
        for (int i = 0; i < made; i++) CHECK_MSG(out[i] >= 0 && out[i] < 10, "token %d is %d", i, (int)out[i]);
    }
    nomem_fail(1); /* its window: an error, not 0 tokens made */
    int made = llm_model_greedy(&m, &a, (const int32_t[]){4, 5}, 2, 4, (int32_t[4]){0}, &err);
    nomem_fail(0);
    CHECK_MSG(made == LLM_ERR_NOMEM && strstr(err.msg, "out of memory"), "%d %s", made, err.msg);
    llm_acts_free(&a);
    llm_model_free(&m);
}

int main(void)
{
    RUN(test_check_ids);
    RUN(test_greedy_nan);
    RUN(test_config_errors);
    RUN(test_layout);
    RUN(test_acts_limits);
    RUN(test_gradients_untied_full_gqa);
    RUN(test_gradients_tied_window);
    RUN(test_gradients_mqa);
    return check_done();
}
