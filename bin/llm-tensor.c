/* llm-tensor — inspect, convert and re-encode tensor streams (llm-tensor(1)). */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "cli.h"
#include "gguf.h"
#include "gguf_blocks.h"
#include "gguf_model.h"
#include "bytes.h"
#include "llama2c.h"
#include "npy.h"
#include "opt.h"
#include "outfile.h"
#include "stats.h"
#include "stream.h"

#define CHUNK (1u << 20) /* payload bytes read at a time */

/* The values of every command's options; each command takes those its entry
 * in commands[] names. */
typedef struct opts {
    const char *out, *tokenizer;
    llm_opt_list names; /* --name globs */
    llm_attr *attrs;    /* --attr key=value */
    int n_attrs;
    llm_writer_opts wopts;
    int shuffle;        /* -1 keep, 0 off, 1 on */
    int per_channel, force;
    int float_type;     /* export-gguf --type: 0 f32, 1 f16, 2 bf16 */
    int dequant;        /* export-gguf --dequant */
} opts;

/* --attr KEY=VALUE, appended to the opts at dest (the argument is split in place). */
static const char *parse_attr(void *dest, const char *arg, char why[64])
{
    opts *o = dest;
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        snprintf(why, 64, "wants KEY=VALUE, not '%s'", arg);
        return why;
    }
    *eq = '\0';
    o->attrs[o->n_attrs++] = (llm_attr){arg, eq + 1};
    return NULL;
}

static int name_selected(const opts *o, const char *name)
{
    if (o->names.n == 0) return 1;
    for (int i = 0; i < o->names.n; i++)
        if (fnmatch(o->names.items[i], name, 0) == 0) return 1;
    return 0;
}

static llm_reader *open_input(const char *path)
{
    llm_error err = {0};
    llm_reader *r;
    if (llm_reader_open(&r, path, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return r;
}

static llm_writer *open_output(const opts *o)
{
    const char *path = o->out ? o->out : "-";
    if (strcmp(path, "-") == 0) llm_cli_refuse_tty(1, o->force);
    llm_error err = {0};
    llm_writer *w;
    if (llm_writer_open(&w, path, &o->wopts, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return w;
}

static void attrs_print(const llm_record *rec)
{
    if (rec->flags & LLM_FLAG_SHUFFLE) printf(" shuffle");
    for (int i = 0; i < rec->n_attrs; i++) {
        const unsigned char *v = (const unsigned char *)rec->attrs[i].value;
        printf(" %s=", rec->attrs[i].key);
        for (int k = 0; v[k]; k++) { /* control bytes escaped: one record, one line */
            if (k == 57 && strlen((const char *)v) > 60) {
                printf("...");
                break;
            }
            if (v[k] < 0x20 || v[k] == 0x7f || v[k] == '\\') printf("\\x%02x", v[k]);
            else putchar(v[k]);
        }
    }
}

/* 1 when the file at path (a regular file: "-" is stdin) starts with GGUF's magic. */
static int is_gguf(const char *path)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY);
    char head[4];
    int yes = fd >= 0 && pread(fd, head, 4, 0) == 4 && llm_gguf_sniff(head, 4);
    if (fd > 0) close(fd);
    return yes;
}

static llm_gguf open_gguf(const char *path)
{
    llm_error err = {0};
    llm_gguf g;
    if (llm_gguf_open(&g, path, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return g;
}

/* Walks every input; calls fn on each record, or gguf_fn on a GGUF file.
 * Returns the exit status. */
typedef int (*record_fn)(llm_reader *r, const llm_record *rec, const char *path, void *ctx);
typedef void (*gguf_fn)(const llm_gguf *g, void *ctx);
static int each_record(int n, char **paths, record_fn fn, gguf_fn on_gguf, void *ctx)
{
    static char *stdin_only[] = {"-"};
    if (n == 0) {
        n = 1;
        paths = stdin_only;
    }
    for (int i = 0; i < n; i++) {
        if (on_gguf && is_gguf(paths[i])) {
            llm_gguf g = open_gguf(paths[i]);
            on_gguf(&g, ctx);
            llm_gguf_close(&g);
            continue;
        }
        llm_reader *r = open_input(paths[i]);
        const llm_record *rec;
        llm_error err = {0};
        int rc;
        while ((rc = llm_reader_next(r, &rec, &err)) > 0) {
            rc = fn(r, rec, paths[i], ctx);
            if (rc) {
                llm_reader_close(r);
                return rc;
            }
        }
        llm_reader_close(r);
        if (rc < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    }
    return 0;
}

/* ---- ls ---- */

static int ls_one(llm_reader *r, const llm_record *rec, const char *path, void *ctx)
{
    (void)r, (void)path, (void)ctx;
    char shape[128];
    if (rec->kind == LLM_RECORD_META)
        printf("meta %-28s %-5s %-16s %12" PRIu64, rec->name, llm_dtype_name(rec->dtype),
               llm_shape_format(&rec->shape, shape, sizeof shape), rec->nbytes);
    else
        printf("%-33s %-5s %-16s %12" PRIu64, rec->name, llm_dtype_name(rec->dtype),
               llm_shape_format(&rec->shape, shape, sizeof shape), rec->nbytes);
    attrs_print(rec);
    putchar('\n');
    llm_cli_check_output(stdout, "stdout", 0);
    return 0;
}

/* A GGUF value as ls shows it: at most about 60 characters, control bytes escaped. */
static void gguf_value_print(const llm_gguf_kv *kv)
{
    char text[96];
    size_t at = 0;
    if (kv->type == LLM_GGUF_STRING) {
        for (uint64_t k = 0; k < kv->str.len && at < 60; k++) {
            unsigned char c = (unsigned char)kv->str.s[k];
            at += (size_t)snprintf(text + at, sizeof text - at, c < 0x20 || c == 0x7f || c == '\\' ? "\\x%02x" : "%c", c);
        }
        printf(" %s%s", text, at >= 60 ? "..." : "");
        return;
    }
    if (kv->type != LLM_GGUF_ARRAY) {
        double v;
        llm_gguf_kv one = *kv;
        one.type = LLM_GGUF_ARRAY, one.elem = kv->type, one.n = 1;
        unsigned char raw[8];
        llm_bytes_put_le64(raw, kv->v.u);
        if (kv->type == LLM_GGUF_F32) {
            float f = (float)kv->v.f;
            memcpy(raw, &f, 4);
        } else if (kv->type == LLM_GGUF_F64) {
            memcpy(raw, &kv->v.f, 8);
        }
        one.data = raw;
        v = llm_gguf_array_f64(&one, 0);
        printf(" %.9g", v);
        return;
    }
    printf(" [%" PRIu64 "]", kv->n);
    for (uint64_t k = 0; k < kv->n && at < 60; k++) {
        if (kv->elem == LLM_GGUF_STRING) {
            const llm_gguf_str *s = &((const llm_gguf_str *)kv->data)[k];
            at += (size_t)printf(" ");
            for (uint64_t j = 0; j < s->len && j < 20; j++) {
                unsigned char c = (unsigned char)s->s[j];
                at += (size_t)printf(c < 0x20 || c == 0x7f || c == '\\' ? "\\x%02x" : "%c", c);
            }
        } else {
            at += (size_t)printf(" %.9g", llm_gguf_array_f64(kv, k));
        }
    }
    if (at >= 60) printf(" ...");
}

/* ls of a GGUF file: its metadata, then its tensors in our shape order. */
static void ls_gguf(const llm_gguf *g, void *ctx)
{
    (void)ctx;
    printf("meta %-28s gguf  v%u tensors=%" PRId64 " kv=%" PRId64 " alignment=%u data=%" PRIu64 "\n", "gguf",
           g->version, g->n_tensors, g->n_kv, g->alignment, g->data_start);
    for (int64_t i = 0; i < g->n_kv; i++) {
        const llm_gguf_kv *kv = &g->kv[i];
        printf("meta %-28s %-5s", kv->key, kv->type == LLM_GGUF_ARRAY ? llm_gguf_vtype_name(kv->elem)
                                                                       : llm_gguf_vtype_name(kv->type));
        gguf_value_print(kv);
        putchar('\n');
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const llm_gguf_tensor *t = &g->tensors[i];
        llm_shape s = {.ndim = t->n_dims};
        for (int d = 0; d < t->n_dims; d++) s.dim[d] = t->ne[t->n_dims - 1 - d];
        char shape[128];
        printf("%-33s %-5s %-16s %12" PRIu64 " offset=%" PRIu64 "\n", t->name, llm_gguf_type_name(t->type),
               llm_shape_format(&s, shape, sizeof shape), t->nbytes, t->offset);
    }
    llm_cli_check_output(stdout, "stdout", 0);
}

static int cmd_ls(int n, char **files, opts *o)
{
    (void)o;
    return each_record(n, files, ls_one, ls_gguf, NULL);
}

/* ---- stats ---- */

static void stats_print(const char *label, const llm_stats *s)
{
    printf("%-33s count=%" PRIu64 " min=%.7g max=%.7g mean=%.7g std=%.7g absmax=%.7g", label,
           s->count, s->count ? s->min : 0.0, s->count ? s->max : 0.0, s->mean, llm_stats_std(s),
           s->absmax);
    if (s->nan) printf(" nan=%" PRIu64, s->nan);
    if (s->inf) printf(" inf=%" PRIu64, s->inf);
    putchar('\n');
    llm_cli_check_output(stdout, "stdout", 0);
}

/* Per-channel statistics, one for each channel seen so far: they grow as
 * the first row arrives, so a declared width costs nothing before its values. */
typedef struct channels {
    llm_stats *s;
    int64_t n, cap;
} channels;

static void channels_reach(channels *ch, int64_t n, const char *path, const char *name)
{
    if (n <= ch->n) return;
    if (n > ch->cap) {
        int64_t cap = ch->cap ? 2 * ch->cap : 1024;
        if (cap < n) cap = n;
        llm_stats *p = realloc(ch->s, (size_t)cap * sizeof *p);
        if (!p) llm_die(LLM_EXIT_DATA, "%s: %s: out of memory for %" PRId64 " channels", path, name, cap);
        ch->s = p, ch->cap = cap;
    }
    for (int64_t c = ch->n; c < n; c++) llm_stats_init(&ch->s[c]);
    ch->n = n;
}

/* Adds n values, elements done.. of a tensor whose rows are width long, to
 * total and, when ch is not NULL, to each value's channel. */
static void stats_chunk(llm_stats *total, channels *ch, const double *vals, size_t n, int64_t done, int64_t width,
                        const char *path, const char *name)
{
    llm_stats_add(total, vals, n, 1);
    if (!ch) return;
    int64_t c0 = done % width, span = (int64_t)n < width ? (int64_t)n : width;
    channels_reach(ch, c0 + span < width ? c0 + span : width, path, name);
    for (int64_t c = 0; c < span; c++) /* elements c, c + width, ...: channel (c0 + c) % width */
        llm_stats_add(&ch->s[(c0 + c) % width], vals + c, (n - (size_t)c + (size_t)width - 1) / (size_t)width,
                      (size_t)width);
}

/* Prints a tensor's statistics, then each channel's, and frees the channels. */
static void stats_finish(const char *name, const llm_stats *total, channels *ch)
{
    stats_print(name, total);
    for (int64_t c = 0; c < ch->n; c++) {
        char label[LLM_MAX_NAME + 32];
        snprintf(label, sizeof label, "%s[%" PRId64 "]", name, c);
        stats_print(label, &ch->s[c]);
    }
    free(ch->s);
}

static int stats_one(llm_reader *r, const llm_record *rec, const char *path, void *ctx)
{
    const opts *o = ctx;
    if (rec->kind != LLM_RECORD_TENSOR || !name_selected(o, rec->name)) return 0;
    int64_t numel = llm_shape_numel(&rec->shape);
    int per_channel = o->per_channel && rec->shape.ndim > 0; /* a scalar has no channels */
    int64_t width = per_channel ? rec->shape.dim[rec->shape.ndim - 1] : 1;
    if (width == 0) width = 1, per_channel = 0; /* nor has an empty last axis */
    /* whole rows per chunk when a row fits in one, as the sums were always
     * merged; a wider row in chunks of CHUNK bytes, each starting where the
     * last ended (channel done % width) */
    int bits = llm_dtype_bits(rec->dtype);
    int64_t per_chunk = (int64_t)CHUNK * 8 / bits;
    if (width <= per_chunk) {
        int64_t rows_per_chunk = per_chunk / width;
        if (bits == 4 && width % 2 && rows_per_chunk % 2) rows_per_chunk++; /* whole bytes */
        per_chunk = rows_per_chunk * width;
    }
    size_t chunk_elems = (size_t)per_chunk;
    unsigned char *buf = malloc(chunk_elems * (size_t)bits / 8 + 1);
    double *vals = malloc(chunk_elems * sizeof *vals);
    if (!buf || !vals) llm_die(LLM_EXIT_DATA, "%s: %s: out of memory", path, rec->name);
    llm_stats total;
    llm_stats_init(&total);
    channels ch = {0};
    llm_error err = {0};
    for (int64_t done = 0; done < numel;) {
        size_t n = (size_t)(numel - done) < chunk_elems ? (size_t)(numel - done) : chunk_elems;
        size_t bytes = bits == 4 ? (n + 1) / 2 : n * (size_t)bits / 8;
        if (llm_reader_read(r, buf, bytes, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
        llm_dtype_to_f64(rec->dtype, buf, n, vals);
        stats_chunk(&total, per_channel ? &ch : NULL, vals, n, done, width, path, rec->name);
        done += (int64_t)n;
    }
    stats_finish(rec->name, &total, &ch);
    free(buf);
    free(vals);
    return 0;
}

/* stats of each decodable tensor of a GGUF file, decoded a chunk of rows at a time. */
static void stats_gguf(const llm_gguf *g, void *ctx)
{
    const opts *o = ctx;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const llm_gguf_tensor *t = &g->tensors[i];
        if (!name_selected(o, t->name)) continue;
        if (!llm_gguf_decodable(t->type)) {
            llm_warn("%s: %s: %s is not decoded: no statistics", g->label, t->name, llm_gguf_type_name(t->type));
            continue;
        }
        int block, bytes;
        llm_gguf_type_size(t->type, &block, &bytes);
        int64_t width = t->ne[0], per = width >= CHUNK / 4 ? width : CHUNK / 4 / width * width; /* whole rows */
        unsigned char *raw = malloc((size_t)(per / block * bytes));
        float *f = malloc((size_t)per * sizeof *f);
        double *vals = malloc((size_t)per * sizeof *vals);
        if (!raw || !f || !vals) llm_die(LLM_EXIT_DATA, "%s: %s: out of memory", g->label, t->name);
        llm_stats total;
        llm_stats_init(&total);
        channels ch = {0};
        llm_error err = {0};
        for (int64_t done = 0; done < t->numel; done += per) {
            int64_t n = t->numel - done < per ? t->numel - done : per;
            if (llm_gguf_read(g, t, (uint64_t)(done / block * bytes), raw, (size_t)(n / block * bytes), &err) < 0)
                llm_die(LLM_EXIT_DATA, "%s", err.msg);
            llm_gguf_decode(t->type, raw, n, f);
            for (int64_t k = 0; k < n; k++) vals[k] = f[k];
            stats_chunk(&total, o->per_channel && width ? &ch : NULL, vals, (size_t)n, done, width, g->label, t->name);
        }
        stats_finish(t->name, &total, &ch);
        free(raw);
        free(f);
        free(vals);
    }
}

static int cmd_stats(int n, char **files, opts *o)
{
    return each_record(n, files, stats_one, stats_gguf, o);
}

/* ---- cat ---- */

typedef struct cat_ctx {
    const opts *o;
    llm_writer *w;
    unsigned char *buf;
} cat_ctx;

/* Copies the current record from r to w, chunk by chunk. */
static void copy_record(llm_reader *r, const llm_record *rec, llm_writer *w, unsigned flags,
                        unsigned char *buf)
{
    llm_error err = {0};
    llm_record out = *rec;
    out.flags = flags;
    if (llm_writer_begin(w, &out, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    int64_t n;
    while ((n = llm_reader_read(r, buf, CHUNK, &err)) > 0)
        if (llm_writer_write(w, buf, (size_t)n, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    if (n < 0 || llm_writer_end_record(w, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
}

static int cat_one(llm_reader *r, const llm_record *rec, const char *path, void *vctx)
{
    (void)path;
    cat_ctx *c = vctx;
    if (rec->kind == LLM_RECORD_TENSOR && !name_selected(c->o, rec->name)) return 0;
    unsigned flags = rec->flags;
    if (c->o->shuffle == 0 || llm_dtype_bits(rec->dtype) < 16) flags &= ~LLM_FLAG_SHUFFLE;
    else if (c->o->shuffle == 1) flags |= LLM_FLAG_SHUFFLE;
    copy_record(r, rec, c->w, flags, c->buf);
    return 0;
}

static int cmd_cat(int n, char **files, opts *o)
{
    cat_ctx c = {o, open_output(o), malloc(CHUNK)};
    if (!c.buf) llm_die(LLM_EXIT_DATA, "out of memory");
    int rc = each_record(n, files, cat_one, NULL, &c);
    llm_error err = {0};
    if (llm_writer_close(c.w, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    free(c.buf);
    return rc;
}

/* ---- from-npy ---- */

static int cmd_from_npy(int n, char **operands, opts *o)
{
    if (n == 0) llm_usage_error("from-npy: give at least one NAME=FILE.npy");
    for (int i = 0; i < n; i++)
        if (!strchr(operands[i], '=') || operands[i][0] == '=')
            llm_usage_error("from-npy: '%s' is not NAME=FILE.npy", operands[i]);
    llm_writer *w = open_output(o);
    unsigned char *buf = malloc(CHUNK);
    if (!buf) llm_die(LLM_EXIT_DATA, "out of memory");
    llm_error err = {0};
    for (int i = 0; i < n; i++) {
        char *eq = strchr(operands[i], '=');
        *eq = '\0';
        const char *name = operands[i], *path = eq + 1;
        int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY);
        if (fd < 0) {
            llm_writer_abort(w);
            llm_die(LLM_EXIT_DATA, "%s: %s", path, strerror(errno));
        }
        llm_npy_header h;
        llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = name, .attrs = o->attrs,
                          .n_attrs = o->n_attrs};
        int rc = llm_npy_read_header(fd, path, &h, &err);
        if (rc == 0) {
            rec.dtype = h.dtype;
            rec.shape = h.shape;
            rec.flags = o->shuffle == 1 && llm_dtype_bits(h.dtype) >= 16 ? LLM_FLAG_SHUFFLE : 0;
            rc = llm_writer_begin(w, &rec, &err);
        }
        int width = llm_dtype_bits(h.dtype) / 8;
        for (uint64_t left = rc == 0 ? h.nbytes : 0; left > 0 && rc == 0;) {
            size_t want = left < CHUNK ? (size_t)left : CHUNK, got = 0;
            while (got < want) {
                ssize_t k = read(fd, buf + got, want - got);
                if (k < 0 && errno == EINTR) continue;
                if (k <= 0) {
                    rc = llm_error_set(&err, k < 0 ? LLM_ERR_IO : LLM_ERR_TRUNCATED,
                                       "%s: %s", path, k < 0 ? strerror(errno)
                                       : "truncated: data shorter than the header's shape");
                    break;
                }
                got += (size_t)k;
            }
            if (rc == 0 && h.swap_bytes) llm_npy_swap(buf, got / (size_t)width, width);
            if (rc == 0) rc = llm_writer_write(w, buf, got, &err);
            left -= got;
        }
        if (rc == 0) {
            char extra;
            ssize_t k = read(fd, &extra, 1);
            if (k > 0) rc = llm_error_set(&err, LLM_ERR_FORMAT, "%s: data longer than the header's shape", path);
        }
        if (rc == 0) rc = llm_writer_end_record(w, &err);
        if (fd != 0) close(fd);
        if (rc < 0) {
            llm_writer_abort(w);
            llm_die(LLM_EXIT_DATA, "%s", err.msg);
        }
    }
    free(buf);
    if (llm_writer_close(w, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return 0;
}

/* ---- to-npy ---- */

typedef struct npy_ctx {
    const char *glob;
    llm_outfile *out;
    int matched;
} npy_ctx;

static void write_fd(llm_outfile *f, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(llm_outfile_fd(f), c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            const char *why = strerror(errno);
            llm_die(LLM_EXIT_DATA, "%s: write: %s", llm_outfile_path(f), why);
        }
        c += k;
        n -= (size_t)k;
    }
}

static int npy_one(llm_reader *r, const llm_record *rec, const char *path, void *vctx)
{
    npy_ctx *c = vctx;
    if (rec->kind != LLM_RECORD_TENSOR || fnmatch(c->glob, rec->name, 0) != 0) return 0;
    llm_error err = {0};
    llm_dtype to = llm_dtype_widened(rec->dtype);
    if (llm_npy_write_header(llm_outfile_fd(c->out), llm_outfile_path(c->out), to, &rec->shape, &err) < 0)
        llm_die(LLM_EXIT_DATA, "%s: %s: %s", path, rec->name, err.msg);
    int bits = llm_dtype_bits(rec->dtype), out_bytes = llm_dtype_bits(to) / 8;
    size_t chunk_elems = CHUNK * 8 / (size_t)bits;
    unsigned char *in = malloc(CHUNK), *out = malloc(chunk_elems * (size_t)out_bytes);
    if (!in || !out) llm_die(LLM_EXIT_DATA, "out of memory");
    int64_t numel = llm_shape_numel(&rec->shape);
    for (int64_t done = 0; done < numel;) {
        size_t n = (size_t)(numel - done) < chunk_elems ? (size_t)(numel - done) : chunk_elems;
        size_t bytes = bits == 4 ? (n + 1) / 2 : n * (size_t)bits / 8;
        if (llm_reader_read(r, in, bytes, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
        llm_dtype_widen(rec->dtype, in, n, out);
        write_fd(c->out, out, n * (size_t)out_bytes);
        done += (int64_t)n;
    }
    free(in);
    free(out);
    c->matched++;
    return 0;
}

static int cmd_to_npy(int n, char **operands, opts *o)
{
    if (n < 1 || n > 2) llm_usage_error("to-npy: want GLOB [FILE]");
    const char *path = o->out ? o->out : "-";
    if (strcmp(path, "-") == 0) llm_cli_refuse_tty(1, o->force);
    llm_error err = {0};
    npy_ctx c = {operands[0], NULL, 0};
    if (llm_outfile_open(&c.out, path, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    int rc = each_record(n - 1, operands + 1, npy_one, NULL, &c);
    if (c.matched == 0) {
        llm_outfile_abort(c.out);
        llm_die(LLM_EXIT_DATA, "%s: no tensor matches '%s'", n > 1 ? operands[1] : "-", c.glob);
    }
    if (llm_outfile_commit(c.out, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return rc;
}

/* ---- verify ---- */

static int cmd_verify(int n, char **files, opts *o)
{
    (void)o;
    static char *stdin_only[] = {"-"};
    char **paths = n > 0 ? files : stdin_only;
    int status = 0;
    if (n == 0) n = 1;
    unsigned char *buf = malloc(CHUNK);
    if (!buf) llm_die(LLM_EXIT_DATA, "out of memory");
    for (int i = 0; i < n; i++) {
        llm_reader *r = open_input(paths[i]);
        const llm_record *rec;
        llm_error err = {0};
        uint64_t tensors = 0, metas = 0, payload = 0;
        int rc;
        while ((rc = llm_reader_next(r, &rec, &err)) > 0) {
            int64_t k;
            while ((k = llm_reader_read(r, buf, CHUNK, &err)) > 0) payload += (uint64_t)k;
            if (k < 0) {
                rc = (int)k;
                break;
            }
            if (rec->kind == LLM_RECORD_TENSOR) tensors++;
            else metas++;
        }
        uint64_t in_bytes, raw_bytes;
        int zstd;
        llm_reader_counts(r, &in_bytes, &raw_bytes, &zstd);
        llm_reader_close(r);
        if (rc < 0) {
            llm_warn("%s", err.msg);
            status = LLM_EXIT_DATA;
            continue;
        }
        printf("%s: ok: %" PRIu64 " tensors, %" PRIu64 " metadata, %" PRIu64 " payload bytes, %" PRIu64
               " bytes read", paths[i], tensors, metas, payload, in_bytes);
        if (zstd) printf(" (zstd, checksums ok, ratio %.3f)", in_bytes ? (double)raw_bytes / (double)in_bytes : 0.0);
        else printf(" (raw)");
        putchar('\n');
        llm_cli_check_output(stdout, "stdout", 0);
    }
    free(buf);
    return status;
}

/* ---- import-llama2c ---- */

static int cmd_import_llama2c(int n, char **operands, opts *o)
{
    if (n != 1) llm_usage_error("import-llama2c: want one MODEL.bin");
    const char *out = o->out ? o->out : "-";
    if (strcmp(out, "-") == 0) llm_cli_refuse_tty(1, o->force);
    llm_error err = {0};
    llm_model m;
    if (llm_llama2c_load(operands[0], o->tokenizer, &m, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    int rc = llm_ckpt_save(out, &m, NULL, NULL, &err);
    llm_tok_free(&m.tok);
    llm_model_free(&m);
    if (rc < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return 0;
}

/* ---- import-gguf, export-gguf ---- */

static void report_line(void *ctx, const char *line)
{
    (void)ctx;
    llm_warn("%s", line);
}

static int cmd_import_gguf(int n, char **operands, opts *o)
{
    if (n != 1) llm_usage_error("import-gguf: want one MODEL.gguf");
    llm_gguf g = open_gguf(operands[0]);
    llm_writer *w = open_output(o);
    llm_error err = {0};
    if (llm_gguf_import(&g, w, report_line, NULL, &err) < 0) {
        llm_writer_abort(w);
        llm_gguf_close(&g);
        llm_die(LLM_EXIT_DATA, "%s", err.msg);
    }
    llm_gguf_close(&g);
    if (llm_writer_close(w, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return 0;
}

static int cmd_export_gguf(int n, char **operands, opts *o)
{
    if (n > 1) llm_usage_error("export-gguf: want one IN.llmt");
    if (!o->out || !strcmp(o->out, "-")) llm_usage_error("export-gguf: give -o OUT.gguf (GGUF is written to a file)");
    const char *in = n ? operands[0] : "-";
    llm_reader *r = open_input(in);
    char name[256];
    const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
    snprintf(name, sizeof name, "%s", strcmp(in, "-") ? base : "llmpipe model");
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = 0;
    static const int types[3] = {LLM_GGML_F32, LLM_GGML_F16, LLM_GGML_BF16};
    llm_gguf_export_opts eo = {.type = types[o->float_type], .dequant = o->dequant, .name = name,
                               .description = "a llmpipe " LLM_VERSION " checkpoint, exported by llm-tensor export-gguf"};
    llm_error err = {0};
    llm_outfile *f;
    if (llm_outfile_open(&f, o->out, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    if (llm_gguf_export(r, in, llm_outfile_fd(f), llm_outfile_path(f), &eo, report_line, NULL, &err) < 0) {
        llm_outfile_abort(f);
        llm_reader_close(r);
        llm_die(LLM_EXIT_DATA, "%s", err.msg);
    }
    llm_reader_close(r);
    if (llm_outfile_commit(f, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return 0;
}

/* ---- the commands and their options ---- */

typedef struct command {
    const char *name;
    const char *synopsis; /* after "llm-tensor " */
    const char *about;    /* what it does, in a line */
    const char *options;  /* the long names of the options it takes */
    int (*run)(int n, char **operands, opts *o);
} command;

static const command commands[] = {
    {"ls", "ls [FILE...]", "a line per record: name, dtype, shape, bytes, attributes", "", cmd_ls},
    {"stats", "stats [--per-channel] [--name GLOB]... [FILE...]",
     "count, min, max, mean, std, absmax of each tensor", "per-channel name", cmd_stats},
    {"cat", "cat [-o OUT] [--name GLOB]... [--level N] [--raw] [--shuffle|--no-shuffle] [FILE...]",
     "concatenate streams into one, filtered, re-encoded", "output name level raw shuffle no-shuffle force",
     cmd_cat},
    {"from-npy", "from-npy [-o OUT] [--level N] [--raw] [--shuffle] [--attr K=V]... NAME=FILE.npy...",
     ".npy files to one stream", "output level raw shuffle attr force", cmd_from_npy},
    {"to-npy", "to-npy [-o OUT] GLOB [FILE]", "matching tensors as .npy, one after another", "output force",
     cmd_to_npy},
    {"verify", "verify [FILE...]", "read everything, check checksums and end records", "", cmd_verify},
    {"import-llama2c", "import-llama2c [-o OUT] [--tokenizer TOKENIZER.bin] MODEL.bin",
     "a llama2.c checkpoint (legacy format) as a model checkpoint", "output tokenizer force",
     cmd_import_llama2c},
    {"import-gguf", "import-gguf [-o OUT] [--level N] [--raw] MODEL.gguf",
     "a llama GGUF model (llama.cpp) as a model checkpoint", "output level raw force", cmd_import_gguf},
    {"export-gguf", "export-gguf -o OUT.gguf [--type f32|f16|bf16] [--dequant] [IN]",
     "a model checkpoint as a GGUF file for llama.cpp", "output type dequant", cmd_export_gguf},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

/* Parses a command's options (argv[0] is the command; options and operands
 * in any order) into o, which the caller frees with opts_free; returns the
 * index of the first operand. */
static int parse(const command *cmd, int argc, char **argv, opts *o)
{
    *o = (opts){.shuffle = -1, .names = {.items = calloc((size_t)argc, sizeof(char *))},
                .attrs = calloc((size_t)argc, sizeof(llm_attr))};
    if (!o->names.items || !o->attrs) llm_die(LLM_EXIT_DATA, "out of memory");
    long level = 0;
    const llm_opt every[] = {
        {"output", 'o', LLM_OPT_STRING, &o->out, .arg = "FILE", .help = "the output, written whole or not at all",
         .def = "standard output"},
        {"name", 0, LLM_OPT_LIST, &o->names, .arg = "GLOB",
         .help = "only the tensors whose name matches GLOB (repeatable)", .max = argc},
        {"per-channel", 0, LLM_OPT_SET, &o->per_channel,
         .help = "also a line per channel (index of the last dimension)"},
        {"level", 0, LLM_OPT_LONG, &level, .arg = "N", .help = "zstd level, 1 (fastest) to 19 (smallest)",
         .def = "3", .min = 1, .max = 19},
        {"raw", 0, LLM_OPT_SET, &o->wopts.raw, .help = "the uncompressed stream"},
        {"shuffle", 0, LLM_OPT_SET, &o->shuffle, .help = "byte-shuffle the tensors of 16 bits or more"},
        {"no-shuffle", 0, LLM_OPT_CLEAR, &o->shuffle,
         .help = "store every record unshuffled (without either, each keeps its own)"},
        {"attr", 0, LLM_OPT_CALL, o, .arg = "KEY=VALUE", .help = "an attribute of every tensor (repeatable)",
         .parse = parse_attr},
        {"tokenizer", 0, LLM_OPT_STRING, &o->tokenizer, .arg = "TOKENIZER.bin",
         .help = "llama2.c's tokenizer for the model (without it: token ids only)"},
        {"force", 0, LLM_OPT_SET, &o->force, .help = "write binary to a terminal"},
        {"type", 0, LLM_OPT_CHOICE, &o->float_type, .arg = "f32|f16|bf16", .choices = "f32|f16|bf16",
         .help = "the GGUF type of float matrices (vectors stay F32)", .def = "f32"},
        {"dequant", 0, LLM_OPT_SET, &o->dequant,
         .help = "write quantized linears GGUF cannot hold exactly as floats"},
    };
    enum { N_EVERY = sizeof every / sizeof every[0] };
    llm_opt taken[N_EVERY + 1];
    int n = 0;
    char list[256], key[32];
    snprintf(list, sizeof list, " %s ", cmd->options);
    for (int i = 0; i < N_EVERY; i++) { /* the command's, in every's order */
        snprintf(key, sizeof key, " %s ", every[i].name);
        if (strstr(list, key)) taken[n++] = every[i];
    }
    taken[n] = (llm_opt){0};
    static const char *const exclusive[] = {"level raw", NULL};
    char usage[160];
    snprintf(usage, sizeof usage, "usage: llm-tensor %s", cmd->synopsis);
    llm_opt_spec spec = {.tool = "llm-tensor", .command = cmd->name, .usage = usage, .about = cmd->about,
                         .opts = taken, .exclusive = exclusive, .footer = "See llm-tensor(1), llm-tensor(5).",
                         .operands = -1};
    int first = llm_opt_parse(&spec, argc, argv);
    o->wopts.level = (int)level;
    return first;
}

static void opts_free(opts *o)
{
    free(o->names.items);
    free(o->attrs);
}

/* -h, --help (or help) and -V, --version in place of a command; --help lists
 * the commands, each with its synopsis and what it does.  Returns only when
 * arg is neither, nor an option. */
static void top_level(char *tool, char *arg)
{
    char about[2048];
    size_t at = 0;
    for (int i = 0; i < N_COMMANDS && at < sizeof about; i++) { /* the line below a long synopsis */
        const command *c = &commands[i];
        int below = strlen(c->synopsis) >= 29;
        at += (size_t)snprintf(about + at, sizeof about - at, "  %-29s%s%*s%s\n", c->synopsis, below ? "\n" : "",
                               below ? 31 : 0, "", c->about);
    }
    if (at < sizeof about)
        snprintf(about + at, sizeof about - at, "\nEach command's options: llm-tensor COMMAND --help.");
    llm_opt_spec spec = {.tool = "llm-tensor",
                         .usage = "usage: llm-tensor COMMAND [OPTIONS] [FILE...]     (FILE '-' or none: stdin)",
                         .about = about, .opts = (llm_opt[]){{0}}, .footer = "See llm-tensor(1), llm-tensor(5).",
                         .operands = -1};
    if (!strcmp(arg, "help")) {
        llm_opt_help(&spec, stdout);
        exit(LLM_EXIT_OK);
    }
    char *argv[] = {tool, arg, NULL};
    llm_opt_parse(&spec, 2, argv); /* exits for -h, -V and an unknown option */
}

int main(int argc, char **argv)
{
    llm_cli_init("llm-tensor");
    if (argc < 2) llm_usage_error("missing command");
    const char *name = argv[1];
    top_level(argv[0], argv[1]);
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].name)) continue;
        opts o;
        int first = parse(&commands[i], argc - 1, argv + 1, &o);
        int rc = commands[i].run(argc - 1 - first, argv + 1 + first, &o); /* stdout checked at exit */
        opts_free(&o);
        return rc;
    }
    llm_usage_error("unknown command '%s'", name);
}
