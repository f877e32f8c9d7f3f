/* matvec — the matrix products of decoding: a few rows of activations
 * against a large weight matrix, each weight row read once for all of them.
 *
 * At decode time a step multiplies one activation row per sequence (M of
 * them, M small) by every weight matrix; the time is the time to stream the
 * weights from memory.  sgemm and sgemv are built for other shapes: sgemv
 * reads the weights once per activation row, and both start their own
 * threads per call.  Here the caller splits the output rows among the threads
 * it already runs (one OpenMP region per decode step), and each weight row,
 * once loaded, is multiplied with all M activation rows while it sits in L1.
 *
 *     // inside `#pragma omp parallel`, rows [r0, r1) of this thread:
 *     llm_matvec_rows(w, in, x, M, ldx, y, ldy, r0, r1, 0.0f);
 *
 * W is [out, in] row-major (as every weight in model.h); x is [M, in] with
 * row stride ldx; y is [M, out] with row stride ldy.
 */
#ifndef LLM_MATVEC_H
#define LLM_MATVEC_H

/* y[m, r] = beta * y[m, r] + sum_k W[r, k] x[m, k] for r0 <= r < r1, m < M.
 * beta is 0 (y is overwritten, never read) or 1 (added to: a residual).
 * Single-threaded: uses AVX2 and FMA when the CPU has them. */
void llm_matvec_rows(const float *w, int in, const float *x, int M, int ldx, float *y, int ldy,
                     int r0, int r1, float beta);

/* The same in portable C (what runs without AVX2), for the tests. */
void llm_matvec_rows_portable(const float *w, int in, const float *x, int M, int ldx, float *y,
                              int ldy, int r0, int r1, float beta);

/* Thread t of n's share [*r0, *r1) of out rows: contiguous, in multiples of 4
 * rows (the quantized kernels' tiles, qmatmul.h; the batched float kernel's
 * blocks of 3 leave a tail of at most 2 rows per thread), covering 0..out-1. */
void llm_matvec_split(int out, int t, int n, int *r0, int *r1);

#endif
