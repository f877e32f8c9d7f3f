/* Unit tests for lib/stats: chunked, merged moments against a direct
 * two-pass computation in long double over the same values. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "stats.h"

static void reference(const double *x, size_t n, long double *mean, long double *std,
                      double *mn, double *mx, double *amax)
{
    long double s = 0;
    size_t k = 0;
    *mn = INFINITY, *mx = -INFINITY, *amax = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) {
            s += x[i], k++;
            if (x[i] < *mn) *mn = x[i];
            if (x[i] > *mx) *mx = x[i];
            if (fabs(x[i]) > *amax) *amax = fabs(x[i]);
        }
    *mean = s / k;
    long double m2 = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) m2 += (x[i] - *mean) * (x[i] - *mean);
    *std = sqrtl(m2 / k);
}

static void test_chunked_matches_direct(void)
{
    unsigned long long rng = 99;
    enum { N = 100003 };
    double *x = malloc(N * sizeof *x);
    /* a large offset and a small spread: naive sum-of-squares loses it all */
    for (int i = 0; i < N; i++) x[i] = 1e6 + check_normal(&rng) * 1e-3;
    x[17] = NAN, x[18] = INFINITY, x[19] = -INFINITY;
    llm_stats s;
    llm_stats_init(&s);
    for (size_t at = 0; at < N;) { /* uneven chunks */
        size_t n = 1 + (size_t)(check_uniform(&rng) * 5000);
        if (n > N - at) n = N - at;
        llm_stats_add(&s, x + at, n, 1);
        at += n;
    }
    long double mean, std;
    double mn, mx, amax;
    reference(x, N, &mean, &std, &mn, &mx, &amax);
    CHECK(s.count == N - 3 && s.nan == 1 && s.inf == 2);
    CHECK_NEAR(s.mean, (double)mean, 1e-9);
    /* mean/std is 1e9 here, so double precision allows a relative error of
     * about eps * 1e9 ~ 1e-7; E[x^2]-E[x]^2 would be off by a factor of 100 */
    CHECK_NEAR(llm_stats_std(&s), (double)std, 1e-7 * (double)std);
    CHECK(s.min == mn && s.max == mx && s.absmax == amax);
    free(x);
}

static void test_strided_and_merge(void)
{
    double x[12];
    for (int i = 0; i < 12; i++) x[i] = i;
    llm_stats even, odd, all;
    llm_stats_init(&even), llm_stats_init(&odd), llm_stats_init(&all);
    llm_stats_add(&even, x, 6, 2);
    llm_stats_add(&odd, x + 1, 6, 2);
    CHECK(even.count == 6 && even.mean == 5 && even.max == 10);
    CHECK(odd.mean == 6 && odd.min == 1);
    llm_stats_merge(&all, &even);
    llm_stats_merge(&all, &odd);
    CHECK_NEAR(all.mean, 5.5, 1e-15);
    CHECK_NEAR(llm_stats_std(&all), sqrt(143.0 / 12), 1e-12); /* var of 0..11 */
    llm_stats empty;
    llm_stats_init(&empty);
    CHECK(llm_stats_std(&empty) == 0 && empty.count == 0);
}

int main(void)
{
    RUN(test_chunked_matches_direct);
    RUN(test_strided_and_merge);
    return check_done();
}
