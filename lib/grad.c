/* grad — the backward pass of the Llama decoder in model.c, written by hand:
 * each layer's forward step undone in reverse, weight gradients accumulated
 * through cblas_sgemm, normalised inputs and the gated MLP activation
 * recomputed from what the forward pass kept.  Input gradients through a
 * quantized linear dequantize it a block of rows at a time (model.c). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "adapter.h"
#include "attn.h"
#include "lora.h"
#include "model.h"
#include "model_internal.h"

/* dW [out, in] += dy^T [out, n] . x [n, in] */
static void weight_grad(const float *dy, const float *x, float *dw, int n, int out, int in)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
}

/* RMSNorm y = g * x * r, r = 1/sqrt(mean(x^2) + eps), given dy:
 *   dg_j += sum_i dy_ij x_ij r_i
 *   dx_ij += r_i g_j dy_ij - r_i^3 x_ij / d * sum_k g_k dy_ik x_ik   */
static void rmsnorm_backward(const float *x, const float *g, const float *inv_rms, const float *dy,
                             float *dx, float *dg, int n, int d)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d, *dyi = dy + (size_t)i * d;
        float *dxi = dx + (size_t)i * d, r = inv_rms[i], dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < d; j++) dot += g[j] * dyi[j] * xi[j];
        float c = r * r * r * dot / (float)d;
#pragma omp simd
        for (int j = 0; j < d; j++) dxi[j] += r * g[j] * dyi[j] - c * xi[j];
    }
    if (!dg) return; /* a frozen gain */
    for (int i = 0; i < n; i++) { /* rows in order: the sum does not depend on threads */
        const float *xi = x + (size_t)i * d, *dyi = dy + (size_t)i * d;
        float r = inv_rms[i];
#pragma omp simd
        for (int j = 0; j < d; j++) dg[j] += dyi[j] * xi[j] * r;
    }
}

static void attention_backward(const llm_model *m, const llm_acts *a, int l, const float *datt,
                               float *dq, float *dk, float *dv)
{
    const llm_config *c = &m->cfg;
    int B = a->B, T = a->T, N = B * T, H = c->n_heads, K = c->n_kv_heads, E = c->dim / H,
        HE = H * E, KE = K * E, G = H / K;
    const float *q = a->q + (size_t)l * N * HE, *k = a->k + (size_t)l * N * KE,
                *v = a->v + (size_t)l * N * KE, *att = a->att + (size_t)l * N * HE,
                *lse = a->lse + (size_t)l * N * H;
    llm_attn_shape s = {.n_q = T, .n_kv = T, .q_pos0 = 0, .head_dim = E, .window = c->window,
                        .scale = 1.0f / sqrtf((float)E)};
    memset(dk, 0, (size_t)N * KE * sizeof *dk);
    memset(dv, 0, (size_t)N * KE * sizeof *dv);
    /* one task per (sequence, kv head): the G query heads sharing it add
     * into its dk and dv in turn, so no two threads write the same rows */
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < K; kh++) {
            size_t row = (size_t)b * T, kv = row * KE + (size_t)kh * E;
            for (int h = kh * G; h < (kh + 1) * G; h++) {
                size_t qo = row * HE + (size_t)h * E;
                llm_attn_backward(&s, q + qo, HE, k + kv, v + kv, KE, att + qo, datt + qo, HE,
                                  lse + ((size_t)b * H + h) * T, dq + qo, dk + kv, dv + kv);
            }
        }
}

/* The adapter's LoRA site `site` of layer l, or NULL when that linear has none. */
static const llm_lora_site *lora_of(const llm_model *m, int l, int site)
{
    const llm_adapter *ad = m->adapter;
    if (!ad || !ad->cfg.rank) return NULL;
    const llm_lora_site *s = &ad->sites[l * LLM_LORA_SITES + site];
    return s->a < 0 ? NULL : s;
}

/* The weight half of a LoRA site's backward step: a->lora_du, and the
 * factors' gradients when agrad is given.  Returns the site or NULL. */
static const llm_lora_site *lora_weights(const llm_model *m, llm_acts *a, float *agrad, int l, int site,
                                         const float *x, const float *dy)
{
    const llm_lora_site *s = lora_of(m, l, site);
    if (!s) return NULL;
    const llm_adapter *ad = m->adapter;
    size_t N = (size_t)a->B * (size_t)a->T, R = (size_t)ad->cfg.rank;
    llm_lora_backward_weights(ad->arena + s->b, (int)R, s->in, s->out, ad->scale, x,
                              a->lora_u + ((size_t)l * LLM_LORA_SITES + (size_t)site) * N * R, dy, (int)N,
                              a->lora_du, agrad ? agrad + s->a : NULL, agrad ? agrad + s->b : NULL);
    return s;
}

/* dx += du A for a site lora_weights returned (nothing for NULL). */
static void lora_input(const llm_model *m, const llm_acts *a, const llm_lora_site *s, float *dx)
{
    if (s)
        llm_lora_backward_input(m->adapter->arena + s->a, m->adapter->cfg.rank, s->in, a->lora_du,
                                a->B * a->T, dx);
}

void llm_model_backward(const llm_model *m, llm_acts *a, float *grad)
{
    llm_model_backward_adapter(m, a, grad, NULL);
}

/* dW += dy^T x, unless the base is frozen (no base gradient arena) */
#define WEIGHT_GRAD(dy, x, field, n, out, in) \
    do { if (grad) weight_grad(dy, x, field, n, out, in); } while (0)

void llm_model_backward_adapter(const llm_model *m, llm_acts *a, float *grad, float *agrad)
{
    const llm_config *c = &m->cfg;
    llm_layer_params glayers[c->n_layers];
    llm_params g = {.layers = glayers};
    if (grad) llm_params_map(m, grad, &g);
    else memset(glayers, 0, sizeof glayers);
    const llm_params *p = &m->p;
    int B = a->B, T = a->T, N = B * T, D = c->dim, H = c->n_heads, K = c->n_kv_heads, E = D / H,
        HE = H * E, KE = K * E, F = c->hidden, V = c->vocab;

    /* cross-entropy: dlogits = (softmax - onehot) / counted, in place of probs */
    int counted = 0;
    for (int i = 0; i < N; i++) counted += a->targets[i] >= 0;
    float inv = counted ? 1.0f / (float)counted : 0.0f;
    float *dlogits = a->probs;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        float *row = dlogits + (size_t)i * V;
        int t = a->targets[i];
        if (t < 0) {
            memset(row, 0, (size_t)V * sizeof *row);
            continue;
        }
        row[t] -= 1.0f;
        for (int j = 0; j < V; j++) row[j] *= inv;
    }
    float *dx = a->s_nd2, *buf = a->s_nd, *buf2 = a->s_nd3;
    WEIGHT_GRAD(dlogits, a->xf, g.cls, N, V, D);
    llm_linear_input_grad(m, a, 7 * c->n_layers, dlogits, p->cls, buf, N, V, D, 0);
    memset(dx, 0, (size_t)N * D * sizeof *dx);
    rmsnorm_backward(a->x + (size_t)c->n_layers * N * D, p->norm, a->rmsf, buf, dx, g.norm, N, D);
    /* the arena is tok_emb, layers 0..L-1, norm[, cls]: all from norm on is final
     * (a tied cls is tok_emb, which is final only at the end) */
    if (a->grad_ready && grad) a->grad_ready(a->grad_ready_ctx, g.norm - grad);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        const llm_layer_params *w = &p->layers[l];
        llm_layer_params *gw = &g.layers[l];
        const float *x = a->x + (size_t)l * N * D, *x_mid = a->x_mid + (size_t)l * N * D;
        const float *h1 = a->h1 + (size_t)l * N * F, *h3 = a->h3 + (size_t)l * N * F;
        const float *rms1 = a->rms1 + (size_t)l * N, *rms2 = a->rms2 + (size_t)l * N;
        float *hg = a->s_nf, *dh3 = a->s_nf2;

        /* MLP: x_next = x_mid + w2 . (silu(h1) * h3) */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)N * F; i++) hg[i] = llm_silu(h1[i]) * h3[i];
        WEIGHT_GRAD(dx, hg, gw->w2, N, D, F);
        const llm_lora_site *ls = lora_weights(m, a, agrad, l, LLM_LORA_W2, hg, dx);
        float *dh1 = hg; /* hg is no longer needed: its buffer takes d(hg), then dh1 */
        llm_linear_input_grad(m, a, 7 * l + 5, dx, w->w2, dh1, N, D, F, 0);
        lora_input(m, a, ls, dh1);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)N * F; i++) {
            float z = h1[i], sig = 1.0f / (1.0f + expf(-z)), dhg = dh1[i];
            dh3[i] = dhg * z * sig;
            dh1[i] = dhg * h3[i] * sig * (1.0f + z * (1.0f - sig));
        }
        float *xn = buf2;
        llm_rmsnorm_apply(x_mid, w->mlp_norm, rms2, xn, N, D);
        WEIGHT_GRAD(dh1, xn, gw->w1, N, F, D);
        WEIGHT_GRAD(dh3, xn, gw->w3, N, F, D);
        llm_linear_input_grad(m, a, 7 * l + 4, dh1, w->w1, buf, N, F, D, 0);
        llm_linear_input_grad(m, a, 7 * l + 6, dh3, w->w3, buf, N, F, D, 1);
        lora_input(m, a, lora_weights(m, a, agrad, l, LLM_LORA_W1, xn, dh1), buf);
        lora_input(m, a, lora_weights(m, a, agrad, l, LLM_LORA_W3, xn, dh3), buf);
        rmsnorm_backward(x_mid, w->mlp_norm, rms2, buf, dx, gw->mlp_norm, N, D);

        /* attention: x_mid = x + wo . attn(q, k, v) */
        const float *att = a->att + (size_t)l * N * HE;
        WEIGHT_GRAD(dx, att, gw->wo, N, D, HE);
        float *datt = buf, *dq = buf2, *dk = a->s_kv, *dv = a->s_kv2;
        llm_linear_input_grad(m, a, 7 * l + 3, dx, w->wo, datt, N, D, HE, 0);
        lora_input(m, a, lora_weights(m, a, agrad, l, LLM_LORA_WO, att, dx), datt);
        attention_backward(m, a, l, datt, dq, dk, dv);
        llm_rope_apply(&a->rope, dq, N, HE, H, T, 0, 1);
        llm_rope_apply(&a->rope, dk, N, KE, K, T, 0, 1);
        xn = buf; /* datt is spent: recompute the normalised input there */
        llm_rmsnorm_apply(x, w->attn_norm, rms1, xn, N, D);
        WEIGHT_GRAD(dq, xn, gw->wq, N, HE, D);
        WEIGHT_GRAD(dk, xn, gw->wk, N, KE, D);
        WEIGHT_GRAD(dv, xn, gw->wv, N, KE, D);
        /* the LoRA sites read xn, which dxn overwrites: their part of dxn
         * is gathered in a->lora_dx first */
        float *dxn = buf;
        const float *qkv_dy[3] = {dq, dk, dv};
        int lora_qkv = 0;
        for (int site = LLM_LORA_WQ; site <= LLM_LORA_WV; site++) {
            const llm_lora_site *ls = lora_weights(m, a, agrad, l, site, xn, qkv_dy[site - LLM_LORA_WQ]);
            if (ls && !lora_qkv++) memset(a->lora_dx, 0, (size_t)N * D * sizeof *a->lora_dx);
            lora_input(m, a, ls, a->lora_dx);
        }
        llm_linear_input_grad(m, a, 7 * l + 0, dq, w->wq, dxn, N, HE, D, 0);
        llm_linear_input_grad(m, a, 7 * l + 1, dk, w->wk, dxn, N, KE, D, 1);
        llm_linear_input_grad(m, a, 7 * l + 2, dv, w->wv, dxn, N, KE, D, 1);
        if (lora_qkv)
#pragma omp simd
            for (size_t i = 0; i < (size_t)N * D; i++) dxn[i] += a->lora_dx[i];
        rmsnorm_backward(x, w->attn_norm, rms1, dxn, dx, gw->attn_norm, N, D);
        if (a->grad_ready && grad) a->grad_ready(a->grad_ready_ctx, gw->attn_norm - grad);
    }
    /* the embedding lookup: rows in order, so repeated tokens add up alike
     * every run; virtual tokens (ids from V) belong to the adapter */
    for (int i = 0; i < N; i++) {
        int id = a->inputs[i];
        float *ge = id < V ? (grad ? g.tok_emb + (size_t)id * D : NULL)
                           : (agrad ? agrad + m->adapter->virt + (size_t)(id - V) * D : NULL);
        if (!ge) continue;
        const float *dxi = dx + (size_t)i * D;
#pragma omp simd
        for (int j = 0; j < D; j++) ge[j] += dxi[j];
    }
}
