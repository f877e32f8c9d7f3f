/* Unit tests for lib/labels: the tokens attribute as llm_tok_labels writes
 * it (made here by the tokenizer itself for every byte value) decodes back to
 * the bytes, and malformed text is refused with the offending offset. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "labels.h"

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
    CHECK_OK(llm_labels_parse(&lab, text, 256, &err));
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
    CHECK_OK(llm_labels_parse(&lab, "<bos> the\\x20 \\xc3\\xa9 #17", 4, &err));
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
    RUN(test_round_trip_every_byte);
    RUN(test_multi_byte_labels);
    RUN(test_malformed);
    return check_done();
}
