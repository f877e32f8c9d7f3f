/* npy — NumPy .npy headers: parse one held in memory or read one from a file
 * or pipe (never seeking), format and write one exactly as numpy.save does,
 * and swap the bytes of big-endian data.  See npy.h for the format. */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64        /* numpy's ARRAY_ALIGN: header total is a multiple */
#define NPY_GROWTH_DIGITS 21 /* numpy's GROWTH_AXIS_MAX_DIGITS: spare spaces */
#define NPY_V1_MAX_LEN 65535u

/* The dtypes numpy and llmpipe share, by their descr without the byte order. */
static const struct {
    char kind;
    char size;
    llm_dtype dtype;
} descr_table[] = {
    {'f', '4', LLM_DTYPE_F32}, {'f', '8', LLM_DTYPE_F64}, {'f', '2', LLM_DTYPE_F16},
    {'i', '1', LLM_DTYPE_I8},  {'u', '1', LLM_DTYPE_U8},  {'i', '4', LLM_DTYPE_I32},
    {'i', '8', LLM_DTYPE_I64},
};
#define DESCR_COUNT (sizeof descr_table / sizeof descr_table[0])

/* ---------------------------------------------------------------- prefix */

/* Checks the magic, the version and the length field of the first len bytes
 * of buf; sets *prefix (10 or 12) and *total (prefix + dict).  Returns
 * LLM_ERR_TRUNCATED when buf ends inside the prefix and nothing before that
 * point is wrong. */
static int parse_prefix(const unsigned char *buf, size_t len, llm_npy_header *h,
                        size_t *prefix, llm_error *err)
{
    size_t n = len < NPY_MAGIC_LEN ? len : NPY_MAGIC_LEN;
    if (memcmp(buf, NPY_MAGIC, n) != 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "not a .npy file (bad magic)");
    if (len < NPY_MAGIC_LEN + 2)
        return llm_error_set(err, LLM_ERR_TRUNCATED, "truncated .npy header");
    h->major = buf[6];
    h->minor = buf[7];
    if (h->major < 1 || h->major > 3 || h->minor != 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "unsupported .npy version %d.%d", h->major,
                             h->minor);
    int width = h->major == 1 ? 2 : 4;
    *prefix = NPY_MAGIC_LEN + 2 + (size_t)width;
    if (len < *prefix) return llm_error_set(err, LLM_ERR_TRUNCATED, "truncated .npy header");
    uint32_t dict_len = width == 2 ? llm_bytes_get_le16(buf + 8) : llm_bytes_get_le32(buf + 8);
    if (dict_len > LLM_NPY_MAX_HEADER - *prefix)
        return llm_error_set(err, LLM_ERR_LIMIT,
                             "header of %lu bytes is over the limit of %u bytes",
                             (unsigned long)dict_len + (unsigned long)*prefix,
                             LLM_NPY_MAX_HEADER);
    h->header_bytes = *prefix + dict_len;
    return 0;
}

/* ------------------------------------------------------------ dict parser */

/* A cursor over the dict; base is the start of the header, for offsets. */
typedef struct {
    const char *base, *p, *end;
    llm_error *err;
} cursor;

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
static int is_ident(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

static void skip_space(cursor *c)
{
    while (c->p < c->end && is_space((unsigned char)*c->p)) c->p++;
}

static size_t offset(const cursor *c) { return (size_t)(c->p - c->base); }

/* "'x'" or "byte 0xNN" or "the end of the header" for the byte at the cursor. */
static const char *describe(const cursor *c, char *buf, size_t size)
{
    if (c->p >= c->end) return "the end of the header";
    unsigned char ch = (unsigned char)*c->p;
    if (ch == '\'') snprintf(buf, size, "\"'\"");
    else if (ch >= 0x21 && ch < 0x7f) snprintf(buf, size, "'%c'", ch);
    else snprintf(buf, size, "byte 0x%02x", ch);
    return buf;
}

/* Fails with "header: expected WHAT at byte N, found X". */
static int expected(cursor *c, const char *what)
{
    char b[24];
    if (c->p >= c->end)
        return llm_error_set(c->err, LLM_ERR_FORMAT, "header: unterminated dict (expected %s)",
                             what);
    return llm_error_set(c->err, LLM_ERR_FORMAT, "header: expected %s at byte %zu, found %s",
                         what, offset(c), describe(c, b, sizeof b));
}

/* A quoted string without escapes: sets *s and *n to its contents. */
static int parse_string(cursor *c, const char **s, size_t *n)
{
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return expected(c, "a quoted string");
    char quote = *c->p++;
    *s = c->p;
    while (c->p < c->end && *c->p != quote) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch >= 0x7f || ch == '\\') {
            char b[24];
            return llm_error_set(c->err, LLM_ERR_FORMAT,
                                 "header: unsupported %s in a string at byte %zu",
                                 describe(c, b, sizeof b), offset(c));
        }
        c->p++;
    }
    if (c->p >= c->end)
        return llm_error_set(c->err, LLM_ERR_FORMAT, "header: unterminated string");
    *n = (size_t)(c->p - *s);
    c->p++;
    return 0;
}

static int parse_descr(cursor *c, llm_npy_header *h)
{
    if (c->p < c->end && *c->p == '[')
        return llm_error_set(c->err, LLM_ERR_FORMAT,
                             "header: structured dtypes (a descr list) are not supported");
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return expected(c, "a quoted descr such as '<f4'");
    const char *s;
    size_t n;
    LLM_TRY(parse_string(c, &s, &n));
    int order = n ? s[0] : 0;
    if (n == 3 && (order == '<' || order == '>' || order == '=' || order == '|')) {
        for (size_t i = 0; i < DESCR_COUNT; i++) {
            if (s[1] != descr_table[i].kind || s[2] != descr_table[i].size) continue;
            int one_byte = descr_table[i].size == '1';
            if (order == '|' && !one_byte)
                return llm_error_set(c->err, LLM_ERR_FORMAT,
                                     "header: descr '%.3s' has no byte order ('|' is only for "
                                     "1-byte types)",
                                     s);
            h->dtype = descr_table[i].dtype;
            /* numpy writes '<' or '>' (never '='); '=' is taken as little-endian,
             * the byte order of every machine llmpipe runs on. */
            h->swap_bytes = order == '>' && !one_byte;
            return 0;
        }
    }
    return llm_error_set(c->err, LLM_ERR_FORMAT,
                         "header: unsupported dtype '%.*s' (supported: f2 f4 f8 i1 u1 i4 i8)",
                         n > 32 ? 32 : (int)n, s);
}

static int parse_fortran(cursor *c)
{
    const char *s = c->p;
    while (c->p < c->end && is_ident((unsigned char)*c->p)) c->p++;
    size_t n = (size_t)(c->p - s);
    if (n == 5 && memcmp(s, "False", 5) == 0) return 0;
    if (n == 4 && memcmp(s, "True", 4) == 0)
        return llm_error_set(c->err, LLM_ERR_FORMAT,
                             "header: fortran_order True is not supported (C order only)");
    c->p = s;
    return expected(c, "True or False for fortran_order");
}

/* One non-negative decimal integer: a Python int literal as numpy writes it. */
static int parse_dim(cursor *c, int index, int64_t *dim)
{
    if (c->p < c->end && *c->p == '-')
        return llm_error_set(c->err, LLM_ERR_FORMAT,
                             "header: shape has a negative dimension at byte %zu", offset(c));
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return expected(c, "a dimension in shape");
    uint64_t v = 0;
    int over = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (!over) {
            v = v * 10 + (uint64_t)(*c->p - '0');
            over = v > (uint64_t)LLM_MAX_DIM;
        }
        c->p++;
    }
    if (c->p < c->end && (is_ident((unsigned char)*c->p) || *c->p == '.')) {
        char b[24];
        return llm_error_set(c->err, LLM_ERR_FORMAT,
                             "header: shape: %s at byte %zu is not part of an integer",
                             describe(c, b, sizeof b), offset(c));
    }
    if (over)
        return llm_error_set(c->err, LLM_ERR_LIMIT,
                             "header: shape: dimension %d is over the limit of 2^48", index);
    *dim = (int64_t)v;
    return 0;
}

/* A tuple of ints: (), (3,), (2, 3), (2,3,). */
static int parse_shape(cursor *c, llm_shape *shape)
{
    memset(shape, 0, sizeof *shape);
    if (c->p >= c->end || *c->p != '(') return expected(c, "a tuple such as (2, 3) for shape");
    c->p++;
    skip_space(c);
    int commas = 0;
    while (c->p < c->end && *c->p != ')') {
        if (shape->ndim == LLM_MAX_DIMS)
            return llm_error_set(c->err, LLM_ERR_LIMIT,
                                 "header: shape has more than %d dimensions", LLM_MAX_DIMS);
        LLM_TRY(parse_dim(c, shape->ndim, &shape->dim[shape->ndim]));
        shape->ndim++;
        skip_space(c);
        if (c->p < c->end && *c->p == ',') {
            commas++;
            c->p++;
            skip_space(c);
        } else if (c->p < c->end && *c->p != ')') {
            return expected(c, "',' or ')' in shape");
        }
    }
    if (c->p >= c->end) return expected(c, "')' to close shape");
    if (shape->ndim == 1 && commas == 0)
        return llm_error_set(c->err, LLM_ERR_FORMAT,
                             "header: shape (%lld) is not a tuple (a 1-tuple is written (%lld,))",
                             (long long)shape->dim[0], (long long)shape->dim[0]);
    c->p++;
    return 0;
}

/* Parses the dict in [p, end); the keys may come in any order. */
static int parse_dict(cursor *c, llm_npy_header *h)
{
    enum { K_DESCR, K_FORTRAN, K_SHAPE, K_COUNT };
    static const char *const names[K_COUNT] = {"descr", "fortran_order", "shape"};
    int seen[K_COUNT] = {0};

    skip_space(c);
    if (c->p >= c->end || *c->p != '{') return expected(c, "'{' to open the header dict");
    c->p++;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == '}') break;
        const char *key;
        size_t n;
        if (c->p >= c->end) return expected(c, "a key or '}'");
        if (*c->p != '\'' && *c->p != '"') return expected(c, "a quoted key or '}'");
        LLM_TRY(parse_string(c, &key, &n));
        int k = 0;
        while (k < K_COUNT && !(strlen(names[k]) == n && memcmp(names[k], key, n) == 0)) k++;
        if (k == K_COUNT)
            return llm_error_set(c->err, LLM_ERR_FORMAT, "header: unexpected key '%.*s'",
                                 n > 32 ? 32 : (int)n, key);
        if (seen[k])
            return llm_error_set(c->err, LLM_ERR_FORMAT, "header: duplicate key '%s'",
                                 names[k]);
        seen[k] = 1;
        skip_space(c);
        if (c->p >= c->end || *c->p != ':') return expected(c, "':' after a key");
        c->p++;
        skip_space(c);
        if (k == K_DESCR) LLM_TRY(parse_descr(c, h));
        else if (k == K_FORTRAN) LLM_TRY(parse_fortran(c));
        else LLM_TRY(parse_shape(c, &h->shape));
        skip_space(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') break;
        return expected(c, "',' or '}' after a value");
    }
    c->p++;
    skip_space(c);
    if (c->p < c->end) {
        char b[24];
        return llm_error_set(c->err, LLM_ERR_FORMAT,
                             "header: unexpected %s after the dict at byte %zu",
                             describe(c, b, sizeof b), offset(c));
    }
    for (int k = 0; k < K_COUNT; k++)
        if (!seen[k])
            return llm_error_set(c->err, LLM_ERR_FORMAT, "header: missing key '%s'", names[k]);
    return 0;
}

int llm_npy_parse_header(const void *buf, size_t len, llm_npy_header *h, llm_error *err)
{
    const unsigned char *b = buf;
    size_t prefix;
    memset(h, 0, sizeof *h);
    LLM_TRY(parse_prefix(b, len, h, &prefix, err));
    if (len < h->header_bytes)
        return llm_error_set(err, LLM_ERR_TRUNCATED, "truncated .npy header");
    cursor c = {(const char *)b, (const char *)b + prefix, (const char *)b + h->header_bytes,
                err};
    LLM_TRY(parse_dict(&c, h));
    int rc = llm_payload_bytes(h->dtype, &h->shape, &h->nbytes, err);
    if (rc < 0) {
        if (err) llm_error_prefix(err, "header");
        return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ I/O */

/* Reads up to n bytes; *got is how many arrived before end of input.
 * Returns 0, or -1 with errno set on a read error. */
static int read_full(int fd, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t k = read(fd, buf + *got, n - *got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) break;
        *got += (size_t)k;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads n more bytes into buf, or fails naming label.  A short read is
 * handed to the parser, which says whether what arrived is wrong or merely
 * cut short. */
static int read_part(int fd, const char *label, unsigned char *buf, size_t have, size_t n,
                     llm_npy_header *h, llm_error *err)
{
    size_t got;
    if (read_full(fd, buf + have, n, &got) < 0)
        return llm_error_set(err, LLM_ERR_IO, "%s: read: %s", label, strerror(errno));
    if (got == n) return 0;
    int rc = llm_npy_parse_header(buf, have + got, h, err);
    if (rc >= 0) rc = llm_error_set(err, LLM_ERR_TRUNCATED, "truncated .npy header");
    if (err) llm_error_prefix(err, "%s", label);
    return rc;
}

int llm_npy_read_header(int fd, const char *label, llm_npy_header *h, llm_error *err)
{
    unsigned char start[12];
    size_t prefix;
    if (!label) label = "-";
    memset(h, 0, sizeof *h);
    LLM_TRY(read_part(fd, label, start, 0, 8, h, err));
    int rc = parse_prefix(start, 8, h, &prefix, err);
    if (rc < 0 && rc != LLM_ERR_TRUNCATED) goto fail;
    LLM_TRY(read_part(fd, label, start, 8, prefix - 8, h, err));
    rc = parse_prefix(start, prefix, h, &prefix, err);
    if (rc < 0) goto fail;

    size_t total = h->header_bytes; /* <= LLM_NPY_MAX_HEADER, checked above */
    unsigned char *buf = malloc(total);
    if (!buf) return llm_error_set(err, LLM_ERR_NOMEM, "%s: no memory for a %zu-byte header",
                                   label, total);
    memcpy(buf, start, prefix);
    rc = read_part(fd, label, buf, prefix, total - prefix, h, err);
    if (rc == 0) {
        rc = llm_npy_parse_header(buf, total, h, err);
        if (rc < 0 && err) llm_error_prefix(err, "%s", label);
    }
    free(buf);
    return rc;
fail:
    if (err) llm_error_prefix(err, "%s", label);
    return rc;
}

/* ------------------------------------------------------------- writing */

static const char *descr_of(llm_dtype dtype)
{
    switch (dtype) {
    case LLM_DTYPE_F32: return "<f4";
    case LLM_DTYPE_F64: return "<f8";
    case LLM_DTYPE_F16: return "<f2";
    case LLM_DTYPE_I8: return "|i1";
    case LLM_DTYPE_U8: return "|u1";
    case LLM_DTYPE_I32: return "<i4";
    case LLM_DTYPE_I64: return "<i8";
    default: return NULL;
    }
}

int llm_npy_format_header(llm_dtype dtype, const llm_shape *shape, char *buf, size_t cap,
                          size_t *len, llm_error *err)
{
    const char *descr = descr_of(dtype);
    if (!descr) {
        const char *name = llm_dtype_name((int)dtype);
        if (name)
            return llm_error_set(err, LLM_ERR_ARG, "dtype %s has no .npy equivalent", name);
        return llm_error_set(err, LLM_ERR_ARG, "unknown dtype code %d", (int)dtype);
    }
    uint64_t nbytes;
    LLM_TRY(llm_payload_bytes(dtype, shape, &nbytes, err));

    /* 8 dimensions of at most 15 digits: the dict is under 256 bytes. */
    char dict[512];
    size_t n = (size_t)snprintf(dict, sizeof dict,
                                "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < shape->ndim; i++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%lld", i ? ", " : "",
                              (long long)shape->dim[i]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", shape->ndim == 1 ? "," : "");
    if (shape->ndim > 0) { /* numpy's spare room for growing the first axis */
        int digits = snprintf(NULL, 0, "%lld", (long long)shape->dim[0]);
        for (int i = digits; i < NPY_GROWTH_DIGITS; i++) dict[n++] = ' ';
    }

    /* dict + padding spaces + '\n', so that prefix + that is a multiple of 64
     * (at least one space, as numpy does). */
    size_t prefix = NPY_MAGIC_LEN + 4;
    size_t body = n + 1 + (NPY_ALIGN - (prefix + n + 1) % NPY_ALIGN);
    int major = 1;
    if (body > NPY_V1_MAX_LEN) {
        prefix = NPY_MAGIC_LEN + 6;
        body = n + 1 + (NPY_ALIGN - (prefix + n + 1) % NPY_ALIGN);
        major = 2;
    }
    size_t total = prefix + body;
    if (cap < total)
        return llm_error_set(err, LLM_ERR_ARG,
                             "a %zu-byte buffer is too small for the %zu-byte .npy header", cap,
                             total);
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = (char)major;
    buf[7] = 0;
    if (major == 1) llm_bytes_put_le16(buf + 8, (uint16_t)body);
    else llm_bytes_put_le32(buf + 8, (uint32_t)body);
    memcpy(buf + prefix, dict, n);
    memset(buf + prefix + n, ' ', body - n - 1);
    buf[total - 1] = '\n';
    *len = total;
    return 0;
}

int llm_npy_write_header(int fd, const char *label, llm_dtype dtype, const llm_shape *shape,
                         llm_error *err)
{
    char buf[1024];
    size_t len;
    if (!label) label = "-";
    int rc = llm_npy_format_header(dtype, shape, buf, sizeof buf, &len, err);
    if (rc < 0) {
        if (err) llm_error_prefix(err, "%s", label);
        return rc;
    }
    if (write_full(fd, buf, len) < 0)
        return llm_error_set(err, LLM_ERR_IO, "%s: write: %s", label, strerror(errno));
    return 0;
}

/* ------------------------------------------------------------ swapping */

void llm_npy_swap(void *data, size_t n, int width)
{
    unsigned char *p = data;
    if (width <= 1) return;
    switch (width) {
    case 2:
        for (size_t i = 0; i < n; i++, p += 2) {
            uint16_t v;
            memcpy(&v, p, 2);
            v = __builtin_bswap16(v);
            memcpy(p, &v, 2);
        }
        return;
    case 4:
        for (size_t i = 0; i < n; i++, p += 4) {
            uint32_t v;
            memcpy(&v, p, 4);
            v = __builtin_bswap32(v);
            memcpy(p, &v, 4);
        }
        return;
    case 8:
        for (size_t i = 0; i < n; i++, p += 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            v = __builtin_bswap64(v);
            memcpy(p, &v, 8);
        }
        return;
    default:
        for (size_t i = 0; i < n; i++, p += width)
            for (int a = 0, b = width - 1; a < b; a++, b--) {
                unsigned char t = p[a];
                p[a] = p[b];
                p[b] = t;
            }
    }
}
