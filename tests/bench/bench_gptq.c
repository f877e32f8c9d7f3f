/* The GPTQ solve alone, for tests/bench/quant.sh: a 2048 x 2048 layer whose
 * Hessian is given (accumulated beforehand from 4096 correlated activation
 * rows, not timed), quantized to int4 (group 128) and to int8, `reps` times
 * each, the two in turn, after one untimed int4 solve (threads and pages
 * start up); prints the wall-clock seconds of every solve, one
 * line per format:  gptq_int4_s=0.46 0.47 0.45  (the script summarizes).
 *   usage: bench_gptq [N] [REPS]        (N: rows = cols, default 2048) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "gptq.h"

static float gauss(unsigned long long *s)
{
    /* a sum of 4 uniforms: near-normal, enough for a benchmark's data */
    float t = 0;
    for (int i = 0; i < 4; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        t += (float)(*s >> 40) / (float)(1ull << 24) - 0.5f;
    }
    return t;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2048, reps = argc > 2 ? atoi(argv[2]) : 3, rows = 4096;
    if (n < 128 || n % 128 || reps < 1) {
        fprintf(stderr, "usage: bench_gptq [N (a multiple of 128)] [REPS]\n");
        return 2;
    }
    unsigned long long s = 7;
    float *w = malloc(sizeof(float) * (size_t)n * n), *x = malloc(sizeof(float) * (size_t)rows * n);
    if (!w || !x) return 1;
    for (size_t i = 0; i < (size_t)n * n; i++) w[i] = 0.02f * gauss(&s);
    for (int r = 0; r < rows; r++) { /* correlated inputs: a random walk along the row */
        float acc = 0;
        for (int k = 0; k < n; k++) x[(size_t)r * n + k] = acc = 0.9f * acc + gauss(&s);
    }
    llm_error err = {0};
    llm_hessian h;
    if (llm_hessian_init(&h, n, &err) < 0 || llm_hessian_add(&h, x, rows, &err) < 0) {
        fprintf(stderr, "bench_gptq: %s\n", err.msg);
        return 1;
    }
    const llm_qformat fmt[2] = {{.scheme = LLM_Q_INT4, .group = 128, .sym = 1}, {.scheme = LLM_Q_INT8}};
    const char *names[2] = {"int4", "int8"};
    llm_gptq_opts o = {.damp = 0.01, .block = 128};
    double *secs = malloc(sizeof(double) * 2 * (size_t)reps);
    if (!secs) return 1;
    for (int r = -1; r < reps; r++) /* r = -1: the warm-up */
        for (int f = 0; f < (r < 0 ? 1 : 2); f++) {
            llm_qlinear q;
            double t0 = omp_get_wtime();
            if (llm_gptq(w, n, n, &h, &fmt[f], &o, &q, &err) < 0) {
                fprintf(stderr, "bench_gptq: %s\n", err.msg);
                return 1;
            }
            if (r >= 0) secs[f * reps + r] = omp_get_wtime() - t0;
            llm_qlinear_free(&q);
        }
    for (int f = 0; f < 2; f++) {
        printf("gptq_%s_s=", names[f]);
        for (int r = 0; r < reps; r++) printf("%s%.3f", r ? " " : "", secs[f * reps + r]);
        printf("\n");
    }
    free(secs);
    llm_hessian_free(&h);
    free(w), free(x);
    return 0;
}
