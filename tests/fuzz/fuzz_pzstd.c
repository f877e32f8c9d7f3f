/* libFuzzer target: the two readers of a tensor stream must agree.  The
 * stream reader reads the bytes from memory, a reader over the parallel
 * frame decoder (pzstd) reads them from a file; both must end cleanly with
 * the same records, or both fail, with the same code and message.  The one
 * allowed difference: after a zstd decoding error ("zstd: ...") the two may
 * stop at different places, since zstd drops the output of a failing call
 * and the two decode in differently sized calls.  A difference traps, and so
 * does a crash, a leak or a hang.
 *
 * An input that starts with RECIPE is a recipe for an input instead, so the
 * fuzzer reaches framing no compressor makes by itself: RECIPE, a count n
 * (at most 16), n pieces of 4 bytes (length u16 LE, op, param), then content.
 * Each piece takes its length of the content (what is left, at most) and
 * writes it as
 *   op 0  raw bytes
 *   op 1  a zstd frame from libzstd (level 1 + param % 4; param bit 4:
 *         checksum, bit 5: no content size)
 *   op 2  a frame of raw blocks whose window descriptor byte is param
 *         (window 2^(10 + param/8) * (1 + (param%8)/8): 1 KiB up to 3.75 TiB,
 *         and past zstd's maximum)
 *   op 3  a single-segment frame of raw blocks: its window is its content size
 *   op 4  a skippable frame (magic 0x184D2A50 + param % 16) holding it
 *   op 5  raw bytes, then everything written so far wrapped in one zstd frame
 *         (frames inside frames)
 * and what is left of the content after the last piece is raw bytes.
 *
 * Both readers accepting an input is no proof either: for a recipe the
 * target also knows where raw bytes follow a frame, and llm-tensor(5) allows
 * that only between streams.  It finds the stream boundaries of the raw
 * stream the pieces carry with a walker of its own, and traps when an input
 * the readers accepted switches anywhere else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include "pzstd.h"
#include "stream.h"

enum { RECIPE = 0xA5, MAX_PIECES = 16, BLOCK_MAX = 128 << 10 };

typedef struct out {
    unsigned char *p;
    size_t n, cap;
} out;

static void put_bytes(out *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->n + n) cap *= 2;
        unsigned char *q = realloc(o->p, cap);
        if (!q) abort();
        o->p = q, o->cap = cap;
    }
    if (n) memcpy(o->p + o->n, p, n);
    o->n += n;
}

static void put_le(out *o, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++) b[i] = (unsigned char)(v >> (8 * i));
    put_bytes(o, b, (size_t)bytes);
}

/* Raw blocks of at most `block` bytes holding p[0..n), the last one marked. */
static void put_raw_blocks(out *o, const unsigned char *p, size_t n, size_t block)
{
    do {
        size_t k = n < block ? n : block;
        put_le(o, (uint64_t)(k << 3 | (n == k)), 3); /* type 0: raw */
        put_bytes(o, p, k);
        p += k, n -= k;
    } while (n > 0);
}

static void put_zstd(out *o, const unsigned char *p, size_t n, int param)
{
    static ZSTD_CCtx *cctx;
    if (!cctx && !(cctx = ZSTD_createCCtx())) abort();
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1 + param % 4);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, (param >> 4) & 1);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, !((param >> 5) & 1));
    size_t cap = ZSTD_compressBound(n);
    unsigned char *z = malloc(cap);
    if (!z) abort();
    size_t k = ZSTD_compress2(cctx, z, cap, p, n);
    if (ZSTD_isError(k)) abort();
    put_bytes(o, z, k);
    free(z);
}

/* What a recipe's pieces mean for the rule on switching: the raw stream
 * they carry (the content of raw and frame pieces) and, for each piece that
 * wrote bytes, its kind and where its content starts in that raw stream. */
enum { PIECE_RAW, PIECE_FRAME, PIECE_SKIP };
typedef struct plan {
    out raw;
    int n, kind[MAX_PIECES + 2];
    size_t start[MAX_PIECES + 2];
    int unknown; /* a frame wraps frames: the raw stream is not the content */
} plan;

static void plan_add(plan *pl, int kind, const unsigned char *p, size_t n)
{
    if (kind == PIECE_RAW && n == 0) return; /* wrote nothing */
    pl->kind[pl->n] = kind;
    pl->start[pl->n++] = pl->raw.n;
    if (kind != PIECE_SKIP) put_bytes(&pl->raw, p, n);
}

/* The bytes a recipe describes (see the top of the file) into o, and their plan. */
static void cook(const uint8_t *data, size_t size, out *o, plan *pl)
{
    size_t n = size > 1 ? data[1] % (MAX_PIECES + 1) : 0;
    size_t at = 2 + 4 * n;
    if (at > size) n = 0, at = size;
    const unsigned char *content = data + at;
    size_t left = size - at;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *pc = data + 2 + 4 * i;
        size_t len = (size_t)(pc[0] | pc[1] << 8);
        int op = pc[2] % 6, param = pc[3];
        if (len > left) len = left;
        plan_add(pl, op == 4 ? PIECE_SKIP : op == 0 || op == 5 ? PIECE_RAW : PIECE_FRAME, content, len);
        if (op == 0 || op == 5) put_bytes(o, content, len);
        if (op == 1) put_zstd(o, content, len, param);
        if (op == 2 || op == 3) {
            put_le(o, ZSTD_MAGICNUMBER, 4);
            size_t block = BLOCK_MAX;
            if (op == 2) { /* no content size, a window descriptor */
                put_le(o, 0, 1);
                put_le(o, (uint64_t)param, 1);
                int wlog = 10 + (param >> 3);
                if (wlog < 17) block = ((size_t)1 << wlog) + ((size_t)1 << wlog) / 8 * (size_t)(param & 7);
            } else if (len < 256) { /* single segment, 1-byte content size */
                put_le(o, 0x20, 1);
                put_le(o, len, 1);
            } else if (len < 65536 + 256) {
                put_le(o, 0x60, 1);
                put_le(o, len - 256, 2);
            } else {
                put_le(o, 0xa0, 1);
                put_le(o, len, 4);
            }
            if (op == 3 && len && len < block) block = len;
            put_raw_blocks(o, content, len, block);
        }
        if (op == 4) {
            put_le(o, 0x184D2A50u + (unsigned)(param % 16), 4);
            put_le(o, len, 4);
            put_bytes(o, content, len);
        }
        if (op == 5) {
            out inner = *o;
            *o = (out){0};
            put_zstd(o, inner.p, inner.n, param);
            free(inner.p);
            for (int k = 0; k < pl->n; k++) pl->unknown |= pl->kind[k] != PIECE_RAW;
            pl->n = 1, pl->kind[0] = PIECE_FRAME, pl->start[0] = 0;
        }
        content += len, left -= len;
    }
    plan_add(pl, PIECE_RAW, content, left);
    put_bytes(o, content, left);
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The stream boundaries of a raw stream p[0..n) (0, and the end of every end
 * record) into b, after llm-tensor(5)'s layout; their count, or 0 when p is
 * not a sequence of whole streams. */
static size_t boundaries(const unsigned char *p, size_t n, size_t *b)
{
    size_t pos = 0, k = 0;
    b[k++] = 0;
    while (pos < n) {
        if (n - pos < 8 || memcmp(p + pos, "LLMT", 4) != 0) return 0;
        pos += 8;
        for (;;) {
            if (pos >= n) return 0;
            unsigned char kind = p[pos++];
            if (kind == 'E') {
                if (n - pos < 8) return 0;
                pos += 8;
                b[k++] = pos;
                break;
            }
            if (n - pos < 5) return 0;
            uint64_t ndim = p[pos + 1], skip = get_le(p + pos + 3, 2);
            pos += 5;
            if (n - pos < skip + 2) return 0;
            pos += skip;
            uint64_t attrs = get_le(p + pos, 2);
            pos += 2;
            for (uint64_t a = 0; a < attrs; a++) {
                if (n - pos < 2 || n - pos - 2 < get_le(p + pos, 2) + 4) return 0;
                pos += 2 + get_le(p + pos, 2);
                uint64_t vlen = get_le(p + pos, 4);
                if (n - pos - 4 < vlen) return 0;
                pos += 4 + vlen;
            }
            if (n - pos < 8 * ndim + 8) return 0;
            pos += 8 * ndim;
            uint64_t len = get_le(p + pos, 8);
            pos += 8;
            if (n - pos < len) return 0;
            pos += len;
        }
    }
    return k;
}

/* Traps when the readers accepted a recipe whose raw bytes follow a frame
 * elsewhere than at a stream boundary. */
static void check_switches(const plan *pl)
{
    if (pl->unknown) return;
    size_t *b = malloc((pl->raw.n / 9 + 2) * sizeof *b);
    if (!b) abort();
    size_t nb = boundaries(pl->raw.p, pl->raw.n, b);
    for (int i = 0, prev = -1; nb && i < pl->n; prev = pl->kind[i++]) {
        int at_boundary = 0;
        for (size_t k = 0; k < nb; k++) at_boundary |= b[k] == pl->start[i];
        if (at_boundary) continue;
        if (pl->kind[i] != PIECE_RAW && prev == PIECE_RAW) break; /* its bytes were read as raw stream */
        if (pl->kind[i] == PIECE_RAW && prev != PIECE_RAW && prev != -1) __builtin_trap();
    }
    free(b);
}

/* Records read and the final code of llm_reader_next (or of a payload read). */
static int drain(llm_reader *r, int *records, llm_error *err)
{
    const llm_record *rec;
    unsigned char chunk[4096];
    int rc;
    *records = 0;
    while ((rc = llm_reader_next(r, &rec, err)) > 0) {
        int64_t k;
        while ((k = llm_reader_read(r, chunk, sizeof chunk, err)) > 0) {}
        if (k < 0) return (int)k;
        (*records)++;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    out cooked = {0};
    plan pl = {0};
    int recipe = size > 0 && data[0] == RECIPE;
    if (recipe) {
        cook(data, size, &cooked, &pl);
        data = cooked.p, size = cooked.n;
    }
    int fd = memfd_create("fuzz", 0);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || lseek(fd, 0, SEEK_SET) != 0) {
        if (fd >= 0) close(fd);
        free(cooked.p);
        free(pl.raw.p);
        return 0;
    }
    llm_error err = {0}, e_mem = {0}, e_par = {0};
    llm_reader *r;
    int n_mem = 0, n_par = 0, rc_mem = -100, rc_par = -100;
    if (llm_reader_open_mem(&r, data, size, "fuzz", &err) == 0) {
        rc_mem = drain(r, &n_mem, &e_mem);
        llm_reader_close(r);
    }
    llm_pzstd *p;
    if (llm_pzstd_open_fd(&p, fd, "fuzz", 1 + (int)(size % 3), &err) == 0) {
        if (llm_pzstd_reader_open(&r, p, &err) == 0) {
            rc_par = drain(r, &n_par, &e_par);
            llm_reader_close(r);
        }
        llm_pzstd_close(p);
    }
    close(fd);
    if ((rc_mem == 0) != (rc_par == 0) || (rc_mem == 0 && n_mem != n_par)) __builtin_trap();
    int zstd_fault = strstr(e_mem.msg, ": zstd: ") || strstr(e_par.msg, ": zstd: ");
    if (rc_mem < 0 && !zstd_fault && (rc_mem != rc_par || strcmp(e_mem.msg, e_par.msg) != 0)) __builtin_trap();
    if (recipe && rc_mem == 0) check_switches(&pl);
    free(cooked.p);
    free(pl.raw.p);
    return 0;
}
