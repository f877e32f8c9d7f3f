/* attn — causal self-attention for one head, computed as FlashAttention does.
 *
 * The forward pass walks the queries in blocks of rows and the keys/values in
 * blocks of columns, keeping for each query row a running maximum and running
 * sum of exp(score - max) and rescaling the partial output whenever the
 * maximum grows (the online softmax).  The T x T score matrix is never formed;
 * only the log-sum-exp of each row is kept for the backward pass, which
 * recomputes the probabilities block by block.  Blocks wholly above the causal
 * diagonal, or wholly outside the sliding window, are skipped.
 *
 *     llm_attn_shape s = {.n_q = T, .n_kv = T, .head_dim = 64, .scale = 0.125f};
 *     llm_attn_forward(&s, q, ldq, k, v, ldkv, out, ldo, lse);        // out, lse: [T, d], [T]
 *     llm_attn_backward(&s, q, ldq, k, v, ldkv, out, dout, ldo, lse,
 *                       dq, dk, dv);                                   // dq =, dk/dv +=
 *
 * Dimension letters: Tq queries, Tk keys, d head size.  Matrices are row-major
 * with a row stride ("ld"), so one head of a [tokens, heads * d] activation is
 * used in place.  The functions are single-threaded: callers run heads in
 * parallel.
 */
#ifndef LLM_ATTN_H
#define LLM_ATTN_H

#include "err.h"

typedef struct llm_attn_shape {
    int n_q;      /* Tq: query rows */
    int n_kv;     /* Tk: key/value rows */
    int q_pos0;   /* absolute position of query 0; keys sit at 0..Tk-1.  Query i
                   * sees key j when j <= q_pos0 + i (causal) and, with a window,
                   * j > q_pos0 + i - window.  Training: 0 with Tq = Tk. */
    int head_dim; /* d */
    int window;   /* 0: full causal attention; W > 0: the last W positions only */
    float scale;  /* multiplies q.k, usually 1/sqrt(d) */
} llm_attn_shape;

/* out [Tq, d] (row stride ldo) = softmax(scale * q k^T + mask) v for q [Tq, d]
 * (stride ldq), k and v [Tk, d] (stride ldkv); lse [Tq] gets each row's
 * log-sum-exp of the scaled, masked scores (natural log).  A row that sees no
 * key gets a zero output and lse = -inf. */
void llm_attn_forward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                      const float *v, int ldkv, float *out, int ldo, float *lse);

/* Gradients of the forward pass given dout [Tq, d] (stride ldo, like out):
 * dq [Tq, d] (stride ldq) is overwritten; dk and dv [Tk, d] (stride ldkv) are
 * added to, so heads that share keys and values (grouped-query attention)
 * accumulate into one buffer.  out and lse are the forward pass's results. */
void llm_attn_backward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                       const float *v, int ldkv, const float *out, const float *dout, int ldo,
                       const float *lse, float *dq, float *dk, float *dv);

/* The forward pass for one query row (s->n_q == 1, decoding), without the
 * tiling: the visible scores into scores [Tk] (caller's scratch), their
 * softmax, and out [d] = the weighted sum of v's rows.  Returns the row's
 * log-sum-exp, as llm_attn_forward would put in lse. */
float llm_attn_one_query(const llm_attn_shape *s, const float *q, const float *k,
                         const float *v, int ldkv, float *out, float *scores);

/* The attention probabilities themselves: P [Tq, Tk] (row-major, caller's
 * buffer) = softmax(scale * q k^T + mask), masked entries 0, and lse [Tq] when
 * not NULL.  For looking at attention (llm-gen --dump-attn) and for the
 * textbook functions below. */
void llm_attn_probs(const llm_attn_shape *s, const float *q, int ldq, const float *k, int ldkv,
                    float *P, float *lse);

/* The same two functions computed the textbook way, forming the full Tq x Tk
 * probability matrix: the reference the tests and benchmarks compare with.
 * They allocate Tq*Tk floats; they return 0, or LLM_ERR_NOMEM when that
 * fails, with err (may be NULL) saying how much they asked for. */
int llm_attn_naive_forward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                           const float *v, int ldkv, float *out, int ldo, float *lse, llm_error *err);
int llm_attn_naive_backward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                            const float *v, int ldkv, const float *out, const float *dout,
                            int ldo, const float *lse, float *dq, float *dk, float *dv,
                            llm_error *err);

#endif
