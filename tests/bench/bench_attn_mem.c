/* bench_attn_mem — peak memory and time of one head's causal attention,
 * forward and backward, ours (tiled, online softmax) beside the textbook
 * version that forms the T x T probability matrix.
 *
 *   usage: bench_attn_mem [-l SECONDS] [-d HEAD_DIM] [T...]   (default T: 1024 4096 16384)
 *
 * Each case runs in a forked child that allocates only the inputs and
 * outputs (q, k, v, out, dout, dq, dk, dv: [T, d] each; lse: [T]), fills
 * them, reads its peak resident set (getrusage ru_maxrss) as the baseline,
 * runs llm_attn_forward + llm_attn_backward (or llm_attn_naive_forward +
 * llm_attn_naive_backward) and reads the peak again.  "extra" is the growth:
 * the memory the algorithm needs beyond its inputs and outputs.  "total" is
 * the child's whole peak resident set (program, libraries, inputs, outputs).
 * A child that passes SECONDS (default 120) is killed and the case reported
 * as too slow; a naive case whose T x T matrix would not fit in 3/4 of the
 * available memory is not run.  One line per case on stdout:
 *
 *   impl=ours T=1024 d=64 status=ok io_kib=2308 extra_kib=4 total_kib=5000 fwd_s=0.01 bwd_s=0.03
 *
 * status is ok, slow (killed at the limit), nomem (not run: too big),
 * failed (allocation failed or the child crashed).  Single-threaded, as the
 * attention functions are (callers run heads in parallel).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attn.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static long mem_available_kib(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

static void fill(float *x, size_t n, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(*s >> 40) / 16777216.0 * 2.0 - 1.0);
    }
}

/* The child: one case; writes its result line to fd. */
static int run_case(int naive, int T, int d, int fd)
{
    size_t n = (size_t)T * d;
    float *buf = malloc((8 * n + (size_t)T) * sizeof *buf);
    if (!buf) return 1;
    float *q = buf, *k = q + n, *v = k + n, *out = v + n, *dout = out + n, *dq = dout + n,
          *dk = dq + n, *dv = dk + n, *lse = dv + n;
    uint64_t s = 42;
    fill(q, 3 * n, &s);      /* q, k, v */
    fill(dout, n, &s);
    memset(out, 0, n * sizeof *out);
    memset(dq, 0, 3 * n * sizeof *dq); /* dq, dk, dv */
    memset(lse, 0, (size_t)T * sizeof *lse);
    long base = maxrss_kib();
    llm_attn_shape sh = {.n_q = T, .n_kv = T, .q_pos0 = 0, .head_dim = d, .window = 0,
                         .scale = 1.0f / sqrtf((float)d)};
    double t0 = now();
    if (naive) {
        if (llm_attn_naive_forward(&sh, q, d, k, v, d, out, d, lse, NULL) < 0) return 1;
    } else
        llm_attn_forward(&sh, q, d, k, v, d, out, d, lse);
    double t1 = now();
    if (naive) {
        if (llm_attn_naive_backward(&sh, q, d, k, v, d, out, dout, d, lse, dq, dk, dv, NULL) < 0) return 1;
    } else
        llm_attn_backward(&sh, q, d, k, v, d, out, dout, d, lse, dq, dk, dv);
    double t2 = now();
    long peak = maxrss_kib();
    /* keep the results live, and catch a broken run */
    double chk = 0;
    for (size_t i = 0; i < n; i++) chk += out[i] + dq[i] + dk[i] + dv[i];
    if (!isfinite(chk)) return 1;
    char line[256];
    int len = snprintf(line, sizeof line, "extra_kib=%ld total_kib=%ld fwd_s=%.3f bwd_s=%.3f\n",
                       peak - base, peak, t1 - t0, t2 - t1);
    if (write(fd, line, (size_t)len) != len) return 1;
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int limit = 120, d = 64, opt;
    while ((opt = getopt(argc, argv, "l:d:")) != -1) {
        if (opt == 'l') limit = atoi(optarg);
        else if (opt == 'd') d = atoi(optarg);
        else {
            fprintf(stderr, "usage: bench_attn_mem [-l SECONDS] [-d HEAD_DIM] [T...]\n");
            return 2;
        }
    }
    if (limit < 1 || d < 1 || d > 4096) {
        fprintf(stderr, "bench_attn_mem: bad -l or -d\n");
        return 2;
    }
    int def[] = {1024, 4096, 16384}, nT = argc > optind ? argc - optind : 3;
    int failed = 0;
    for (int ti = 0; ti < nT; ti++) {
        int T = argc > optind ? atoi(argv[optind + ti]) : def[ti];
        if (T < 1 || T > (1 << 20)) {
            fprintf(stderr, "bench_attn_mem: bad T '%s'\n", argv[optind + ti]);
            return 2;
        }
        long io_kib = (long)(((8.0 * T * d + T) * sizeof(float)) / 1024.0 + 0.5);
        for (int naive = 0; naive <= 1; naive++) {
            const char *impl = naive ? "naive" : "ours";
            printf("impl=%s T=%d d=%d io_kib=%ld ", impl, T, d, io_kib);
            fflush(stdout);
            long avail = mem_available_kib();
            double need_kib = naive ? (double)T * T * sizeof(float) / 1024.0 + io_kib : io_kib;
            if (avail > 0 && need_kib > 0.75 * avail) {
                printf("status=nomem need_kib=%.0f avail_kib=%ld\n", need_kib, avail);
                continue;
            }
            int p[2];
            if (pipe(p) < 0) {
                perror("bench_attn_mem: pipe");
                return 1;
            }
            fprintf(stderr, "bench_attn_mem: %s T=%d ...\n", impl, T);
            double t0 = now();
            pid_t pid = fork();
            if (pid < 0) {
                perror("bench_attn_mem: fork");
                return 1;
            }
            if (pid == 0) {
                close(p[0]);
                alarm((unsigned)limit);
                _exit(run_case(naive, T, d, p[1]));
            }
            close(p[1]);
            char line[256];
            size_t got = 0;
            ssize_t r;
            while (got < sizeof line - 1 && (r = read(p[0], line + got, sizeof line - 1 - got)) != 0) {
                if (r < 0) {
                    if (errno == EINTR) continue;
                    break;
                }
                got += (size_t)r;
            }
            line[got] = 0;
            close(p[0]);
            int st;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && got > 0)
                printf("status=ok %s", line);
            else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
                printf("status=slow limit_s=%d\n", limit);
            else {
                printf("status=failed\n");
                failed = 1;
            }
            fprintf(stderr, "bench_attn_mem: %s T=%d done in %.1f s\n", impl, T, now() - t0);
        }
    }
    return failed;
}
