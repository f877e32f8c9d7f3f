/* Unit tests for lib/lora, the low-rank update y += s (x A^T) B^T on its own:
 * the forward step (u and y) and llm_lora_rows (a band of output columns,
 * strided rows, several blocks of rows, the largest rank) against the sum
 * written out in double; the gradients of A, B and x against central
 * differences of the double-precision loss sum(dy * y); accumulation into
 * what the gradient arrays held, and frozen factors (NULL gradients); the
 * merge against W + s B A in double, and merging with -s undoing it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lora.h"

enum { N = 5, IN = 7, OUT = 6, R = 3 };
static const double SCALE = 0.75; /* alpha / R, away from 1 so a lost scale shows */

/* n standard normal floats */
static void fill_normal(float *v, size_t n, unsigned long long *rng)
{
    for (size_t i = 0; i < n; i++) v[i] = (float)check_normal(rng);
}

static void widen(const float *f, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = f[i];
}

/* s (x_i A^T) B_j^T in double, x rows of stride ldx */
static double lora_term(const double *a, const double *b, int rank, int in, double s, const double *x, int ldx,
                        int i, int j)
{
    double y = 0;
    for (int r = 0; r < rank; r++) {
        double u = 0;
        for (int k = 0; k < in; k++) u += x[(size_t)i * ldx + k] * a[(size_t)r * in + k];
        y += u * b[(size_t)j * rank + r];
    }
    return s * y;
}

/* sum over [N, OUT] of dy * s (x A^T) B^T */
static double loss(const double *a, const double *b, const double *x, const double *dy)
{
    double l = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) l += dy[i * OUT + j] * lora_term(a, b, R, IN, SCALE, x, IN, i, j);
    return l;
}

typedef struct problem {
    float a[R * IN], b[OUT * R], x[N * IN], dy[N * OUT];
    double da[R * IN], db[OUT * R], dx[N * IN], ddy[N * OUT]; /* the same in double */
} problem;

static void make(problem *p, unsigned long long seed)
{
    unsigned long long rng = seed;
    fill_normal(p->a, R * IN, &rng);
    fill_normal(p->b, OUT * R, &rng); /* a trained B: not zero */
    fill_normal(p->x, N * IN, &rng);
    fill_normal(p->dy, N * OUT, &rng);
    widen(p->a, p->da, R * IN);
    widen(p->b, p->db, OUT * R);
    widen(p->x, p->dx, N * IN);
    widen(p->dy, p->ddy, N * OUT);
}

static void test_forward(void)
{
    problem p;
    make(&p, 1);
    unsigned long long rng = 2;
    float y0[N * OUT], y[N * OUT], u[N * R];
    fill_normal(y0, N * OUT, &rng);
    memcpy(y, y0, sizeof y);
    llm_lora_forward(p.a, p.b, R, IN, OUT, (float)SCALE, p.x, N, u, y);
    for (int i = 0; i < N; i++) {
        for (int r = 0; r < R; r++) {
            double want = 0;
            for (int k = 0; k < IN; k++) want += p.dx[i * IN + k] * p.da[r * IN + k];
            CHECK_NEAR(u[i * R + r], want, 1e-5);
        }
        for (int j = 0; j < OUT; j++) /* added to what y held */
            CHECK_NEAR(y[i * OUT + j], y0[i * OUT + j] + lora_term(p.da, p.db, R, IN, SCALE, p.dx, IN, i, j), 1e-5);
    }
}

/* The largest |g - fd| against the largest |fd|, for count values. */
static void check_gradient(const char *what, const float *g, const float *g0, const double *fd, int count)
{
    double gmax = 0, worst = 0;
    int at = 0;
    for (int i = 0; i < count; i++) gmax = fmax(gmax, fabs(fd[i]));
    for (int i = 0; i < count; i++) {
        double d = fabs((g[i] - (double)g0[i]) - fd[i]);
        if (d > worst) worst = d, at = i;
    }
    CHECK_MSG(gmax > 0.1, "%s: finite differences all but zero (%g)", what, gmax);
    CHECK_MSG(worst <= 1e-5 * gmax + 1e-5, "%s[%d]: analytic %.8g, finite difference %.8g", what, at,
              g[at] - (double)g0[at], fd[at]);
}

/* central differences of loss() in each of the count values of v */
static void finite_differences(problem *p, double *v, int count, double *fd)
{
    const double eps = 1e-3; /* loss is linear in each value: only rounding remains */
    for (int i = 0; i < count; i++) {
        double keep = v[i];
        v[i] = keep + eps;
        double lp = loss(p->da, p->db, p->dx, p->ddy);
        v[i] = keep - eps;
        double lm = loss(p->da, p->db, p->dx, p->ddy);
        v[i] = keep;
        fd[i] = (lp - lm) / (2 * eps);
    }
}

static void test_backward(void)
{
    problem p;
    make(&p, 3);
    unsigned long long rng = 4;
    float u[N * R], y[N * OUT] = {0}, du[N * R], ga0[R * IN], gb0[OUT * R], dx0[N * IN], ga[R * IN],
          gb[OUT * R], dx[N * IN];
    llm_lora_forward(p.a, p.b, R, IN, OUT, (float)SCALE, p.x, N, u, y);
    /* the gradients add to what the arrays hold; du is overwritten */
    fill_normal(ga0, R * IN, &rng);
    fill_normal(gb0, OUT * R, &rng);
    fill_normal(dx0, N * IN, &rng);
    memcpy(ga, ga0, sizeof ga);
    memcpy(gb, gb0, sizeof gb);
    memcpy(dx, dx0, sizeof dx);
    for (int i = 0; i < N * R; i++) du[i] = 1e3f;
    llm_lora_backward_weights(p.b, R, IN, OUT, (float)SCALE, p.x, u, p.dy, N, du, ga, gb);
    llm_lora_backward_input(p.a, R, IN, du, N, dx);

    for (int i = 0; i < N; i++)
        for (int r = 0; r < R; r++) {
            double want = 0;
            for (int j = 0; j < OUT; j++) want += SCALE * p.ddy[i * OUT + j] * p.db[j * R + r];
            CHECK_NEAR(du[i * R + r], want, 1e-5);
        }
    double fa[R * IN], fb[OUT * R], fx[N * IN];
    finite_differences(&p, p.da, R * IN, fa);
    finite_differences(&p, p.db, OUT * R, fb);
    finite_differences(&p, p.dx, N * IN, fx);
    check_gradient("dA", ga, ga0, fa, R * IN);
    check_gradient("dB", gb, gb0, fb, OUT * R);
    check_gradient("dx", dx, dx0, fx, N * IN);

    /* frozen factors: du alone, the same */
    float du2[N * R];
    llm_lora_backward_weights(p.b, R, IN, OUT, (float)SCALE, p.x, u, p.dy, N, du2, NULL, NULL);
    CHECK(!memcmp(du, du2, sizeof du));
}

/* y[i, r0..r1) += the update for n rows of stride ldx into rows of stride
 * ldy; every other float of y, the padding included, untouched. */
static void check_rows(int n, int in, int ldx, int out, int ldy, int rank, int r0, int r1)
{
    unsigned long long rng = (unsigned long long)(n * 1000 + rank);
    size_t na = (size_t)rank * in, nb = (size_t)out * rank, nx = (size_t)n * ldx, ny = (size_t)n * ldy;
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *x = malloc(nx * sizeof *x),
          *y = malloc(ny * sizeof *y), *y0 = malloc(ny * sizeof *y0);
    double *da = malloc(na * sizeof *da), *db = malloc(nb * sizeof *db), *dx = malloc(nx * sizeof *dx);
    fill_normal(a, na, &rng);
    fill_normal(b, nb, &rng);
    fill_normal(x, nx, &rng);
    fill_normal(y0, ny, &rng);
    widen(a, da, na);
    widen(b, db, nb);
    widen(x, dx, nx);
    memcpy(y, y0, ny * sizeof *y);
    llm_lora_rows(a, b, rank, in, (float)SCALE, x, n, ldx, y, ldy, r0, r1);
    double worst = 0;
    int untouched = 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ldy; j++) {
            size_t at = (size_t)i * ldy + j;
            if (j >= r0 && j < r1) {
                double want = y0[at] + lora_term(da, db, rank, in, SCALE, dx, ldx, i, j);
                worst = fmax(worst, fabs(y[at] - want) / (1 + sqrt((double)rank * in)));
            } else {
                untouched &= y[at] == y0[at];
            }
        }
    CHECK_MSG(worst <= 1e-5, "n %d rank %d columns %d..%d: off by %g", n, rank, r0, r1, worst);
    CHECK_MSG(untouched, "n %d rank %d columns %d..%d: a float outside them changed", n, rank, r0, r1);
    free(a), free(b), free(x), free(y), free(y0), free(da), free(db), free(dx);
}

static void test_rows(void)
{
    check_rows(37, 7, 9, 6, 8, 3, 2, 5);    /* three blocks of rows, a middle band, padded strides */
    check_rows(16, 7, 7, 6, 6, 3, 0, 6);    /* one whole block, every column */
    check_rows(17, 3, 4, 2, 2, LLM_LORA_MAX_RANK, 0, 2);
    check_rows(5, 7, 7, 6, 6, 3, 4, 4);     /* an empty band: nothing */
    check_rows(0, 7, 7, 6, 6, 3, 0, 6);     /* no rows */
}

static void test_merge(void)
{
    problem p;
    make(&p, 5);
    unsigned long long rng = 6;
    float w0[OUT * IN], w[OUT * IN];
    fill_normal(w0, OUT * IN, &rng);
    memcpy(w, w0, sizeof w);
    llm_lora_merge(p.a, p.b, R, IN, OUT, (float)SCALE, w);
    double worst = 0;
    for (int j = 0; j < OUT; j++)
        for (int k = 0; k < IN; k++) {
            double sba = 0;
            for (int r = 0; r < R; r++) sba += p.db[j * R + r] * p.da[r * IN + k];
            worst = fmax(worst, fabs(w[j * IN + k] - (w0[j * IN + k] + SCALE * sba)));
        }
    CHECK_MSG(worst <= 1e-5, "W + s B A off by %g", worst);
    /* merging with -s takes it out again, to float rounding */
    llm_lora_merge(p.a, p.b, R, IN, OUT, -(float)SCALE, w);
    worst = 0;
    for (int i = 0; i < OUT * IN; i++) worst = fmax(worst, fabs(w[i] - w0[i]));
    CHECK_MSG(worst <= 1e-5, "unmerged W off by %g", worst);
}

int main(void)
{
    RUN(test_forward);
    RUN(test_backward);
    RUN(test_rows);
    RUN(test_merge);
    return check_done();
}
