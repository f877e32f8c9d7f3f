/* Unit tests for lib/attnmap: record names and shapes, rows handed out in
 * order across heads and read chunks (f32 and f16 payloads, compared with
 * the values written), NaN refused with its place, and rows off 1 counted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnmap.h"
#include "check.h"

static void test_names(void)
{
    CHECK(llm_attnmap_layer("layers.0.attn.probs") == 0);
    CHECK(llm_attnmap_layer("layers.31.attn.probs") == 31);
    CHECK(llm_attnmap_layer("layers.07.attn.probs") == -1);
    CHECK(llm_attnmap_layer("layers..attn.probs") == -1);
    CHECK(llm_attnmap_layer("layers.1.attn.wq") == -1);
    CHECK(llm_attnmap_layer("layers.1.attn.probs.x") == -1);
    CHECK(llm_attnmap_layer("layers.9999999999.attn.probs") == -1);
}

static void test_shapes(void)
{
    llm_error err = {0};
    int64_t H, T;
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = "layers.0.attn.probs", .dtype = LLM_DTYPE_F32,
                      .shape = llm_shape_make(3, (int64_t[]){4, 9, 9})};
    CHECK(llm_attnmap_shape(&rec, &H, &T, &err) == 0 && H == 4 && T == 9);
    rec.shape = llm_shape_make(3, (int64_t[]){4, 9, 8});
    CHECK(llm_attnmap_shape(&rec, &H, &T, &err) == LLM_ERR_FORMAT && strstr(err.msg, "[4,9,8] is not [heads, T, T]"));
    rec.shape = llm_shape_make(2, (int64_t[]){9, 9});
    CHECK(llm_attnmap_shape(&rec, &H, &T, &err) == LLM_ERR_FORMAT);
    rec.shape = llm_shape_make(3, (int64_t[]){0, 9, 9});
    CHECK(llm_attnmap_shape(&rec, &H, &T, &err) == LLM_ERR_FORMAT);
    rec.shape = llm_shape_make(3, (int64_t[]){1, 2, 2});
    rec.dtype = LLM_DTYPE_I32;
    CHECK(llm_attnmap_shape(&rec, &H, &T, &err) == LLM_ERR_FORMAT && strstr(err.msg, "i32"));
}

/* Writes one [H,T,T] record of dtype holding vals (as floats) to path. */
static void write_record(const char *path, llm_dtype dtype, int64_t H, int64_t T, const float *vals)
{
    llm_error err = {0};
    llm_writer *w;
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = "layers.2.attn.probs", .dtype = dtype,
                      .shape = llm_shape_make(3, (int64_t[]){H, T, T})};
    size_t n = (size_t)(H * T * T);
    if (dtype == LLM_DTYPE_F16) {
        uint16_t *h = malloc(n * sizeof *h);
        for (size_t k = 0; k < n; k++) h[k] = llm_f32_to_f16(vals[k]);
        CHECK_OK(llm_writer_record(w, &rec, h, &err), err);
        free(h);
    } else {
        CHECK_OK(llm_writer_record(w, &rec, vals, &err), err);
    }
    CHECK_OK(llm_writer_close(w, &err), err);
}

static void read_back(llm_dtype dtype)
{
    llm_error err = {0};
    enum { H = 3, T = 300 }; /* 300 f32 rows of 1200 bytes: a 1 MiB chunk ends mid-head */
    float *vals = malloc(sizeof *vals * H * T * T);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) vals[((size_t)h * T + i) * T + j] = j <= i ? 1.0f / (i + 1) : 0;
    vals[((size_t)1 * T + 5) * T + 0] += 0.5f; /* head 1 row 5 sums to 1.5 */
    char path[600];
    snprintf(path, sizeof path, "%s/attn-%d.llmt", check_tmpdir(), (int)dtype);
    write_record(path, dtype, H, T, vals);
    llm_reader *r;
    const llm_record *rec;
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    CHECK(llm_reader_next(r, &rec, &err) == 1);
    llm_attnmap m;
    CHECK_OK(llm_attnmap_open(&m, r, rec, "x", &err), err);
    CHECK(dtype != LLM_DTYPE_F32 || m.chunk_rows < H * T);
    const double *p;
    int64_t h, i, n = 0;
    int rc, in_order = 1, equal = 1;
    while ((rc = llm_attnmap_next(&m, &p, &h, &i, &err)) > 0) {
        in_order &= h == n / T && i == n % T;
        for (int j = 0; j < T; j++) {
            double want = dtype == LLM_DTYPE_F16 ? llm_f16_to_f32(llm_f32_to_f16(vals[n * T + j])) : vals[n * T + j];
            equal &= p[j] == want;
        }
        n++;
    }
    CHECK(rc == 0 && n == H * T && in_order && equal);
    /* f16 rounding of 1/(i+1) stays well inside the tolerance */
    CHECK(m.bad_rows == 1 && m.worst_head == 1 && m.worst_row == 5);
    CHECK_NEAR(m.worst_sum, 1.5, 1e-2);
    llm_attnmap_close(&m);
    llm_reader_close(r);
    free(vals);
}

static void test_rows_f32(void) { read_back(LLM_DTYPE_F32); }
static void test_rows_f16(void) { read_back(LLM_DTYPE_F16); }

static void test_nan_refused(void)
{
    llm_error err = {0};
    float vals[2 * 2 * 2] = {1, 0, 0.5f, 0.5f, 1, 0, 0.5f, NAN};
    char path[600];
    snprintf(path, sizeof path, "%s/nan.llmt", check_tmpdir());
    write_record(path, LLM_DTYPE_F32, 2, 2, vals);
    llm_reader *r;
    const llm_record *rec;
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    CHECK(llm_reader_next(r, &rec, &err) == 1);
    llm_attnmap m;
    CHECK_OK(llm_attnmap_open(&m, r, rec, "in.llmt", &err), err);
    const double *p;
    int64_t h, i;
    int rc;
    while ((rc = llm_attnmap_next(&m, &p, &h, &i, &err)) > 0) continue;
    CHECK(rc == LLM_ERR_FORMAT && strstr(err.msg, "in.llmt: layers.2.attn.probs: head 1 row 1 column 1 is NaN"));
    llm_attnmap_close(&m);
    llm_reader_close(r);
}

int main(void)
{
    RUN(test_names);
    RUN(test_shapes);
    RUN(test_rows_f32);
    RUN(test_rows_f16);
    RUN(test_nan_refused);
    return check_done();
}
