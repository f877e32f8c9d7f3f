/* qmatmul — int8 and int4 matrix products: activations quantized per block
 * (once per product and input, llm_qact), integer dot products (AVX2: 4
 * weight rows at a time for a few rows of X, int4 a pair of blocks per
 * load; tiles of 4 weight rows by 2 rows of X for many; or portable C),
 * float scales applied per block. */
#include "qmatmul.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_X86 1
#define AVX2 __attribute__((target("avx2,fma")))
/* inlined into its AVX2 caller with constant flags and row counts, so that
 * the branches on them vanish and the accumulators stay in registers */
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#endif

/* Values per row that llm_qlinear_rows quantizes on the stack. */
enum { QX_COLS = 32768 };
/* Rows of X from which the AVX2 kernels take them all at once (a GEMM):
 * below, each row of X passes over the weights by itself. */
enum { GEMM_MIN = 16 };
/* Weight rows per tile of the batched kernel. */
enum { TILE = 4 };

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

/* ---- the quantized activations ----
 *
 * A row of X is held as its blocks in pairs (a last, odd block paired with
 * a block of zeros whose step is 0), 64 bytes of codes per pair: int8 and
 * w8a8 in the order of X; int4 (split) the pair's evens, block by block,
 * then its odds, as one 32-byte load of a pair of weight blocks holds them
 * in its low and its high nibbles.  For int4 also, per pair: its two steps
 * as 8 lanes [d0 x4, d1 x4] (the lanes of its integer sums, see
 * pair_int4) and, for the symmetric kernels, the 16-bit sums 8 (x_2j +
 * x_2j+1) over its evens and its odds, what the zero point 8 takes away. */

static int blocks_of(int cols) { return (cols + LLM_QBLOCK - 1) / LLM_QBLOCK; }
static int pairs_of(int cols) { return (blocks_of(cols) + 1) / 2; }

/* Bytes of one quantized row: codes, lane steps, zero-point sums, steps. */
static size_t row_bytes(int cols)
{
    size_t np = (size_t)pairs_of(cols);
    return np * (2 * LLM_QBLOCK + 8 * sizeof(float) + 16 * sizeof(int16_t) + 2 * sizeof(float));
}

static int wants_split(const llm_qlinear *w) { return w->f.scheme == LLM_Q_INT4; }
static float step_of(const llm_qlinear *w) { return w->f.scheme == LLM_Q_W8A8 ? w->act_scale : 0.0f; }

/* Points a's arrays into mem for M rows of its width (a->cols); the
 * kernels load from them unaligned. */
static void qact_carve(llm_qact *a, void *mem, int M)
{
    size_t np = (size_t)pairs_of(a->cols), rows = (size_t)M;
    char *p = mem;
    a->q = (int8_t *)p;
    p += rows * np * 2 * LLM_QBLOCK;
    a->dv = (float *)p;
    p += rows * np * 8 * sizeof(float);
    a->x8 = (int16_t *)p;
    p += rows * np * 16 * sizeof(int16_t);
    a->d = (float *)p;
}

int llm_qact_room(const llm_qact *a, int M, int cols)
{
    return (size_t)M * row_bytes(cols) <= a->cap;
}

int llm_qact_reserve(llm_qact *a, int M, int cols)
{
    size_t need = (size_t)M * row_bytes(cols);
    if (need <= a->cap) return 0;
    void *p = malloc(need);
    if (!p) return LLM_ERR_NOMEM;
    free(a->heap);
    a->heap = a->mem = p;
    a->cap = need;
    return 0;
}

void llm_qact_free(llm_qact *a)
{
    free(a->heap);
    memset(a, 0, sizeof *a);
}

int llm_qact_fits(const llm_qact *a, const llm_qlinear *w)
{
    return a->cols == w->cols && a->split == wants_split(w) && a->step == step_of(w);
}

/* Where code k (0..31) of block b of a row goes in the row's codes. */
static size_t code_at(int split, int b, int k)
{
    size_t pair = (size_t)(b / 2) * 2 * LLM_QBLOCK;
    if (!split) return pair + (size_t)(b % 2) * LLM_QBLOCK + (size_t)k;
    return pair + (size_t)(k & 1) * LLM_QBLOCK + (size_t)(b % 2) * (LLM_QBLOCK / 2) + (size_t)(k / 2);
}

/* Block x [n] (n <= 32) as 32 codes c (zeros past n) and its step *d;
 * step: 0 for a step of its own (max|x|/127), else that fixed step. */
static void quantize_block(const float *x, int n, float step, int8_t *c, float *d)
{
    float s = step, amax = 0;
    for (int k = 0; k < n; k++) amax = fmaxf(amax, fabsf(x[k])); /* NaN skipped, */
    for (int k = 0; k < n; k++) /* but a block with one gets step NaN: the product shows it */
        if (isnan(x[k])) s = NAN;
    if (s == 0) s = amax / 127.0f;
    float inv = s > 0 ? 1.0f / s : 0.0f;
    for (int k = 0; k < LLM_QBLOCK; k++) {
        int v = 0;
        if (k < n) { /* NaN (from NaN or Inf times 0) gets code 0, never an undefined cast */
            float r = rintf(x[k] * inv);
            v = r > 127.0f ? 127 : r < -127.0f ? -127 : r == r ? (int)r : 0;
        }
        c[k] = (int8_t)v;
    }
    *d = s;
}

#ifdef HAVE_X86
AVX2 static float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

/* quantize_block for a whole block, the same codes and step (the same
 * product x * inv rounded to nearest even, NaN to 0, then clamped), stored
 * where code_at puts them. */
AVX2 static void quantize_block_avx2(const float *x, float step, int split, int b, int8_t *row, float *d)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], amax = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_loadu_ps(x + 8 * j);
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j])); /* a NaN's lane: nan says */
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[j], v[j], _CMP_UNORD_Q));
    }
    float s = step;
    if (_mm256_movemask_ps(nan)) s = NAN;
    if (s == 0) s = hmax8(amax) / 127.0f;
    const __m256 inv = _mm256_set1_ps(s > 0 ? 1.0f / s : 0.0f), lo = _mm256_set1_ps(-127.0f),
                 hi = _mm256_set1_ps(127.0f);
    __m256i c[4];
    for (int j = 0; j < 4; j++) {
        __m256 r = _mm256_round_ps(_mm256_mul_ps(v[j], inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
        c[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
    }
    /* the packs work within 128-bit lanes: the permute puts 0..31 back in order */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    if (split) { /* evens then odds within each lane, then the lanes' evens together */
        const __m256i order = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4,
                                               6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        p = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(p, order), _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128((__m128i *)(row + code_at(1, b, 0)), _mm256_castsi256_si128(p));
        _mm_storeu_si128((__m128i *)(row + code_at(1, b, 1)), _mm256_extracti128_si256(p, 1));
    } else {
        _mm256_storeu_si256((__m256i *)(row + code_at(0, b, 0)), p);
    }
    *d = s;
}
#endif

/* a's shape and kind for X [M, w->cols] quantized for w, its arrays
 * carved from its memory. */
static void qact_shape(llm_qact *a, const llm_qlinear *w, int M)
{
    a->M = M;
    a->cols = w->cols;
    a->nb = blocks_of(w->cols);
    a->split = wants_split(w);
    a->step = step_of(w);
    qact_carve(a, a->mem, M);
}

/* Row m of X into a (shaped by qact_shape). */
static void quantize_row(llm_qact *a, const float *X, int m, int avx2)
{
    (void)avx2;
    const int np = pairs_of(a->cols);
    int8_t *row = a->q + (size_t)m * np * 2 * LLM_QBLOCK;
    float *d = a->d + (size_t)m * np * 2;
    for (int b = 0; b < a->nb; b++) {
        const float *x = X + (size_t)m * a->cols + (size_t)b * LLM_QBLOCK;
        int n = a->cols - b * LLM_QBLOCK < LLM_QBLOCK ? a->cols - b * LLM_QBLOCK : LLM_QBLOCK;
#ifdef HAVE_X86
        if (avx2 && n == LLM_QBLOCK) {
            quantize_block_avx2(x, a->step, a->split, b, row, d + b);
            continue;
        }
#endif
        int8_t c[LLM_QBLOCK];
        quantize_block(x, n, a->step, c, d + b);
        for (int k = 0; k < LLM_QBLOCK; k++) row[code_at(a->split, b, k)] = c[k];
    }
    if (a->nb % 2) { /* the odd block's partner: zeros, step 0 */
        for (int k = 0; k < LLM_QBLOCK; k++) row[code_at(a->split, a->nb, k)] = 0;
        d[a->nb] = 0;
    }
    if (!a->split) return;
    float *dv = a->dv + (size_t)m * np * 8;
    int16_t *x8 = a->x8 + (size_t)m * np * 16;
    for (int p = 0; p < np; p++) {
        const int8_t *ev = row + (size_t)p * 2 * LLM_QBLOCK, *od = ev + LLM_QBLOCK;
        for (int j = 0; j < 8; j++) dv[p * 8 + j] = d[2 * p + j / 4];
        for (int j = 0; j < 16; j++)
            x8[p * 16 + j] = (int16_t)(8 * (ev[2 * j] + ev[2 * j + 1] + od[2 * j] + od[2 * j + 1]));
    }
}

static void quantize(llm_qact *a, const llm_qlinear *w, const float *X, int M, int avx2)
{
    qact_shape(a, w, M);
    for (int m = 0; m < M; m++) quantize_row(a, X, m, avx2);
}

void llm_qact_quantize(llm_qact *a, const llm_qlinear *w, const float *X, int M)
{
    quantize(a, w, X, M, llm_qmatmul_avx2());
}

void llm_qact_quantize_portable(llm_qact *a, const llm_qlinear *w, const float *X, int M)
{
    quantize(a, w, X, M, 0);
}

/* Row m's codes and steps. */
static const int8_t *codes_of(const llm_qact *a, int m)
{
    return a->q + (size_t)m * (size_t)pairs_of(a->cols) * 2 * LLM_QBLOCK;
}
static const float *steps_of(const llm_qact *a, int m) { return a->d + (size_t)m * (size_t)pairs_of(a->cols) * 2; }

/* ---- portable kernels: one weight row at a time ---- */

static float row_int8(const llm_qlinear *w, int r, const int8_t *qx, const float *d)
{
    const int8_t *wr = w->q8 + (size_t)r * w->cols;
    float acc = 0;
    for (int k0 = 0, b = 0; k0 < w->cols; k0 += LLM_QBLOCK, b++) {
        int n = w->cols - k0 < LLM_QBLOCK ? w->cols - k0 : LLM_QBLOCK;
        int32_t s = 0;
        for (int k = 0; k < n; k++) s += (int32_t)wr[k0 + k] * qx[code_at(0, b, k)];
        acc += d[b] * (float)s;
    }
    return acc * w->scale[r];
}

/* Block by block: sum (u - zero) x over the block's codes u, in integers. */
static float row_int4(const llm_qlinear *w, int r, const int8_t *qx, const float *d)
{
    const uint8_t *wr = w->q4 + (size_t)r * (w->cols / 2);
    int bpg = w->f.group / LLM_QBLOCK;
    float total = 0;
    for (int b = 0; b < w->cols / LLM_QBLOCK; b++) {
        size_t at = (size_t)r * w->groups + (size_t)(b / bpg);
        int z = w->zero ? w->zero[at] : 8;
        const uint8_t *wb = wr + (size_t)b * (LLM_QBLOCK / 2);
        int32_t s = 0;
        for (int i = 0; i < LLM_QBLOCK / 2; i++)
            s += ((wb[i] & 15) - z) * qx[code_at(1, b, 2 * i)] + ((wb[i] >> 4) - z) * qx[code_at(1, b, 2 * i + 1)];
        total += d[b] * w->scale[at] * (float)s;
    }
    return total;
}

/* ---- AVX2 kernels ----
 *
 * Each row of Y is summed the same way, float operation for float
 * operation, by the one-row kernels (a few rows of X) and by the batched
 * kernel (many), so decode and prefill agree bit for bit:
 *   int8, w8a8  for each full block b, acc += p_b d_b (p_b its 8 lanes of
 *               integer sums); then the last, partial block and the
 *               row's scale
 *   int4        for each pair of blocks, p the 8 lanes of pair_int4 and
 *               dv its steps by lane: groups of 32, acc += p (dv sv), sv
 *               the pair's two scales by lane; larger groups, part += p dv
 *               over the group's pairs, then acc += part s_g
 * with acc (and part) 8 float lanes, summed at the end. */

#ifdef HAVE_X86
AVX2_INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* The 8 int32 partial sums of w x over a block: |x| times w with x's sign
 * (maddubs multiplies unsigned by signed bytes; |w|, |x| <= 127, so no
 * pair of products saturates int16). */
AVX2_INLINE __m256i dot_block(__m256i w, __m256i x, __m256i abs_x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(abs_x, _mm256_sign_epi8(w, x)), _mm256_set1_epi16(1));
}

/* Row r of int8 W from the lanes acc of its full blocks: their sum, the
 * last, partial block's, the row's scale. */
AVX2_INLINE float finish_int8(const llm_qlinear *w, int r, __m256 acc, const int8_t *qx, const float *d)
{
    const int full = w->cols / LLM_QBLOCK;
    float s = hsum8(acc);
    if (full * LLM_QBLOCK < w->cols) { /* a last, partial block */
        const int8_t *wr = w->q8 + (size_t)r * w->cols + (size_t)full * LLM_QBLOCK;
        const int8_t *x = qx + (size_t)full * LLM_QBLOCK;
        int32_t p = 0;
        for (int k = 0; k < w->cols - full * LLM_QBLOCK; k++) p += (int32_t)wr[k] * x[k];
        s += d[full] * (float)p;
    }
    return s * w->scale[r];
}

/* A pair of int4 blocks, their 32 bytes of codes v (a last, odd block: its
 * 16 bytes and zeros), against the pair's codes of X (lo: the evens, hi:
 * the odds, as v's low and high nibbles hold the weights): 8 int32 lanes,
 * lane i < 4 the sum over block 0's values 8i..8i+7, lane 4 + i block 1's.
 * Symmetric: u x - 8 x, the second from x8 (16-bit sums, each within
 * ±11684); asymmetric: (u - z) x by the sign trick, z the zero points of
 * the two blocks by byte. */
AVX2_INLINE __m256i pair_int4(__m256i v, __m256i lo_x, __m256i hi_x, const int16_t *x8, int asym, __m256i z)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4), s;
    if (asym) {
        lo = _mm256_sub_epi8(lo, z), hi = _mm256_sub_epi8(hi, z);
        s = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(lo_x, lo_x), _mm256_sign_epi8(lo, lo_x)),
                             _mm256_maddubs_epi16(_mm256_sign_epi8(hi_x, hi_x), _mm256_sign_epi8(hi, hi_x)));
    } else {
        s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, lo_x), _mm256_maddubs_epi16(hi, hi_x));
        s = _mm256_sub_epi16(s, _mm256_loadu_si256((const __m256i *)x8));
    }
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

/* The 8 lanes [a x4, b x4]. */
AVX2_INLINE __m256 by_lane(const float *a, const float *b)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_broadcast_ss(a)), _mm_broadcast_ss(b), 1);
}

/* Pair p's 32 bytes of int4 codes in a row (nb blocks): 16 and zeros for a last, odd block. */
AVX2_INLINE __m256i pair_codes(const uint8_t *row, int p, int nb)
{
    const uint8_t *at = row + (size_t)p * LLM_QBLOCK;
    if (2 * p + 1 < nb) return _mm256_loadu_si256((const __m256i *)at);
    return _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)at));
}

/* The zero points of pair p of row r by byte (asymmetric). */
AVX2_INLINE __m256i pair_zeros(const llm_qlinear *w, int r, int p, int nb, int bpg)
{
    const uint8_t *z = w->zero + (size_t)r * w->groups;
    int g0 = 2 * p / bpg, g1 = 2 * p + 1 < nb ? (2 * p + 1) / bpg : g0;
    return _mm256_setr_m128i(_mm_set1_epi8((char)z[g0]), _mm_set1_epi8((char)z[g1]));
}

/* How far ahead, in tiles, the one-row kernels prefetch the weights: a
 * tile reads its rows as TILE short streams (a few hundred bytes each),
 * too short for the hardware's prefetcher to follow, so the kernels sweep
 * the memory of the tiles ahead themselves at the rate they consume it.
 * Prefetches past the weights' end (an address as an integer, never a
 * pointer out of bounds) are harmless: they never fault. */
enum { PF_TILES = 2 };

/* y[i] = row r + i of int8 W times X's row (qx, d), i < nr. */
AVX2_INLINE void tile_int8(const llm_qlinear *w, int r, int nr, const int8_t *qx, const float *d, float *y)
{
    const size_t cols = (size_t)w->cols;
    const int8_t *codes = w->q8 + (size_t)r * cols;
    const int full = w->cols / LLM_QBLOCK;
    __m256 acc[TILE];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) acc[i] = _mm256_setzero_ps();
    uintptr_t ahead = (uintptr_t)codes + PF_TILES * TILE * cols; /* may be past the end */
    for (int b = 0; b < full; b++) {
        _mm_prefetch((const char *)(ahead + (size_t)b * TILE * LLM_QBLOCK), _MM_HINT_T0);
        _mm_prefetch((const char *)(ahead + (size_t)b * TILE * LLM_QBLOCK + 64), _MM_HINT_T0);
        __m256i x = _mm256_loadu_si256((const __m256i *)(qx + (size_t)b * LLM_QBLOCK));
        __m256i ax = _mm256_sign_epi8(x, x);
        __m256 db = _mm256_broadcast_ss(d + b);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)(codes + i * cols + (size_t)b * LLM_QBLOCK));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_block(wv, x, ax)), db, acc[i]);
        }
    }
    for (int i = 0; i < nr; i++) y[i] = finish_int8(w, r + i, acc[i], qx, d);
}

/* y[i] = row r + i of int4 W times X's row (codes qx, lane steps dv,
 * x8), i < nr, a pair of blocks at a time. */
AVX2_INLINE void tile_int4(const llm_qlinear *w, int r, int nr, int asym, int grouped, const int8_t *qx,
                           const float *dv, const int16_t *x8, float *y)
{
    const int nb = w->cols / LLM_QBLOCK, np = (nb + 1) / 2, bpg = w->f.group / LLM_QBLOCK, ppg = bpg / 2;
    const size_t half = (size_t)w->cols / 2, G = (size_t)w->groups;
    const uint8_t *codes = w->q4 + (size_t)r * half;
    const float *scale = w->scale + (size_t)r * G;
    uintptr_t ahead = (uintptr_t)codes + PF_TILES * TILE * half; /* may be past the end */
    __m256 acc[TILE], part[TILE];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) acc[i] = part[i] = _mm256_setzero_ps();
    int g = 0, g_end = grouped ? ppg : np; /* the group at hand and its end: no division per pair */
    for (int p = 0; p < np; p++) {
        _mm_prefetch((const char *)(ahead + (size_t)p * TILE * LLM_QBLOCK), _MM_HINT_T0);
        _mm_prefetch((const char *)(ahead + (size_t)p * TILE * LLM_QBLOCK + 64), _MM_HINT_T0);
        const int8_t *x = qx + (size_t)p * 2 * LLM_QBLOCK;
        __m256i lo_x = _mm256_loadu_si256((const __m256i *)x), hi_x = _mm256_loadu_si256((const __m256i *)(x + LLM_QBLOCK));
        __m256 d = _mm256_loadu_ps(dv + (size_t)p * 8);
        const int two = 2 * p + 1 < nb;
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            __m256i z = asym ? pair_zeros(w, r + i, p, nb, bpg) : _mm256_setzero_si256();
            __m256 s = _mm256_cvtepi32_ps(pair_int4(pair_codes(codes + i * half, p, nb), lo_x, hi_x,
                                                    x8 + (size_t)p * 16, asym, z));
            const float *sc = scale + i * G;
            if (!grouped) {
                acc[i] = _mm256_fmadd_ps(s, _mm256_mul_ps(d, by_lane(sc + 2 * p, two ? sc + 2 * p + 1 : sc + 2 * p)),
                                         acc[i]);
            } else {
                part[i] = _mm256_fmadd_ps(s, d, part[i]);
                if (p + 1 == g_end) {
                    acc[i] = _mm256_fmadd_ps(part[i], _mm256_broadcast_ss(sc + g), acc[i]);
                    part[i] = _mm256_setzero_ps();
                }
            }
        }
        if (grouped && p + 1 == g_end) g++, g_end += ppg;
    }
    for (int i = 0; i < nr; i++) y[i] = hsum8(acc[i]);
}

/* A few rows of X: rows [r0, r1) in tiles of TILE rows (then one at a
 * time), each tile against every row of X while it sits in L1. */
AVX2_INLINE void rows_int4(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1, int asym,
                           int grouped)
{
    const int np = pairs_of(w->cols);
    for (int r = r0; r < r1;) {
        int nr = r1 - r >= TILE ? TILE : 1;
        for (int m = 0; m < a->M; m++) {
            const int8_t *qx = codes_of(a, m);
            const float *dv = a->dv + (size_t)m * np * 8;
            const int16_t *x8 = a->x8 + (size_t)m * np * 16;
            float *y = Y + (size_t)m * ldy + r;
            if (nr == TILE) tile_int4(w, r, TILE, asym, grouped, qx, dv, x8, y);
            else tile_int4(w, r, 1, asym, grouped, qx, dv, x8, y);
        }
        r += nr;
    }
}

AVX2_INLINE void rows_int8(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1)
{
    for (int r = r0; r < r1;) {
        int nr = r1 - r >= TILE ? TILE : 1;
        for (int m = 0; m < a->M; m++) {
            float *y = Y + (size_t)m * ldy + r;
            if (nr == TILE) tile_int8(w, r, TILE, codes_of(a, m), steps_of(a, m), y);
            else tile_int8(w, r, 1, codes_of(a, m), steps_of(a, m), y);
        }
        r += nr;
    }
}

/* ---- AVX2 batched kernel: many rows of X at once (a GEMM) ----
 *
 * A tile of TILE weight rows, a chunk of their pairs of blocks (at most
 * KP), against the rows of X in a chunk of at most MC, GEMM_ROWS at a
 * time: each pair of weights read from L1 for GEMM_ROWS rows of X.  int4's
 * codes are unpacked for the chunk into a buffer in X's order (symmetric:
 * the codes u, 0..15, which maddubs takes as they are; asymmetric: u less
 * the zero point), so that every row of X reads them as bytes.  What
 * waits in memory between chunks: the sums acc of each (weight row, X
 * row) and, for int4 in groups of 2+ blocks, the group's part so far (in
 * registers, acc is updated in memory at each group's end). */
enum { GEMM_ROWS = 2, MC = 64, KP = 16 };

typedef struct gemm_lanes {
    __m256 acc[TILE * MC], part[TILE * MC];
} gemm_lanes;

/* Rows r..r+nr of int4 W, pairs p0..p1, into buf [TILE][KP * 64] in X's
 * order (a pair's evens, then its odds): the codes (symmetric) or the
 * codes less their zero points.  Prefetches the same pairs of the next
 * tile (its rows are short streams the hardware does not follow). */
AVX2_INLINE void unpack_int4(const llm_qlinear *w, int r, int nr, int p0, int p1, int asym, int8_t *buf)
{
    const int nb = w->cols / LLM_QBLOCK, bpg = w->f.group / LLM_QBLOCK;
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = w->q4 + (size_t)(r + i) * (w->cols / 2);
        uintptr_t next = (uintptr_t)row + (size_t)TILE * (w->cols / 2); /* may be past the end */
        for (int p = p0; p < p1; p++) {
            _mm_prefetch((const char *)(next + (size_t)p * LLM_QBLOCK), _MM_HINT_T0);
            __m256i v = pair_codes(row, p, nb);
            __m256i z = asym ? pair_zeros(w, r + i, p, nb, bpg) : _mm256_setzero_si256();
            int8_t *out = buf + (size_t)i * KP * 2 * LLM_QBLOCK + (size_t)(p - p0) * 2 * LLM_QBLOCK;
            _mm256_storeu_si256((__m256i *)out, _mm256_sub_epi8(_mm256_and_si256(v, m4), z));
            _mm256_storeu_si256((__m256i *)(out + LLM_QBLOCK),
                                _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4), z));
        }
    }
}

/* nm <= GEMM_ROWS rows of X from row m (of the chunk at m0) against nr <=
 * TILE int8 weight rows from r, pairs p0..p1 (the last may end on an odd
 * block), as tile_int8 sums them. */
AVX2_INLINE void gemm_tile_int8(const llm_qlinear *w, const llm_qact *a, int r, int nr, int m, int m0, int nm, int p0,
                                int p1, gemm_lanes *L)
{
    const int nb = w->cols / LLM_QBLOCK;
    __m256 c[TILE][GEMM_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nm; j++) c[i][j] = L->acc[i * MC + m - m0 + j];
    for (int b = 2 * p0; b < 2 * p1 && b < nb; b++) {
        __m256i x[GEMM_ROWS], ax[GEMM_ROWS];
        __m256 db[GEMM_ROWS];
#pragma GCC unroll 2
        for (int j = 0; j < nm; j++) {
            x[j] = _mm256_loadu_si256((const __m256i *)(codes_of(a, m + j) + (size_t)b * LLM_QBLOCK));
            ax[j] = _mm256_sign_epi8(x[j], x[j]);
            db[j] = _mm256_broadcast_ss(steps_of(a, m + j) + b);
        }
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)(w->q8 + (size_t)(r + i) * w->cols + (size_t)b * LLM_QBLOCK));
#pragma GCC unroll 2
            for (int j = 0; j < nm; j++) c[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_block(wv, x[j], ax[j])), db[j], c[i][j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nm; j++) L->acc[i * MC + m - m0 + j] = c[i][j];
}

/* The same for int4 from buf (unpack_int4), as tile_int4 sums them: in
 * registers the sums (groups of one block) or the group's part. */
AVX2_INLINE void gemm_tile_int4(const llm_qlinear *w, const int8_t *buf, const llm_qact *a, int r, int nr, int m,
                                int m0, int nm, int p0, int p1, int asym, int grouped, gemm_lanes *L)
{
    const int np = pairs_of(w->cols), nb = w->cols / LLM_QBLOCK, ppg = w->f.group / (2 * LLM_QBLOCK);
    __m256 *keep = grouped ? L->part : L->acc;
    __m256 c[TILE][GEMM_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nm; j++) c[i][j] = keep[i * MC + m - m0 + j];
    int g = grouped ? p0 / ppg : 0, g_end = grouped ? (g + 1) * ppg : np; /* one division a call */
    for (int p = p0; p < p1; p++) {
        __m256i lo[GEMM_ROWS], hi[GEMM_ROWS];
        __m256 dv[GEMM_ROWS];
#pragma GCC unroll 2
        for (int j = 0; j < nm; j++) {
            const int8_t *x = codes_of(a, m + j) + (size_t)p * 2 * LLM_QBLOCK;
            lo[j] = _mm256_loadu_si256((const __m256i *)x);
            hi[j] = _mm256_loadu_si256((const __m256i *)(x + LLM_QBLOCK));
            dv[j] = _mm256_loadu_ps(a->dv + ((size_t)(m + j) * np + (size_t)p) * 8);
        }
        const int ends = grouped && p + 1 == g_end; /* the pair ends a group */
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            const int8_t *wp = buf + (size_t)i * KP * 2 * LLM_QBLOCK + (size_t)(p - p0) * 2 * LLM_QBLOCK;
            __m256i wl = _mm256_loadu_si256((const __m256i *)wp);
            __m256i wh = _mm256_loadu_si256((const __m256i *)(wp + LLM_QBLOCK));
            const float *scale = w->scale + (size_t)(r + i) * w->groups;
            __m256 sv = grouped ? _mm256_broadcast_ss(scale + g)
                                : by_lane(scale + 2 * p, 2 * p + 1 < nb ? scale + 2 * p + 1 : scale + 2 * p);
#pragma GCC unroll 2
            for (int j = 0; j < nm; j++) {
                __m256i s16;
                if (asym)
                    s16 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(lo[j], lo[j]), _mm256_sign_epi8(wl, lo[j])),
                                           _mm256_maddubs_epi16(_mm256_sign_epi8(hi[j], hi[j]), _mm256_sign_epi8(wh, hi[j])));
                else
                    s16 = _mm256_sub_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(wl, lo[j]), _mm256_maddubs_epi16(wh, hi[j])),
                                           _mm256_loadu_si256((const __m256i *)(a->x8 + ((size_t)(m + j) * np + (size_t)p) * 16)));
                __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
                if (!grouped) {
                    c[i][j] = _mm256_fmadd_ps(s, _mm256_mul_ps(dv[j], sv), c[i][j]);
                } else {
                    c[i][j] = _mm256_fmadd_ps(s, dv[j], c[i][j]);
                    if (ends) {
                        __m256 *acc = &L->acc[i * MC + m - m0 + j];
                        *acc = _mm256_fmadd_ps(c[i][j], sv, *acc);
                        c[i][j] = _mm256_setzero_ps();
                    }
                }
            }
        }
        if (ends) g++, g_end += ppg;
    }
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nm; j++) keep[i * MC + m - m0 + j] = c[i][j];
}

/* One chunk of pairs of a tile against X's rows m0..m0+mc, GEMM_ROWS at a time. */
AVX2_INLINE void gemm_chunk(const llm_qlinear *w, const int8_t *buf, const llm_qact *a, int r, int nr, int m0, int mc,
                            int p0, int p1, int int4, int asym, int grouped, gemm_lanes *L)
{
    for (int m = m0; m < m0 + mc;) {
        int nm = m0 + mc - m >= GEMM_ROWS ? GEMM_ROWS : 1;
        if (!int4) {
            if (nr == TILE && nm == GEMM_ROWS) gemm_tile_int8(w, a, r, TILE, m, m0, GEMM_ROWS, p0, p1, L);
            else if (nr == TILE) gemm_tile_int8(w, a, r, TILE, m, m0, 1, p0, p1, L);
            else if (nm == GEMM_ROWS) gemm_tile_int8(w, a, r, 1, m, m0, GEMM_ROWS, p0, p1, L);
            else gemm_tile_int8(w, a, r, 1, m, m0, 1, p0, p1, L);
        } else {
            if (nr == TILE && nm == GEMM_ROWS) gemm_tile_int4(w, buf, a, r, TILE, m, m0, GEMM_ROWS, p0, p1, asym, grouped, L);
            else if (nr == TILE) gemm_tile_int4(w, buf, a, r, TILE, m, m0, 1, p0, p1, asym, grouped, L);
            else if (nm == GEMM_ROWS) gemm_tile_int4(w, buf, a, r, 1, m, m0, GEMM_ROWS, p0, p1, asym, grouped, L);
            else gemm_tile_int4(w, buf, a, r, 1, m, m0, 1, p0, p1, asym, grouped, L);
        }
        m += nm;
    }
}

/* Weight rows r..r+nr (nr <= TILE) against X's rows m0..m0+mc (mc <= MC). */
AVX2_INLINE void gemm_rows(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r, int nr, int m0, int mc,
                           int int4, int asym, int grouped)
{
    _Alignas(32) int8_t buf[TILE * KP * 2 * LLM_QBLOCK];
    gemm_lanes L;
    const int full = w->cols / LLM_QBLOCK, fp = (full + 1) / 2; /* pairs with a full block */
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < mc; j++) L.acc[i * MC + j] = L.part[i * MC + j] = _mm256_setzero_ps();
    for (int p0 = 0; p0 < fp; p0 += KP) {
        int p1 = fp - p0 < KP ? fp : p0 + KP;
        if (int4) {
            unpack_int4(w, r, nr, p0, p1, asym, buf);
        } else { /* the next tile's blocks of this chunk, on their way to cache */
            uintptr_t next = (uintptr_t)(w->q8 + (size_t)(r + TILE) * w->cols); /* may be past the end */
            for (int i = 0; i < nr; i++)
                for (int p = p0; p < p1; p++)
                    _mm_prefetch((const char *)(next + (size_t)i * w->cols + (size_t)p * 2 * LLM_QBLOCK), _MM_HINT_T0);
        }
        gemm_chunk(w, buf, a, r, nr, m0, mc, p0, p1, int4, asym, grouped, &L);
    }
    for (int j = 0; j < mc; j++)
        for (int i = 0; i < nr; i++)
            Y[(size_t)(m0 + j) * ldy + r + i] =
                int4 ? hsum8(L.acc[i * MC + j])
                     : finish_int8(w, r + i, L.acc[i * MC + j], codes_of(a, m0 + j), steps_of(a, m0 + j));
}

/* Rows r0..r1 against all of X, chunk by chunk of X's rows. */
AVX2_INLINE void gemm(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1, int int4, int asym,
                      int grouped)
{
    for (int m0 = 0; m0 < a->M; m0 += MC) {
        int mc = a->M - m0 < MC ? a->M - m0 : MC;
        for (int r = r0; r < r1;) {
            int nr = r1 - r >= TILE ? TILE : 1;
            gemm_rows(w, a, Y, ldy, r, nr, m0, mc, int4, asym, grouped);
            r += nr;
        }
    }
}

/* Each kernel in a function of its own, its flags constant: inlined into
 * one, they left the register allocator a frame of several of them, and
 * the int8 kernel spilled an accumulator in its loop (12% slower decode). */
#define KERNEL(name, call)                                                                                             \
    AVX2 __attribute__((noinline)) static void name(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, \
                                                    int r1)                                                            \
    {                                                                                                                  \
        call;                                                                                                          \
    }
KERNEL(decode_int8, rows_int8(w, a, Y, ldy, r0, r1))
KERNEL(decode_int4_sym, rows_int4(w, a, Y, ldy, r0, r1, 0, 0))
KERNEL(decode_int4_sym_grouped, rows_int4(w, a, Y, ldy, r0, r1, 0, 1))
KERNEL(decode_int4_asym, rows_int4(w, a, Y, ldy, r0, r1, 1, 0))
KERNEL(decode_int4_asym_grouped, rows_int4(w, a, Y, ldy, r0, r1, 1, 1))
KERNEL(gemm_int8, gemm(w, a, Y, ldy, r0, r1, 0, 0, 0))
KERNEL(gemm_int4_sym, gemm(w, a, Y, ldy, r0, r1, 1, 0, 0))
KERNEL(gemm_int4_sym_grouped, gemm(w, a, Y, ldy, r0, r1, 1, 0, 1))
KERNEL(gemm_int4_asym, gemm(w, a, Y, ldy, r0, r1, 1, 1, 0))
KERNEL(gemm_int4_asym_grouped, gemm(w, a, Y, ldy, r0, r1, 1, 1, 1))
#undef KERNEL

static void rows_avx2(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1)
{
    const int int4 = w->f.scheme == LLM_Q_INT4, grouped = int4 && w->f.group > LLM_QBLOCK, asym = w->zero != NULL;
    if (a->M >= GEMM_MIN) {
        if (!int4) gemm_int8(w, a, Y, ldy, r0, r1);
        else if (asym) (grouped ? gemm_int4_asym_grouped : gemm_int4_asym)(w, a, Y, ldy, r0, r1);
        else (grouped ? gemm_int4_sym_grouped : gemm_int4_sym)(w, a, Y, ldy, r0, r1);
    } else if (!int4) {
        decode_int8(w, a, Y, ldy, r0, r1);
    } else if (asym) {
        (grouped ? decode_int4_asym_grouped : decode_int4_asym)(w, a, Y, ldy, r0, r1);
    } else {
        (grouped ? decode_int4_sym_grouped : decode_int4_sym)(w, a, Y, ldy, r0, r1);
    }
}
#endif

static void rows_with(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1, int avx2)
{
#ifdef HAVE_X86
    if (avx2) {
        rows_avx2(w, a, Y, ldy, r0, r1);
        return;
    }
#endif
    (void)avx2;
    int int4 = w->f.scheme == LLM_Q_INT4;
    for (int r = r0; r < r1; r++)
        for (int m = 0; m < a->M; m++) {
            const int8_t *qx = codes_of(a, m);
            const float *d = steps_of(a, m);
            Y[(size_t)m * ldy + r] = int4 ? row_int4(w, r, qx, d) : row_int8(w, r, qx, d);
        }
}

void llm_qlinear_rows_q(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1)
{
    rows_with(w, a, Y, ldy, r0, r1, llm_qmatmul_avx2());
}

/* llm_qlinear_rows with the AVX2 quantizer and kernels (avx2 = 1) or the
 * portable ones: X quantized a few rows at a time on the stack (rows wider
 * than QX_COLS one at a time on the heap). */
static int float_rows(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0, int r1, int avx2)
{
    if (r0 >= r1 || M < 1) return 0;
    enum { STACK = (QX_COLS / (2 * LLM_QBLOCK)) * (2 * LLM_QBLOCK + 8 * 4 + 16 * 2 + 2 * 4) };
    _Alignas(32) char stack[STACK];
    llm_qact a = {.cap = STACK};
    int per = (int)(STACK / row_bytes(w->cols)); /* rows of X at a time */
    if (per < 1) {
        per = 1;
        a.cap = 0;
        if (llm_qact_reserve(&a, 1, w->cols) < 0) return LLM_ERR_NOMEM;
    } else
        a.mem = stack;
    for (int m0 = 0; m0 < M; m0 += per) {
        int n = M - m0 < per ? M - m0 : per;
        quantize(&a, w, X + (size_t)m0 * w->cols, n, avx2);
        rows_with(w, &a, Y + (size_t)m0 * ldy, ldy, r0, r1, avx2);
    }
    free(a.heap);
    return 0;
}

int llm_qlinear_rows(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0, int r1)
{
    return float_rows(w, X, M, Y, ldy, r0, r1, llm_qmatmul_avx2());
}

int llm_qlinear_rows_portable(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0, int r1)
{
    return float_rows(w, X, M, Y, ldy, r0, r1, 0);
}

int llm_qlinear_matmul(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, llm_error *err)
{
    double work = (double)M * w->rows * w->cols;
    int failed = 0, avx2 = llm_qmatmul_avx2(); /* failed: set by any thread whose rows could not be computed */
    /* Many rows of X: quantized once, by the threads together, for the batched kernels (without memory
     * for that, each thread quantizes a few rows at a time itself: the same codes, so the same Y). */
    llm_qact a = {0};
    int once = M >= GEMM_MIN && llm_qact_reserve(&a, M, w->cols) == 0;
    if (once) qact_shape(&a, w, M);
#pragma omp parallel if (work >= 131072)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads(), tiles = (w->rows + TILE - 1) / TILE;
        int r0 = (int)((long long)tiles * t / nt) * TILE, r1 = (int)((long long)tiles * (t + 1) / nt) * TILE;
        if (r1 > w->rows) r1 = w->rows;
        if (once) {
#pragma omp for schedule(static)
            for (int m = 0; m < M; m++) quantize_row(&a, X, m, avx2);
            rows_with(w, &a, Y, ldy, r0, r1, avx2);
        } else if (float_rows(w, X, M, Y, ldy, r0, r1, avx2) < 0) {
#pragma omp atomic write
            failed = 1;
        }
    }
    llm_qact_free(&a);
    if (failed)
        return llm_error_set(err, LLM_ERR_NOMEM, "a quantized product over rows of %d values: out of memory",
                             w->cols);
    return 0;
}
