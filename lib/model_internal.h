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
/* Attention over every (sequence, head) of q [B*T, H*E], k, v [B*T, K*E]. */
void llm_attention_forward(const llm_model *m, const float *q, const float *k, const float *v,
                           float *att, float *lse, int B, int T);

#endif
