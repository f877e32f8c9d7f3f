/* qmatmul — int8 and int4 matrix products: activations quantized per block,
 * integer dot products (AVX2 or portable C), float scales applied per block. */
#include "qmatmul.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* The quantized rows of X, a few at a time: enough for decoding batches to
 * read each weight row once for all of them, small enough for the stack. */
enum { QX_BYTES = 32768 };

typedef struct qrows {
    int n, nb;       /* rows held, blocks per row */
    int8_t *q;       /* [n, nb*32]; int4: each block's evens then odds */
    float *d;        /* [n, nb] the block steps */
    float *gsum;     /* [n, groups]: sum over the group's blocks of d_b * sum(q_b) (int4) */
} qrows;

int llm_qmatmul_avx2(void)
{
#ifdef HAVE_X86
    /* a read of what libgcc's constructor found before main: no state of ours,
     * so threads asking at once race on nothing */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* Quantizes one row x [cols] into q [nb*32] and d [nb]; step: 0 for a step
 * per block (max|x|/127), else that fixed step.  For int4 each block is
 * stored as its even elements then its odd ones, matching the nibbles. */
static void quantize_row(const float *x, int cols, float step, int interleave, int8_t *q, float *d,
                         int32_t *sums)
{
    int nb = (cols + LLM_QBLOCK - 1) / LLM_QBLOCK;
    for (int b = 0; b < nb; b++) {
        int k0 = b * LLM_QBLOCK, n = cols - k0 < LLM_QBLOCK ? cols - k0 : LLM_QBLOCK;
        float s = step, amax = 0;
        for (int k = 0; k < n; k++) amax = fmaxf(amax, fabsf(x[k0 + k])); /* NaN skipped, */
        for (int k = 0; k < n; k++) /* but a block with one gets step NaN: the product shows it */
            if (isnan(x[k0 + k])) s = NAN;
        if (s == 0) s = amax / 127.0f;
        float inv = s > 0 ? 1.0f / s : 0.0f;
        int8_t *qb = q + (size_t)b * LLM_QBLOCK;
        int32_t sum = 0;
        for (int k = 0; k < LLM_QBLOCK; k++) {
            int v = 0;
            if (k < n) { /* NaN (from NaN or Inf times 0) gets code 0, never an undefined cast */
                float c = rintf(x[k0 + k] * inv);
                v = c > 127.0f ? 127 : c < -127.0f ? -127 : c == c ? (int)c : 0;
            }
            sum += v;
            qb[interleave ? (k & 1) * (LLM_QBLOCK / 2) + k / 2 : k] = (int8_t)v;
        }
        d[b] = s;
        if (sums) sums[b] = sum;
    }
}

static void quantize_rows(const llm_qlinear *w, const float *X, int n, qrows *qr, int32_t *sums)
{
    int cols = w->cols, nb = qr->nb, int4 = w->f.scheme == LLM_Q_INT4;
    float step = w->f.scheme == LLM_Q_W8A8 ? w->act_scale : 0.0f;
    qr->n = n;
    for (int m = 0; m < n; m++) {
        float *d = qr->d + (size_t)m * nb;
        quantize_row(X + (size_t)m * cols, cols, step, int4, qr->q + (size_t)m * nb * LLM_QBLOCK, d,
                     sums);
        if (!int4) continue;
        int bpg = w->f.group / LLM_QBLOCK;
        for (int g = 0; g < w->groups; g++) {
            float s = 0;
            for (int b = g * bpg; b < (g + 1) * bpg; b++) s += d[b] * (float)sums[b];
            qr->gsum[(size_t)m * w->groups + g] = s;
        }
    }
}

/* ---- portable kernels ---- */

static float dot_int8(const llm_qlinear *w, int r, const int8_t *qx, const float *d, int nb)
{
    const int8_t *wr = w->q8 + (size_t)r * w->cols;
    float acc = 0;
    for (int b = 0; b < nb; b++) {
        int k0 = b * LLM_QBLOCK, n = w->cols - k0 < LLM_QBLOCK ? w->cols - k0 : LLM_QBLOCK;
        int32_t s = 0;
        for (int k = 0; k < n; k++) s += (int32_t)wr[k0 + k] * qx[k0 + k];
        acc += d[b] * (float)s;
    }
    return acc * w->scale[r];
}

static float dot_int4(const llm_qlinear *w, int r, const int8_t *qx, const float *d,
                      const float *gsum)
{
    const uint8_t *wr = w->q4 + (size_t)r * (w->cols / 2);
    int bpg = w->f.group / LLM_QBLOCK;
    float total = 0;
    for (int g = 0; g < w->groups; g++) {
        float acc = 0;
        for (int b = g * bpg; b < (g + 1) * bpg; b++) {
            const uint8_t *wb = wr + (size_t)b * (LLM_QBLOCK / 2);
            const int8_t *xb = qx + (size_t)b * LLM_QBLOCK;
            int32_t s = 0;
            for (int i = 0; i < LLM_QBLOCK / 2; i++)
                s += (wb[i] & 15) * xb[i] + (wb[i] >> 4) * xb[LLM_QBLOCK / 2 + i];
            acc += d[b] * (float)s;
        }
        float sc = w->scale[(size_t)r * w->groups + g];
        total += sc * (acc - (float)llm_qlinear_zero(w, r, g) * gsum[g]);
    }
    return total;
}

/* ---- AVX2 kernels ---- */

#ifdef HAVE_X86
__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* The 8 int32 partial sums of a signed x signed block of 32 bytes. */
__attribute__((target("avx2,fma"))) static inline __m256i dot32_s8(__m256i w, __m256i x)
{
    __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

__attribute__((target("avx2,fma"))) static float dot_int8_avx2(const llm_qlinear *w, int r,
                                                               const int8_t *qx, const float *d,
                                                               int nb)
{
    const int8_t *wr = w->q8 + (size_t)r * w->cols;
    int full = w->cols / LLM_QBLOCK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 1 < full; b += 2) {
        __m256i p0 = dot32_s8(_mm256_loadu_si256((const __m256i *)(wr + b * 32)),
                              _mm256_loadu_si256((const __m256i *)(qx + b * 32)));
        __m256i p1 = dot32_s8(_mm256_loadu_si256((const __m256i *)(wr + b * 32 + 32)),
                              _mm256_loadu_si256((const __m256i *)(qx + b * 32 + 32)));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d[b]), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d[b + 1]), acc1);
    }
    for (; b < full; b++) {
        __m256i p = dot32_s8(_mm256_loadu_si256((const __m256i *)(wr + b * 32)),
                             _mm256_loadu_si256((const __m256i *)(qx + b * 32)));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d[b]), acc0);
    }
    float acc = hsum8(_mm256_add_ps(acc0, acc1));
    for (; b < nb; b++) { /* a last, partial block */
        int32_t s = 0;
        for (int k = b * 32; k < w->cols; k++) s += (int32_t)wr[k] * qx[k];
        acc += d[b] * (float)s;
    }
    return acc * w->scale[r];
}

__attribute__((target("avx2,fma"))) static float dot_int4_avx2(const llm_qlinear *w, int r,
                                                               const int8_t *qx, const float *d,
                                                               const float *gsum)
{
    const uint8_t *wr = w->q4 + (size_t)r * (w->cols / 2);
    int bpg = w->f.group / LLM_QBLOCK;
    const __m128i low = _mm_set1_epi8(15);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 total = _mm256_setzero_ps();
    float corr = 0;
    for (int g = 0; g < w->groups; g++) {
        __m256 acc = _mm256_setzero_ps();
        for (int b = g * bpg; b < (g + 1) * bpg; b++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(wr + (size_t)b * 16));
            __m256i codes = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low),
                                             _mm_and_si128(v, low));
            __m256i x = _mm256_loadu_si256((const __m256i *)(qx + (size_t)b * 32));
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(codes, x), ones);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d[b]), acc);
        }
        float sc = w->scale[(size_t)r * w->groups + g];
        total = _mm256_fmadd_ps(acc, _mm256_set1_ps(sc), total);
        corr += sc * (float)llm_qlinear_zero(w, r, g) * gsum[g];
    }
    return hsum8(total) - corr;
}
#endif

static void rows_block(const llm_qlinear *w, const qrows *qr, float *Y, int ldy, int r0, int r1,
                       int avx2)
{
    int nb = qr->nb, kp = nb * LLM_QBLOCK, int4 = w->f.scheme == LLM_Q_INT4;
    (void)avx2;
    for (int r = r0; r < r1; r++)
        for (int m = 0; m < qr->n; m++) {
            const int8_t *qx = qr->q + (size_t)m * kp;
            const float *d = qr->d + (size_t)m * nb;
            float y;
#ifdef HAVE_X86
            if (avx2)
                y = int4 ? dot_int4_avx2(w, r, qx, d, qr->gsum + (size_t)m * w->groups)
                         : dot_int8_avx2(w, r, qx, d, nb);
            else
#endif
                y = int4 ? dot_int4(w, r, qx, d, qr->gsum + (size_t)m * w->groups)
                         : dot_int8(w, r, qx, d, nb);
            Y[(size_t)m * ldy + r] = y;
        }
}

/* llm_qlinear_rows with the AVX2 kernels (avx2 = 1) or the portable ones. */
static int rows_with(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0, int r1,
                      int avx2)
{
    if (r0 >= r1 || M < 1) return 0;
    int nb = (w->cols + LLM_QBLOCK - 1) / LLM_QBLOCK, kp = nb * LLM_QBLOCK;
    int per = QX_BYTES / kp; /* rows of X quantized at a time */
    _Alignas(32) int8_t qbuf[QX_BYTES];
    float dbuf[QX_BYTES / LLM_QBLOCK], gbuf[QX_BYTES / LLM_QBLOCK];
    int32_t sums[QX_BYTES / LLM_QBLOCK];
    qrows qr = {.nb = nb, .q = qbuf, .d = dbuf, .gsum = gbuf};
    int32_t *sum = sums;
    void *heap = NULL;
    if (per < 1) { /* a row wider than the buffer: one row at a time on the heap */
        per = 1;
        heap = malloc((size_t)nb * (2 * sizeof(float) + sizeof(int32_t)) + (size_t)kp);
        if (!heap) return LLM_ERR_NOMEM;
        qr.d = (float *)heap;
        qr.gsum = qr.d + nb;
        sum = (int32_t *)(qr.gsum + nb);
        qr.q = (int8_t *)(sum + nb);
    }
    for (int m0 = 0; m0 < M; m0 += per) {
        int n = M - m0 < per ? M - m0 : per;
        quantize_rows(w, X + (size_t)m0 * w->cols, n, &qr, sum);
        rows_block(w, &qr, Y + (size_t)m0 * ldy, ldy, r0, r1, avx2);
    }
    free(heap);
    return 0;
}

int llm_qlinear_rows(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0, int r1)
{
    return rows_with(w, X, M, Y, ldy, r0, r1, llm_qmatmul_avx2());
}

int llm_qlinear_rows_portable(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0,
                              int r1)
{
    return rows_with(w, X, M, Y, ldy, r0, r1, 0);
}

int llm_qlinear_matmul(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, llm_error *err)
{
    double work = (double)M * w->rows * w->cols;
    int failed = 0; /* set by any thread whose rows could not be computed */
#pragma omp parallel if (work >= 131072)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int r0 = (int)((long long)w->rows * t / nt), r1 = (int)((long long)w->rows * (t + 1) / nt);
        if (llm_qlinear_rows(w, X, M, Y, ldy, r0, r1) < 0) {
#pragma omp atomic write
            failed = 1;
        }
    }
    if (failed)
        return llm_error_set(err, LLM_ERR_NOMEM, "a quantized product over rows of %d values: out of memory",
                             w->cols);
    return 0;
}
