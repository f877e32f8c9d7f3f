/* grad — the backward pass of the Llama decoder in model.c, written by hand:
 * each layer's forward step undone in reverse, the linears' weight and input
 * gradients (and their LoRA factors') through linear.h, normalised inputs
 * and the gated MLP activation recomputed from what the forward pass kept. */
#include <math.h>
#include <string.h>

#include "adapter.h"
#include "attn.h"
#include "model.h"
#include "model_internal.h"

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

/* LoRA's weight half of linear index's backward step (linear.h): a->lora_du,
 * and the factors' gradients in agrad when given.  Returns the linear when it
 * has LoRA (for lora_input), else NULL. */
static const llm_linear *lora_weights(const llm_model *m, llm_acts *a, float *agrad, int index,
                                      const float *x, const float *dy)
{
    const llm_linear *lin = &m->lin[index];
    if (!lin->lora_a) return NULL;
    const float *arena = m->adapter->arena;
    size_t N = (size_t)a->B * (size_t)a->T;
    llm_linear_lora_grad(lin, x, a->lora_u + (size_t)index * N * (size_t)lin->rank, dy, (int)N, a->lora_du,
                         agrad ? agrad + (lin->lora_a - arena) : NULL, agrad ? agrad + (lin->lora_b - arena) : NULL);
    return lin;
}

/* dx += du A for a linear lora_weights returned (nothing for NULL). */
static void lora_input(const llm_acts *a, const llm_linear *lin, float *dx)
{
    if (lin) llm_linear_lora_input_grad(lin, a->lora_du, a->B * a->T, dx);
}

void llm_model_backward(const llm_model *m, llm_acts *a, float *grad)
{
    llm_model_backward_adapter(m, a, grad, NULL);
}

/* dW += dy^T x for linear `site` of layer l, unless the base is frozen (no
 * base gradient arena) */
#define WEIGHT_GRAD(l, site, dy, x, field) \
    do { if (grad) llm_linear_weight_grad(&m->lin[llm_linear_index(l, site)], x, dy, N, field); } while (0)

void llm_model_backward_adapter(const llm_model *m, llm_acts *a, float *grad, float *agrad)
{
    const llm_config *c = &m->cfg;
    llm_params g = {0}; /* the gradients' views (all NULL without grad); a layer's in the loop */
    if (grad) llm_params_map(m, grad, &g);
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
    const llm_linear *cls = &m->lin[llm_linear_index(c->n_layers, 0)];
    if (grad) llm_linear_weight_grad(cls, a->xf, dlogits, N, g.cls);
    llm_linear_input_grad(cls, dlogits, N, buf, 0, a->qscratch);
    memset(dx, 0, (size_t)N * D * sizeof *dx);
    rmsnorm_backward(a->x + (size_t)c->n_layers * N * D, p->norm, a->rmsf, buf, dx, g.norm, N, D);
    /* the arena is tok_emb, layers 0..L-1, norm[, cls]: all from norm on is final
     * (a tied cls is tok_emb, which is final only at the end) */
    if (a->grad_ready && grad) a->grad_ready(a->grad_ready_ctx, g.norm - grad);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        const llm_layer_params *w = &p->layers[l];
        llm_layer_params gl = {0}, *gw = &gl;
        if (grad) llm_layer_params_map(m, grad, l, gw);
        const int at = llm_linear_index(l, 0); /* layer l's linears: m->lin[at + site] */
        const llm_linear *lin = &m->lin[at];
        const float *x = a->x + (size_t)l * N * D, *x_mid = a->x_mid + (size_t)l * N * D;
        const float *h1 = a->h1 + (size_t)l * N * F, *h3 = a->h3 + (size_t)l * N * F;
        const float *rms1 = a->rms1 + (size_t)l * N, *rms2 = a->rms2 + (size_t)l * N;
        float *hg = a->s_nf, *dh3 = a->s_nf2;

        /* MLP: x_next = x_mid + w2 . (silu(h1) * h3) */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)N * F; i++) hg[i] = llm_silu(h1[i]) * h3[i];
        WEIGHT_GRAD(l, LLM_LIN_W2, dx, hg, gw->w2);
        const llm_linear *ls = lora_weights(m, a, agrad, at + LLM_LIN_W2, hg, dx);
        float *dh1 = hg; /* hg is no longer needed: its buffer takes d(hg), then dh1 */
        llm_linear_input_grad(&lin[LLM_LIN_W2], dx, N, dh1, 0, a->qscratch);
        lora_input(a, ls, dh1);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)N * F; i++) {
            float z = h1[i], sig = 1.0f / (1.0f + expf(-z)), dhg = dh1[i];
            dh3[i] = dhg * z * sig;
            dh1[i] = dhg * h3[i] * sig * (1.0f + z * (1.0f - sig));
        }
        float *xn = buf2;
        llm_rmsnorm_apply(x_mid, w->mlp_norm, rms2, xn, N, D);
        WEIGHT_GRAD(l, LLM_LIN_W1, dh1, xn, gw->w1);
        WEIGHT_GRAD(l, LLM_LIN_W3, dh3, xn, gw->w3);
        llm_linear_input_grad(&lin[LLM_LIN_W1], dh1, N, buf, 0, a->qscratch);
        llm_linear_input_grad(&lin[LLM_LIN_W3], dh3, N, buf, 1, a->qscratch);
        lora_input(a, lora_weights(m, a, agrad, at + LLM_LIN_W1, xn, dh1), buf);
        lora_input(a, lora_weights(m, a, agrad, at + LLM_LIN_W3, xn, dh3), buf);
        rmsnorm_backward(x_mid, w->mlp_norm, rms2, buf, dx, gw->mlp_norm, N, D);

        /* attention: x_mid = x + wo . attn(q, k, v) */
        const float *att = a->att + (size_t)l * N * HE;
        WEIGHT_GRAD(l, LLM_LIN_WO, dx, att, gw->wo);
        float *datt = buf, *dq = buf2, *dk = a->s_kv, *dv = a->s_kv2;
        llm_linear_input_grad(&lin[LLM_LIN_WO], dx, N, datt, 0, a->qscratch);
        lora_input(a, lora_weights(m, a, agrad, at + LLM_LIN_WO, att, dx), datt);
        attention_backward(m, a, l, datt, dq, dk, dv);
        llm_rope_apply(&a->rope, dq, N, HE, H, T, 0, 1);
        llm_rope_apply(&a->rope, dk, N, KE, K, T, 0, 1);
        xn = buf; /* datt is spent: recompute the normalised input there */
        llm_rmsnorm_apply(x, w->attn_norm, rms1, xn, N, D);
        WEIGHT_GRAD(l, LLM_LIN_WQ, dq, xn, gw->wq);
        WEIGHT_GRAD(l, LLM_LIN_WK, dk, xn, gw->wk);
        WEIGHT_GRAD(l, LLM_LIN_WV, dv, xn, gw->wv);
        /* the LoRA sites read xn, which dxn overwrites: their part of dxn
         * is gathered in a->lora_dx first */
        float *dxn = buf;
        const float *qkv_dy[3] = {dq, dk, dv};
        int lora_qkv = 0;
        for (int site = LLM_LIN_WQ; site <= LLM_LIN_WV; site++) {
            const llm_linear *ls = lora_weights(m, a, agrad, at + site, xn, qkv_dy[site - LLM_LIN_WQ]);
            if (ls && !lora_qkv++) memset(a->lora_dx, 0, (size_t)N * D * sizeof *a->lora_dx);
            lora_input(a, ls, a->lora_dx);
        }
        llm_linear_input_grad(&lin[LLM_LIN_WQ], dq, N, dxn, 0, a->qscratch);
        llm_linear_input_grad(&lin[LLM_LIN_WK], dk, N, dxn, 1, a->qscratch);
        llm_linear_input_grad(&lin[LLM_LIN_WV], dv, N, dxn, 1, a->qscratch);
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
