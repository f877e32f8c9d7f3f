/* labels — parsing the "tokens" attribute into one byte string per token. */
#include "labels.h"

#include <stdlib.h>
#include <string.h>

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int llm_labels_parse(llm_labels *lab, const char *text, int64_t expected, llm_error *err)
{
    memset(lab, 0, sizeof *lab);
    size_t len = strlen(text);
    int64_t have = 1; /* labels: one more than the separators */
    for (size_t i = 0; i < len; i++) have += text[i] == ' ';
    if (have != expected)
        return llm_error_set(err, LLM_ERR_FORMAT, "tokens: %lld labels for %lld positions",
                             (long long)have, (long long)expected);
    lab->bytes = malloc(len + 1);
    lab->start = malloc(((size_t)expected + 1) * sizeof *lab->start);
    if (!lab->bytes || !lab->start) {
        llm_labels_free(lab);
        return llm_error_set(err, LLM_ERR_NOMEM, "tokens: out of memory for %lld labels",
                             (long long)expected);
    }
    size_t out = 0;
    int64_t n = 0;
    lab->start[0] = 0;
    for (size_t at = 0;; at++) {
        unsigned char c = (unsigned char)text[at];
        if (c == ' ' || c == '\0') { /* a label ends */
            if (out == lab->start[n]) {
                llm_labels_free(lab);
                return llm_error_set(err, LLM_ERR_FORMAT, "tokens: empty label at byte %zu", at);
            }
            size_t bytes = out - lab->start[n];
            if (bytes > lab->longest) lab->longest = bytes;
            lab->start[++n] = out;
            if (c == '\0') break;
            continue;
        }
        if (c == '\\') {
            int hi = text[at + 1] == 'x' ? hex_digit(text[at + 2]) : -1;
            int lo = hi >= 0 ? hex_digit(text[at + 3]) : -1;
            if (lo < 0) {
                llm_labels_free(lab);
                return llm_error_set(err, LLM_ERR_FORMAT,
                                     "tokens: byte %zu: a backslash must start \\xNN (lowercase hex)", at);
            }
            lab->bytes[out++] = (char)(hi * 16 + lo);
            at += 3;
            continue;
        }
        if (c < '!' || c > '~') {
            llm_labels_free(lab);
            return llm_error_set(err, LLM_ERR_FORMAT,
                                 "tokens: byte %zu is 0x%02x, which a label writes as \\x%02x", at, c, c);
        }
        lab->bytes[out++] = (char)c;
    }
    lab->n = n;
    return 0;
}

void llm_labels_free(llm_labels *lab)
{
    free(lab->bytes);
    free(lab->start);
    memset(lab, 0, sizeof *lab);
}
