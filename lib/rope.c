/* rope — the rotary embedding table, its long-context scalings, and its
 * application to q and k.  The formulas, with their sources, are in rope.h. */
#include "rope.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"none", "linear", "ntk", "dynamic-ntk", "yarn"};
#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

int llm_rope_kind_parse(const char *name)
{
    for (int k = 0; name && k < N_KINDS; k++)
        if (!strcmp(name, kind_names[k])) return k;
    return LLM_ERR_ARG;
}

float llm_rope_attn_scale(const llm_rope_scaling *s)
{
    if (!s || s->kind != LLM_ROPE_YARN || !(s->factor > 1.0)) return 1.0f;
    double m = 0.1 * log(s->factor) + 1.0; /* sqrt(1/t) */
    return (float)(m * m);
}

/* Checks every argument of llm_rope_init_scaled (see rope.h). */
static int check_args(int head_dim, int max_pos, double theta, const llm_rope_scaling *s,
                      llm_error *err)
{
    if (head_dim <= 0 || head_dim % 2)
        return llm_error_set(err, LLM_ERR_ARG, "RoPE needs an even head size, not %d", head_dim);
    if (max_pos <= 0 || !(theta > 1.0) || !isfinite(theta))
        return llm_error_set(err, LLM_ERR_ARG, "RoPE: bad positions %d or base %g", max_pos, theta);
    if (!s || s->kind == LLM_ROPE_NONE) return 0;
    if ((int)s->kind < 0 || (int)s->kind >= N_KINDS)
        return llm_error_set(err, LLM_ERR_ARG, "RoPE: unknown scaling kind %d", (int)s->kind);
    const char *name = kind_names[s->kind];
    if (!(s->factor >= 1.0) || !isfinite(s->factor))
        return llm_error_set(err, LLM_ERR_ARG,
                             "RoPE scaling %s: factor %g must be a finite number >= 1", name,
                             s->factor);
    int need_orig = s->kind == LLM_ROPE_DYNAMIC_NTK || s->kind == LLM_ROPE_YARN;
    if (need_orig && s->orig_ctx < 1)
        return llm_error_set(err, LLM_ERR_ARG,
                             "RoPE scaling %s: needs the trained context length (>= 1), not %d",
                             name, s->orig_ctx);
    if (s->kind == LLM_ROPE_DYNAMIC_NTK && s->cur_len < 0)
        return llm_error_set(err, LLM_ERR_ARG,
                             "RoPE scaling %s: sequence length %d is negative", name, s->cur_len);
    if ((s->kind == LLM_ROPE_NTK || s->kind == LLM_ROPE_DYNAMIC_NTK) && head_dim < 4)
        return llm_error_set(err, LLM_ERR_ARG,
                             "RoPE scaling %s: needs a head size of at least 4, not %d", name,
                             head_dim);
    if (s->kind == LLM_ROPE_YARN) {
        double a = s->yarn_alpha ? s->yarn_alpha : 1.0, b = s->yarn_beta ? s->yarn_beta : 32.0;
        if (!(a > 0) || !(b > a) || !isfinite(b))
            return llm_error_set(err, LLM_ERR_ARG,
                                 "RoPE scaling yarn: needs 0 < alpha < beta, not alpha %g, beta %g",
                                 a, b);
    }
    return 0;
}

int llm_rope_freqs(double *freq, int head_dim, int max_pos, double theta,
                   const llm_rope_scaling *s, llm_error *err)
{
    LLM_TRY(check_args(head_dim, max_pos, theta, s, err));
    int half = head_dim / 2;
    llm_rope_kind kind = s ? s->kind : LLM_ROPE_NONE;
    double F = kind == LLM_ROPE_NONE ? 1.0 : s->factor;
    /* NTK kinds: base b' = b * g^(d/(d-2)) gives b'^(-2i/d) = f_i * g^(-2i/(d-2)),
     * computed in the second form so that i = 0 stays f_0 and i = d/2-1 is
     * f_i / g up to one rounding. */
    double g = 1.0;
    if (kind == LLM_ROPE_NTK) g = F;
    if (kind == LLM_ROPE_DYNAMIC_NTK) {
        double L = s->cur_len ? s->cur_len : max_pos;
        if (L > s->orig_ctx) g = F * L / s->orig_ctx - (F - 1.0);
    }
    double alpha = 1.0, beta = 32.0;
    if (kind == LLM_ROPE_YARN) {
        if (s->yarn_alpha) alpha = s->yarn_alpha;
        if (s->yarn_beta) beta = s->yarn_beta;
    }
    for (int i = 0; i < half; i++) {
        double f = pow(theta, -2.0 * i / head_dim); /* f_i */
        switch (kind) {
        case LLM_ROPE_NONE: break;
        case LLM_ROPE_LINEAR: f /= F; break;
        case LLM_ROPE_NTK:
        case LLM_ROPE_DYNAMIC_NTK:
            if (g != 1.0) f *= pow(g, -2.0 * i / (head_dim - 2));
            break;
        case LLM_ROPE_YARN: {
            double r = s->orig_ctx * f / (2.0 * M_PI); /* rotations over orig_ctx */
            double gamma = (r - alpha) / (beta - alpha);
            gamma = gamma < 0 ? 0 : gamma > 1 ? 1 : gamma;
            f = (1.0 - gamma) * f / F + gamma * f;
            break;
        }
        }
        freq[i] = f;
    }
    return 0;
}

int llm_rope_init_scaled(llm_rope *r, int head_dim, int max_pos, double theta,
                         const llm_rope_scaling *s, llm_error *err)
{
    memset(r, 0, sizeof *r);
    LLM_TRY(check_args(head_dim, max_pos, theta, s, err));
    r->freq = malloc((size_t)(head_dim / 2) * sizeof *r->freq);
    if (!r->freq) return llm_error_set(err, LLM_ERR_NOMEM, "RoPE: out of memory");
    llm_rope_freqs(r->freq, head_dim, max_pos, theta, s, err); /* checked above */
    r->head_dim = head_dim;
    r->max_pos = max_pos;
    return 0;
}

int llm_rope_init(llm_rope *r, int head_dim, int max_pos, double theta, llm_error *err)
{
    return llm_rope_init_scaled(r, head_dim, max_pos, theta, NULL, err);
}

int llm_rope_reserve(llm_rope *r, int n_pos, llm_error *err)
{
    if (n_pos <= r->n_pos) return 0;
    if (n_pos > r->max_pos)
        return llm_error_set(err, LLM_ERR_ARG, "RoPE: position %d beyond the %d of the context", n_pos - 1,
                             r->max_pos);
    int half = r->head_dim / 2;
    if (n_pos > r->cap) {
        int cap = r->cap > r->max_pos / 2 ? r->max_pos : 2 * r->cap;
        if (cap < n_pos) cap = n_pos;
        size_t n = (size_t)cap * (size_t)half;
        float *c = realloc(r->cos, n * sizeof *c);
        if (c) r->cos = c;
        float *sn = c ? realloc(r->sin, n * sizeof *sn) : NULL;
        if (!sn) return llm_error_set(err, LLM_ERR_NOMEM, "RoPE table of %d positions: out of memory", cap);
        r->sin = sn;
        r->cap = cap;
    }
    const double *freq = r->freq;
    float *c = r->cos, *sn = r->sin;
    int from = r->n_pos;
#pragma omp parallel for schedule(static) if ((size_t)(n_pos - from) * half > 65536)
    for (int p = from; p < n_pos; p++) {
        for (int i = 0; i < half; i++) {
            double a = p * freq[i];
            c[(size_t)p * half + i] = (float)cos(a);
            sn[(size_t)p * half + i] = (float)sin(a);
        }
    }
    r->n_pos = n_pos;
    return 0;
}

void llm_rope_free(llm_rope *r)
{
    if (!r) return;
    free(r->freq);
    free(r->cos);
    free(r->sin);
    memset(r, 0, sizeof *r);
}

/* Row x (n_heads heads) at position pos, rotated by sign. */
static void rotate_row(const llm_rope *r, float *x, int n_heads, int pos, float sign)
{
    int half = r->head_dim / 2;
    const float *c = r->cos + (size_t)pos * half, *s = r->sin + (size_t)pos * half;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * r->head_dim;
        for (int k = 0; k < half; k++) {
            float a = v[2 * k], b = v[2 * k + 1], sn = sign * s[k];
            v[2 * k] = a * c[k] - b * sn;
            v[2 * k + 1] = a * sn + b * c[k];
        }
    }
}

void llm_rope_apply(const llm_rope *r, float *x, int n_rows, int ld, int n_heads, int T, int pos0,
                    int inverse)
{
    float sign = inverse ? -1.0f : 1.0f;
    /* A few rows (a decode step) are not worth a thread team, and not even
     * a call into OpenMP: inside a decode step's region, starting an
     * inactive nested region of one thread cost 10 us or so, more than the
     * rotation. */
    if ((size_t)n_rows * n_heads * r->head_dim < 32768) {
        for (int i = 0; i < n_rows; i++) rotate_row(r, x + (size_t)i * ld, n_heads, pos0 + i % T, sign);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n_rows; i++) rotate_row(r, x + (size_t)i * ld, n_heads, pos0 + i % T, sign);
}
