/* gguf_blocks — ggml's tensor encodings (the block formats of GGUF files) to
 * and from ours.
 *
 * Every encoding is a row of blocks; a block of B elements takes a fixed
 * number of bytes (gguf.h's llm_gguf_type_size).  The decoders turn whole
 * blocks into floats, as ggml's dequantize_row_* define them:
 *   F32, F16, BF16      one element each
 *   Q8_0  (32, 34 B)    f16 d, i8 q[32]:              x = d q
 *   Q4_0  (32, 18 B)    f16 d, u8 qs[16]:             x[j] = d (lo(qs[j]) - 8), x[j+16] = d (hi(qs[j]) - 8)
 *   Q4_1  (32, 20 B)    f16 d, f16 m, u8 qs[16]:      x[j] = d lo(qs[j]) + m, x[j+16] = d hi(qs[j]) + m
 *   Q2_K  (256, 84 B)   u8 scales[16], u8 qs[64], f16 d, f16 dmin: 16 groups of 16, x = d sc q - dmin m
 *   Q3_K  (256, 110 B)  u8 hmask[32], u8 qs[64], u8 scales[12], f16 d: 3-bit q - 4, 6-bit scales - 32
 *   Q4_K  (256, 144 B)  f16 d, f16 dmin, u8 scales[12], u8 qs[128]: 8 groups of 32, 6-bit scales and mins
 *   Q5_K  (256, 176 B)  as Q4_K plus u8 qh[32], the fifth bits
 *   Q6_K  (256, 210 B)  u8 ql[128], u8 qh[64], i8 scales[16], f16 d: x = d sc (q - 32)
 * (lo, hi: a byte's low and high nibble).
 *
 * Q4_0 is our symmetric int4 with groups of 32 (quant.h: W = scale (u - 8))
 * with the scale in f16: the codes convert both ways exactly, reordered
 * (ours hold element 2i in the low nibble of byte i).
 *
 *     float row[256];
 *     llm_gguf_decode(LLM_GGML_Q4_K, blocks, 256, row);    // one block
 */
#ifndef LLM_GGUF_BLOCKS_H
#define LLM_GGUF_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

/* 1 when llm_gguf_decode decodes type. */
int llm_gguf_decodable(int type);
/* Decodes n elements (a whole number of blocks) of type from src into dst. */
void llm_gguf_decode(int type, const void *src, int64_t n, float *dst);

/* Q4_0 blocks (n of them) to our int4 codes [32 n / 2 bytes] and scales [n];
 * and back.  llm_gguf_int4_to_q4_0 needs every scale exactly an f16
 * (llm_gguf_f16_exact). */
void llm_gguf_q4_0_to_int4(const void *src, int64_t n, uint8_t *codes, float *scales);
void llm_gguf_int4_to_q4_0(const uint8_t *codes, const float *scales, int64_t n, void *dst);
/* 1 when f is exactly an f16 value. */
int llm_gguf_f16_exact(float f);

/* Encodes n floats as F32, F16 or BF16 (round to nearest even) into dst. */
void llm_gguf_encode_float(int type, const float *src, int64_t n, void *dst);

#endif
