/* rope — rotary position embeddings (Su et al., RoFormer).
 *
 * Each head vector is split into pairs (x[2i], x[2i+1]), as in Meta's Llama
 * and llama2.c, and pair i at position p is rotated by the angle p * f_i with
 * f_i = theta^(-2i/d).  q.k then depends only on the distance between the two
 * positions.  The cos/sin table is computed once in double precision.  The
 * rotation is orthogonal, so its backward pass is the rotation by -angle.
 *
 *     llm_rope r;
 *     TRY(llm_rope_init(&r, 64, 2048, 10000.0, &err));    // head size, positions, base
 *     llm_rope_apply(&r, q, B * T, ld, n_heads, T, 0, 0); // row i at position i % T
 *     llm_rope_free(&r);
 */
#ifndef LLM_ROPE_H
#define LLM_ROPE_H

#include "err.h"

typedef struct llm_rope {
    int head_dim;  /* d, even */
    int max_pos;   /* positions 0..max_pos-1 */
    float *cos;    /* [max_pos, d/2] */
    float *sin;    /* [max_pos, d/2] */
} llm_rope;

int llm_rope_init(llm_rope *r, int head_dim, int max_pos, double theta, llm_error *err);
void llm_rope_free(llm_rope *r);

/* Rotates, in place, n_heads heads of d floats at the start of each of n_rows
 * rows of x (row stride ld floats).  Row i sits at position pos0 + i % T
 * (T = sequence length: rows are B sequences of T tokens); positions must be
 * below max_pos.  inverse = 1 rotates by the negative angle (the backward
 * pass). */
void llm_rope_apply(const llm_rope *r, float *x, int n_rows, int ld, int n_heads, int T, int pos0,
                    int inverse);

#endif
