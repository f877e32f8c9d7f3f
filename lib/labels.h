/* labels — the token labels of an attention record, decoded.
 *
 * llm-gen --dump-attn puts the prompt's tokens in the attribute "tokens":
 * labels separated by single spaces, each the token's bytes with every byte
 * outside '!'..'~', and the backslash, written \xNN (see llm_tok_labels in
 * tok.h).  This parses that text back into byte strings, strictly: the
 * attribute comes from outside, so anything else is an error that says where.
 *
 *     llm_labels lab;
 *     TRY(llm_labels_parse(&lab, llm_record_attr(rec, "tokens"), T, &err));
 *     fwrite(lab.bytes + lab.start[i], 1, lab.start[i + 1] - lab.start[i], stdout);
 *     llm_labels_free(&lab);
 */
#ifndef LLM_LABELS_H
#define LLM_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct llm_labels {
    int64_t n;        /* labels */
    char *bytes;      /* all labels' decoded bytes, back to back (may hold NUL) */
    size_t *start;    /* [n + 1]: label i is bytes[start[i] .. start[i + 1]) */
    size_t longest;   /* bytes in the longest label */
} llm_labels;

/* Parses text into *lab (owned by the caller: llm_labels_free), which must
 * hold exactly `expected` labels.  0, or LLM_ERR_FORMAT naming the offending
 * byte offset, or LLM_ERR_NOMEM. */
int llm_labels_parse(llm_labels *lab, const char *text, int64_t expected, llm_error *err);
/* Frees what lab holds; lab may be zeroed or already freed. */
void llm_labels_free(llm_labels *lab);

#endif
