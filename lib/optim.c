/* optim — SGD, Adam, AdamW and Lion steps, the warmup-cosine schedule and
 * global-norm clipping (see optim.h for the update rules).
 *
 * Every element's update depends only on that element's parameter, gradient
 * and state and on per-step scalars computed once here, and the loops are cut
 * at points fixed by the span alone (Adam's blocks, the simd chunks), so the
 * OpenMP split of the arena cannot change a single bit of the result.  The scalars follow
 * PyTorch's order of operations (torch.optim, single-tensor path): scalar
 * factors are formed in double and rounded to float once, the elementwise
 * arithmetic is float.
 *
 * Shapes: n parameters; p, g, m, v are [n] float arenas; a span is
 * [offset, offset+count) of them. */
#include "optim.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

/* Below this many parameters a step stays on one thread. */
#define PAR_MIN (INT64_C(1) << 15)
/* llm_grad_norm: chunks of at least NORM_MIN_CHUNK values, at most
 * NORM_MAX_CHUNKS of them (their sums live on the stack). */
#define NORM_MIN_CHUNK 4096
#define NORM_MAX_CHUNKS 4096

static const double PI = 3.14159265358979323846;

#ifdef __clang__
/* The simd pragmas below are requests: under sanitizers clang cannot honour
 * them and would warn (-Wpass-failed); the scalar loop is just as correct. */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif
void llm_optim_defaults(llm_optim_config *c, llm_optim_kind kind)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lr = kind == LLM_OPTIM_LION ? 1e-4f : 1e-3f;
    c->min_lr = c->lr / 10;
    c->warmup = 0;
    c->steps = 1;
    switch (kind) {
    case LLM_OPTIM_SGD: c->beta1 = 0.9f, c->beta2 = 0; break;
    case LLM_OPTIM_LION: c->beta1 = 0.9f, c->beta2 = 0.99f; break;
    default: c->beta1 = 0.9f, c->beta2 = 0.95f; break;
    }
    c->eps = 1e-8f;
    c->weight_decay = kind == LLM_OPTIM_ADAMW || kind == LLM_OPTIM_LION ? 0.1f : 0;
    c->clip = 1.0f;
}

static const char *const names[] = {"sgd", "adam", "adamw", "lion"};

const char *llm_optim_name(llm_optim_kind kind)
{
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "?";
}

int llm_optim_parse(const char *name)
{
    for (int k = 0; name && k < (int)(sizeof names / sizeof *names); k++)
        if (strcmp(name, names[k]) == 0) return k;
    return -1;
}

/* 1 when x is a finite number in [lo, hi] (hi_open: [lo, hi)). */
static int in_range(float x, float lo, float hi, int hi_open)
{
    return isfinite(x) && x >= lo && (hi_open ? x < hi : x <= hi);
}

int llm_optim_check(const llm_optim_config *c, llm_error *err)
{
    const char *name = llm_optim_name(c->kind);
    if (llm_optim_parse(name) < 0)
        return llm_error_set(err, LLM_ERR_ARG, "optimizer kind %d is not one of sgd, adam, adamw, lion",
                             (int)c->kind);
    if (!in_range(c->lr, 0, INFINITY, 1) || !in_range(c->min_lr, 0, INFINITY, 1))
        return llm_error_set(err, LLM_ERR_ARG, "%s: learning rates %g and %g must be finite and >= 0",
                             name, c->lr, c->min_lr);
    if (c->warmup < 0 || c->steps < 0)
        return llm_error_set(err, LLM_ERR_ARG, "%s: warmup %lld and steps %lld must be >= 0", name,
                             (long long)c->warmup, (long long)c->steps);
    int adam = c->kind == LLM_OPTIM_ADAM || c->kind == LLM_OPTIM_ADAMW;
    /* Adam's bias correction divides by 1 - beta^t: beta = 1 is excluded */
    if (!in_range(c->beta1, 0, 1, adam) || !in_range(c->beta2, 0, 1, adam))
        return llm_error_set(err, LLM_ERR_ARG, "%s: betas %g, %g must lie in [0, 1%s", name, c->beta1,
                             c->beta2, adam ? ")" : "]");
    if (!in_range(c->eps, 0, INFINITY, 1) || !in_range(c->weight_decay, 0, INFINITY, 1) ||
        !in_range(c->clip, 0, INFINITY, 1))
        return llm_error_set(err, LLM_ERR_ARG, "%s: eps %g, weight decay %g and clip %g must be finite and >= 0",
                             name, c->eps, c->weight_decay, c->clip);
    return 0;
}

int llm_optim_init(llm_optim *o, const llm_optim_config *cfg, int64_t n, llm_error *err)
{
    memset(o, 0, sizeof *o);
    if (!cfg) return llm_error_set(err, LLM_ERR_ARG, "optimizer: no configuration");
    LLM_TRY(llm_optim_check(cfg, err));
    if (n < 0) return llm_error_set(err, LLM_ERR_ARG, "optimizer: %lld parameters", (long long)n);
    if ((uint64_t)n > (UINT64_C(1) << 60) || (uint64_t)n > SIZE_MAX / sizeof(float))
        return llm_error_set(err, LLM_ERR_LIMIT, "optimizer: %lld parameters is beyond the limit",
                             (long long)n);
    o->cfg = *cfg;
    o->n = n;
    int want_m = cfg->kind != LLM_OPTIM_SGD || cfg->beta1 != 0;
    int want_v = cfg->kind == LLM_OPTIM_ADAM || cfg->kind == LLM_OPTIM_ADAMW;
    size_t bytes = (size_t)(n ? n : 1) * sizeof(float);
    if (want_m && !(o->m = calloc(1, bytes))) goto nomem;
    if (want_v && !(o->v = calloc(1, bytes))) goto nomem;
    return 0;
nomem:
    llm_optim_free(o);
    return llm_error_set(err, LLM_ERR_NOMEM, "optimizer: %lld parameters: out of memory for state",
                         (long long)n);
}

void llm_optim_free(llm_optim *o)
{
    if (!o) return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

size_t llm_optim_state_bytes(const llm_optim *o)
{
    size_t one = (size_t)o->n * sizeof(float);
    return (o->m ? one : 0) + (o->v ? one : 0);
}

float llm_optim_lr(const llm_optim_config *cfg, int64_t step)
{
    if (step < 0) step = 0;
    if (step < cfg->warmup) return (float)((double)cfg->lr * (double)(step + 1) / (double)cfg->warmup);
    int64_t span = cfg->steps - cfg->warmup;
    double progress = (double)(step - cfg->warmup) / (double)(span > 1 ? span : 1);
    if (progress > 1) progress = 1;
    double lr = cfg->lr, min_lr = cfg->min_lr;
    return (float)(min_lr + 0.5 * (lr - min_lr) * (1 + cos(PI * progress)));
}

double llm_grad_norm(const float *g, int64_t n)
{
    /* Squares summed in double per chunk, chunk sums added in order.  The
     * chunking depends on n alone, never on the thread count, so the result
     * has the same bits every run; one parallel region for the whole sum. */
    if (n <= 0) return 0;
    int64_t chunk = (n + NORM_MAX_CHUNKS - 1) / NORM_MAX_CHUNKS;
    if (chunk < NORM_MIN_CHUNK) chunk = NORM_MIN_CHUNK;
    int chunks = (int)((n + chunk - 1) / chunk);
    double part[NORM_MAX_CHUNKS];
#pragma omp parallel for schedule(static) if (chunks >= 8)
    for (int c = 0; c < chunks; c++) {
        const float *x = g + (int64_t)c * chunk;
        int64_t k = n - (int64_t)c * chunk;
        if (k > chunk) k = chunk;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < k; i++) s += (double)x[i] * (double)x[i];
        part[c] = s;
    }
    double total = 0;
    for (int c = 0; c < chunks; c++) total += part[c];
    return sqrt(total);
}

float llm_clip_scale(double norm, float clip)
{
    return clip > 0 && norm > clip ? (float)(clip / norm) : 1.0f;
}

/* The per-step scalars of one span's update. */
typedef struct coef {
    float lr, gs;    /* learning rate, gradient scale */
    float wd;        /* L2 coefficient added to g (SGD, Adam), else 0 */
    float keep;      /* decoupled decay: p *= keep before the update (AdamW, Lion) */
    float b1, c1;    /* beta1 and 1 - beta1 (SGD: momentum, c1 unused) */
    float b2, c2;    /* beta2 and 1 - beta2 */
    float step_size; /* Adam/AdamW: lr / (1 - beta1^t) */
    float bc2_sqrt;  /* Adam/AdamW: sqrt(1 - beta2^t) */
    float eps;
} coef;

/* The loops below are orphaned worksharing constructs: inside the parallel
 * region of llm_optim_step every thread takes its static share of each span
 * (nowait: spans are disjoint), outside one they run whole on one thread. */

static void step_sgd(float *p, const float *grad, float *m, int64_t count, const coef *k)
{
    const float lr = k->lr, gs = k->gs, wd = k->wd, mu = k->b1;
    if (!m) {
#pragma omp for simd schedule(simd : static) nowait
        for (int64_t i = 0; i < count; i++) {
            float g = grad[i] * gs + wd * p[i];
            p[i] = p[i] - lr * g;
        }
        return;
    }
#pragma omp for simd schedule(simd : static) nowait
    for (int64_t i = 0; i < count; i++) {
        float g = grad[i] * gs + wd * p[i];
        float b = mu * m[i] + g; /* the first step gives m = g, as m starts at 0 */
        m[i] = b;
        p[i] = p[i] - lr * b;
    }
}

/* Square roots of x[0..n) in place.  sqrtf keeps errno semantics, which
 * stops gcc and clang from vectorizing it; the SSE and NEON instructions are
 * IEEE correctly rounded like sqrtf, so every path gives the same bits. */
static void sqrt_block(float *x, int n)
{
    int i = 0;
#if defined(__SSE__)
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
#elif defined(__aarch64__) && defined(__ARM_NEON)
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vsqrtq_f32(vld1q_f32(x + i)));
#endif
    for (; i < n; i++) x[i] = sqrtf(x[i]);
}

/* Adam and AdamW, in fixed blocks of ADAM_BLOCK counted from the span start
 * (so the split into blocks, and with it every bit, ignores the thread
 * count): moments, then square roots, then the parameter update. */
#define ADAM_BLOCK 256
static void step_adam(float *p, const float *grad, float *m, float *v, int64_t count, const coef *k)
{
    const float gs = k->gs, wd = k->wd, keep = k->keep, b1 = k->b1, c1 = k->c1, b2 = k->b2,
                c2 = k->c2, step_size = k->step_size, bc2_sqrt = k->bc2_sqrt, eps = k->eps;
#pragma omp for schedule(static) nowait
    for (int64_t start = 0; start < count; start += ADAM_BLOCK) {
        int n = count - start < ADAM_BLOCK ? (int)(count - start) : ADAM_BLOCK;
        float *pb = p + start, *mb = m + start, *vb = v + start, root[ADAM_BLOCK];
        const float *gb = grad + start;
#pragma omp simd
        for (int i = 0; i < n; i++) {
            float g = gb[i] * gs + wd * (pb[i] * keep);
            float mi = b1 * mb[i] + c1 * g;
            float vi = b2 * vb[i] + c2 * (g * g);
            mb[i] = mi, vb[i] = vi, root[i] = vi;
        }
        sqrt_block(root, n);
#pragma omp simd
        for (int i = 0; i < n; i++) {
            float denom = root[i] / bc2_sqrt + eps;
            pb[i] = pb[i] * keep - step_size * (mb[i] / denom);
        }
    }
}

static void step_lion(float *p, const float *grad, float *m, int64_t count, const coef *k)
{
    const float lr = k->lr, gs = k->gs, keep = k->keep, b1 = k->b1, c1 = k->c1, b2 = k->b2, c2 = k->c2;
#pragma omp for simd schedule(simd : static) nowait
    for (int64_t i = 0; i < count; i++) {
        float x = p[i] * keep;
        float g = grad[i] * gs;
        float c = b1 * m[i] + c1 * g;
        float sign = (float)((c > 0) - (c < 0));
        p[i] = x - lr * sign;
        m[i] = b2 * m[i] + c2 * g;
    }
}

void llm_optim_step(llm_optim *o, float *params, const float *grad, const llm_param_span *spans,
                    int n_spans, float lr, float grad_scale)
{
    const llm_optim_config *c = &o->cfg;
    o->t++;
    double t = (double)o->t, b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay;
    coef base = {
        .lr = lr,
        .gs = grad_scale,
        .wd = 0,
        .keep = 1,
        .b1 = c->beta1,
        .c1 = (float)(1 - b1),
        .b2 = c->beta2,
        .c2 = (float)(1 - b2),
        .step_size = 0,
        .bc2_sqrt = 1,
        .eps = c->eps,
    };
    if (c->kind == LLM_OPTIM_ADAM || c->kind == LLM_OPTIM_ADAMW) {
        base.step_size = (float)((double)lr / (1 - pow(b1, t)));
        base.bc2_sqrt = (float)sqrt(1 - pow(b2, t));
    }
    coef decayed = base;
    if (c->kind == LLM_OPTIM_SGD || c->kind == LLM_OPTIM_ADAM)
        decayed.wd = c->weight_decay;
    else
        decayed.keep = (float)(1 - (double)lr * wd);

    for (int s = 0; s < n_spans; s++)
        assert(spans[s].offset >= 0 && spans[s].count >= 0 && spans[s].offset <= o->n &&
               spans[s].count <= o->n - spans[s].offset);

#pragma omp parallel if (o->n >= PAR_MIN)
    for (int s = 0; s < n_spans; s++) {
        int64_t off = spans[s].offset, count = spans[s].count;
        const coef *k = spans[s].decay ? &decayed : &base;
        float *p = params + off, *m = o->m ? o->m + off : NULL;
        const float *g = grad + off;
        switch (c->kind) {
        case LLM_OPTIM_SGD: step_sgd(p, g, m, count, k); break;
        case LLM_OPTIM_ADAM:
        case LLM_OPTIM_ADAMW: step_adam(p, g, m, o->v + off, count, k); break;
        case LLM_OPTIM_LION: step_lion(p, g, m, count, k); break;
        }
    }
}
