/* qmatmul — matrix products with quantized weights (quant.h), for decoding.
 *
 *   Y[m, r] = sum_k X[m, k] * W[r, k]       X float [M, cols], W quantized
 *
 * Integer dot products, as llama.cpp's Q8_0 does: each row of X is quantized
 * to int8 in blocks of LLM_QBLOCK (32) values, one step per block
 * d_b = max|x_b| / 127 (w8a8: the weight's static act_scale for every block,
 * values beyond ±127 steps clipped), and each block's integer dot product
 * with the weight codes (int4: the codes less their zero point, -15..15) is
 * scaled back by d_b and the weight's scale.  So int8 and int4 (W8A16/W4A16
 * in storage) differ from the float product of the dequantized weights by
 * the activation rounding only:
 *
 *   |Y[m,r] - sum_k X[m,k] Ŵ[r,k]| <= sum_k |Ŵ[r,k]| d_b(k) / 2  (+ float rounding)
 *
 * which tests/unit/test_qmatmul.c checks against a double-precision product.
 * The kernels use AVX2 when the CPU has it (maddubs/madd; for a few rows
 * of X, 4 weight rows per pass over X, int4 a pair of blocks per 32-byte
 * load, its low nibbles against X's evens and its high ones against the
 * odds; from 16 rows of X on, a blocked product: tiles of 4 weight rows by 2 rows of X,
 * int4 codes unpacked once per tile into a small buffer and shared by all
 * the rows of X), and portable C otherwise; both quantize X to the same
 * codes and take the same integer sums, and sum the floats in different
 * orders.  The AVX2 kernels give a row of Y the same bits whichever of
 * them computes it and however many rows of X come with it, so decode and
 * prefill agree.  The weights are read as quant.h stores them: no other
 * layout.
 *
 * A decode step quantizes each input once (llm_qact) and shares it among
 * its threads and among the products that read the same input; a caller
 * with float X alone has X quantized inside the call:
 *
 *     #pragma omp single
 *     llm_qact_quantize(&xq, w, X, M);              // after llm_qact_reserve
 *     // (the single's barrier)  each thread its own rows:
 *     llm_qlinear_rows_q(w, &xq, Y, ldy, r0, r1);
 *
 *     if (llm_qlinear_rows(w, X, M, Y, ldy, r0, r1) < 0) ...   // X quantized here
 *     LLM_TRY(llm_qlinear_matmul(w, X, M, Y, ldy, &err));  // whole product, threaded here
 */
#ifndef LLM_QMATMUL_H
#define LLM_QMATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "quant.h"

/* X [M, cols] quantized for the kernels of one kind of weight: the codes'
 * order (int4: each pair of blocks' evens, then its odds, as the nibbles
 * of a pair of weight blocks hold them) and the step (a step per block, or
 * w8a8's fixed one) depend on the weight's format; any weight of the same
 * width and kind can use it (llm_qact_fits).  Blocks go in pairs, a last,
 * odd one with a block of zeros (step 0). */
typedef struct llm_qact {
    int M, cols, nb;  /* rows, width, blocks per row (the last may be partial) */
    int split;        /* 1: int4's order and the int4 kernels' per-pair extras */
    float step;       /* 0: a step per block, max|x_b| / 127; else this fixed step */
    int8_t *q;        /* [M, pairs * 64] the codes, a partial block padded with 0 */
    float *dv;        /* int4: [M, pairs * 8] each pair's two steps, 4 lanes each */
    int16_t *x8;      /* int4: [M, pairs * 16] 8 x the sums of adjacent codes over a pair's
                       * evens and odds: what the symmetric zero point 8 takes away */
    float *d;         /* [M, pairs * 2] the steps */
    void *mem;        /* where q, dv, x8 and d lie: cap bytes */
    size_t cap;
    void *heap;       /* what llm_qact_reserve allocated (mem), or NULL */
} llm_qact;

/* Room for M rows of cols values (keeping nothing): 0 or LLM_ERR_NOMEM, no
 * message (the caller says what it was for).  llm_qact_free releases it. */
int llm_qact_reserve(llm_qact *a, int M, int cols);
void llm_qact_free(llm_qact *a);
/* 1 when a has room for M rows of cols values. */
int llm_qact_room(const llm_qact *a, int M, int cols);
/* X [M, cols = w->cols] quantized for w's kernels into a (reserved for at
 * least M rows of that width).  Single-threaded. */
void llm_qact_quantize(llm_qact *a, const llm_qlinear *w, const float *X, int M);
/* The same in portable C whatever the CPU (the same codes and steps). */
void llm_qact_quantize_portable(llm_qact *a, const llm_qlinear *w, const float *X, int M);
/* 1 when a, quantized for some weight, suits w's kernels too. */
int llm_qact_fits(const llm_qact *a, const llm_qlinear *w);

/* Y[m * ldy + r] = sum_k X[m, k] * W[r, k] for rows r0 <= r < r1, X as a
 * holds it (quantized for w: llm_qact_fits).  Needs no memory; starts no
 * threads.  A row's result does not depend on the range it is computed in. */
void llm_qlinear_rows_q(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1);

/* The same from float X [M, cols], quantized here.  Safe to call from
 * inside an OpenMP parallel region (each thread its own row range): it
 * starts no parallel region itself.  Returns 0, or LLM_ERR_NOMEM when rows wider than 32768 values (quantized on
 * the heap, not the stack) find no memory; then Y is not written.  No
 * message: the threads of a region may fail at once, and their caller says
 * what failed. */
int llm_qlinear_rows(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0, int r1);

/* The whole product, its rows split among the OpenMP threads; 16 rows of
 * X or more are quantized once, by the threads together, on the heap (or,
 * without memory for that, by each thread as llm_qlinear_rows does: the
 * same Y).  0, or LLM_ERR_NOMEM with err (may be NULL) saying so. */
int llm_qlinear_matmul(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, llm_error *err);

/* llm_qlinear_rows with the portable C quantizer and kernels whatever the
 * CPU: what runs where the CPU has no AVX2, for the tests to compare with
 * the AVX2 ones. */
int llm_qlinear_rows_portable(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0,
                              int r1);

/* 1 when this CPU has AVX2 and FMA, so llm_qlinear_rows runs the AVX2 kernels. */
int llm_qmatmul_avx2(void);

#endif
