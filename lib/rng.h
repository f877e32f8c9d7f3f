/* rng — a small, fast, seedable random generator whose whole state can be
 * saved in a checkpoint, so a resumed run draws exactly what an unbroken one
 * would.  xoshiro256** (Blackman and Vigna), seeded through splitmix64.
 *
 *     llm_rng r;
 *     llm_rng_seed(&r, 42);
 *     uint64_t i = llm_rng_below(&r, n);     // uniform in [0, n)
 *     float z = llm_rng_normal(&r);          // standard normal
 */
#ifndef LLM_RNG_H
#define LLM_RNG_H

#include <stdint.h>

typedef struct llm_rng {
    uint64_t s[4];
} llm_rng;

void llm_rng_seed(llm_rng *r, uint64_t seed);
uint64_t llm_rng_next(llm_rng *r);
/* Uniform in [0, n), without modulo bias; n > 0. */
uint64_t llm_rng_below(llm_rng *r, uint64_t n);
/* Uniform in [0, 1) with 53 bits. */
double llm_rng_double(llm_rng *r);
/* Standard normal (Box-Muller). */
float llm_rng_normal(llm_rng *r);

#endif
