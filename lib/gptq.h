/* gptq — GPTQ (Frantar et al., 2022): quantize a linear layer's weights one
 * input column at a time, moving each column's rounding error onto the
 * columns not yet quantized so that the layer's OUTPUT on the calibration
 * activations changes least.
 *
 * The layer's inputs enter only through H = 2 XᵀX / n (the Hessian of the
 * squared output error), accumulated record by record as activations stream
 * in (llm_hessian_add), so a layer's activations are never held at once.
 * Then, with H dampened by damp * mean(diag H) on its diagonal and U the
 * upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU, through LAPACK's dpotrf/dpotri):
 *
 *   for each column j (in order, or by decreasing H_jj with act_order):
 *       q_j = quantize(w_j)                    the format's grid (quant.h)
 *       e_j = (w_j - q_j) / U_jj
 *       w_k -= e_j U_jk   for the later columns k of this block;
 *   and after each block of `block` columns, the later columns all at once:
 *       W[:, after] -= E_block U[block, after]          (one sgemm)
 *
 * An int4 group's scale and zero are computed from its current (already
 * updated) weights when its first column is reached; with act_order the
 * columns are visited out of order, so the group's parameters are fixed from
 * the original weights first ("static groups"), which keeps the file layout
 * of contiguous groups.  Columns whose H_jj is 0 (inputs that were always 0)
 * are quantized as zeros.
 *
 *     llm_hessian h;
 *     LLM_TRY(llm_hessian_init(&h, cols, &err));
 *     LLM_TRY(llm_hessian_add(&h, x, n, &err));          // per record x [n, cols]
 *     LLM_TRY(llm_gptq(w, rows, cols, &h, &fmt, &opts, &q, &err));
 */
#ifndef LLM_GPTQ_H
#define LLM_GPTQ_H

#include <stdint.h>

#include "err.h"
#include "quant.h"

typedef struct llm_hessian {
    int n;          /* the input width */
    int64_t count;  /* activation rows added */
    float *sum;     /* [n, n] sum of x xᵀ (upper triangle, row-major; the rest unused) */
} llm_hessian;

int llm_hessian_init(llm_hessian *h, int n, llm_error *err);
void llm_hessian_free(llm_hessian *h);
/* Rows one llm_hessian_add takes (BLAS counts them in an int). */
#define LLM_HESSIAN_MAX_ROWS (1 << 30)
/* Adds rows x [rows, n] (rows <= LLM_HESSIAN_MAX_ROWS): sum += xᵀx. */
int llm_hessian_add(llm_hessian *h, const float *x, int64_t rows, llm_error *err);
/* The statistics of inputs x * s (column j scaled by s[j]): sum_ij *= s_i s_j. */
void llm_hessian_scale(llm_hessian *h, const float *s);
/* Mean over the rows of ||d x||^2 for each row d of D [rows, n], summed over
 * D's rows, into *energy: the mean squared output of D on the activations
 * (D = W - Ŵ: the output error; D = W: the output's energy).  0, or
 * LLM_ERR_NOMEM (it takes rows x n floats of scratch). */
int llm_hessian_energy(const llm_hessian *h, const float *d, int rows, double *energy, llm_error *err);

typedef struct llm_gptq_opts {
    double damp;   /* fraction of the mean diagonal added to it (0.01) */
    int block;     /* columns per lazy batch update (128) */
    int act_order; /* 1: columns by decreasing H_jj */
} llm_gptq_opts;

/* Quantizes w [rows, cols] (left unchanged) with the statistics h (h->n ==
 * cols, h->count > 0) into *q (allocated here). */
int llm_gptq(const float *w, int rows, int cols, const llm_hessian *h, const llm_qformat *f,
             const llm_gptq_opts *o, llm_qlinear *q, llm_error *err);

#endif
