/* model — configuration checks, the parameter arena, and the training forward
 * pass of the Llama decoder (the backward pass is in grad.c). */
#include "model.h"

#include <assert.h>
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "adapter.h"
#include "attn.h"
#include "model_internal.h"
#include "pages.h"
#include "rng.h"
#include "sample.h"

int llm_config_check(const llm_config *c, llm_error *err)
{
    const struct {
        const char *name;
        int value, min, max;
    } f[] = {
        {"vocab", c->vocab, 2, 1 << 22},      {"dim", c->dim, 2, 1 << 16},
        {"layers", c->n_layers, 1, 1024},     {"heads", c->n_heads, 1, 1024},
        {"kv-heads", c->n_kv_heads, 1, 1024}, {"hidden", c->hidden, 1, 1 << 18},
        {"seq", c->seq_len, 1, 1 << 22},      {"window", c->window, 0, 1 << 22},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].value < f[i].min || f[i].value > f[i].max)
            return llm_error_set(err, LLM_ERR_ARG, "%s %d out of range %d..%d", f[i].name, f[i].value,
                                 f[i].min, f[i].max);
    if (c->dim % c->n_heads)
        return llm_error_set(err, LLM_ERR_ARG, "dim %d is not divisible by heads %d", c->dim,
                             c->n_heads);
    if ((c->dim / c->n_heads) % 2)
        return llm_error_set(err, LLM_ERR_ARG, "head size %d (dim %d / heads %d) is odd: RoPE rotates pairs",
                             c->dim / c->n_heads, c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return llm_error_set(err, LLM_ERR_ARG, "heads %d is not a multiple of kv-heads %d", c->n_heads,
                             c->n_kv_heads);
    if (!(c->norm_eps > 0 && c->norm_eps < 1) || !(c->rope_theta > 1))
        return llm_error_set(err, LLM_ERR_ARG, "norm eps %g or rope theta %g out of range",
                             (double)c->norm_eps, (double)c->rope_theta);
    return 0;
}

/* Appends one tensor of shape [d0] (d1 == 0) or [d0, d1] to the layout. */
static void add_tensor(llm_param_tensor *tensors, int *n, int64_t *at, const char *name, int64_t d0,
                       int64_t d1)
{
    int64_t count = d0 * (d1 ? d1 : 1);
    if (tensors) {
        llm_param_tensor *t = &tensors[*n];
        snprintf(t->name, sizeof t->name, "%s", name);
        t->shape = d1 ? llm_shape_make(2, (int64_t[]){d0, d1}) : llm_shape_make(1, (int64_t[]){d0});
        t->offset = *at;
        t->count = count;
    }
    *at += count;
    (*n)++;
}

int64_t llm_model_layout(const llm_config *c, llm_param_tensor *tensors, int *n_tensors)
{
    int64_t at = 0;
    int n = 0;
    int64_t D = c->dim, E = c->dim / c->n_heads, HE = c->n_heads * E, KE = c->n_kv_heads * E,
            F = c->hidden, V = c->vocab;
    add_tensor(tensors, &n, &at, "tok_emb", V, D);
    for (int l = 0; l < c->n_layers; l++) {
        static const char *const names[9] = {"attn.norm", "attn.wq",  "attn.wk", "attn.wv", "attn.wo",
                                             "mlp.norm",  "mlp.w1",   "mlp.w2",  "mlp.w3"};
        const int64_t shapes[9][2] = {{D, 0}, {HE, D}, {KE, D}, {KE, D}, {D, HE},
                                      {D, 0}, {F, D},  {D, F},  {F, D}};
        for (int i = 0; i < 9; i++) {
            char name[48];
            snprintf(name, sizeof name, "layers.%d.%s", l, names[i]);
            add_tensor(tensors, &n, &at, name, shapes[i][0], shapes[i][1]);
        }
    }
    add_tensor(tensors, &n, &at, "norm", D, 0);
    if (!c->tie) add_tensor(tensors, &n, &at, "cls", V, D);
    *n_tensors = n;
    return at;
}

void llm_layer_params_map(const llm_model *m, float *arena, int l, llm_layer_params *lp)
{
    const llm_param_tensor *lt = m->tensors + 1 + 9 * l;
    float **views[9] = {&lp->attn_norm, &lp->wq, &lp->wk, &lp->wv, &lp->wo,
                        &lp->mlp_norm,  &lp->w1, &lp->w2, &lp->w3};
    for (int i = 0; i < 9; i++) *views[i] = arena + lt[i].offset;
}

void llm_params_map(const llm_model *m, float *arena, llm_params *p)
{
    const llm_param_tensor *t = m->tensors;
    p->tok_emb = arena + t[0].offset;
    for (int l = 0; p->layers && l < m->cfg.n_layers; l++) llm_layer_params_map(m, arena, l, &p->layers[l]);
    p->norm = arena + t[1 + 9 * m->cfg.n_layers].offset;
    p->cls = m->cfg.tie ? p->tok_emb : arena + t[2 + 9 * m->cfg.n_layers].offset;
}

/* The float linears over the arena's views, in linear.h's order. */
static void map_linears(llm_model *m)
{
    const llm_config *c = &m->cfg;
    for (int l = 0; l < c->n_layers; l++) {
        llm_layer_params *lp = &m->p.layers[l];
        float *w[LLM_LIN_PER_LAYER] = {lp->wq, lp->wk, lp->wv, lp->wo, lp->w1, lp->w2, lp->w3};
        for (int site = 0; site < LLM_LIN_PER_LAYER; site++) {
            llm_linear *lin = &m->lin[llm_linear_index(l, site)];
            llm_config_linear_shape(c, site, &lin->out, &lin->in);
            lin->w = w[site];
        }
    }
    m->lin[llm_linear_index(c->n_layers, 0)] = (llm_linear){.out = c->vocab, .in = c->dim, .w = m->p.cls};
}

void llm_config_linear_shape(const llm_config *c, int site, int *out, int *in)
{
    int D = c->dim, E = D / c->n_heads, HE = c->n_heads * E, KE = c->n_kv_heads * E, F = c->hidden;
    const int outs[LLM_LIN_PER_LAYER] = {HE, KE, KE, D, F, D, F}, ins[LLM_LIN_PER_LAYER] = {D, D, D, HE, D, F, D};
    *out = outs[site];
    *in = ins[site];
}

int llm_model_quantized(const llm_model *m)
{
    int n = 0;
    for (int i = 0; m->lin && i < llm_linear_count(m->cfg.n_layers); i++) n += m->lin[i].q != NULL;
    return n;
}

int llm_model_alloc(llm_model *m, const llm_config *cfg, llm_error *err)
{
    memset(m, 0, sizeof *m);
    LLM_TRY(llm_config_check(cfg, err));
    m->cfg = *cfg;
    llm_tok_bytes(&m->tok);
    int n;
    int64_t params = llm_model_layout(cfg, NULL, &n);
    m->tensors = calloc((size_t)n, sizeof *m->tensors);
    m->spans = calloc((size_t)n, sizeof *m->spans);
    m->p.layers = calloc((size_t)cfg->n_layers, sizeof *m->p.layers);
    m->lin = calloc((size_t)llm_linear_count(cfg->n_layers), sizeof *m->lin);
    if (!m->tensors || !m->spans || !m->p.layers || !m->lin) goto nomem;
    m->n_params = llm_model_layout(cfg, m->tensors, &m->n_tensors);
    m->arena = llm_pages_alloc((size_t)m->n_params * sizeof(float), 1, &m->arena_map);
    if (!m->arena) goto nomem;
    for (int i = 0; i < n; i++)
        m->spans[i] = (llm_param_span){m->tensors[i].offset, m->tensors[i].count,
                                       m->tensors[i].shape.ndim == 2};
    llm_params_map(m, m->arena, &m->p);
    map_linears(m);
    return 0;
nomem:
    llm_model_free(m);
    return llm_error_set(err, LLM_ERR_NOMEM, "model: out of memory for %lld parameters (%.1f GiB)",
                         (long long)params, (double)params * sizeof(float) / 1073741824.0);
}

int llm_model_init(llm_model *m, const llm_config *cfg, uint64_t seed, llm_error *err)
{
    LLM_TRY(llm_model_alloc(m, cfg, err));
    llm_rng rng;
    llm_rng_seed(&rng, seed);
    float out_scale = 0.02f / sqrtf(2.0f * (float)cfg->n_layers);
    for (int i = 0; i < m->n_tensors; i++) {
        const llm_param_tensor *t = &m->tensors[i];
        float *w = m->arena + t->offset;
        if (t->shape.ndim == 1) {
            for (int64_t j = 0; j < t->count; j++) w[j] = 1.0f;
            continue;
        }
        size_t len = strlen(t->name);
        int is_out = len > 3 && (!strcmp(t->name + len - 3, ".wo") || !strcmp(t->name + len - 3, ".w2"));
        float sd = is_out ? out_scale : 0.02f;
        for (int64_t j = 0; j < t->count; j++) w[j] = sd * llm_rng_normal(&rng);
    }
    return 0;
}

void llm_model_free(llm_model *m)
{
    if (!m) return;
    for (int i = 0; m->lin && i < llm_linear_count(m->cfg.n_layers); i++) {
        llm_qlinear_free(m->lin[i].q);
        free(m->lin[i].q);
    }
    free(m->lin);
    llm_pages_free(m->arena, m->arena_map);
    free(m->tensors);
    free(m->spans);
    free(m->p.layers);
    llm_tok_free(&m->tok);
    memset(m, 0, sizeof *m);
}

void llm_model_sparse_arena(llm_model *m)
{
#ifdef MADV_NOHUGEPAGE
    if (m->arena_map) madvise(m->arena, m->arena_map, MADV_NOHUGEPAGE); /* advice only */
#else
    (void)m;
#endif
}

const llm_param_tensor *llm_model_tensor(const llm_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

int llm_acts_init(llm_acts *a, const llm_config *c, int B, int T, llm_error *err)
{
    memset(a, 0, sizeof *a);
    if (B < 1 || T < 1 || T > c->seq_len)
        return llm_error_set(err, LLM_ERR_ARG, "batch %d x seq %d (seq at most %d)", B, T, c->seq_len);
    if ((int64_t)B * T > INT_MAX) /* the passes count tokens (N = B*T) in an int */
        return llm_error_set(err, LLM_ERR_LIMIT, "batch %d x seq %d is %lld tokens in one pass, more than %d", B, T,
                             (long long)B * T, INT_MAX);
    size_t N = (size_t)B * (size_t)T, L = (size_t)c->n_layers, D = (size_t)c->dim,
           E = D / (size_t)c->n_heads, HE = (size_t)c->n_heads * E, KE = (size_t)c->n_kv_heads * E,
           F = (size_t)c->hidden, V = (size_t)c->vocab;
    struct {
        float **p;
        size_t n;
    } f[] = {
        {&a->x, (L + 1) * N * D}, {&a->rms1, L * N},      {&a->q, L * N * HE},
        {&a->k, L * N * KE},      {&a->v, L * N * KE},    {&a->att, L * N * HE},
        {&a->lse, L * N * (size_t)c->n_heads},             {&a->x_mid, L * N * D},
        {&a->rms2, L * N},        {&a->h1, L * N * F},    {&a->h3, L * N * F},
        {&a->rmsf, N},            {&a->xf, N * D},        {&a->probs, N * V},
        {&a->s_nd, N * D},        {&a->s_nd2, N * D},     {&a->s_nd3, N * D},
        {&a->s_nf, N * F},        {&a->s_nf2, N * F},     {&a->s_kv, N * KE},
        {&a->s_kv2, N * KE},
    };
    a->B = B;
    a->T = T;
    a->inputs = malloc(2 * N * sizeof *a->inputs);
    if (!a->inputs) goto nomem;
    a->targets = a->inputs + N;
    a->bytes = 2 * N * sizeof(int32_t);
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        *f[i].p = malloc(f[i].n * sizeof(float));
        if (!*f[i].p) goto nomem;
        a->bytes += f[i].n * sizeof(float);
    }
    int rc = llm_rope_init(&a->rope, c->dim / c->n_heads, T, c->rope_theta, err);
    if (rc == 0) rc = llm_rope_reserve(&a->rope, T, err);
    if (rc < 0) {
        llm_acts_free(a);
        return rc;
    }
    a->bytes += (size_t)T * E * sizeof(float);
    return 0;
nomem:
    llm_acts_free(a);
    return llm_error_set(err, LLM_ERR_NOMEM, "activations for batch %d x seq %d: out of memory", B, T);
}

int llm_acts_lora(llm_acts *a, const llm_config *c, int rank, llm_error *err)
{
    size_t N = (size_t)a->B * (size_t)a->T, R = (size_t)rank;
    free(a->lora_u);
    free(a->lora_du);
    a->lora_u = malloc((size_t)c->n_layers * LLM_LIN_PER_LAYER * N * R * sizeof(float) + 1);
    a->lora_du = malloc(N * (R + (size_t)c->dim) * sizeof(float));
    if (!a->lora_u || !a->lora_du)
        return llm_error_set(err, LLM_ERR_NOMEM, "LoRA activations: out of memory");
    a->lora_dx = a->lora_du + N * R;
    a->bytes += (((size_t)c->n_layers * LLM_LIN_PER_LAYER + 1) * R + (size_t)c->dim) * N * sizeof(float);
    return 0;
}

int llm_acts_quant(llm_acts *a, const llm_model *m, llm_error *err)
{
    if (!llm_model_quantized(m)) return 0;
    const llm_config *c = &m->cfg;
    size_t E = (size_t)c->dim / (size_t)c->n_heads, width = (size_t)c->dim;
    if ((size_t)c->n_heads * E > width) width = (size_t)c->n_heads * E;
    if ((size_t)c->hidden > width) width = (size_t)c->hidden;
    free(a->qscratch);
    a->qscratch = malloc(LLM_QROWS * width * sizeof(float));
    if (!a->qscratch) return llm_error_set(err, LLM_ERR_NOMEM, "dequantization scratch: out of memory");
    a->bytes += LLM_QROWS * width * sizeof(float);
    return 0;
}

void llm_acts_free(llm_acts *a)
{
    if (!a) return;
    free(a->qscratch);
    free(a->lora_u);
    free(a->lora_du);
    float *all[] = {a->x,     a->rms1, a->q,    a->k,    a->v,     a->att,   a->lse,
                    a->x_mid, a->rms2, a->h1,   a->h3,   a->rmsf,  a->xf,    a->probs,
                    a->s_nd,  a->s_nd2, a->s_nd3, a->s_nf, a->s_nf2, a->s_kv, a->s_kv2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    free(a->inputs);
    llm_rope_free(&a->rope);
    memset(a, 0, sizeof *a);
}

/* Row x [d] normalized into y; its 1/rms into *inv_rms when given. */
static void rmsnorm_row(const float *x, const float *g, float *y, float *inv_rms, int d, float eps)
{
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int j = 0; j < d; j++) ss += x[j] * x[j];
    float r = 1.0f / sqrtf(ss / (float)d + eps);
    if (inv_rms) *inv_rms = r;
#pragma omp simd
    for (int j = 0; j < d; j++) y[j] = x[j] * r * g[j];
}

void llm_rmsnorm(const float *x, const float *g, float *y, float *inv_rms, int n, int d, float eps)
{
    /* a few rows (a decode step, inside its own region) without a call into
     * OpenMP at all: even an inactive region costs more than they do */
    if ((size_t)n * d < LLM_PARALLEL_MIN) {
        for (int i = 0; i < n; i++)
            rmsnorm_row(x + (size_t)i * d, g, y + (size_t)i * d, inv_rms ? inv_rms + i : NULL, d, eps);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        rmsnorm_row(x + (size_t)i * d, g, y + (size_t)i * d, inv_rms ? inv_rms + i : NULL, d, eps);
}

void llm_rmsnorm_apply(const float *x, const float *g, const float *inv_rms, float *y, int n, int d)
{
#pragma omp parallel for schedule(static) if ((size_t)n * d >= LLM_PARALLEL_MIN)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *yi = y + (size_t)i * d, r = inv_rms[i];
#pragma omp simd
        for (int j = 0; j < d; j++) yi[j] = xi[j] * r * g[j];
    }
}

float llm_silu(float z) { return z / (1.0f + expf(-z)); }

void llm_attention_forward(const llm_model *m, const float *q, const float *k, const float *v,
                           float *att, float *lse, int B, int T)
{
    const llm_config *c = &m->cfg;
    int H = c->n_heads, K = c->n_kv_heads, E = c->dim / H, HE = H * E, KE = K * E, G = H / K;
    llm_attn_shape s = {.n_q = T, .n_kv = T, .q_pos0 = 0, .head_dim = E, .window = c->window,
                        .scale = 1.0f / sqrtf((float)E)};
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t row = (size_t)b * T;
            llm_attn_forward(&s, q + row * HE + (size_t)h * E, HE, k + row * KE + (size_t)(h / G) * E,
                             v + row * KE + (size_t)(h / G) * E, KE, att + row * HE + (size_t)h * E, HE,
                             lse + ((size_t)b * H + h) * T);
        }
}

/* The LoRA u of linear index for the backward pass (NULL: no LoRA). */
static float *lora_u(llm_acts *a, int index, int rank)
{
    return a->lora_u ? a->lora_u + (size_t)index * (size_t)a->B * (size_t)a->T * (size_t)rank : NULL;
}

int llm_model_check_ids(const llm_model *m, const int32_t *ids, int64_t n, unsigned allow, llm_error *err)
{
    int64_t V = m->cfg.vocab, P = (allow & LLM_IDS_VIRTUAL) && m->adapter ? m->adapter->cfg.n_virtual : 0;
    int64_t lo = allow & LLM_IDS_UNSCORED ? INT32_MIN : 0, hi = V + P; /* ids in [lo, hi) */
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = 0; i < n; i++) bad |= ids[i] < lo || ids[i] >= hi;
    if (!bad) return 0;
    int64_t i = 0;
    while (ids[i] >= lo && ids[i] < hi) i++;
    char virt[64] = "";
    if (P) snprintf(virt, sizeof virt, "; virtual tokens %lld..%lld", (long long)V, (long long)(V + P - 1));
    return llm_error_set(err, LLM_ERR_ARG, "token %lld of %lld: id %d outside the vocabulary (0..%lld%s)",
                         (long long)(i + 1), (long long)n, (int)ids[i], (long long)(V - 1), virt);
}

float llm_model_forward(const llm_model *m, llm_acts *a, const int32_t *inputs,
                        const int32_t *targets)
{
    const llm_config *c = &m->cfg;
    const llm_params *p = &m->p;
    int B = a->B, T = a->T, N = B * T, D = c->dim, H = c->n_heads, K = c->n_kv_heads, E = D / H,
        HE = H * E, KE = K * E, F = c->hidden, V = c->vocab;
    /* every caller checked them: an id past the embeddings is a bug */
    assert(llm_model_check_ids(m, inputs, N, LLM_IDS_VIRTUAL, NULL) == 0);
    assert(!targets || llm_model_check_ids(m, targets, N, LLM_IDS_UNSCORED, NULL) == 0);
    memcpy(a->inputs, inputs, (size_t)N * sizeof *inputs);
    for (int i = 0; i < N; i++) a->targets[i] = targets ? targets[i] : -1;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; i++) {
        const float *row = inputs[i] < V ? p->tok_emb + (size_t)inputs[i] * D
                                         : m->adapter->arena + m->adapter->virt + (size_t)(inputs[i] - V) * D;
        memcpy(a->x + (size_t)i * D, row, (size_t)D * sizeof(float));
    }
    for (int l = 0; l < c->n_layers; l++) {
        const llm_layer_params *w = &p->layers[l];
        const llm_linear *lin = &m->lin[llm_linear_index(l, 0)];
        float *x = a->x + (size_t)l * N * D, *xn = a->s_nd, *x_mid = a->x_mid + (size_t)l * N * D;
        float *q = a->q + (size_t)l * N * HE, *k = a->k + (size_t)l * N * KE,
              *v = a->v + (size_t)l * N * KE, *att = a->att + (size_t)l * N * HE;
        float *h1 = a->h1 + (size_t)l * N * F, *h3 = a->h3 + (size_t)l * N * F;
#define FORWARD(site, in, out, beta)                                                      \
    llm_linear_forward(&lin[site], in, N, out, beta, a->qscratch,                        \
                       lora_u(a, llm_linear_index(l, site), lin[site].rank))
        llm_rmsnorm(x, w->attn_norm, xn, a->rms1 + (size_t)l * N, N, D, c->norm_eps);
        FORWARD(LLM_LIN_WQ, xn, q, 0);
        FORWARD(LLM_LIN_WK, xn, k, 0);
        FORWARD(LLM_LIN_WV, xn, v, 0);
        llm_rope_apply(&a->rope, q, N, HE, H, T, 0, 0);
        llm_rope_apply(&a->rope, k, N, KE, K, T, 0, 0);
        llm_attention_forward(m, q, k, v, att, a->lse + (size_t)l * N * H, B, T);
        memcpy(x_mid, x, (size_t)N * D * sizeof(float));
        FORWARD(LLM_LIN_WO, att, x_mid, 1);
        llm_rmsnorm(x_mid, w->mlp_norm, xn, a->rms2 + (size_t)l * N, N, D, c->norm_eps);
        FORWARD(LLM_LIN_W1, xn, h1, 0);
        FORWARD(LLM_LIN_W3, xn, h3, 0);
        float *hg = a->s_nf;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)N * F; i++) hg[i] = llm_silu(h1[i]) * h3[i];
        float *x_next = a->x + (size_t)(l + 1) * N * D;
        memcpy(x_next, x_mid, (size_t)N * D * sizeof(float));
        FORWARD(LLM_LIN_W2, hg, x_next, 1);
#undef FORWARD
    }
    llm_rmsnorm(a->x + (size_t)c->n_layers * N * D, p->norm, a->xf, a->rmsf, N, D, c->norm_eps);
    llm_linear_forward(&m->lin[llm_linear_index(c->n_layers, 0)], a->xf, N, a->probs, 0, a->qscratch, NULL);
    double loss = 0;
    int counted = 0;
#pragma omp parallel for reduction(+ : loss, counted) schedule(static)
    for (int i = 0; i < N; i++) {
        float *row = a->probs + (size_t)i * V, mx = row[0];
        for (int j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
        double sum = 0;
        int t = a->targets[i];
        float target_logit = t >= 0 ? row[t] : 0;
        for (int j = 0; j < V; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < V; j++) row[j] *= inv;
        if (t >= 0) {
            loss += log(sum) + mx - target_logit;
            counted++;
        }
    }
    return counted ? (float)(loss / counted) : 0.0f;
}

int llm_model_greedy(const llm_model *m, llm_acts *a, const int32_t *prompt, int n_prompt,
                     int n_new, int32_t *out, llm_error *err)
{
    int T = a->T, V = m->cfg.vocab;
    int32_t *window = malloc((size_t)T * sizeof *window);
    if (!window) return llm_error_set(err, LLM_ERR_NOMEM, "greedy decoding: out of memory for %d tokens", T);
    int made = 0;
    while (made < n_new) {
        /* the last T tokens of prompt + out, at positions 0.. (the rest of the
         * window is padding after them, which causal attention ignores) */
        int total = n_prompt + made, len = total < T ? total : T;
        for (int i = 0; i < len; i++) {
            int at = total - len + i;
            window[i] = at < n_prompt ? prompt[at] : out[at - n_prompt];
        }
        for (int i = len; i < T; i++) window[i] = 0;
        llm_model_forward(m, a, window, NULL);
        int best = llm_sample_argmax(a->probs + (size_t)(len - 1) * V, V);
        out[made++] = best;
        if (best == m->tok.eos || best == m->tok.bos) break; /* the end of a text */
    }
    free(window);
    return made;
}
