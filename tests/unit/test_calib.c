/* Unit tests for lib/calib, the aggregation of activation streams per
 * tensor name: interleaved names kept apart, each name's histogram equal to
 * the one counted directly from its values, per-channel maxima and the
 * report's snapshots against direct computations, every entry's thresholds
 * at once on one and several threads, the errors of bad input (NaN, Inf,
 * integer dtypes, changing widths, truncated streams), and LLM_ERR_NOMEM at
 * every allocation.  Data and references: calib_ref.c. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"
#include "calib_ref.h"
#include "check.h"
#include "nomem.h"
#include "stream.h"

enum { BINS = 2048 };

/* Writes a stream of `records` records per name, interleaved like llm-gen's
 * dumps (every name in turn for each sequence), values from distribution d
 * scaled by the name's index + 1. */
static const char *write_acts(const char *file, int n_names, int records, int rows, int width, int d)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", check_tmpdir(), file);
    llm_error err = {0};
    llm_writer *w;
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    float *x = calib_data(d, (size_t)records * rows * width);
    for (int r = 0; r < records; r++)
        for (int k = 0; k < n_names; k++) {
            char name[32], seq[16];
            snprintf(name, sizeof name, "layers.%d.in", k);
            snprintf(seq, sizeof seq, "%d", r);
            float *v = malloc((size_t)rows * width * sizeof *v);
            for (int i = 0; i < rows * width; i++) v[i] = x[(size_t)r * rows * width + i] * (float)(k + 1);
            llm_attr attr = {"seq", seq};
            llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = name, .dtype = LLM_DTYPE_F32,
                              .shape = llm_shape_make(2, (int64_t[]){rows, width}), .attrs = &attr, .n_attrs = 1};
            CHECK_OK(llm_writer_record(w, &rec, v, &err), err);
            free(v);
        }
    CHECK_OK(llm_writer_close(w, &err), err);
    free(x);
    return path;
}

static llm_calib *calib_file(const char *path, const llm_calib_opts *o, int *rc, llm_error *err)
{
    llm_calib *c;
    llm_reader *r;
    if (llm_calib_create(&c, o, err) < 0 || llm_reader_open(&r, path, err) < 0) {
        *rc = -1;
        return NULL;
    }
    *rc = llm_calib_add_stream(c, r, err);
    llm_reader_close(r);
    return c;
}

/* Interleaved names aggregate apart; histograms, per-channel maxima and the
 * report's snapshots match direct computations over the same values. */
static void test_stream_aggregation(void)
{
    llm_error err = {0};
    enum { NAMES = 3, RECORDS = 70, ROWS = 40, WIDTH = 24 };
    const char *path = write_acts("acts.llmt", NAMES, RECORDS, ROWS, WIDTH, CALIB_LAPLACE);
    float *x = calib_data(CALIB_LAPLACE, (size_t)RECORDS * ROWS * WIDTH);
    int rc;
    llm_calib *c = calib_file(path, &(llm_calib_opts){.per_channel = 1,
                                                      .report = 1u << LLM_CALIB_MAX | 1u << LLM_CALIB_ENTROPY},
                              &rc, &err);
    CHECK((rc) >= 0);
    if (!c) return;
    CHECK(llm_calib_count(c) == NAMES);
    for (int k = 0; k < NAMES; k++) {
        const llm_calib_entry *e = llm_calib_entry_at(c, k);
        char name[32];
        snprintf(name, sizeof name, "layers.%d.in", k);
        CHECK(strcmp(e->name, name) == 0 && e->records == RECORDS);
        /* this name's values, counted directly */
        size_t n = (size_t)RECORDS * ROWS * WIDTH;
        float *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++) v[i] = x[i] * (float)(k + 1);
        double range = ref_range(ref_absmax(v, n));
        double *want = ref_hist(v, n, e->hist.fine, range);
        int same = e->hist.range == range && e->hist.total == n;
        for (int j = 0; j < e->hist.fine; j++) same &= e->hist.count[j] == want[j];
        CHECK_MSG(same, "%s: histogram differs from a direct count", name);
        int chan_ok = e->width == WIDTH;
        for (int c = 0; c < WIDTH && chan_ok; c++) {
            float m = 0;
            for (size_t i = (size_t)c; i < n; i += WIDTH) m = fmaxf(m, fabsf(v[i]));
            chan_ok &= e->channel_absmax[c] == m;
        }
        CHECK_MSG(chan_ok, "%s: per-channel absmax differs from a direct computation", name);
        /* snapshots at 32 and 64 records: the thresholds of the first 32 / 64 records alone */
        CHECK(e->n_snapshots == 2 && e->snapshots[0].records == 32 && e->snapshots[1].records == 64);
        for (int s = 0; s < e->n_snapshots; s++) {
            size_t m = (size_t)e->snapshots[s].records * ROWS * WIDTH;
            llm_calib_hist h;
            hist_of(&h, v, m, BINS);
            double amax, ent;
            CHECK_OK(llm_calib_amax(&h, LLM_CALIB_MAX, 0, &amax, &err), err);
            CHECK_OK(llm_calib_amax(&h, LLM_CALIB_ENTROPY, 0, &ent, &err), err);
            CHECK_MSG(e->snapshots[s].amax[LLM_CALIB_MAX] == amax && e->snapshots[s].amax[LLM_CALIB_ENTROPY] == ent &&
                      amax == ref_absmax(v, m), "%s: snapshot at %llu records", name,
                      (unsigned long long)e->snapshots[s].records);
            llm_calib_hist_free(&h);
        }
        free(want), free(v);
    }
    llm_calib_free(c);
    free(x);
}
/* The options, defaults filled in; out-of-range ones are refused. */
static void test_options(void)
{
    llm_error err = {0};
    llm_calib *c;
    CHECK_OK(llm_calib_create(&c, NULL, &err), err);
    const llm_calib_opts *o = llm_calib_options(c);
    CHECK(o->bins == LLM_CALIB_BINS && o->percentile == 99.99 && !o->per_channel && !o->skip_nonfinite && !o->report);
    CHECK(llm_calib_count(c) == 0 && !llm_calib_entry_at(c, 0) && !llm_calib_entry_at(c, -1));
    llm_calib_free(c);
    CHECK_OK(llm_calib_create(&c, &(llm_calib_opts){.bins = 300, .percentile = 99.9, .per_channel = 1}, &err), err);
    o = llm_calib_options(c);
    CHECK(o->bins == 300 && o->percentile == 99.9 && o->per_channel);
    llm_calib_free(c);
    llm_calib_free(NULL);
    const llm_calib_opts bad[] = {{.bins = LLM_CALIB_MIN_BINS - 1}, {.bins = LLM_CALIB_MAX_BINS + 1},
                                  {.percentile = 100.5}, {.percentile = -1}};
    for (int i = 0; i < 4; i++) {
        c = (llm_calib *)&err;
        int rc = llm_calib_create(&c, &bad[i], &err);
        CHECK_MSG(rc == LLM_ERR_ARG && !c && strstr(err.msg, "calibration options out of range"), "%d: rc %d", i, rc);
    }
}

/* Every entry's thresholds at once, on 1 and 3 threads, equal each entry's
 * llm_calib_amax at the options' percentile; a failing method is reported
 * with the entry's name. */
static void test_amax_all(void)
{
    llm_error err = {0};
    const char *path = write_acts("all.llmt", 4, 6, 30, 16, CALIB_UNIFORM);
    int rc;
    llm_calib *c = calib_file(path, &(llm_calib_opts){.percentile = 99.9}, &rc, &err);
    CHECK((rc) >= 0);
    const int methods[4] = {LLM_CALIB_MAX, LLM_CALIB_PERCENTILE, LLM_CALIB_MSE, LLM_CALIB_ENTROPY};
    int count = llm_calib_count(c);
    CHECK(count == 4);
    double *one = malloc(sizeof(double) * count * LLM_CALIB_METHODS),
           *three = malloc(sizeof(double) * count * LLM_CALIB_METHODS);
    CHECK_OK(llm_calib_amax_all(c, methods, 4, 1, one, &err), err);
    CHECK_OK(llm_calib_amax_all(c, methods, 4, 3, three, &err), err);
    int same = 1;
    for (int i = 0; i < count; i++)
        for (int k = 0; k < 4; k++) {
            double want;
            CHECK_OK(llm_calib_amax(&llm_calib_entry_at(c, i)->hist, (llm_calib_method)methods[k], 99.9, &want, &err), err);
            same &= one[i * LLM_CALIB_METHODS + k] == want && three[i * LLM_CALIB_METHODS + k] == want;
        }
    CHECK_MSG(same, "llm_calib_amax_all differs from llm_calib_amax");
    const int bad[2] = {LLM_CALIB_MAX, 9}; /* a method that does not exist */
    rc = llm_calib_amax_all(c, bad, 2, 2, one, &err);
    CHECK_MSG(rc == LLM_ERR_ARG && !strncmp(err.msg, "layers.0.in: unknown calibration method 9", 41), "rc %d: %s", rc,
              err.msg);
    free(one), free(three);
    llm_calib_free(c);
}

/* Adds one record to c through a stream of its own (seq: its seq=
 * attribute, or NULL). */
static int add_record(llm_calib *c, const char *name, llm_dtype dtype, llm_shape shape, const void *data,
                      const char *seq, llm_error *out)
{
    llm_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/record.llmt", check_tmpdir());
    llm_attr attr = {"seq", seq};
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = name, .dtype = dtype, .shape = shape, .attrs = &attr,
                      .n_attrs = seq ? 1 : 0};
    llm_writer *w;
    llm_reader *r;
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    CHECK_OK(llm_writer_record(w, &rec, data, &err), err);
    CHECK_OK(llm_writer_close(w, &err), err);
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    int rc = llm_calib_add_stream(c, r, out);
    llm_reader_close(r);
    return rc;
}

/* NaN and Inf name the tensor, record (and its seq=) and element, or are
 * counted when skipped; integer dtypes, f64 beyond the float range,
 * changing or empty widths and truncated streams are errors; f16, bf16 and
 * f64 count as the floats they hold; an empty record is a record. */
static void test_bad_input(void)
{
    llm_error err = {0};
    llm_calib *c;
    CHECK_OK(llm_calib_create(&c, NULL, &err), err);
    float v[6] = {1, 2, 3, 4, 5, 6};
    llm_shape s23 = llm_shape_make(2, (int64_t[]){2, 3});
    CHECK_OK(add_record(c, "a", LLM_DTYPE_F32, s23, v, NULL, &err), err);
    v[4] = NAN;
    int rc = add_record(c, "b", LLM_DTYPE_F32, s23, v, NULL, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "b: record 0: element 4 is NaN"), "%s", err.msg);
    v[4] = 5;
    CHECK_OK(add_record(c, "b", LLM_DTYPE_F32, s23, v, NULL, &err), err); /* record 1 of b */
    v[1] = -INFINITY;
    rc = add_record(c, "b", LLM_DTYPE_F32, s23, v, "17", &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "b: record 2 (seq=17): element 1 is -Inf"), "%s", err.msg);
    int32_t ints[6] = {0};
    rc = add_record(c, "i", LLM_DTYPE_I32, s23, ints, NULL, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "i: dtype i32"), "%s", err.msg);
    double d[2] = {0.5, -1e300};
    llm_shape s2 = llm_shape_make(1, (int64_t[]){2});
    rc = add_record(c, "d", LLM_DTYPE_F64, s2, d, NULL, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "d: record 0: element 1 (-1e+300) is beyond the float range"),
              "%s", err.msg);
    d[1] = -2.25;
    CHECK_OK(add_record(c, "d", LLM_DTYPE_F64, s2, d, NULL, &err), err);
    const llm_calib_entry *e = llm_calib_entry_at(c, 2); /* "i" has no entry: it never began */
    CHECK(!strcmp(e->name, "d") && e->records == 1 && e->records_begun == 2 && e->hist.total == 2 &&
          e->hist.absmax == 2.25 && e->hist.min == -2.25 && e->hist.max == 0.5);
    CHECK_OK(add_record(c, "empty", LLM_DTYPE_F32, llm_shape_make(2, (int64_t[]){0, 3}), v, NULL, &err), err);
    e = llm_calib_entry_at(c, 3);
    CHECK(e->records == 1 && e->hist.total == 0 && e->width == 3);
    llm_calib_free(c);

    CHECK_OK(llm_calib_create(&c, &(llm_calib_opts){.skip_nonfinite = 1, .per_channel = 1}, &err), err);
    v[4] = NAN;
    CHECK_OK(add_record(c, "a", LLM_DTYPE_F32, s23, v, NULL, &err), err);
    e = llm_calib_entry_at(c, 0);
    CHECK(e->nonfinite == 2 && e->hist.total == 4 && e->hist.absmax == 6);
    CHECK(e->channel_absmax[0] == 4 && e->channel_absmax[1] == 0 && e->channel_absmax[2] == 6);
    llm_shape s32 = llm_shape_make(2, (int64_t[]){3, 2});
    rc = add_record(c, "a", LLM_DTYPE_F32, s32, v, NULL, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "a: record 1 has 2 channels, earlier ones 3"), "%s", err.msg);
    rc = add_record(c, "z", LLM_DTYPE_F32, llm_shape_make(2, (int64_t[]){4, 0}), v, NULL, &err);
    CHECK_MSG(rc == LLM_ERR_LIMIT && strstr(err.msg, "z: record 0: 0 channels: --per-channel takes 1..67108864"), "%s",
              err.msg);
    /* f16 and bf16 */
    uint16_t f16[6], bf16[6];
    float w[6] = {0.5f, -1.25f, 3, 0, -7.5f, 2};
    for (int i = 0; i < 6; i++) f16[i] = llm_f32_to_f16(w[i]), bf16[i] = llm_f32_to_bf16(w[i]);
    CHECK_OK(add_record(c, "h", LLM_DTYPE_F16, s23, f16, NULL, &err), err);
    CHECK_OK(add_record(c, "h", LLM_DTYPE_BF16, s23, bf16, NULL, &err), err);
    e = llm_calib_entry_at(c, 2); /* after "a" and "z" */
    CHECK(!strcmp(e->name, "h") && e->hist.total == 12 && e->hist.absmax == 7.5 && e->hist.min == -7.5 &&
          e->hist.max == 3 && e->records == 2);
    CHECK(e->channel_absmax[0] == 0.5f && e->channel_absmax[1] == 7.5f && e->channel_absmax[2] == 3);
    llm_calib_free(c);

    /* a truncated stream */
    const char *path = write_acts("t.llmt", 1, 4, 8, 8, CALIB_GAUSSIAN);
    FILE *f = fopen(path, "rb");
    char *buf = malloc(1 << 16);
    size_t len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    llm_reader *r;
    CHECK_OK(llm_reader_open_mem(&r, buf, len * 2 / 3, "cut", &err), err);
    CHECK_OK(llm_calib_create(&c, NULL, &err), err);
    rc = llm_calib_add_stream(c, r, &err);
    CHECK_MSG(rc == LLM_ERR_TRUNCATED || rc == LLM_ERR_CHECKSUM, "rc %d: %s", rc, err.msg);
    llm_reader_close(r);
    llm_calib_free(c);
    free(buf);
}

/* A whole calibration (create, read a stream, snapshots, every threshold)
 * under allocation failures, and the aggregation it must equal. */
typedef struct run {
    const char *path;
    llm_calib_opts opts;
    const llm_calib *want;
    double want_amax[3 * LLM_CALIB_METHODS], amax[3 * LLM_CALIB_METHODS];
} run;

static const int all_methods[LLM_CALIB_METHODS] = {LLM_CALIB_MAX, LLM_CALIB_PERCENTILE, LLM_CALIB_MSE,
                                                   LLM_CALIB_ENTROPY};

/* 1 when the entries of a and b hold the same counts, maxima and snapshots. */
static int same_entries(const llm_calib *a, const llm_calib *b)
{
    if (llm_calib_count(a) != llm_calib_count(b)) return 0;
    for (int i = 0; i < llm_calib_count(a); i++) {
        const llm_calib_entry *x = llm_calib_entry_at(a, i), *y = llm_calib_entry_at(b, i);
        if (strcmp(x->name, y->name) || x->records != y->records || x->hist.total != y->hist.total ||
            x->hist.range != y->hist.range || x->width != y->width || x->n_snapshots != y->n_snapshots ||
            memcmp(x->hist.count, y->hist.count, (size_t)x->hist.fine * sizeof *x->hist.count) ||
            memcmp(x->channel_absmax, y->channel_absmax, (size_t)x->width * sizeof *x->channel_absmax) ||
            memcmp(x->snapshots, y->snapshots, (size_t)x->n_snapshots * sizeof *x->snapshots))
            return 0;
    }
    return 1;
}

static int run_calib(void *ctx, llm_error *err)
{
    run *t = ctx;
    llm_calib *c = NULL;
    llm_reader *r = NULL;
    int rc = llm_calib_create(&c, &t->opts, err);
    if (rc == 0) rc = llm_reader_open(&r, t->path, err);
    if (rc == 0) rc = llm_calib_add_stream(c, r, err);
    if (rc == 0) rc = llm_calib_amax_all(c, all_methods, LLM_CALIB_METHODS, 2, t->amax, err);
    if (rc == 0 && t->want)
        CHECK_MSG(same_entries(c, t->want) && !memcmp(t->amax, t->want_amax, sizeof t->amax),
                  "the calibration differs from the one with memory");
    llm_reader_close(r);
    llm_calib_free(c);
    return rc;
}

/* Every allocation of a calibration, refused in turn, makes it
 * LLM_ERR_NOMEM; with memory, the result is the one computed before. */
static void test_out_of_memory(void)
{
    llm_error err = {0};
    run *t = calloc(1, sizeof *t);
    t->path = write_acts("oom.llmt", 3, 40, 4, 8, CALIB_OUTLIERS);
    t->opts = (llm_calib_opts){.bins = LLM_CALIB_MIN_BINS, .per_channel = 1, .skip_nonfinite = 1,
                               .report = 1u << LLM_CALIB_MAX | 1u << LLM_CALIB_ENTROPY};
    int rc;
    llm_calib *want = calib_file(t->path, &t->opts, &rc, &err);
    CHECK((rc) >= 0);
    CHECK_OK(llm_calib_amax_all(want, all_methods, LLM_CALIB_METHODS, 1, t->want_amax, &err), err);
    CHECK(llm_calib_entry_at(want, 0)->n_snapshots == 1);
    t->want = want;
    CHECK(nomem_sweep("calibration", run_calib, t) > 0);
    llm_calib_free(want);
    free(t);
}

int main(void)
{
    RUN(test_stream_aggregation);
    RUN(test_options);
    RUN(test_amax_all);
    RUN(test_bad_input);
    RUN(test_out_of_memory);
    return check_done();
}
