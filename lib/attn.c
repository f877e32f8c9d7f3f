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
 * That is one contiguous range per row, so a block visit first narrows the
 * key (or query) range to what some row of the other block can see: blocks
 * wholly above the diagonal or outside the window are never visited.  Inside
 * a block each row keeps its probabilities on its own range and zeroes the
 * rest with a branch-free select (a no-op on blocks that no edge crosses).
 *
 * Scratch is a fixed set of stack arrays, 33 KiB forward and 49 KiB
 * backward: BR x BC scores (and dS) and a DC x BC transposed slice of a key
 * (or value) block, so that the inner loop of the score product runs over
 * contiguous columns.  The head size d is walked in slices of DC, so any d
 * works.  Nothing here allocates, and every function is single-threaded and
 * reentrant (no globals): callers run heads in parallel.
 *
 * Vectorisation.  The build is -O2 without -ffast-math, so libm's expf does
 * not vectorise, and GCC does not if-convert a floating-point ?: at -O2;
 * fast_exp below is a branch-free Cephes-style expf (within 1 ulp) and sel a
 * bitwise select, both of which vectorise inside `omp simd` loops.
 */
#include "attn.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
/* Sanitizer builds (UBSan's checks) keep clang from vectorising the `omp
 * simd` loops, and clang then warns that it could not; the loops are
 * correct either way. */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

/* The hot functions are compiled twice, for AVX2 and for the baseline
 * (SSE2), and the loader picks one for the running CPU (an ifunc): the build
 * stays -O2 without -march, and gets ~1.7x on AVX2 machines.  GCC and clang
 * on glibc/x86-64 only; -DLLM_NO_TARGET_CLONES turns it off.  Contraction is
 * off in C11 mode, so the element-wise products give the same bits on both
 * paths; only the order of the few row sums differs. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute) && \
    !defined(LLM_NO_TARGET_CLONES)
#if __has_attribute(target_clones)
#define HOT __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HOT
#define HOT
#endif

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

/* C[m, n] += A[m, kk] B[kk, n], the one product every step here is made of.
 * A(i, t) is A[i * ars + t * acs], so A may be read transposed (P^T, dS^T);
 * row t of B starts at B + t * ldb, row i of C at C + i * ldc.  Two rows of C
 * share each load of four rows of B, and the innermost loop runs over n,
 * contiguous in B and C: ~25% faster than one row at a time (~30 GFLOP/s on
 * one core with SSE2, 64 x 64 x 64). */
HOT static void gemm_acc(int m, int n, int kk, const float *A, size_t ars, size_t acs,
                     const float *B, size_t ldb, float *C, size_t ldc)
{
    int i = 0;
    for (; i + 2 <= m; i += 2) {
        float *restrict y = C + i * ldc, *restrict z = y + ldc;
        const float *a = A + i * ars, *b = a + ars;
        int t = 0;
        for (; t + 4 <= kk; t += 4) {
            const float a0 = a[t * acs], a1 = a[(t + 1) * acs], a2 = a[(t + 2) * acs],
                        a3 = a[(t + 3) * acs];
            const float b0 = b[t * acs], b1 = b[(t + 1) * acs], b2 = b[(t + 2) * acs],
                        b3 = b[(t + 3) * acs];
            const float *x0 = B + t * ldb, *x1 = x0 + ldb, *x2 = x1 + ldb, *x3 = x2 + ldb;
#pragma omp simd
            for (int c = 0; c < n; c++) {
                const float u0 = x0[c], u1 = x1[c], u2 = x2[c], u3 = x3[c];
                y[c] += (a0 * u0 + a1 * u1) + (a2 * u2 + a3 * u3);
                z[c] += (b0 * u0 + b1 * u1) + (b2 * u2 + b3 * u3);
            }
        }
        for (; t < kk; t++) {
            const float a0 = a[t * acs], b0 = b[t * acs];
            const float *x0 = B + t * ldb;
#pragma omp simd
            for (int c = 0; c < n; c++) {
                y[c] += a0 * x0[c];
                z[c] += b0 * x0[c];
            }
        }
    }
    if (i < m) {
        float *restrict y = C + i * ldc;
        const float *a = A + i * ars;
        int t = 0;
        for (; t + 4 <= kk; t += 4) {
            const float a0 = a[t * acs], a1 = a[(t + 1) * acs], a2 = a[(t + 2) * acs],
                        a3 = a[(t + 3) * acs];
            const float *x0 = B + t * ldb, *x1 = x0 + ldb, *x2 = x1 + ldb, *x3 = x2 + ldb;
#pragma omp simd
            for (int c = 0; c < n; c++)
                y[c] += (a0 * x0[c] + a1 * x1[c]) + (a2 * x2[c] + a3 * x3[c]);
        }
        for (; t < kk; t++) {
            const float a0 = a[t * acs];
            const float *x0 = B + t * ldb;
#pragma omp simd
            for (int c = 0; c < n; c++) y[c] += a0 * x0[c];
        }
    }
}

/* S[br, bc] (row stride BC) = a[br, d] b[bc, d]^T (row strides lda, ldb): the
 * scores q k^T, or dout v^T.  b is transposed DC columns at a time into
 * bt [DC][BC], so that the product's inner loop runs over S's columns. */
static void block_abt(const float *a, size_t lda, const float *b, size_t ldb, int d, int br,
                      int bc, float *restrict bt, float *restrict S)
{
    for (int r = 0; r < br; r++) memset(S + (size_t)r * BC, 0, (size_t)bc * sizeof *S);
    for (int c0 = 0; c0 < d; c0 += DC) {
        const int dc = d - c0 < DC ? d - c0 : DC;
        for (int jj = 0; jj < bc; jj++) {
            const float *bj = b + jj * ldb + c0;
            for (int c = 0; c < dc; c++) bt[c * BC + jj] = bj[c];
        }
        gemm_acc(br, bc, dc, a + c0, lda, 1, bt, BC, S, BC);
    }
}

HOT static void attn_forward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
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
                /* this row's visible columns of the block: [jl, jh]; the
                 * probabilities outside are 0 */
                const int jl = (int)(max_ll(lo[r], j0) - j0);
                const int jh = (int)(min_ll(hi[r], j0 + bc - 1) - j0);
                float *restrict sr = S + (size_t)r * BC;
                float mx = m[r];
#pragma omp simd
                for (int jj = jl; jj <= jh; jj++) sr[jj] *= scale;
                for (int jj = jl; jj <= jh; jj++) mx = sr[jj] > mx ? sr[jj] : mx;
                if (jl > jh || mx == -INFINITY) { /* -inf: only with infinite inputs */
                    memset(sr, 0, (size_t)bc * sizeof *sr);
                    continue;
                }
                const float alpha = expf(m[r] - mx); /* rescales what came before */
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int jj = 0; jj < bc; jj++) {
                    const float p = sel(-(uint32_t)((jj >= jl) & (jj <= jh)),
                                        fast_exp(sr[jj] - mx), 0.0f);
                    sr[jj] = p;
                    sum += p;
                }
                l[r] = l[r] * alpha + sum;
                m[r] = mx;
                if (alpha != 1.0f) {
                    float *restrict o = out + (size_t)(i0 + r) * ldo;
#pragma omp simd
                    for (int c = 0; c < d; c++) o[c] *= alpha;
                }
            }
            gemm_acc(br, d, bc, S, BC, 1, vb, ldkv, out + (size_t)i0 * ldo, ldo); /* out += P v */
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

HOT static void attn_backward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                              const float *v, int ldkv, const float *out, const float *dout,
                              int ldo, const float *lse, float *dq, float *dk, float *dv)
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
            /* dv += P^T dout;  dk += dS^T q;  dq += dS k */
            gemm_acc(bc, d, br, P, 1, BC, dob, ldo, dvb, ldkv);
            gemm_acc(bc, d, br, dS, 1, BC, qb, ldq, dkb, ldkv);
            gemm_acc(br, d, bc, dS, BC, 1, kb, ldkv, dqb, ldq);
        }
    }
}

/* One query: a pass of dot products over the visible keys, the softmax, a
 * pass of axpys over the values.  Nothing to tile: q and out stay in
 * registers or L1, and each key and value row is read once. */
HOT static float one_query(const llm_attn_shape *s, const float *q, const float *k,
                           const float *v, int ldkv, float *out, float *scores)
{
    const int d = s->head_dim;
    long long lo, hi;
    row_span(s, 0, &lo, &hi);
    for (int c = 0; c < d; c++) out[c] = 0.0f;
    if (hi < lo) return -INFINITY;
    /* Four keys at a time: four independent sums in flight, where one
     * key's sum alone waits on each add of the one before (3x slower). */
    long long j = lo;
    for (; j + 3 <= hi; j += 4) {
        const float *k0 = k + (size_t)j * ldkv, *k1 = k0 + ldkv, *k2 = k1 + ldkv, *k3 = k2 + ldkv;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (int c = 0; c < d; c++) a0 += q[c] * k0[c], a1 += q[c] * k1[c], a2 += q[c] * k2[c], a3 += q[c] * k3[c];
        scores[j] = a0 * s->scale, scores[j + 1] = a1 * s->scale;
        scores[j + 2] = a2 * s->scale, scores[j + 3] = a3 * s->scale;
    }
    for (; j <= hi; j++) {
        const float *kj = k + (size_t)j * ldkv;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int c = 0; c < d; c++) acc += q[c] * kj[c];
        scores[j] = acc * s->scale;
    }
    float mx = -INFINITY;
    for (j = lo; j <= hi; j++) mx = scores[j] > mx ? scores[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (long long i = lo; i <= hi; i++) {
        scores[i] = fast_exp(scores[i] - mx);
        sum += scores[i];
    }
    const float inv = 1.0f / sum;
    /* Four values at a time into out: a quarter of the loads and stores of
     * out, whose each update waits on the one before. */
    for (j = lo; j + 3 <= hi; j += 4) {
        const float p0 = scores[j] * inv, p1 = scores[j + 1] * inv, p2 = scores[j + 2] * inv,
                    p3 = scores[j + 3] * inv;
        const float *v0 = v + (size_t)j * ldkv, *v1 = v0 + ldkv, *v2 = v1 + ldkv, *v3 = v2 + ldkv;
#pragma omp simd
        for (int c = 0; c < d; c++) out[c] += (p0 * v0[c] + p1 * v1[c]) + (p2 * v2[c] + p3 * v3[c]);
    }
    for (; j <= hi; j++) {
        const float p = scores[j] * inv, *vj = v + (size_t)j * ldkv;
#pragma omp simd
        for (int c = 0; c < d; c++) out[c] += p * vj[c];
    }
    return mx + logf(sum);
}

/* The public names are plain functions around the cloned ones (clang 14
 * drops the dispatcher of an exported function with target_clones). */
void llm_attn_forward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                      const float *v, int ldkv, float *out, int ldo, float *lse)
{
    attn_forward(s, q, ldq, k, v, ldkv, out, ldo, lse);
}

void llm_attn_backward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                       const float *v, int ldkv, const float *out, const float *dout, int ldo,
                       const float *lse, float *dq, float *dk, float *dv)
{
    attn_backward(s, q, ldq, k, v, ldkv, out, dout, ldo, lse, dq, dk, dv);
}

float llm_attn_one_query(const llm_attn_shape *s, const float *q, const float *k,
                         const float *v, int ldkv, float *out, float *scores)
{
    assert(s && s->n_q == 1 && s->n_kv >= 0 && s->head_dim >= 0 && s->window >= 0);
    return one_query(s, q, k, v, ldkv, out, scores);
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

void llm_attn_probs(const llm_attn_shape *s, const float *q, int ldq, const float *k, int ldkv,
                    float *P, float *lse)
{
    assert(s && s->n_q >= 0 && s->n_kv >= 0 && s->head_dim >= 0 && s->window >= 0);
    const int Tq = s->n_q, Tk = s->n_kv, d = s->head_dim;
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
        for (int j = 0; j < Tk; j++) pi[j] = sum > 0.0 ? (float)(pi[j] / sum) : 0.0f;
        if (lse) lse[i] = sum > 0.0 ? (float)(mx + log(sum)) : -INFINITY;
    }
}

/* The error of a textbook function that found no memory for P. */
static int no_room(const llm_attn_shape *s, llm_error *err)
{
    return llm_error_set(err, LLM_ERR_NOMEM, "textbook attention: out of memory for %dx%d probabilities", s->n_q,
                         s->n_kv);
}

int llm_attn_naive_forward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                           const float *v, int ldkv, float *out, int ldo, float *lse, llm_error *err)
{
    const int Tq = s->n_q, Tk = s->n_kv, d = s->head_dim;
    float *P = malloc(((size_t)Tq * Tk + 1) * sizeof *P);
    double *acc = malloc(((size_t)d + 1) * sizeof *acc);
    if (!P || !acc) {
        free(P), free(acc);
        return no_room(s, err);
    }
    llm_attn_probs(s, q, ldq, k, ldkv, P, lse);
    for (int i = 0; i < Tq; i++) {
        const float *pi = P + (size_t)i * Tk;
        for (int c = 0; c < d; c++) acc[c] = 0.0;
        for (int j = 0; j < Tk; j++) {
            if (pi[j] == 0.0f) continue;
            const float *vj = v + (size_t)j * ldkv;
            for (int c = 0; c < d; c++) acc[c] += (double)pi[j] * vj[c];
        }
        float *o = out + (size_t)i * ldo;
        for (int c = 0; c < d; c++) o[c] = (float)acc[c];
    }
    free(P), free(acc);
    return 0;
}

int llm_attn_naive_backward(const llm_attn_shape *s, const float *q, int ldq, const float *k,
                            const float *v, int ldkv, const float *out, const float *dout,
                            int ldo, const float *lse, float *dq, float *dk, float *dv,
                            llm_error *err)
{
    assert(s && s->n_q >= 0 && s->n_kv >= 0 && s->head_dim >= 0 && s->window >= 0);
    (void)out; /* the textbook form uses rowsum(P * dP), not rowsum(dout * out) */
    const int Tq = s->n_q, Tk = s->n_kv, d = s->head_dim;
    float *P = malloc(((size_t)Tq * Tk + 1) * sizeof *P);
    double *dp = malloc(((size_t)Tk + 1) * sizeof *dp);
    double *acc = malloc(((size_t)d + 1) * sizeof *acc);
    if (!P || !dp || !acc) {
        free(P), free(dp), free(acc);
        return no_room(s, err);
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
