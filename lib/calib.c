/* calib — activation streams aggregated per tensor name: a histogram of |x|
 * each, per-channel maxima and the report's snapshots, then every name's
 * thresholds (llm-calib(1)). */
#include "calib.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK_VALUES = 1 << 18 }; /* values per chunk: 1 MiB of f32 */

struct llm_calib {
    llm_calib_opts opts;
    llm_calib_entry **entries; /* [n], in order of first appearance; each allocated alone */
    int n, cap;
    int *slots;                /* [n_slots] hash table of entry indices, -1: empty */
    int n_slots;
};

/* The record being read from a stream, a chunk at a time. */
typedef struct reading {
    llm_reader *r;
    llm_calib_entry *e;      /* the entry of its name */
    llm_dtype dtype;
    uint64_t record;         /* its index among its name's records */
    char seq[32];            /* its seq= attribute, "" when none */
    uint64_t left;           /* values not yet read */
    uint64_t offset;         /* values already read: the element index of x[0] */
    int64_t width;           /* channels (per_channel; chunks hold whole rows), else 1 */
    int in_record;
    float *x;                /* the chunk's values */
    size_t x_cap;            /* bytes at x */
    void *raw;               /* the chunk as read, for dtypes other than f32 */
    size_t raw_cap;
} reading;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int slots_rebuild(llm_calib *c, int n_slots)
{
    int *slots = malloc((size_t)n_slots * sizeof *slots);
    if (!slots) return -1;
    for (int i = 0; i < n_slots; i++) slots[i] = -1;
    for (int i = 0; i < c->n; i++) {
        size_t k = name_hash(c->entries[i]->name) & (size_t)(n_slots - 1);
        while (slots[k] >= 0) k = (k + 1) & (size_t)(n_slots - 1);
        slots[k] = i;
    }
    free(c->slots);
    c->slots = slots, c->n_slots = n_slots;
    return 0;
}

int llm_calib_create(llm_calib **out, const llm_calib_opts *opts, llm_error *err)
{
    *out = NULL;
    llm_calib *c = calloc(1, sizeof *c);
    if (!c) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    c->opts = opts ? *opts : (llm_calib_opts){0};
    if (!c->opts.bins) c->opts.bins = LLM_CALIB_BINS;
    if (!c->opts.percentile) c->opts.percentile = 99.99;
    if (c->opts.bins < LLM_CALIB_MIN_BINS || c->opts.bins > LLM_CALIB_MAX_BINS ||
        !(c->opts.percentile > 0 && c->opts.percentile <= 100)) {
        free(c);
        return llm_error_set(err, LLM_ERR_ARG, "calibration options out of range (bins %d, percentile %g)",
                             opts ? opts->bins : 0, opts ? opts->percentile : 0);
    }
    if (slots_rebuild(c, 64) < 0) {
        free(c);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    }
    *out = c;
    return 0;
}

static void entry_free(llm_calib_entry *e)
{
    if (!e) return;
    free(e->name);
    llm_calib_hist_free(&e->hist);
    free(e->channel_absmax);
    free(e);
}

void llm_calib_free(llm_calib *c)
{
    if (!c) return;
    for (int i = 0; i < c->n; i++) entry_free(c->entries[i]);
    free(c->entries);
    free(c->slots);
    free(c);
}

const llm_calib_opts *llm_calib_options(const llm_calib *c)
{
    return &c->opts;
}

int llm_calib_count(const llm_calib *c)
{
    return c->n;
}

const llm_calib_entry *llm_calib_entry_at(const llm_calib *c, int i)
{
    return i >= 0 && i < c->n ? c->entries[i] : NULL;
}

/* The entry of name, created on first sight. */
static int entry_get(llm_calib *c, const char *name, llm_calib_entry **out, llm_error *err)
{
    size_t mask = (size_t)c->n_slots - 1, k = name_hash(name) & mask;
    for (; c->slots[k] >= 0; k = (k + 1) & mask)
        if (strcmp(c->entries[c->slots[k]]->name, name) == 0) {
            *out = c->entries[c->slots[k]];
            return 0;
        }
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        llm_calib_entry **v = realloc(c->entries, (size_t)cap * sizeof *v);
        if (!v) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
        c->entries = v, c->cap = cap;
    }
    llm_calib_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->name = strdup(name))) {
        free(e);
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    }
    int rc = llm_calib_hist_init(&e->hist, c->opts.bins, err);
    if (rc < 0) {
        entry_free(e);
        return rc;
    }
    e->width = -1;
    c->slots[k] = c->n;
    c->entries[c->n++] = e;
    if (2 * c->n > c->n_slots && slots_rebuild(c, 2 * c->n_slots) < 0)
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    *out = e;
    return 0;
}

/* Starts the record rec: checks its dtype and shape, finds its entry. */
static int record_begin(llm_calib *c, reading *s, const llm_record *rec, llm_error *err)
{
    const char *name = rec->name, *seq = llm_record_attr(rec, "seq");
    if (!llm_dtype_is_float(rec->dtype))
        return llm_error_set(err, LLM_ERR_FORMAT,
                             "%s: dtype %s: calibration needs floating-point values (f32, f16, bf16, f64)", name,
                             llm_dtype_name(rec->dtype));
    int64_t numel = llm_shape_numel(&rec->shape);
    if (numel < 0) return llm_error_set(err, LLM_ERR_FORMAT, "%s: invalid shape", name);
    llm_calib_entry *e = NULL;
    LLM_TRY(entry_get(c, name, &e, err));
    int64_t width = rec->shape.ndim > 0 ? rec->shape.dim[rec->shape.ndim - 1] : 1;
    if (c->opts.per_channel) {
        if (width < 1 || width > LLM_CALIB_MAX_WIDTH)
            return llm_error_set(err, LLM_ERR_LIMIT, "%s: record %llu: %lld channels: --per-channel takes 1..%d",
                                 name, (unsigned long long)e->records_begun, (long long)width, LLM_CALIB_MAX_WIDTH);
        if (e->width < 0) {
            e->width = width; /* channel_absmax comes with the first values (count_chunk) */
        } else if (e->width != width) {
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: record %llu has %lld channels, earlier ones %lld", name,
                                 (unsigned long long)e->records_begun, (long long)width, (long long)e->width);
        }
    } else if (e->width < 0) {
        e->width = width;
    }
    s->e = e;
    s->dtype = rec->dtype;
    s->left = (uint64_t)numel;
    s->offset = 0;
    s->record = e->records_begun++;
    s->width = c->opts.per_channel ? width : 1;
    s->in_record = 1;
    snprintf(s->seq, sizeof s->seq, "%s", seq ? seq : "");
    return 0;
}

/* Values per chunk for the current record: whole rows when counting channels. */
static size_t chunk_values(const reading *s)
{
    if (s->width <= 1) return CHUNK_VALUES;
    size_t rows = CHUNK_VALUES / (size_t)s->width;
    return (rows ? rows : 1) * (size_t)s->width;
}

static int need(void **buf, size_t *cap, size_t bytes, llm_error *err)
{
    if (bytes <= *cap) return 0;
    void *p = realloc(*buf, bytes);
    if (!p) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a %zu-byte chunk", bytes);
    *buf = p, *cap = bytes;
    return 0;
}

/* Converts n values of the record's dtype at src to floats at s->x; a finite
 * f64 beyond the float range is an error (it would otherwise be counted as
 * infinite). */
static int to_float(reading *s, const void *src, size_t n, llm_error *err)
{
    const uint16_t *h = src;
    const double *d = src;
    float *dst = s->x;
    switch (s->dtype) {
    case LLM_DTYPE_F16: for (size_t i = 0; i < n; i++) dst[i] = llm_f16_to_f32(h[i]); break;
    case LLM_DTYPE_BF16: for (size_t i = 0; i < n; i++) dst[i] = llm_bf16_to_f32(h[i]); break;
    case LLM_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            if (isfinite(d[i]) && fabs(d[i]) > FLT_MAX)
                return llm_error_set(err, LLM_ERR_FORMAT, "%s: record %llu: element %llu (%g) is beyond the float range",
                                     s->e->name, (unsigned long long)s->record,
                                     (unsigned long long)(s->offset + i), d[i]);
            dst[i] = (float)d[i];
        }
        break;
    default: return llm_error_set(err, LLM_ERR_STATE, "unexpected dtype");
    }
    return 0;
}

/* Reads the next chunk of values into s->x (*n of them), beginning records
 * as needed.  1: a chunk; 0: the end of the stream; < 0: an error. */
static int read_chunk(llm_calib *c, reading *s, size_t *n, llm_error *err)
{
    while (!s->in_record) {
        const llm_record *rec;
        int rc = llm_reader_next(s->r, &rec, err);
        if (rc <= 0) return rc;
        if (rec->kind == LLM_RECORD_TENSOR) LLM_TRY(record_begin(c, s, rec, err));
    }
    *n = chunk_values(s);
    if (*n > s->left) *n = (size_t)s->left;
    size_t bytes = *n * (size_t)llm_dtype_bits(s->dtype) / 8;
    LLM_TRY(need((void **)&s->x, &s->x_cap, *n * sizeof(float), err));
    void *dst = s->x;
    if (s->dtype != LLM_DTYPE_F32) {
        LLM_TRY(need(&s->raw, &s->raw_cap, bytes, err));
        dst = s->raw;
    }
    int64_t got = llm_reader_read(s->r, dst, bytes, err);
    if (got < 0) return (int)got;
    if ((size_t)got != bytes)
        return llm_error_set(err, LLM_ERR_TRUNCATED, "%s: record %llu ends early", s->e->name,
                             (unsigned long long)s->record);
    if (dst != s->x) LLM_TRY(to_float(s, dst, *n, err));
    return 1;
}

/* Index of the first NaN or Inf in x[0..n), or -1.  The exponent test on the
 * bits vectorises; it is the fast path for clean data. */
static int64_t first_nonfinite(const float *x, size_t n)
{
    const uint32_t *u = (const uint32_t *)(const void *)x;
    uint32_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t e = u[i] & 0x7f800000u;
        worst = e > worst ? e : worst;
    }
    if (worst != 0x7f800000u) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (int64_t)i;
    return -1;
}

/* Counts the chunk s->x[0..n) into its entry (fails on NaN/Inf unless
 * skipping them); after the record's last chunk, counts the record and
 * takes the report's snapshot when one is due. */
static int count_chunk(llm_calib *c, reading *s, size_t n, llm_error *err)
{
    llm_calib_entry *e = s->e;
    const float *x = s->x;
    int64_t bad = first_nonfinite(x, n);
    if (bad >= 0 && !c->opts.skip_nonfinite)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: record %llu%s%s%s: element %llu is %s (--skip-nonfinite skips such values)",
                             e->name, (unsigned long long)s->record, s->seq[0] ? " (seq=" : "", s->seq,
                             s->seq[0] ? ")" : "", (unsigned long long)(s->offset + (uint64_t)bad),
                             isnan(x[bad]) ? "NaN" : x[bad] > 0 ? "+Inf" : "-Inf");
    if (bad < 0) {
        llm_calib_hist_add(&e->hist, x, n);
    } else { /* the finite runs between the skipped values */
        size_t run = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && isfinite(x[i])) continue;
            llm_calib_hist_add(&e->hist, x + run, i - run);
            if (i < n) e->nonfinite++;
            run = i + 1;
        }
    }
    if (c->opts.per_channel && n > 0 && !e->channel_absmax && /* with the first values */
        !(e->channel_absmax = calloc((size_t)e->width, sizeof *e->channel_absmax)))
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory for %lld channels", e->name, (long long)e->width);
    if (e->channel_absmax)
        for (size_t r = 0; r < n; r += (size_t)s->width)
            for (int64_t k = 0; k < s->width; k++) {
                float v = fabsf(x[r + (size_t)k]);
                /* NaN never compares greater; Inf is only here when skipped */
                if (v > e->channel_absmax[k] && v <= FLT_MAX) e->channel_absmax[k] = v;
            }
    s->offset += n;
    s->left -= n;
    if (s->left > 0) return 0;
    s->in_record = 0;
    e->records++;
    /* the report's snapshots: at 32, 64, 128, ... records */
    if (c->opts.report && e->records >= 32 && (e->records & (e->records - 1)) == 0 &&
        e->n_snapshots < LLM_CALIB_MAX_SNAPSHOTS) {
        llm_calib_snapshot *sn = &e->snapshots[e->n_snapshots++];
        memset(sn, 0, sizeof *sn);
        sn->records = e->records;
        for (int m = 0; m < LLM_CALIB_METHODS; m++)
            if (c->opts.report & (1u << m))
                LLM_TRY(llm_calib_amax(&e->hist, (llm_calib_method)m, c->opts.percentile, &sn->amax[m], err));
    }
    return 0;
}

int llm_calib_add_stream(llm_calib *c, llm_reader *r, llm_error *err)
{
    reading s = {.r = r};
    size_t n;
    int rc;
    while ((rc = read_chunk(c, &s, &n, err)) > 0)
        if ((rc = count_chunk(c, &s, n, err)) < 0) break;
    free(s.x);
    free(s.raw);
    return rc;
}

int llm_calib_amax_all(const llm_calib *c, const int *methods, int n, int threads, double *amax, llm_error *err)
{
    int count = llm_calib_count(c);
    double percentile = c->opts.percentile;
    int *failed = calloc((size_t)count + 1, sizeof *failed);
    if (!failed) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
#pragma omp parallel for schedule(dynamic) num_threads(threads > 0 ? threads : 1)
    for (int i = 0; i < count; i++)
        for (int k = 0; k < n; k++)
            if (llm_calib_amax(&llm_calib_entry_at(c, i)->hist, (llm_calib_method)methods[k], percentile,
                               &amax[(size_t)i * LLM_CALIB_METHODS + k], NULL) < 0)
                failed[i] = 1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < count; i++) /* again, alone, for the message */
        for (int k = 0; failed[i] && rc == 0 && k < n; k++)
            if ((rc = llm_calib_amax(&llm_calib_entry_at(c, i)->hist, (llm_calib_method)methods[k], percentile,
                                     &amax[(size_t)i * LLM_CALIB_METHODS + k], err)) < 0)
                llm_error_prefix(err, "%s", llm_calib_entry_at(c, i)->name);
    free(failed);
    return rc;
}
