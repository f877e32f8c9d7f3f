/* Unit tests for lib/stream: round trips of every dtype (whole and chunked,
 * shuffled or not, compressed or raw), concatenation, a live pipe between two
 * processes, truncation and flipped bytes at every offset, hand-made bad
 * headers, and the writer's all-or-nothing files. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include "check.h"
#include "stream.h"

static unsigned long long rng = 12345;

/* A random tensor description and payload. */
typedef struct sample {
    char name[32];
    llm_dtype dtype;
    llm_shape shape;
    unsigned flags;
    unsigned char *data;
    uint64_t nbytes;
} sample;

static void sample_make(sample *s, int i, llm_dtype dtype, int shuffle)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "layers.%d.w", i);
    s->dtype = dtype;
    s->shape.ndim = (int)(check_uniform(&rng) * 4); /* 0..3 dims */
    for (int d = 0; d < s->shape.ndim; d++) s->shape.dim[d] = 1 + (int64_t)(check_uniform(&rng) * 37);
    if (i % 5 == 4) s->shape.dim[0] = 0, s->shape.ndim = s->shape.ndim ? s->shape.ndim : 1;
    if (i % 7 == 6) s->shape = llm_shape_make(2, (int64_t[]){300, 301}); /* several shuffle blocks */
    s->flags = shuffle && llm_dtype_bits(dtype) >= 16 ? LLM_FLAG_SHUFFLE : 0;
    llm_payload_bytes(dtype, &s->shape, &s->nbytes, NULL);
    s->data = malloc(s->nbytes + 1);
    for (uint64_t k = 0; k < s->nbytes; k++) s->data[k] = (unsigned char)(check_uniform(&rng) * 256);
    if (dtype == LLM_DTYPE_BF16 || dtype == LLM_DTYPE_F32) /* realistic floats too */
        for (uint64_t k = 0; k + 4 <= s->nbytes; k += 4) {
            float v = (float)check_normal(&rng);
            memcpy(s->data + k, &v, 4);
        }
}

static llm_record sample_record(const sample *s, const llm_attr *attrs, int n_attrs)
{
    return (llm_record){.kind = LLM_RECORD_TENSOR, .name = s->name, .dtype = s->dtype,
                        .shape = s->shape, .flags = s->flags, .attrs = attrs, .n_attrs = n_attrs};
}

enum { N_SAMPLES = 2 * LLM_DTYPE_COUNT };
static sample samples[N_SAMPLES];
static const llm_attr attrs[] = {{"scheme", "int4"}, {"group", "128"}, {"note", ""}};

/* Writes all samples (plus a metadata record) to w, each in random-size chunks. */
static int write_samples(llm_writer *w, llm_error *err)
{
    llm_record meta = {.kind = LLM_RECORD_META, .name = "config", .dtype = LLM_DTYPE_U8,
                       .shape = llm_shape_make(1, (int64_t[]){5}), .attrs = attrs, .n_attrs = 2};
    LLM_TRY(llm_writer_record(w, &meta, "hello", err));
    for (int i = 0; i < N_SAMPLES; i++) {
        llm_record rec = sample_record(&samples[i], attrs, i % 4);
        LLM_TRY(llm_writer_begin(w, &rec, err));
        for (uint64_t at = 0; at < samples[i].nbytes;) {
            size_t n = 1 + (size_t)(check_uniform(&rng) * 70000);
            if (n > samples[i].nbytes - at) n = (size_t)(samples[i].nbytes - at);
            LLM_TRY(llm_writer_write(w, samples[i].data + at, n, err));
            at += n;
        }
        LLM_TRY(llm_writer_end_record(w, err));
    }
    return 0;
}

/* Reads one stream's worth of records from r and compares with the samples. */
static int read_samples(llm_reader *r, llm_error *err)
{
    const llm_record *rec;
    if (!CHECK_MSG(llm_reader_next(r, &rec, err) == 1, "first record: %s", err->msg)) return -1;
    CHECK(rec->kind == LLM_RECORD_META && strcmp(rec->name, "config") == 0);
    CHECK(rec->n_attrs == 2 && strcmp(llm_record_attr(rec, "group"), "128") == 0);
    char hello[6] = {0};
    CHECK(llm_reader_read(r, hello, 100, err) == 5 && strcmp(hello, "hello") == 0);
    for (int i = 0; i < N_SAMPLES; i++) {
        const sample *s = &samples[i];
        if (!CHECK_MSG(llm_reader_next(r, &rec, err) == 1, "record %d: %s", i, err->msg)) return -1;
        CHECK(strcmp(rec->name, s->name) == 0 && rec->dtype == s->dtype && rec->flags == s->flags);
        CHECK(rec->shape.ndim == s->shape.ndim && rec->nbytes == s->nbytes);
        for (int d = 0; d < s->shape.ndim; d++) CHECK(rec->shape.dim[d] == s->shape.dim[d]);
        CHECK(rec->n_attrs == i % 4);
        unsigned char *got = malloc(s->nbytes + 1);
        uint64_t at = 0;
        while (at < s->nbytes) {
            size_t n = 1 + (size_t)(check_uniform(&rng) * 50000);
            int64_t k = llm_reader_read(r, got + at, n, err);
            if (!CHECK_MSG(k > 0, "read: %s", err->msg)) break;
            at += (uint64_t)k;
        }
        CHECK(at == s->nbytes && memcmp(got, s->data, s->nbytes) == 0);
        free(got);
    }
    return 0;
}

static void make_samples(int shuffle)
{
    for (int i = 0; i < N_SAMPLES; i++) {
        free(samples[i].data);
        sample_make(&samples[i], i, (llm_dtype)(i % LLM_DTYPE_COUNT), shuffle && i % 2);
    }
}

static char *path_in_tmp(const char *name)
{
    static char buf[4][600];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, 600, "%s/%s", check_tmpdir(), name);
    return p;
}

static void write_file(const char *path, int raw, int level)
{
    llm_error err = {0};
    llm_writer *w;
    llm_writer_opts o = {.level = level, .raw = raw};
    CHECK_OK(llm_writer_open(&w, path, &o, &err), err);
    CHECK_OK(write_samples(w, &err), err);
    CHECK_OK(llm_writer_close(w, &err), err);
}

static void test_roundtrip_file(void)
{
    llm_error err = {0};
    for (int variant = 0; variant < 4; variant++) {
        int raw = variant & 1, shuffle = variant >> 1;
        make_samples(shuffle);
        const char *path = path_in_tmp("rt.llmt");
        write_file(path, raw, 1 + variant);
        llm_reader *r;
        CHECK_OK(llm_reader_open(&r, path, &err), err);
        read_samples(r, &err);
        const llm_record *rec;
        CHECK_MSG(llm_reader_next(r, &rec, &err) == 0, "no clean end: %s", err.msg);
        int zstd;
        llm_reader_counts(r, NULL, NULL, &zstd);
        CHECK(zstd == !raw);
        llm_reader_close(r);
    }
}

static void test_read_all_and_skip(void)
{
    llm_error err = {0};
    make_samples(1);
    const char *path = path_in_tmp("all.llmt");
    write_file(path, 0, 3);
    llm_reader *r;
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    const llm_record *rec;
    int i = -1;
    while (llm_reader_next(r, &rec, &err) > 0) {
        if (i >= 0 && i % 3 == 0) { /* every third is skipped, the rest read whole */
            llm_tensor t;
            CHECK_OK(llm_reader_read_tensor(r, &t, &err), err);
            uint64_t nbytes = 0;
            CHECK(llm_payload_bytes(t.dtype, &t.shape, &nbytes, NULL) == 0 && nbytes == samples[i].nbytes);
            CHECK(memcmp(t.data, samples[i].data, samples[i].nbytes) == 0);
            llm_tensor_free(&t);
        }
        i++;
    }
    CHECK(i == N_SAMPLES && err.code == 0);
    llm_reader_close(r);
}

static void test_concatenation(void)
{
    llm_error err = {0};
    make_samples(1);
    const char *a = path_in_tmp("a.llmt"), *b = path_in_tmp("b.llmt");
    for (int mix = 0; mix < 4; mix++) { /* zstd+zstd, raw+zstd, zstd+raw, raw+raw */
        write_file(a, mix & 1, 1);
        write_file(b, mix >> 1, 1);
        size_t la, lb;
        unsigned char *da = check_slurp(a, &la), *db = check_slurp(b, &lb);
        unsigned char *both = malloc(la + lb);
        memcpy(both, da, la);
        memcpy(both + la, db, lb);
        llm_reader *r;
        CHECK_OK(llm_reader_open_mem(&r, both, la + lb, "cat", &err), err);
        read_samples(r, &err);
        read_samples(r, &err);
        const llm_record *rec;
        CHECK_MSG(llm_reader_next(r, &rec, &err) == 0, "mix %d: %s", mix, err.msg);
        llm_reader_close(r);
        free(da), free(db), free(both);
    }
}

/* The writer in a child process sends record 1, then waits for the parent
 * to confirm it has read it whole before sending record 2: this only finishes
 * if every record is flushed through the pipe as soon as it is written. */
static void test_pipe_flushes_each_record(void)
{
    llm_error err = {0};
    make_samples(1);
    int data[2], ack[2];
    if (!CHECK(pipe(data) == 0 && pipe(ack) == 0)) return;
    pid_t pid = fork();
    if (pid == 0) {
        close(data[0]), close(ack[1]);
        llm_writer *w;
        if (llm_writer_open_fd(&w, data[1], "pipe", NULL, &err) < 0) _exit(3);
        for (int i = 0; i < N_SAMPLES; i++) {
            llm_record rec = sample_record(&samples[i], NULL, 0);
            if (llm_writer_record(w, &rec, samples[i].data, &err) < 0) _exit(4);
            char c;
            if (read(ack[0], &c, 1) != 1) _exit(5);
        }
        _exit(llm_writer_close(w, &err) < 0 ? 6 : 0);
    }
    close(data[1]), close(ack[0]);
    llm_reader *r;
    CHECK_OK(llm_reader_open_fd(&r, data[0], "pipe", &err), err);
    const llm_record *rec;
    int i = 0, rc;
    alarm(20); /* a missing flush would hang here: fail instead */
    while ((rc = llm_reader_next(r, &rec, &err)) > 0) {
        void *buf;
        size_t n;
        CHECK_OK(llm_reader_read_all(r, &buf, &n, &err), err);
        CHECK(n == samples[i].nbytes && memcmp(buf, samples[i].data, n) == 0);
        free(buf);
        i++;
        CHECK(write(ack[1], "k", 1) == 1);
    }
    alarm(0);
    CHECK_MSG(rc == 0 && i == N_SAMPLES, "rc %d after %d records: %s", rc, i, err.msg);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    llm_reader_close(r);
    close(data[0]), close(ack[1]);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211u;
    return h;
}

/* Reads a whole stream from memory; returns the first error code, or 0.
 * *digest (when given) gets a hash of every name, shape, attribute and payload. */
static int read_everything_digest(const unsigned char *buf, size_t len, llm_error *err,
                                  uint64_t *digest)
{
    uint64_t h = 14695981039346656037u;
    llm_reader *r;
    LLM_TRY(llm_reader_open_mem(&r, buf, len, "mem", err));
    const llm_record *rec;
    int rc;
    unsigned char chunk[4096];
    while ((rc = llm_reader_next(r, &rec, err)) > 0) {
        h = fnv(h, rec->name, strlen(rec->name) + 1);
        h = fnv(h, &rec->shape, sizeof rec->shape);
        for (int i = 0; i < rec->n_attrs; i++) {
            h = fnv(h, rec->attrs[i].key, strlen(rec->attrs[i].key) + 1);
            h = fnv(h, rec->attrs[i].value, strlen(rec->attrs[i].value) + 1);
        }
        int64_t k;
        while ((k = llm_reader_read(r, chunk, sizeof chunk, err)) > 0) h = fnv(h, chunk, (size_t)k);
        if (k < 0) {
            rc = (int)k;
            break;
        }
    }
    llm_reader_close(r);
    if (digest) *digest = h;
    return rc;
}

static int read_everything(const unsigned char *buf, size_t len, llm_error *err)
{
    return read_everything_digest(buf, len, err, NULL);
}

static unsigned char *small_stream(int raw, size_t *len)
{
    const char *path = path_in_tmp("small.llmt");
    llm_error err = {0};
    llm_writer *w;
    llm_writer_opts o = {.raw = raw};
    CHECK_OK(llm_writer_open(&w, path, &o, &err), err);
    float x[40];
    for (int i = 0; i < 40; i++) x[i] = (float)i / 7;
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = "x", .dtype = LLM_DTYPE_F32,
                      .shape = llm_shape_make(2, (int64_t[]){4, 10}), .flags = LLM_FLAG_SHUFFLE,
                      .attrs = attrs, .n_attrs = 2};
    CHECK_OK(llm_writer_record(w, &rec, x, &err), err);
    rec.name = "y";
    rec.flags = 0;
    CHECK_OK(llm_writer_record(w, &rec, x, &err), err);
    CHECK_OK(llm_writer_close(w, &err), err);
    return check_slurp(path, len);
}

static void test_truncation_everywhere(void)
{
    for (int raw = 0; raw < 2; raw++) {
        size_t len;
        unsigned char *buf = small_stream(raw, &len);
        llm_error err = {0};
        CHECK_MSG(read_everything(buf, len, &err) == 0, "%s", err.msg);
        for (size_t cut = 0; cut < len; cut++) {
            memset(&err, 0, sizeof err);
            int rc = read_everything(buf, cut, &err);
            if (!CHECK_MSG(rc == LLM_ERR_TRUNCATED || (rc == LLM_ERR_FORMAT && cut < 4),
                           "raw %d, cut at %zu of %zu: rc %d (%s)", raw, cut, len, rc, err.msg))
                break;
        }
        free(buf);
    }
}

/* Every flipped bit either gives an error or (for bits zstd's frame header
 * does not use for the data, such as the window size) leaves what is read
 * exactly as written: nothing wrong is ever delivered silently. */
static void test_flipped_bytes_everywhere(void)
{
    size_t len;
    unsigned char *buf = small_stream(0, &len);
    llm_error err = {0};
    uint64_t good, got;
    CHECK_OK(read_everything_digest(buf, len, &err, &good), err);
    int errors = 0;
    for (size_t at = 0; at < len; at++)
        for (int bit = 0; bit < 8; bit++) {
            buf[at] ^= (unsigned char)(1 << bit);
            int rc = read_everything_digest(buf, len, &err, &got);
            buf[at] ^= (unsigned char)(1 << bit);
            errors += rc < 0;
            if (!CHECK_MSG(rc < 0 || got == good, "flip of bit %d at byte %zu of %zu went unnoticed",
                           bit, at, len))
                goto out;
        }
    CHECK_MSG(errors > (int)(len * 8) * 9 / 10, "only %d of %zu flips were errors", errors, len * 8);
out:
    free(buf);
}

/* Raw streams built byte by byte, each with one thing wrong. */
typedef struct bytes {
    unsigned char b[256];
    size_t n;
} bytes;

static void put(bytes *s, const void *p, size_t n)
{
    memcpy(s->b + s->n, p, n);
    s->n += n;
}
static void put8(bytes *s, unsigned v) { s->b[s->n++] = (unsigned char)v; }
static void put_le(bytes *s, uint64_t v, int n) { check_put_le(s->b + s->n, v, n), s->n += (size_t)n; }
static void put16(bytes *s, unsigned v) { put_le(s, v, 2); }
static void put32(bytes *s, uint32_t v) { put_le(s, v, 4); }
static void put64(bytes *s, uint64_t v) { put_le(s, v, 8); }

/* header; record 'T' f32 "w" [2] with one attribute; payload; end record.
 * `fault` chooses one field to break. */
static bytes build(int fault)
{
    bytes s = {0};
    put(&s, fault == 1 ? "LLMX" : "LLMT", 4);
    put16(&s, fault == 2 ? 2 : 1);
    put16(&s, 0);
    put8(&s, fault == 3 ? 'Q' : 'T');
    put8(&s, fault == 4 ? 77 : LLM_DTYPE_F32);
    put8(&s, fault == 5 ? 9 : 1);
    put8(&s, fault == 6 ? 0x80 : 0);
    if (fault == 7) put16(&s, 0);
    else if (fault == 8) put16(&s, 60000);
    else if (fault == 9) put16(&s, 1), put8(&s, '\n');
    else put16(&s, 1), put8(&s, 'w');
    put16(&s, fault == 10 ? 5000 : 1);
    put16(&s, 1), put8(&s, fault == 11 ? '=' : 'k');
    put32(&s, fault == 12 ? 0xffffffffu : 1), put8(&s, 'v');
    put64(&s, fault == 13 ? UINT64_C(1) << 60 : 2);
    put64(&s, fault == 14 ? 9 : 8);
    put32(&s, 0x3f800000u), put32(&s, 0x40000000u);
    put8(&s, 'E');
    put64(&s, fault == 15 ? 2 : 1);
    return s;
}

static void test_bad_headers(void)
{
    static const struct {
        int code;
        const char *words;
    } want[] = {
        {0, ""},
        {LLM_ERR_FORMAT, "not a tensor stream"},
        {LLM_ERR_FORMAT, "version 2"},
        {LLM_ERR_FORMAT, "unknown record kind"},
        {LLM_ERR_FORMAT, "unknown dtype"},
        {LLM_ERR_FORMAT, "dimensions"},
        {LLM_ERR_FORMAT, "unknown flags"},
        {LLM_ERR_FORMAT, "name length 0"},
        {LLM_ERR_FORMAT, "name length 60000"},
        {LLM_ERR_FORMAT, "control characters"},
        {LLM_ERR_LIMIT, "5000 attributes"},
        {LLM_ERR_FORMAT, "attribute key"},
        {LLM_ERR_LIMIT, "attribute value"},
        {LLM_ERR_LIMIT, "limit 2^48"},
        {LLM_ERR_FORMAT, "payload length 9"},
        {LLM_ERR_FORMAT, "end record counts 2"},
    };
    for (int fault = 0; fault < (int)(sizeof want / sizeof want[0]); fault++) {
        bytes s = build(fault);
        llm_error err = {0};
        int rc = read_everything(s.b, s.n, &err);
        CHECK_MSG(rc == want[fault].code && strstr(err.msg, want[fault].words),
                  "fault %d: rc %d, '%s'; wanted %d with '%s'", fault, rc, err.msg, want[fault].code,
                  want[fault].words);
        if (fault) CHECK_MSG(strncmp(err.msg, "mem: byte ", 10) == 0, "no location: %s", err.msg);
    }
    llm_error err = {0};
    CHECK(read_everything((const unsigned char *)"", 0, &err) == LLM_ERR_FORMAT);
    CHECK(strstr(err.msg, "empty input") != NULL);
    const unsigned char junk[] = "this is plain text, not a stream\n";
    CHECK(read_everything(junk, sizeof junk - 1, &err) == LLM_ERR_FORMAT);
    const unsigned char bad_zstd[] = {0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    CHECK(read_everything(bad_zstd, sizeof bad_zstd, &err) < 0);
}

/* A header that claims a huge tensor with little data behind it must fail
 * as truncated, after allocating only about what arrived. */
static void test_huge_claim_small_data(void)
{
    bytes s = {0};
    put(&s, "LLMT", 4), put16(&s, 1), put16(&s, 0);
    put8(&s, 'T'), put8(&s, LLM_DTYPE_F32), put8(&s, 2), put8(&s, 0);
    put16(&s, 1), put8(&s, 'w'), put16(&s, 0);
    put64(&s, UINT64_C(1) << 20), put64(&s, UINT64_C(1) << 20); /* 4 TiB */
    put64(&s, UINT64_C(1) << 42);
    for (int i = 0; i < 64; i++) put8(&s, (unsigned)i);
    llm_error err = {0};
    llm_reader *r;
    CHECK_OK(llm_reader_open_mem(&r, s.b, s.n, "mem", &err), err);
    const llm_record *rec;
    CHECK(llm_reader_next(r, &rec, &err) == 1);
    void *data = NULL;
    size_t n;
    CHECK(llm_reader_read_all(r, &data, &n, &err) == LLM_ERR_TRUNCATED);
    CHECK(data == NULL);
    llm_reader_close(r);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_writer_all_or_nothing(void)
{
    llm_error err = {0};
    char dir[600];
    snprintf(dir, sizeof dir, "%s/atomic", check_tmpdir());
    mkdir(dir, 0777);
    char path[700];
    snprintf(path, sizeof path, "%s/out.llmt", dir);
    llm_writer *w;
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    float x[3] = {1, 2, 3};
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = "x", .dtype = LLM_DTYPE_F32,
                      .shape = llm_shape_make(1, (int64_t[]){3})};
    CHECK_OK(llm_writer_record(w, &rec, x, &err), err);
    CHECK(access(path, F_OK) != 0); /* not there until closed */
    llm_writer_abort(w);
    CHECK(count_files(dir) == 0);
    /* an existing file survives a failed rewrite */
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    CHECK_OK(llm_writer_record(w, &rec, x, &err), err);
    CHECK_OK(llm_writer_close(w, &err), err);
    size_t before_len, after_len;
    unsigned char *before = check_slurp(path, &before_len);
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    CHECK_OK(llm_writer_begin(w, &rec, &err), err);
    CHECK_OK(llm_writer_write(w, x, 4, &err), err);
    CHECK(llm_writer_close(w, &err) == LLM_ERR_STATE); /* closed mid-record */
    unsigned char *after = check_slurp(path, &after_len);
    CHECK(before_len == after_len && memcmp(before, after, before_len) == 0);
    CHECK(count_files(dir) == 1);
    free(before), free(after);
    CHECK(llm_writer_open(&w, "/nonexistent-dir/x.llmt", NULL, &err) == LLM_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent-dir/x.llmt") != NULL);
}

static void test_writer_misuse(void)
{
    llm_error err = {0};
    llm_writer *w;
    const char *path = path_in_tmp("misuse.llmt");
    CHECK_OK(llm_writer_open(&w, path, NULL, &err), err);
    float x[4] = {0};
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = "x", .dtype = LLM_DTYPE_F32,
                      .shape = llm_shape_make(1, (int64_t[]){3})};
    CHECK(llm_writer_write(w, x, 4, &err) == LLM_ERR_STATE);
    CHECK_OK(llm_writer_begin(w, &rec, &err), err);
    CHECK(llm_writer_begin(w, &rec, &err) == LLM_ERR_STATE);
    CHECK(llm_writer_write(w, x, 16, &err) == LLM_ERR_ARG);
    CHECK_OK(llm_writer_write(w, x, 8, &err), err);
    CHECK(llm_writer_end_record(w, &err) == LLM_ERR_ARG && strstr(err.msg, "4 payload bytes missing"));
    CHECK_OK(llm_writer_write(w, x, 4, &err), err);
    CHECK_OK(llm_writer_end_record(w, &err), err);
    llm_record bad = rec;
    bad.name = "tab\there";
    CHECK(llm_writer_begin(w, &bad, &err) == LLM_ERR_FORMAT);
    bad = rec;
    bad.dtype = LLM_DTYPE_U8;
    bad.flags = LLM_FLAG_SHUFFLE;
    CHECK(llm_writer_begin(w, &bad, &err) == LLM_ERR_FORMAT);
    llm_attr eq = {"a=b", "c"};
    bad = rec;
    bad.attrs = &eq;
    bad.n_attrs = 1;
    CHECK(llm_writer_begin(w, &bad, &err) == LLM_ERR_FORMAT);
    CHECK_OK(llm_writer_close(w, &err), err);
    llm_writer_opts o = {.level = 99};
    CHECK(llm_writer_open(&w, path, &o, &err) == LLM_ERR_ARG);
    llm_error e2 = {0};
    CHECK(read_everything((unsigned char *)"LLMT", 4, &e2) == LLM_ERR_TRUNCATED);
}

/* Shuffle must help on bf16-rounded floats: the low bytes are all zero. */
static void test_shuffle_raises_ratio(void)
{
    llm_error err = {0};
    enum { N = 1 << 18 };
    float *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++) x[i] = llm_bf16_to_f32(llm_f32_to_bf16((float)check_normal(&rng)));
    size_t len[2];
    for (int sh = 0; sh < 2; sh++) {
        const char *path = path_in_tmp("ratio.llmt");
        llm_writer *w;
        llm_writer_opts o = {.level = 1};
        CHECK_OK(llm_writer_open(&w, path, &o, &err), err);
        llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = "x", .dtype = LLM_DTYPE_F32,
                          .shape = llm_shape_make(1, (int64_t[]){N}), .flags = sh ? LLM_FLAG_SHUFFLE : 0};
        CHECK_OK(llm_writer_record(w, &rec, x, &err), err);
        CHECK_OK(llm_writer_close(w, &err), err);
        free(check_slurp(path, &len[sh]));
    }
    CHECK_MSG((double)len[0] / (double)len[1] > 1.2, "plain %zu bytes, shuffled %zu", len[0], len[1]);
    free(x);
}

int main(void)
{
    RUN(test_roundtrip_file);
    RUN(test_read_all_and_skip);
    RUN(test_concatenation);
    RUN(test_pipe_flushes_each_record);
    RUN(test_truncation_everywhere);
    RUN(test_flipped_bytes_everywhere);
    RUN(test_bad_headers);
    RUN(test_huge_claim_small_data);
    RUN(test_writer_all_or_nothing);
    RUN(test_writer_misuse);
    RUN(test_shuffle_raises_ratio);
    for (int i = 0; i < N_SAMPLES; i++) free(samples[i].data);
    return check_done();
}
