/* stats — one-pass summary statistics over data that arrives in chunks.
 *
 * Count, min, max, mean, standard deviation and absolute maximum of the finite
 * values, with NaN and infinity counted apart.  Each chunk is summarised with
 * a two-pass mean and sum of squared deviations, then merged into the running
 * totals with Chan et al.'s pairwise update, so a long stream keeps full double
 * precision without holding its values.
 *
 *     llm_stats s;
 *     llm_stats_init(&s);
 *     llm_stats_add(&s, chunk, n, 1);       // again for each chunk
 *     printf("%g %g\n", s.mean, llm_stats_std(&s));
 */
#ifndef LLM_STATS_H
#define LLM_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct llm_stats {
    uint64_t count;   /* finite values seen */
    uint64_t nan, inf;
    double min, max;  /* of finite values; +inf/-inf while count is 0 */
    double mean;
    double m2;        /* sum of squared deviations from the mean */
    double absmax;
} llm_stats;

void llm_stats_init(llm_stats *s);
/* Adds x[0], x[stride], ... (n values). */
void llm_stats_add(llm_stats *s, const double *x, size_t n, size_t stride);
/* Folds `from` into `into`. */
void llm_stats_merge(llm_stats *into, const llm_stats *from);
/* Population standard deviation (numpy's default, ddof=0); 0 when empty. */
double llm_stats_std(const llm_stats *s);

#endif
