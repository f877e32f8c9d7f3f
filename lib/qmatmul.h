/* qmatmul — matrix products with quantized weights (quant.h), for decoding.
 *
 *   Y[m, r] = sum_k X[m, k] * W[r, k]       X float [M, cols], W quantized
 *
 * Integer dot products, as llama.cpp's Q8_0 does: each row of X is quantized
 * on the fly to int8 in blocks of LLM_QBLOCK (32) values, one step per block
 * d_b = max|x_b| / 127 (w8a8: the weight's static act_scale for every block,
 * values beyond ±127 steps clipped), and each block's integer dot product
 * with the weight codes is scaled back by d_b and the weight's scale.  So
 * int8 and int4 (W8A16/W4A16 in storage) differ from the float product of
 * the dequantized weights by the activation rounding only:
 *
 *   |Y[m,r] - sum_k X[m,k] Ŵ[r,k]| <= sum_k |Ŵ[r,k]| d_b(k) / 2  (+ float rounding)
 *
 * which tests/unit/test_qmatmul.c checks against a double-precision product.
 * The kernels use AVX2 (maddubs/madd) when the CPU has it, and portable C
 * otherwise; both give the same integer sums.
 *
 *     #pragma omp parallel
 *     {   // each thread its own rows
 *         if (llm_qlinear_rows(w, X, M, Y, ldy, r0, r1) < 0) ...   // out of memory
 *     }
 *     LLM_TRY(llm_qlinear_matmul(w, X, M, Y, ldy, &err));  // whole product, threaded here
 */
#ifndef LLM_QMATMUL_H
#define LLM_QMATMUL_H

#include "err.h"
#include "quant.h"

/* Y[m * ldy + r] = sum_k X[m, k] * W[r, k] for rows r0 <= r < r1 and all
 * m < M.  Safe to call from inside an OpenMP parallel region (each thread its
 * own row range): it starts no parallel region itself.  X is f32 [M, cols].
 * Returns 0, or LLM_ERR_NOMEM when rows wider than 32768 values (quantized on
 * the heap, not the stack) find no memory; then Y is not written.  No
 * message: the threads of a region may fail at once, and their caller says
 * what failed. */
int llm_qlinear_rows(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0, int r1);

/* The whole product, its rows split among the OpenMP threads.  0, or
 * LLM_ERR_NOMEM with err (may be NULL) saying so. */
int llm_qlinear_matmul(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, llm_error *err);

/* llm_qlinear_rows with the portable C kernels whatever the CPU: what runs
 * where the CPU has no AVX2, for the tests to compare with the AVX2 kernels. */
int llm_qlinear_rows_portable(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0,
                              int r1);

/* 1 when this CPU has AVX2 and FMA, so llm_qlinear_rows runs the AVX2 kernels. */
int llm_qmatmul_avx2(void);

#endif
