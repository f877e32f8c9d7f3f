/* matvec — weight rows streamed once for a few activation rows (decoding). */
#include "matvec.h"

#include <stddef.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LLM_MATVEC_AVX2 1
#include <immintrin.h>
#endif

static void store(float *y, float sum, float beta)
{
    *y = beta != 0.0f ? *y + sum : sum;
}

void llm_matvec_rows_portable(const float *w, int in, const float *x, int M, int ldx, float *y,
                              int ldy, int r0, int r1, float beta)
{
    for (int r = r0; r < r1; r++) {
        const float *wr = w + (size_t)r * in;
        for (int m = 0; m < M; m++) {
            const float *xm = x + (size_t)m * ldx;
            float part[8] = {0}; /* eight running sums, as the vector path keeps */
            int k = 0;
            for (; k + 8 <= in; k += 8)
                for (int j = 0; j < 8; j++) part[j] += wr[k + j] * xm[k + j];
            float sum = ((part[0] + part[4]) + (part[1] + part[5])) +
                        ((part[2] + part[6]) + (part[3] + part[7]));
            for (; k < in; k++) sum += wr[k] * xm[k];
            store(y + (size_t)m * ldy + r, sum, beta);
        }
    }
}

#ifdef LLM_MATVEC_AVX2
__attribute__((target("avx2,fma"))) static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The tail columns k.. of one dot product, added to sum. */
static float tail(const float *w, const float *x, int k, int in, float sum)
{
    for (; k < in; k++) sum += w[k] * x[k];
    return sum;
}

/* One weight row by one activation row.  At batch 1 the rows go one at a
 * time: the weights are read as one long contiguous stream per thread,
 * which the hardware prefetcher follows at full speed (four or two rows
 * at a time, as short interleaved streams, ran at 75-80% of this rate on
 * the 110M shape).  One running sum of 8 lanes, as rows3 keeps for each
 * row, so a row's result is the same at batch 1 and in a batch. */
__attribute__((target("avx2,fma"))) static void row1_x1(const float *w, int in, const float *x,
                                                         float *y, int r, float beta)
{
    const float *w0 = w + (size_t)r * in;
    __m256 a0 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= in; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), _mm256_loadu_ps(x + k), a0);
    store(y + r, tail(w0, x, k, in, hsum(a0)), beta);
}

/* Three weight rows by NM (1..4) activation rows: 12 accumulators at most,
 * each weight load used NM times, the x loads folded into the FMAs.  Inlined
 * with a constant NM, so the unused accumulators vanish.  pf, when set, is
 * the next block's start: its three rows are fetched into cache on the way. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
rows3(const float *w, int in, const float *x, int ldx, float *y, int ldy, int r, float beta,
      const float *pf, const int NM)
{
    const float *w0 = w + (size_t)r * in, *w1 = w0 + in, *w2 = w1 + in;
    const float *x0 = x, *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    const __m256 z = _mm256_setzero_ps();
    __m256 a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z, c0 = z, c1 = z,
           c2 = z, c3 = z;
    int k = 0;
    for (; k + 8 <= in; k += 8) {
        if (pf) { /* 3 rows of the next block: 1.5 cache lines per step */
            _mm_prefetch((const char *)(pf + 3 * k), _MM_HINT_T0);
            _mm_prefetch((const char *)(pf + 3 * k + 16), _MM_HINT_T0);
        }
        __m256 p = _mm256_loadu_ps(w0 + k), q = _mm256_loadu_ps(w1 + k),
               t = _mm256_loadu_ps(w2 + k), u;
        u = _mm256_loadu_ps(x0 + k);
        a0 = _mm256_fmadd_ps(p, u, a0), b0 = _mm256_fmadd_ps(q, u, b0), c0 = _mm256_fmadd_ps(t, u, c0);
        if (NM > 1) {
            u = _mm256_loadu_ps(x1 + k);
            a1 = _mm256_fmadd_ps(p, u, a1), b1 = _mm256_fmadd_ps(q, u, b1), c1 = _mm256_fmadd_ps(t, u, c1);
        }
        if (NM > 2) {
            u = _mm256_loadu_ps(x2 + k);
            a2 = _mm256_fmadd_ps(p, u, a2), b2 = _mm256_fmadd_ps(q, u, b2), c2 = _mm256_fmadd_ps(t, u, c2);
        }
        if (NM > 3) {
            u = _mm256_loadu_ps(x3 + k);
            a3 = _mm256_fmadd_ps(p, u, a3), b3 = _mm256_fmadd_ps(q, u, b3), c3 = _mm256_fmadd_ps(t, u, c3);
        }
    }
    const __m256 acc[3][4] = {{a0, a1, a2, a3}, {b0, b1, b2, b3}, {c0, c1, c2, c3}};
    const float *wr[3] = {w0, w1, w2}, *xm[4] = {x0, x1, x2, x3};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < NM; j++)
            store(y + (size_t)j * ldy + r + i, tail(wr[i], xm[j], k, in, hsum(acc[i][j])), beta);
}

__attribute__((target("avx2,fma"))) static void rows_avx2(const float *w, int in, const float *x,
                                                           int M, int ldx, float *y, int ldy,
                                                           int r0, int r1, float beta)
{
    int r = r0;
    if (M > 1) {
        /* a block of three weight rows stays in L1 while every group of four
         * x rows passes; during the first group the next block is fetched */
        for (; r + 3 <= r1; r += 3) {
            const float *next = r + 6 <= r1 ? w + (size_t)(r + 3) * in : NULL;
            int m = 0;
            for (; m + 4 <= M; m += 4, next = NULL)
                rows3(w, in, x + (size_t)m * ldx, ldx, y + (size_t)m * ldy, ldy, r, beta, next, 4);
            const float *xm = x + (size_t)m * ldx;
            float *ym = y + (size_t)m * ldy;
            switch (M - m) {
            case 3: rows3(w, in, xm, ldx, ym, ldy, r, beta, next, 3); break;
            case 2: rows3(w, in, xm, ldx, ym, ldy, r, beta, next, 2); break;
            case 1: rows3(w, in, xm, ldx, ym, ldy, r, beta, next, 1); break;
            }
        }
    }
    for (; r < r1; r++)
        for (int m = 0; m < M; m++) row1_x1(w, in, x + (size_t)m * ldx, y + (size_t)m * ldy, r, beta);
}
#endif

void llm_matvec_rows(const float *w, int in, const float *x, int M, int ldx, float *y, int ldy,
                     int r0, int r1, float beta)
{
#ifdef LLM_MATVEC_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        rows_avx2(w, in, x, M, ldx, y, ldy, r0, r1, beta);
        return;
    }
#endif
    llm_matvec_rows_portable(w, in, x, M, ldx, y, ldy, r0, r1, beta);
}

void llm_matvec_split(int out, int t, int n, int *r0, int *r1)
{
    int blocks = (out + 3) / 4;
    int b0 = (int)((long long)blocks * t / n), b1 = (int)((long long)blocks * (t + 1) / n);
    *r0 = b0 * 4 < out ? b0 * 4 : out;
    *r1 = b1 * 4 < out ? b1 * 4 : out;
}
