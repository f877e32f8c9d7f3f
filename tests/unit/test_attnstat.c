/* Unit tests for lib/attnstat: per-head statistics fed row by row against a
 * direct long-double computation over the whole map, a planted future-token
 * leak found at its row, and head similarity against normalised vectors in
 * long double. */
#include <math.h>
#include <stdlib.h>

#include "attnstat.h"
#include "check.h"

enum { T = 13, H = 5 };

static void causal_map(double *p, unsigned long long *rng)
{
    for (int i = 0; i < T; i++) {
        double sum = 0;
        for (int j = 0; j < T; j++) sum += p[i * T + j] = j <= i ? exp(2 * check_normal(rng)) : 0;
        for (int j = 0; j < T; j++) p[i * T + j] /= sum;
    }
}

static void test_stats_against_direct(void)
{
    unsigned long long rng = 3;
    double p[T * T];
    causal_map(p, &rng);
    llm_attnstat s;
    llm_attnstat_init(&s);
    for (int i = 0; i < T; i++) llm_attnstat_add_row(&s, i, p + i * T, T);
    llm_attnstat_finish(&s);
    long double ent = 0, dist = 0, diag = 0, first = 0;
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) {
            long double q = p[i * T + j];
            if (q > 0) ent -= q * logl(q);
            dist += q * (i - j);
            if (i == j) diag += q;
            if (j == 0) first += q;
        }
    CHECK_NEAR(s.entropy, (double)(ent / T), 1e-12);
    CHECK_NEAR(s.distance, (double)(dist / T), 1e-12);
    CHECK_NEAR(s.diagonal, (double)(diag / T), 1e-12);
    CHECK_NEAR(s.first, (double)(first / T), 1e-12);
    CHECK(s.leak == 0 && s.leak_max == 0 && s.leak_row == -1);
}

static void test_known_extremes(void)
{
    /* uniform over the past: entropy ln(i+1) per row, distance i/2 */
    double p[T * T] = {0};
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) p[i * T + j] = 1.0 / (i + 1);
    llm_attnstat s;
    llm_attnstat_init(&s);
    for (int i = 0; i < T; i++) llm_attnstat_add_row(&s, i, p + i * T, T);
    llm_attnstat_finish(&s);
    double ent = 0, dist = 0;
    for (int i = 0; i < T; i++) ent += log(i + 1.0), dist += i / 2.0;
    CHECK_NEAR(s.entropy, ent / T, 1e-12);
    CHECK_NEAR(s.distance, dist / T, 1e-12);
}

static void test_planted_leak(void)
{
    unsigned long long rng = 5;
    double p[T * T];
    causal_map(p, &rng);
    /* row 6 moves 0.25 of its mass to key 9, row 2 moves 1e-3 to key 3 */
    for (int j = 0; j <= 6; j++) p[6 * T + j] *= 0.75;
    p[6 * T + 9] = 0.25;
    for (int j = 0; j <= 2; j++) p[2 * T + j] *= 0.999;
    p[2 * T + 3] = 1e-3;
    llm_attnstat s;
    llm_attnstat_init(&s);
    for (int i = 0; i < T; i++) llm_attnstat_add_row(&s, i, p + i * T, T);
    llm_attnstat_finish(&s);
    CHECK(s.leak_row == 6);
    CHECK_NEAR(s.leak_max, 0.25, 1e-15);
    CHECK_NEAR(s.leak, (0.25 + 1e-3) / T, 1e-15);
}

static void test_head_similarity(void)
{
    unsigned long long rng = 11;
    float *maps = malloc(sizeof *maps * H * T * T);
    double p[T * T];
    for (int h = 0; h < H; h++) {
        causal_map(p, &rng);
        for (int k = 0; k < T * T; k++) maps[h * T * T + k] = (float)p[k];
    }
    for (int k = 0; k < T * T; k++) maps[3 * T * T + k] = maps[1 * T * T + k]; /* head 3 copies head 1 */
    for (int k = 0; k < T * T; k++) maps[4 * T * T + k] = 0;                   /* head 4 is empty */
    double sim[H * H];
    llm_attnstat_head_sim(maps, H, T * T, sim);
    for (int a = 0; a < H; a++)
        for (int b = 0; b < H; b++) {
            long double na = 0, nb = 0, dot = 0;
            for (int k = 0; k < T * T; k++) na += (long double)maps[a * T * T + k] * maps[a * T * T + k];
            for (int k = 0; k < T * T; k++) nb += (long double)maps[b * T * T + k] * maps[b * T * T + k];
            na = sqrtl(na), nb = sqrtl(nb);
            for (int k = 0; k < T * T; k++)
                if (na > 0 && nb > 0) dot += (maps[a * T * T + k] / na) * (maps[b * T * T + k] / nb);
            CHECK_NEAR(sim[a * H + b], (double)dot, 1e-12);
        }
    CHECK_NEAR(sim[1 * H + 3], 1, 1e-12);
    CHECK(sim[4 * H + 4] == 0 && sim[0 * H + 4] == 0);
    free(maps);
}

int main(void)
{
    RUN(test_stats_against_direct);
    RUN(test_known_extremes);
    RUN(test_planted_leak);
    RUN(test_head_similarity);
    return check_done();
}
