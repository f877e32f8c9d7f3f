/* labels — the "tokens" attribute: token ids into escaped labels, and the
 * labels parsed back into one byte string per token. */
#include "labels.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most bytes a label takes: a piece of LLM_TOK_MAX_PIECE bytes, each
 * written \xNN (more than "<bos>", "<eos>" or "#ID"). */
#define MAX_LABEL (4 * LLM_TOK_MAX_PIECE)

int llm_labels_format(const llm_tok *t, const int32_t *ids, int64_t n, char **text, llm_error *err)
{
    *text = NULL;
    size_t count = n > 0 ? (size_t)n : 0;
    if (count > (SIZE_MAX - 1) / (MAX_LABEL + 1))
        return llm_error_set(err, LLM_ERR_LIMIT, "tokens: %lld labels are too many to hold", (long long)n);
    char *out = malloc(count * (MAX_LABEL + 1) + 1), *at = out;
    if (!out) return llm_error_set(err, LLM_ERR_NOMEM, "tokens: out of memory for %lld labels", (long long)n);
    char piece[LLM_TOK_MAX_PIECE];
    for (size_t i = 0; i < count; i++) {
        if (i) *at++ = ' ';
        int32_t id = ids[i];
        int len = llm_tok_decode_next(t, i ? ids[i - 1] : -1, id, piece);
        if (id == t->bos) {
            at += sprintf(at, "<bos>");
        } else if (id == t->eos) {
            at += sprintf(at, "<eos>");
        } else if (len <= 0) {
            at += sprintf(at, "#%d", (int)id);
        } else {
            for (int j = 0; j < len; j++) {
                unsigned char c = (unsigned char)piece[j];
                if (c > ' ' && c <= '~' && c != '\\')
                    *at++ = (char)c;
                else
                    at += sprintf(at, "\\x%02x", c);
            }
        }
    }
    *at = '\0';
    *text = out;
    return 0;
}

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
