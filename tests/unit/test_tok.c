/* Unit tests for lib/tok: the byte-level tokenizer; BPE encoding checked
 * against ids worked out by hand on a small vocabulary (merges by score, ties,
 * byte fallback, UTF-8 code points, the dummy prefix) and against a plain
 * O(n^2) transcription of llama2.c's merge loop on random vocabularies;
 * decoding (BOS-space stripping, <0xNN> pieces); the ids-only kind; the
 * tokenizer record through a stream, and bad records rejected. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stream.h"
#include "tok.h"
#include "tok_ref.h"

/* ---- a small hand-made vocabulary ----
 * 0..2 the specials, 3..258 the byte pieces <0x00>..<0xFF> (id = byte + 3),
 * then these, with their scores: */
static const struct {
    const char *piece;
    float score;
} extra[] = {
    {" ", 0},        /* 259 */
    {"a", 0},        /* 260 */
    {"b", 0},        /* 261 */
    {"c", 0},        /* 262 */
    {"ab", -1},      /* 263 */
    {"bc", -0.5f},   /* 264 */
    {" a", -2},      /* 265 */
    {" ab", -3},     /* 266 */
    {"abc", -4},     /* 267 */
    {"\xc3\xa9", 0}, /* 268 e-acute, two bytes */
    {"ca", -1.5f},   /* 269 */
    {"aa", -1},      /* 270: ties with "ab" */
    {"\x80\x80\x80\x80", 0}, /* 271: four continuation bytes */
    {"<0x4>", 0},    /* 272: looks like a byte piece, is not */
    {"bb", -1e10f},  /* 273: at run.c's floor: never merges */
    {"d", 0},        /* 274 */
    {"dd", -2},      /* 275 */
};
enum { N_EXTRA = sizeof extra / sizeof extra[0], V_SMALL = 259 + N_EXTRA };

static void small_vocab(llm_tok *t, int with_space)
{
    static char bytes[256][8];
    const char *pieces[V_SMALL];
    float scores[V_SMALL];
    pieces[0] = "<unk>", pieces[1] = "\n<s>\n", pieces[2] = "\n</s>\n";
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        pieces[b + 3] = bytes[b];
    }
    for (int i = 0; i < 259; i++) scores[i] = 0;
    for (int i = 0; i < N_EXTRA; i++) {
        pieces[259 + i] = extra[i].piece;
        scores[259 + i] = extra[i].score;
    }
    if (!with_space) pieces[259] = "never"; /* no " " piece: the prefix falls back to <0x20> */
    llm_error err = {0};
    CHECK_OK(llm_tok_bpe(t, V_SMALL, pieces, NULL, scores, 1, 2, &err), err);
}

static void test_bytes_tokenizer(void)
{
    llm_tok t;
    llm_tok_bytes(&t);
    int32_t ids[4];
    CHECK(llm_tok_encode_text(&t, "h\xffi", 3, ids, NULL) == 3 && ids[0] == 'h' && ids[1] == 255 && ids[2] == 'i');
    char piece[LLM_TOK_MAX_PIECE];
    CHECK(llm_tok_decode(&t, 'h', piece) == 1 && piece[0] == 'h');
    CHECK(llm_tok_decode_next(&t, t.bos, ' ', piece) == 1 && piece[0] == ' '); /* no stripping */
    CHECK(llm_tok_decode(&t, t.bos, piece) == 0 && llm_tok_decode(&t, t.eos, piece) == 0);
    CHECK(t.vocab == 258 && t.bos == 256 && t.eos == 257);
    llm_error err = {0};
    CHECK(llm_tok_has_text(&t, &err) == 0);
    llm_tok_free(&t); /* harmless */
}

static void test_bpe_merges(void)
{
    llm_tok t;
    small_vocab(&t, 1);
    /* "abc": [" ","a","b","c"] = 259 260 261 262; pairs " a" -2, "ab" -1, "bc" -0.5:
     * "bc" first -> 259 260 264; pairs " a" -2, "a"+"bc" = "abc" -4: " a" -> 265 264;
     * " abc" is no piece. */
    ENC(&t, "abc", 265, 264);
    /* "ab": 259 260 261; "ab" -1 beats " a" -2 -> 259 263; " ab" -3 -> 266. */
    ENC(&t, "ab", 266);
    /* "aab": 259 260 260 261; "aa" -1 and "ab" -1 tie: the leftmost, "aa", wins
     * -> 259 270 261; " aa" and "aab" are no pieces. */
    ENC(&t, "aab", 259, 270, 261);
    /* "ca": 259 262 260; " c" no, "ca" -1.5 -> 259 269. */
    ENC(&t, "ca", 259, 269);
    /* "bb" has score -1e10: not above run.c's floor, never merged. */
    ENC(&t, "bb", 259, 261, 261);
    /* "ddd": 259 274 274 274; "dd" at 1 and at 2 tie: the left one -> 259 275 274. */
    ENC(&t, "ddd", 259, 275, 274);
    /* "dddd": -> 259 275 274 274 -> then "dd" at 2 -> 259 275 275 ("dddd" is no piece). */
    ENC(&t, "dddd", 259, 275, 275);
    /* empty text: no dummy prefix, nothing */
    int32_t ids[4];
    CHECK(llm_tok_encode_text(&t, "", 0, ids, NULL) == 0);
    /* a single space: the prefix " " and " " ("  " is no piece) */
    ENC(&t, " ", 259, 259);
    llm_tok_free(&t);
    llm_tok_free(&t); /* twice is harmless */
}

static void test_bpe_utf8_and_bytes(void)
{
    llm_tok t;
    small_vocab(&t, 1);
    /* e-acute (C3 A9) is a piece: 259 268 */
    ENC(&t, "\xc3\xa9", 259, 268);
    /* e-grave (C3 A8) is not: its bytes, 0xC3 + 3 = 198 and 0xA8 + 3 = 171; the
     * pieces "<0xC3>" and "<0xA8>" merge with nothing. */
    ENC(&t, "\xc3\xa8", 259, 198, 171);
    /* a 4-byte emoji, F0 9F 98 80: 243 162 155 131 */
    ENC(&t, "\xf0\x9f\x98\x80", 259, 243, 162, 155, 131);
    /* five stray continuation bytes: one code point of four (piece 271), then
     * one byte on its own (0x80 + 3 = 131) */
    ENC(&t, "\x80\x80\x80\x80\x80", 259, 271, 131);
    /* ASCII followed by continuation bytes is one code point "a\x80\x80", which
     * is no piece: all three bytes fall back, 'a' included (0x61 + 3 = 100). */
    ENC(&t, "a\x80\x80", 259, 100, 131, 131);
    /* a NUL byte is a byte like any other, 0 + 3: 259 260 3 261, then " a" -> 265 3 261 */
    int32_t ids[8];
    CHECK(llm_tok_encode_text(&t, "a\0b", 3, ids, NULL) == 3 && ids[0] == 265 && ids[1] == 3 && ids[2] == 261);
    llm_tok_free(&t);

    /* without a " " piece the dummy prefix is the byte token <0x20> = 35 */
    small_vocab(&t, 0);
    ENC(&t, "c", 35, 262);
    llm_tok_free(&t);

    /* a vocabulary without byte pieces cannot encode an unknown character */
    const char *pieces[5] = {"<unk>", "<s>", "</s>", " ", "x"};
    float scores[5] = {0};
    llm_error err = {0};
    CHECK_OK(llm_tok_bpe(&t, 5, pieces, NULL, scores, 1, 2, &err), err);
    ENC(&t, "x", 3, 4);
    CHECK(llm_tok_encode_text(&t, "xy", 2, ids, &err) == LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "text byte 1 (0x79) has no token") != NULL, "%s", err.msg);
    llm_tok_free(&t);
}

static void test_bpe_decode(void)
{
    llm_tok t;
    small_vocab(&t, 1);
    char p[LLM_TOK_MAX_PIECE];
    CHECK(llm_tok_decode_next(&t, 1, 265, p) == 1 && p[0] == 'a');          /* " a" after BOS */
    CHECK(llm_tok_decode_next(&t, 260, 265, p) == 2 && !memcmp(p, " a", 2)); /* elsewhere */
    CHECK(llm_tok_decode(&t, 265, p) == 2 && !memcmp(p, " a", 2));
    CHECK(llm_tok_decode(&t, 198, p) == 1 && (unsigned char)p[0] == 0xC3);  /* <0xC3> */
    CHECK(llm_tok_decode(&t, 3, p) == 1 && p[0] == 0);                      /* <0x00> */
    CHECK(llm_tok_decode(&t, 272, p) == 5 && !memcmp(p, "<0x4>", 5));       /* not a byte */
    CHECK(llm_tok_decode(&t, 0, p) == 5 && !memcmp(p, "<unk>", 5));
    CHECK(llm_tok_decode(&t, 1, p) == 0 && llm_tok_decode(&t, 2, p) == 0);  /* BOS, EOS */
    CHECK(llm_tok_decode(&t, -1, p) == 0 && llm_tok_decode(&t, V_SMALL, p) == 0);
    /* BOS + encode + decode gives the text back (the prefix space dropped) */
    const char *text = "abc \xc3\xa9\xc3\xa8 aab\xf0\x9f\x98\x80!";
    int32_t ids[64];
    int64_t n = llm_tok_encode_text(&t, text, strlen(text), ids, NULL);
    char back[256];
    size_t at = 0;
    int32_t prev = 1;
    for (int64_t i = 0; i < n; i++) {
        at += (size_t)llm_tok_decode_next(&t, prev, ids[i], back + at);
        prev = ids[i];
    }
    CHECK_MSG(at == strlen(text) && !memcmp(back, text, at), "decoded '%.*s'", (int)at, back);
    const char *raw;
    CHECK(llm_tok_piece(&t, 198, &raw) == 6 && !memcmp(raw, "<0xC3>", 6));
    CHECK(llm_tok_piece(&t, V_SMALL, &raw) == -1);
    llm_tok_free(&t);
}

/* run.c's merge loop, transcribed plainly: O(n^2) with linear lookups. */
static long naive_merges; /* merges done, so the test knows it tested some */
static int naive_lookup(char **pieces, const int *lens, int V, const char *s, int n)
{
    for (int i = 0; i < V; i++)
        if (lens[i] == n && !memcmp(pieces[i], s, (size_t)n)) return i;
    return -1;
}

static int naive_encode(char **pieces, const int *lens, const float *scores, int V, const char *text,
                        int len, int32_t *out)
{
    int n = 0;
    if (len == 0) return 0;
    int sp = naive_lookup(pieces, lens, V, " ", 1);
    out[n++] = sp >= 0 ? sp : ' ' + 3;
    for (int i = 0; i < len;) {
        int j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = naive_lookup(pieces, lens, V, text + i, j - i);
        if (id >= 0) out[n++] = id;
        else
            for (int k = i; k < j; k++) out[n++] = (unsigned char)text[k] + 3;
        i = j;
    }
    char buf[64];
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_at = -1;
        for (int i = 0; i + 1 < n; i++) {
            int la = lens[out[i]], lb = lens[out[i + 1]];
            memcpy(buf, pieces[out[i]], (size_t)la);
            memcpy(buf + la, pieces[out[i + 1]], (size_t)lb);
            int id = naive_lookup(pieces, lens, V, buf, la + lb);
            if (id >= 0 && scores[id] > best) best = scores[id], best_id = id, best_at = i;
        }
        if (best_at < 0) break;
        out[best_at] = best_id;
        naive_merges++;
        memmove(out + best_at + 1, out + best_at + 2, (size_t)(n - best_at - 2) * sizeof *out);
        n--;
    }
    return n;
}

static void test_bpe_matches_plain_loop(void)
{
    unsigned long long rng = 99;
    static const char alphabet[] = "ab \xc3\xa9\x80z";
    int bad = 0, total = 0;
    for (int round = 0; round < 30 && !bad; round++) {
        /* specials, 256 byte pieces, then random strings over a small alphabet
         * with scores from a few values (many ties) */
        int V = 259 + 60;
        char **pieces = calloc((size_t)V, sizeof *pieces);
        int *lens = calloc((size_t)V, sizeof *lens);
        uint32_t *ulens = calloc((size_t)V, sizeof *ulens);
        float *scores = calloc((size_t)V, sizeof *scores);
        for (int i = 0; i < V; i++) {
            pieces[i] = calloc(16, 1);
            if (i < 3) lens[i] = sprintf(pieces[i], "<%d>", i);
            else if (i < 259) lens[i] = sprintf(pieces[i], "<0x%02X>", i - 3);
            else {
                int dup;
                do { /* distinct pieces */
                    lens[i] = 1 + (int)(check_uniform(&rng) * (i < 265 ? 1 : 5));
                    for (int k = 0; k < lens[i]; k++)
                        pieces[i][k] = alphabet[(int)(check_uniform(&rng) * (sizeof alphabet - 1))];
                    dup = naive_lookup(pieces, lens, i, pieces[i], lens[i]) >= 0;
                } while (dup);
                scores[i] = (float)(int)(check_uniform(&rng) * 4) - 3;
                if (check_uniform(&rng) < 0.05) scores[i] = -1e10f;
            }
            ulens[i] = (uint32_t)lens[i];
        }
        llm_tok t;
        llm_error err = {0};
        CHECK_OK(llm_tok_bpe(&t, V, (const char *const *)pieces, ulens, scores, 1, 2, &err), err);
        for (int s = 0; s < 40; s++) {
            char text[200];
            int len = (int)(check_uniform(&rng) * 150);
            for (int k = 0; k < len; k++) text[k] = alphabet[(int)(check_uniform(&rng) * (sizeof alphabet - 1))];
            int32_t want[256], got[256];
            int nw = naive_encode(pieces, lens, scores, V, text, len, want);
            int64_t ng = llm_tok_encode_text(&t, text, (size_t)len, got, NULL);
            total++;
            if (ng != nw || memcmp(want, got, (size_t)nw * sizeof *want)) {
                CHECK_MSG(0, "round %d text %d: %lld ids, the plain loop %d", round, s, (long long)ng, nw);
                bad = 1;
                break;
            }
        }
        llm_tok_free(&t);
        for (int i = 0; i < V; i++) free(pieces[i]);
        free(pieces);
        free(lens);
        free(ulens);
        free(scores);
    }
    CHECK_MSG(total == 30 * 40 && naive_merges > 5000, "%d texts, %ld merges", total, naive_merges);
}

static void test_bpe_long_text(void)
{
    llm_tok t;
    small_vocab(&t, 1);
    size_t len = 1 << 20;
    char *text = malloc(len);
    int32_t *ids = malloc(llm_tok_max_ids(&t, len) * sizeof *ids);
    for (size_t i = 0; i < len; i++) text[i] = "abcd "[i % 5];
    /* "abcd abcd ... abcd a" (2^20 = 5 * 209715 + 1 bytes) after the dummy
     * prefix: each " abcd" is " ","a","b","c","d"; "bc" (-0.5) merges first,
     * then " a" (-2): " a","bc","d" = 265 264 274 ("abc" -4 never gets its
     * turn: "a" is gone; "d " is no piece).  The last " a" is 265. */
    int64_t n = llm_tok_encode_text(&t, text, len, ids, NULL);
    CHECK_MSG(n == 209715 * 3 + 1, "%lld ids", (long long)n);
    CHECK(ids[0] == 265 && ids[1] == 264 && ids[2] == 274 && ids[3] == 265 && ids[n - 1] == 265);
    free(text);
    free(ids);
    llm_tok_free(&t);
}

static void test_ids_kind(void)
{
    llm_tok t;
    llm_error err = {0};
    CHECK_OK(llm_tok_ids(&t, 512, 1, 2, &err), err);
    CHECK(t.kind == LLM_TOK_IDS && t.vocab == 512);
    int32_t ids[4];
    CHECK(llm_tok_encode_text(&t, "hi", 2, ids, &err) == LLM_ERR_ARG);
    CHECK_MSG(!strcmp(err.msg, "this model has no tokenizer; give token ids with --ids"), "%s", err.msg);
    char p[LLM_TOK_MAX_PIECE];
    CHECK(llm_tok_decode(&t, 5, p) < 0);
    CHECK(llm_tok_has_text(&t, &err) == LLM_ERR_ARG);
    CHECK(llm_tok_ids(&t, 0, 1, 2, &err) == LLM_ERR_ARG);
    CHECK(llm_tok_ids(&t, 2, 1, 2, &err) == LLM_ERR_ARG);
    llm_tok_free(&t);
    /* bad BPE arguments */
    const char *pieces[2] = {"a", "b"};
    float scores[2] = {0};
    uint32_t lens[2] = {1, LLM_TOK_MAX_PIECE + 1};
    CHECK(llm_tok_bpe(&t, 2, pieces, lens, scores, -1, -1, &err) == LLM_ERR_ARG);
    CHECK(llm_tok_bpe(&t, 2, pieces, NULL, scores, 0, 5, &err) == LLM_ERR_ARG);
    llm_tok_free(&t);
}

/* ---- the record ---- */

static const char *path_in_tmp(const char *name)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", check_tmpdir(), name);
    return path;
}

/* Writes t to a stream file, reads it back into out. */

static void test_record_round_trip(void)
{
    llm_error err = {0};
    llm_tok t, back;
    small_vocab(&t, 1);
    t.scores[259] = NAN; /* any float survives, bit for bit */
    llm_tok_bytes(&back);
    CHECK_OK(tok_round_trip(&t, &back, &err), err);
    CHECK(back.kind == LLM_TOK_BPE && back.vocab == t.vocab && back.bos == 1 && back.eos == 2);
    int same = 1;
    for (int i = 0; i < t.vocab && same; i++) {
        const char *a, *b;
        int la = llm_tok_piece(&t, i, &a), lb = llm_tok_piece(&back, i, &b);
        same = la == lb && !memcmp(a, b, (size_t)la) && !memcmp(&t.scores[i], &back.scores[i], 4);
    }
    CHECK(same);
    ENC(&back, "abc", 265, 264);
    llm_tok_free(&back);
    llm_tok_free(&t);

    llm_tok_bytes(&t);
    CHECK_OK(tok_round_trip(&t, &back, &err), err);
    CHECK(back.kind == LLM_TOK_BYTES && back.vocab == 258 && back.bos == 256);
    CHECK_OK(llm_tok_ids(&t, 512, 1, -1, &err), err);
    CHECK_OK(tok_round_trip(&t, &back, &err), err);
    CHECK(back.kind == LLM_TOK_IDS && back.vocab == 512 && back.bos == 1 && back.eos == -1);
    /* an empty piece and a piece of LLM_TOK_MAX_PIECE bytes */
    char longest[LLM_TOK_MAX_PIECE];
    memset(longest, 'q', sizeof longest);
    const char *pieces[3] = {"", longest, "x"};
    uint32_t lens[3] = {0, LLM_TOK_MAX_PIECE, 1};
    float scores[3] = {1, 2, 3};
    CHECK_OK(llm_tok_bpe(&t, 3, pieces, lens, scores, -1, -1, &err), err);
    CHECK_OK(tok_round_trip(&t, &back, &err), err);
    const char *p;
    CHECK(llm_tok_piece(&back, 0, &p) == 0 && llm_tok_piece(&back, 1, &p) == LLM_TOK_MAX_PIECE &&
          back.scores[2] == 3);
    llm_tok_free(&back);
    llm_tok_free(&t);
}

/* Writes a tokenizer record by hand and tries to read it. */
static int read_crafted(const llm_attr *attrs, int n_attrs, llm_dtype dtype, const void *payload,
                        int64_t nbytes, llm_error *err)
{
    const char *path = path_in_tmp("bad.llmt");
    llm_writer *w;
    LLM_TRY(llm_writer_open(&w, path, NULL, err));
    int64_t count = dtype == LLM_DTYPE_F32 ? nbytes / 4 : nbytes;
    llm_record rec = {.kind = LLM_RECORD_META, .name = "tokenizer", .dtype = dtype,
                      .shape = llm_shape_make(1, (int64_t[]){count}), .attrs = attrs, .n_attrs = n_attrs};
    int rc = llm_writer_record(w, &rec, payload, err);
    if (rc < 0) {
        llm_writer_abort(w);
        return -100;
    }
    if (llm_writer_close(w, err) < 0) return -100;
    llm_reader *r;
    if (llm_reader_open(&r, path, err) < 0) return -100;
    const llm_record *got;
    llm_tok t;
    llm_tok_bytes(&t);
    rc = llm_reader_next(r, &got, err);
    if (rc > 0) rc = llm_tok_read(&t, r, got, err);
    llm_reader_close(r);
    llm_tok_free(&t);
    return rc;
}

static void test_record_rejects(void)
{
    llm_error err = {0};
    /* V = 2: scores (8 bytes), lengths (8 bytes), pieces */
    unsigned char good[8 + 8 + 3] = {0};
    check_put_le(good + 8, 1, 4);
    check_put_le(good + 12, 2, 4);
    memcpy(good + 16, "abc", 3);
    const llm_attr ok[4] = {{"kind", "bpe"}, {"vocab", "2"}, {"bos", "-1"}, {"eos", "1"}};
    CHECK_OK(read_crafted(ok, 4, LLM_DTYPE_U8, good, sizeof good, &err), err);

    struct {
        const char *why;
        llm_attr attrs[4];
        int payload_bytes;
        const char *msg;
    } cases[] = {
        {"unknown kind", {{"kind", "wordpiece"}, {"vocab", "2"}, {"bos", "-1"}, {"eos", "1"}}, 19, "unknown tokenizer kind"},
        {"no vocab", {{"kind", "bpe"}, {"bos", "-1"}, {"eos", "1"}, {"x", "y"}}, 19, "attribute vocab is missing"},
        {"vocab not a number", {{"kind", "bpe"}, {"vocab", "2x"}, {"bos", "-1"}, {"eos", "1"}}, 19, "attribute vocab is '2x'"},
        {"vocab too big", {{"kind", "bpe"}, {"vocab", "99999999999"}, {"bos", "-1"}, {"eos", "1"}}, 19, "attribute vocab"},
        {"bos out of range", {{"kind", "bpe"}, {"vocab", "2"}, {"bos", "2"}, {"eos", "1"}}, 19, "attribute bos"},
        {"payload short of lengths", {{"kind", "bpe"}, {"vocab", "2"}, {"bos", "-1"}, {"eos", "1"}}, 15, "cannot hold 2 pieces"},
        {"pieces missing", {{"kind", "bpe"}, {"vocab", "2"}, {"bos", "-1"}, {"eos", "1"}}, 18, "add up to 3 bytes, the payload holds 2"},
        {"ids with a payload", {{"kind", "ids"}, {"vocab", "2"}, {"bos", "-1"}, {"eos", "1"}}, 19, "has no payload"},
        {"bytes of the wrong size", {{"kind", "bytes"}, {"vocab", "300"}, {"bos", "256"}, {"eos", "257"}}, 0, "byte tokenizer with vocab 300"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = read_crafted(cases[i].attrs, 4, LLM_DTYPE_U8, good, cases[i].payload_bytes, &err);
        CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, cases[i].msg), "%s: rc %d: %s", cases[i].why, rc,
                  err.msg);
    }
    /* a length beyond the limit, and lengths that overflow 32 bits together */
    unsigned char bad[19];
    memcpy(bad, good, sizeof bad);
    check_put_le(bad + 8, LLM_TOK_MAX_PIECE + 1, 4);
    CHECK(read_crafted(ok, 4, LLM_DTYPE_U8, bad, sizeof bad, &err) == LLM_ERR_FORMAT &&
          strstr(err.msg, "piece 0 is 257 bytes"));
    check_put_le(bad + 8, 0xffffffffu, 4);
    check_put_le(bad + 12, 4, 4);
    CHECK(read_crafted(ok, 4, LLM_DTYPE_U8, bad, sizeof bad, &err) == LLM_ERR_FORMAT);
    /* a payload that claims a vast vocabulary it does not hold */
    const llm_attr vast[4] = {{"kind", "bpe"}, {"vocab", "4194304"}, {"bos", "1"}, {"eos", "2"}};
    CHECK(read_crafted(vast, 4, LLM_DTYPE_U8, good, sizeof good, &err) == LLM_ERR_FORMAT &&
          strstr(err.msg, "cannot hold 4194304 pieces"));
    /* not u8 */
    float f[5] = {0};
    CHECK(read_crafted(ok, 4, LLM_DTYPE_F32, f, sizeof f, &err) == LLM_ERR_FORMAT &&
          strstr(err.msg, "must be u8"));
}

int main(void)
{
    RUN(test_bytes_tokenizer);
    RUN(test_bpe_merges);
    RUN(test_bpe_utf8_and_bytes);
    RUN(test_bpe_decode);
    RUN(test_bpe_matches_plain_loop);
    RUN(test_bpe_long_text);
    RUN(test_ids_kind);
    RUN(test_record_round_trip);
    RUN(test_record_rejects);
    return check_done();
}
