/* tok — the byte-level tokenizer and its description in checkpoints. */
#include "tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llm_tok_bytes(llm_tok *t)
{
    t->kind = LLM_TOK_BYTES;
    t->vocab = 258;
    t->bos = 256;
    t->eos = 257;
}

int64_t llm_tok_encode(const llm_tok *t, const char *text, size_t len, int32_t *ids)
{
    (void)t;
    for (size_t i = 0; i < len; i++) ids[i] = (unsigned char)text[i];
    return (int64_t)len;
}

int llm_tok_decode(const llm_tok *t, int32_t id, char *piece)
{
    (void)t;
    if (id < 0 || id > 255) return 0;
    piece[0] = (char)id;
    return 1;
}

int llm_tok_to_attrs(const llm_tok *t, llm_attr *attrs, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%d", t->vocab) + 1;
    int m = snprintf(buf + n, size - (size_t)n, "%d", t->bos) + 1;
    snprintf(buf + n + m, size - (size_t)(n + m), "%d", t->eos);
    attrs[0] = (llm_attr){"kind", "bytes"};
    attrs[1] = (llm_attr){"vocab", buf};
    attrs[2] = (llm_attr){"bos", buf + n};
    attrs[3] = (llm_attr){"eos", buf + n + m};
    return 4;
}

int llm_tok_from_attrs(llm_tok *t, const llm_record *rec, llm_error *err)
{
    const char *kind = llm_record_attr(rec, "kind");
    if (!kind || strcmp(kind, "bytes") != 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: unknown tokenizer kind '%s'", rec->name,
                             kind ? kind : "(none)");
    llm_tok_bytes(t);
    const char *v = llm_record_attr(rec, "vocab");
    if (!v || atoi(v) != t->vocab)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: byte tokenizer with vocab %s (want 258)",
                             rec->name, v ? v : "(none)");
    return 0;
}
