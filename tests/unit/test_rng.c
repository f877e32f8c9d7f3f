/* Unit tests for lib/rng: the published xoshiro256** and splitmix64 outputs,
 * reproducibility, and the statistics of below / double / normal.
 *
 * Every statistical check draws from a fixed seed, so it passes or fails the
 * same way on every run; the thresholds are chosen so that a correct
 * generator would fail them with probability about 1e-3 or less (a wrong one,
 * e.g. a modulo-biased below(), misses them by many standard errors). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "rng.h"

enum { N = 100000 };

static void test_reference_vector(void)
{
    /* The first outputs of the reference xoshiro256starstar.c from the state
     * {1, 2, 3, 4}, as published with other implementations (e.g. the Rust
     * crate rand_xoshiro's test `reference`). */
    static const uint64_t want[10] = {
        UINT64_C(11520),
        UINT64_C(0),
        UINT64_C(1509978240),
        UINT64_C(1215971899390074240),
        UINT64_C(1216172134540287360),
        UINT64_C(607988272756665600),
        UINT64_C(16172922978634559625),
        UINT64_C(8476171486693032832),
        UINT64_C(10595114339597558777),
        UINT64_C(2904607092377533576),
    };
    llm_rng r = {{1, 2, 3, 4}};
    for (int i = 0; i < 10; i++) {
        uint64_t got = llm_rng_next(&r);
        CHECK_MSG(got == want[i], "output %d: %llu, want %llu", i, (unsigned long long)got,
                  (unsigned long long)want[i]);
    }
}

static void test_seed_is_splitmix64(void)
{
    /* splitmix64 from state 0: its first four outputs are the published
     * 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f,
     * 0xf88bb8a8724c81ec, and seeding fills s[0..3] with them in order. */
    static const uint64_t want[4] = {UINT64_C(0xe220a8397b1dcdaf), UINT64_C(0x6e789e6aa1b965f4),
                                     UINT64_C(0x06c45d188009454f), UINT64_C(0xf88bb8a8724c81ec)};
    llm_rng r;
    llm_rng_seed(&r, 0);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(r.s[i] == want[i], "s[%d] = %#llx, want %#llx", i, (unsigned long long)r.s[i],
                  (unsigned long long)want[i]);
    /* seed 42, seeded the same standard way, as other xoshiro256**
     * implementations' tests report it */
    static const uint64_t want42[4] = {UINT64_C(1546998764402558742), UINT64_C(6990951692964543102),
                                       UINT64_C(12544586762248559009), UINT64_C(17057574109182124193)};
    llm_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++) {
        uint64_t got = llm_rng_next(&r);
        CHECK_MSG(got == want42[i], "seed 42 output %d: %llu, want %llu", i, (unsigned long long)got,
                  (unsigned long long)want42[i]);
    }
}

static void test_reproducible(void)
{
    llm_rng a, b, c;
    llm_rng_seed(&a, 12345);
    llm_rng_seed(&b, 12345);
    llm_rng_seed(&c, 12346);
    int same_as_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = llm_rng_next(&a), y = llm_rng_next(&b), z = llm_rng_next(&c);
        CHECK(x == y);
        same_as_c += x == z;
    }
    CHECK(same_as_c == 0);
    /* the state is the whole generator: a copy resumes the exact stream,
     * through every kind of draw */
    llm_rng saved = a;
    uint64_t x1 = llm_rng_below(&a, 1000003);
    float n1 = llm_rng_normal(&a);
    double d1 = llm_rng_double(&a);
    CHECK(llm_rng_below(&saved, 1000003) == x1);
    CHECK(llm_rng_normal(&saved) == n1);
    CHECK(llm_rng_double(&saved) == d1);
    CHECK(memcmp(&a, &saved, sizeof a) == 0);
}

static void test_below_uniform(void)
{
    llm_rng r;
    llm_rng_seed(&r, 7);
    long bins[10] = {0};
    int ok = 1;
    for (int i = 0; i < N; i++) {
        uint64_t x = llm_rng_below(&r, 10);
        if (x >= 10) ok = 0;
        else bins[x]++;
    }
    CHECK(ok);
    double chi2 = 0, e = N / 10.0;
    for (int k = 0; k < 10; k++) chi2 += (bins[k] - e) * (bins[k] - e) / e;
    /* 9 degrees of freedom: P(chi2 > 27.88) = 0.001 for a uniform source */
    CHECK_MSG(chi2 < 27.88, "chi-square %.2f over 10 bins, 9 dof (limit 27.88 at p = 0.001)", chi2);

    /* a range that does not divide 2^64, binned by tenths */
    long bins2[10] = {0};
    for (int i = 0; i < N; i++) {
        uint64_t x = llm_rng_below(&r, 1000003);
        if (x >= 1000003) ok = 0;
        else bins2[x * 10 / 1000003]++;
    }
    CHECK(ok);
    chi2 = 0;
    for (int k = 0; k < 10; k++) chi2 += (bins2[k] - e) * (bins2[k] - e) / e;
    CHECK_MSG(chi2 < 27.88, "below(1000003): chi-square %.2f (limit 27.88)", chi2);
}

static void test_below_edges(void)
{
    llm_rng r;
    llm_rng_seed(&r, 1);
    int ok = 1;
    for (int i = 0; i < 1000; i++) ok &= llm_rng_below(&r, 1) == 0;
    CHECK_MSG(ok, "below(1) must be 0");
    static const uint64_t ns[] = {2, 3, 5, UINT64_C(1) << 32, (UINT64_C(1) << 63) + 1, UINT64_MAX};
    for (size_t j = 0; j < sizeof ns / sizeof *ns; j++)
        for (int i = 0; i < 1000; i++) ok &= llm_rng_below(&r, ns[j]) < ns[j];
    CHECK_MSG(ok, "below(n) reached n");
    /* both values of below(2) appear, and about equally often */
    long ones = 0;
    for (int i = 0; i < N; i++) ones += (long)llm_rng_below(&r, 2);
    CHECK_NEAR(ones / (double)N, 0.5, 4 * sqrt(0.25 / N));
}

static void test_below_large_n_unbiased(void)
{
    /* n = 3*2^62: x mod n would put the values below 2^62 twice as often
     * (they would get 1/2 of the draws instead of 1/3, and the mean would be
     * 1.25*2^62 instead of 1.5*2^62).  Lemire's method rejects a quarter of
     * the draws here, so the rejection path is exercised too. */
    const uint64_t n = UINT64_C(3) << 62, quarter = UINT64_C(1) << 62;
    llm_rng r;
    llm_rng_seed(&r, 2024);
    long low = 0;
    long double sum = 0;
    int ok = 1;
    for (int i = 0; i < N; i++) {
        uint64_t x = llm_rng_below(&r, n);
        ok &= x < n;
        low += x < quarter;
        sum += (long double)x / (long double)n;
    }
    CHECK(ok);
    double frac = low / (double)N, mean = (double)(sum / N);
    /* 4 standard errors: sqrt(p(1-p)/N) and sqrt(1/12/N) */
    CHECK_NEAR(frac, 1.0 / 3, 4 * sqrt((1.0 / 3) * (2.0 / 3) / N));
    CHECK_NEAR(mean, 0.5, 4 * sqrt(1.0 / 12 / N));
}

static void test_double_range(void)
{
    llm_rng r;
    llm_rng_seed(&r, 99);
    int ok_d = 1;
    double sum_d = 0;
    for (int i = 0; i < 10 * N; i++) {
        double d = llm_rng_double(&r);
        /* [0, 1) and on the grid of 53 bits */
        ok_d &= d >= 0 && d < 1 && ldexp(d, 53) == floor(ldexp(d, 53));
        sum_d += d;
    }
    CHECK_MSG(ok_d, "double outside [0, 1) or off the 2^-53 grid");
    CHECK_NEAR(sum_d / (10.0 * N), 0.5, 4 * sqrt(1.0 / 12 / (10.0 * N)));
}

static void test_normal_moments(void)
{
    llm_rng r;
    llm_rng_seed(&r, 31337);
    long double s1 = 0, s2 = 0;
    long tail = 0;
    int finite = 1;
    for (int i = 0; i < N; i++) {
        double z = llm_rng_normal(&r);
        finite &= isfinite(z);
        s1 += z, s2 += (long double)z * z;
        tail += fabs(z) > 2;
    }
    CHECK(finite);
    double mean = (double)(s1 / N), var = (double)(s2 / N) - mean * mean;
    /* standard errors: 1/sqrt(N) for the mean, sqrt(2/N) for the variance
     * of a normal sample; 4 of them */
    CHECK_NEAR(mean, 0, 4 / sqrt(N));
    CHECK_NEAR(var, 1, 4 * sqrt(2.0 / N));
    /* the shape, not just two moments: P(|z| > 2) = 0.0455003 */
    double p = 0.0455003;
    CHECK_NEAR(tail / (double)N, p, 4 * sqrt(p * (1 - p) / N));
}

int main(void)
{
    RUN(test_reference_vector);
    RUN(test_seed_is_splitmix64);
    RUN(test_reproducible);
    RUN(test_below_uniform);
    RUN(test_below_edges);
    RUN(test_below_large_n_unbiased);
    RUN(test_double_range);
    RUN(test_normal_moments);
    return check_done();
}
