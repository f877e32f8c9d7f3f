/* gguf_blocks — decoding ggml's block formats, and Q4_0 <-> our int4 (the
 * layouts are in gguf_blocks.h).  Each decoder takes its products in the
 * order ggml's reference dequantize_row_* does, so the floats are the same. */
#include "gguf_blocks.h"

#include <string.h>

#include "gguf.h"
#include "tensor.h"

#define QK_K 256

static float half(const unsigned char *p)
{
    return llm_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static void decode_q8_0(const unsigned char *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

static void decode_q4_0(const unsigned char *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 0xf) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void decode_q4_1(const unsigned char *b, float *y)
{
    float d = half(b), m = half(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b[4 + j] & 0xf) * d + m;
        y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
    }
}

/* scales[16] qs[64] d dmin: 16 groups of 16, 2-bit codes, 4-bit scale and min per group */
static void decode_q2_k(const unsigned char *b, float *y)
{
    const unsigned char *sc = b, *q = b + 16;
    float d = half(b + 80), dmin = half(b + 82);
    int is = 0;
    for (int n = 0; n < QK_K; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int half_ = 0; half_ < 2; half_++, is++) {
                float dl = d * (float)(sc[is] & 0xf), ml = dmin * (float)(sc[is] >> 4);
                for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16 * half_] >> shift) & 3) - ml;
            }
}

/* hmask[32] qs[64] scales[12] d: 3-bit codes (two low bits in qs, the high
 * one in hmask, clear meaning -4), 16 signed 6-bit scales (low four bits in
 * scales[0..7], the top two in scales[8..11]) */
static void decode_q3_k(const unsigned char *b, float *y)
{
    const unsigned char *hm = b, *q = b + 32, *s = b + 96;
    float d = half(b + 108);
    int is = 0;
    unsigned m = 1;
    for (int n = 0; n < QK_K; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            for (int half_ = 0; half_ < 2; half_++, is++) {
                int lo = is < 8 ? s[is] & 0xf : s[is - 8] >> 4, hi = (s[8 + is % 4] >> (2 * (is / 4))) & 3;
                float dl = d * (float)((lo | hi << 4) - 32);
                for (int l = 16 * half_; l < 16 * half_ + 16; l++)
                    *y++ = dl * (float)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            }
}

/* The 6-bit scale and min of group j of a Q4_K / Q5_K block's scales[12]. */
static void scale_min_k4(int j, const unsigned char *s, int *sc, int *mn)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* d dmin scales[12] [qh[32]] qs[128]: 8 groups of 32, codes of 4 bits (Q4_K)
 * or 5 (Q5_K: the fifth bit of group g in bit g of qh) */
static void decode_q45_k(const unsigned char *b, float *y, int five)
{
    float d = half(b), dmin = half(b + 2);
    const unsigned char *s = b + 4, *qh = b + 16, *ql = b + (five ? 48 : 16);
    for (int g = 0; g < 8; g++) {
        int sc, mn;
        scale_min_k4(g, s, &sc, &mn);
        float dl = d * (float)sc, ml = dmin * (float)mn;
        const unsigned char *q = ql + 32 * (g / 2);
        for (int l = 0; l < 32; l++) {
            int v = g % 2 ? q[l] >> 4 : q[l] & 0xf;
            if (five && (qh[l] >> g & 1)) v += 16;
            *y++ = dl * (float)v - ml;
        }
    }
}

/* ql[128] qh[64] scales[16] d: 6-bit codes - 32, a signed 8-bit scale per 16 */
static void decode_q6_k(const unsigned char *b, float *y)
{
    const unsigned char *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = half(b + 208);
    for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xf) | ((qh[l] >> 0 & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xf) | ((qh[l] >> 2 & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
}

int llm_gguf_decodable(int type)
{
    switch (type) {
    case LLM_GGML_F32: case LLM_GGML_F16: case LLM_GGML_BF16: case LLM_GGML_Q8_0: case LLM_GGML_Q4_0:
    case LLM_GGML_Q4_1: case LLM_GGML_Q2_K: case LLM_GGML_Q3_K: case LLM_GGML_Q4_K: case LLM_GGML_Q5_K:
    case LLM_GGML_Q6_K:
        return 1;
    }
    return 0;
}

void llm_gguf_decode(int type, const void *src, int64_t n, float *dst)
{
    const unsigned char *b = src;
    int block, bytes;
    llm_gguf_type_size(type, &block, &bytes);
    if (type == LLM_GGML_F32) {
        memcpy(dst, src, (size_t)n * 4); /* little-endian hosts */
        return;
    }
    for (int64_t i = 0; i < n / block; i++, b += bytes, dst += block) switch (type) {
        case LLM_GGML_F16: *dst = half(b); break;
        case LLM_GGML_BF16: *dst = llm_bf16_to_f32((uint16_t)(b[0] | b[1] << 8)); break;
        case LLM_GGML_Q8_0: decode_q8_0(b, dst); break;
        case LLM_GGML_Q4_0: decode_q4_0(b, dst); break;
        case LLM_GGML_Q4_1: decode_q4_1(b, dst); break;
        case LLM_GGML_Q2_K: decode_q2_k(b, dst); break;
        case LLM_GGML_Q3_K: decode_q3_k(b, dst); break;
        case LLM_GGML_Q4_K: decode_q45_k(b, dst, 0); break;
        case LLM_GGML_Q5_K: decode_q45_k(b, dst, 1); break;
        case LLM_GGML_Q6_K: decode_q6_k(b, dst); break;
        }
}

void llm_gguf_q4_0_to_int4(const void *src, int64_t n, uint8_t *codes, float *scales)
{
    const unsigned char *b = src;
    for (int64_t i = 0; i < n; i++, b += 18, codes += 16) {
        scales[i] = half(b);
        for (int j = 0; j < 16; j++) { /* elements 2j, 2j+1 of 32 */
            int e0 = 2 * j, e1 = 2 * j + 1;
            int u0 = e0 < 16 ? b[2 + e0] & 0xf : b[2 + e0 - 16] >> 4;
            int u1 = e1 < 16 ? b[2 + e1] & 0xf : b[2 + e1 - 16] >> 4;
            codes[j] = (uint8_t)(u0 | u1 << 4);
        }
    }
}

void llm_gguf_int4_to_q4_0(const uint8_t *codes, const float *scales, int64_t n, void *dst)
{
    unsigned char *b = dst;
    for (int64_t i = 0; i < n; i++, b += 18, codes += 16) {
        uint16_t h = llm_f32_to_f16(scales[i]);
        b[0] = (unsigned char)(h & 0xff), b[1] = (unsigned char)(h >> 8);
        for (int j = 0; j < 16; j++) { /* elements j and j + 16 */
            int lo = codes[j / 2] >> (4 * (j & 1)) & 0xf, hi = codes[(j + 16) / 2] >> (4 * (j & 1)) & 0xf;
            b[2 + j] = (unsigned char)(lo | hi << 4);
        }
    }
}

int llm_gguf_f16_exact(float f)
{
    float back = llm_f16_to_f32(llm_f32_to_f16(f));
    return memcmp(&back, &f, sizeof f) == 0;
}

void llm_gguf_encode_float(int type, const float *src, int64_t n, void *dst)
{
    unsigned char *b = dst;
    if (type == LLM_GGML_F32) {
        memcpy(dst, src, (size_t)n * 4);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = type == LLM_GGML_F16 ? llm_f32_to_f16(src[i]) : llm_f32_to_bf16(src[i]);
        b[2 * i] = (unsigned char)(h & 0xff), b[2 * i + 1] = (unsigned char)(h >> 8);
    }
}
