/* Unit tests for lib/tok_spm (SentencePiece BPE): ids worked out by hand on
 * a small vocabulary (merges by score, user-defined pieces, byte fallback,
 * invalid bytes, unknown runs, the dummy prefix), decoding, the record; and
 * a model trained by sentencepiece itself (tests/tok_ref.py) whose pieces,
 * scores and types given to llm_tok_spm encode a corpus of awkward strings
 * to sentencepiece's ids and decode them to sentencepiece's text; a
 * checkpoint carrying that tokenizer, where llm-gen -p TEXT continues
 * TEXT as --ids with sentencepiece's ids does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ckpt.h"
#include "stream.h"
#include "tok.h"
#include "tok_ref.h"

#define SP "\xe2\x96\x81" /* U+2581 */

/* 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then these. */
static const struct {
    const char *piece;
    float score;
    int type;
} extra[] = {
    {SP, -1, LLM_TOKT_NORMAL},          /* 259 */
    {"a", -2, LLM_TOKT_NORMAL},         /* 260 */
    {"b", -2, LLM_TOKT_NORMAL},         /* 261 */
    {SP "a", -0.5f, LLM_TOKT_NORMAL},   /* 262 */
    {"ab", -0.1f, LLM_TOKT_NORMAL},     /* 263 */
    {"<sep>", 0, LLM_TOKT_USER},        /* 264 */
    {"\xc3\xa9", -3, LLM_TOKT_NORMAL},  /* 265 e-acute */
    {SP "ab", -0.3f, LLM_TOKT_NORMAL},  /* 266 */
    {"ba", 5, LLM_TOKT_CONTROL},        /* 267: control pieces never merge */
    {"bb", 5, LLM_TOKT_UNUSED},         /* 268: nor do unused ones */
    {SP SP, -4, LLM_TOKT_NORMAL},       /* 269 */
};
enum { N_EXTRA = sizeof extra / sizeof extra[0], V = 259 + N_EXTRA };

/* The small vocabulary, with or without the byte pieces (then of type
 * normal, named "b00".."bff"), with or without an unknown piece. */
static int small_spm(llm_tok *t, int bytes, int unk, int space_prefix)
{
    static char names[256][8];
    const char *pieces[V];
    float scores[V] = {0};
    int32_t types[V];
    pieces[0] = "<unk>", pieces[1] = "<s>", pieces[2] = "</s>";
    types[0] = unk ? LLM_TOKT_UNKNOWN : LLM_TOKT_NORMAL, types[1] = types[2] = LLM_TOKT_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(names[b], sizeof names[b], bytes ? "<0x%02X>" : "b%02x", b);
        pieces[3 + b] = names[b];
        types[3 + b] = bytes ? LLM_TOKT_BYTE : LLM_TOKT_NORMAL;
    }
    for (int i = 0; i < N_EXTRA; i++) {
        pieces[259 + i] = extra[i].piece;
        scores[259 + i] = extra[i].score;
        types[259 + i] = extra[i].type;
    }
    llm_tok_spec s = {.vocab = V, .pieces = pieces, .scores = scores, .types = types, .bos = 1, .eos = 2,
                      .unk = unk ? 0 : -1, .add_bos = 1, .space_prefix = space_prefix};
    llm_error err = {0};
    int rc = llm_tok_spm(t, &s, &err);
    CHECK_OK(rc, err);
    return rc;
}

static void test_spm_by_hand(void)
{
    llm_tok t;
    if (small_spm(&t, 1, 1, 1) < 0) return;
    /* "ab" -> "▁ab": ▁ a b; "ab" (-0.1) before "▁a" (-0.5) -> ▁ ab; "▁ab" (-0.3) -> 266 */
    ENC(&t, "ab", 266);
    /* user-defined pieces are found first and merge with nothing; no space follows them */
    ENC(&t, "a<sep>b", 262, 264, 261);
    /* "x" is no piece: its byte, 0x78 + 3 */
    ENC(&t, "x", 259, 123);
    /* an invalid byte is a symbol of its own: its byte piece */
    ENC(&t, "\xff" "a", 259, 258, 260);
    ENC(&t, "\xc3\xa9", 259, 265);
    /* a cut two-byte sequence then 'a': the lead byte alone, then 'a' */
    ENC(&t, "\xc3" "a", 259, 198, 260);
    /* control text is text: "<s>" is bytes; "ba" (control) and "bb" (unused) never merge */
    ENC(&t, "<s>", 259, 3 + '<', 3 + 's', 3 + '>');
    ENC(&t, "bab", 259, 261, 263);
    ENC(&t, "bb", 259, 261, 261);
    /* spaces: "a  b" -> ▁a ▁ ▁ b -> "▁a" 262 then "▁▁" 269 */
    ENC(&t, "a  b", 262, 269, 261);
    int32_t ids[4];
    CHECK(llm_tok_encode_text(&t, "", 0, ids, NULL) == 0);
    CHECK(llm_tok_max_ids(&t, 5) == 18);
    llm_tok_free(&t);

    /* without the dummy prefix */
    if (small_spm(&t, 1, 1, 0) < 0) return;
    ENC(&t, "ab", 263);
    ENC(&t, " ab", 266);
    llm_tok_free(&t);

    /* no byte pieces: a run of characters without pieces is one unknown id */
    if (small_spm(&t, 0, 1, 1) < 0) return;
    ENC(&t, "xyz", 259, 0);
    ENC(&t, "xay\xff", 259, 0, 260, 0);
    llm_tok_free(&t);

    /* neither byte pieces nor an unknown piece: an error naming the text */
    if (small_spm(&t, 0, 0, 1) < 0) return;
    llm_error err = {0};
    CHECK(llm_tok_encode_text(&t, "q", 1, ids, &err) == LLM_ERR_ARG && strstr(err.msg, "'q' has no piece"));
    llm_tok_free(&t);
}

static void test_spm_decode(void)
{
    llm_tok t;
    if (small_spm(&t, 1, 1, 1) < 0) return;
    char p[LLM_TOK_MAX_PIECE];
    CHECK(llm_tok_decode_next(&t, 1, 266, p) == 2 && !memcmp(p, "ab", 2));  /* after BOS */
    CHECK(llm_tok_decode_next(&t, 260, 266, p) == 3 && !memcmp(p, " ab", 3));
    CHECK(llm_tok_decode(&t, 269, p) == 2 && !memcmp(p, "  ", 2));
    CHECK(llm_tok_decode(&t, 3 + 0xC3, p) == 1 && (unsigned char)p[0] == 0xC3);
    CHECK(llm_tok_decode(&t, 0, p) == 5 && !memcmp(p, " \xe2\x81\x87 ", 5)); /* sentencepiece's unknown */
    CHECK(llm_tok_decode(&t, 1, p) == 0 && llm_tok_decode(&t, 267, p) == 0); /* control */
    CHECK(llm_tok_decode(&t, 264, p) == 5 && !memcmp(p, "<sep>", 5));
    CHECK(llm_tok_decode(&t, V, p) == 0 && llm_tok_decode(&t, -1, p) == 0);
    llm_tok_free(&t);
}

static void test_spm_rejects(void)
{
    const char *pieces[2] = {"a", "b"};
    int32_t types[2] = {1, 7};
    llm_tok_spec s = {.vocab = 2, .pieces = pieces, .types = types, .bos = -1, .eos = -1, .unk = -1};
    llm_tok t;
    llm_error err = {0};
    CHECK(llm_tok_spm(&t, &s, &err) == LLM_ERR_ARG && strstr(err.msg, "piece 1 has type 7"));
    types[1] = 1;
    s.unk = 2;
    CHECK(llm_tok_spm(&t, &s, &err) == LLM_ERR_ARG && strstr(err.msg, "unk 2"));
    s.unk = -1, s.add_bos = 1;
    CHECK(llm_tok_spm(&t, &s, &err) == LLM_ERR_ARG && strstr(err.msg, "adds BOS but has none"));
    s.add_bos = 0, s.n_merges = 1;
    CHECK(llm_tok_spm(&t, &s, &err) == LLM_ERR_ARG && strstr(err.msg, "merges"));
    s.n_merges = 0;
    CHECK_OK(llm_tok_spm(&t, &s, &err), err);
    llm_tok_free(&t);
    llm_tok_free(&t);
}

static void test_spm_matches_sentencepiece(void)
{
    tok_ref ref;
    int rc = tok_ref_run(&ref, "spm", "sentencepiece");
    if (rc <= 0) return;
    ref.spec.add_bos = 1, ref.spec.space_prefix = 1;
    llm_tok t, back;
    llm_error err = {0};
    CHECK_OK(llm_tok_spm(&t, &ref.spec, &err), err);
    if (err.code == 0) {
        int bad = tok_ref_check(&t, &ref, 1, 1);
        CHECK_MSG(bad == 0, "%d of %d strings differ from sentencepiece", bad, ref.n_cases);
        llm_tok_bytes(&back);
        CHECK_OK(tok_round_trip(&t, &back, &err), err);
        CHECK(back.kind == LLM_TOK_SPM && back.vocab == t.vocab && back.bos == t.bos && back.unk == t.unk &&
              back.add_bos == 1 && back.space_prefix == 1);
        bad = tok_ref_check(&back, &ref, 1, 1);
        CHECK_MSG(bad == 0, "after the record: %d strings differ", bad);
        llm_tok_free(&back);
        llm_tok_free(&t);
    }
    tok_ref_free(&ref);
}

/* Runs cmd and returns its standard output (malloc'd, *len bytes). */
static char *output_of(const char *cmd, size_t *len)
{
    FILE *f = popen(cmd, "r");
    char *out = malloc(1 << 16);
    *len = f ? fread(out, 1, (1 << 16) - 1, f) : 0;
    if (f) CHECK_MSG(pclose(f) == 0, "%s failed", cmd);
    out[*len] = '\0';
    return out;
}

static void test_spm_in_llm_gen(void)
{
    tok_ref ref;
    const char *bin = getenv("LLM_BIN");
    if (!bin) {
        check_skip("needs LLM_BIN (run through tests/run.sh)");
        return;
    }
    if (tok_ref_run(&ref, "spm", "sentencepiece") <= 0) return;
    ref.spec.add_bos = 1, ref.spec.space_prefix = 1;
    llm_model m;
    llm_error err = {0};
    llm_config c = {.vocab = ref.spec.vocab, .dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                    .hidden = 64, .seq_len = 512, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_model_init(&m, &c, 3, &err), err);
    unsigned long long state = 5;
    for (int64_t i = 0; i < m.n_params; i++) m.arena[i] += (float)(0.5 * check_normal(&state));
    llm_tok_free(&m.tok);
    CHECK_OK(llm_tok_spm(&m.tok, &ref.spec, &err), err);
    const char *ckpt = check_path("spm.llmt"), *prompt = check_path("prompt.txt");
    CHECK_OK(llm_ckpt_save(ckpt, &m, NULL, NULL, &err), err);
    int compared = 0;
    for (int k = 0; k < ref.n_cases && err.code == 0; k++) {
        const tok_ref_case *tc = &ref.cases[k];
        if (tc->len == 0 || memchr(tc->text, 0, tc->len) || tc->text[tc->len - 1] == '\n') continue;
        FILE *f = fopen(prompt, "wb");
        fwrite(tc->text, 1, tc->len, f);
        fclose(f);
        char cmd[8192];
        int at = snprintf(cmd, sizeof cmd, "'%s/llm-gen' -m '%s' -n 6 --temp 0 -q --ids -p '%d", bin, ckpt, m.tok.bos);
        for (int i = 0; i < tc->n_ids && at < 8000; i++) at += snprintf(cmd + at, sizeof cmd - (size_t)at, " %d", tc->ids[i]);
        snprintf(cmd + at, sizeof cmd - (size_t)at, "'");
        size_t n_ids_out, n_text;
        char *ids_out = output_of(cmd, &n_ids_out);
        snprintf(cmd, sizeof cmd, "'%s/llm-gen' -m '%s' -n 6 --temp 0 -q -p \"$(cat '%s')\"", bin, ckpt, prompt);
        char *text = output_of(cmd, &n_text);
        /* llm-gen prints the prompt, then the continuation of sentencepiece's
         * ids decoded, then a newline */
        char *want = malloc(tc->len + 8 * LLM_TOK_MAX_PIECE);
        memcpy(want, tc->text, tc->len);
        size_t w = tc->len;
        int32_t prev = tc->n_ids ? tc->ids[tc->n_ids - 1] : m.tok.bos;
        for (char *p = strtok(ids_out, " \n"); p; p = strtok(NULL, " \n")) {
            int32_t id = atoi(p);
            w += (size_t)llm_tok_decode_next(&m.tok, prev, id, want + w);
            prev = id;
        }
        want[w++] = '\n';
        CHECK_MSG(n_text == w && !memcmp(text, want, w), "case %d: llm-gen -p printed '%.*s', want '%.*s'", k,
                  (int)n_text, text, (int)w, want);
        compared++;
        free(want);
        free(ids_out);
        free(text);
    }
    CHECK_MSG(compared > 15, "%d prompts compared", compared);
    llm_model_free(&m);
    tok_ref_free(&ref);
}

int main(void)
{
    RUN(test_spm_by_hand);
    RUN(test_spm_decode);
    RUN(test_spm_rejects);
    RUN(test_spm_matches_sentencepiece);
    RUN(test_spm_in_llm_gen);
    return check_done();
}
