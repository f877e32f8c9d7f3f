/* calib_ref — data and references shared by the calibration tests
 * (test_calib_hist, test_calib_amax, test_calib): six distributions of
 * activation-like values (Gaussian, Laplace, uniform, and three with rare
 * outliers 40 times the rest, as LLM activations have), and maxima and
 * histograms counted straight from the data in double precision, without
 * the library.
 *
 *     llm_calib_hist h;
 *     float *x = calib_data_hist(&h, CALIB_OUTLIERS, 60000, 2048);  // the library's histogram of it
 *     double absmax = ref_absmax(x, 60000), *want = ref_hist_max(x, 60000, 2048, absmax);
 *     CHECK(h.absmax == absmax);
 *     free(want), free(x), llm_calib_hist_free(&h);
 */
#ifndef LLM_CALIB_REF_H
#define LLM_CALIB_REF_H

#include <stddef.h>

#include "calib_hist.h"

/* The distributions, in the order of calib_dist_names. */
enum { CALIB_GAUSSIAN, CALIB_LAPLACE, CALIB_UNIFORM, CALIB_OUTLIERS, CALIB_GAUSSIAN_X40, CALIB_LAPLACE_X40,
       CALIB_DISTS };
extern const char *const calib_dist_names[CALIB_DISTS];

/* n values (malloc'd) of distribution d from generator seed.  "outliers":
 * one value in 5000 is 40 to 60 sigma out; "gaussian-x40" and
 * "laplace-x40": one value in 200000 multiplied by 40 (a maximum near 70
 * for the Gaussian). */
float *calib_data_seed(int d, size_t n, unsigned long long seed);
/* The same from d's own fixed seed. */
float *calib_data(int d, size_t n);

/* max |x| over x[0..n). */
double ref_absmax(const float *x, size_t n);
/* The counting range by definition: the smallest power of two above absmax. */
double ref_range(double absmax);
/* |x| counted into `bins` equal bins of [0, range) (calloc'd). */
double *ref_hist(const float *x, size_t n, int bins, double range);
/* The histogram TensorRT Model Optimizer calibrates from: `bins` bins over
 * [0, absmax], the maximum in the last bin (calloc'd). */
double *ref_hist_max(const float *x, size_t n, int bins, double absmax);
/* qsort's comparison of doubles, ascending. */
int cmp_double(const void *a, const void *b);

/* The library's histogram of x[0..n) in `bins` bins, fed in uneven chunks
 * (a failure to initialise it is a test failure). */
void hist_of(llm_calib_hist *h, const float *x, size_t n, int bins);
/* calib_data(d, n) (returned, malloc'd) and the library's histogram of it
 * (as hist_of). */
float *calib_data_hist(llm_calib_hist *h, int d, size_t n, int bins);

#endif
