/* attnstat — what an attention map says about its head, in numbers.
 *
 * Per head, over its T query rows (row i: probabilities p_ij over keys j):
 *   entropy   mean over rows of -sum_j p_ij ln p_ij, in nats (0: one key
 *             takes everything; ln(i+1) at most for row i)
 *   distance  mean over rows of sum_j p_ij (i - j): how far back the head looks
 *   diagonal  mean of p_ii: the share a query keeps for itself
 *   first     mean of p_i0: the share on the first token (an "attention sink")
 *   leak      sum_{j>i} |p_ij| per row: probability on future tokens, which a
 *             causal model never gives; its mean and its worst row
 * Rows are added one at a time, so a head is never held whole.
 *
 * Head similarity: the cosine similarity of two heads' maps, flattened to
 * vectors of T*T values; near 1 means the heads attend alike (candidates for
 * pruning).  That one needs every head of a layer at once.
 *
 *     llm_attnstat s;
 *     llm_attnstat_init(&s);
 *     for (i = 0; i < T; i++) llm_attnstat_add_row(&s, i, p + i * T, T);
 *     llm_attnstat_finish(&s);               // s.entropy, s.distance, ...
 */
#ifndef LLM_ATTNSTAT_H
#define LLM_ATTNSTAT_H

#include <stdint.h>

typedef struct llm_attnstat {
    int64_t rows;
    double entropy, distance, diagonal, first; /* sums, then means after finish */
    double leak;          /* sum of the rows' leaks, then their mean after finish */
    double leak_max;      /* the worst row's leak */
    int64_t leak_row;     /* that row (-1 while no row leaked) */
} llm_attnstat;

void llm_attnstat_init(llm_attnstat *s);
/* Adds query row i (0 <= i < T) of a map with T keys: p[0..T). */
void llm_attnstat_add_row(llm_attnstat *s, int64_t i, const double *p, int64_t T);
/* Turns the sums into means over the rows added. */
void llm_attnstat_finish(llm_attnstat *s);

/* Cosine similarity between every pair of the H maps in maps ([H][N]
 * floats, N = T*T), accumulated in double: sim ([H][H]) gets
 * <a,b> / (|a| |b|), and 0 for a map that is all zeros. */
void llm_attnstat_head_sim(const float *maps, int64_t H, int64_t N, double *sim);

#endif
