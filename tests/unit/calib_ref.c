/* calib_ref — the calibration tests' data and direct references (see
 * calib_ref.h). */
#include "calib_ref.h"

#include <math.h>
#include <stdlib.h>

#include "check.h"

const char *const calib_dist_names[CALIB_DISTS] = {"gaussian", "laplace", "uniform", "outliers", "gaussian-x40",
                                                   "laplace-x40"};

float *calib_data_seed(int d, size_t n, unsigned long long seed)
{
    unsigned long long rng = seed;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) {
        double u = check_uniform(&rng);
        double laplace = u < 0.5 ? log(2 * u + 1e-300) : -log(2 * (1 - u)); /* Laplace(0, 1) */
        switch (d) {
        case CALIB_GAUSSIAN: x[i] = (float)check_normal(&rng); break;
        case CALIB_LAPLACE: x[i] = (float)laplace; break;
        case CALIB_UNIFORM: x[i] = (float)(6 * u - 3); break;
        case CALIB_OUTLIERS:
            x[i] = (float)check_normal(&rng);
            if (i % 5000 == 17) x[i] = (float)((u < 0.5 ? -1 : 1) * (40 + 20 * check_uniform(&rng)));
            break;
        case CALIB_GAUSSIAN_X40: x[i] = (float)(check_normal(&rng) * (i % 200000 == 17 ? 40 : 1)); break;
        default: x[i] = (float)(laplace * (i % 200000 == 17 ? 40 : 1));
        }
    }
    return x;
}

float *calib_data(int d, size_t n)
{
    return calib_data_seed(d, n, 1234 + (unsigned long long)d);
}

double ref_absmax(const float *x, size_t n)
{
    double a = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > a) a = fabs(x[i]);
    return a;
}

double ref_range(double absmax)
{
    double r = 1;
    while (r <= absmax) r *= 2;
    while (r / 2 > absmax) r /= 2;
    return r;
}

double *ref_hist(const float *x, size_t n, int bins, double range)
{
    double *h = calloc((size_t)bins, sizeof *h);
    for (size_t i = 0; i < n; i++) h[(int)floor(fabs((double)x[i]) * bins / range)] += 1;
    return h;
}

double *ref_hist_max(const float *x, size_t n, int bins, double absmax)
{
    double *h = calloc((size_t)bins, sizeof *h);
    for (size_t i = 0; i < n; i++) {
        int k = (int)floor(fabs((double)x[i]) * bins / absmax);
        h[k < bins ? k : bins - 1] += 1;
    }
    return h;
}

int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void hist_of(llm_calib_hist *h, const float *x, size_t n, int bins)
{
    llm_error err = {0};
    CHECK_OK(llm_calib_hist_init(h, bins, &err), err);
    unsigned long long rng = 5;
    for (size_t at = 0; at < n;) {
        size_t k = 1 + (size_t)(check_uniform(&rng) * 3000);
        if (k > n - at) k = n - at;
        llm_calib_hist_add(h, x + at, k);
        at += k;
    }
}

float *calib_data_hist(llm_calib_hist *h, int d, size_t n, int bins)
{
    float *x = calib_data(d, n);
    hist_of(h, x, n, bins);
    return x;
}
