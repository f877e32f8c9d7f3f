/* bench_sgemm — the machine's single-precision matrix-product peak, as the
 * training benchmark's denominator for model-FLOPs utilisation.
 *
 *   usage: bench_sgemm [THREADS [N...]]     (default: all CPUs; N = 1024 2048)
 *
 * Times cblas_sgemm (OpenBLAS, the library libllm.a links) on N x N x N
 * products C = A B with THREADS threads, for about 2 s per size (3 to 200
 * products) after one warm-up, and prints for each size its best rate, then the best of all:
 *
 *   n=1024 gflops=123.4
 *   n=2048 gflops=130.2
 *   peak_gflops=130.2 threads=2
 *
 * GFLOP/s counts 2 N^3 floating-point operations per product.
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void openblas_set_num_threads(int);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) {
        fprintf(stderr, "bench_sgemm: bad thread count '%s'\n", argv[1]);
        return 2;
    }
    openblas_set_num_threads(threads);
    int def[] = {1024, 2048}, nsizes = argc > 2 ? argc - 2 : 2;
    double peak = 0;
    for (int s = 0; s < nsizes; s++) {
        int n = argc > 2 ? atoi(argv[s + 2]) : def[s];
        if (n < 16 || n > 16384) {
            fprintf(stderr, "bench_sgemm: bad size '%s'\n", argv[s + 2]);
            return 2;
        }
        size_t nn = (size_t)n * n;
        float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
        if (!a || !b || !c) {
            fprintf(stderr, "bench_sgemm: out of memory for n=%d\n", n);
            return 1;
        }
        unsigned x = 12345;
        for (size_t i = 0; i < nn; i++) {
            x = x * 1664525u + 1013904223u;
            a[i] = (float)(x >> 8) / 16777216.0f - 0.5f;
            b[i] = (float)((x >> 4) & 0xffff) / 65536.0f - 0.5f;
            c[i] = 0;
        }
        double flops = 2.0 * n * (double)n * n, best = 0;
        /* about 2 s of products per size, at least 3 timed ones: on a shared
         * machine the best of many short ones finds the quiet moments */
        int reps = 3;
        for (int r = -1; r < reps; r++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            double dt = now() - t0;
            if (r < 0) {
                /* warm-up: size the repetitions */
                int want = (int)(2.0 / (dt > 1e-6 ? dt : 1e-6));
                reps = want < 3 ? 3 : want > 200 ? 200 : want;
                continue;
            }
            double g = flops / dt / 1e9;
            if (g > best) best = g;
        }
        printf("n=%d gflops=%.1f\n", n, best);
        if (best > peak) peak = best;
        free(a), free(b), free(c);
    }
    printf("peak_gflops=%.1f threads=%d\n", peak, threads);
    return 0;
}
