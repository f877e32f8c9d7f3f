/* Unit tests for lib/matvec: both kernels (AVX2 when the CPU has it, and the
 * portable one) against a double-precision product written here, over shapes
 * that exercise every block and tail; the thread split covering every row
 * exactly once. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "matvec.h"

typedef void kernel(const float *w, int in, const float *x, int M, int ldx, float *y, int ldy,
                    int r0, int r1, float beta);

/* y = beta y + W x for rows [r0, r1) of out, M rows of x with strides wider
 * than in; rows outside [r0, r1) and the padding must stay untouched. */
static double check_kernel(kernel *f, int out, int in, int M, int r0, int r1, float beta)
{
    unsigned long long rng = (unsigned long long)(out * 131 + in * 7 + M);
    int ldx = in + 3, ldy = out + 5;
    float *w = malloc(sizeof(float) * (size_t)out * in), *x = malloc(sizeof(float) * (size_t)M * ldx),
          *y = malloc(sizeof(float) * (size_t)M * ldy), *y0 = malloc(sizeof(float) * (size_t)M * ldy);
    for (int i = 0; i < out * in; i++) w[i] = (float)check_normal(&rng);
    for (int i = 0; i < M * ldx; i++) x[i] = (float)check_normal(&rng);
    for (int i = 0; i < M * ldy; i++) y[i] = y0[i] = (float)check_normal(&rng);
    f(w, in, x, M, ldx, y, ldy, r0, r1, beta);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int r = 0; r < ldy; r++) {
            double want = y0[m * ldy + r];
            if (r >= r0 && r < r1) {
                double dot = 0, mag = 0;
                for (int k = 0; k < in; k++) {
                    dot += (double)w[r * in + k] * x[m * ldx + k];
                    mag += fabs((double)w[r * in + k] * x[m * ldx + k]);
                }
                want = (beta != 0 ? want : 0) + dot;
                /* a float sum of in + 1 terms: error <= (in + 1) eps sum |terms| */
                double e = fabs(y[m * ldy + r] - want) /
                           ((mag + fabs(y0[m * ldy + r])) * 1.2e-7 * (in + 2));
                worst = e > worst ? e : worst;
            } else if (y[m * ldy + r] != (float)want) {
                worst = INFINITY; /* wrote outside its rows */
            }
        }
    free(w), free(x), free(y), free(y0);
    return worst;
}

static void test_kernels_match_double(void)
{
    static const int shapes[][5] = {
        /* out, in, M, r0, r1 */
        {1, 1, 1, 0, 1},     {4, 8, 1, 0, 4},      {7, 13, 1, 0, 7},     {33, 64, 2, 0, 33},
        {35, 100, 3, 4, 31}, {64, 288, 5, 8, 64},  {17, 768, 8, 3, 17},  {9, 31, 16, 1, 8},
        {40, 2048, 4, 0, 40}, {12, 9, 7, 5, 5},
    };
    kernel *kernels[2] = {llm_matvec_rows, llm_matvec_rows_portable};
    const char *names[2] = {"dispatched", "portable"};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int b = 0; b < 2; b++) {
                const int *s = shapes[i];
                double e = check_kernel(kernels[k], s[0], s[1], s[2], s[3], s[4], (float)b);
                /* within the worst-case bound; a wrong sum is far off */
                CHECK_MSG(e < 1, "%s out %d in %d M %d rows %d..%d beta %d: error %g of the bound",
                          names[k], s[0], s[1], s[2], s[3], s[4], b, e);
            }
}

static void test_split_covers_rows(void)
{
    for (int out = 0; out < 70; out++)
        for (int n = 1; n <= 5; n++) {
            int next = 0, ok = 1;
            for (int t = 0; t < n; t++) {
                int r0, r1;
                llm_matvec_split(out, t, n, &r0, &r1);
                ok &= r0 == next && r1 >= r0 && (r0 % 4 == 0 || r0 == out);
                next = r1;
            }
            CHECK_MSG(ok && next == out, "out %d threads %d", out, n);
        }
}

int main(void)
{
    RUN(test_kernels_match_double);
    RUN(test_split_covers_rows);
    return check_done();
}
