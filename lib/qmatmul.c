/* qmatmul — int8 and int4 matrix products: activations quantized per block
 * (once per product and input, llm_qact), integer dot products (AVX2 over 4
 * weight rows at a time, tiles of 4 weight rows by 2 rows of X for many rows
 * of X, or portable C), float scales applied per block. */
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
/* inlined into its AVX2 caller with constant row counts, so that the loops
 * over rows unroll and their accumulators stay in registers */
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma")))
#endif

/* The quantized rows of X that llm_qlinear_rows keeps on the stack: enough
 * for decoding batches to read each weight row once for all of them. */
enum { QX_BYTES = 32768 };
/* Weight rows per pass of the AVX2 kernels over a block of X. */
enum { TILE = 4 };
/* Rows of X from which the AVX2 kernels take them all at once (a GEMM). */
enum { GEMM_MIN = 16 };
/* How far ahead, in tiles, the kernels prefetch the weights: a tile reads
 * its rows as TILE short streams (a few hundred bytes each), too short for
 * the hardware's prefetcher to follow (int8 on one thread streamed at a
 * third of the one-row kernel's rate without this), so the kernels sweep
 * the memory of the tiles ahead themselves at the rate they consume it.
 * Prefetches past the weights' end (an address as an integer, never a
 * pointer out of bounds) are harmless: they never fault. */
enum { PF_TILES = 2 };

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

/* ---- the quantized activations ---- */

static int blocks_of(int cols) { return (cols + LLM_QBLOCK - 1) / LLM_QBLOCK; }

static int wants_split(const llm_qlinear *w) { return w->f.scheme == LLM_Q_INT4; }
static float step_of(const llm_qlinear *w) { return w->f.scheme == LLM_Q_W8A8 ? w->act_scale : 0.0f; }

int llm_qact_reserve(llm_qact *a, int M, int cols)
{
    size_t need = (size_t)M * (size_t)blocks_of(cols);
    if (need <= a->cap) return 0;
    float *p = malloc(need * (sizeof(float) + LLM_QBLOCK));
    if (!p) return LLM_ERR_NOMEM;
    free(a->heap);
    a->heap = p;
    a->d = p;
    a->q = (int8_t *)(p + need);
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

/* Block x [n] (n <= 32) into q [32] (zeros past n) and its step *d; step: 0
 * for a step of its own (max|x|/127), else that fixed step; split: the
 * evens, then the odds. */
static void quantize_block(const float *x, int n, float step, int split, int8_t *q, float *d)
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
            float c = rintf(x[k] * inv);
            v = c > 127.0f ? 127 : c < -127.0f ? -127 : c == c ? (int)c : 0;
        }
        q[split ? (k & 1) * (LLM_QBLOCK / 2) + k / 2 : k] = (int8_t)v;
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

/* quantize_block for a whole block, the same codes and step: the same
 * product x * inv rounded to nearest even, NaN to 0, then clamped. */
AVX2 static void quantize_block_avx2(const float *x, float step, int split, int8_t *q, float *d)
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
    }
    _mm256_storeu_si256((__m256i *)q, p);
    *d = s;
}
#endif

/* a's shape and kind for X [M, w->cols] quantized for w. */
static void qact_shape(llm_qact *a, const llm_qlinear *w, int M)
{
    a->M = M;
    a->cols = w->cols;
    a->nb = blocks_of(w->cols);
    a->split = wants_split(w);
    a->step = step_of(w);
}

/* Row m of X into a (shaped by qact_shape). */
static void quantize_row(llm_qact *a, const float *X, int m, int avx2)
{
    (void)avx2;
    for (int b = 0; b < a->nb; b++) {
        const float *x = X + (size_t)m * a->cols + (size_t)b * LLM_QBLOCK;
        size_t at = (size_t)m * a->nb + (size_t)b;
        int n = a->cols - b * LLM_QBLOCK < LLM_QBLOCK ? a->cols - b * LLM_QBLOCK : LLM_QBLOCK;
#ifdef HAVE_X86
        if (avx2 && n == LLM_QBLOCK) {
            quantize_block_avx2(x, a->step, a->split, a->q + at * LLM_QBLOCK, a->d + at);
            continue;
        }
#endif
        quantize_block(x, n, a->step, a->split, a->q + at * LLM_QBLOCK, a->d + at);
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

/* ---- portable kernels: one weight row at a time ---- */

static int32_t dot_s8(const int8_t *a, const int8_t *b, int n)
{
    int32_t s = 0;
    for (int k = 0; k < n; k++) s += (int32_t)a[k] * b[k];
    return s;
}

static float row_int8(const llm_qlinear *w, int r, const int8_t *qx, const float *d, int nb)
{
    const int8_t *wr = w->q8 + (size_t)r * w->cols;
    float acc = 0;
    for (int b = 0; b < nb; b++) {
        int k0 = b * LLM_QBLOCK, n = w->cols - k0 < LLM_QBLOCK ? w->cols - k0 : LLM_QBLOCK;
        acc += d[b] * (float)dot_s8(wr + k0, qx + k0, n);
    }
    return acc * w->scale[r];
}

/* Block by block: sum (u - zero) x over the block's codes u, in integers. */
static float row_int4(const llm_qlinear *w, int r, const int8_t *qx, const float *d)
{
    const uint8_t *wr = w->q4 + (size_t)r * (w->cols / 2);
    int bpg = w->f.group / LLM_QBLOCK;
    float total = 0;
    for (int g = 0; g < w->groups; g++) {
        size_t at = (size_t)r * w->groups + (size_t)g;
        int z = w->zero ? w->zero[at] : 8;
        float sc = w->scale[at];
        for (int b = g * bpg; b < (g + 1) * bpg; b++) {
            const uint8_t *wb = wr + (size_t)b * (LLM_QBLOCK / 2);
            const int8_t *xb = qx + (size_t)b * LLM_QBLOCK;
            int32_t s = 0;
            for (int i = 0; i < LLM_QBLOCK / 2; i++)
                s += ((wb[i] & 15) - z) * xb[i] + ((wb[i] >> 4) - z) * xb[LLM_QBLOCK / 2 + i];
            total += d[b] * sc * (float)s;
        }
    }
    return total;
}

/* ---- AVX2 kernels: nr <= TILE weight rows against one row of X ---- */

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

/* Row r of int8 W times X's row (qx, d) from the lanes acc of its full
 * blocks: their sum, the last, partial block's, the row's scale. */
AVX2_INLINE float finish_int8(const llm_qlinear *w, int r, __m256 acc, const int8_t *qx, const float *d)
{
    const int full = w->cols / LLM_QBLOCK;
    float s = hsum8(acc);
    if (full * LLM_QBLOCK < w->cols) /* a last, partial block */
        s += d[full] * (float)dot_s8(w->q8 + (size_t)r * w->cols + (size_t)full * LLM_QBLOCK,
                                     qx + (size_t)full * LLM_QBLOCK, w->cols - full * LLM_QBLOCK);
    return s * w->scale[r];
}

/* y[i] = row r + i of W times X's row (qx, d), i < nr.  Each row sums the
 * same way whatever nr is. */
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
        __m256 db = _mm256_set1_ps(d[b]);
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)(codes + i * cols + (size_t)b * LLM_QBLOCK));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_block(wv, x, ax)), db, acc[i]);
        }
    }
    for (int i = 0; i < nr; i++) y[i] = finish_int8(w, r + i, acc[i], qx, d);
}

/* An int4 block's 16 bytes of codes as 32 bytes 0..15: in both lanes,
 * shifted by 0 and 4 bits, masked: the low nibbles (evens) then the high
 * ones (odds), as the activation's split blocks hold x. */
AVX2_INLINE __m256i nibbles(const uint8_t *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_srlv_epi64(_mm256_broadcastsi128_si256(v), _mm256_setr_epi64x(0, 0, 4, 4)),
                            _mm256_set1_epi8(15));
}

/* The same for int4 (codes through nibbles).  Asymmetric: less the zero point,
 * -15..15, then dot_block.  Symmetric: u x - 8 x in int16 (each pair's
 * products within ±3810), 8 x once for the tile's rows.  Groups of more
 * than one block (grouped): a group's blocks summed with their steps d_b,
 * then times the group's scale, one multiply per group, not per block;
 * else each block with d_b times the scale. */
AVX2_INLINE void tile_int4(const llm_qlinear *w, int r, int nr, int asym, int grouped, const int8_t *qx,
                           const float *d, float *y)
{
    const size_t half = (size_t)w->cols / 2, G = (size_t)w->groups;
    const int bpg = w->f.group / LLM_QBLOCK;
    const uint8_t *codes = w->q4 + (size_t)r * half;
    const float *scale = w->scale + (size_t)r * G;
    const uint8_t *zero = asym ? w->zero + (size_t)r * G : NULL;
    uintptr_t ahead = (uintptr_t)codes + PF_TILES * TILE * half; /* may be past the end */
    __m256 tot[TILE], part[TILE], sc[TILE];
    __m256i z[TILE];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++) tot[i] = _mm256_setzero_ps(), z[i] = _mm256_setzero_si256();
    for (size_t g = 0; g < G; g++) {
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            part[i] = _mm256_setzero_ps();
            sc[i] = _mm256_set1_ps(scale[i * G + g]);
            if (asym) z[i] = _mm256_set1_epi8((char)zero[i * G + g]);
        }
        for (int b = (int)g * bpg; b < ((int)g + 1) * bpg; b++) {
            _mm_prefetch((const char *)(ahead + (size_t)b * TILE * (LLM_QBLOCK / 2)), _MM_HINT_T0);
            __m256i x = _mm256_loadu_si256((const __m256i *)(qx + (size_t)b * LLM_QBLOCK));
            __m256i ax = _mm256_sign_epi8(x, x), x8 = _mm256_maddubs_epi16(_mm256_set1_epi8(8), x);
            __m256 db = _mm256_set1_ps(d[b]);
#pragma GCC unroll 4
            for (int i = 0; i < nr; i++) {
                __m256i u = nibbles(codes + i * half + (size_t)b * (LLM_QBLOCK / 2));
                __m256i p = asym ? dot_block(_mm256_sub_epi8(u, z[i]), x, ax)
                                 : _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(u, x), x8),
                                                     _mm256_set1_epi16(1));
                if (grouped) part[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), db, part[i]);
                else tot[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(db, sc[i]), tot[i]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < nr && grouped; i++) tot[i] = _mm256_fmadd_ps(part[i], sc[i], tot[i]);
    }
    for (int i = 0; i < nr; i++) y[i] = hsum8(tot[i]);
}

/* Rows [r0, r1) in tiles of TILE rows (then one at a time), each tile
 * against every row of X while it sits in L1. */
AVX2_INLINE void rows_int4(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1,
                           int asym, int grouped)
{
    for (int r = r0; r < r1;) {
        int nr = r1 - r >= TILE ? TILE : 1;
        for (int m = 0; m < a->M; m++) {
            const int8_t *qx = a->q + (size_t)m * a->nb * LLM_QBLOCK;
            const float *d = a->d + (size_t)m * a->nb;
            if (nr == TILE) tile_int4(w, r, TILE, asym, grouped, qx, d, Y + (size_t)m * ldy + r);
            else tile_int4(w, r, 1, asym, grouped, qx, d, Y + (size_t)m * ldy + r);
        }
        r += nr;
    }
}

/* ---- AVX2 batched kernel: many rows of X at once (a GEMM) ----
 *
 * A tile of TILE weight rows, its blocks from b0 to b1 (at most KB; int4's
 * codes unpacked, less their zero points, into an int8 buffer beside it),
 * against the rows of X in a chunk of at most MC, GEMM_ROWS at a time: each
 * block of weights read from L1 for GEMM_ROWS rows of X, each block of X
 * for TILE rows of weights.  The lanes of each (row, X row) accumulator
 * take the same integers and the same float operations, in the same order,
 * as the one-row kernels above (int4's u x - 8 x and (u - zero) x are the
 * same integer), so a product is the same bit for bit either way; the
 * lanes wait in memory between chunks of KB blocks. */
enum { GEMM_ROWS = 2, MC = 64, KB = 32 };

/* nm <= GEMM_ROWS rows of X from row m (of the chunk starting at m0)
 * against nr <= TILE weight rows: wq (row stride ws) holds their blocks
 * b0..b1 as int8 codes (int4: less the zero point, with sc4 [b1 - b0][TILE]
 * the scales of their blocks' groups); acc [TILE][MC] lanes. */
AVX2_INLINE void gemm_tile(const int8_t *wq, size_t ws, const float *sc4, int bpg, int int4, int grouped,
                           const llm_qact *a, int m, int m0, int nm, int nr, int b0, int b1, __m256 *acc)
{
    const size_t xs = (size_t)a->nb * LLM_QBLOCK;
    __m256 c[TILE][GEMM_ROWS];
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nm; j++) c[i][j] = acc[i * MC + m - m0 + j];
    /* as the one-row kernels: int8 and int4 in groups of one block, each block into c (int4: with
     * its step times its scale); int4 grouped, a group's blocks into part, then times the scale */
    const int per = grouped ? bpg : b1 - b0;
    for (int g0 = b0; g0 < b1; g0 += per) {
        __m256 part[TILE][GEMM_ROWS];
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++)
#pragma GCC unroll 2
            for (int j = 0; j < nm; j++) part[i][j] = grouped ? _mm256_setzero_ps() : c[i][j];
        for (int b = g0; b < g0 + per; b++) {
            __m256i x[GEMM_ROWS], ax[GEMM_ROWS];
            __m256 db[GEMM_ROWS];
#pragma GCC unroll 2
            for (int j = 0; j < nm; j++) {
                x[j] = _mm256_loadu_si256((const __m256i *)(a->q + (size_t)(m + j) * xs + (size_t)b * LLM_QBLOCK));
                ax[j] = _mm256_sign_epi8(x[j], x[j]);
                db[j] = _mm256_set1_ps(a->d[(size_t)(m + j) * a->nb + b]);
            }
#pragma GCC unroll 4
            for (int i = 0; i < nr; i++) {
                __m256i wv = _mm256_loadu_si256((const __m256i *)(wq + i * ws + (size_t)(b - b0) * LLM_QBLOCK));
                __m256 s = _mm256_set1_ps(int4 && !grouped ? sc4[(size_t)(b - b0) * TILE + i] : 0.0f);
#pragma GCC unroll 2
                for (int j = 0; j < nm; j++) {
                    __m256 step = int4 && !grouped ? _mm256_mul_ps(db[j], s) : db[j];
                    part[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_block(wv, x[j], ax[j])), step, part[i][j]);
                }
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < nr; i++) {
            __m256 s = _mm256_set1_ps(grouped ? sc4[(size_t)(g0 - b0) * TILE + i] : 0.0f);
#pragma GCC unroll 2
            for (int j = 0; j < nm; j++) c[i][j] = grouped ? _mm256_fmadd_ps(part[i][j], s, c[i][j]) : part[i][j];
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < nr; i++)
#pragma GCC unroll 2
        for (int j = 0; j < nm; j++) acc[i * MC + m - m0 + j] = c[i][j];
}

/* Rows r..r+nr of int4 W, blocks b0..b1, into buf [TILE][KB * 32] as int8
 * codes less their zero points, in the activations' order (a block's
 * evens, then its odds). */
AVX2_INLINE void unpack_int4(const llm_qlinear *w, int r, int nr, int b0, int b1, int8_t *buf)
{
    const size_t half = (size_t)w->cols / 2, G = (size_t)w->groups;
    const int bpg = w->f.group / LLM_QBLOCK;
    for (int i = 0; i < nr; i++) {
        const uint8_t *codes = w->q4 + (size_t)(r + i) * half;
        for (int b = b0; b < b1; b++) {
            __m256i u = nibbles(codes + (size_t)b * (LLM_QBLOCK / 2));
            int z = w->zero ? w->zero[(size_t)(r + i) * G + (size_t)(b / bpg)] : 8;
            _mm256_storeu_si256((__m256i *)(buf + (size_t)i * KB * LLM_QBLOCK + (size_t)(b - b0) * LLM_QBLOCK),
                                _mm256_sub_epi8(u, _mm256_set1_epi8((char)z)));
        }
    }
}

/* Weight rows r..r+nr (nr <= TILE) against X's rows m0..m0+mc (mc <= MC). */
AVX2_INLINE void gemm_rows(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r, int nr, int m0,
                           int mc, int int4, int grouped)
{
    _Alignas(32) int8_t buf[TILE * KB * LLM_QBLOCK];
    _Alignas(16) float sc4[KB * TILE]; /* int4: the scales of blocks b0.., a block's rows together */
    __m256 acc[TILE * MC];
    const int full = w->cols / LLM_QBLOCK, bpg = int4 ? w->f.group / LLM_QBLOCK : 1;
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < mc; j++) acc[i * MC + j] = _mm256_setzero_ps();
    for (int b0 = 0; b0 < full; b0 += KB) {
        int b1 = full - b0 < KB ? full : b0 + KB;
        const int8_t *wq = w->q8 + (size_t)r * w->cols + (size_t)b0 * LLM_QBLOCK;
        size_t ws = (size_t)w->cols;
        if (int4) {
            unpack_int4(w, r, nr, b0, b1, buf);
            wq = buf, ws = KB * LLM_QBLOCK;
            for (int b = b0; b < b1; b++)
                for (int i = 0; i < nr; i++) sc4[(b - b0) * TILE + i] = w->scale[(size_t)(r + i) * w->groups + b / bpg];
        }
        for (int m = m0; m < m0 + mc;) {
            int nm = m0 + mc - m >= GEMM_ROWS ? GEMM_ROWS : 1;
            if (nr == TILE && nm == GEMM_ROWS) gemm_tile(wq, ws, sc4, bpg, int4, grouped, a, m, m0, GEMM_ROWS, TILE, b0, b1, acc);
            else if (nr == TILE) gemm_tile(wq, ws, sc4, bpg, int4, grouped, a, m, m0, 1, TILE, b0, b1, acc);
            else if (nm == GEMM_ROWS) gemm_tile(wq, ws, sc4, bpg, int4, grouped, a, m, m0, GEMM_ROWS, 1, b0, b1, acc);
            else gemm_tile(wq, ws, sc4, bpg, int4, grouped, a, m, m0, 1, 1, b0, b1, acc);
            m += nm;
        }
    }
    for (int j = 0; j < mc; j++) {
        const int8_t *qx = a->q + (size_t)(m0 + j) * a->nb * LLM_QBLOCK;
        const float *d = a->d + (size_t)(m0 + j) * a->nb;
        for (int i = 0; i < nr; i++)
            Y[(size_t)(m0 + j) * ldy + r + i] =
                int4 ? hsum8(acc[i * MC + j]) : finish_int8(w, r + i, acc[i * MC + j], qx, d);
    }
}

/* Rows r0..r1 against all of X, chunk by chunk of X's rows. */
AVX2_INLINE void gemm(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1, int int4,
                      int grouped)
{
    for (int m0 = 0; m0 < a->M; m0 += MC) {
        int mc = a->M - m0 < MC ? a->M - m0 : MC;
        for (int r = r0; r < r1;) {
            int nr = r1 - r >= TILE ? TILE : 1;
            gemm_rows(w, a, Y, ldy, r, nr, m0, mc, int4, grouped);
            r += nr;
        }
    }
}

AVX2 static void rows_avx2(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1)
{
    if (a->M >= GEMM_MIN) {
        if (w->f.scheme != LLM_Q_INT4) gemm(w, a, Y, ldy, r0, r1, 0, 0);
        else if (w->f.group > LLM_QBLOCK) gemm(w, a, Y, ldy, r0, r1, 1, 1);
        else gemm(w, a, Y, ldy, r0, r1, 1, 0);
        return;
    }
    if (w->f.scheme == LLM_Q_INT4) {
        int grouped = w->f.group > LLM_QBLOCK;
        if (w->zero && grouped) rows_int4(w, a, Y, ldy, r0, r1, 1, 1);
        else if (w->zero) rows_int4(w, a, Y, ldy, r0, r1, 1, 0);
        else if (grouped) rows_int4(w, a, Y, ldy, r0, r1, 0, 1);
        else rows_int4(w, a, Y, ldy, r0, r1, 0, 0);
        return;
    }
    for (int r = r0; r < r1;) {
        int nr = r1 - r >= TILE ? TILE : 1;
        for (int m = 0; m < a->M; m++) {
            const int8_t *qx = a->q + (size_t)m * a->nb * LLM_QBLOCK;
            const float *d = a->d + (size_t)m * a->nb;
            if (nr == TILE) tile_int8(w, r, TILE, qx, d, Y + (size_t)m * ldy + r);
            else tile_int8(w, r, 1, qx, d, Y + (size_t)m * ldy + r);
        }
        r += nr;
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
            const int8_t *qx = a->q + (size_t)m * a->nb * LLM_QBLOCK;
            const float *d = a->d + (size_t)m * a->nb;
            Y[(size_t)m * ldy + r] = int4 ? row_int4(w, r, qx, d) : row_int8(w, r, qx, d, a->nb);
        }
}

void llm_qlinear_rows_q(const llm_qlinear *w, const llm_qact *a, float *Y, int ldy, int r0, int r1)
{
    rows_with(w, a, Y, ldy, r0, r1, llm_qmatmul_avx2());
}

/* llm_qlinear_rows with the AVX2 quantizer and kernels (avx2 = 1) or the
 * portable ones: X quantized a few rows at a time on the stack. */
static int float_rows(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0, int r1,
                      int avx2)
{
    if (r0 >= r1 || M < 1) return 0;
    int nb = blocks_of(w->cols), per = QX_BYTES / (nb * LLM_QBLOCK); /* rows of X at a time */
    _Alignas(32) int8_t qbuf[QX_BYTES];
    float dbuf[QX_BYTES / LLM_QBLOCK];
    llm_qact a = {.q = qbuf, .d = dbuf, .cap = QX_BYTES / LLM_QBLOCK};
    if (per < 1) { /* a row wider than the buffer: one row at a time on the heap */
        per = 1;
        a.cap = 0;
        if (llm_qact_reserve(&a, 1, w->cols) < 0) return LLM_ERR_NOMEM;
    }
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

int llm_qlinear_rows_portable(const llm_qlinear *w, const float *X, int M, float *Y, int ldy, int r0,
                              int r1)
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
