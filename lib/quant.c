/* quant — the int8/int4 weight formats and round-to-nearest quantization. */
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scheme_names[] = {"none", "int8", "int4", "w8a8"};

const char *llm_qscheme_name(llm_qscheme s)
{
    return s >= LLM_Q_NONE && s <= LLM_Q_W8A8 ? scheme_names[s] : "?";
}

int llm_qscheme_parse(const char *name)
{
    for (int i = LLM_Q_INT8; i <= LLM_Q_W8A8; i++)
        if (!strcmp(name, scheme_names[i])) return i;
    return -1;
}

int llm_qformat_check(const llm_qformat *f, int cols, llm_error *err)
{
    if (f->scheme != LLM_Q_INT8 && f->scheme != LLM_Q_INT4 && f->scheme != LLM_Q_W8A8)
        return llm_error_set(err, LLM_ERR_ARG, "unknown quantization scheme %d", (int)f->scheme);
    if (cols < 1) return llm_error_set(err, LLM_ERR_ARG, "width %d", cols);
    if (f->scheme != LLM_Q_INT4) return 0;
    if (f->group < LLM_QBLOCK || f->group % LLM_QBLOCK)
        return llm_error_set(err, LLM_ERR_ARG, "group %d is not a multiple of %d", f->group, LLM_QBLOCK);
    if (cols % f->group)
        return llm_error_set(err, LLM_ERR_ARG, "group %d does not divide the width %d", f->group, cols);
    return 0;
}

int llm_qlinear_alloc(llm_qlinear *q, const llm_qformat *f, int rows, int cols, llm_error *err)
{
    memset(q, 0, sizeof *q);
    LLM_TRY(llm_qformat_check(f, cols, err));
    if (rows < 1) return llm_error_set(err, LLM_ERR_ARG, "%d rows", rows);
    q->f = *f;
    q->rows = rows;
    q->cols = cols;
    q->groups = f->scheme == LLM_Q_INT4 ? cols / f->group : 1;
    if (f->scheme != LLM_Q_INT4) q->f.group = cols, q->f.sym = 1;
    size_t n = (size_t)rows * (size_t)cols, ng = (size_t)rows * (size_t)q->groups;
    int ok;
    if (f->scheme == LLM_Q_INT4) ok = (q->q4 = calloc(n / 2, 1)) != NULL;
    else ok = (q->q8 = calloc(n, 1)) != NULL;
    ok = ok && (q->scale = calloc(ng, sizeof *q->scale)) != NULL;
    if (ok && f->scheme == LLM_Q_INT4 && !f->sym) ok = (q->zero = calloc(ng, 1)) != NULL;
    if (!ok) {
        llm_qlinear_free(q);
        return llm_error_set(err, LLM_ERR_NOMEM, "quantized %dx%d weights: out of memory", rows, cols);
    }
    return 0;
}

void llm_qlinear_free(llm_qlinear *q)
{
    if (!q) return;
    free(q->q8);
    free(q->q4);
    free(q->scale);
    free(q->zero);
    memset(q, 0, sizeof *q);
}

void llm_qgroup_params(const llm_qformat *f, float lo, float hi, float *scale, int *zero)
{
    if (lo > 0) lo = 0;
    if (hi < 0) hi = 0;
    float amax = fmaxf(-lo, hi);
    if (f->scheme != LLM_Q_INT4) {
        *scale = amax > 0 ? amax / 127.0f : 1.0f;
        *zero = 0;
    } else if (f->sym) {
        *scale = amax > 0 ? amax / 7.5f : 1.0f;
        *zero = 8;
    } else {
        float s = (hi - lo) / 15.0f;
        if (!(s > 0)) s = 1.0f;
        int z = (int)lrintf(-lo / s);
        *scale = s;
        *zero = z < 0 ? 0 : z > 15 ? 15 : z;
    }
}

int llm_qcode(const llm_qformat *f, float w, float scale, int zero)
{
    int lo = f->scheme == LLM_Q_INT4 ? 0 : -127, hi = f->scheme == LLM_Q_INT4 ? 15 : 127;
    float c = rintf(w / scale) + (float)zero;
    return !(c >= (float)lo) ? lo : c > (float)hi ? hi : (int)c; /* NaN: lo, never an undefined cast */
}

int llm_qlinear_zero(const llm_qlinear *q, int r, int g)
{
    if (q->f.scheme != LLM_Q_INT4) return 0;
    return q->zero ? q->zero[(size_t)r * q->groups + g] : 8;
}

int llm_qlinear_code(const llm_qlinear *q, int r, int k)
{
    size_t i = (size_t)r * q->cols + (size_t)k;
    if (!q->q4) return q->q8[i];
    return (q->q4[i / 2] >> (4 * (i & 1))) & 15;
}

void llm_qlinear_set_code(llm_qlinear *q, int r, int k, int code)
{
    size_t i = (size_t)r * q->cols + (size_t)k;
    if (!q->q4) {
        q->q8[i] = (int8_t)code;
        return;
    }
    int shift = 4 * (int)(i & 1);
    q->q4[i / 2] = (uint8_t)((q->q4[i / 2] & ~(15 << shift)) | (code << shift));
}

int llm_quantize_rtn(const float *w, int rows, int cols, const llm_qformat *f, llm_qlinear *q,
                     llm_error *err)
{
    LLM_TRY(llm_qlinear_alloc(q, f, rows, cols, err));
    int G = q->groups, gs = cols / G;
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= 65536)
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < G; g++) {
            const float *x = w + (size_t)r * cols + (size_t)g * gs;
            float lo = x[0], hi = x[0];
            for (int k = 1; k < gs; k++) lo = fminf(lo, x[k]), hi = fmaxf(hi, x[k]);
            float scale;
            int zero;
            llm_qgroup_params(&q->f, lo, hi, &scale, &zero);
            q->scale[(size_t)r * G + g] = scale;
            if (q->zero) q->zero[(size_t)r * G + g] = (uint8_t)zero;
            for (int k = 0; k < gs; k++)
                llm_qlinear_set_code(q, r, g * gs + k, llm_qcode(&q->f, x[k], scale, zero));
        }
    return 0;
}

void llm_dequantize_rows(const llm_qlinear *q, int r0, int r1, float *w)
{
    enum { PARALLEL_MIN = 32768 }; /* fewer weights are done sooner than a team wakes */
    int cols = q->cols, G = q->groups;
#pragma omp parallel for schedule(static) if ((size_t)(r1 - r0) * cols >= PARALLEL_MIN)
    for (int r = r0; r < r1; r++) {
        float *wr = w + (size_t)(r - r0) * cols;
        const float *scale = q->scale + (size_t)r * G;
        if (!q->q4) {
            const int8_t *codes = q->q8 + (size_t)r * cols;
#pragma omp simd
            for (int k = 0; k < cols; k++) wr[k] = scale[0] * (float)codes[k];
            continue;
        }
        const uint8_t *bytes = q->q4 + (size_t)r * cols / 2;
        int width = cols / G;
        for (int g = 0; g < G; g++) {
            float s = scale[g], zero = (float)llm_qlinear_zero(q, r, g);
            for (int k = g * width; k < (g + 1) * width; k += 2) {
                uint8_t b = bytes[k / 2];
                wr[k] = s * ((float)(b & 15) - zero);
                wr[k + 1] = s * ((float)(b >> 4) - zero);
            }
        }
    }
}

void llm_dequantize(const llm_qlinear *q, float *w) { llm_dequantize_rows(q, 0, q->rows, w); }

double llm_sqnr_db(const float *w, const float *w_hat, size_t n)
{
    double sig = 0, noise = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)w[i] - (double)w_hat[i];
        sig += (double)w[i] * w[i];
        noise += d * d;
    }
    return noise > 0 ? 10.0 * log10(sig / noise) : INFINITY;
}
