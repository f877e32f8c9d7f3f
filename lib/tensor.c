/* tensor — dtype table, checked shape arithmetic, half-precision conversions. */
#include "tensor.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int bits;
    int is_float;
} dtype_table[LLM_DTYPE_COUNT] = {
    [LLM_DTYPE_F32] = {"f32", 32, 1},  [LLM_DTYPE_F16] = {"f16", 16, 1},
    [LLM_DTYPE_BF16] = {"bf16", 16, 1}, [LLM_DTYPE_I8] = {"i8", 8, 0},
    [LLM_DTYPE_U8] = {"u8", 8, 0},     [LLM_DTYPE_I32] = {"i32", 32, 0},
    [LLM_DTYPE_I64] = {"i64", 64, 0},  [LLM_DTYPE_I4] = {"i4", 4, 0},
    [LLM_DTYPE_U4] = {"u4", 4, 0},     [LLM_DTYPE_F64] = {"f64", 64, 1},
};

const char *llm_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < LLM_DTYPE_COUNT ? dtype_table[dtype].name : NULL;
}

int llm_dtype_bits(int dtype)
{
    return dtype >= 0 && dtype < LLM_DTYPE_COUNT ? dtype_table[dtype].bits : 0;
}

int llm_dtype_is_float(int dtype)
{
    return dtype >= 0 && dtype < LLM_DTYPE_COUNT && dtype_table[dtype].is_float;
}

llm_shape llm_shape_make(int ndim, const int64_t *dims)
{
    llm_shape s = {0};
    s.ndim = ndim;
    for (int i = 0; i < ndim && i < LLM_MAX_DIMS; i++) s.dim[i] = dims[i];
    return s;
}

/* ndim and every dimension against the limits; 0 or LLM_ERR_LIMIT. */
static int shape_check(const llm_shape *s, llm_error *err)
{
    if (s->ndim < 0 || s->ndim > LLM_MAX_DIMS)
        return llm_error_set(err, LLM_ERR_LIMIT, "%d dimensions (at most %d)", s->ndim,
                             LLM_MAX_DIMS);
    for (int i = 0; i < s->ndim; i++)
        if (s->dim[i] < 0 || s->dim[i] > LLM_MAX_DIM)
            return llm_error_set(err, LLM_ERR_LIMIT, "dimension %d is %lld (limit 2^48)", i,
                                 (long long)s->dim[i]);
    return 0;
}

int64_t llm_shape_numel(const llm_shape *s)
{
    uint64_t bytes;
    if (llm_payload_bytes(LLM_DTYPE_I8, s, &bytes, NULL) < 0) return -1;
    return (int64_t)bytes;
}

char *llm_shape_format(const llm_shape *s, char *buf, size_t size)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "", (long long)s->dim[i]);
    if (at < size) snprintf(buf + at, size - at, "]");
    return buf;
}

int llm_payload_bytes(int dtype, const llm_shape *s, uint64_t *nbytes, llm_error *err)
{
    int bits = llm_dtype_bits(dtype);
    if (!bits) return llm_error_set(err, LLM_ERR_FORMAT, "unknown dtype code %d", dtype);
    LLM_TRY(shape_check(s, err));
    uint64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        uint64_t d = (uint64_t)s->dim[i];
        if (d && n > LLM_MAX_BYTES / d)
            return llm_error_set(err, LLM_ERR_LIMIT, "shape has more than 2^62 elements");
        n *= d;
    }
    uint64_t bytes = bits == 4 ? (n + 1) / 2 : n;
    if (bits > 8 && bytes > LLM_MAX_BYTES / (uint64_t)(bits / 8))
        return llm_error_set(err, LLM_ERR_LIMIT, "payload over 2^62 bytes");
    if (bits > 8) bytes *= (uint64_t)(bits / 8);
    *nbytes = bytes;
    return 0;
}

void llm_tensor_free(llm_tensor *t)
{
    if (!t) return;
    if (t->owned) free(t->data);
    memset(t, 0, sizeof *t);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float llm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf, nan */
    if (exp == 0) {                                                     /* zero, subnormal */
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t llm_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t exp = (u >> 23) & 0xff, man = u & 0x7fffff;
    if (exp == 0xff) return sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 31) return sign | 0x7c00;
    if (e <= 0) { /* subnormal half, or zero */
        if (e < -10) return sign;
        uint32_t m = man | 0x800000;
        int shift = 14 - e;
        uint32_t half = m >> shift, rest = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++; /* may carry into inf */
    return sign | (uint16_t)half;
}

float llm_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

uint16_t llm_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void llm_dtype_to_f64(int dtype, const void *src, size_t n, double *dst)
{
    const unsigned char *b = src;
    for (size_t i = 0; i < n; i++) {
        switch (dtype) {
        case LLM_DTYPE_F32: { float v; memcpy(&v, b + 4 * i, 4); dst[i] = v; break; }
        case LLM_DTYPE_F64: memcpy(&dst[i], b + 8 * i, 8); break;
        case LLM_DTYPE_F16: dst[i] = llm_f16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8)); break;
        case LLM_DTYPE_BF16: dst[i] = llm_bf16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8)); break;
        case LLM_DTYPE_I8: dst[i] = (int8_t)b[i]; break;
        case LLM_DTYPE_U8: dst[i] = b[i]; break;
        case LLM_DTYPE_I32: { int32_t v; memcpy(&v, b + 4 * i, 4); dst[i] = v; break; }
        case LLM_DTYPE_I64: { int64_t v; memcpy(&v, b + 8 * i, 8); dst[i] = (double)v; break; }
        case LLM_DTYPE_U4: dst[i] = (b[i / 2] >> (4 * (i & 1))) & 0xf; break;
        case LLM_DTYPE_I4: {
            int v = (b[i / 2] >> (4 * (i & 1))) & 0xf;
            dst[i] = v >= 8 ? v - 16 : v;
            break;
        }
        default: dst[i] = NAN;
        }
    }
}

llm_dtype llm_dtype_widened(llm_dtype dtype)
{
    switch (dtype) {
    case LLM_DTYPE_BF16: return LLM_DTYPE_F32;
    case LLM_DTYPE_I4: return LLM_DTYPE_I8;
    case LLM_DTYPE_U4: return LLM_DTYPE_U8;
    default: return dtype;
    }
}

void llm_dtype_widen(llm_dtype from, const void *src, size_t n, void *dst)
{
    const unsigned char *b = src;
    switch (from) {
    case LLM_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            float v = llm_bf16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
            memcpy((char *)dst + 4 * i, &v, 4);
        }
        break;
    case LLM_DTYPE_I4:
    case LLM_DTYPE_U4:
        for (size_t i = 0; i < n; i++) {
            int v = (b[i / 2] >> (4 * (i & 1))) & 0xf;
            ((unsigned char *)dst)[i] = (unsigned char)(from == LLM_DTYPE_I4 && v >= 8 ? v - 16 : v);
        }
        break;
    default: {
        uint64_t bytes = 0;
        llm_shape s = llm_shape_make(1, (int64_t[]){(int64_t)n});
        llm_payload_bytes(from, &s, &bytes, NULL);
        memcpy(dst, src, (size_t)bytes);
    }
    }
}

int64_t llm_f32_find_nonfinite(const float *x, int64_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = 0; i < n; i++) bad |= !(fabsf(x[i]) <= FLT_MAX); /* NaN compares false */
    if (!bad) return -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}
