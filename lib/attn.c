/* attn — one head of causal (optionally sliding-window) self-attention,
 * forward and backward, computed as FlashAttention-2 does, plus the textbook
 * full-matrix version the tests and benchmarks compare it with (see attn.h).
 *
 * Tiling.  Queries are walked in blocks of BR rows, keys/values in blocks of
 * BC rows.  The forward keeps, per query row, a running maximum m, a running
 * sum l of exp(score - m), and an unnormalised output accumulator, which is
 * the caller's out row itself (so the scratch does not grow with d).  The
 * backward walks key blocks outside and query blocks inside, recomputing the
 * probabilities from the saved log-sum-exp, and adds straight into dk and dv
 * (which the API accumulates anyway) and into dq (zeroed first).
 *
 * Masks.  Query i (absolute position p = q_pos0 + i) sees keys
 * max(0, p - W + 1) .. min(p, Tk - 1) (W = window, no lower bound when 0).
 * Since that is one contiguous range per row, masking is done by clipping each
 * row's loops to its range inside a block; blocks that no row of the query
 * block can see are never visited.
 *
 * Scratch is a fixed set of stack arrays (about 48 KiB): BR x BC scores and
 * a DC x BC transposed slice of a key (or value) block, so that the inner
 * loop of the score product runs over contiguous columns.  The head size d
 * is walked in slices of DC, so any d works.  Nothing here allocates, and
 * every function is single-threaded and reentrant (no globals).
 *
 * Vectorisation.  The build is -O2 without -ffast-math, so libm's expf does
 * not vectorise; fast_exp below is a branch-free Cephes-style expf (within
 * about 2 ulp) that does, inside `omp simd` loops.
 */
#include "attn.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    BR = 64, /* query rows per block */
    BC = 64, /* key/value rows per block */
    DC = 64, /* head-size columns per transposed slice */
};

/* a where mask is all ones, b where it is 0: a select the vectoriser takes
 * (at -O2 it does not if-convert a floating-point ?:). */
static inline float sel(uint32_t mask, float a, float b)
{
    uint32_t ab, bb;
    memcpy(&ab, &a, sizeof ab);
    memcpy(&bb, &b, sizeof bb);
    ab = (ab & mask) | (bb & ~mask);
    memcpy(&a, &ab, sizeof a);
    return a;
}

/* e^x for float x, branch-free so that it vectorises: x = n ln2 + r with
 * |r| <= ln2/2, e^r by Cephes' expf polynomial, 2^n built in the exponent
 * bits.  Within 1 ulp of the rounded e^x on [-87, 88] (checked on 5e7
 * points); exactly 0 below -87 (e^-87 ~ 1.6e-38, near the smallest normal
 * float), so -inf gives 0; saturates at e^88 above 88; NaN gives NaN.
 * Arguments here are scores minus their row maximum or log-sum-exp, <= 0 up
 * to rounding. */
static inline float fast_exp(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const uint32_t under = -(uint32_t)(x < -87.0f), over = -(uint32_t)(x > 88.0f);
    x = sel(under, -87.0f, sel(over, 88.0f, x));
    const float t = x * 1.44269504088896341f + magic;
    const float n = t - magic;                   /* round(x / ln2) */
    float r = x - n * 0.693359375f;              /* ln2 in two parts, the first */
    r = r - n * -2.12194440e-4f;                 /* exact in n */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    uint32_t tb, mb;
    memcpy(&tb, &t, sizeof tb);
    memcpy(&mb, &magic, sizeof mb);
    const uint32_t sb = (tb - mb + 127u) << 23; /* 2^n, n in [-126, 127] */
    float two_n;
    memcpy(&two_n, &sb, sizeof two_n);
    return sel(under, 0.0f, p * two_n);
}

static inline long long min_ll(long long a, long long b) { return a < b ? a : b; }
static inline long long max_ll(long long a, long long b) { return a > b ? a : b; }

/* The keys query row i sees: [*lo, *hi], empty when *lo > *hi. */
static inline void row_span(const llm_attn_shape *s, long long i, long long *lo,
                            long long *hi)
{
    long long p = (long long)s->q_pos0 + i;
    *hi = min_ll(p, (long long)s->n_kv - 1);
    *lo = s->window > 0 ? max_ll(0, p - s->window + 1) : 0;
}

/* S[r][jj] (row stride BC) = sum_c a[r][c] * b[jj][c] for r < br, jj < bc:
 * a [br, d] with row stride lda, b [bc, d] with row stride ldb.  b is
 * transposed DC columns at a time into bt [DC][BC] so that the inner loop
 * runs over jj, contiguous in both S and bt. */
static void block_abt(const float *a, int lda, const float *b, int ldb, int d, int br, int bc,
                      float *restrict bt, float *restrict S)
{
    for (int r = 0; r < br; r++) memset(S + (size_t)r * BC, 0, (size_t)bc * sizeof *S);
    for (int c0 = 0; c0 < d; c0 += DC) {
        int dc = d - c0 < DC ? d - c0 : DC;
        for (int jj = 0; jj < bc; jj++) {
            const float *bj = b + (size_t)jj * ldb + c0;
            for (int c = 0; c < dc; c++) bt[c * BC + jj] = bj[c];
        }
        for (int r = 0; r < br; r++) {
            const float *ar = a + (size_t)r * lda + c0;
            float *restrict sr = S + (size_t)r * BC;
            int c = 0;
            for (; c + 4 <= dc; c += 4) {
                float a0 = ar[c], a1 = ar[c + 1], a2 = ar[c + 2], a3 = ar[c + 3];
                const float *t0 = bt + c * BC, *t1 = t0 + BC, *t2 = t1 + BC, *t3 = t2 + BC;
#pragma omp simd
                for (int jj = 0; jj < bc; jj++)
                    sr[jj] += (a0 * t0[jj] + a1 * t1[jj]) + (a2 * t2[jj] + a3 * t3[jj]);
            }
            for (; c < dc; c++) {
                float a0 = ar[c];
                const float *t0 = bt + c * BC;
#pragma omp simd
                for (int jj = 0; jj < bc; jj++) sr[jj] += a0 * t0[jj];
            }
        }
    }
}

/* y[c] += sum_{t < n} w[t * wstride] * x_t[c] for c < d, where x_t = x + t * ldx:
 * the weighted row sum behind P V, dS K, P^T dO and dS^T Q. */
static void axpy_rows(float *restrict y, int d, const float *w, int wstride, const float *x,
                      int ldx, int n)
{
    int t = 0;
    for (; t + 4 <= n; t += 4) {
        float w0 = w[(size_t)t * wstride], w1 = w[(size_t)(t + 1) * wstride];
        float w2 = w[(size_t)(t + 2) * wstride], w3 = w[(size_t)(t + 3) * wstride];
        const float *x0 = x + (size_t)t * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
#pragma omp simd
        for (int c = 0; c < d; c++) y[c] += (w0 * x0[c] + w1 * x1[c]) + (w2 * x2[c] + w3 * x3[c]);
    }
    for (; t < n; t++) {
        float w0 = w[(size_t)t * wstride];
        const float *x0 = x + (size_t)t * ldx;
#pragma omp simd
        for (int c = 0; c < d; c++) y[c] += w0 * x0[c];
    }
}

void llm_attn_forward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                      const float *v, int ldkv, float *out, int ldo, float *lse)
{
    assert(s && s->n_q >= 0 && s->n_kv >= 0 && s->head_dim >= 0 && s->window >= 0);
    const int Tq = s->n_q, d = s->head_dim;
    const float scale = s->scale;
    float S[BR * BC], bt[DC * BC];          /* scores/probabilities; transposed key slice */
    float m[BR], l[BR];                     /* running max and sum per row */
    long long lo[BR], hi[BR];               /* visible keys per row */

    for (int i0 = 0; i0 < Tq; i0 += BR) {
        const int br = Tq - i0 < BR ? Tq - i0 : BR;
        long long blo = LLONG_MAX, bhi = -1; /* keys any row of the block sees */
        for (int r = 0; r < br; r++) {
            row_span(s, i0 + r, &lo[r], &hi[r]);
            m[r] = -INFINITY, l[r] = 0.0f;
            memset(out + (size_t)(i0 + r) * ldo, 0, (size_t)d * sizeof *out);
            if (lo[r] <= hi[r]) blo = min_ll(blo, lo[r]), bhi = max_ll(bhi, hi[r]);
        }
        for (long long j0 = blo; j0 <= bhi; j0 += BC) {
            const int bc = (int)min_ll(BC, bhi - j0 + 1);
            const float *kb = k + (size_t)j0 * ldkv, *vb = v + (size_t)j0 * ldkv;
            block_abt(q + (size_t)i0 * ldq, ldq, kb, ldkv, d, br, bc, bt, S);
            for (int r = 0; r < br; r++) {
                /* this row's visible columns of the block: [jl, jh] */
                const int jl = (int)(max_ll(lo[r], j0) - j0);
                const int jh = (int)(min_ll(hi[r], j0 + bc - 1) - j0);
                if (jl > jh) continue;
                float *restrict sr = S + (size_t)r * BC;
                float mx = m[r];
#pragma omp simd reduction(max : mx)
                for (int jj = jl; jj <= jh; jj++) {
                    sr[jj] *= scale;
                    mx = sr[jj] > mx ? sr[jj] : mx;
                }
                if (mx == -INFINITY) continue; /* only with infinite inputs */
                const float alpha = expf(m[r] - mx); /* rescales what came before */
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int jj = jl; jj <= jh; jj++) {
                    float p = fast_exp(sr[jj] - mx);
                    sr[jj] = p;
                    sum += p;
                }
                l[r] = l[r] * alpha + sum;
                m[r] = mx;
                float *restrict o = out + (size_t)(i0 + r) * ldo;
                if (alpha != 1.0f) {
#pragma omp simd
                    for (int c = 0; c < d; c++) o[c] *= alpha;
                }
                axpy_rows(o, d, sr + jl, 1, vb + (size_t)jl * ldkv, ldkv, jh - jl + 1);
            }
        }
        for (int r = 0; r < br; r++) {
            float *restrict o = out + (size_t)(i0 + r) * ldo;
            if (l[r] > 0.0f) {
                const float inv = 1.0f / l[r];
#pragma omp simd
                for (int c = 0; c < d; c++) o[c] *= inv;
                lse[i0 + r] = m[r] + logf(l[r]);
            } else {
                lse[i0 + r] = -INFINITY; /* a row that sees no key: out stays 0 */
            }
        }
    }
}

void llm_attn_backward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                       const float *v, int ldkv, const float *out, const float *dout, int ldo,
                       const float *lse, float *dq, float *dk, float *dv)
{
    assert(s && s->n_q >= 0 && s->n_kv >= 0 && s->head_dim >= 0 && s->window >= 0);
    const int Tq = s->n_q, Tk = s->n_kv, d = s->head_dim;
    const float scale = s->scale;
    float P[BR * BC], dS[BR * BC], bt[DC * BC]; /* probabilities; dP then dS; transposed slice */
    float Di[BR];                               /* rowsum(dout * out) */
    int jl[BR], jh[BR];                         /* visible columns per row of the block */

    for (int i = 0; i < Tq; i++) memset(dq + (size_t)i * ldq, 0, (size_t)d * sizeof *dq);

    for (int j0 = 0; j0 < Tk; j0 += BC) {
        const int bc = Tk - j0 < BC ? Tk - j0 : BC;
        const float *kb = k + (size_t)j0 * ldkv, *vb = v + (size_t)j0 * ldkv;
        float *dkb = dk + (size_t)j0 * ldkv, *dvb = dv + (size_t)j0 * ldkv;
        /* the queries that can see a key of this block: p >= j0, and with a
         * window p - W + 1 <= j0 + bc - 1 */
        long long ilo = max_ll(0, (long long)j0 - s->q_pos0);
        long long ihi = (long long)Tq - 1;
        if (s->window > 0)
            ihi = min_ll(ihi, (long long)j0 + bc - 1 + s->window - 1 - s->q_pos0);
        for (long long i0 = ilo; i0 <= ihi; i0 += BR) {
            const int br = (int)min_ll(BR, ihi - i0 + 1);
            const float *qb = q + (size_t)i0 * ldq, *ob = out + (size_t)i0 * ldo;
            const float *dob = dout + (size_t)i0 * ldo;
            float *dqb = dq + (size_t)i0 * ldq;
            int any = 0;
            for (int r = 0; r < br; r++) {
                long long lo, hi;
                row_span(s, i0 + r, &lo, &hi);
                jl[r] = (int)(max_ll(lo, j0) - j0);
                jh[r] = (int)(min_ll(hi, (long long)j0 + bc - 1) - j0);
                if (lse[i0 + r] == -INFINITY) jl[r] = 1, jh[r] = 0;
                any |= jl[r] <= jh[r];
            }
            if (!any) continue;
            /* P = exp(scale q k^T - lse) on the visible columns, 0 elsewhere */
            block_abt(qb, ldq, kb, ldkv, d, br, bc, bt, P);
            for (int r = 0; r < br; r++) {
                float *restrict pr = P + (size_t)r * BC;
                const float lr = lse[i0 + r];
                const int a = jl[r], b = jh[r];
#pragma omp simd
                for (int jj = 0; jj < bc; jj++) {
                    float p = fast_exp(pr[jj] * scale - lr);
                    pr[jj] = sel(-(uint32_t)((jj >= a) & (jj <= b)), p, 0.0f);
                }
            }
            /* dP = dout v^T, then dS = scale * P * (dP - D) */
            block_abt(dob, ldo, vb, ldkv, d, br, bc, bt, dS);
            for (int r = 0; r < br; r++) {
                const float *o = ob + (size_t)r * ldo, *g = dob + (size_t)r * ldo;
                float D = 0.0f;
#pragma omp simd reduction(+ : D)
                for (int c = 0; c < d; c++) D += g[c] * o[c];
                Di[r] = D;
            }
            for (int r = 0; r < br; r++) {
                const float *pr = P + (size_t)r * BC;
                float *restrict sr = dS + (size_t)r * BC;
                const float D = Di[r];
#pragma omp simd
                for (int jj = 0; jj < bc; jj++) sr[jj] = scale * pr[jj] * (sr[jj] - D);
            }
            /* dv += P^T dout; dk += dS^T q (a column of P or dS weights the rows) */
            for (int jj = 0; jj < bc; jj++) {
                axpy_rows(dvb + (size_t)jj * ldkv, d, P + jj, BC, dob, ldo, br);
                axpy_rows(dkb + (size_t)jj * ldkv, d, dS + jj, BC, qb, ldq, br);
            }
            /* dq += dS k */
            for (int r = 0; r < br; r++)
                if (jl[r] <= jh[r])
                    axpy_rows(dqb + (size_t)r * ldq, d, dS + (size_t)r * BC + jl[r], 1,
                              kb + (size_t)jl[r] * ldkv, ldkv, jh[r] - jl[r] + 1);
        }
    }
}

/* The textbook versions.  Scores, sums and products in double; P is the full
 * [Tq, Tk] float matrix, masked entries 0. */

static int visible(const llm_attn_shape *s, int i, int j)
{
    long long lo, hi;
    row_span(s, i, &lo, &hi);
    return j >= lo && j <= hi;
}

static double dot_d(const float *a, const float *b, int n)
{
    double acc = 0.0;
    for (int c = 0; c < n; c++) acc += (double)a[c] * b[c];
    return acc;
}

int llm_attn_naive_forward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                           const float *v, int ldkv, float *out, int ldo, float *lse)
{
    assert(s && s->n_q >= 0 && s->n_kv >= 0 && s->head_dim >= 0 && s->window >= 0);
    const int Tq = s->n_q, Tk = s->n_kv, d = s->head_dim;
    float *P = malloc(((size_t)Tq * Tk + 1) * sizeof *P);
    double *acc = malloc(((size_t)d + 1) * sizeof *acc);
    if (!P || !acc) {
        free(P), free(acc);
        return -1;
    }
    for (int i = 0; i < Tq; i++) {
        float *pi = P + (size_t)i * Tk;
        double mx = -INFINITY;
        for (int j = 0; j < Tk; j++) {
            if (!visible(s, i, j)) continue;
            double sc = s->scale * dot_d(q + (size_t)i * ldq, k + (size_t)j * ldkv, d);
            pi[j] = (float)sc;
            if (sc > mx) mx = sc;
        }
        double sum = 0.0;
        for (int j = 0; j < Tk; j++) {
            double e = visible(s, i, j) ? exp((double)pi[j] - mx) : 0.0;
            pi[j] = (float)e;
            sum += e;
        }
        for (int c = 0; c < d; c++) acc[c] = 0.0;
        for (int j = 0; j < Tk; j++) {
            if (pi[j] == 0.0f) continue;
            const float *vj = v + (size_t)j * ldkv;
            for (int c = 0; c < d; c++) acc[c] += (double)pi[j] * vj[c];
        }
        float *o = out + (size_t)i * ldo;
        for (int c = 0; c < d; c++) o[c] = sum > 0.0 ? (float)(acc[c] / sum) : 0.0f;
        lse[i] = sum > 0.0 ? (float)(mx + log(sum)) : -INFINITY;
    }
    free(P), free(acc);
    return 0;
}

int llm_attn_naive_backward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                            const float *v, int ldkv, const float *out, const float *dout,
                            int ldo, const float *lse, float *dq, float *dk, float *dv)
{
    assert(s && s->n_q >= 0 && s->n_kv >= 0 && s->head_dim >= 0 && s->window >= 0);
    (void)out; /* the textbook form uses rowsum(P * dP), not rowsum(dout * out) */
    const int Tq = s->n_q, Tk = s->n_kv, d = s->head_dim;
    float *P = malloc(((size_t)Tq * Tk + 1) * sizeof *P);
    double *dp = malloc(((size_t)Tk + 1) * sizeof *dp);
    double *acc = malloc(((size_t)d + 1) * sizeof *acc);
    if (!P || !dp || !acc) {
        free(P), free(dp), free(acc);
        return -1;
    }
    /* P = exp(scale q k^T - lse), masked */
    for (int i = 0; i < Tq; i++)
        for (int j = 0; j < Tk; j++)
            P[(size_t)i * Tk + j] =
                visible(s, i, j) && lse[i] != -INFINITY
                    ? (float)exp(s->scale * dot_d(q + (size_t)i * ldq, k + (size_t)j * ldkv, d) -
                                 lse[i])
                    : 0.0f;
    /* dv += P^T dout */
    for (int j = 0; j < Tk; j++) {
        for (int c = 0; c < d; c++) acc[c] = 0.0;
        for (int i = 0; i < Tq; i++) {
            const double p = P[(size_t)i * Tk + j];
            const float *g = dout + (size_t)i * ldo;
            for (int c = 0; c < d; c++) acc[c] += p * g[c];
        }
        float *dvj = dv + (size_t)j * ldkv;
        for (int c = 0; c < d; c++) dvj[c] += (float)acc[c];
    }
    /* dP = dout v^T; dS = P * (dP - rowsum(P * dP)), kept in P */
    for (int i = 0; i < Tq; i++) {
        float *pi = P + (size_t)i * Tk;
        double D = 0.0;
        for (int j = 0; j < Tk; j++) {
            dp[j] = pi[j] != 0.0f ? dot_d(dout + (size_t)i * ldo, v + (size_t)j * ldkv, d) : 0.0;
            D += pi[j] * dp[j];
        }
        for (int j = 0; j < Tk; j++) pi[j] = (float)(pi[j] * (dp[j] - D));
    }
    /* dq = scale dS k */
    for (int i = 0; i < Tq; i++) {
        for (int c = 0; c < d; c++) acc[c] = 0.0;
        for (int j = 0; j < Tk; j++) {
            const double w = P[(size_t)i * Tk + j];
            const float *kj = k + (size_t)j * ldkv;
            for (int c = 0; c < d; c++) acc[c] += w * kj[c];
        }
        float *dqi = dq + (size_t)i * ldq;
        for (int c = 0; c < d; c++) dqi[c] = (float)(s->scale * acc[c]);
    }
    /* dk += scale dS^T q */
    for (int j = 0; j < Tk; j++) {
        for (int c = 0; c < d; c++) acc[c] = 0.0;
        for (int i = 0; i < Tq; i++) {
            const double w = P[(size_t)i * Tk + j];
            const float *qi = q + (size_t)i * ldq;
            for (int c = 0; c < d; c++) acc[c] += w * qi[c];
        }
        float *dkj = dk + (size_t)j * ldkv;
        for (int c = 0; c < d; c++) dkj[c] += (float)(s->scale * acc[c]);
    }
    free(P), free(dp), free(acc);
    return 0;
}
