/* labels — the token labels of an attention record: written from token
 * ids, and read back into byte strings.
 *
 * llm-gen --dump-attn puts the prompt's tokens in the attribute "tokens":
 * labels separated by single spaces, each the token's bytes with every byte
 * outside '!'..'~', and the backslash, written \xNN (two lowercase hex
 * digits); llm-attnviz draws them.  llm_labels_format writes that text;
 * llm_labels_parse reads it back, strictly: the attribute comes from outside,
 * so anything else is an error that says where.
 *
 *     char *text;
 *     LLM_TRY(llm_labels_format(&tok, ids, T, &text, &err));    // llm-gen
 *     llm_labels lab;
 *     LLM_TRY(llm_labels_parse(&lab, text, T, &err));             // llm-attnviz
 *     fwrite(lab.bytes + lab.start[i], 1, lab.start[i + 1] - lab.start[i], stdout);
 *     llm_labels_free(&lab), free(text);
 */
#ifndef LLM_LABELS_H
#define LLM_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tok.h"

typedef struct llm_labels {
    int64_t n;        /* labels */
    char *bytes;      /* all labels' decoded bytes, back to back (may hold NUL) */
    size_t *start;    /* [n + 1]: label i is bytes[start[i] .. start[i + 1]) */
    size_t longest;   /* bytes in the longest label */
} llm_labels;

/* Writes the labels of the n tokens of ids as one NUL-terminated string,
 * into *text (malloc'd: the caller frees it).  A label is the token's
 * decoded text (llm_tok_decode_next, after the token before it), escaped as
 * above; BOS and EOS are "<bos>" and "<eos>", and a token without text (the
 * ids tokenizer, or an empty piece) is "#ID".  n <= 0 gives "".  0, or
 * LLM_ERR_LIMIT (n too large for the string's size to be counted) or
 * LLM_ERR_NOMEM, with err (may be NULL) saying so. */
int llm_labels_format(const llm_tok *t, const int32_t *ids, int64_t n, char **text, llm_error *err);

/* Parses text into *lab (owned by the caller: llm_labels_free), which must
 * hold exactly `expected` labels.  0, or LLM_ERR_FORMAT naming the offending
 * byte offset, or LLM_ERR_NOMEM. */
int llm_labels_parse(llm_labels *lab, const char *text, int64_t expected, llm_error *err);
/* Frees what lab holds; lab may be zeroed or already freed. */
void llm_labels_free(llm_labels *lab);

#endif
