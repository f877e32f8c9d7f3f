/* lora — the arithmetic of a low-rank adapter on one linear layer.
 *
 * A frozen linear y = x W^T (W [out, in]) gets a trainable low-rank update
 * (Hu et al., LoRA):
 *
 *     y = x W^T + s (x A^T) B^T,      A [R, in], B [out, R], s = alpha / R
 *
 * B starts at zero, so the adapted model starts as the base.  The forward
 * step keeps u = x A^T [n, R] for the backward step, which, given dy [n, out]:
 *
 *     du = s dy B            [n, R]
 *     dB += s dy^T u         [out, R]
 *     dA += du^T x           [R, in]
 *     dx += du A             [n, in]
 *
 * The input gradient is a separate call because a caller may have to
 * overwrite x (the backward pass reuses buffers) between the two.  Merging
 * folds the update into the weights: W += s B A.  Every product is a
 * cblas_sgemm.  Rows are contiguous (stride in, out or R).
 */
#ifndef LLM_LORA_H
#define LLM_LORA_H

/* u [n, R] = x A^T;  y [n, out] += s u B^T */
void llm_lora_forward(const float *a, const float *b, int rank, int in, int out, float scale,
                      const float *x, int n, float *u, float *y);

/* du [n, R] = s dy B; ga [R, in] += du^T x; gb [out, R] += s dy^T u.  ga and
 * gb may be NULL (a frozen adapter: only du, for the input gradient). */
void llm_lora_backward_weights(const float *b, int rank, int in, int out, float scale,
                               const float *x, const float *u, const float *dy, int n, float *du,
                               float *ga, float *gb);

/* dx [n, in] += du A */
void llm_lora_backward_input(const float *a, int rank, int in, const float *du, int n, float *dx);

/* The most rank llm_lora_rows takes (its scratch lives on the stack). */
#define LLM_LORA_MAX_RANK 256

/* y[i, j] += s (x_i A^T) B_j^T for n rows x (stride ldx) and output columns
 * r0 <= j < r1 only (y stride ldy): inference, where each thread adds to the
 * output rows of the weight it computed.  Single-threaded plain loops;
 * rank <= LLM_LORA_MAX_RANK. */
void llm_lora_rows(const float *a, const float *b, int rank, int in, float scale, const float *x,
                   int n, int ldx, float *y, int ldy, int r0, int r1);

/* W [out, in] += s B A: the adapter folded into its layer. */
void llm_lora_merge(const float *a, const float *b, int rank, int in, int out, float scale, float *w);

#endif
