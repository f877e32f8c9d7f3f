/* Unit tests for lib/calib_table: the table llm-calib writes from an
 * aggregation, record by record with its attributes and values; tables
 * written here record by record read back, each method's step found; every
 * kind of bad table an error naming the file and the record; and
 * LLM_ERR_NOMEM at every allocation of the reader. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib_table.h"
#include "check.h"
#include "nomem.h"
#include "stream.h"

/* One record to write: a 1-D tensor (or a metadata record when n is 0) of
 * dtype f32 unless f64 is set. */
typedef struct table_rec {
    const char *name, *methods;
    int n;
    double v[4];
    int f64;
} table_rec;

static const char *write_records(const char *file, const table_rec *recs, int n_recs)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", check_tmpdir(), file);
    llm_error err = {0};
    llm_writer *w;
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    for (int i = 0; i < n_recs; i++) {
        const table_rec *t = &recs[i];
        float f[4];
        double d[4];
        for (int k = 0; k < t->n; k++) f[k] = (float)t->v[k], d[k] = t->v[k];
        llm_attr attr = {"methods", t->methods};
        llm_record rec = {.kind = t->n ? LLM_RECORD_TENSOR : LLM_RECORD_META, .name = t->name,
                          .dtype = t->n ? (t->f64 ? LLM_DTYPE_F64 : LLM_DTYPE_F32) : LLM_DTYPE_U8,
                          .shape = t->n ? llm_shape_make(1, (int64_t[]){t->n}) : llm_shape_make(1, (int64_t[]){0}),
                          .attrs = &attr, .n_attrs = t->methods ? 1 : 0};
        CHECK_OK(llm_writer_record(w, &rec, t->f64 ? (const void *)d : (const void *)f, &err), err);
    }
    CHECK_OK(llm_writer_close(w, &err), err);
    return path;
}

/* The records written come back with their values and methods; other
 * records are skipped; each method's step is the value at its position in
 * methods= (a whole item of the list), entropy (else the first) by default,
 * and a step of 0 becomes 1. */
static void test_table_read(void)
{
    llm_error err = {0};
    const table_rec recs[] = {
        {"layers.0.attn.wq.in.amax", "max,mse,entropy", 3, {12.7, 6.35, 2.54}, 0},
        {"layers.0.attn.wq.in.scale", "max,mse,entropy", 3, {0.1, 0.05, 0.02}, 0},
        {"layers.0.attn.wq.in.absmax", NULL, 4, {1.5, 0, 3.25, 7}, 0},
        {"notes", NULL, 0, {0}, 0},
        {"cls.in.scale", "mse,max", 2, {0, 0.5}, 0},
        {"layers.0.mlp.w2.in.scale", NULL, 1, {0.25}, 0},
        {"p.scale", "maxx,max", 2, {0.5, 0.25}, 0},
    };
    const char *path = write_records("table.llmt", recs, 7);
    llm_calib_table t;
    CHECK_OK(llm_calib_table_read(&t, path, &err), err);
    CHECK(t.n == 5 && !strcmp(t.path, path));
    const llm_calib_table_entry *a = llm_calib_table_find(&t, "layers.0.attn.wq.in", "absmax");
    CHECK(a && a->n == 4 && a->data[0] == 1.5f && a->data[1] == 0 && a->data[2] == 3.25f && a->data[3] == 7 &&
          !a->methods);
    const llm_calib_table_entry *s = llm_calib_table_find(&t, "layers.0.attn.wq.in", "scale");
    CHECK(s && s->n == 3 && s->data[1] == 0.05f && s->methods && !strcmp(s->methods, "max,mse,entropy"));
    CHECK(!llm_calib_table_find(&t, "layers.0.attn.wq.in", "amax") && !llm_calib_table_find(&t, "notes", "scale") &&
          !llm_calib_table_find(&t, "layers.1.attn.wq.in", "absmax"));
    float step = -1;
    CHECK_OK(llm_calib_table_scale(&t, "layers.0.attn.wq.in", NULL, &step, &err), err);
    CHECK(step == 0.02f);
    CHECK_OK(llm_calib_table_scale(&t, "layers.0.attn.wq.in", "max", &step, &err), err);
    CHECK(step == 0.1f);
    CHECK_OK(llm_calib_table_scale(&t, "layers.0.attn.wq.in", "mse", &step, &err), err);
    CHECK(step == 0.05f);
    CHECK_OK(llm_calib_table_scale(&t, "cls.in", NULL, &step, &err), err); /* no entropy: the first, 0 -> 1 */
    CHECK(step == 1.0f);
    CHECK_OK(llm_calib_table_scale(&t, "cls.in", "max", &step, &err), err);
    CHECK(step == 0.5f);
    CHECK_OK(llm_calib_table_scale(&t, "layers.0.mlp.w2.in", NULL, &step, &err), err); /* no methods= */
    CHECK(step == 0.25f);
    /* a missing layer, a missing method */
    int rc = llm_calib_table_scale(&t, "layers.1.attn.wq.in", NULL, &step, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "table.llmt: no layers.1.attn.wq.in.scale for w8a8"), "%s",
              err.msg);
    rc = llm_calib_table_scale(&t, "cls.in", "entropy", &step, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "table.llmt: cls.in.scale has no method 'entropy' (methods=mse,max)"),
              "%s", err.msg);
    rc = llm_calib_table_scale(&t, "layers.0.mlp.w2.in", "mse", &step, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "has no method 'mse' (methods=)"), "%s", err.msg);
    /* a method is a whole item of the list */
    CHECK_OK(llm_calib_table_scale(&t, "p", "max", &step, &err), err);
    CHECK(step == 0.25f);
    CHECK_OK(llm_calib_table_scale(&t, "p", "maxx", &step, &err), err);
    CHECK(step == 0.5f);
    rc = llm_calib_table_scale(&t, "p", "ma", &step, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "p.scale has no method 'ma' (methods=maxx,max)"), "%s", err.msg);
    llm_calib_table_free(&t);
    llm_calib_table_free(&t); /* freeing twice is harmless */

}

/* A wrong dtype or rank, NaN, Inf, a negative value, fewer values than
 * methods, a missing file and a truncated stream: each is an error naming
 * the file and the record. */
static void test_table_bad_input(void)
{
    llm_error err = {0};
    struct {
        table_rec rec;
        const char *want;
    } cases[] = {
        {{"x.absmax", NULL, 2, {1, 2}, 1}, "f64.llmt: x.absmax is f64, not a 1-D f32 tensor"},
        {{"x.scale", "max", 2, {1, NAN}, 0}, "nan.llmt: x.scale holds nan"},
        {{"x.absmax", NULL, 3, {1, 2, INFINITY}, 0}, "inf.llmt: x.absmax holds inf"},
        {{"x.absmax", NULL, 2, {-0.5, 2}, 0}, "neg.llmt: x.absmax holds -0.5"},
    };
    const char *files[] = {"f64.llmt", "nan.llmt", "inf.llmt", "neg.llmt"};
    for (int i = 0; i < 4; i++) {
        llm_calib_table t;
        int rc = llm_calib_table_read(&t, write_records(files[i], &cases[i].rec, 1), &err);
        CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, cases[i].want), "%s: rc %d: %s", files[i], rc, err.msg);
        llm_calib_table_free(&t);
    }
    /* a 2-D f32 record */
    char path[4096];
    snprintf(path, sizeof path, "%s/2d.llmt", check_tmpdir());
    llm_writer *w;
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    float v[4] = {1, 2, 3, 4};
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = "y.scale", .dtype = LLM_DTYPE_F32,
                      .shape = llm_shape_make(2, (int64_t[]){2, 2})};
    CHECK_OK(llm_writer_record(w, &rec, v, &err), err);
    CHECK_OK(llm_writer_close(w, &err), err);
    llm_calib_table t;
    int rc = llm_calib_table_read(&t, path, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "2d.llmt: y.scale is f32, not a 1-D f32 tensor"), "%s", err.msg);
    llm_calib_table_free(&t);
    /* fewer values than the methods listed */
    table_rec short_rec = {"z.scale", "max,mse,entropy", 2, {0.5, 0.25}, 0};
    CHECK_OK(llm_calib_table_read(&t, write_records("short.llmt", &short_rec, 1), &err), err);
    float step;
    rc = llm_calib_table_scale(&t, "z", NULL, &step, &err);
    CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, "short.llmt: z.scale has 2 values for methods=max,mse,entropy"),
              "%s", err.msg);
    llm_calib_table_free(&t);
    /* a missing file; a truncated one */
    snprintf(path, sizeof path, "%s/absent.llmt", check_tmpdir());
    rc = llm_calib_table_read(&t, path, &err);
    CHECK_MSG(rc == LLM_ERR_IO && strstr(err.msg, "absent.llmt"), "rc %d: %s", rc, err.msg);
    llm_calib_table_free(&t);
    table_rec many[3] = {{"a.absmax", NULL, 4, {1, 2, 3, 4}, 0}, {"b.absmax", NULL, 4, {1, 2, 3, 4}, 0},
                         {"c.absmax", NULL, 4, {1, 2, 3, 4}, 0}};
    const char *full = write_records("full.llmt", many, 3);
    FILE *f = fopen(full, "rb");
    char buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/cut.llmt", check_tmpdir());
    f = fopen(path, "wb");
    fwrite(buf, 1, len - 8, f);
    fclose(f);
    rc = llm_calib_table_read(&t, path, &err);
    CHECK_MSG(rc < 0 && strstr(err.msg, "cut.llmt"), "rc %d: %s", rc, err.msg);
    llm_calib_table_free(&t);
}

/* rec's attributes as "key=value key=value". */
static const char *attrs_of(const llm_record *rec)
{
    static char s[512];
    s[0] = 0;
    for (int i = 0; i < rec->n_attrs; i++)
        snprintf(s + strlen(s), sizeof s - strlen(s), "%s%s=%s", i ? " " : "", rec->attrs[i].key,
                 rec->attrs[i].value);
    return s;
}

/* Calibrates the stream at path with opts and writes the table of the n
 * methods to table.llmt; *amax gets the thresholds (malloc'd). */
static const char *calibrate(const char *path, const llm_calib_opts *opts, const int *methods, int n,
                             double **amax, llm_calib **out)
{
    static char table[4096];
    snprintf(table, sizeof table, "%s/written.llmt", check_tmpdir());
    llm_error err = {0};
    llm_reader *r;
    llm_writer *w;
    CHECK_OK(llm_calib_create(out, opts, &err), err);
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    CHECK_OK(llm_calib_add_stream(*out, r, &err), err);
    llm_reader_close(r);
    *amax = calloc((size_t)llm_calib_count(*out) * LLM_CALIB_METHODS, sizeof **amax);
    CHECK_OK(llm_calib_amax_all(*out, methods, n, 1, *amax, &err), err);
    CHECK_OK(llm_writer_open(&w, table, NULL, &err), err);
    CHECK_OK(llm_calib_table_write(w, *out, methods, n, *amax, &err), err);
    CHECK_OK(llm_writer_close(w, &err), err);
    return table;
}

/* The table llm-calib writes: per input, in order of first appearance,
 * N.amax and N.scale (amax / 127) with the methods in the order given and
 * count=, records=, bins=, percentile= (with the percentile method) and
 * nonfinite= (when skipping), then N.absmax with count= and records= (per
 * channel); read back, each method's step. */
static void test_table_write(void)
{
    llm_error err = {0};
    const table_rec acts[] = {
        {"x.in", NULL, 4, {0.5, -2, 1.5, 0.25}, 0},
        {"y.in", NULL, 4, {NAN, 1, 0, -2}, 0},
        {"x.in", NULL, 4, {-1, 1, 4, 0}, 0},
    };
    const int methods[3] = {LLM_CALIB_ENTROPY, LLM_CALIB_MAX, LLM_CALIB_PERCENTILE}; /* written in this order */
    llm_calib *c;
    double *amax;
    const char *table = calibrate(write_records("acts.llmt", acts, 3),
                                  &(llm_calib_opts){.bins = 256, .per_channel = 1, .skip_nonfinite = 1,
                                                    .percentile = 90},
                                  methods, 3, &amax, &c);
    const char *names[6] = {"x.in.amax", "x.in.scale", "x.in.absmax", "y.in.amax", "y.in.scale", "y.in.absmax"};
    const char *attrs[6] = {
        "methods=entropy,max,percentile count=8 records=2 bins=256 percentile=90 nonfinite=0",
        "methods=entropy,max,percentile count=8 records=2 bins=256 percentile=90 nonfinite=0",
        "count=8 records=2",
        "methods=entropy,max,percentile count=3 records=1 bins=256 percentile=90 nonfinite=1",
        "methods=entropy,max,percentile count=3 records=1 bins=256 percentile=90 nonfinite=1",
        "count=3 records=1",
    };
    const float absmax[2][4] = {{1, 2, 4, 0.25f}, {0, 1, 0, 2}};
    llm_reader *r;
    CHECK_OK(llm_reader_open(&r, table, &err), err);
    for (int k = 0; k < 6; k++) {
        const llm_record *rec;
        llm_tensor t = {0};
        int i = k / 3, what = k % 3; /* input; amax, scale, absmax */
        if (!CHECK(llm_reader_next(r, &rec, &err) == 1)) break;
        CHECK_MSG(!strcmp(rec->name, names[k]) && !strcmp(attrs_of(rec), attrs[k]), "%s: %s", rec->name,
                  attrs_of(rec));
        CHECK_OK(llm_reader_read_tensor(r, &t, &err), err);
        const float *v = t.data;
        int same = t.dtype == LLM_DTYPE_F32 && t.shape.ndim == 1 && t.shape.dim[0] == (what == 2 ? 4 : 3);
        for (int m = 0; same && m < (int)t.shape.dim[0]; m++) {
            double a = amax[i * LLM_CALIB_METHODS + m];
            same &= v[m] == (what == 0 ? (float)a : what == 1 ? (float)(a / 127.0) : absmax[i][m]);
        }
        CHECK_MSG(same, "%s: values", names[k]);
        llm_tensor_free(&t);
    }
    const llm_record *rec;
    CHECK(llm_reader_next(r, &rec, &err) == 0);
    llm_reader_close(r);
    CHECK(amax[1] == 4 && amax[LLM_CALIB_METHODS + 1] == 2); /* max: x.in 4, y.in 2 */
    /* read back: each method's step, the per-channel maxima */
    llm_calib_table t;
    float step;
    CHECK_OK(llm_calib_table_read(&t, table, &err), err);
    CHECK(t.n == 4);
    for (int m = 0; m < 3; m++) {
        CHECK_OK(llm_calib_table_scale(&t, "y.in", llm_calib_method_name(methods[m]), &step, &err), err);
        CHECK(step == (float)(amax[LLM_CALIB_METHODS + m] / 127.0));
    }
    CHECK_OK(llm_calib_table_scale(&t, "x.in", NULL, &step, &err), err); /* entropy */
    CHECK(step == (float)(amax[0] / 127.0));
    const llm_calib_table_entry *e = llm_calib_table_find(&t, "x.in", "absmax");
    CHECK(e && e->n == 4 && !memcmp(e->data, absmax[0], sizeof absmax[0]));
    llm_calib_table_free(&t);
    llm_calib_free(c);
    free(amax);

    /* without the percentile method, skipping or per-channel maxima: none of their attributes or records */
    const int mse[1] = {LLM_CALIB_MSE};
    const table_rec clean[2] = {acts[0], acts[2]};
    table = calibrate(write_records("clean.llmt", clean, 2), NULL, mse, 1, &amax, &c);
    CHECK_OK(llm_reader_open(&r, table, &err), err);
    int n = 0;
    while (llm_reader_next(r, &rec, &err) == 1) {
        CHECK_MSG(!strcmp(rec->name, n ? "x.in.scale" : "x.in.amax") &&
                  !strcmp(attrs_of(rec), "methods=mse count=8 records=2 bins=2048"), "%s: %s", rec->name,
                  attrs_of(rec));
        n++;
    }
    CHECK(n == 2);
    llm_reader_close(r);
    /* no method, or one that does not exist */
    llm_writer *w;
    CHECK_OK(llm_writer_open(&w, table, NULL, &err), err);
    CHECK(llm_calib_table_write(w, c, mse, 0, amax, &err) == LLM_ERR_ARG);
    const int bad[2] = {LLM_CALIB_MAX, 7};
    int rc = llm_calib_table_write(w, c, bad, 2, amax, &err);
    CHECK_MSG(rc == LLM_ERR_ARG && strstr(err.msg, "unknown calibration method 7"), "%s", err.msg);
    llm_writer_abort(w);
    llm_calib_free(c);
    free(amax);
}

static int read_table(void *path, llm_error *err)
{
    llm_calib_table t;
    int rc = llm_calib_table_read(&t, path, err);
    const llm_calib_table_entry *b = llm_calib_table_find(&t, "b", "absmax");
    if (rc == 0) CHECK(t.n == 3 && b && b->n == 4 && b->data[3] == 4);
    llm_calib_table_free(&t);
    return rc;
}

/* Every allocation of the reader, refused in turn, makes it LLM_ERR_NOMEM. */
static void test_table_out_of_memory(void)
{
    table_rec many[3] = {{"a.absmax", NULL, 4, {1, 2, 3, 4}, 0}, {"b.absmax", NULL, 4, {1, 2, 3, 4}, 0},
                         {"c.scale", "max", 1, {0.5}, 0}};
    char *path = strdup(write_records("oom.llmt", many, 3));
    CHECK(nomem_sweep("llm_calib_table_read", read_table, path) > 0);
    free(path);
}

int main(void)
{
    RUN(test_table_write);
    RUN(test_table_read);
    RUN(test_table_bad_input);
    RUN(test_table_out_of_memory);
    return check_done();
}
