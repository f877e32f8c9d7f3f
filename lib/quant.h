/* quant — integer weight formats for the linear layers, and round-to-nearest.
 *
 * A quantized linear W [rows = out, cols = in] is integer codes and float
 * scales:
 *   int8  (W8A16)  codes q in -127..127, one scale per output row:
 *                  W[r,k] = scale[r] * q[r,k]            scale = max|W[r,:]| / 127
 *   int4  (W4A16)  codes u in 0..15, two per byte (low nibble first), a scale
 *                  (and a zero point) per group of `group` columns of a row:
 *                  W[r,k] = scale[r,g] * (u[r,k] - zero[r,g])       g = k / group
 *                  symmetric:  zero = 8, scale = max|w| / 7.5 over the group
 *                  asymmetric: the group's range [min(w,0), max(w,0)] in 15
 *                  steps, zero = round(-min / scale) (0..15), stored per group
 *   w8a8           int8 weights as above plus one static activation step
 *                  act_scale (from a calibration table): the input is
 *                  quantized per tensor, q_x = clamp(round(x / act_scale), ±127)
 * Round-to-nearest (RTN) puts every weight on its nearest code, so the error
 * is at most half a step: |W - Ŵ| <= scale / 2 (both int4 kinds: the range
 * holds min and max, and the zero's rounding moves its ends by at most half a
 * step).  GPTQ (gptq.h) chooses the codes differently, in the same format.
 * The matrix products on these formats are in qmatmul.h.
 *
 *     llm_qformat f = {.scheme = LLM_Q_INT4, .group = 128, .sym = 1};
 *     llm_qlinear q;
 *     LLM_TRY(llm_quantize_rtn(w, rows, cols, &f, &q, &err));
 *     llm_dequantize(&q, w_hat);                 // rows*cols floats
 *     llm_qlinear_free(&q);
 */
#ifndef LLM_QUANT_H
#define LLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum llm_qscheme {
    LLM_Q_NONE = 0,
    LLM_Q_INT8 = 1,
    LLM_Q_INT4 = 2,
    LLM_Q_W8A8 = 3,
} llm_qscheme;

/* The integer block of the kernels: int4 groups are multiples of it. */
#define LLM_QBLOCK 32

typedef struct llm_qformat {
    llm_qscheme scheme;
    int group; /* int4: columns per group (a multiple of LLM_QBLOCK dividing cols) */
    int sym;   /* int4: 1 symmetric (zero 8), 0 a zero point per group */
} llm_qformat;

typedef struct llm_qlinear {
    llm_qformat f;
    int rows, cols;
    int groups;       /* scales per row: 1 for int8 and w8a8, cols/group for int4 */
    int8_t *q8;       /* int8, w8a8: [rows, cols] */
    uint8_t *q4;      /* int4: [rows, cols/2], element 2i in the low nibble of byte i */
    float *scale;     /* [rows, groups] */
    uint8_t *zero;    /* int4 asymmetric: [rows, groups], 0..15; NULL otherwise */
    float act_scale;  /* w8a8: the input's quantization step; 0 otherwise */
} llm_qlinear;

/* "int8", "int4", "w8a8" (and "none"); llm_qscheme_parse returns -1 for others. */
const char *llm_qscheme_name(llm_qscheme s);
int llm_qscheme_parse(const char *name);

/* Checks a format against a width: the group of int4 divides cols and is a
 * multiple of LLM_QBLOCK; cols is even for int4. */
int llm_qformat_check(const llm_qformat *f, int cols, llm_error *err);

/* Allocates the codes and scales of a rows x cols linear (zeroed). */
int llm_qlinear_alloc(llm_qlinear *q, const llm_qformat *f, int rows, int cols, llm_error *err);
void llm_qlinear_free(llm_qlinear *q);

/* The scale and zero point of a group whose values lie in [lo, hi], for the
 * format f (int8: zero 0; int4 symmetric: zero 8).  A group of zeros gets
 * scale 1, so every code stays finite. */
void llm_qgroup_params(const llm_qformat *f, float lo, float hi, float *scale, int *zero);
/* The code nearest w, and the value a code stands for. */
int llm_qcode(const llm_qformat *f, float w, float scale, int zero);
static inline float llm_qvalue(int code, float scale, int zero) { return scale * (float)(code - zero); }

/* The code of element (r, k), and its zero point. */
int llm_qlinear_code(const llm_qlinear *q, int r, int k);
int llm_qlinear_zero(const llm_qlinear *q, int r, int g);
/* Stores a code (the caller has set the group's scale and zero). */
void llm_qlinear_set_code(llm_qlinear *q, int r, int k, int code);

/* Round-to-nearest quantization of W [rows, cols] into *q (allocated here). */
int llm_quantize_rtn(const float *w, int rows, int cols, const llm_qformat *f, llm_qlinear *q,
                     llm_error *err);

/* W_hat [rows, cols] = the values the codes stand for. */
void llm_dequantize(const llm_qlinear *q, float *w);
/* The same for rows [r0, r1) only: w [r1 - r0, cols]. */
void llm_dequantize_rows(const llm_qlinear *q, int r0, int r1, float *w);

/* Signal-to-quantization-noise ratio in dB: 10 log10(sum w^2 / sum (w - w_hat)^2)
 * (infinite when they are equal). */
double llm_sqnr_db(const float *w, const float *w_hat, size_t n);

#endif
