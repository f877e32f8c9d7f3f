/* calib_table — llm-calib's table of thresholds and steps per input:
 * written from an aggregation, read back for llm-quant. */
#include "calib_table.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- writing ---------- */

int llm_calib_table_write(llm_writer *w, const llm_calib *c, const int *methods, int n, const double *amax,
                          llm_error *err)
{
    if (n < 1 || n > LLM_CALIB_METHODS) return llm_error_set(err, LLM_ERR_ARG, "%d methods for a table", n);
    const llm_calib_opts *o = llm_calib_options(c);
    char list[64] = "", count[32], records[32], bins[32], pct[32], nonfinite[32], name[LLM_MAX_NAME + 16];
    int with_pct = 0;
    for (int k = 0; k < n; k++) {
        const char *m = llm_calib_method_name(methods[k]);
        if (!m) return llm_error_set(err, LLM_ERR_ARG, "unknown calibration method %d", methods[k]);
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? "," : "", m);
        with_pct |= methods[k] == LLM_CALIB_PERCENTILE;
    }
    snprintf(bins, sizeof bins, "%d", o->bins);
    snprintf(pct, sizeof pct, "%.10g", o->percentile);
    for (int i = 0; i < llm_calib_count(c); i++) {
        const llm_calib_entry *e = llm_calib_entry_at(c, i);
        const double *a = amax + (size_t)i * LLM_CALIB_METHODS;
        float a32[LLM_CALIB_METHODS], s32[LLM_CALIB_METHODS];
        for (int k = 0; k < n; k++) a32[k] = (float)a[k], s32[k] = (float)(a[k] / 127.0);
        snprintf(count, sizeof count, "%" PRIu64, e->hist.total);
        snprintf(records, sizeof records, "%" PRIu64, e->records);
        snprintf(nonfinite, sizeof nonfinite, "%" PRIu64, e->nonfinite);
        llm_attr attrs[6] = {{"methods", list}, {"count", count}, {"records", records}, {"bins", bins}};
        int na = 4;
        if (with_pct) attrs[na++] = (llm_attr){"percentile", pct};
        if (o->skip_nonfinite) attrs[na++] = (llm_attr){"nonfinite", nonfinite};
        llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = name, .dtype = LLM_DTYPE_F32,
                          .shape = llm_shape_make(1, (int64_t[]){n}), .attrs = attrs, .n_attrs = na};
        snprintf(name, sizeof name, "%s.amax", e->name);
        LLM_TRY(llm_writer_record(w, &rec, a32, err));
        snprintf(name, sizeof name, "%s.scale", e->name);
        LLM_TRY(llm_writer_record(w, &rec, s32, err));
        if (e->channel_absmax) {
            rec.shape = llm_shape_make(1, (int64_t[]){e->width});
            rec.attrs = attrs + 1, rec.n_attrs = 2; /* count, records */
            snprintf(name, sizeof name, "%s.absmax", e->name);
            LLM_TRY(llm_writer_record(w, &rec, e->channel_absmax, err));
        }
    }
    return 0;
}

/* ---------- reading ---------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

/* Adds the current record of r (a 1-D f32 tensor) to t. */
static int table_add(llm_calib_table *t, llm_reader *r, const llm_record *rec, llm_error *err)
{
    if (rec->dtype != LLM_DTYPE_F32 || rec->shape.ndim != 1)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is %s, not a 1-D f32 tensor", t->path, rec->name,
                             llm_dtype_name(rec->dtype));
    llm_calib_table_entry *grown = realloc(t->e, (size_t)(t->n + 1) * sizeof *grown);
    if (!grown) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    t->e = grown;
    llm_calib_table_entry *e = &t->e[t->n++];
    const char *methods = llm_record_attr(rec, "methods");
    *e = (llm_calib_table_entry){.name = strdup(rec->name), .n = rec->shape.dim[0],
                                 .methods = methods ? strdup(methods) : NULL};
    if (!e->name || (methods && !e->methods)) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    llm_tensor tt;
    if (llm_reader_read_tensor(r, &tt, err) < 0) return llm_error_prefix(err, "%s", t->path);
    e->data = tt.data;
    for (int64_t i = 0; i < e->n; i++)
        if (!(e->data[i] >= 0 && isfinite(e->data[i])))
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s holds %g", t->path, e->name, (double)e->data[i]);
    return 0;
}

int llm_calib_table_read(llm_calib_table *t, const char *path, llm_error *err)
{
    *t = (llm_calib_table){.path = strdup(path)};
    if (!t->path) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    llm_reader *r;
    LLM_TRY(llm_reader_open(&r, path, err));
    const llm_record *rec;
    int rc;
    while ((rc = llm_reader_next(r, &rec, err)) > 0) {
        int wanted = ends_with(rec->name, ".absmax") || ends_with(rec->name, ".scale");
        if (rec->kind != LLM_RECORD_TENSOR || !wanted) continue;
        if ((rc = table_add(t, r, rec, err)) < 0) break;
    }
    llm_reader_close(r);
    return rc < 0 ? rc : 0;
}

void llm_calib_table_free(llm_calib_table *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) free(t->e[i].name), free(t->e[i].data), free(t->e[i].methods);
    free(t->e);
    free(t->path);
    *t = (llm_calib_table){0};
}

const llm_calib_table_entry *llm_calib_table_find(const llm_calib_table *t, const char *input, const char *what)
{
    char name[LLM_MAX_NAME + 16];
    snprintf(name, sizeof name, "%s.%s", input, what);
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->e[i].name, name)) return &t->e[i];
    return NULL;
}

/* The position of method in a comma-separated list (may be NULL), or -1. */
static int method_index(const char *list, const char *method)
{
    int i = 0;
    size_t n = strlen(method);
    for (const char *p = list; p && *p; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, method, n)) return i;
        p = end ? end + 1 : p + len;
    }
    return -1;
}

int llm_calib_table_scale(const llm_calib_table *t, const char *input, const char *method, float *scale,
                          llm_error *err)
{
    const llm_calib_table_entry *e = llm_calib_table_find(t, input, "scale");
    if (!e) return llm_error_set(err, LLM_ERR_FORMAT, "%s: no %s.scale for w8a8", t->path, input);
    const char *listed = e->methods ? e->methods : "";
    int k = method_index(e->methods, method ? method : "entropy");
    if (k < 0 && method)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s.scale has no method '%s' (methods=%s)", t->path, input,
                             method, listed);
    if (k < 0) k = 0;
    if (k >= e->n)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s.scale has %" PRId64 " values for methods=%s", t->path,
                             input, e->n, listed);
    *scale = e->data[k] > 0 ? e->data[k] : 1.0f;
    return 0;
}
