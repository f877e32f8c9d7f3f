/* rope — the rotary embedding table and its application to q and k. */
#include "rope.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int llm_rope_init(llm_rope *r, int head_dim, int max_pos, double theta, llm_error *err)
{
    memset(r, 0, sizeof *r);
    if (head_dim <= 0 || head_dim % 2)
        return llm_error_set(err, LLM_ERR_ARG, "RoPE needs an even head size, not %d", head_dim);
    if (max_pos <= 0 || theta <= 1.0)
        return llm_error_set(err, LLM_ERR_ARG, "RoPE: bad positions %d or base %g", max_pos, theta);
    int half = head_dim / 2;
    size_t n = (size_t)max_pos * (size_t)half;
    r->cos = malloc(n * sizeof *r->cos);
    r->sin = malloc(n * sizeof *r->sin);
    if (!r->cos || !r->sin) {
        llm_rope_free(r);
        return llm_error_set(err, LLM_ERR_NOMEM, "RoPE table: out of memory");
    }
    r->head_dim = head_dim;
    r->max_pos = max_pos;
    for (int i = 0; i < half; i++) {
        double freq = pow(theta, -2.0 * i / head_dim);
        for (int p = 0; p < max_pos; p++) {
            double a = p * freq;
            r->cos[(size_t)p * half + i] = (float)cos(a);
            r->sin[(size_t)p * half + i] = (float)sin(a);
        }
    }
    return 0;
}

void llm_rope_free(llm_rope *r)
{
    if (!r) return;
    free(r->cos);
    free(r->sin);
    memset(r, 0, sizeof *r);
}

void llm_rope_apply(const llm_rope *r, float *x, int n_rows, int ld, int n_heads, int T, int pos0,
                    int inverse)
{
    int half = r->head_dim / 2;
    float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n_rows; i++) {
        int pos = pos0 + i % T;
        const float *c = r->cos + (size_t)pos * half, *s = r->sin + (size_t)pos * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)i * ld + (size_t)h * r->head_dim;
            for (int k = 0; k < half; k++) {
                float a = v[2 * k], b = v[2 * k + 1], sn = sign * s[k];
                v[2 * k] = a * c[k] - b * sn;
                v[2 * k + 1] = a * sn + b * c[k];
            }
        }
    }
}
