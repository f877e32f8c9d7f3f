/* Unit tests for lib/rope: the table of every scaling against frequencies
 * computed here in long double straight from the formulas in rope.h (not from
 * the library's algebra), the defining property of each scaling, YaRN's
 * attention factor, the rotation's invariants (norms, relative positions,
 * inverse), the row layout of llm_rope_apply, kind names, and bad arguments.
 *
 * Tolerances.  Frequencies are doubles from pow(): a few ulps, so they are
 * compared to the long-double reference at 1e-13 relative.  The table holds
 * cos and sin of a double angle rounded to float: 6e-8 absolute at most, plus
 * the double angle's error (p * 1e-16), so 2e-7 absolute.  Rotations in float
 * keep a pair's norm to a few float ulps (1e-6 relative); a 64-term q.k of
 * rotated unit-variance vectors carries about 1e-6 absolute error, checked at
 * 2e-5 * |q| |k|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rope.h"

#define PI_L 3.141592653589793238462643383279502884L
#define TOL_FREQ 1e-13
#define TOL_TABLE 2e-7

/* The kinds' names, as llm-gen's --rope-scaling spells them, by llm_rope_kind. */
static const char *const kind_names[] = {"none", "linear", "ntk", "dynamic-ntk", "yarn"};

/* ---- the long-double reference ------------------------------------------ */

/* Scaling parameters of one test case. */
typedef struct {
    llm_rope_kind kind;
    long double F;
    int orig, cur;
    long double alpha, beta; /* as passed: 0 = default */
} ref_case;

/* f'_i for i = 0..d/2-1, from rope.h's formulas. */
static void ref_freqs(long double *out, int d, int max_pos, long double theta, const ref_case *c)
{
    long double base = theta;
    if (c->kind == LLM_ROPE_NTK) base = theta * powl(c->F, (long double)d / (d - 2));
    if (c->kind == LLM_ROPE_DYNAMIC_NTK) {
        long double L = c->cur ? c->cur : max_pos;
        if (L > c->orig)
            base = theta * powl(c->F * L / c->orig - (c->F - 1), (long double)d / (d - 2));
    }
    long double alpha = c->alpha ? c->alpha : 1, beta = c->beta ? c->beta : 32;
    for (int i = 0; i < d / 2; i++) {
        long double f0 = powl(theta, -2.0L * i / d), f = powl(base, -2.0L * i / d);
        if (c->kind == LLM_ROPE_LINEAR) f = f0 / c->F;
        if (c->kind == LLM_ROPE_YARN) {
            long double lambda = 2 * PI_L / f0, r = c->orig / lambda;
            long double g = (r - alpha) / (beta - alpha);
            g = g < 0 ? 0 : g > 1 ? 1 : g;
            f = (1 - g) * f0 / c->F + g * f0;
        }
        out[i] = f;
    }
}

static llm_rope_scaling to_scaling(const ref_case *c)
{
    return (llm_rope_scaling){.kind = c->kind, .factor = (double)c->F, .orig_ctx = c->orig,
                              .cur_len = c->cur, .yarn_alpha = (double)c->alpha,
                              .yarn_beta = (double)c->beta};
}

/* One case of each kind, scaled hard enough to differ from none. */
static const ref_case cases[] = {
    {LLM_ROPE_NONE, 1, 0, 0, 0, 0},
    {LLM_ROPE_LINEAR, 4, 0, 0, 0, 0},
    {LLM_ROPE_LINEAR, 3, 0, 0, 0, 0},
    {LLM_ROPE_NTK, 4, 0, 0, 0, 0},
    {LLM_ROPE_NTK, 8, 0, 0, 0, 0},
    {LLM_ROPE_DYNAMIC_NTK, 2, 128, 512, 0, 0},
    {LLM_ROPE_DYNAMIC_NTK, 4, 100, 0, 0, 0}, /* cur_len 0 = max_pos */
    {LLM_ROPE_YARN, 4, 2048, 0, 0, 0},
    {LLM_ROPE_YARN, 8, 512, 0, 2, 16},
    {LLM_ROPE_YARN, 16, 128, 0, 0, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static unsigned long long seed = 42;

static void fill_normal(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)check_normal(&seed);
}

/* llm_rope_init_scaled with positions 0..P-1 tabulated at once. */
static int init_table(llm_rope *r, int d, int P, double theta, const llm_rope_scaling *s, llm_error *err)
{
    LLM_TRY(llm_rope_init_scaled(r, d, P, theta, s, err));
    return llm_rope_reserve(r, P, err);
}

/* ---- tables against the reference --------------------------------------- */

static void test_tables_match_reference(void)
{
    const int d = 64, P = 512, half = d / 2;
    const double theta = 10000;
    llm_error err = {0};
    for (int k = 0; k < N_CASES; k++) {
        const ref_case *c = &cases[k];
        llm_rope_scaling s = to_scaling(c);
        long double ref[32];
        double got[32];
        ref_freqs(ref, d, P, theta, c);
        CHECK_OK(llm_rope_freqs(got, d, P, theta, &s, &err), err);
        for (int i = 0; i < half; i++)
            CHECK_MSG(fabsl(got[i] - ref[i]) <= TOL_FREQ * ref[i],
                      "case %d (%s) pair %d: freq %.17g, reference %.17Lg", k,
                      kind_names[c->kind], i, got[i], ref[i]);
        llm_rope r;
        CHECK_OK(init_table(&r, d, P, theta, &s, &err), err);
        CHECK(r.head_dim == d && r.max_pos == P);
        double worst = 0;
        for (int p = 0; p < P; p++)
            for (int i = 0; i < half; i++) {
                long double a = p * ref[i];
                double ec = fabs(r.cos[p * half + i] - (double)cosl(a));
                double es = fabs(r.sin[p * half + i] - (double)sinl(a));
                if (ec > worst) worst = ec;
                if (es > worst) worst = es;
            }
        CHECK_MSG(worst <= TOL_TABLE, "case %d (%s): table off by %g", k,
                  kind_names[c->kind], worst);
        llm_rope_free(&r);
    }
}

/* llm_rope_init, a NULL scaling and kind none (whatever its other fields)
 * build the same table, bit for bit. */
static void test_none_is_plain_rope(void)
{
    llm_error err = {0};
    llm_rope a, b, c;
    llm_rope_scaling s = {.kind = LLM_ROPE_NONE, .factor = 0.25, .orig_ctx = -3};
    CHECK_OK(llm_rope_init(&a, 48, 300, 500000.0, &err), err);
    CHECK_OK(llm_rope_reserve(&a, 300, &err), err);
    CHECK_OK(init_table(&b, 48, 300, 500000.0, NULL, &err), err);
    CHECK_OK(init_table(&c, 48, 300, 500000.0, &s, &err), err);
    size_t n = 300 * 24 * sizeof(float);
    CHECK(!memcmp(a.cos, b.cos, n) && !memcmp(a.sin, b.sin, n));
    CHECK(!memcmp(a.cos, c.cos, n) && !memcmp(a.sin, c.sin, n));
    llm_rope_free(&a);
    llm_rope_free(&b);
    llm_rope_free(&c);
}

/* ---- the defining property of each scaling ------------------------------- */

/* Position interpolation: position p*F under linear is position p unscaled. */
static void test_linear_interpolates_positions(void)
{
    const int d = 32, P = 1024, half = d / 2;
    llm_error err = {0};
    llm_rope none, lin4, lin3;
    llm_rope_scaling s4 = {.kind = LLM_ROPE_LINEAR, .factor = 4};
    llm_rope_scaling s3 = {.kind = LLM_ROPE_LINEAR, .factor = 3};
    CHECK_OK(init_table(&none, d, P, 10000, NULL, &err), err);
    CHECK_OK(init_table(&lin4, d, P, 10000, &s4, &err), err);
    CHECK_OK(init_table(&lin3, d, P, 10000, &s3, &err), err);
    for (int p = 0; 4 * p < P; p++) /* F = 4: f/4 and 4p are exact, so bitwise */
        CHECK_MSG(!memcmp(lin4.cos + 4 * p * half, none.cos + p * half, half * sizeof(float)) &&
                      !memcmp(lin4.sin + 4 * p * half, none.sin + p * half, half * sizeof(float)),
                  "linear F=4 at position %d differs from none at %d", 4 * p, p);
    for (int p = 0; 3 * p < P; p++)
        for (int i = 0; i < half; i++) {
            CHECK_NEAR(lin3.cos[3 * p * half + i], none.cos[p * half + i], 1e-7);
            CHECK_NEAR(lin3.sin[3 * p * half + i], none.sin[p * half + i], 1e-7);
        }
    llm_rope_free(&none);
    llm_rope_free(&lin4);
    llm_rope_free(&lin3);
}

/* NTK: base*F^(d/(d-2)) makes the lowest frequency exactly linear's (it
 * interpolates by F) and leaves the highest alone; in between the ratio to
 * the unscaled frequency falls monotonically from 1 to 1/F. */
static void test_ntk_extremes(void)
{
    llm_error err = {0};
    const int dims[] = {4, 8, 64, 128};
    const double factors[] = {1, 2, 4, 8, 32};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 5; b++) {
            int d = dims[a], half = d / 2;
            double F = factors[b], none[64], lin[64], ntk[64];
            llm_rope_scaling sl = {.kind = LLM_ROPE_LINEAR, .factor = F};
            llm_rope_scaling sn = {.kind = LLM_ROPE_NTK, .factor = F};
            CHECK_OK(llm_rope_freqs(none, d, 16, 10000, NULL, &err), err);
            CHECK_OK(llm_rope_freqs(lin, d, 16, 10000, &sl, &err), err);
            CHECK_OK(llm_rope_freqs(ntk, d, 16, 10000, &sn, &err), err);
            CHECK_MSG(ntk[0] == none[0], "d %d F %g: highest frequency %.17g, unscaled %.17g", d,
                      F, ntk[0], none[0]);
            CHECK_MSG(fabs(ntk[half - 1] - lin[half - 1]) <= 1e-14 * lin[half - 1],
                      "d %d F %g: lowest frequency %.17g, linear's %.17g", d, F, ntk[half - 1],
                      lin[half - 1]);
            for (int i = 1; i < half; i++) {
                double q0 = ntk[i - 1] / none[i - 1], q1 = ntk[i] / none[i];
                CHECK_MSG(F == 1 ? q1 == 1 : q1 < q0 && q1 >= 1 / F * (1 - 1e-14),
                          "d %d F %g pair %d: ratio %.17g after %.17g", d, F, i, q1, q0);
            }
        }
}

/* Dynamic NTK: unscaled while the length in use fits the trained context;
 * beyond, NTK with the factor F*L/orig - (F-1). */
static void test_dynamic_ntk(void)
{
    const int d = 64, half = d / 2;
    llm_error err = {0};
    llm_rope none, dyn;
    CHECK_OK(init_table(&none, d, 256, 10000, NULL, &err), err);
    const int lens[] = {1, 100, 255, 256};
    for (int j = 0; j < 4; j++) { /* cur_len <= orig_ctx */
        llm_rope_scaling s = {.kind = LLM_ROPE_DYNAMIC_NTK, .factor = 4, .orig_ctx = 256,
                              .cur_len = lens[j]};
        CHECK_OK(init_table(&dyn, d, 256, 10000, &s, &err), err);
        CHECK_MSG(!memcmp(dyn.cos, none.cos, 256 * half * sizeof(float)) &&
                      !memcmp(dyn.sin, none.sin, 256 * half * sizeof(float)),
                  "dynamic NTK at length %d <= 256 is not the unscaled table", lens[j]);
        llm_rope_free(&dyn);
    }
    llm_rope_scaling s0 = {.kind = LLM_ROPE_DYNAMIC_NTK, .factor = 4, .orig_ctx = 256};
    CHECK_OK(init_table(&dyn, d, 256, 10000, &s0, &err), err); /* cur_len 0: max_pos */
    CHECK(!memcmp(dyn.cos, none.cos, 256 * half * sizeof(float)));
    llm_rope_free(&dyn);
    llm_rope_free(&none);

    double got[32], ntk[32], none_f[32];
    llm_rope_scaling s = {.kind = LLM_ROPE_DYNAMIC_NTK, .factor = 2, .orig_ctx = 128,
                          .cur_len = 512};
    llm_rope_scaling n = {.kind = LLM_ROPE_NTK, .factor = 2.0 * 512 / 128 - 1};
    CHECK_OK(llm_rope_freqs(got, d, 1024, 10000, &s, &err), err);
    CHECK_OK(llm_rope_freqs(ntk, d, 1024, 10000, &n, &err), err);
    CHECK_OK(llm_rope_freqs(none_f, d, 1024, 10000, NULL, &err), err);
    for (int i = 0; i < half; i++) CHECK_NEAR(got[i] / ntk[i], 1.0, 1e-14);
    CHECK(got[half - 1] < none_f[half - 1]);
}

/* YaRN: pairs turning more than beta times over the trained context keep
 * their frequency, pairs turning less than alpha times are divided by F, the
 * ratio falls monotonically across the ramp; 0 for alpha/beta means 1/32. */
static void test_yarn_ramp(void)
{
    const int d = 64, half = d / 2;
    const double theta = 10000, F = 8;
    llm_error err = {0};
    const double ab[][2] = {{1, 32}, {2, 16}, {0.5, 4}};
    for (int j = 0; j < 3; j++) {
        double none[32], y[32];
        llm_rope_scaling s = {.kind = LLM_ROPE_YARN, .factor = F, .orig_ctx = 2048,
                              .yarn_alpha = ab[j][0], .yarn_beta = ab[j][1]};
        CHECK_OK(llm_rope_freqs(none, d, 16, theta, NULL, &err), err);
        CHECK_OK(llm_rope_freqs(y, d, 16, theta, &s, &err), err);
        int n_keep = 0, n_interp = 0, n_ramp = 0;
        double last = 2;
        for (int i = 0; i < half; i++) {
            long double r = 2048.0L / (2 * PI_L / powl(theta, -2.0L * i / d));
            double q = y[i] / none[i];
            if (r > ab[j][1]) {
                n_keep++;
                CHECK_MSG(y[i] == none[i], "alpha %g beta %g pair %d (r %.3Lg): %.17g, not %.17g",
                          ab[j][0], ab[j][1], i, r, y[i], none[i]);
            } else if (r < ab[j][0]) {
                n_interp++;
                CHECK_MSG(fabs(q - 1 / F) <= 1e-15, "alpha %g beta %g pair %d (r %.3Lg): ratio %.17g",
                          ab[j][0], ab[j][1], i, r, q);
            } else {
                n_ramp++;
                CHECK_MSG(q > 1 / F && q < 1, "pair %d in the ramp: ratio %.17g", i, q);
            }
            CHECK_MSG(i == 0 || q < last || (q == last && (q == 1 || fabs(q - 1 / F) < 1e-15)),
                      "alpha %g beta %g: ratio rises at pair %d (%.17g after %.17g)", ab[j][0],
                      ab[j][1], i, q, last);
            last = q;
        }
        CHECK_MSG(n_keep > 0 && n_interp > 0 && n_ramp > 1,
                  "alpha %g beta %g: %d kept, %d interpolated, %d in the ramp", ab[j][0],
                  ab[j][1], n_keep, n_interp, n_ramp);
    }
    llm_rope a, b;
    llm_rope_scaling s0 = {.kind = LLM_ROPE_YARN, .factor = 4, .orig_ctx = 256};
    llm_rope_scaling s1 = {.kind = LLM_ROPE_YARN, .factor = 4, .orig_ctx = 256, .yarn_alpha = 1,
                           .yarn_beta = 32};
    CHECK_OK(init_table(&a, d, 1024, theta, &s0, &err), err);
    CHECK_OK(init_table(&b, d, 1024, theta, &s1, &err), err);
    CHECK(!memcmp(a.cos, b.cos, 1024 * half * sizeof(float)) &&
          !memcmp(a.sin, b.sin, 1024 * half * sizeof(float)));
    llm_rope_free(&a);
    llm_rope_free(&b);
}

/* Linear, NTK and YaRN with F = 1 are the unscaled table; dynamic NTK with
 * F = 1 still scales beyond the trained context, as NTK by L/orig_ctx. */
static void test_factor_one(void)
{
    llm_error err = {0};
    double none[32], got[32], ntk[32];
    CHECK_OK(llm_rope_freqs(none, 64, 4096, 10000, NULL, &err), err);
    llm_rope_scaling dyn = {.kind = LLM_ROPE_DYNAMIC_NTK, .factor = 1, .orig_ctx = 512};
    llm_rope_scaling n8 = {.kind = LLM_ROPE_NTK, .factor = 4096 / 512};
    CHECK_OK(llm_rope_freqs(got, 64, 4096, 10000, &dyn, &err), err);
    CHECK_OK(llm_rope_freqs(ntk, 64, 4096, 10000, &n8, &err), err);
    for (int i = 0; i < 32; i++) CHECK_NEAR(got[i] / ntk[i], 1.0, 1e-14);
    for (int k = LLM_ROPE_LINEAR; k <= LLM_ROPE_YARN; k++) {
        if (k == LLM_ROPE_DYNAMIC_NTK) continue;
        llm_rope_scaling s = {.kind = (llm_rope_kind)k, .factor = 1, .orig_ctx = 512};
        CHECK_OK(llm_rope_freqs(got, 64, 4096, 10000, &s, &err), err);
        for (int i = 0; i < 32; i++)
            CHECK_MSG(fabs(got[i] - none[i]) <= 1e-15 * none[i], "%s F=1 pair %d: %.17g vs %.17g",
                      kind_names[k], i, got[i], none[i]);
    }
}

static void test_attn_scale(void)
{
    CHECK(llm_rope_attn_scale(NULL) == 1.0f);
    for (int k = LLM_ROPE_NONE; k <= LLM_ROPE_DYNAMIC_NTK; k++) {
        llm_rope_scaling s = {.kind = (llm_rope_kind)k, .factor = 8, .orig_ctx = 128};
        CHECK_MSG(llm_rope_attn_scale(&s) == 1.0f, "%s: %g",
                  kind_names[k], (double)llm_rope_attn_scale(&s));
    }
    llm_rope_scaling y = {.kind = LLM_ROPE_YARN, .factor = 1, .orig_ctx = 128};
    CHECK(llm_rope_attn_scale(&y) == 1.0f);
    const double F[] = {2, 4, 8, 16, 32};
    for (int j = 0; j < 5; j++) {
        y.factor = F[j];
        double m = 0.1 * log(F[j]) + 1;
        CHECK_NEAR(llm_rope_attn_scale(&y), m * m, 1e-6);
    }
    y.factor = 4;
    CHECK_NEAR(llm_rope_attn_scale(&y), 1.2964762, 1e-6); /* (0.1 ln 4 + 1)^2 */
    y.factor = exp(10.0);
    CHECK_NEAR(llm_rope_attn_scale(&y), 4.0, 1e-6); /* (0.1*10 + 1)^2 */
}

/* ---- the table, position by position --------------------------------------- */

/* A context of 2^22 positions tabulates nothing until positions are used;
 * growing the table step by step gives the same bits as tabulating it at
 * once; positions beyond the context are refused, leaving the table as it
 * was. */
static void test_reserve_grows_lazily(void)
{
    const int d = 64, half = d / 2, P = 1000;
    llm_error err = {0};
    llm_rope_scaling s = {.kind = LLM_ROPE_YARN, .factor = 4, .orig_ctx = 128};
    llm_rope big, once, steps;
    CHECK_OK(llm_rope_init_scaled(&big, d, 1 << 22, 10000, &s, &err), err);
    CHECK(big.max_pos == 1 << 22 && big.n_pos == 0 && big.cap == 0 && !big.cos && !big.sin);
    CHECK_OK(llm_rope_reserve(&big, 10, &err), err);
    CHECK_MSG(big.n_pos == 10 && big.cap == 10, "10 positions: %d tabulated, room for %d", big.n_pos, big.cap);
    CHECK_OK(llm_rope_reserve(&big, 11, &err), err);
    CHECK_MSG(big.n_pos == 11 && big.cap == 20, "11 positions: %d tabulated, room for %d", big.n_pos, big.cap);
    llm_rope_free(&big);

    CHECK_OK(init_table(&once, d, P, 10000, &s, &err), err);
    CHECK_OK(llm_rope_init_scaled(&steps, d, P, 10000, &s, &err), err);
    const int at[] = {1, 5, 5, 3, 37, 300, 999, 1000};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        CHECK_OK(llm_rope_reserve(&steps, at[k], &err), err);
        int n = at[k] > steps.n_pos ? at[k] : steps.n_pos;
        CHECK_MSG(steps.n_pos == n && steps.cap >= n && steps.cap <= P, "after %d: %d tabulated, room for %d",
                  at[k], steps.n_pos, steps.cap);
        CHECK_MSG(!memcmp(steps.cos, once.cos, (size_t)steps.n_pos * half * sizeof(float)) &&
                      !memcmp(steps.sin, once.sin, (size_t)steps.n_pos * half * sizeof(float)),
                  "after %d positions the table differs from the one built at once", at[k]);
    }
    CHECK(llm_rope_reserve(&steps, P + 1, &err) == LLM_ERR_ARG && strstr(err.msg, "position 1000 beyond"));
    CHECK(steps.n_pos == P);
    llm_rope_free(&once);
    llm_rope_free(&steps);
}

/* ---- the rotation --------------------------------------------------------- */

static void test_rotation_preserves_norms(void)
{
    const int d = 64, P = 1024, half = d / 2;
    llm_error err = {0};
    float *x = malloc(P * d * sizeof *x), *y = malloc(P * d * sizeof *y);
    fill_normal(x, (size_t)P * d);
    for (int k = 0; k < N_CASES; k++) {
        llm_rope r;
        llm_rope_scaling s = to_scaling(&cases[k]);
        CHECK_OK(init_table(&r, d, P, 10000, &s, &err), err);
        memcpy(y, x, P * d * sizeof *y);
        llm_rope_apply(&r, y, P, d, 1, P, 0, 0); /* row p at position p */
        double worst = 0;
        for (int p = 0; p < P; p++)
            for (int i = 0; i < half; i++) {
                const float *a = x + p * d + 2 * i, *b = y + p * d + 2 * i;
                double na = (double)a[0] * a[0] + (double)a[1] * a[1];
                double nb = (double)b[0] * b[0] + (double)b[1] * b[1];
                double e = fabs(nb - na) / (na + 1e-30);
                if (e > worst) worst = e;
            }
        CHECK_MSG(worst <= 1e-6, "case %d (%s): pair norm off by %g relative", k,
                  kind_names[cases[k].kind], worst);
        llm_rope_free(&r);
    }
    free(x);
    free(y);
}

/* q rotated to m and k rotated to n: q.k is q . R((n-m) f') k, the same for
 * every shift of both positions. */
static void test_dot_depends_on_distance(void)
{
    const int d = 64, P = 2048, half = d / 2;
    llm_error err = {0};
    float q[64], k[64], qr[64], kr[64];
    fill_normal(q, d);
    fill_normal(k, d);
    double nq = 0, nk = 0;
    for (int i = 0; i < d; i++) nq += (double)q[i] * q[i], nk += (double)k[i] * k[i];
    double tol = 2e-5 * sqrt(nq * nk);
    const int pairs[][2] = {{0, 0}, {5, 0}, {0, 17}, {300, 40}, {1000, 999}, {7, 1500}};
    const int shifts[] = {0, 1, 33, 400};
    for (int c = 0; c < N_CASES; c++) {
        llm_rope r;
        llm_rope_scaling s = to_scaling(&cases[c]);
        long double f[32];
        ref_freqs(f, d, P, 10000, &cases[c]);
        CHECK_OK(init_table(&r, d, P, 10000, &s, &err), err);
        for (int j = 0; j < 6; j++) {
            int m = pairs[j][0], n = pairs[j][1];
            long double want = 0;
            for (int i = 0; i < half; i++) {
                long double t = (n - m) * f[i], cs = cosl(t), sn = sinl(t);
                long double q0 = q[2 * i], q1 = q[2 * i + 1], k0 = k[2 * i], k1 = k[2 * i + 1];
                want += q0 * (k0 * cs - k1 * sn) + q1 * (k0 * sn + k1 * cs);
            }
            for (int h = 0; h < 4; h++) {
                memcpy(qr, q, sizeof q);
                memcpy(kr, k, sizeof k);
                llm_rope_apply(&r, qr, 1, d, 1, 1, m + shifts[h], 0);
                llm_rope_apply(&r, kr, 1, d, 1, 1, n + shifts[h], 0);
                double dot = 0;
                for (int i = 0; i < d; i++) dot += (double)qr[i] * kr[i];
                CHECK_MSG(fabs(dot - (double)want) <= tol,
                          "case %d (%s) m %d n %d shift %d: q.k %.9g, want %.9Lg", c,
                          kind_names[cases[c].kind], m, n, shifts[h], dot, want);
            }
        }
        llm_rope_free(&r);
    }
}

/* Rows i of B sequences of T at position pos0 + i % T, heads packed at the
 * start of rows of stride ld: the forward rotation matches the reference, the
 * padding is untouched, and the inverse rotation undoes it. */
static void test_apply_layout_and_inverse(void)
{
    const int d = 16, H = 3, B = 2, T = 5, ld = H * d + 3, pos0 = 7, half = d / 2;
    const int n = B * T;
    llm_error err = {0};
    float *x = malloc(n * ld * sizeof *x), *y = malloc(n * ld * sizeof *y);
    fill_normal(x, (size_t)n * ld);
    for (int c = 0; c < N_CASES; c++) {
        llm_rope r;
        llm_rope_scaling s = to_scaling(&cases[c]);
        long double f[8];
        ref_freqs(f, d, 64, 500.0, &cases[c]);
        CHECK_OK(init_table(&r, d, 64, 500.0, &s, &err), err);
        memcpy(y, x, n * ld * sizeof *y);
        llm_rope_apply(&r, y, n, ld, H, T, pos0, 0);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            int p = pos0 + i % T;
            for (int h = 0; h < H; h++)
                for (int k = 0; k < half; k++) {
                    const float *a = x + i * ld + h * d + 2 * k, *b = y + i * ld + h * d + 2 * k;
                    long double cs = cosl(p * f[k]), sn = sinl(p * f[k]);
                    double e0 = fabs(b[0] - (double)(a[0] * cs - a[1] * sn));
                    double e1 = fabs(b[1] - (double)(a[0] * sn + a[1] * cs));
                    if (e0 > worst) worst = e0;
                    if (e1 > worst) worst = e1;
                }
            CHECK(!memcmp(y + i * ld + H * d, x + i * ld + H * d, 3 * sizeof *x));
        }
        CHECK_MSG(worst <= 2e-6, "case %d (%s): rotation off by %g", c,
                  kind_names[cases[c].kind], worst);
        llm_rope_apply(&r, y, n, ld, H, T, pos0, 1);
        worst = 0;
        for (int i = 0; i < n * ld; i++)
            if (fabs(y[i] - x[i]) > worst) worst = fabs(y[i] - x[i]);
        CHECK_MSG(worst <= 2e-6, "case %d (%s): inverse leaves %g", c,
                  kind_names[cases[c].kind], worst);
        llm_rope_free(&r);
    }
    free(x);
    free(y);
}

/* ---- names and bad arguments ------------------------------------------- */

static void test_kind_names(void)
{
    for (int k = 0; k < 5; k++) CHECK(llm_rope_kind_parse(kind_names[k]) == k);
    const char *bad[] = {"", "NTK", "dynamic_ntk", "yarn ", "lin", NULL};
    for (int j = 0; j < 6; j++)
        CHECK_MSG(llm_rope_kind_parse(bad[j]) == LLM_ERR_ARG, "\"%s\" accepted",
                  bad[j] ? bad[j] : "(null)");
}

static void test_bad_arguments(void)
{
    struct {
        int d, P;
        double theta;
        llm_rope_scaling s;
        const char *says;
    } bad[] = {
        {63, 16, 10000, {LLM_ROPE_NONE, 1, 0, 0, 0, 0}, "even head size"},
        {0, 16, 10000, {LLM_ROPE_NONE, 1, 0, 0, 0, 0}, "even head size"},
        {64, 0, 10000, {LLM_ROPE_NONE, 1, 0, 0, 0, 0}, "bad positions"},
        {64, 16, 1.0, {LLM_ROPE_NONE, 1, 0, 0, 0, 0}, "base"},
        {64, 16, NAN, {LLM_ROPE_NONE, 1, 0, 0, 0, 0}, "base"},
        {64, 16, 10000, {(llm_rope_kind)7, 2, 16, 0, 0, 0}, "unknown scaling"},
        {64, 16, 10000, {LLM_ROPE_LINEAR, 0.5, 0, 0, 0, 0}, "linear: factor 0.5"},
        {64, 16, 10000, {LLM_ROPE_NTK, 0, 0, 0, 0, 0}, "ntk: factor 0"},
        {64, 16, 10000, {LLM_ROPE_YARN, NAN, 16, 0, 0, 0}, "factor"},
        {64, 16, 10000, {LLM_ROPE_LINEAR, INFINITY, 0, 0, 0, 0}, "factor"},
        {64, 16, 10000, {LLM_ROPE_DYNAMIC_NTK, 2, 0, 0, 0, 0}, "dynamic-ntk: needs the trained"},
        {64, 16, 10000, {LLM_ROPE_YARN, 2, -1, 0, 0, 0}, "yarn: needs the trained"},
        {64, 16, 10000, {LLM_ROPE_DYNAMIC_NTK, 2, 8, -1, 0, 0}, "sequence length -1"},
        {2, 16, 10000, {LLM_ROPE_NTK, 2, 0, 0, 0, 0}, "at least 4"},
        {2, 16, 10000, {LLM_ROPE_DYNAMIC_NTK, 2, 8, 0, 0, 0}, "at least 4"},
        {64, 16, 10000, {LLM_ROPE_YARN, 2, 8, 0, 32, 1}, "alpha 32, beta 1"},
        {64, 16, 10000, {LLM_ROPE_YARN, 2, 8, 0, -1, 0}, "alpha"},
        {64, 16, 10000, {LLM_ROPE_YARN, 2, 8, 0, 0, 0.5}, "alpha"},
        {64, 16, 10000, {LLM_ROPE_YARN, 2, 8, 0, 4, 4}, "alpha"},
    };
    for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
        llm_error err = {0};
        llm_rope r;
        memset(&r, 0xff, sizeof r);
        int rc = llm_rope_init_scaled(&r, bad[j].d, bad[j].P, bad[j].theta, &bad[j].s, &err);
        CHECK_MSG(rc == LLM_ERR_ARG && strstr(err.msg, bad[j].says) && !r.cos && !r.sin,
                  "case %zu: rc %d, message \"%s\", want \"%s\"", j, rc, err.msg, bad[j].says);
        double f[64];
        llm_error e2 = {0};
        CHECK(llm_rope_freqs(f, bad[j].d, bad[j].P, bad[j].theta, &bad[j].s, &e2) == LLM_ERR_ARG);
        llm_rope_free(&r);
    }
    llm_rope_free(NULL);
    /* what a kind does not need is not checked */
    llm_error err = {0};
    llm_rope r;
    llm_rope_scaling ok[] = {{LLM_ROPE_LINEAR, 2, 0, -5, -1, -1}, {LLM_ROPE_NTK, 2, 0, 0, 0, 0},
                             {LLM_ROPE_NONE, -1, -1, -1, -1, -1}, {LLM_ROPE_LINEAR, 2, 0, 0, 0, 0}};
    for (int j = 0; j < 4; j++) {
        CHECK_OK(llm_rope_init_scaled(&r, j == 3 ? 2 : 8, 16, 10000, &ok[j], &err), err);
        llm_rope_free(&r);
    }
}

int main(void)
{
    RUN(test_tables_match_reference);
    RUN(test_none_is_plain_rope);
    RUN(test_linear_interpolates_positions);
    RUN(test_ntk_extremes);
    RUN(test_dynamic_ntk);
    RUN(test_yarn_ramp);
    RUN(test_factor_one);
    RUN(test_attn_scale);
    RUN(test_reserve_grows_lazily);
    RUN(test_rotation_preserves_norms);
    RUN(test_dot_depends_on_distance);
    RUN(test_apply_layout_and_inverse);
    RUN(test_kind_names);
    RUN(test_bad_arguments);
    return check_done();
}
