/* Unit tests for lib/pzstd and the writer's frame cuts: a multi-frame
 * stream's frames, each decoded alone by libzstd's one-shot API, hold
 * exactly LLM_FRAME_BYTES of the raw stream (which the raw writer gives
 * byte for byte) and concatenate to it, as zstdcat agrees; the parallel
 * decoder gives those bytes on 1..4 threads, from a file and from a pipe, and
 * a reader on top gives the generated payloads; raw input, concatenations,
 * skippable frames and frames too large to decode whole pass through intact;
 * an empty, truncated, corrupted or checksum-failing input gives every byte
 * before the fault, then the error code the normal reader gives; and a reader
 * over it keeps the reader's rules (a frame's window at most 2^27, raw input
 * after a frame only between streams, no frames inside frames) with the
 * reader's messages. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "check.h"
#include "pzstd.h"
#include "stream.h"

static unsigned long long rng = 777;

typedef struct buf {
    unsigned char *p;
    size_t n;
} buf;

/* The test stream's records: one payload over two frames long, many small
 * ones, one of 3 MiB; f32 ones shuffled every third record. */
enum { N_SMALL = 300 };
typedef struct rec {
    char name[32];
    llm_dtype dtype;
    int64_t n;
    unsigned flags;
    unsigned char *data;
    size_t nbytes;
} rec;
static rec recs[N_SMALL + 2];
static int n_recs;

static void make_records(void)
{
    int64_t sizes[N_SMALL + 2];
    sizes[0] = (10 << 20) / 4 + 123; /* f32 values */
    for (int i = 1; i <= N_SMALL; i++) sizes[i] = 1 + (int64_t)(check_uniform(&rng) * 1500);
    sizes[N_SMALL + 1] = (3 << 20) / 4;
    n_recs = N_SMALL + 2;
    for (int i = 0; i < n_recs; i++) {
        rec *r = &recs[i];
        snprintf(r->name, sizeof r->name, "acts.%d", i);
        r->dtype = LLM_DTYPE_F32;
        r->n = sizes[i];
        r->flags = i % 3 == 1 ? LLM_FLAG_SHUFFLE : 0;
        r->nbytes = (size_t)r->n * 4;
        r->data = malloc(r->nbytes);
        for (int64_t k = 0; k < r->n; k++) {
            float v = (float)check_normal(&rng);
            memcpy(r->data + 4 * k, &v, 4);
        }
    }
}

static void write_stream(const char *path, int raw)
{
    llm_error err = {0};
    llm_writer *w;
    llm_writer_opts o = {.level = 1, .raw = raw};
    CHECK_OK(llm_writer_open(&w, path, &o, &err), err);
    for (int i = 0; i < n_recs; i++) {
        llm_record r = {.kind = LLM_RECORD_TENSOR, .name = recs[i].name, .dtype = recs[i].dtype,
                        .shape = llm_shape_make(1, (int64_t[]){recs[i].n}), .flags = recs[i].flags};
        CHECK_OK(llm_writer_record(w, &r, recs[i].data, &err), err);
    }
    CHECK_OK(llm_writer_close(w, &err), err);
}

static void spit(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n);
    if (f) fclose(f);
}

static char path_z[512], path_raw[512];
static buf z, raw;

/* Everything pzstd gives for fd or path: 0 at a clean end or the error code. */
static int pz_all_fd(int fd, const char *path, int threads, size_t chunk, buf *out, llm_error *err)
{
    llm_pzstd *p;
    int rc = fd >= 0 ? llm_pzstd_open_fd(&p, fd, "in", threads, err) : llm_pzstd_open(&p, path, threads, err);
    if (rc < 0) return rc;
    size_t cap = 1 << 20;
    out->p = malloc(cap);
    out->n = 0;
    int64_t k;
    for (;;) {
        while (cap - out->n < chunk) out->p = realloc(out->p, cap *= 2);
        k = llm_pzstd_read(p, out->p + out->n, chunk, err);
        if (k <= 0) break;
        out->n += (size_t)k;
    }
    llm_pzstd_close(p);
    return k < 0 ? (int)k : 0;
}

static int pz_all(const char *path, int threads, size_t chunk, buf *out, llm_error *err)
{
    return pz_all_fd(-1, path, threads, chunk, out, err);
}

/* Reads every record of r, checking payloads against recs (repeated `copies`
 * times; copies 0: damaged input, no checks); the last return code of
 * llm_reader_next or the first error. */
static int read_records(llm_reader *r, int copies, llm_error *err)
{
    const llm_record *h;
    int i = 0, rc;
    while ((rc = llm_reader_next(r, &h, err)) > 0) {
        const rec *want = &recs[i % n_recs];
        void *data;
        size_t n;
        if (llm_reader_read_all(r, &data, &n, err) < 0) return err->code;
        if (copies)
            CHECK_MSG(!strcmp(h->name, want->name) && n == want->nbytes && !memcmp(data, want->data, n),
                      "record %d (%s) differs", i, h->name);
        free(data);
        i++;
    }
    if (rc == 0 && copies) CHECK_MSG(i == copies * n_recs, "%d records, expected %d", i, copies * n_recs);
    return rc;
}

static void test_writer_frames(void)
{
    snprintf(path_z, sizeof path_z, "%s/s.llmt", check_tmpdir());
    snprintf(path_raw, sizeof path_raw, "%s/s.raw", check_tmpdir());
    make_records();
    write_stream(path_z, 0);
    write_stream(path_raw, 1);
    z.p = check_slurp(path_z, &z.n), raw.p = check_slurp(path_raw, &raw.n);
    CHECK(raw.n > 13 * (1u << 20) && z.n > 0);
    /* walk the frames; decode each alone */
    size_t pos = 0, at = 0, frames = 0, cap = 2 * LLM_FRAME_BYTES;
    unsigned char *out = malloc(cap);
    int sizes_ok = 1;
    while (pos < z.n) {
        size_t fs = ZSTD_findFrameCompressedSize(z.p + pos, z.n - pos);
        if (!CHECK_MSG(!ZSTD_isError(fs), "frame %zu: %s", frames, ZSTD_getErrorName(fs))) break;
        size_t n = ZSTD_decompress(out, cap, z.p + pos, fs);
        if (!CHECK_MSG(!ZSTD_isError(n), "frame %zu: %s", frames, ZSTD_getErrorName(n))) break;
        int last = pos + fs == z.n;
        if (last ? n == 0 || n > LLM_FRAME_BYTES : n != LLM_FRAME_BYTES) sizes_ok = 0;
        CHECK_MSG(at + n <= raw.n && !memcmp(out, raw.p + at, n), "frame %zu content differs", frames);
        at += n, pos += fs, frames++;
    }
    CHECK_MSG(sizes_ok, "every frame but the last holds exactly %u raw bytes", LLM_FRAME_BYTES);
    CHECK(at == raw.n);
    CHECK_MSG(frames == (raw.n + LLM_FRAME_BYTES - 1) / LLM_FRAME_BYTES, "%zu frames", frames);
    free(out);
    /* the normal reader gives the payloads back */
    llm_error err = {0};
    llm_reader *r;
    CHECK_OK(llm_reader_open(&r, path_z, &err), err);
    CHECK_OK(read_records(r, 1, &err), err);
    llm_reader_close(r);
}

static void test_zstdcat_agrees(void)
{
    if (system("zstdcat --version >/dev/null 2>&1") != 0) {
        check_skip("zstdcat not found");
        return;
    }
    char cmd[1200], out[600];
    snprintf(out, sizeof out, "%s/zcat.out", check_tmpdir());
    snprintf(cmd, sizeof cmd, "zstdcat '%s' > '%s'", path_z, out);
    CHECK(system(cmd) == 0);
    buf b;
    b.p = check_slurp(out, &b.n);
    CHECK(b.n == raw.n && !memcmp(b.p, raw.p, raw.n));
    free(b.p);
}

static void test_parallel_bytes(void)
{
    llm_error err = {0};
    const size_t chunks[] = {1 << 17, 777, 5 << 20};
    for (int t = 1; t <= 4; t++)
        for (int c = 0; c < 3; c++) {
            buf b;
            CHECK_OK(pz_all(path_z, t, chunks[c], &b, &err), err);
            CHECK_MSG(b.n == raw.n && !memcmp(b.p, raw.p, raw.n), "threads %d, reads of %zu: %zu bytes differ from the raw stream",
                      t, chunks[c], b.n);
            free(b.p);
        }
    /* a reader on top */
    llm_pzstd *p;
    llm_reader *r;
    CHECK_OK(llm_pzstd_open(&p, path_z, 2, &err), err);
    CHECK_OK(llm_pzstd_reader_open(&r, p, &err), err);
    CHECK_OK(read_records(r, 1, &err), err);
    llm_reader_close(r);
    llm_pzstd_close(p);
    CHECK(llm_pzstd_open(&p, path_z, 0, &err) == LLM_ERR_ARG);
}

/* From a pipe fed in small writes by another process. */
static void test_pipe(void)
{
    int fds[2];
    if (!CHECK(pipe(fds) == 0)) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        for (size_t o = 0; o < z.n; o += 10007) {
            size_t k = z.n - o < 10007 ? z.n - o : 10007;
            if (write(fds[1], z.p + o, k) != (ssize_t)k) _exit(1);
        }
        _exit(0);
    }
    close(fds[1]);
    llm_error err = {0};
    buf b;
    CHECK_OK(pz_all_fd(fds[0], NULL, 3, 1 << 16, &b, &err), err);
    CHECK(b.n == raw.n && !memcmp(b.p, raw.p, raw.n));
    free(b.p);
    close(fds[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* closing while the input is still open and a frame half there must not hang */
    CHECK(pipe(fds) == 0);
    CHECK(write(fds[1], z.p, 1000) == 1000);
    llm_pzstd *p;
    CHECK_OK(llm_pzstd_open_fd(&p, fds[0], "pipe", 2, &err), err);
    llm_pzstd_close(p);
    close(fds[0]), close(fds[1]);
}

/* Raw input, a concatenation z + skippable frame + raw + z, and an empty input. */
static void test_raw_concat_empty(void)
{
    llm_error err = {0};
    buf b;
    CHECK_OK(pz_all(path_raw, 2, 1 << 17, &b, &err), err);
    CHECK(b.n == raw.n && !memcmp(b.p, raw.p, raw.n));
    free(b.p);
    /* a skippable frame (magic 0x184D2A53, 5 bytes) between the first two frames */
    size_t f0 = ZSTD_findFrameCompressedSize(z.p, z.n);
    const unsigned char skip[] = {0x53, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    size_t n = z.n + sizeof skip + raw.n + z.n;
    unsigned char *cat = malloc(n);
    memcpy(cat, z.p, f0);
    memcpy(cat + f0, skip, sizeof skip);
    memcpy(cat + f0 + sizeof skip, z.p + f0, z.n - f0);
    memcpy(cat + z.n + sizeof skip, raw.p, raw.n);
    memcpy(cat + z.n + sizeof skip + raw.n, z.p, z.n);
    char path[600];
    snprintf(path, sizeof path, "%s/cat.llmt", check_tmpdir());
    spit(path, cat, n);
    free(cat);
    CHECK_OK(pz_all(path, 2, 1 << 17, &b, &err), err);
    /* after a raw stream everything passes through: the reader decodes the rest */
    CHECK(b.n == 2 * raw.n + z.n && !memcmp(b.p, raw.p, raw.n) && !memcmp(b.p + raw.n, raw.p, raw.n) &&
          !memcmp(b.p + 2 * raw.n, z.p, z.n));
    free(b.p);
    llm_pzstd *p;
    llm_reader *r;
    CHECK_OK(llm_pzstd_open(&p, path, 2, &err), err);
    CHECK_OK(llm_pzstd_reader_open(&r, p, &err), err);
    CHECK_OK(read_records(r, 3, &err), err);
    llm_reader_close(r);
    llm_pzstd_close(p);
    /* empty: no bytes, and on top the normal reader's answer */
    snprintf(path, sizeof path, "%s/empty.llmt", check_tmpdir());
    spit(path, "", 0);
    CHECK_OK(pz_all(path, 2, 100, &b, &err), err);
    CHECK(b.n == 0);
    free(b.p);
    const llm_record *h;
    llm_error e1 = {0}, e2 = {0};
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    int rc1 = llm_reader_next(r, &h, &e1);
    llm_reader_close(r);
    CHECK_OK(llm_pzstd_open(&p, path, 2, &err), err);
    CHECK_OK(llm_pzstd_reader_open(&r, p, &err), err);
    int rc2 = llm_reader_next(r, &h, &e2);
    llm_reader_close(r);
    llm_pzstd_close(p);
    CHECK_MSG(rc1 == rc2 && !strcmp(e1.msg, e2.msg), "empty: %d '%s' vs %d '%s'", rc1, e1.msg, rc2, e2.msg);
}

/* Damaged input: pzstd gives the first min_good bytes of the raw stream
 * (the frames before the fault; a damaged frame's streamed bytes may follow),
 * then want_code (0: a clean end); the reader on top fails with the
 * code the normal reader gives. */
static void check_damaged(const char *what, const unsigned char *p, size_t n, size_t min_good, int want_code)
{
    char path[600];
    snprintf(path, sizeof path, "%s/bad.llmt", check_tmpdir());
    spit(path, p, n);
    for (int t = 1; t <= 3; t += 2) {
        llm_error err = {0};
        buf b;
        int rc = pz_all(path, t, 1 << 16, &b, &err);
        CHECK_MSG(rc == want_code, "%s, %d threads: code %d (%s), want %d", what, t, rc, err.msg, want_code);
        CHECK_MSG(!want_code || !strncmp(err.msg, path, strlen(path)),
                  "%s: the message names the input: %s", what, err.msg);
        CHECK_MSG(b.n >= min_good && b.n <= raw.n && !memcmp(b.p, raw.p, min_good),
                  "%s: %zu good bytes before the error, want at least %zu", what, b.n, min_good);
        free(b.p);
    }
    llm_error e1 = {0}, e2 = {0}, err = {0};
    llm_reader *r;
    llm_pzstd *pz;
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    int rc1 = read_records(r, 0, &e1);
    llm_reader_close(r);
    CHECK_OK(llm_pzstd_open(&pz, path, 2, &err), err);
    CHECK_OK(llm_pzstd_reader_open(&r, pz, &err), err);
    int rc2 = read_records(r, 0, &e2);
    llm_reader_close(r);
    llm_pzstd_close(pz);
    CHECK_MSG(rc1 < 0 && rc1 == rc2, "%s: reader %d (%s), through pzstd %d (%s)", what, rc1, e1.msg, rc2, e2.msg);
    CHECK_MSG(strstr(e2.msg, path) == e2.msg, "%s: %s", what, e2.msg);
}

static void test_damaged(void)
{
    size_t f0 = ZSTD_findFrameCompressedSize(z.p, z.n);
    size_t f1 = ZSTD_findFrameCompressedSize(z.p + f0, z.n - f0);
    size_t f2 = ZSTD_findFrameCompressedSize(z.p + f0 + f1, z.n - f0 - f1);
    unsigned char *p = malloc(z.n);
    /* truncated: in the first frame, in the third, one byte short */
    check_damaged("cut in frame 0", z.p, f0 / 2, 0, LLM_ERR_TRUNCATED);
    check_damaged("cut in frame 2", z.p, f0 + f1 + f2 / 3, 2 * LLM_FRAME_BYTES, LLM_ERR_TRUNCATED);
    check_damaged("last byte cut", z.p, z.n - 1, raw.n - LLM_FRAME_BYTES, LLM_ERR_TRUNCATED);
    /* cut at a frame boundary: every byte comes, then the missing end record */
    check_damaged("cut between frames", z.p, f0 + f1, 2 * LLM_FRAME_BYTES, 0);
    /* a flipped byte in the middle of frame 2's blocks */
    memcpy(p, z.p, z.n);
    p[f0 + f1 + f2 / 2] ^= 0x5a;
    {
        llm_error e1 = {0};
        llm_reader *r;
        char path[600];
        snprintf(path, sizeof path, "%s/flip.llmt", check_tmpdir());
        spit(path, p, z.n);
        CHECK(llm_reader_open(&r, path, &e1) == 0);
        int rc = read_records(r, 0, &e1);
        llm_reader_close(r);
        CHECK_MSG(rc == LLM_ERR_CHECKSUM || rc == LLM_ERR_FORMAT, "flip: %d %s", rc, e1.msg);
        check_damaged("flipped byte", p, z.n, 2 * LLM_FRAME_BYTES, rc);
    }
    /* a wrong checksum (the frame's last 4 bytes) */
    memcpy(p, z.p, z.n);
    p[f0 + f1 + f2 - 2] ^= 0x01;
    check_damaged("checksum", p, z.n, 2 * LLM_FRAME_BYTES, LLM_ERR_CHECKSUM);
    free(p);
}

/* Frames no worker decodes whole: over the compressed limit, over the
 * decompressed limit with and without a content size in the header. */
static void test_large_frames(void)
{
    llm_error err = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/big.zst", check_tmpdir());
    size_t n = LLM_PZSTD_MAX_FRAME + (1u << 20);
    unsigned char *data = malloc(2 * n + 10);
    for (size_t i = 0; i < n; i++) data[i] = (unsigned char)(check_uniform(&rng) * 256);
    size_t zcap = ZSTD_compressBound(2 * n + 10);
    unsigned char *zb = malloc(zcap);
    /* incompressible: one frame larger than the limit, then a small frame */
    size_t k1 = ZSTD_compress(zb, zcap, data, n, 1);
    size_t k2 = ZSTD_compress(zb + k1, zcap - k1, "tail", 4, 1);
    CHECK(!ZSTD_isError(k1) && !ZSTD_isError(k2) && k1 > LLM_PZSTD_MAX_FRAME);
    spit(path, zb, k1 + k2);
    buf b;
    CHECK_OK(pz_all(path, 2, 1 << 17, &b, &err), err);
    CHECK(b.n == n + 4 && !memcmp(b.p, data, n) && !memcmp(b.p + n, "tail", 4));
    free(b.p);
    /* 2n + 10 bytes of zeros: tiny compressed, too large decompressed */
    memset(data, 0, 2 * n + 10);
    for (int with_size = 0; with_size < 2; with_size++) {
        size_t k;
        if (with_size) {
            k = ZSTD_compress(zb, zcap, data, 2 * n + 10, 3);
        } else { /* the streaming API without a pledged size leaves the size out */
            ZSTD_CCtx *c = ZSTD_createCCtx();
            ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
            ZSTD_inBuffer ib = {data, 2 * n + 10, 0};
            ZSTD_outBuffer ob = {zb, zcap, 0};
            size_t left;
            do left = ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_end);
            while (left && !ZSTD_isError(left));
            k = ZSTD_isError(left) ? left : ob.pos;
            ZSTD_freeCCtx(c);
        }
        CHECK(!ZSTD_isError(k) && k < LLM_PZSTD_MAX_FRAME);
        CHECK((ZSTD_getFrameContentSize(zb, k) == ZSTD_CONTENTSIZE_UNKNOWN) == !with_size);
        spit(path, zb, k);
        CHECK_OK(pz_all(path, 3, 1 << 20, &b, &err), err);
        CHECK_MSG(b.n == 2 * n + 10 && !memcmp(b.p, data, b.n), "zeros, size %s: %zu bytes",
                  with_size ? "given" : "left out", b.n);
        free(b.p);
    }
    free(zb);
    free(data);
}

/* ---- the rules both readers enforce (lib/zframe, llm-tensor(5)) ---- */

/* Records read and the final code; *e gets the message. */
static int count_records(llm_reader *r, int *records, llm_error *e)
{
    const llm_record *h;
    int rc;
    *records = 0;
    while ((rc = llm_reader_next(r, &h, e)) > 0) (*records)++;
    return rc;
}

/* Reads p[0..n) with the stream reader and over pzstd on 1 and 3 threads;
 * checks all three end alike (code, records, message) and returns the
 * stream reader's code, its message in *e. */
static int read_both(const char *what, const unsigned char *p, size_t n, int *records, llm_error *e)
{
    char path[600];
    snprintf(path, sizeof path, "%s/rule.llmt", check_tmpdir());
    spit(path, p, n);
    llm_error err = {0};
    llm_reader *r;
    *e = (llm_error){0};
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    int rc = count_records(r, records, e);
    llm_reader_close(r);
    for (int t = 1; t <= 3; t += 2) {
        llm_pzstd *pz;
        llm_error e2 = {0};
        int n2 = -1, rc2 = -100;
        CHECK_OK(llm_pzstd_open(&pz, path, t, &err), err);
        if (llm_pzstd_reader_open(&r, pz, &err) == 0) {
            rc2 = count_records(r, &n2, &e2);
            llm_reader_close(r);
        }
        llm_pzstd_close(pz);
        CHECK_MSG(rc2 == rc && n2 == *records && !strcmp(e2.msg, e->msg),
                  "%s: the reader ends with %d after %d records (%s), over pzstd on %d threads with %d after %d (%s)",
                  what, rc, *records, e->msg, t, rc2, n2, e2.msg);
    }
    return rc;
}

/* A frame of raw blocks (no checksum, no content size) with window descriptor wd. */
static size_t put_frame(unsigned char *o, unsigned wd, const unsigned char *p, size_t n)
{
    size_t at = 0;
    const unsigned char h[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, (unsigned char)wd};
    memcpy(o, h, sizeof h), at += sizeof h;
    uint32_t bh = (uint32_t)n << 3 | 1; /* one last raw block (n is small) */
    o[at++] = (unsigned char)bh, o[at++] = (unsigned char)(bh >> 8), o[at++] = (unsigned char)(bh >> 16);
    memcpy(o + at, p, n);
    return at + n;
}

static size_t put_zstd(unsigned char *o, const unsigned char *p, size_t n)
{
    size_t k = ZSTD_compress(o, ZSTD_compressBound(n), p, n, 3);
    CHECK(!ZSTD_isError(k));
    return k;
}

/* The window limit (2^27) and where compressed and raw input may switch
 * (only between streams), on a small raw stream s: both readers accept and
 * reject alike, with the same messages. */
static void test_framing_rules(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/small.raw", check_tmpdir());
    llm_error err = {0};
    llm_writer *w;
    CHECK_OK(llm_writer_open(&w, path, &(llm_writer_opts){.raw = 1}, &err), err);
    const float v[6] = {1, 2, 3, 4, 5, 6};
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = "a", .dtype = LLM_DTYPE_F32,
                      .shape = llm_shape_make(2, (int64_t[]){2, 3})};
    CHECK_OK(llm_writer_record(w, &rec, v, &err), err);
    rec.name = "b";
    CHECK_OK(llm_writer_record(w, &rec, v, &err), err);
    CHECK_OK(llm_writer_close(w, &err), err);
    buf s;
    s.p = check_slurp(path, &s.n);
    size_t cap = 8 * ZSTD_compressBound(s.n) + 64, n;
    unsigned char *in = malloc(cap), *inner = malloc(cap);
    int records;
    llm_error e;
    char want[128];

    const unsigned char skip[] = {0x5a, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 'h', 'i'};
    /* windows: 2^27 is allowed, 2^27 + 2^24 (descriptor 0x89) and 2^30 are not */
    n = put_frame(in, 0x88, s.p, s.n);
    CHECK_MSG(read_both("window 2^27", in, n, &records, &e) == 0 && records == 2, "%s", e.msg);
    for (unsigned wd = 0x89; wd <= 0xa0; wd += 0xa0 - 0x89) {
        unsigned long long window = (1ull << (10 + (wd >> 3))) + (1ull << (10 + (wd >> 3))) / 8 * (wd & 7);
        n = put_frame(in, wd, s.p, s.n);
        CHECK(read_both("large window", in, n, &records, &e) == LLM_ERR_LIMIT);
        snprintf(want, sizeof want, ": byte 0: zstd frame window of %llu bytes", window);
        CHECK_MSG(strstr(e.msg, want), "window %llu: %s", window, e.msg);
        /* the same frame after a whole stream: it is the frame that fails */
        memcpy(in, s.p, s.n);
        n = s.n + put_frame(in + s.n, wd, s.p, s.n);
        CHECK(read_both("large window second", in, n, &records, &e) == LLM_ERR_LIMIT && records == 2);
        snprintf(want, sizeof want, ": byte %zu: zstd frame window", s.n);
        CHECK_MSG(strstr(e.msg, want), "%s", e.msg);
        /* and after a skippable frame */
        memcpy(in, skip, sizeof skip);
        n = sizeof skip + put_frame(in + sizeof skip, wd, s.p, s.n);
        CHECK(read_both("large window after a skippable frame", in, n, &records, &e) == LLM_ERR_LIMIT);
    }

    /* a frame that ends inside the stream, then raw bytes: refused at every
     * cut; a frame or a skippable frame and then a frame instead: fine */
    for (size_t cut = 1; cut < s.n; cut++) {
        n = put_zstd(in, s.p, cut);
        memcpy(in + n, s.p + cut, s.n - cut), n += s.n - cut;
        CHECK_MSG(read_both("raw after a frame", in, n, &records, &e) == LLM_ERR_FORMAT, "cut %zu: %s", cut, e.msg);
        snprintf(want, sizeof want, ": byte %zu: raw bytes follow a zstd frame inside a stream", cut);
        CHECK_MSG(strstr(e.msg, want), "cut %zu: %s", cut, e.msg);
        n = put_zstd(in, s.p, cut);
        memcpy(in + n, skip, sizeof skip), n += sizeof skip;
        memcpy(in + n, s.p + cut, s.n - cut), n += s.n - cut;
        CHECK_MSG(read_both("raw after a skippable frame", in, n, &records, &e) == LLM_ERR_FORMAT, "cut %zu", cut);
        n = put_zstd(in, s.p, cut);
        memcpy(in + n, skip, sizeof skip), n += sizeof skip;
        n += put_zstd(in + n, s.p + cut, s.n - cut);
        CHECK_MSG(read_both("frame, skippable, frame", in, n, &records, &e) == 0 && records == 2, "cut %zu: %s",
                  cut, e.msg);
    }

    /* switches between streams: raw, zstd, raw, skippable, zstd, raw */
    n = 0;
    memcpy(in + n, s.p, s.n), n += s.n;
    n += put_zstd(in + n, s.p, s.n);
    memcpy(in + n, s.p, s.n), n += s.n;
    memcpy(in + n, skip, sizeof skip), n += sizeof skip;
    n += put_zstd(in + n, s.p, s.n);
    memcpy(in + n, s.p, s.n), n += s.n;
    CHECK_MSG(read_both("switches between streams", in, n, &records, &e) == 0 && records == 10, "%s", e.msg);

    /* a frame inside a frame: its content is not a raw stream */
    n = put_zstd(inner, s.p, s.n);
    n = put_zstd(in, inner, n);
    CHECK(read_both("a frame inside a frame", in, n, &records, &e) == LLM_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, ": not a tensor stream"), "%s", e.msg);
    free(in), free(inner), free(s.p);
}

int main(void)
{
    RUN(test_writer_frames);
    RUN(test_zstdcat_agrees);
    RUN(test_parallel_bytes);
    RUN(test_pipe);
    RUN(test_raw_concat_empty);
    RUN(test_damaged);
    RUN(test_large_frames);
    RUN(test_framing_rules);
    free(z.p), free(raw.p);
    for (int i = 0; i < n_recs; i++) free(recs[i].data);
    return check_done();
}
