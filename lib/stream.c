/* stream — reader and writer of the zstd tensor stream (format: llm-tensor(5)). */
#include "stream.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "bytes.h"
#include <zstd_errors.h>

#include "outfile.h"
#include "zframe.h"

/* A pipe's default 64 KiB buffer is smaller than one compressed zstd block,
 * so a writer and a reader joined by it would take turns instead of running
 * side by side.  Best effort: ask for 1 MiB (the unprivileged default limit). */
void llm_widen_pipe(int fd)
{
#ifdef F_SETPIPE_SZ
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) && fcntl(fd, F_GETPIPE_SZ) < (1 << 20))
        (void)fcntl(fd, F_SETPIPE_SZ, 1 << 20);
#else
    (void)fd;
#endif
}

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llmpipe reads and writes little-endian payloads in place: little-endian hosts only"
#endif

static const unsigned char stream_magic[4] = {'L', 'L', 'M', 'T'};
enum { HEADER_BYTES = 8, RECORD_END = 'E' };

/* ---------- shared: record checks and byte shuffle ---------- */

static int name_ok(const char *s, size_t len)
{
    if (len == 0 || len > LLM_MAX_NAME) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 0;
    return 1;
}

static int key_ok(const char *s, size_t len)
{
    if (len == 0 || len > LLM_MAX_KEY) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '=') return 0;
    return 1;
}

const char *llm_record_attr(const llm_record *rec, const char *key)
{
    for (int i = 0; i < rec->n_attrs; i++)
        if (strcmp(rec->attrs[i].key, key) == 0) return rec->attrs[i].value;
    return NULL;
}

/* Checks a record header, read or about to be written: name, attributes,
 * dtype, shape, flags.  Fills rec->nbytes.  0 or a negative LLM_ERR_*. */
static int record_check(llm_record *rec, llm_error *err)
{
    if (rec->kind != LLM_RECORD_TENSOR && rec->kind != LLM_RECORD_META)
        return llm_error_set(err, LLM_ERR_FORMAT, "unknown record kind 0x%02x",
                             (unsigned)rec->kind & 0xff);
    if (!rec->name || !name_ok(rec->name, strlen(rec->name)))
        return llm_error_set(err, LLM_ERR_FORMAT,
                             "record name must be 1..%d printable bytes", LLM_MAX_NAME);
    if (!llm_dtype_name(rec->dtype))
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: unknown dtype code %d", rec->name,
                             (int)rec->dtype);
    if (rec->flags & ~LLM_FLAG_SHUFFLE)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: unknown flags 0x%02x", rec->name,
                             rec->flags);
    if ((rec->flags & LLM_FLAG_SHUFFLE) && llm_dtype_bits(rec->dtype) < 16)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: shuffle needs a dtype of 16 bits or more",
                             rec->name);
    if (rec->n_attrs < 0 || rec->n_attrs > LLM_MAX_ATTRS)
        return llm_error_set(err, LLM_ERR_LIMIT, "%s: %d attributes (at most %d)", rec->name,
                             rec->n_attrs, LLM_MAX_ATTRS);
    size_t total = 0;
    for (int i = 0; i < rec->n_attrs; i++) {
        const char *k = rec->attrs[i].key, *v = rec->attrs[i].value;
        if (!k || !key_ok(k, strlen(k)))
            return llm_error_set(err, LLM_ERR_FORMAT,
                                 "%s: attribute key must be 1..%d printable bytes without spaces or '='",
                                 rec->name, LLM_MAX_KEY);
        size_t vlen = v ? strlen(v) : 0;
        if (vlen > LLM_MAX_VALUE)
            return llm_error_set(err, LLM_ERR_LIMIT, "%s: attribute %s longer than %u bytes",
                                 rec->name, k, LLM_MAX_VALUE);
        total += strlen(k) + vlen;
    }
    if (total > LLM_MAX_ATTR_BYTES)
        return llm_error_set(err, LLM_ERR_LIMIT, "%s: attributes total over %u bytes", rec->name,
                             LLM_MAX_ATTR_BYTES);
    if (llm_payload_bytes(rec->dtype, &rec->shape, &rec->nbytes, err) < 0)
        return llm_error_prefix(err, "%s", rec->name);
    return 0;
}

/* Byte shuffle of one block of n elements of w bytes: byte j of element i
 * moves to j*n + i, so equal-significance bytes sit together; unshuffle is
 * the mirror image.  One function per width with every byte's move written
 * out: only in this form does gcc vectorise the 4- and 8-byte cases (a loop
 * over j with a constant bound ran at 1.2 GB/s; this at over 15 GB/s). */
static void shuffle2(unsigned char *restrict d, const unsigned char *restrict s, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        d[i] = s[2 * i];
        d[n + i] = s[2 * i + 1];
    }
}

static void shuffle4(unsigned char *restrict d, const unsigned char *restrict s, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        d[i] = s[4 * i];
        d[n + i] = s[4 * i + 1];
        d[2 * n + i] = s[4 * i + 2];
        d[3 * n + i] = s[4 * i + 3];
    }
}

static void shuffle8(unsigned char *restrict d, const unsigned char *restrict s, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        d[i] = s[8 * i];
        d[n + i] = s[8 * i + 1];
        d[2 * n + i] = s[8 * i + 2];
        d[3 * n + i] = s[8 * i + 3];
        d[4 * n + i] = s[8 * i + 4];
        d[5 * n + i] = s[8 * i + 5];
        d[6 * n + i] = s[8 * i + 6];
        d[7 * n + i] = s[8 * i + 7];
    }
}

static void unshuffle2(unsigned char *restrict d, const unsigned char *restrict s, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        d[2 * i] = s[i];
        d[2 * i + 1] = s[n + i];
    }
}

static void unshuffle4(unsigned char *restrict d, const unsigned char *restrict s, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        d[4 * i] = s[i];
        d[4 * i + 1] = s[n + i];
        d[4 * i + 2] = s[2 * n + i];
        d[4 * i + 3] = s[3 * n + i];
    }
}

static void unshuffle8(unsigned char *restrict d, const unsigned char *restrict s, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        d[8 * i] = s[i];
        d[8 * i + 1] = s[n + i];
        d[8 * i + 2] = s[2 * n + i];
        d[8 * i + 3] = s[3 * n + i];
        d[8 * i + 4] = s[4 * n + i];
        d[8 * i + 5] = s[5 * n + i];
        d[8 * i + 6] = s[6 * n + i];
        d[8 * i + 7] = s[7 * n + i];
    }
}

/* w is 2, 4 or 8 (record_check allows shuffle on 16-bit and wider only) */
static void shuffle_block(unsigned char *dst, const unsigned char *src, size_t n, int w)
{
    if (w == 2) shuffle2(dst, src, n);
    else if (w == 4) shuffle4(dst, src, n);
    else shuffle8(dst, src, n);
}

static void unshuffle_block(unsigned char *dst, const unsigned char *src, size_t n, int w)
{
    if (w == 2) unshuffle2(dst, src, n);
    else if (w == 4) unshuffle4(dst, src, n);
    else unshuffle8(dst, src, n);
}

/* ---------- reader ---------- */

/* What the input holds where the parser stands: not known yet (look at the
 * next bytes), a zstd frame, a raw stream, or a source's already decoded
 * zstd content (parsed as it is: never searched for frames). */
enum { MODE_DETECT, MODE_ZSTD, MODE_RAW, MODE_DECODED };

struct llm_reader {
    int fd, own_fd;
    llm_reader_source source;  /* when set, input comes from source(source_ctx) instead of fd */
    void *source_ctx;
    char label[256];
    /* input (compressed or raw bytes) */
    unsigned char *in_buf;     /* owned buffer for fd input */
    const unsigned char *in;   /* in_buf, or the caller's memory */
    size_t in_cap, in_pos, in_len;
    int in_eof;
    int in_decoded;            /* a source's buffered bytes are decoded zstd content */
    /* decoding */
    int mode, frame_open, saw_zstd;
    ZSTD_DCtx *dctx;
    unsigned char *out;        /* decoded raw-stream bytes */
    const unsigned char *parse; /* the bytes being parsed: out, or in place in the input of a raw stream */
    size_t out_cap, out_pos, out_len;
    uint64_t in_total, raw_total; /* raw_total: raw bytes handed to the parser */
    /* parsing */
    int need_header, streams_seen;
    uint64_t boundary;         /* raw_total where the last stream ended (0: none yet) */
    uint64_t records_in_stream, record_index;
    llm_record rec;
    char *strings;             /* name, keys and values, NUL-terminated */
    size_t strings_cap;
    llm_attr *attrs;
    size_t *attr_offsets;      /* key and value offsets into strings while reading */
    /* current payload */
    uint64_t remaining;        /* decoded payload bytes not yet given to the caller */
    uint64_t raw_remaining;    /* payload bytes not yet taken from the raw stream */
    unsigned char *block, *block_tmp;
    size_t block_pos, block_len;
};

/* Fails with "label: byte N: what", N being the raw-stream offset reached. */
static int rfail(llm_reader *r, llm_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rfail(llm_reader *r, llm_error *err, int code, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return llm_error_set(err, code, "%s: byte %llu: %s", r->label,
                         (unsigned long long)r->raw_total, what);
}

static int reader_alloc(llm_reader **out, const char *label, llm_error *err)
{
    llm_reader *r = calloc(1, sizeof *r);
    if (!r) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", label);
    snprintf(r->label, sizeof r->label, "%s", label);
    r->fd = -1;
    r->need_header = 1;
    r->out_cap = ZSTD_DStreamOutSize();
    r->out = malloc(r->out_cap);
    r->block = malloc(LLM_SHUFFLE_BLOCK);
    r->block_tmp = malloc(LLM_SHUFFLE_BLOCK);
    r->attrs = malloc(LLM_MAX_ATTRS * sizeof *r->attrs);
    r->attr_offsets = malloc(2 * LLM_MAX_ATTRS * sizeof *r->attr_offsets);
    r->dctx = ZSTD_createDCtx();
    if (!r->out || !r->block || !r->block_tmp || !r->attrs || !r->attr_offsets || !r->dctx) {
        llm_reader_close(r);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", label);
    }
    *out = r;
    return 0;
}

/* A reader with an input buffer of its own, for a descriptor or a source. */
static int reader_alloc_buffered(llm_reader **out, const char *label, llm_error *err)
{
    llm_reader *r;
    LLM_TRY(reader_alloc(&r, label, err));
    r->in_cap = ZSTD_DStreamInSize();
    r->in_buf = malloc(r->in_cap);
    if (!r->in_buf) {
        llm_reader_close(r);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", label);
    }
    r->in = r->in_buf;
    *out = r;
    return 0;
}

int llm_reader_open_fd(llm_reader **out, int fd, const char *label, llm_error *err)
{
    LLM_TRY(reader_alloc_buffered(out, label, err));
    (*out)->fd = fd;
    llm_widen_pipe(fd);
    return 0;
}

int llm_reader_open_source(llm_reader **out, llm_reader_source fn, void *ctx, const char *label,
                           llm_error *err)
{
    LLM_TRY(reader_alloc_buffered(out, label, err));
    (*out)->source = fn;
    (*out)->source_ctx = ctx;
    return 0;
}

int llm_reader_open(llm_reader **out, const char *path, llm_error *err)
{
    if (strcmp(path, "-") == 0) return llm_reader_open_fd(out, 0, "-", err);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return llm_error_set(err, LLM_ERR_IO, "%s: %s", path, strerror(errno));
    int rc = llm_reader_open_fd(out, fd, path, err);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    (*out)->own_fd = 1;
    return 0;
}

int llm_reader_open_mem(llm_reader **out, const void *buf, size_t len, const char *label,
                        llm_error *err)
{
    llm_reader *r;
    LLM_TRY(reader_alloc(&r, label, err));
    r->in = buf;
    r->in_len = len;
    r->in_eof = 1;
    *out = r;
    return 0;
}

void llm_reader_close(llm_reader *r)
{
    if (!r) return;
    if (r->own_fd) close(r->fd);
    ZSTD_freeDCtx(r->dctx);
    free(r->in_buf);
    free(r->out);
    free(r->strings);
    free(r->attrs);
    free(r->attr_offsets);
    free(r->block);
    free(r->block_tmp);
    free(r);
}

void llm_reader_counts(const llm_reader *r, uint64_t *in_bytes, uint64_t *raw_bytes,
                       int *compressed)
{
    if (in_bytes) *in_bytes = r->in_total;
    if (raw_bytes) *raw_bytes = r->raw_total;
    if (compressed) *compressed = r->saw_zstd;
}

/* Makes at least `want` input bytes available, unless the input ends first.
 * Returns the bytes available, or < 0 on a read error. */
static int64_t input_ensure(llm_reader *r, size_t want, llm_error *err)
{
    while (r->in_len - r->in_pos < want && !r->in_eof) {
        if (r->in_pos > 0) { /* keep the unread tail at the front */
            memmove(r->in_buf, r->in_buf + r->in_pos, r->in_len - r->in_pos);
            r->in_len -= r->in_pos;
            r->in_pos = 0;
        }
        ssize_t n;
        if (r->source) {
            int decoded = 0;
            int64_t m = r->source(r->source_ctx, r->in_buf + r->in_len, r->in_cap - r->in_len, &decoded, err);
            if (m < 0) return m;
            if (m > 0) r->in_decoded = decoded; /* one kind a call, decoded ones first: never mixed here */
            n = (ssize_t)m;
        } else {
            n = read(r->fd, r->in_buf + r->in_len, r->in_cap - r->in_len);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return llm_error_set(err, LLM_ERR_IO, "%s: read: %s", r->label, strerror(errno));
        }
        if (n == 0) r->in_eof = 1;
        r->in_len += (size_t)n;
        r->in_total += (uint64_t)n;
    }
    return (int64_t)(r->in_len - r->in_pos);
}

/* Decodes more raw-stream bytes into r->out (which the caller has emptied).
 * Returns the bytes produced, 0 at the end of input, or < 0. */
static int64_t decode_more(llm_reader *r, llm_error *err)
{
    r->out_pos = r->out_len = 0;
    for (;;) {
        if (r->mode == MODE_DETECT) {
            int64_t avail = input_ensure(r, 1, err);
            if (avail <= 0) return avail;
            if (r->in_decoded) {
                r->mode = MODE_DECODED;
            } else if ((avail = input_ensure(r, 4, err)) < 0) {
                return avail;
            } else if (llm_zframe_detect(r->in + r->in_pos, (size_t)avail) != LLM_ZFRAME_NONE) {
                llm_error sub = {0};
                if ((avail = input_ensure(r, LLM_ZFRAME_HEADER_MAX, err)) < 0) return avail;
                if (llm_zframe_check_header(r->in + r->in_pos, (size_t)avail, &sub) < 0)
                    return rfail(r, err, sub.code, "%s", sub.msg);
                r->mode = MODE_ZSTD;
            } else {
                /* raw input after zstd frames: only where a stream ended (or none began) */
                if (r->raw_total != r->boundary)
                    return rfail(r, err, LLM_ERR_FORMAT,
                                 "raw bytes follow a zstd frame inside a stream (compressed and raw "
                                 "input may switch only between streams)");
                r->mode = MODE_RAW;
            }
            if (r->mode != MODE_RAW) r->saw_zstd = 1;
        }
        if (r->mode == MODE_RAW || r->mode == MODE_DECODED) {
            int64_t avail = input_ensure(r, 1, err);
            if (avail <= 0) return avail;
            if (r->mode == MODE_DECODED && !r->in_decoded) { /* the source passes input through now */
                r->mode = MODE_DETECT;
                continue;
            }
            size_t n = (size_t)avail < r->out_cap ? (size_t)avail : r->out_cap;
            r->parse = r->in + r->in_pos; /* valid until the next input_ensure, which comes
                                           * only once these bytes are parsed */
            r->in_pos += n;
            r->out_len = n;
            return (int64_t)n;
        }
        int64_t avail = input_ensure(r, 1, err);
        if (avail < 0) return avail;
        if (avail == 0) {
            if (r->frame_open)
                return rfail(r, err, LLM_ERR_TRUNCATED, "truncated: the zstd frame is cut short");
            return 0;
        }
        ZSTD_inBuffer ib = {r->in + r->in_pos, r->in_len - r->in_pos, 0};
        ZSTD_outBuffer ob = {r->out, r->out_cap, 0};
        r->parse = r->out;
        size_t ret = ZSTD_decompressStream(r->dctx, &ob, &ib);
        r->in_pos += ib.pos;
        if (ZSTD_isError(ret)) {
            int bad_sum = ZSTD_getErrorCode(ret) == ZSTD_error_checksum_wrong;
            return rfail(r, err, bad_sum ? LLM_ERR_CHECKSUM : LLM_ERR_FORMAT, "zstd: %s",
                         ZSTD_getErrorName(ret));
        }
        r->frame_open = ret != 0;
        if (ret == 0) r->mode = MODE_DETECT; /* a frame ended: zstd or raw may follow */
        if (ob.pos > 0) {
            r->out_len = ob.pos;
            return (int64_t)ob.pos;
        }
    }
}

/* Reads exactly n raw-stream bytes.  Returns 1, or 0 when the input ended
 * before the first byte (only then), or < 0 (truncated in the middle). */
static int raw_read(llm_reader *r, void *dst, size_t n, const char *what, llm_error *err)
{
    unsigned char *d = dst;
    size_t got = 0;
    while (got < n) {
        if (r->out_pos == r->out_len) {
            int64_t m = decode_more(r, err);
            if (m < 0) return (int)m;
            if (m == 0) {
                if (got == 0) return 0;
                return rfail(r, err, LLM_ERR_TRUNCATED, "truncated in %s", what);
            }
        }
        size_t k = r->out_len - r->out_pos;
        if (k > n - got) k = n - got;
        memcpy(d + got, r->parse + r->out_pos, k);
        r->out_pos += k;
        got += k;
        r->raw_total += k;
    }
    return 1;
}

/* raw_read where the end of input is always an error. */
static int raw_need(llm_reader *r, void *dst, size_t n, const char *what, llm_error *err)
{
    int rc = raw_read(r, dst, n, what, err);
    if (rc == 0) return rfail(r, err, LLM_ERR_TRUNCATED, "truncated: input ends in %s", what);
    return rc < 0 ? rc : 0;
}

/* Appends n bytes from the stream to r->strings and a NUL; *offset gets where. */
static int read_string(llm_reader *r, size_t n, size_t *used, size_t *offset, const char *what,
                       llm_error *err)
{
    if (*used + n + 1 > r->strings_cap) {
        size_t cap = r->strings_cap ? r->strings_cap : 4096;
        while (cap < *used + n + 1) cap *= 2;
        char *s = realloc(r->strings, cap);
        if (!s) return rfail(r, err, LLM_ERR_NOMEM, "out of memory for %s", what);
        r->strings = s;
        r->strings_cap = cap;
    }
    LLM_TRY(raw_need(r, r->strings + *used, n, what, err));
    r->strings[*used + n] = '\0';
    if (memchr(r->strings + *used, '\0', n))
        return rfail(r, err, LLM_ERR_FORMAT, "NUL byte inside %s", what);
    *offset = *used;
    *used += n + 1;
    return 0;
}

static int read_stream_header(llm_reader *r, llm_error *err)
{
    unsigned char h[HEADER_BYTES];
    for (int i = 0; i < HEADER_BYTES; i++) { /* byte by byte: say "not a stream" early */
        int rc = raw_read(r, h + i, 1, "the stream header", err);
        if (rc < 0) return rc;
        if (rc == 0 && i == 0) {
            if (r->streams_seen == 0)
                return rfail(r, err, LLM_ERR_FORMAT, "empty input: not a tensor stream");
            return 0;
        }
        if (i < 4 && (rc == 0 || h[i] != stream_magic[i]))
            return rfail(r, err, LLM_ERR_FORMAT, "not a tensor stream (expected 'LLMT' or zstd)");
        if (rc == 0)
            return rfail(r, err, LLM_ERR_TRUNCATED, "truncated: input ends in the stream header");
    }
    unsigned version = llm_bytes_get_le16(h + 4), flags = llm_bytes_get_le16(h + 6);
    if (version != LLM_STREAM_VERSION)
        return rfail(r, err, LLM_ERR_FORMAT, "stream version %u (this reader knows %d)", version,
                     LLM_STREAM_VERSION);
    if (flags != 0) return rfail(r, err, LLM_ERR_FORMAT, "unknown stream flags 0x%04x", flags);
    r->streams_seen++;
    r->records_in_stream = 0;
    r->need_header = 0;
    return 1;
}

/* Reads a record header after its kind byte into r->rec. */
static int read_record_header(llm_reader *r, int kind, llm_error *err)
{
    unsigned char f[5];
    LLM_TRY(raw_need(r, f, sizeof f, "a record header", err));
    int dtype = f[0], ndim = f[1];
    unsigned flags = f[2], name_len = llm_bytes_get_le16(f + 3);
    if (!llm_dtype_name(dtype)) return rfail(r, err, LLM_ERR_FORMAT, "unknown dtype code %d", dtype);
    if (ndim > LLM_MAX_DIMS)
        return rfail(r, err, LLM_ERR_FORMAT, "%d dimensions (at most %d)", ndim, LLM_MAX_DIMS);
    if (name_len == 0 || name_len > LLM_MAX_NAME)
        return rfail(r, err, LLM_ERR_FORMAT, "record name length %u (1..%d)", name_len,
                     LLM_MAX_NAME);
    size_t used = 0, name_off;
    LLM_TRY(read_string(r, name_len, &used, &name_off, "a record name", err));
    if (!name_ok(r->strings + name_off, name_len))
        return rfail(r, err, LLM_ERR_FORMAT, "record name has control characters");
    const char *what = "the attribute table";
    unsigned char b[4];
    LLM_TRY(raw_need(r, b, 2, what, err));
    unsigned n_attrs = llm_bytes_get_le16(b);
    if (n_attrs > LLM_MAX_ATTRS)
        return rfail(r, err, LLM_ERR_LIMIT, "%u attributes (at most %d)", n_attrs, LLM_MAX_ATTRS);
    size_t attr_bytes = 0;
    for (unsigned i = 0; i < n_attrs; i++) {
        LLM_TRY(raw_need(r, b, 2, what, err));
        unsigned klen = llm_bytes_get_le16(b);
        if (klen == 0 || klen > LLM_MAX_KEY)
            return rfail(r, err, LLM_ERR_FORMAT, "attribute key length %u (1..%d)", klen,
                         LLM_MAX_KEY);
        LLM_TRY(read_string(r, klen, &used, &r->attr_offsets[2 * i], "an attribute key", err));
        if (!key_ok(r->strings + r->attr_offsets[2 * i], klen))
            return rfail(r, err, LLM_ERR_FORMAT, "attribute key has spaces, '=' or control bytes");
        LLM_TRY(raw_need(r, b, 4, what, err));
        uint32_t vlen = llm_bytes_get_le32(b);
        attr_bytes += klen + (size_t)vlen;
        if (vlen > LLM_MAX_VALUE || attr_bytes > LLM_MAX_ATTR_BYTES)
            return rfail(r, err, LLM_ERR_LIMIT, "attribute value of %u bytes (limits: %u each, %u in all)",
                         vlen, LLM_MAX_VALUE, LLM_MAX_ATTR_BYTES);
        LLM_TRY(read_string(r, vlen, &used, &r->attr_offsets[2 * i + 1], "an attribute value", err));
    }
    llm_record *rec = &r->rec;
    memset(rec, 0, sizeof *rec);
    rec->kind = (llm_record_kind)kind;
    rec->dtype = (llm_dtype)dtype;
    rec->flags = flags;
    rec->name = r->strings + name_off;
    rec->n_attrs = (int)n_attrs;
    for (unsigned i = 0; i < n_attrs; i++) {
        r->attrs[i].key = r->strings + r->attr_offsets[2 * i];
        r->attrs[i].value = r->strings + r->attr_offsets[2 * i + 1];
    }
    rec->attrs = r->attrs;
    rec->shape.ndim = ndim;
    unsigned char d[8];
    for (int i = 0; i < ndim; i++) {
        LLM_TRY(raw_need(r, d, 8, "the shape", err));
        uint64_t v = llm_bytes_get_le64(d);
        if (v > (uint64_t)LLM_MAX_DIM)
            return rfail(r, err, LLM_ERR_LIMIT, "%s: dimension %d is %llu (limit 2^48)", rec->name,
                         i, (unsigned long long)v);
        rec->shape.dim[i] = (int64_t)v;
    }
    LLM_TRY(raw_need(r, d, 8, "the payload length", err));
    uint64_t stored = llm_bytes_get_le64(d);
    llm_error sub = {0};
    if (record_check(rec, &sub) < 0) return rfail(r, err, sub.code, "%s", sub.msg);
    if (stored != rec->nbytes)
        return rfail(r, err, LLM_ERR_FORMAT, "%s: payload length %llu, but %s%s needs %llu",
                     rec->name, (unsigned long long)stored, llm_dtype_name(dtype),
                     llm_shape_format(&rec->shape, (char[96]){0}, 96),
                     (unsigned long long)rec->nbytes);
    r->remaining = r->raw_remaining = stored;
    r->block_pos = r->block_len = 0;
    return 0;
}

/* Discards the rest of the current payload. */
static int skip_payload(llm_reader *r, llm_error *err)
{
    while (r->raw_remaining > 0) {
        size_t n = r->raw_remaining < LLM_SHUFFLE_BLOCK ? (size_t)r->raw_remaining : LLM_SHUFFLE_BLOCK;
        LLM_TRY(raw_need(r, r->block_tmp, n, "a payload", err));
        r->raw_remaining -= n;
    }
    r->remaining = 0;
    r->block_pos = r->block_len = 0;
    return 0;
}

int llm_reader_next(llm_reader *r, const llm_record **rec, llm_error *err)
{
    LLM_TRY(skip_payload(r, err));
    for (;;) {
        if (r->need_header) {
            int rc = read_stream_header(r, err);
            if (rc <= 0) return rc;
        }
        unsigned char kind;
        int rc = raw_read(r, &kind, 1, "a record", err);
        if (rc < 0) return rc;
        if (rc == 0)
            return rfail(r, err, LLM_ERR_TRUNCATED,
                         "truncated: the stream ends without its end record (after %llu records)",
                         (unsigned long long)r->records_in_stream);
        if (kind == RECORD_END) {
            unsigned char c[8];
            LLM_TRY(raw_need(r, c, 8, "the end record", err));
            if (llm_bytes_get_le64(c) != r->records_in_stream)
                return rfail(r, err, LLM_ERR_FORMAT, "end record counts %llu records, stream had %llu",
                             (unsigned long long)llm_bytes_get_le64(c), (unsigned long long)r->records_in_stream);
            r->need_header = 1;
            r->boundary = r->raw_total;
            if (r->mode == MODE_RAW) { /* the next stream may be compressed: look again */
                r->in_pos -= r->out_len - r->out_pos; /* un-copy bytes not parsed yet */
                r->out_pos = r->out_len;
                r->mode = MODE_DETECT;
            }
            continue;
        }
        if (kind != LLM_RECORD_TENSOR && kind != LLM_RECORD_META)
            return rfail(r, err, LLM_ERR_FORMAT, "unknown record kind 0x%02x", kind);
        LLM_TRY(read_record_header(r, kind, err));
        r->records_in_stream++;
        r->record_index++;
        *rec = &r->rec;
        return 1;
    }
}

int64_t llm_reader_read(llm_reader *r, void *buf, size_t n, llm_error *err)
{
    unsigned char *d = buf;
    size_t got = 0;
    if (n > r->remaining) n = (size_t)r->remaining;
    if (!(r->rec.flags & LLM_FLAG_SHUFFLE)) {
        if (n) LLM_TRY(raw_need(r, d, n, r->rec.name, err));
        r->remaining -= n;
        r->raw_remaining -= n;
        return (int64_t)n;
    }
    int width = llm_dtype_bits(r->rec.dtype) / 8;
    while (got < n) {
        if (r->block_pos == r->block_len) {
            size_t b = r->raw_remaining < LLM_SHUFFLE_BLOCK ? (size_t)r->raw_remaining : LLM_SHUFFLE_BLOCK;
            LLM_TRY(raw_need(r, r->block_tmp, b, r->rec.name, err));
            r->raw_remaining -= b;
            unshuffle_block(r->block, r->block_tmp, b / (size_t)width, width);
            r->block_pos = 0;
            r->block_len = b;
        }
        size_t k = r->block_len - r->block_pos;
        if (k > n - got) k = n - got;
        memcpy(d + got, r->block + r->block_pos, k);
        r->block_pos += k;
        got += k;
    }
    r->remaining -= n;
    return (int64_t)n;
}

int llm_reader_read_all(llm_reader *r, void **data, size_t *n, llm_error *err)
{
    if (r->remaining > SIZE_MAX - 1)
        return rfail(r, err, LLM_ERR_LIMIT, "%s: too large for memory", r->rec.name);
    size_t total = (size_t)r->remaining, cap = total < (1u << 20) ? total : (1u << 20), have = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return rfail(r, err, LLM_ERR_NOMEM, "%s: out of memory", r->rec.name);
    while (have < total) {
        if (have == cap) { /* grow only with bytes that really arrived */
            cap = cap > total / 2 ? total : cap * 2;
            unsigned char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                return rfail(r, err, LLM_ERR_NOMEM, "%s: out of memory", r->rec.name);
            }
            buf = b;
        }
        int64_t m = llm_reader_read(r, buf + have, cap - have, err);
        if (m < 0) {
            free(buf);
            return (int)m;
        }
        have += (size_t)m;
    }
    *data = buf;
    *n = have;
    return 0;
}

int llm_reader_read_tensor(llm_reader *r, llm_tensor *t, llm_error *err)
{
    memset(t, 0, sizeof *t);
    void *data;
    size_t n;
    LLM_TRY(llm_reader_read_all(r, &data, &n, err));
    t->dtype = r->rec.dtype;
    t->shape = r->rec.shape;
    t->data = data;
    t->owned = 1;
    return 0;
}

/* ---------- writer ---------- */

struct llm_writer {
    int fd, raw;
    char label[256];
    llm_outfile *file;         /* set when writing a file (renamed into place on close) */
    ZSTD_CCtx *cctx;
    unsigned char *out;        /* compressed (or raw) bytes waiting for write() */
    size_t out_cap, out_len;
    int in_record;
    llm_record rec;            /* the record being written (name, attrs: caller's) */
    uint64_t remaining;        /* payload bytes still expected */
    int shuffle_width;         /* 0 = no shuffle */
    unsigned char *block, *block_tmp;
    size_t block_len;
    uint64_t records;
    size_t frame_raw;          /* raw bytes in the current zstd frame */
};

static int write_all(llm_writer *w, const unsigned char *p, size_t n, llm_error *err)
{
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return llm_error_set(err, LLM_ERR_IO, "%s: write: %s", w->label, strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int drain(llm_writer *w, llm_error *err)
{
    int rc = write_all(w, w->out, w->out_len, err);
    w->out_len = 0;
    return rc;
}

/* Runs the compressor over input with the given directive until it has taken
 * all input (and, for flush/end, emptied its buffers). */
static int compress(llm_writer *w, const void *data, size_t n, ZSTD_EndDirective mode,
                    llm_error *err)
{
    ZSTD_inBuffer ib = {data, n, 0};
    for (;;) {
        ZSTD_outBuffer ob = {w->out, w->out_cap, w->out_len};
        size_t left = ZSTD_compressStream2(w->cctx, &ob, &ib, mode);
        if (ZSTD_isError(left))
            return llm_error_set(err, LLM_ERR_IO, "%s: zstd: %s", w->label, ZSTD_getErrorName(left));
        w->out_len = ob.pos;
        if (w->out_len == w->out_cap) LLM_TRY(drain(w, err));
        if (ib.pos == ib.size && (mode == ZSTD_e_continue || left == 0)) return 0;
    }
}

/* Adds bytes to the raw stream, ending the zstd frame whenever it holds
 * LLM_FRAME_BYTES raw bytes, so frames can be decoded independently. */
static int emit(llm_writer *w, const void *data, size_t n, llm_error *err)
{
    const unsigned char *p = data;
    if (!w->raw) {
        while (n > 0) {
            size_t k = LLM_FRAME_BYTES - w->frame_raw;
            if (k > n) k = n;
            LLM_TRY(compress(w, p, k, ZSTD_e_continue, err));
            w->frame_raw += k;
            p += k;
            n -= k;
            if (w->frame_raw == LLM_FRAME_BYTES) {
                LLM_TRY(compress(w, NULL, 0, ZSTD_e_end, err));
                w->frame_raw = 0;
            }
        }
        return 0;
    }
    while (n > 0) {
        size_t k = w->out_cap - w->out_len < n ? w->out_cap - w->out_len : n;
        memcpy(w->out + w->out_len, p, k);
        w->out_len += k;
        p += k;
        n -= k;
        if (w->out_len == w->out_cap) LLM_TRY(drain(w, err));
    }
    return 0;
}

/* Pushes everything written so far to the file descriptor (a frame that
 * has just ended holds nothing more to flush or end). */
static int flush_all(llm_writer *w, ZSTD_EndDirective mode, llm_error *err)
{
    if (!w->raw && w->frame_raw > 0) LLM_TRY(compress(w, NULL, 0, mode, err));
    if (mode == ZSTD_e_end) w->frame_raw = 0;
    return drain(w, err);
}

static int writer_start(llm_writer *w, const llm_writer_opts *opts, llm_error *err)
{
    w->raw = opts && opts->raw;
    w->out_cap = ZSTD_CStreamOutSize();
    w->out = malloc(w->out_cap);
    w->block = malloc(LLM_SHUFFLE_BLOCK);
    w->block_tmp = malloc(LLM_SHUFFLE_BLOCK);
    if (!w->out || !w->block || !w->block_tmp)
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", w->label);
    if (!w->raw) {
        int level = opts && opts->level ? opts->level : 3;
        if (level < 1 || level > ZSTD_maxCLevel())
            return llm_error_set(err, LLM_ERR_ARG, "zstd level %d (1..%d)", level, ZSTD_maxCLevel());
        w->cctx = ZSTD_createCCtx();
        if (!w->cctx) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", w->label);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    }
    unsigned char h[HEADER_BYTES];
    memcpy(h, stream_magic, 4);
    llm_bytes_put_le16(h + 4, LLM_STREAM_VERSION);
    llm_bytes_put_le16(h + 6, 0);
    return emit(w, h, sizeof h, err);
}

static void writer_free(llm_writer *w)
{
    ZSTD_freeCCtx(w->cctx);
    free(w->out);
    free(w->block);
    free(w->block_tmp);
    free(w);
}

int llm_writer_open_fd(llm_writer **out, int fd, const char *label, const llm_writer_opts *opts,
                       llm_error *err)
{
    llm_writer *w = calloc(1, sizeof *w);
    if (!w) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", label);
    w->fd = fd;
    llm_widen_pipe(fd);
    snprintf(w->label, sizeof w->label, "%s", label);
    int rc = writer_start(w, opts, err);
    if (rc < 0) {
        writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int llm_writer_open(llm_writer **out, const char *path, const llm_writer_opts *opts,
                    llm_error *err)
{
    llm_outfile *f;
    LLM_TRY(llm_outfile_open(&f, path, err));
    int rc = llm_writer_open_fd(out, llm_outfile_fd(f), llm_outfile_path(f), opts, err);
    if (rc < 0) {
        llm_outfile_abort(f);
        return rc;
    }
    (*out)->file = f;
    return 0;
}

int llm_writer_begin(llm_writer *w, const llm_record *rec_in, llm_error *err)
{
    if (w->in_record)
        return llm_error_set(err, LLM_ERR_STATE, "%s: record %s is not finished", w->label, w->rec.name);
    llm_record rec = *rec_in;
    if (record_check(&rec, err) < 0) return llm_error_prefix(err, "%s", w->label);
    unsigned char f[6];
    f[0] = (unsigned char)rec.kind;
    f[1] = (unsigned char)rec.dtype;
    f[2] = (unsigned char)rec.shape.ndim;
    f[3] = (unsigned char)rec.flags;
    size_t name_len = strlen(rec.name);
    llm_bytes_put_le16(f + 4, (unsigned)name_len);
    LLM_TRY(emit(w, f, 6, err));
    LLM_TRY(emit(w, rec.name, name_len, err));
    unsigned char b[8];
    llm_bytes_put_le16(b, (unsigned)rec.n_attrs);
    LLM_TRY(emit(w, b, 2, err));
    for (int i = 0; i < rec.n_attrs; i++) {
        const char *k = rec.attrs[i].key, *v = rec.attrs[i].value ? rec.attrs[i].value : "";
        llm_bytes_put_le16(b, (unsigned)strlen(k));
        LLM_TRY(emit(w, b, 2, err));
        LLM_TRY(emit(w, k, strlen(k), err));
        llm_bytes_put_le32(b, (uint32_t)strlen(v));
        LLM_TRY(emit(w, b, 4, err));
        LLM_TRY(emit(w, v, strlen(v), err));
    }
    for (int i = 0; i < rec.shape.ndim; i++) {
        llm_bytes_put_le64(b, (uint64_t)rec.shape.dim[i]);
        LLM_TRY(emit(w, b, 8, err));
    }
    llm_bytes_put_le64(b, rec.nbytes);
    LLM_TRY(emit(w, b, 8, err));
    w->rec = rec;
    w->remaining = rec.nbytes;
    w->shuffle_width = rec.flags & LLM_FLAG_SHUFFLE ? llm_dtype_bits(rec.dtype) / 8 : 0;
    w->block_len = 0;
    w->in_record = 1;
    return 0;
}

static int emit_block(llm_writer *w, llm_error *err)
{
    shuffle_block(w->block_tmp, w->block, w->block_len / (size_t)w->shuffle_width, w->shuffle_width);
    int rc = emit(w, w->block_tmp, w->block_len, err);
    w->block_len = 0;
    return rc;
}

int llm_writer_write(llm_writer *w, const void *data, size_t n, llm_error *err)
{
    if (!w->in_record)
        return llm_error_set(err, LLM_ERR_STATE, "%s: payload written outside a record", w->label);
    if (n > w->remaining)
        return llm_error_set(err, LLM_ERR_ARG, "%s: %s: %zu payload bytes more than its size",
                             w->label, w->rec.name, n - (size_t)w->remaining);
    w->remaining -= n;
    if (!w->shuffle_width) return emit(w, data, n, err);
    const unsigned char *p = data;
    while (n > 0) {
        size_t k = LLM_SHUFFLE_BLOCK - w->block_len;
        if (k > n) k = n;
        memcpy(w->block + w->block_len, p, k);
        w->block_len += k;
        p += k;
        n -= k;
        if (w->block_len == LLM_SHUFFLE_BLOCK) LLM_TRY(emit_block(w, err));
    }
    return 0;
}

int llm_writer_end_record(llm_writer *w, llm_error *err)
{
    if (!w->in_record)
        return llm_error_set(err, LLM_ERR_STATE, "%s: no record to end", w->label);
    if (w->remaining)
        return llm_error_set(err, LLM_ERR_ARG, "%s: %s: %llu payload bytes missing", w->label,
                             w->rec.name, (unsigned long long)w->remaining);
    if (w->block_len) LLM_TRY(emit_block(w, err));
    w->in_record = 0;
    w->records++;
    return flush_all(w, ZSTD_e_flush, err);
}

int llm_writer_record(llm_writer *w, const llm_record *rec, const void *data, llm_error *err)
{
    LLM_TRY(llm_writer_begin(w, rec, err));
    LLM_TRY(llm_writer_write(w, data, (size_t)w->remaining, err));
    return llm_writer_end_record(w, err);
}

static int writer_finish(llm_writer *w, llm_error *err)
{
    if (w->in_record)
        return llm_error_set(err, LLM_ERR_STATE, "%s: closed inside record %s", w->label, w->rec.name);
    unsigned char e[9];
    e[0] = RECORD_END;
    llm_bytes_put_le64(e + 1, w->records);
    LLM_TRY(emit(w, e, sizeof e, err));
    LLM_TRY(flush_all(w, ZSTD_e_end, err));
    if (w->file) {
        llm_outfile *f = w->file;
        w->file = NULL;
        return llm_outfile_commit(f, err);
    }
    return 0;
}

int llm_writer_close(llm_writer *w, llm_error *err)
{
    if (!w) return 0;
    int rc = writer_finish(w, err);
    llm_writer_abort(w);
    return rc;
}

void llm_writer_abort(llm_writer *w)
{
    if (!w) return;
    llm_outfile_abort(w->file);
    writer_free(w);
}
