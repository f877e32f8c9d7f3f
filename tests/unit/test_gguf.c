/* Unit tests for lib/gguf and lib/gguf_blocks: GGUF files built byte by byte
 * here (from the layout in ggml's docs/gguf.md) parse into the values they
 * hold; every malformed one gives its one-line error; what the writer writes
 * reads back; Q4_0 and Q8_0 blocks decode to values worked out by hand, and
 * Q4_0 converts to our int4 codes and back unchanged.  (Every block format is
 * checked against numpy decoders in tests/cli/test_gguf.sh.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"
#include "gguf_blocks.h"
#include "tensor.h"

/* ---- a GGUF file, byte by byte ---- */

typedef struct buf {
    unsigned char b[8192];
    size_t n;
} buf;

static void put(buf *f, const void *p, size_t n)
{
    memcpy(f->b + f->n, p, n);
    f->n += n;
}
static void u8(buf *f, unsigned v) { f->b[f->n++] = (unsigned char)v; }
static void u32(buf *f, unsigned long long v) { check_put_le(f->b + f->n, v, 4), f->n += 4; }
static void u64(buf *f, unsigned long long v) { check_put_le(f->b + f->n, v, 8), f->n += 8; }
static void str(buf *f, const char *s) { u64(f, strlen(s)), put(f, s, strlen(s)); }
static void pad(buf *f, size_t a) { while (f->n % a) u8(f, 0); }

/* The header: magic, version, counts. */
static void head(buf *f, unsigned version, unsigned long long nt, unsigned long long nkv)
{
    f->n = 0;
    put(f, "GGUF", 4);
    u32(f, version);
    u64(f, nt);
    u64(f, nkv);
}

static void tensor_info(buf *f, const char *name, int nd, const long long *ne, unsigned type, unsigned long long off)
{
    str(f, name);
    u32(f, (unsigned)nd);
    for (int d = 0; d < nd; d++) u64(f, (unsigned long long)ne[d]);
    u32(f, type);
    u64(f, off);
}

static const char *save(const buf *f)
{
    const char *path = check_path("t.gguf");
    FILE *o = fopen(path, "wb");
    fwrite(f->b, 1, f->n, o);
    fclose(o);
    return path;
}

/* A good file: five kinds of metadata, an F32 [2, 4] and a Q4_0 [32] tensor. */
static void good(buf *f)
{
    head(f, 3, 2, 5);
    str(f, "general.architecture"), u32(f, LLM_GGUF_STRING), str(f, "llama");
    str(f, "n.u32"), u32(f, LLM_GGUF_U32), u32(f, 4000000000u);
    str(f, "n.f32"), u32(f, LLM_GGUF_F32), u32(f, 0x3fc00000u); /* 1.5 */
    str(f, "n.i8"), u32(f, LLM_GGUF_I8), u8(f, 0xfe);            /* -2 */
    str(f, "list"), u32(f, LLM_GGUF_ARRAY), u32(f, LLM_GGUF_STRING), u64(f, 2), str(f, "a"), str(f, "bc");
    tensor_info(f, "w", 2, (long long[]){4, 2}, LLM_GGML_F32, 0);
    tensor_info(f, "q", 1, (long long[]){32}, LLM_GGML_Q4_0, 32);
    pad(f, 32);
    for (int i = 0; i < 8; i++) {
        float v = (float)i;
        put(f, &v, 4);
    }
    u8(f, 0x00), u8(f, 0x3c); /* d = 1.0 in f16 */
    for (int j = 0; j < 16; j++) u8(f, (unsigned)(j | (15 - j) << 4));
}

static void test_good_file(void)
{
    buf f;
    good(&f);
    llm_gguf g;
    llm_error err = {0};
    CHECK_OK(llm_gguf_open(&g, save(&f), &err), err);
    CHECK(g.version == 3 && g.n_kv == 5 && g.n_tensors == 2 && g.alignment == 32 && g.data_start % 32 == 0);
    const char *s = NULL;
    uint64_t u = 0;
    double d = 0;
    CHECK(llm_gguf_get_str(&g, "general.architecture", &s, &err) == 1 && !strcmp(s, "llama"));
    CHECK(llm_gguf_get_u64(&g, "n.u32", &u, &err) == 1 && u == 4000000000u);
    CHECK(llm_gguf_get_f64(&g, "n.f32", &d, &err) == 1 && d == 1.5);
    CHECK(llm_gguf_get_f64(&g, "n.i8", &d, &err) == 1 && d == -2);
    CHECK(llm_gguf_get_u64(&g, "n.i8", &u, &err) == LLM_ERR_FORMAT && strstr(err.msg, "n.i8 is i8, not a count"));
    CHECK(llm_gguf_get_u64(&g, "absent", &u, &err) == 0);
    CHECK(llm_gguf_get_str(&g, "n.u32", &s, &err) == LLM_ERR_FORMAT);
    const llm_gguf_kv *list = llm_gguf_find(&g, "list");
    CHECK(list && list->elem == LLM_GGUF_STRING && list->n == 2 &&
          !strcmp(((llm_gguf_str *)list->data)[1].s, "bc"));
    const llm_gguf_tensor *w = llm_gguf_tensor_named(&g, "w"), *q = llm_gguf_tensor_named(&g, "q");
    CHECK(w && w->numel == 8 && w->nbytes == 32 && w->ne[0] == 4 && w->ne[1] == 2 && w->ne[2] == 1);
    CHECK(q && q->nbytes == 18 && q->offset == 32);
    float x[8];
    CHECK_OK(llm_gguf_read(&g, w, 0, x, sizeof x, &err), err);
    CHECK(x[0] == 0 && x[7] == 7);
    CHECK(llm_gguf_read(&g, w, 4, x, sizeof x, &err) == LLM_ERR_ARG);
    unsigned char raw[18];
    CHECK_OK(llm_gguf_read(&g, q, 0, raw, 18, &err), err);
    float y[32];
    llm_gguf_decode(LLM_GGML_Q4_0, raw, 32, y);
    /* element j < 16: low nibble j - 8; element j + 16: high nibble 15 - j - 8 */
    CHECK(y[0] == -8 && y[15] == 7 && y[16] == 7 && y[31] == -8);
    llm_gguf_close(&g);
    llm_gguf_close(&g); /* harmless twice */
}

/* Opening the file f must fail with code and a message holding want. */
static void refused(buf *f, int code, const char *want)
{
    llm_gguf g;
    llm_error err = {0};
    int rc = llm_gguf_open(&g, save(f), &err);
    CHECK_MSG(rc == code && strstr(err.msg, want) && !strchr(err.msg, '\n'), "rc %d, '%s', wanted %d '%s'", rc,
              err.msg, code, want);
    if (rc == 0) llm_gguf_close(&g);
}

static void test_bad_headers(void)
{
    buf f;
    good(&f);
    memcpy(f.b, "GGUX", 4);
    refused(&f, LLM_ERR_FORMAT, "not a GGUF file (no GGUF magic)");
    f.n = 3;
    refused(&f, LLM_ERR_FORMAT, "not a GGUF file");
    head(&f, 1, 0, 0);
    refused(&f, LLM_ERR_FORMAT, "GGUF version 1 (versions 2 and 3 are read)");
    head(&f, 0x03000000, 0, 0); /* a big-endian file */
    refused(&f, LLM_ERR_FORMAT, "GGUF version 50331648");
    head(&f, 3, 0, 1ull << 60);
    refused(&f, LLM_ERR_FORMAT, "1152921504606846976 metadata entries cannot fit");
    head(&f, 3, 1ull << 40, 0);
    refused(&f, LLM_ERR_FORMAT, "tensors cannot fit");
    head(&f, 2, 0, 0);
    f.n -= 4;
    refused(&f, LLM_ERR_TRUNCATED, "truncated: the metadata count at byte 16 needs 8 bytes, 4 are left");
    head(&f, 2, 0, 0); /* empty, version 2: fine */
    llm_gguf g;
    llm_error err = {0};
    CHECK_OK(llm_gguf_open(&g, save(&f), &err), err);
    llm_gguf_close(&g);
}

static void test_bad_metadata(void)
{
    buf f;
    head(&f, 3, 0, 1), u64(&f, 1ull << 62), u64(&f, 0);
    refused(&f, LLM_ERR_TRUNCATED, "a key at byte 24 is 4611686018427387904 bytes long, more than the file has left");
    head(&f, 3, 0, 1), str(&f, "k"), u32(&f, 13), u32(&f, 0);
    refused(&f, LLM_ERR_FORMAT, "k: unknown value type 13");
    head(&f, 3, 0, 1), str(&f, "k"), u32(&f, LLM_GGUF_STRING), u64(&f, 1000), put(&f, "abc", 3);
    refused(&f, LLM_ERR_TRUNCATED, "k at byte 37 is 1000 bytes long, more than the file has left");
    head(&f, 3, 0, 1), str(&f, "k"), u32(&f, LLM_GGUF_ARRAY), u32(&f, LLM_GGUF_U32), u64(&f, 1ull << 61), u32(&f, 0);
    refused(&f, LLM_ERR_TRUNCATED, "k: an array of 2305843009213693952 values of type u32, more than the file has left");
    head(&f, 3, 0, 1), str(&f, "k"), u32(&f, LLM_GGUF_ARRAY), u32(&f, LLM_GGUF_STRING), u64(&f, 100), str(&f, "x");
    refused(&f, LLM_ERR_TRUNCATED, "k: an array of 100 values of type string");
    head(&f, 3, 0, 1), str(&f, "k"), u32(&f, LLM_GGUF_ARRAY), u32(&f, LLM_GGUF_ARRAY), u64(&f, 0);
    refused(&f, LLM_ERR_FORMAT, "k: an array of arrays (not supported)");
    head(&f, 3, 0, 1), str(&f, "k"), u32(&f, LLM_GGUF_ARRAY), u32(&f, 99), u64(&f, 0);
    refused(&f, LLM_ERR_FORMAT, "k: unknown array element type 99");
    head(&f, 3, 0, 1), str(&f, "k"), u32(&f, LLM_GGUF_BOOL), u8(&f, 2);
    refused(&f, LLM_ERR_FORMAT, "k: bool value 2");
    head(&f, 3, 0, 2), str(&f, "k"), u32(&f, LLM_GGUF_U8), u8(&f, 1), str(&f, "k"), u32(&f, LLM_GGUF_U8), u8(&f, 2);
    refused(&f, LLM_ERR_FORMAT, "key k given twice");
    head(&f, 3, 0, 1), u64(&f, 3), put(&f, "a\0b", 3), u32(&f, LLM_GGUF_U8), u8(&f, 1);
    refused(&f, LLM_ERR_FORMAT, "key 0 holds a NUL byte");
    head(&f, 3, 0, 1), str(&f, "general.alignment"), u32(&f, LLM_GGUF_U32), u32(&f, 48);
    refused(&f, LLM_ERR_FORMAT, "general.alignment must be a u32 power of two up to 2^30 (it is u32 48)");
    head(&f, 3, 0, 1), str(&f, "general.alignment"), u32(&f, LLM_GGUF_U64), u64(&f, 64);
    refused(&f, LLM_ERR_FORMAT, "general.alignment must be a u32 power of two");
}

/* The start of a file of nt tensors and one key, alignment 16; finish
 * pads it and adds data zero bytes after the tensor infos. */
static void with_tensors(buf *f, int nt)
{
    head(f, 3, (unsigned long long)nt, 1);
    str(f, "general.alignment"), u32(f, LLM_GGUF_U32), u32(f, 16);
}

static void finish(buf *f, size_t data)
{
    pad(f, 16);
    memset(f->b + f->n, 0, data);
    f->n += data;
}

static void test_bad_tensors(void)
{
    buf f;
    with_tensors(&f, 1), tensor_info(&f, "t", 5, (long long[]){1, 1, 1, 1, 1}, 0, 0), finish(&f, 64);
    refused(&f, LLM_ERR_FORMAT, "t: 5 dimensions (want 1..4)");
    with_tensors(&f, 1), tensor_info(&f, "t", 0, NULL, 0, 0), finish(&f, 64);
    refused(&f, LLM_ERR_FORMAT, "t: 0 dimensions");
    with_tensors(&f, 1), tensor_info(&f, "t", 3, (long long[]){1ll << 32, 1ll << 32, 1ll << 32}, 0, 0);
    refused(&f, LLM_ERR_FORMAT, "t: dimension 1 is 4294967296: the element count overflows");
    with_tensors(&f, 1), tensor_info(&f, "t", 1, (long long[]){-1}, 0, 0);
    refused(&f, LLM_ERR_FORMAT, "t: dimension 0 is 18446744073709551615");
    with_tensors(&f, 1), tensor_info(&f, "t", 1, (long long[]){4}, 5, 0), finish(&f, 64);
    refused(&f, LLM_ERR_FORMAT, "t: unknown ggml type 5");
    with_tensors(&f, 1), tensor_info(&f, "t", 1, (long long[]){48}, LLM_GGML_Q4_0, 0), finish(&f, 64);
    refused(&f, LLM_ERR_FORMAT, "t: a row of 48 is not a whole number of Q4_0 blocks of 32");
    with_tensors(&f, 1), tensor_info(&f, "t", 1, (long long[]){4}, 0, 8), finish(&f, 64);
    refused(&f, LLM_ERR_FORMAT, "t: offset 8 is not a multiple of the alignment 16");
    with_tensors(&f, 1), tensor_info(&f, "t", 1, (long long[]){4}, 0, 64), finish(&f, 64);
    refused(&f, LLM_ERR_TRUNCATED, "t: its 16 bytes at offset 64 end past the file's 64 data bytes");
    with_tensors(&f, 1), tensor_info(&f, "t", 1, (long long[]){4}, 0, 1ull << 63), finish(&f, 64);
    refused(&f, LLM_ERR_TRUNCATED, "end past the file's");
    with_tensors(&f, 2), tensor_info(&f, "a", 1, (long long[]){8}, 0, 0);
    tensor_info(&f, "b", 1, (long long[]){4}, 0, 16), finish(&f, 64);
    refused(&f, LLM_ERR_FORMAT, "tensors a and b overlap (offsets 0 and 16)");
    with_tensors(&f, 2), tensor_info(&f, "a", 1, (long long[]){4}, 0, 0);
    tensor_info(&f, "a", 1, (long long[]){4}, 0, 16), finish(&f, 64);
    refused(&f, LLM_ERR_FORMAT, "tensor a given twice");
    with_tensors(&f, 1), tensor_info(&f, "t", 1, (long long[]){4}, 0, 0);
    refused(&f, LLM_ERR_TRUNCATED, "truncated: the data would start at byte");
    /* a pipe is refused: its tensors could not be read out of order */
    int fds[2];
    CHECK(pipe(fds) == 0);
    llm_gguf g;
    llm_error err = {0};
    CHECK(llm_gguf_open_file(&g, fdopen(fds[0], "rb"), "pipe", &err) == LLM_ERR_IO &&
          strstr(err.msg, "pipe: a GGUF file is read from a regular file"));
    close(fds[1]);
}

static void test_writer_round_trip(void)
{
    llm_gguf_out *o;
    llm_error err = {0};
    CHECK_OK(llm_gguf_out_new(&o, &err), err);
    CHECK_OK(llm_gguf_out_str(o, "general.architecture", "llama", &err), err);
    CHECK_OK(llm_gguf_out_u32(o, "x.u32", 7, &err), err);
    CHECK_OK(llm_gguf_out_f32(o, "x.f32", 0.25f, &err), err);
    CHECK_OK(llm_gguf_out_bool(o, "x.bool", 1, &err), err);
    CHECK_OK(llm_gguf_out_str_array(o, "x.strs", (const char *[]){"<0x00>", "b"}, NULL, 2, &err), err);
    CHECK_OK(llm_gguf_out_f32_array(o, "x.f32s", (float[]){1, -2}, 2, &err), err);
    CHECK_OK(llm_gguf_out_i32_array(o, "x.i32s", (int32_t[]){6, -3}, 2, &err), err);
    CHECK(llm_gguf_out_u32(o, "x.u32", 8, &err) == LLM_ERR_ARG);
    CHECK(llm_gguf_out_tensor(o, "a", 1, (int64_t[]){3}, &err) == 0);
    CHECK(llm_gguf_out_tensor(o, "b", 2, (int64_t[]){32, 2}, &err) == 1);
    const char *path = check_path("w.gguf");
    FILE *file = fopen(path, "w+b");
    CHECK_OK(llm_gguf_out_begin(o, fileno(file), path, &err), err);
    CHECK(llm_gguf_out_u32(o, "late", 1, &err) == LLM_ERR_STATE);
    CHECK(llm_gguf_out_start(o, 1, LLM_GGML_F32, &err) == LLM_ERR_STATE); /* out of order */
    CHECK_OK(llm_gguf_out_start(o, 0, LLM_GGML_F32, &err), err);
    CHECK_OK(llm_gguf_out_write(o, (float[]){1, 2, 3}, 12, &err), err);
    CHECK(llm_gguf_out_write(o, (float[]){4}, 4, &err) == LLM_ERR_STATE);
    CHECK(llm_gguf_out_finish(o, &err) == LLM_ERR_STATE); /* b not written */
    CHECK_OK(llm_gguf_out_start(o, 1, LLM_GGML_Q4_0, &err), err);
    unsigned char blocks[36] = {0};
    CHECK_OK(llm_gguf_out_write(o, blocks, sizeof blocks, &err), err);
    CHECK_OK(llm_gguf_out_finish(o, &err), err);
    llm_gguf_out_free(o);
    fclose(file);
    llm_gguf g;
    CHECK_OK(llm_gguf_open(&g, path, &err), err);
    double d;
    uint64_t u;
    const llm_gguf_kv *strs = llm_gguf_find(&g, "x.strs"), *i32s = llm_gguf_find(&g, "x.i32s");
    CHECK(llm_gguf_get_u64(&g, "x.u32", &u, &err) == 1 && u == 7 && llm_gguf_get_f64(&g, "x.f32", &d, &err) == 1 &&
          d == 0.25 && llm_gguf_find(&g, "x.bool")->v.u == 1);
    CHECK(strs && strs->n == 2 && !strcmp(((llm_gguf_str *)strs->data)[0].s, "<0x00>"));
    CHECK(i32s && llm_gguf_array_f64(i32s, 1) == -3 && llm_gguf_array_f64(llm_gguf_find(&g, "x.f32s"), 1) == -2);
    const llm_gguf_tensor *a = llm_gguf_tensor_named(&g, "a"), *b = llm_gguf_tensor_named(&g, "b");
    CHECK(a && b && a->type == LLM_GGML_F32 && b->type == LLM_GGML_Q4_0 && a->offset == 0 && b->offset == 32 &&
          b->ne[0] == 32 && b->ne[1] == 2 && b->nbytes == 36);
    CHECK(g.file_size == g.data_start + 96); /* the last tensor padded too */
    float x[3];
    CHECK_OK(llm_gguf_read(&g, a, 0, x, sizeof x, &err), err);
    CHECK(x[0] == 1 && x[2] == 3);
    llm_gguf_close(&g);
}

static void test_blocks(void)
{
    /* Q8_0: d = 0.5, q = -128..? : x = q d */
    unsigned char b[34] = {0x00, 0x38}; /* 0.5 */
    for (int j = 0; j < 32; j++) b[2 + j] = (unsigned char)(j * 8 - 128);
    float y[32];
    llm_gguf_decode(LLM_GGML_Q8_0, b, 32, y);
    CHECK(y[0] == -64 && y[31] == (31 * 8 - 128) * 0.5f);
    /* Q4_1: d = 2, m = -1: x = 2 q - 1 */
    unsigned char c[20] = {0x00, 0x40, 0x00, 0xbc};
    for (int j = 0; j < 16; j++) c[4 + j] = (unsigned char)(j | 3 << 4);
    llm_gguf_decode(LLM_GGML_Q4_1, c, 32, y);
    CHECK(y[0] == -1 && y[15] == 29 && y[16] == 5);
    /* Q4_0 -> int4 -> Q4_0, with a negative scale */
    unsigned char q[2 * 18], back[2 * 18];
    unsigned long long s = 5;
    for (int i = 0; i < 36; i++) q[i] = (unsigned char)(check_uniform(&s) * 256);
    q[0] = 0x00, q[1] = 0xbc; /* -1 */
    q[18] = 0x66, q[19] = 0x2e; /* 0.0999755859375 */
    uint8_t codes[32];
    float scales[2], w[64], v[64];
    llm_gguf_q4_0_to_int4(q, 2, codes, scales);
    CHECK(scales[0] == -1 && scales[1] == llm_f16_to_f32(0x2e66));
    llm_gguf_decode(LLM_GGML_Q4_0, q, 64, w);
    for (int k = 0; k < 64; k++) v[k] = scales[k / 32] * (float)(((codes[k / 2] >> (4 * (k & 1))) & 15) - 8);
    CHECK(!memcmp(v, w, sizeof v));
    llm_gguf_int4_to_q4_0(codes, scales, 2, back);
    CHECK(!memcmp(q, back, sizeof q));
    CHECK(llm_gguf_f16_exact(0.5f) && llm_gguf_f16_exact(-65504.0f) && !llm_gguf_f16_exact(0.1f) &&
          !llm_gguf_f16_exact(1e-9f));
    unsigned char h[4];
    llm_gguf_encode_float(LLM_GGML_BF16, (float[]){1.0f, -2.0f}, 2, h);
    CHECK(h[0] == 0x80 && h[1] == 0x3f && h[2] == 0x00 && h[3] == 0xc0);
    CHECK(llm_gguf_decodable(LLM_GGML_Q6_K) && !llm_gguf_decodable(16) && !llm_gguf_type_name(4) &&
          !strcmp(llm_gguf_type_name(LLM_GGML_Q5_K), "Q5_K"));
}

int main(void)
{
    RUN(test_good_file);
    RUN(test_bad_headers);
    RUN(test_bad_metadata);
    RUN(test_bad_tensors);
    RUN(test_writer_round_trip);
    RUN(test_blocks);
    return check_done();
}
