/* Unit tests for lib/labels: the tokens attribute written from ids (the
 * escapes, BOS, EOS, ids without text); the contract's text, escaped by hand
 * here for every byte value, parsed back to the bytes; what the writer
 * writes read back by the parser, label for label; malformed text refused
 * with the offending offset; the writer out of memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "labels.h"
#include "nomem.h"

static void test_format(void)
{
    llm_error err = {0};
    llm_tok t;
    llm_tok_bytes(&t);
    const int32_t ids[] = {256, 'a', ' ', '\\', 0xc3, '~', 257};
    char *s;
    CHECK_OK(llm_labels_format(&t, ids, 7, &s, &err), err);
    CHECK_MSG(s && !strcmp(s, "<bos> a \\x20 \\x5c \\xc3 ~ <eos>"), "%s", s);
    free(s);
    CHECK_OK(llm_tok_ids(&t, 512, 1, 2, &err), err);
    CHECK_OK(llm_labels_format(&t, (const int32_t[]){1, 7, 300}, 3, &s, &err), err);
    CHECK_MSG(s && !strcmp(s, "<bos> #7 #300"), "%s", s);
    free(s);
    CHECK_OK(llm_labels_format(&t, ids, 0, &s, &err), err);
    CHECK(s && !strcmp(s, ""));
    free(s);
    llm_tok_free(&t);
}

/* Every byte token, BOS and EOS through the writer and back: each label is
 * the token's decoded bytes ("<bos>", "<eos>" for those two). */
static void test_round_trip(void)
{
    llm_error err = {0};
    llm_tok t;
    llm_tok_bytes(&t);
    enum { N = 258 };
    int32_t ids[N];
    ids[0] = t.bos;
    for (int b = 0; b < 256; b++) ids[1 + b] = b;
    ids[N - 1] = t.eos;
    char *text;
    CHECK_OK(llm_labels_format(&t, ids, N, &text, &err), err);
    llm_labels lab;
    CHECK_OK(llm_labels_parse(&lab, text, N, &err), err);
    int bad = -1;
    for (int i = 0; bad < 0 && i < N && lab.n == N; i++) {
        char piece[LLM_TOK_MAX_PIECE];
        const char *want = i == 0 ? "<bos>" : i == N - 1 ? "<eos>" : piece;
        size_t len = i == 0 || i == N - 1 ? 5 : (size_t)llm_tok_decode(&t, ids[i], piece);
        if (lab.start[i + 1] - lab.start[i] != len || memcmp(lab.bytes + lab.start[i], want, len)) bad = i;
    }
    CHECK_MSG(lab.n == N && bad < 0, "%lld labels; label %d differs", (long long)lab.n, bad);
    llm_labels_free(&lab);
    free(text);
    llm_tok_free(&t);
}

static void test_format_out_of_memory(void)
{
    llm_error err = {0};
    llm_tok t;
    llm_tok_bytes(&t);
    char *s = (char *)"unset";
    nomem_fail(1);
    int rc = llm_labels_format(&t, (const int32_t[]){'a'}, 1, &s, &err);
    nomem_fail(0);
    CHECK_MSG(rc == LLM_ERR_NOMEM && s == NULL && strstr(err.msg, "out of memory"), "%d %s", rc, err.msg);
}

static void test_round_trip_every_byte(void)
{
    llm_error err = {0};
    /* one label per byte value, escaped by hand as the contract says */
    char text[256 * 5 + 1], *o = text;
    for (int b = 0; b < 256; b++) {
        if (b) *o++ = ' ';
        if (b < '!' || b > '~' || b == '\\') o += sprintf(o, "\\x%02x", b);
        else *o++ = (char)b;
    }
    *o = '\0';
    llm_labels lab;
    CHECK_OK(llm_labels_parse(&lab, text, 256, &err), err);
    int ok = lab.n == 256;
    for (int b = 0; ok && b < 256; b++)
        ok = lab.start[b + 1] - lab.start[b] == 1 && (unsigned char)lab.bytes[lab.start[b]] == b;
    CHECK(ok);
    CHECK(lab.longest == 1);
    llm_labels_free(&lab);
}

static void test_multi_byte_labels(void)
{
    llm_error err = {0};
    llm_labels lab;
    CHECK_OK(llm_labels_parse(&lab, "<bos> the\\x20 \\xc3\\xa9 #17", 4, &err), err);
    CHECK(lab.n == 4 && lab.longest == 5);
    CHECK(memcmp(lab.bytes + lab.start[1], "the ", 4) == 0 && lab.start[2] - lab.start[1] == 4);
    CHECK(memcmp(lab.bytes + lab.start[2], "\xc3\xa9", 2) == 0 && lab.start[3] - lab.start[2] == 2);
    CHECK(memcmp(lab.bytes + lab.start[3], "#17", 3) == 0 && lab.start[4] - lab.start[3] == 3);
    llm_labels_free(&lab);
}

static void test_malformed(void)
{
    llm_error err = {0};
    llm_labels lab;
    CHECK(llm_labels_parse(&lab, "a b c", 4, &err) == LLM_ERR_FORMAT && strstr(err.msg, "3 labels for 4"));
    CHECK(llm_labels_parse(&lab, "a  b", 3, &err) == LLM_ERR_FORMAT && strstr(err.msg, "empty label at byte 2"));
    CHECK(llm_labels_parse(&lab, "a ", 2, &err) == LLM_ERR_FORMAT && strstr(err.msg, "empty label"));
    CHECK(llm_labels_parse(&lab, "a \\x2", 2, &err) == LLM_ERR_FORMAT && strstr(err.msg, "byte 2"));
    CHECK(llm_labels_parse(&lab, "a \\X20", 2, &err) == LLM_ERR_FORMAT);
    CHECK(llm_labels_parse(&lab, "a \\x4G", 2, &err) == LLM_ERR_FORMAT);
    CHECK(llm_labels_parse(&lab, "a\tb", 1, &err) == LLM_ERR_FORMAT && strstr(err.msg, "0x09"));
    CHECK(llm_labels_parse(&lab, "\xc3\xa9", 1, &err) == LLM_ERR_FORMAT);
    CHECK(llm_labels_parse(&lab, "", 1, &err) == LLM_ERR_FORMAT);
    CHECK(lab.bytes == NULL && lab.start == NULL);
}

int main(void)
{
    RUN(test_format);
    RUN(test_round_trip);
    RUN(test_format_out_of_memory);
    RUN(test_round_trip_every_byte);
    RUN(test_multi_byte_labels);
    RUN(test_malformed);
    return check_done();
}
