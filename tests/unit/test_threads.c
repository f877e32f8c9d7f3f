/* Unit tests for the tools' thread setting (lib/cli: llm_cli_threads): with
 * OpenBLAS's OpenMP build its kernels follow OpenMP's team, one pool; with
 * its pthreads build they run single-threaded, since two pools on the same
 * cores fight.  And inside a parallel region, a product of the OpenMP build
 * runs on its caller's thread: two threads each multiplying their own rows
 * give the same result as one call. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli.h"

int openblas_get_parallel(void);
int openblas_get_num_threads(void);

static void test_one_pool(void)
{
    llm_cli_init("test_threads");
    for (int n = 1; n <= 3; n++) {
        llm_cli_threads(n);
        int want = openblas_get_parallel() == 2 ? n : 1;
        CHECK_MSG(omp_get_max_threads() == n && openblas_get_num_threads() == want,
                  "--threads %d: OpenMP %d, OpenBLAS %d (build %d)", n, omp_get_max_threads(),
                  openblas_get_num_threads(), openblas_get_parallel());
    }
    if (openblas_get_parallel() != 2) check_skip("OpenBLAS is not its OpenMP build (libopenblas-openmp-dev)");
}

static void test_products_in_a_region(void)
{
    enum { N = 40, OUT = 64, IN = 48 };
    unsigned long long rng = 3;
    float x[N * IN], w[OUT * IN], whole[N * OUT], parts[N * OUT];
    for (int i = 0; i < N * IN; i++) x[i] = (float)check_normal(&rng);
    for (int i = 0; i < OUT * IN; i++) w[i] = (float)check_normal(&rng);
    llm_cli_threads(2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OUT, IN, 1.0f, x, IN, w, IN, 0.0f, whole, OUT);
#pragma omp parallel num_threads(2)
    {
        int t = omp_get_thread_num(), r0 = t * OUT / 2, r1 = (t + 1) * OUT / 2;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, r1 - r0, IN, 1.0f, x, IN, w + (size_t)r0 * IN, IN,
                    0.0f, parts + r0, OUT);
    }
    double worst = 0;
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OUT; o++) {
            double ref = 0;
            for (int k = 0; k < IN; k++) ref += (double)x[i * IN + k] * w[o * IN + k];
            worst = fmax(worst, fmax(fabs(whole[i * OUT + o] - ref), fabs(parts[i * OUT + o] - ref)));
        }
    CHECK_MSG(worst < 1e-4, "products off by %g", worst);
}

int main(void)
{
    RUN(test_one_pool);
    RUN(test_products_in_a_region);
    return check_done();
}
