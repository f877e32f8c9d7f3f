/* gen_floats — benchmark data for tests/bench/run.sh.
 *
 *     gen_floats normal|bf16 N OUT.npy      (OUT '-' is stdout)
 *
 * Writes a version 1.0 .npy file of N little-endian float32 values, shape (N,):
 * standard normal values from a fixed-seed PRNG (lib/rng's xoshiro256**,
 * Box-Muller here), or the same values rounded to bfloat16 precision (round to
 * nearest even, keep the top 16 bits), as trained weights stored in bf16 and
 * widened to float32 are.  Built by tests/bench/lib.sh's helper with libllm.
 * The same N gives the same bytes on every run and machine (IEEE float32,
 * little-endian host assumed).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

static llm_rng rng;

/* Uniform in (0, 1]: never 0, so log() is finite. */
static double uniform(void) { return ((llm_rng_next(&rng) >> 11) + 1) * 0x1.0p-53; }

static float to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a NaN */
        u |= 0x00400000u;
    else
        u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

static int usage(void)
{
    fprintf(stderr, "usage: gen_floats normal|bf16 N OUT.npy   (OUT '-' is stdout)\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 4) return usage();
    int bf16;
    if (strcmp(argv[1], "normal") == 0) bf16 = 0;
    else if (strcmp(argv[1], "bf16") == 0) bf16 = 1;
    else return usage();
    char *end;
    errno = 0;
    unsigned long long n = strtoull(argv[2], &end, 10);
    if (errno || *end || end == argv[2] || argv[2][0] == '-' || n > (1ull << 40)) {
        fprintf(stderr, "gen_floats: bad count '%s'\n", argv[2]);
        return 2;
    }
    const char *path = argv[3];
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "gen_floats: %s: %s\n", path, strerror(errno));
        return 1;
    }

    /* Header: magic, version 1.0, u16 header length, dict padded with spaces
     * and ended by '\n' so that the data starts at a multiple of 64. */
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%llu,), }",
                      n);
    int total = 10 + dl + 1;
    int pad = (64 - total % 64) % 64;
    int hlen = dl + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)dl, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);

    llm_rng_seed(&rng, 0x11a9919eULL); /* fixed: same data every run */
    enum { CHUNK = 1 << 16 };
    static float buf[CHUNK];
    unsigned long long done = 0;
    while (done < n) {
        size_t m = n - done < CHUNK ? (size_t)(n - done) : CHUNK;
        for (size_t i = 0; i < m; i += 2) { /* Box-Muller: two values per draw */
            double r = sqrt(-2.0 * log(uniform())), th = 6.283185307179586 * uniform();
            buf[i] = (float)(r * cos(th));
            if (i + 1 < m) buf[i + 1] = (float)(r * sin(th));
        }
        if (bf16)
            for (size_t i = 0; i < m; i++) buf[i] = to_bf16(buf[i]);
        if (fwrite(buf, sizeof(float), m, f) != m) break;
        done += m;
    }
    if (fflush(f) != 0 || ferror(f) || (f != stdout && fclose(f) != 0)) {
        fprintf(stderr, "gen_floats: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}
