/* Unit tests for lib/attn: the tiled (flash) forward and backward against an
 * independent double-precision reference written here (full softmax matrix,
 * analytic gradient), against central finite differences, and against the
 * library's own naive functions; masks (causal, sliding window), KV-cache
 * offsets, row strides, accumulation into dk/dv, and writes outside the
 * outputs; the naive functions out of memory.
 *
 * Tolerances.  The library computes in float32 (eps = 6e-8): a score is a
 * d-term dot product, a softmax row a sum of up to Tk terms, and an output a
 * convex combination of value rows, so each result carries a relative error
 * of a few hundred eps at most for the sizes here (the sums are blocked, the
 * error grows like sqrt of their length in practice).  We compare every
 * tensor to its reference as max|got - ref| <= tol * max(max|ref|, 1) with
 * tol = 1e-5 for the forward (out, and lse against 1 + |lse|) and 3e-5 for
 * the gradients, which sum one more product over Tq or Tk terms.  The worst
 * errors measured were 7e-7 (both passes, SSE2 and AVX2 builds), 14-40x
 * below.  Peaked softmax rows need more (test_forward_large_scores says why).
 * Comparisons that change no float operation (strides) are bitwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attn.h"
#include "check.h"
#include "nomem.h"

#ifndef TOL_FWD
#define TOL_FWD 1e-5
#endif
#ifndef TOL_BWD
#define TOL_BWD 3e-5
#endif

/* ---- the double-precision reference ------------------------------------- */

/* Does query row i see key j?  Written from the header's words, not the lib. */
static int ref_sees(const llm_attn_shape *s, int i, int j)
{
    long long p = (long long)s->q_pos0 + i;
    if (j < 0 || j >= s->n_kv || j > p) return 0;
    return s->window == 0 || j > p - s->window;
}

/* q [Tq, d], k and v [Tk, d], all contiguous doubles.  Fills out [Tq, d],
 * lse [Tq] and the probabilities P [Tq, Tk] (may be NULL). */
static void ref_forward(const llm_attn_shape *s, const double *q, const double *k,
                        const double *v, double *out, double *lse, double *P)
{
    const int Tq = s->n_q, Tk = s->n_kv, d = s->head_dim;
    double *row = malloc(((size_t)Tk + 1) * sizeof *row);
    for (int i = 0; i < Tq; i++) {
        double mx = -INFINITY;
        for (int j = 0; j < Tk; j++) {
            row[j] = -INFINITY;
            if (!ref_sees(s, i, j)) continue;
            double dot = 0;
            for (int c = 0; c < d; c++) dot += q[(size_t)i * d + c] * k[(size_t)j * d + c];
            row[j] = (double)s->scale * dot;
            if (row[j] > mx) mx = row[j];
        }
        double sum = 0;
        for (int j = 0; j < Tk; j++) sum += row[j] == -INFINITY ? 0 : exp(row[j] - mx);
        lse[i] = sum > 0 ? mx + log(sum) : -INFINITY;
        for (int c = 0; c < d; c++) out[(size_t)i * d + c] = 0;
        for (int j = 0; j < Tk; j++) {
            double p = row[j] == -INFINITY ? 0 : exp(row[j] - mx) / sum;
            if (P) P[(size_t)i * Tk + j] = p;
            for (int c = 0; c < d; c++) out[(size_t)i * d + c] += p * v[(size_t)j * d + c];
        }
    }
    free(row);
}

/* The analytic gradient of L = sum(out * dout):  dV = P^T dO,  dP = dO V^T,
 * dS = P * (dP - rowsum(P * dP)),  dQ = scale dS K,  dK = scale dS^T Q. */
static void ref_backward(const llm_attn_shape *s, const double *q, const double *k,
                         const double *v, const double *dout, double *dq, double *dk,
                         double *dv)
{
    const int Tq = s->n_q, Tk = s->n_kv, d = s->head_dim;
    double *out = malloc(((size_t)Tq * d + 1) * sizeof *out);
    double *lse = malloc(((size_t)Tq + 1) * sizeof *lse);
    double *P = malloc(((size_t)Tq * Tk + 1) * sizeof *P);
    double *dP = malloc(((size_t)Tk + 1) * sizeof *dP);
    ref_forward(s, q, k, v, out, lse, P);
    memset(dq, 0, (size_t)Tq * d * sizeof *dq);
    memset(dk, 0, (size_t)Tk * d * sizeof *dk);
    memset(dv, 0, (size_t)Tk * d * sizeof *dv);
    for (int i = 0; i < Tq; i++) {
        const double *pi = P + (size_t)i * Tk, *go = dout + (size_t)i * d;
        double rs = 0;
        for (int j = 0; j < Tk; j++) {
            double dot = 0;
            for (int c = 0; c < d; c++) dot += go[c] * v[(size_t)j * d + c];
            dP[j] = dot;
            rs += pi[j] * dot;
        }
        for (int j = 0; j < Tk; j++) {
            double ds = pi[j] * (dP[j] - rs) * s->scale;
            for (int c = 0; c < d; c++) {
                dv[(size_t)j * d + c] += pi[j] * go[c];
                dq[(size_t)i * d + c] += ds * k[(size_t)j * d + c];
                dk[(size_t)j * d + c] += ds * q[(size_t)i * d + c];
            }
        }
    }
    free(out), free(lse), free(P), free(dP);
}

/* ---- helpers -------------------------------------------------------------- */

static double *widen(const float *x, size_t n)
{
    double *y = malloc((n + 1) * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

static double max_abs(const double *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

static double max_abs_f(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > m) m = fabs(x[i]);
    return m;
}

/* max|got - ref| <= tol * max(max|ref|, 1), reported with the place.  The
 * floor of 1 is the size of the operands (inputs are N(0, 1)): float errors
 * are relative to the terms summed, and a result can cancel to ~0 (with one
 * key, dq is exactly 0 but computed from terms of size 1). */
static int close_to(const char *what, const float *got, int ld, const double *ref, int rows,
                    int d, double tol, const char *ctx)
{
    double scale = max_abs(ref, (size_t)rows * d), worst = 0;
    int wi = 0, wc = 0;
    if (scale < 1) scale = 1;
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < d; c++) {
            double e = fabs((double)got[(size_t)i * ld + c] - ref[(size_t)i * d + c]);
            if (!(e <= worst)) worst = e, wi = i, wc = c; /* NaN counts as worst */
        }
    return CHECK_MSG(worst <= tol * scale, "%s: %s[%d][%d] = %.9g, reference %.9g (error %.3g, "
                     "allowed %.3g)", ctx, what, wi, wc, (double)got[(size_t)wi * ld + wc],
                     ref[(size_t)wi * d + wc], worst, tol * scale);
}

static int lse_close(const float *got, const double *ref, int n, double tol, const char *ctx)
{
    for (int i = 0; i < n; i++) {
        if (ref[i] == -INFINITY) {
            if (!CHECK_MSG(got[i] == -INFINITY, "%s: lse[%d] = %g, want -inf", ctx, i,
                           (double)got[i]))
                return 0;
            continue;
        }
        if (!CHECK_MSG(fabs(got[i] - ref[i]) <= tol * (1 + fabs(ref[i])),
                       "%s: lse[%d] = %.9g, reference %.9g", ctx, i, (double)got[i], ref[i]))
            return 0;
    }
    return 1;
}

/* One forward case, contiguous, against the double reference; q ~ N(0, qsd^2). */
static void forward_case(llm_attn_shape s, double qsd, double tol, unsigned long long seed)
{
    unsigned long long rng = seed;
    const int Tq = s.n_q, Tk = s.n_kv, d = s.head_dim;
    char ctx[128];
    snprintf(ctx, sizeof ctx, "Tq=%d Tk=%d pos0=%d d=%d window=%d", Tq, Tk, s.q_pos0, d,
             s.window);
    float *q = check_randn((size_t)Tq * d, qsd, &rng), *k = check_randn((size_t)Tk * d, 1, &rng);
    float *v = check_randn((size_t)Tk * d, 1, &rng);
    float *out = malloc(((size_t)Tq * d + 1) * sizeof *out);
    float *lse = malloc(((size_t)Tq + 1) * sizeof *lse);
    double *qd = widen(q, (size_t)Tq * d), *kd = widen(k, (size_t)Tk * d);
    double *vd = widen(v, (size_t)Tk * d);
    double *ro = malloc(((size_t)Tq * d + 1) * sizeof *ro);
    double *rl = malloc(((size_t)Tq + 1) * sizeof *rl);
    ref_forward(&s, qd, kd, vd, ro, rl, NULL);
    llm_attn_forward(&s, q, d, k, v, d, out, d, lse);
    if (close_to("out", out, d, ro, Tq, d, tol, ctx)) lse_close(lse, rl, Tq, tol, ctx);
    free(q), free(k), free(v), free(out), free(lse), free(qd), free(kd), free(vd), free(ro),
        free(rl);
}

/* One backward case, contiguous: flash gradients against the analytic double
 * gradient of L = sum(out * dout). */
static void backward_case(llm_attn_shape s, unsigned long long seed)
{
    unsigned long long rng = seed;
    const int Tq = s.n_q, Tk = s.n_kv, d = s.head_dim;
    const size_t nq = (size_t)Tq * d, nk = (size_t)Tk * d;
    char ctx[128];
    snprintf(ctx, sizeof ctx, "Tq=%d Tk=%d pos0=%d d=%d window=%d", Tq, Tk, s.q_pos0, d,
             s.window);
    float *q = check_randn(nq, 1, &rng), *k = check_randn(nk, 1, &rng), *v = check_randn(nk, 1, &rng);
    float *go = check_randn(nq, 1, &rng);
    float *out = malloc((nq + 1) * sizeof *out), *lse = malloc(((size_t)Tq + 1) * sizeof *lse);
    float *dq = malloc((nq + 1) * sizeof *dq), *dk = calloc(nk + 1, sizeof *dk);
    float *dv = calloc(nk + 1, sizeof *dv);
    double *qd = widen(q, nq), *kd = widen(k, nk), *vd = widen(v, nk), *god = widen(go, nq);
    double *rq = malloc((nq + 1) * sizeof *rq), *rk = malloc((nk + 1) * sizeof *rk);
    double *rv = malloc((nk + 1) * sizeof *rv);
    ref_backward(&s, qd, kd, vd, god, rq, rk, rv);
    llm_attn_forward(&s, q, d, k, v, d, out, d, lse);
    llm_attn_backward(&s, q, d, k, v, d, out, go, d, lse, dq, dk, dv);
    if (close_to("dq", dq, d, rq, Tq, d, TOL_BWD, ctx) &&
        close_to("dk", dk, d, rk, Tk, d, TOL_BWD, ctx))
        close_to("dv", dv, d, rv, Tk, d, TOL_BWD, ctx);
    free(q), free(k), free(v), free(go), free(out), free(lse), free(dq), free(dk), free(dv);
    free(qd), free(kd), free(vd), free(god), free(rq), free(rk), free(rv);
}

static llm_attn_shape shape(int Tq, int Tk, int pos0, int d, int window)
{
    llm_attn_shape s = {.n_q = Tq, .n_kv = Tk, .q_pos0 = pos0, .head_dim = d,
                        .window = window, .scale = (float)(1 / sqrt(d))};
    return s;
}

/* ---- tests ------------------------------------------------------------------ */

static const int sizes[] = {1, 5, 63, 64, 65, 130, 257};
static const int dims[] = {8, 32, 64, 80};

/* Causal attention over sizes on both sides of the block size (64), and head
 * sizes below, at and across the 64-column slice, plus odd ones (5, 130). */
static void test_forward_causal_vs_double(void)
{
    for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
        for (size_t b = 0; b < sizeof dims / sizeof *dims; b++)
            forward_case(shape(sizes[a], sizes[a], 0, dims[b], 0), 1, TOL_FWD, 100 + a * 10 + b);
    forward_case(shape(77, 77, 0, 5, 0), 1, TOL_FWD, 1);
    forward_case(shape(100, 100, 0, 130, 0), 1, TOL_FWD, 2);
}

/* Sliding windows narrower and wider than a block, one wider than T. */
static void test_forward_window_vs_double(void)
{
    static const int windows[] = {1, 2, 7, 37, 64, 65, 100, 1000};
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++)
        for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
            forward_case(shape(sizes[a], sizes[a], 0, 32, windows[w]), 1, TOL_FWD,
                         200 + w * 10 + a);
    forward_case(shape(200, 200, 0, 80, 50), 1, TOL_FWD, 3);
}

/* A KV cache: Tq new queries at the end of Tk = 100 keys (q_pos0 = Tk - Tq),
 * one token (decode) and seven (prefill of a chunk), with and without a window. */
static void test_forward_kv_cache(void)
{
    static const int tq[] = {1, 7};
    for (int a = 0; a < 2; a++)
        for (int w = 0; w <= 40; w += 40) {
            forward_case(shape(tq[a], 100, 100 - tq[a], 64, w), 1, TOL_FWD, 300 + a * 10 + w);
            forward_case(shape(tq[a], 100, 100 - tq[a], 8, w), 1, TOL_FWD, 310 + a * 10 + w);
        }
    /* queries beyond the last key (pos0 + i > Tk - 1) see every key */
    forward_case(shape(3, 100, 150, 32, 0), 1, TOL_FWD, 320);
    /* a chunk of 70 queries over 130 keys crosses block edges on both sides */
    forward_case(shape(70, 130, 60, 32, 0), 1, TOL_FWD, 321);
    forward_case(shape(70, 130, 60, 32, 45), 1, TOL_FWD, 322);
}

/* The one-query path of decoding against the same double reference: keys
 * from 1 to 300, with and without a window, a query past the last key, and
 * one whose window holds no key at all. */
static void test_one_query_vs_double(void)
{
    static const int cases[][4] = {/* Tk, pos0, d, window */
                                   {1, 0, 64, 0},   {7, 6, 8, 0},     {100, 99, 64, 0},
                                   {100, 99, 64, 40}, {300, 299, 80, 1}, {50, 120, 32, 0},
                                   {50, 120, 32, 30}, {33, 32, 5, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        llm_attn_shape s = shape(1, cases[i][0], cases[i][1], cases[i][2], cases[i][3]);
        s.scale *= 3; /* peaked rows: large scores for the softmax to handle */
        unsigned long long rng = 400 + i;
        const int Tk = s.n_kv, d = s.head_dim;
        float *q = check_randn((size_t)d, 1, &rng), *k = check_randn((size_t)Tk * d, 1, &rng);
        float *v = check_randn((size_t)Tk * d, 1, &rng), *out = malloc(((size_t)d + 1) * sizeof *out);
        float *scores = malloc(((size_t)Tk + 1) * sizeof *scores);
        double *qd = widen(q, (size_t)d), *kd = widen(k, (size_t)Tk * d), *vd = widen(v, (size_t)Tk * d);
        double ro[80], rl;
        ref_forward(&s, qd, kd, vd, ro, &rl, NULL);
        float lse = llm_attn_one_query(&s, q, k, v, d, out, scores);
        char ctx[96];
        snprintf(ctx, sizeof ctx, "one query: Tk=%d pos0=%d d=%d window=%d", Tk, s.q_pos0, d, s.window);
        if (close_to("out", out, d, ro, 1, d, TOL_FWD, ctx)) lse_close(&lse, &rl, 1, TOL_FWD, ctx);
        free(q), free(k), free(v), free(out), free(scores), free(qd), free(kd), free(vd);
    }
    /* a window that ends before the first key: no key visible */
    llm_attn_shape s = shape(1, 0, 5, 4, 2);
    float q[4] = {1, 2, 3, 4}, out[4] = {9, 9, 9, 9}, scores[1];
    CHECK(llm_attn_one_query(&s, q, q, q, 4, out, scores) == -INFINITY && out[0] == 0 && out[3] == 0);
}

/* Peaked softmax rows (scores with a spread of ~10) and keys whose scores
 * grow along the sequence, so the running maximum rises in every block and
 * the online rescaling is exercised in earnest. */
static void test_forward_large_scores(void)
{
    /* scores of size ~50 here: a float score carries an error of ~|s| eps,
     * which becomes a relative error of that size in its probability, so
     * the tolerance grows with the scores (measured: 4e-6) */
    forward_case(shape(150, 150, 0, 32, 0), 10, 1e-4, 400);
    forward_case(shape(150, 150, 0, 32, 30), 10, 1e-4, 401);

    llm_attn_shape s = shape(200, 200, 0, 16, 0);
    const int T = 200, d = 16;
    unsigned long long rng = 402;
    float *q = check_randn((size_t)T * d, 1, &rng), *k = check_randn((size_t)T * d, 1, &rng);
    float *v = check_randn((size_t)T * d, 1, &rng);
    for (int i = 0; i < T; i++) q[(size_t)i * d] = 4; /* every query likes column 0 */
    for (int j = 0; j < T; j++) k[(size_t)j * d] = (float)(0.5 * j); /* later keys score higher */
    float *out = malloc((size_t)T * d * sizeof *out), *lse = malloc(T * sizeof *lse);
    double *qd = widen(q, (size_t)T * d), *kd = widen(k, (size_t)T * d);
    double *vd = widen(v, (size_t)T * d), *ro = malloc((size_t)T * d * sizeof *ro);
    double *rl = malloc(T * sizeof *rl);
    ref_forward(&s, qd, kd, vd, ro, rl, NULL);
    llm_attn_forward(&s, q, d, k, v, d, out, d, lse);
    /* scores reach ~100 here, rising 0.5 per key: the same argument */
    if (close_to("out", out, d, ro, T, d, 1e-4, "growing scores"))
        lse_close(lse, rl, T, TOL_FWD, "growing scores");
    free(q), free(k), free(v), free(out), free(lse), free(qd), free(kd), free(vd), free(ro),
        free(rl);
}

/* One head inside wider [T, H*d] buffers: strides are honoured, the other
 * columns are not written, and the results are bitwise those of the
 * contiguous call (the arithmetic does not depend on the stride). */
static void test_strides(void)
{
    const int T = 130, d = 32, H = 3, h = 1;
    const int ldq = H * d, ldkv = 2 * d + 5, ldo = H * d + 3; /* GQA-like k/v, padded out */
    llm_attn_shape s = shape(T, T, 0, d, 0);
    unsigned long long rng = 500;
    for (int w = 0; w <= 20; w += 20) {
        s.window = w;
        float *Q = check_randn((size_t)T * ldq, 1, &rng), *K = check_randn((size_t)T * ldkv, 1, &rng);
        float *V = check_randn((size_t)T * ldkv, 1, &rng), *GO = check_randn((size_t)T * ldo, 1, &rng);
        float *O = malloc((size_t)T * ldo * sizeof *O), *dQ = malloc((size_t)T * ldq * sizeof *dQ);
        float *dK = malloc((size_t)T * ldkv * sizeof *dK);
        float *dV = malloc((size_t)T * ldkv * sizeof *dV);
        const float canary = -12345.5f;
        for (size_t i = 0; i < (size_t)T * ldo; i++) O[i] = canary;
        for (size_t i = 0; i < (size_t)T * ldq; i++) dQ[i] = canary;
        for (size_t i = 0; i < (size_t)T * ldkv; i++) dK[i] = dV[i] = canary;
        for (int i = 0; i < T; i++)
            for (int c = 0; c < d; c++)
                dK[(size_t)i * ldkv + h * d + c] = dV[(size_t)i * ldkv + h * d + c] = 0;
        /* contiguous copies of the head */
        float *q = malloc((size_t)T * d * sizeof *q), *k = malloc((size_t)T * d * sizeof *k);
        float *v = malloc((size_t)T * d * sizeof *v), *go = malloc((size_t)T * d * sizeof *go);
        for (int i = 0; i < T; i++)
            for (int c = 0; c < d; c++) {
                q[i * d + c] = Q[(size_t)i * ldq + h * d + c];
                k[i * d + c] = K[(size_t)i * ldkv + h * d + c];
                v[i * d + c] = V[(size_t)i * ldkv + h * d + c];
                go[i * d + c] = GO[(size_t)i * ldo + h * d + c];
            }
        float *out = malloc((size_t)T * d * sizeof *out), *lse = malloc(T * sizeof *lse);
        float *lse2 = malloc(T * sizeof *lse2), *dq = malloc((size_t)T * d * sizeof *dq);
        float *dk = calloc((size_t)T * d, sizeof *dk), *dv = calloc((size_t)T * d, sizeof *dv);
        llm_attn_forward(&s, q, d, k, v, d, out, d, lse);
        llm_attn_backward(&s, q, d, k, v, d, out, go, d, lse, dq, dk, dv);
        llm_attn_forward(&s, Q + h * d, ldq, K + h * d, V + h * d, ldkv, O + h * d, ldo, lse2);
        llm_attn_backward(&s, Q + h * d, ldq, K + h * d, V + h * d, ldkv, O + h * d, GO + h * d,
                          ldo, lse2, dQ + h * d, dK + h * d, dV + h * d);
        int same = !memcmp(lse, lse2, T * sizeof *lse), untouched = 1;
        for (int i = 0; i < T; i++) {
            for (int c = 0; c < ldo; c++) {
                float x = O[(size_t)i * ldo + c];
                if (c >= h * d && c < h * d + d) same &= x == out[i * d + c - h * d];
                else untouched &= x == canary;
            }
            for (int c = 0; c < ldq; c++) {
                float x = dQ[(size_t)i * ldq + c];
                if (c >= h * d && c < h * d + d) same &= x == dq[i * d + c - h * d];
                else untouched &= x == canary;
            }
            for (int c = 0; c < ldkv; c++) {
                float xk = dK[(size_t)i * ldkv + c], xv = dV[(size_t)i * ldkv + c];
                if (c >= h * d && c < h * d + d)
                    same &= xk == dk[i * d + c - h * d] && xv == dv[i * d + c - h * d];
                else untouched &= xk == canary && xv == canary;
            }
        }
        CHECK_MSG(same, "window %d: strided results differ from contiguous ones", w);
        CHECK_MSG(untouched, "window %d: a column outside the head was written", w);
        /* and the contiguous results are right */
        double *qd = widen(q, (size_t)T * d), *kd = widen(k, (size_t)T * d);
        double *vd = widen(v, (size_t)T * d), *ro = malloc((size_t)T * d * sizeof *ro);
        double *rl = malloc(T * sizeof *rl);
        ref_forward(&s, qd, kd, vd, ro, rl, NULL);
        close_to("out", out, d, ro, T, d, TOL_FWD, "strides");
        free(Q), free(K), free(V), free(GO), free(O), free(dQ), free(dK), free(dV);
        free(q), free(k), free(v), free(go), free(out), free(lse), free(lse2), free(dq), free(dk),
            free(dv), free(qd), free(kd), free(vd), free(ro), free(rl);
    }
}

/* Rows that see no key: Tk = 0, and a window that ends before the queries
 * start (q_pos0 - W + 1 > Tk - 1).  Zero output, lse = -inf, zero dq. */
static void test_rows_without_keys(void)
{
    const int d = 8;
    float q[5 * 8], k[20 * 8], v[20 * 8], out[5 * 8], lse[5], dq[5 * 8], dk[20 * 8], dv[20 * 8];
    unsigned long long rng = 600;
    for (int i = 0; i < 5 * d; i++) q[i] = (float)check_normal(&rng), out[i] = 7, dq[i] = 7;
    for (int i = 0; i < 20 * d; i++)
        k[i] = (float)check_normal(&rng), v[i] = (float)check_normal(&rng), dk[i] = dv[i] = 0;
    llm_attn_shape s0 = shape(5, 0, 0, d, 0);   /* no keys at all */
    llm_attn_shape s1 = shape(5, 20, 30, d, 4); /* would see keys 27..34: none exist */
    llm_attn_shape s2 = shape(5, 20, 20, d, 4); /* rows 0..2 see 17..19 partly, rows 3, 4 none */
    for (int t = 0; t < 3; t++) {
        llm_attn_shape s = t == 0 ? s0 : t == 1 ? s1 : s2;
        llm_attn_forward(&s, q, d, k, v, d, out, d, lse);
        double rl[5], ro[5 * 8], qd[5 * 8], kd[20 * 8], vd[20 * 8];
        for (int i = 0; i < 5 * d; i++) qd[i] = q[i];
        for (int i = 0; i < 20 * d; i++) kd[i] = k[i], vd[i] = v[i];
        ref_forward(&s, qd, kd, vd, ro, rl, NULL);
        for (int i = 0; i < 5; i++) {
            if (rl[i] != -INFINITY) continue;
            CHECK_MSG(lse[i] == -INFINITY, "case %d row %d: lse %g", t, i, (double)lse[i]);
            for (int c = 0; c < d; c++) CHECK_MSG(out[i * d + c] == 0, "case %d row %d", t, i);
        }
        CHECK(close_to("out", out, d, ro, 5, d, TOL_FWD, "rows without keys"));
        llm_attn_backward(&s, q, d, k, v, d, out, q, d, lse, dq, dk, dv); /* dout = q */
        for (int i = 0; i < 5; i++)
            if (rl[i] == -INFINITY)
                for (int c = 0; c < d; c++) CHECK_MSG(dq[i * d + c] == 0, "case %d row %d", t, i);
        int finite = 1;
        for (int i = 0; i < 20 * d; i++) finite &= isfinite(dk[i]) && isfinite(dv[i]);
        CHECK_MSG(finite, "case %d: non-finite dk/dv", t);
    }
}

/* Gradients against the analytic double gradient: causal, windowed, block
 * edges, a KV-cache chunk, and a head size across two slices. */
static void test_backward_vs_double(void)
{
    static const int T[] = {1, 5, 63, 64, 65, 130, 200};
    for (size_t a = 0; a < sizeof T / sizeof *T; a++) {
        backward_case(shape(T[a], T[a], 0, 32, 0), 700 + a);
        backward_case(shape(T[a], T[a], 0, 8, 3), 710 + a);
        backward_case(shape(T[a], T[a], 0, 64, 37), 720 + a);
    }
    backward_case(shape(130, 130, 0, 80, 0), 730);
    backward_case(shape(97, 97, 0, 130, 70), 731);
    backward_case(shape(1, 100, 99, 64, 0), 732);
    backward_case(shape(7, 100, 93, 64, 0), 733);
    backward_case(shape(70, 130, 60, 32, 45), 734);
    backward_case(shape(3, 100, 150, 32, 0), 735);
}

/* L = sum(out * R) with random R.  Every element of q, k and v is moved by
 * +-h in double and L recomputed through the double reference forward; the
 * central difference has truncation error ~h^2 L''' ~ 1e-8 and rounding
 * error ~1e-16 / h ~ 1e-12.  The reference gradient must match it to 1e-7
 * (it is exact up to that), the library's float gradient to TOL_BWD. */
static void test_backward_finite_differences(void)
{
    const int T = 9, d = 4;
    const double h = 1e-4;
    for (int w = 0; w <= 3; w += 3) {
        llm_attn_shape s = shape(T, T, 0, d, w);
        unsigned long long rng = 800 + w;
        float *qf = check_randn(T * d, 1, &rng), *kf = check_randn(T * d, 1, &rng), *vf = check_randn(T * d, 1, &rng);
        float *Rf = check_randn(T * d, 1, &rng);
        double *x[3] = {widen(qf, T * d), widen(kf, T * d), widen(vf, T * d)};
        double *R = widen(Rf, T * d);
        double out[9 * 4], lse[9], fd[3][9 * 4], ref[3][9 * 4];
        for (int t = 0; t < 3; t++)
            for (int e = 0; e < T * d; e++) {
                double keep = x[t][e], L[2];
                for (int side = 0; side < 2; side++) {
                    x[t][e] = keep + (side ? -h : h);
                    ref_forward(&s, x[0], x[1], x[2], out, lse, NULL);
                    L[side] = 0;
                    for (int i = 0; i < T * d; i++) L[side] += out[i] * R[i];
                }
                x[t][e] = keep;
                fd[t][e] = (L[0] - L[1]) / (2 * h);
            }
        ref_backward(&s, x[0], x[1], x[2], R, ref[0], ref[1], ref[2]);
        float fo[9 * 4], fl[9], g[3][9 * 4] = {{0}};
        llm_attn_forward(&s, qf, d, kf, vf, d, fo, d, fl);
        llm_attn_backward(&s, qf, d, kf, vf, d, fo, Rf, d, fl, g[0], g[1], g[2]);
        static const char *names[] = {"dq", "dk", "dv"};
        char ctx[64];
        snprintf(ctx, sizeof ctx, "window %d, vs finite differences", w);
        for (int t = 0; t < 3; t++) {
            double worst = 0, sc = max_abs(fd[t], T * d);
            for (int e = 0; e < T * d; e++)
                if (fabs(ref[t][e] - fd[t][e]) > worst) worst = fabs(ref[t][e] - fd[t][e]);
            CHECK_MSG(worst <= 1e-7 * sc, "%s: reference %s off by %g", ctx, names[t], worst);
            close_to(names[t], g[t], d, fd[t], T, d, TOL_BWD, ctx);
        }
        free(qf), free(kf), free(vf), free(Rf), free(R);
        for (int t = 0; t < 3; t++) free(x[t]);
    }
}

/* The library's two implementations agree on a larger case, forward and
 * backward, with and without a window; and the naive one, which sums in
 * double, agrees with the double reference. */
static void test_naive_matches_flash(void)
{
    const int T = 300, d = 64;
    const size_t n = (size_t)T * d;
    for (int w = 0; w <= 37; w += 37) {
        llm_attn_shape s = shape(T, T, 0, d, w);
        unsigned long long rng = 900 + w;
        float *q = check_randn(n, 1, &rng), *k = check_randn(n, 1, &rng), *v = check_randn(n, 1, &rng);
        float *go = check_randn(n, 1, &rng);
        float *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
        float *l1 = malloc(T * sizeof *l1), *l2 = malloc(T * sizeof *l2);
        float *dq1 = malloc(n * sizeof *dq1), *dq2 = malloc(n * sizeof *dq2);
        float *dk1 = calloc(n, sizeof *dk1), *dk2 = calloc(n, sizeof *dk2);
        float *dv1 = calloc(n, sizeof *dv1), *dv2 = calloc(n, sizeof *dv2);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "T=%d d=%d window=%d, naive vs flash", T, d, w);
        llm_error err = {0};
        CHECK_OK(llm_attn_naive_forward(&s, q, d, k, v, d, o1, d, l1, &err), err);
        CHECK_OK(llm_attn_naive_backward(&s, q, d, k, v, d, o1, go, d, l1, dq1, dk1, dv1, &err), err);
        llm_attn_forward(&s, q, d, k, v, d, o2, d, l2);
        llm_attn_backward(&s, q, d, k, v, d, o2, go, d, l2, dq2, dk2, dv2);
        double *ro = widen(o1, n), *rl = widen(l1, T), *rq = widen(dq1, n), *rk = widen(dk1, n);
        double *rv = widen(dv1, n);
        if (close_to("out", o2, d, ro, T, d, TOL_FWD, ctx) && lse_close(l2, rl, T, TOL_FWD, ctx) &&
            close_to("dq", dq2, d, rq, T, d, TOL_BWD, ctx) &&
            close_to("dk", dk2, d, rk, T, d, TOL_BWD, ctx))
            close_to("dv", dv2, d, rv, T, d, TOL_BWD, ctx);
        double *qd = widen(q, n), *kd = widen(k, n), *vd = widen(v, n), *god = widen(go, n);
        double *ro2 = malloc(n * sizeof *ro2), *rl2 = malloc(T * sizeof *rl2);
        double *rq2 = malloc(n * sizeof *rq2), *rk2 = malloc(n * sizeof *rk2);
        double *rv2 = malloc(n * sizeof *rv2);
        ref_forward(&s, qd, kd, vd, ro2, rl2, NULL);
        ref_backward(&s, qd, kd, vd, god, rq2, rk2, rv2);
        if (close_to("naive out", o1, d, ro2, T, d, TOL_FWD, ctx) &&
            lse_close(l1, rl2, T, TOL_FWD, ctx) &&
            close_to("naive dq", dq1, d, rq2, T, d, TOL_BWD, ctx) &&
            close_to("naive dk", dk1, d, rk2, T, d, TOL_BWD, ctx))
            close_to("naive dv", dv1, d, rv2, T, d, TOL_BWD, ctx);
        free(q), free(k), free(v), free(go), free(o1), free(o2), free(l1), free(l2), free(dq1),
            free(dq2), free(dk1), free(dk2), free(dv1), free(dv2), free(ro), free(rl), free(rq),
            free(rk), free(rv), free(qd), free(kd), free(vd), free(god), free(ro2), free(rl2),
            free(rq2), free(rk2), free(rv2);
    }
}

/* dk and dv are added to (two heads sharing keys, GQA), dq is overwritten:
 * prefilled dk/dv keep their values, two more calls add the gradient twice,
 * and a NaN-filled dq comes back clean.  Both implementations. */
static void test_backward_accumulates(void)
{
    const int T = 100, d = 16;
    const size_t n = (size_t)T * d;
    llm_attn_shape s = shape(T, T, 0, d, 20);
    unsigned long long rng = 1000;
    float *q = check_randn(n, 1, &rng), *k = check_randn(n, 1, &rng), *v = check_randn(n, 1, &rng);
    float *go = check_randn(n, 1, &rng), *pre = check_randn(n, 1, &rng);
    float *out = malloc(n * sizeof *out), *lse = malloc(T * sizeof *lse);
    float *dq0 = malloc(n * sizeof *dq0), *dk0 = malloc(n * sizeof *dk0);
    float *dv0 = malloc(n * sizeof *dv0), *dq = malloc(n * sizeof *dq);
    float *dk = malloc(n * sizeof *dk), *dv = malloc(n * sizeof *dv);
    llm_attn_forward(&s, q, d, k, v, d, out, d, lse);
    for (int naive = 0; naive < 2; naive++) {
        memset(dk0, 0, n * sizeof *dk0), memset(dv0, 0, n * sizeof *dv0);
        for (size_t i = 0; i < n; i++) dq[i] = NAN, dk[i] = pre[i], dv[i] = -pre[i];
        for (int call = 0; call < 3; call++) { /* once into zeros, twice into dq/dk/dv */
            float *a = call ? dq : dq0, *b = call ? dk : dk0, *c = call ? dv : dv0;
            if (naive)
                CHECK(llm_attn_naive_backward(&s, q, d, k, v, d, out, go, d, lse, a, b, c, NULL) == 0);
            else
                llm_attn_backward(&s, q, d, k, v, d, out, go, d, lse, a, b, c);
        }
        /* The flash backward adds its partial sums (4 query rows at a time)
         * straight into dk/dv, so each of at most 2 * ceil(T / 4) = 50
         * additions rounds against a running value bounded by |pre| + 2 sum|g|
         * terms: allow 64 eps of max(|pre| + 2|g|).  Overwriting instead of
         * adding would be off by |pre| ~ 1. */
        double gk = max_abs_f(dk0, n), gv = max_abs_f(dv0, n), pm = max_abs_f(pre, n);
        int dq_same = 1, acc = 1;
        for (size_t i = 0; i < n; i++) {
            dq_same &= dq[i] == dq0[i];
            acc &= fabs(dk[i] - (pre[i] + 2.0 * dk0[i])) <= 64 * 6e-8 * (pm + 2 * gk);
            acc &= fabs(dv[i] - (-pre[i] + 2.0 * dv0[i])) <= 64 * 6e-8 * (pm + 2 * gv);
        }
        CHECK_MSG(dq_same, "%s: dq not overwritten", naive ? "naive" : "flash");
        CHECK_MSG(acc, "%s: dk/dv not accumulated", naive ? "naive" : "flash");
    }
    free(q), free(k), free(v), free(go), free(pre), free(out), free(lse), free(dq0), free(dk0),
        free(dv0), free(dq), free(dk), free(dv);
}

/* Guard words around every output: the flash forward and backward write only
 * inside out/lse and dq/dk/dv.  Sizes of zero are harmless: Tq = 0 writes
 * nothing, Tk = 0 gives zero rows and lse = -inf. */
static void test_no_writes_outside_outputs(void)
{
    enum { G = 64 };
    const float guard = 314.25f;
    static const int cases[][4] = {{1, 1, 0, 8},     {65, 65, 0, 32}, {130, 130, 17, 80},
                                   {7, 100, 93, 64}, {0, 50, 0, 16},  {4, 0, 0, 16}};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        const int Tq = cases[t][0], Tk = cases[t][1], w = cases[t][2], d = cases[t][3];
        llm_attn_shape s = shape(Tq, Tk, Tk > Tq ? Tk - Tq : 0, d, w);
        const size_t nq = (size_t)Tq * d, nk = (size_t)Tk * d;
        unsigned long long rng = 1100 + t;
        float *q = check_randn(nq, 1, &rng), *k = check_randn(nk, 1, &rng), *v = check_randn(nk, 1, &rng);
        float *go = check_randn(nq, 1, &rng);
        float *bo = malloc((nq + 2 * G) * sizeof *bo);
        float *bl = malloc(((size_t)Tq + 2 * G) * sizeof *bl);
        float *bq = malloc((nq + 2 * G) * sizeof *bq), *bk = malloc((nk + 2 * G) * sizeof *bk);
        float *bv = malloc((nk + 2 * G) * sizeof *bv);
        for (size_t i = 0; i < nq + 2 * G; i++) bo[i] = bq[i] = guard;
        for (size_t i = 0; i < (size_t)Tq + 2 * G; i++) bl[i] = guard;
        for (size_t i = 0; i < nk + 2 * G; i++) bk[i] = bv[i] = guard;
        for (size_t i = 0; i < nk; i++) bk[G + i] = bv[G + i] = 0;
        llm_attn_forward(&s, q, d, k, v, d, bo + G, d, bl + G);
        llm_attn_backward(&s, q, d, k, v, d, bo + G, go, d, bl + G, bq + G, bk + G, bv + G);
        int ok = 1;
        for (size_t i = 0; i < G; i++)
            ok &= bo[i] == guard && bo[G + nq + i] == guard && bl[i] == guard &&
                  bl[G + Tq + i] == guard && bq[i] == guard && bq[G + nq + i] == guard &&
                  bk[i] == guard && bk[G + nk + i] == guard && bv[i] == guard &&
                  bv[G + nk + i] == guard;
        CHECK_MSG(ok, "Tq=%d Tk=%d: a guard word was written", Tq, Tk);
        int inside = 1;
        for (size_t i = 0; i < nq; i++) inside &= bo[G + i] != guard && isfinite(bq[G + i]);
        for (int i = 0; i < Tq; i++)
            inside &= Tk > 0 ? isfinite(bl[G + i]) : bl[G + i] == -INFINITY;
        CHECK_MSG(inside, "Tq=%d Tk=%d: an output was not written", Tq, Tk);
        free(q), free(k), free(v), free(go), free(bo), free(bl), free(bq), free(bk), free(bv);
    }
}

/* Without memory for their probability matrix the naive functions say
 * LLM_ERR_NOMEM, with a message, and leave their outputs alone. */
static void test_naive_out_of_memory(void)
{
    enum { T = 8, d = 4 };
    llm_attn_shape s = {.n_q = T, .n_kv = T, .head_dim = d, .scale = 0.5f};
    float q[T * d] = {0}, out[T * d], lse[T], g[T * d];
    for (int i = 0; i < T * d; i++) out[i] = g[i] = 7;
    llm_error ef = {0}, eb = {0};
    nomem_fail(1);
    int fwd = llm_attn_naive_forward(&s, q, d, q, q, d, out, d, lse, &ef);
    int bwd = llm_attn_naive_backward(&s, q, d, q, q, d, out, out, d, lse, g, g, g, &eb);
    nomem_fail(0);
    CHECK_MSG(fwd == LLM_ERR_NOMEM && strstr(ef.msg, "out of memory for 8x8"), "%d %s", fwd, ef.msg);
    CHECK_MSG(bwd == LLM_ERR_NOMEM && strstr(eb.msg, "out of memory"), "%d %s", bwd, eb.msg);
    int untouched = 1;
    for (int i = 0; i < T * d; i++) untouched &= out[i] == 7 && g[i] == 7;
    CHECK(untouched);
}

int main(void)
{
    RUN(test_forward_causal_vs_double);
    RUN(test_forward_window_vs_double);
    RUN(test_forward_kv_cache);
    RUN(test_forward_large_scores);
    RUN(test_one_query_vs_double);
    RUN(test_strides);
    RUN(test_rows_without_keys);
    RUN(test_backward_vs_double);
    RUN(test_backward_finite_differences);
    RUN(test_naive_matches_flash);
    RUN(test_backward_accumulates);
    RUN(test_no_writes_outside_outputs);
    RUN(test_naive_out_of_memory);
    return check_done();
}
