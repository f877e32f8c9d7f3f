/* model_internal — pieces of the forward pass that grad.c (the backward pass)
 * and later the inference code share with model.c.  Not for bin/. */
#ifndef LLM_MODEL_INTERNAL_H
#define LLM_MODEL_INTERNAL_H

#include "model.h"

/* Loops with fewer elements than this run on one thread: waking a sleeping
 * OpenMP team costs tens of microseconds, more than such a loop takes (a
 * decode step has dozens of them per token). */
#define LLM_PARALLEL_MIN 32768

/* y[i] = x[i] / rms(x[i]) * g for n rows of d; inv_rms (may be NULL) gets 1/rms. */
void llm_rmsnorm(const float *x, const float *g, float *y, float *inv_rms, int n, int d, float eps);
/* The same with 1/rms already known. */
void llm_rmsnorm_apply(const float *x, const float *g, const float *inv_rms, float *y, int n, int d);
float llm_silu(float z);
/* y [n, out] = x [n, in] . w^T (w [out, in]) + beta * y, through cblas_sgemm. */
void llm_matmul_nt(const float *x, const float *w, float *y, int n, int out, int in, float beta);
/* The linear of quantized slot `slot` (quant.h: 7l + i, 7L the classifier)
 * applied to x [n, in]: y [n, out] = x . W^T + beta * y, W the float view w,
 * or for a quantized linear its dequantized rows, LLM_QROWS at a time in
 * a->qscratch, each block one sgemm. */
void llm_linear_forward(const llm_model *m, llm_acts *a, int slot, const float *x, const float *w,
                        float *y, int n, int out, int in, float beta);
/* Its input gradient: dx [n, in] = dy [n, out] . W + beta * dx, the same way. */
void llm_linear_input_grad(const llm_model *m, llm_acts *a, int slot, const float *dy, const float *w,
                           float *dx, int n, int out, int in, float beta);
/* Attention over every (sequence, head) of q [B*T, H*E], k, v [B*T, K*E]. */
void llm_attention_forward(const llm_model *m, const float *q, const float *k, const float *v,
                           float *att, float *lse, int B, int T);

#endif
