/* bench_triad — the machine's memory bandwidth, STREAM's triad, as the decode
 * benchmark's denominator (tests/bench/decode.sh).
 *
 *   usage: bench_triad [THREADS [MIB [REPS]]]   (default: 2 threads, 256 MiB per array, 10 reps)
 *
 * a[i] = b[i] + s * c[i] over three float arrays of MIB MiB each (far larger
 * than any cache), OpenMP with THREADS threads and a static schedule; the
 * arrays are first touched by the same threads and schedule, so each
 * thread's pages are where it runs.  Bytes counted per element: 3 x 4 (read
 * b and c, write a; float, as the model's weights), as STREAM counts them;
 * the write-allocate read of a that the hardware may add is not counted.
 * Prints the best of REPS repetitions (after one warm-up) and the median:
 *
 *   triad_gbs=19.8 median_gbs=19.1 threads=2 mib=256 reps=10 bytes_per_elem=12
 *
 * GB/s is 10^9 bytes per second.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static long arg(int argc, char **argv, int i, long def, long lo, long hi)
{
    if (argc <= i) return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*argv[i] == '\0' || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_triad: bad argument '%s'\n", argv[i]);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    int threads = (int)arg(argc, argv, 1, 2, 1, 1024);
    long mib = arg(argc, argv, 2, 256, 1, 1 << 16);
    int reps = (int)arg(argc, argv, 3, 10, 1, 10000);
    omp_set_num_threads(threads);
    long n = mib * 1024 * 1024 / (long)sizeof(float);
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b),
          *c = malloc((size_t)n * sizeof *c);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!a || !b || !c || !t) {
        fprintf(stderr, "bench_triad: out of memory for 3 x %ld MiB\n", mib);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;
    const float s = 3.0f;
    for (int r = -1; r < reps; r++) {
        double t0 = now();
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        double dt = now() - t0;
        if (r >= 0) t[r] = dt;
    }
    /* keep the result alive and check it */
    if (a[n / 2] != 7.0f) {
        fprintf(stderr, "bench_triad: wrong result %g\n", (double)a[n / 2]);
        return 1;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    double bytes = 3.0 * sizeof(float) * (double)n;
    printf("triad_gbs=%.2f median_gbs=%.2f threads=%d mib=%ld reps=%d bytes_per_elem=%d\n",
           bytes / t[0] / 1e9, bytes / t[reps / 2] / 1e9, threads, mib, reps, (int)(3 * sizeof(float)));
    free(a), free(b), free(c), free(t);
    return 0;
}
