/* rng — xoshiro256** (Blackman and Vigna, "Scrambled linear pseudorandom
 * number generators", 2018) seeded through splitmix64 (Steele, Lea and Flood,
 * 2014), written from the published algorithm descriptions.  The whole state
 * is llm_rng.s: no hidden caches (Box-Muller's second value is dropped), so a
 * checkpoint that saves s[] resumes the exact stream. */
#include "rng.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void llm_rng_seed(llm_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    /* splitmix64 is a bijection of its counter, so four consecutive outputs
     * are never all zero; the all-zero state (a fixed point) cannot arise */
}

uint64_t llm_rng_next(llm_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The high and low 64 bits of the 128-bit product a*b. */
static uint64_t mul128(uint64_t a, uint64_t b, uint64_t *lo)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 p = (unsigned __int128)a * b;
    *lo = (uint64_t)p;
    return (uint64_t)(p >> 64);
#else
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    *lo = (mid << 32) | (p00 & 0xffffffffu);
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

/* Lemire, "Fast random integer generation in an interval" (2019): the high
 * word of x*n is uniform in [0, n) once the low words below 2^64 mod n —
 * the surplus that would bias it — are rejected. */
uint64_t llm_rng_below(llm_rng *r, uint64_t n)
{
    if (n <= 1) return 0;
    uint64_t lo, hi = mul128(llm_rng_next(r), n, &lo);
    if (lo < n) {
        uint64_t threshold = -n % n; /* 2^64 mod n */
        while (lo < threshold) hi = mul128(llm_rng_next(r), n, &lo);
    }
    return hi;
}


double llm_rng_double(llm_rng *r) { return (double)(llm_rng_next(r) >> 11) * 0x1.0p-53; }

float llm_rng_normal(llm_rng *r)
{
    /* u1 in (0, 1] so log(u1) is finite; u2 in [0, 1) */
    double u1 = (double)((llm_rng_next(r) >> 11) + 1) * 0x1.0p-53;
    double u2 = llm_rng_double(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2));
}
