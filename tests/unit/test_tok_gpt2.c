/* Unit tests for lib/tok_gpt2 (byte-level BPE): ids worked out by hand on a
 * small vocabulary (GPT-2's byte-to-unicode mapping, merges by rank, the
 * pre-tokenizer's chunks, special pieces, ignore_merges, invalid bytes),
 * decoding, bad merge lists; and merge lists trained by tests/tok_ref.py,
 * whose ids for a corpus of awkward strings come from GPT-2's own algorithm
 * in Python with the `regex` module, for the GPT-2 and Llama 3 regexes,
 * directly and after the tokenizer record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "stream.h"
#include "tok.h"
#include "tok_ref.h"

/* GPT-2's bytes_to_unicode, as its encoder.py defines it: the code point
 * that stands for byte b, as UTF-8 in out; returns its length. */
static int byte_piece(int b, char *out)
{
    int n = 0, cp = b;
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (!printable) {
        for (int c = 0; c < b; c++)
            n += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* 0 <|endoftext|> (control), 1 <|user|> (user-defined), 2..257 the bytes,
 * then these pieces, made by these merges (ranks 0..): */
static const char *const merged[] = {"\xc4\xa0t", "he", "\xc4\xa0the", "a1", "xyz"};
static const char *const merges[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "a 1"};
enum { V = 2 + 256 + 5, BYTE0 = 2, GT = 258, HE, GTHE, A1, XYZ };

static int small_gpt2(llm_tok *t, llm_tok_pre pre, int ignore_merges, int n_merges, const char *const *m)
{
    static char bytes[256][3];
    const char *pieces[V];
    int32_t types[V];
    pieces[0] = "<|endoftext|>", types[0] = LLM_TOKT_CONTROL;
    pieces[1] = "<|user|>", types[1] = LLM_TOKT_USER;
    for (int b = 0; b < 256; b++) {
        bytes[b][byte_piece(b, bytes[b])] = '\0';
        pieces[BYTE0 + b] = bytes[b], types[BYTE0 + b] = LLM_TOKT_NORMAL;
    }
    for (int i = 0; i < 5; i++) pieces[GT + i] = merged[i], types[GT + i] = LLM_TOKT_NORMAL;
    llm_tok_spec s = {.vocab = V, .pieces = pieces, .types = types, .bos = 0, .eos = 0, .unk = -1,
                      .n_merges = n_merges, .merges = m, .pre = pre, .ignore_merges = ignore_merges};
    llm_error err = {0};
    int rc = llm_tok_gpt2(t, &s, &err);
    if (m == merges) CHECK_OK(rc, err);
    return rc;
}

#define B(c) (BYTE0 + (unsigned char)(c))

static void test_gpt2_by_hand(void)
{
    llm_tok t;
    if (small_gpt2(&t, LLM_TOK_PRE_GPT2, 0, 4, merges) < 0) return;
    /* " the": Ġ t h e; "Ġ t" (rank 0) then "h e" (1) then "Ġt he" (2) */
    ENC(&t, " the", GTHE);
    /* "the": t h e -> t he ("t he" is no merge) */
    ENC(&t, "the", B('t'), HE);
    /* the regex cuts "a1" into "a" and "1": the merge "a 1" never sees them together */
    ENC(&t, "a1", B('a'), B('1'));
    /* special pieces first, then the regex on what is between */
    ENC(&t, "<|endoftext|> the<|user|>x", 0, GTHE, 1, B('x'));
    /* xyz is a piece but no merge makes it */
    ENC(&t, "xyz", B('x'), B('y'), B('z'));
    /* an invalid byte stays itself */
    ENC(&t, "\xff\xc3", B(0xFF), B(0xC3));
    /* "  the": "\s+(?!\S)" takes one space, then " the" */
    ENC(&t, "  the", B(' '), GTHE);
    int32_t ids[4];
    CHECK(llm_tok_encode_text(&t, "", 0, ids, NULL) == 0 && llm_tok_max_ids(&t, 7) == 7);
    llm_tok_free(&t);

    /* Llama 3's regex with ignore_merges: a chunk that is a piece is that piece */
    if (small_gpt2(&t, LLM_TOK_PRE_LLAMA3, 1, 4, merges) < 0) return;
    ENC(&t, "xyz", XYZ);
    ENC(&t, " the", GTHE);
    /* numbers in threes; a letter run takes one non-letter before it */
    ENC(&t, "1234", B('1'), B('2'), B('3'), B('4'));
    ENC(&t, "a1", B('a'), B('1'));
    llm_tok_free(&t);
}

static void test_gpt2_decode(void)
{
    llm_tok t;
    if (small_gpt2(&t, LLM_TOK_PRE_GPT2, 0, 4, merges) < 0) return;
    char p[LLM_TOK_MAX_PIECE];
    CHECK(llm_tok_decode(&t, GTHE, p) == 4 && !memcmp(p, " the", 4));
    CHECK(llm_tok_decode(&t, B('\n'), p) == 1 && p[0] == '\n');
    CHECK(llm_tok_decode(&t, B(0xFF), p) == 1 && (unsigned char)p[0] == 0xFF);
    CHECK(llm_tok_decode(&t, B(0xAD), p) == 1 && (unsigned char)p[0] == 0xAD);
    CHECK(llm_tok_decode(&t, 0, p) == 0);                                   /* control */
    CHECK(llm_tok_decode(&t, 1, p) == 8 && !memcmp(p, "<|user|>", 8));     /* user-defined: its text */
    CHECK(llm_tok_decode(&t, V, p) == 0);
    llm_tok_free(&t);
}

static void test_gpt2_rejects(void)
{
    llm_tok t;
    llm_error err = {0};
    const char *no_space[] = {"ab"}, *no_result[] = {"x y"}, *no_part[] = {"q\xc4\xa0 t"};
    CHECK(small_gpt2(&t, LLM_TOK_PRE_GPT2, 0, 1, no_space) == LLM_ERR_ARG);
    CHECK(small_gpt2(&t, LLM_TOK_PRE_GPT2, 0, 1, no_result) == LLM_ERR_ARG);
    CHECK(small_gpt2(&t, LLM_TOK_PRE_GPT2, 0, 1, no_part) == LLM_ERR_ARG);
    const char *pieces[1] = {"a"}, *m[1] = {"a a"};
    llm_tok_spec s = {.vocab = 1, .pieces = pieces, .bos = -1, .eos = -1, .unk = -1, .n_merges = 1, .merges = m};
    CHECK(llm_tok_gpt2(&t, &s, &err) == LLM_ERR_ARG && strstr(err.msg, "merge 0 'a a' is not two pieces"));
    llm_tok_pre pre;
    CHECK(llm_tok_pre_from_name("llama-bpe", &pre, &err) == 0 && pre == LLM_TOK_PRE_LLAMA3);
    CHECK(llm_tok_pre_from_name("default", &pre, &err) == 0 && pre == LLM_TOK_PRE_GPT2);
    CHECK(llm_tok_pre_from_name("gpt2", &pre, &err) == 0 && pre == LLM_TOK_PRE_GPT2);
    CHECK(llm_tok_pre_from_name("qwen2", &pre, &err) == LLM_ERR_ARG && strstr(err.msg, "'qwen2'"));
}

static void matches_reference(const char *pre_name, llm_tok_pre pre)
{
    char args[32];
    snprintf(args, sizeof args, "gpt2 %s", pre_name);
    tok_ref ref;
    if (tok_ref_run(&ref, args, "regex") <= 0) return;
    ref.spec.pre = pre, ref.spec.ignore_merges = pre == LLM_TOK_PRE_LLAMA3;
    llm_tok t, back;
    llm_error err = {0};
    CHECK_OK(llm_tok_gpt2(&t, &ref.spec, &err), err);
    if (err.code == 0) {
        int bad = tok_ref_check(&t, &ref, 0, 0);
        CHECK_MSG(bad == 0, "%s: %d of %d strings differ from the reference", pre_name, bad, ref.n_cases);
        llm_tok_bytes(&back);
        CHECK_OK(tok_round_trip(&t, &back, &err), err);
        CHECK(back.kind == LLM_TOK_GPT2 && back.pre == pre && back.n_merges == t.n_merges &&
              back.ignore_merges == t.ignore_merges);
        bad = tok_ref_check(&back, &ref, 0, 0);
        CHECK_MSG(bad == 0, "%s after the record: %d strings differ", pre_name, bad);
        llm_tok_free(&back);
        llm_tok_free(&t);
    }
    tok_ref_free(&ref);
}

static void test_gpt2_matches_reference(void) { matches_reference("gpt2", LLM_TOK_PRE_GPT2); }
static void test_llama3_matches_reference(void) { matches_reference("llama3", LLM_TOK_PRE_LLAMA3); }

/* A megabyte of whitespace, letters and bad bytes encodes without running
 * out of PCRE2's stack, and decodes back to itself. */
static void test_gpt2_long_text(void)
{
    llm_tok t;
    if (small_gpt2(&t, LLM_TOK_PRE_LLAMA3, 1, 4, merges) < 0) return;
    size_t len = 1 << 20;
    char *text = malloc(len);
    for (size_t i = 0; i < len; i++) text[i] = i < len / 2 ? ' ' : "ab \xff\n1"[i % 6];
    int32_t *ids = malloc(llm_tok_max_ids(&t, len) * sizeof *ids);
    llm_error err = {0};
    int64_t n = llm_tok_encode_text(&t, text, len, ids, &err);
    CHECK_MSG(n > 0, "%s", err.msg);
    char *back = malloc(len + LLM_TOK_MAX_PIECE);
    size_t at = 0;
    for (int64_t i = 0; i < n && at <= len; i++) at += (size_t)llm_tok_decode(&t, ids[i], back + at);
    CHECK(at == len && !memcmp(back, text, len));
    free(back);
    free(ids);
    free(text);
    llm_tok_free(&t);
}

int main(void)
{
    RUN(test_gpt2_by_hand);
    RUN(test_gpt2_decode);
    RUN(test_gpt2_rejects);
    RUN(test_gpt2_matches_reference);
    RUN(test_llama3_matches_reference);
    RUN(test_gpt2_long_text);
    return check_done();
}
