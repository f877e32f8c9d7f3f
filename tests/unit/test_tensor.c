/* Unit tests for lib/tensor: dtype table, checked sizes, shape text, freeing, the
 * half-precision conversions against brute-force nearest-value searches, and
 * the search for values that are not finite against isfinite. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tensor.h"

static void test_dtype_table(void)
{
    for (int d = 0; d < LLM_DTYPE_COUNT; d++) {
        CHECK(llm_dtype_name(d) != NULL);
    }
    CHECK(llm_dtype_name(LLM_DTYPE_COUNT) == NULL && llm_dtype_name(-1) == NULL);
    CHECK(llm_dtype_bits(LLM_DTYPE_BF16) == 16 && llm_dtype_bits(LLM_DTYPE_I4) == 4);
    CHECK(llm_dtype_is_float(LLM_DTYPE_F16) && !llm_dtype_is_float(LLM_DTYPE_I32));
}

static void test_payload_bytes(void)
{
    llm_error err = {0};
    uint64_t n;
    llm_shape s = llm_shape_make(2, (int64_t[]){3, 5});
    CHECK(llm_payload_bytes(LLM_DTYPE_F32, &s, &n, &err) == 0 && n == 60);
    CHECK(llm_payload_bytes(LLM_DTYPE_I4, &s, &n, &err) == 0 && n == 8); /* 15 nibbles */
    CHECK(llm_payload_bytes(LLM_DTYPE_I64, &s, &n, &err) == 0 && n == 120);
    llm_shape scalar = llm_shape_make(0, NULL);
    CHECK(llm_payload_bytes(LLM_DTYPE_F64, &scalar, &n, &err) == 0 && n == 8);
    llm_shape empty = llm_shape_make(3, (int64_t[]){4, 0, 1000});
    CHECK(llm_payload_bytes(LLM_DTYPE_F32, &empty, &n, &err) == 0 && n == 0);
    llm_shape huge = llm_shape_make(3, (int64_t[]){1LL << 40, 1LL << 40, 2});
    CHECK(llm_payload_bytes(LLM_DTYPE_U8, &huge, &n, &err) == LLM_ERR_LIMIT);
    llm_shape big = llm_shape_make(2, (int64_t[]){1LL << 31, 1LL << 30}); /* 2^61 elements */
    CHECK(llm_payload_bytes(LLM_DTYPE_U8, &big, &n, &err) == 0);
    CHECK(llm_payload_bytes(LLM_DTYPE_F32, &big, &n, &err) == LLM_ERR_LIMIT);
    llm_shape bad = llm_shape_make(1, (int64_t[]){-1});
    CHECK(llm_payload_bytes(LLM_DTYPE_F32, &bad, &n, &err) == LLM_ERR_LIMIT);
    CHECK(llm_payload_bytes(42, &s, &n, &err) == LLM_ERR_FORMAT);
    CHECK(llm_shape_numel(&s) == 15 && llm_shape_numel(&huge) == -1);
}

static void test_shape_format(void)
{
    char buf[64];
    llm_shape s = llm_shape_make(3, (int64_t[]){2, 3, 4});
    CHECK(strcmp(llm_shape_format(&s, buf, sizeof buf), "[2,3,4]") == 0);
    s = llm_shape_make(0, NULL);
    CHECK(strcmp(llm_shape_format(&s, buf, sizeof buf), "[]") == 0);
    s = llm_shape_make(2, (int64_t[]){123456, 7});
    CHECK(strcmp(llm_shape_format(&s, buf, 6), "[1234") == 0); /* cut, terminated */
}

/* The representable value nearest x, ties to the even code: a brute-force
 * search over a sorted table of every finite code. */
static uint16_t nearest_code(double x, const double *val, const uint16_t *code, int n)
{
    int lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (val[mid] <= x) lo = mid;
        else hi = mid;
    }
    double dl = fabs(x - val[lo]), dh = fabs(val[hi] - x);
    if (dl < dh) return code[lo];
    if (dh < dl) return code[hi];
    return (code[lo] & 1) ? code[hi] : code[lo];
}

typedef struct {
    double v;
    uint16_t c;
} coded;

static int cmp_coded(const void *a, const void *b)
{
    double x = ((const coded *)a)->v, y = ((const coded *)b)->v;
    return (x > y) - (x < y);
}

/* Builds the sorted table of non-negative finite values of a 16-bit format. */
static int table_of(float (*to_f32)(uint16_t), double *val, uint16_t *code)
{
    coded *t = malloc(32768 * sizeof *t);
    int n = 0;
    for (int c = 0; c < 32768; c++) {
        float f = to_f32((uint16_t)c);
        if (isfinite(f)) t[n++] = (coded){f, (uint16_t)c};
    }
    qsort(t, (size_t)n, sizeof *t, cmp_coded);
    for (int i = 0; i < n; i++) val[i] = t[i].v, code[i] = t[i].c;
    free(t);
    return n;
}

static void check_16bit_rounding(float (*to_f32)(uint16_t), uint16_t (*from_f32)(float),
                                 double max_finite_next)
{
    double *val = malloc(32768 * sizeof *val);
    uint16_t *code = malloc(32768 * sizeof *code);
    int n = table_of(to_f32, val, code);
    unsigned long long rng = 7;
    int bad = 0;
    for (int i = 0; i < 200000 && !bad; i++) {
        /* magnitudes spread over the whole range, subnormals included */
        double e = check_uniform(&rng) * 300.0 - 150.0;
        float x = (float)(ldexp(1.0 + check_uniform(&rng), (int)e) * (i & 1 ? -1 : 1));
        if (i % 7 == 0) x = to_f32((uint16_t)(rng >> 48 & 0x7fff)) + 0.0f; /* exact codes */
        if (!isfinite(x)) continue;
        double ax = fabs((double)x);
        uint16_t got = from_f32(x);
        if (ax >= max_finite_next) {
            bad |= !CHECK_MSG(isinf(to_f32(got)), "%.9g should overflow to inf", (double)x);
            continue;
        }
        uint16_t want = nearest_code(ax, val, code, n) | (signbit(x) ? 0x8000 : 0);
        bad |= !CHECK_MSG(got == want, "%.9g -> 0x%04x, nearest is 0x%04x", (double)x, got, want);
    }
    for (int i = 0; i + 1 < n && !bad; i++) { /* every exact midpoint: ties go to even */
        float x = (float)((val[i] + val[i + 1]) / 2);
        uint16_t want = (code[i] & 1) ? code[i + 1] : code[i];
        bad |= !CHECK_MSG(from_f32(x) == want && from_f32(-x) == (want | 0x8000),
                          "midpoint %.9g -> 0x%04x, want 0x%04x", (double)x, from_f32(x), want);
    }
    for (int c = 0; c < 65536; c++) { /* every code survives a round trip */
        float f = to_f32((uint16_t)c);
        if (isnan(f)) CHECK(isnan(to_f32(from_f32(f))));
        else if (!CHECK_MSG(from_f32(f) == c, "code 0x%04x does not round-trip", c)) break;
    }
    CHECK(isnan(to_f32(from_f32(NAN))));
    free(val);
    free(code);
}

static void test_f16(void)
{
    /* 65520 = max half (65504) + half an ulp: from there values round to inf */
    check_16bit_rounding(llm_f16_to_f32, llm_f32_to_f16, 65520.0);
    CHECK(llm_f16_to_f32(0x3c00) == 1.0f && llm_f16_to_f32(0xc000) == -2.0f);
    CHECK(llm_f16_to_f32(0x0001) == ldexpf(1, -24));
}

static void test_bf16(void)
{
    double max_next = ldexp(1.0, 128) * (1.0 - ldexp(1.0, -9)); /* max bf16 + half ulp */
    check_16bit_rounding(llm_bf16_to_f32, llm_f32_to_bf16, max_next);
    CHECK(llm_bf16_to_f32(0x3f80) == 1.0f);
}

static void test_to_f64_and_widen(void)
{
    unsigned char nib[2] = {0x8f, 0x07}; /* elements: 15, 8, 7 (low nibble first) */
    double d[3];
    llm_dtype_to_f64(LLM_DTYPE_U4, nib, 3, d);
    CHECK(d[0] == 15 && d[1] == 8 && d[2] == 7);
    llm_dtype_to_f64(LLM_DTYPE_I4, nib, 3, d);
    CHECK(d[0] == -1 && d[1] == -8 && d[2] == 7);
    signed char w[3];
    llm_dtype_widen(LLM_DTYPE_I4, nib, 3, w);
    CHECK(w[0] == -1 && w[1] == -8 && w[2] == 7);
    CHECK(llm_dtype_widened(LLM_DTYPE_BF16) == LLM_DTYPE_F32);
    CHECK(llm_dtype_widened(LLM_DTYPE_F16) == LLM_DTYPE_F16);
    uint16_t b[2] = {0x3f80, 0xc040};
    float f[2];
    llm_dtype_widen(LLM_DTYPE_BF16, b, 2, f);
    CHECK(f[0] == 1.0f && f[1] == -3.0f);
    int64_t big = (1LL << 53) + 0;
    llm_dtype_to_f64(LLM_DTYPE_I64, &big, 1, d);
    CHECK(d[0] == 9007199254740992.0);
}

static void test_tensor_free(void)
{
    llm_tensor t = {.dtype = LLM_DTYPE_I4, .shape = llm_shape_make(2, (int64_t[]){4, 3}), .data = malloc(6),
                    .owned = 1};
    llm_tensor_free(&t);
    CHECK(t.data == NULL && !t.owned);
    llm_tensor_free(NULL);
}

/* llm_f32_find_nonfinite against a plain isfinite loop: arrays of every
 * length up to 70 (and one of a million) with NaN, infinities, the largest
 * finite values and subnormals placed at random, often none of the first. */
static void test_find_nonfinite(void)
{
    const float odd[] = {NAN, -NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, FLT_MIN / 4, -0.0f};
    unsigned long long rng = 17;
    float *x = malloc((1 << 20) * sizeof *x);
    for (int trial = 0; trial < 3000; trial++) {
        int64_t n = trial == 0 ? 1 << 20 : (int64_t)(check_uniform(&rng) * 71);
        for (int64_t i = 0; i < n; i++) x[i] = (float)check_normal(&rng);
        int specials = (int)(check_uniform(&rng) * 4);
        for (int k = 0; k < specials && n > 0; k++)
            x[(int64_t)(check_uniform(&rng) * (double)n)] = odd[(int)(check_uniform(&rng) * 8)];
        int64_t want = -1;
        for (int64_t i = 0; i < n && want < 0; i++)
            if (!isfinite(x[i])) want = i;
        int64_t got = llm_f32_find_nonfinite(x, n);
        CHECK_MSG(got == want, "trial %d, %lld floats: %lld, want %lld", trial, (long long)n, (long long)got,
                  (long long)want);
    }
    free(x);
}

int main(void)
{
    RUN(test_find_nonfinite);
    RUN(test_dtype_table);
    RUN(test_payload_bytes);
    RUN(test_shape_format);
    RUN(test_f16);
    RUN(test_bf16);
    RUN(test_to_f64_and_widen);
    RUN(test_tensor_free);
    return check_done();
}
