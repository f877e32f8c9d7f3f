/* tok_spm — SentencePiece's BPE: "▁" for spaces, user-defined pieces found
 * first, merges by score, byte fallback (tok.h says exactly what it does and
 * where it departs from sentencepiece and llama.cpp). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "tok_internal.h"

#define MERGEABLE (LLM_TOK_MASK(LLM_TOKT_NORMAL) | LLM_TOK_MASK(LLM_TOKT_USER))
static const char space_mark[3] = {'\xe2', '\x96', '\x81'}; /* U+2581 */
static const char unknown_surface[] = " \xe2\x81\x87 ";     /* " ⁇ ", as sentencepiece shows it */

int llm_tok_spm_finish(llm_tok *t, llm_error *err)
{
    LLM_TRY(llm_tok_aux_make(t, LLM_TOK_MASK(LLM_TOKT_USER), err));
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->aux->byte_id[b] = llm_tok_lookup(t, name, 6, LLM_TOK_MASK(LLM_TOKT_BYTE));
        if (t->aux->byte_id[b] >= 0) t->aux->byte_fallback = 1;
    }
    return 0;
}

typedef struct spm_ctx {
    const llm_tok *t;
    const char *text; /* the escaped text the symbols span */
    int32_t *ids;
    int64_t n_ids;
    int prev_unknown; /* the last id came from a symbol without a piece */
} spm_ctx;

static int32_t spm_pair(void *ctx, const llm_bpe_sym *a, const llm_bpe_sym *b, double *prio)
{
    const spm_ctx *c = ctx;
    int32_t id = llm_tok_lookup(c->t, c->text + a->start, a->len + b->len, MERGEABLE);
    if (id >= 0) *prio = c->t->scores[id];
    return id;
}

/* Appends the ids of one final symbol. */
static int emit(spm_ctx *c, const llm_bpe_sym *s, llm_error *err)
{
    const llm_tok *t = c->t;
    int32_t id = s->id >= 0 ? s->id : llm_tok_lookup(t, c->text + s->start, s->len, LLM_TOK_ANY);
    if (id >= 0 && t->types[id] != LLM_TOKT_UNKNOWN) {
        c->ids[c->n_ids++] = id;
        c->prev_unknown = 0;
        return 0;
    }
    if (t->aux->byte_fallback) {
        for (uint32_t i = 0; i < s->len; i++) {
            int32_t b = t->aux->byte_id[(unsigned char)c->text[s->start + i]];
            if (b < 0) b = t->unk;
            if (b < 0)
                return llm_error_set(err, LLM_ERR_ARG, "byte 0x%02x has no piece and there is no unknown piece",
                                     (unsigned char)c->text[s->start + i]);
            c->ids[c->n_ids++] = b;
        }
        c->prev_unknown = 0;
        return 0;
    }
    if (t->unk < 0)
        return llm_error_set(err, LLM_ERR_ARG,
                             "'%.*s' has no piece and the vocabulary has neither byte pieces nor an "
                             "unknown piece", (int)s->len, c->text + s->start);
    if (!c->prev_unknown) c->ids[c->n_ids++] = t->unk; /* a run of unknowns is one */
    c->prev_unknown = 1;
    return 0;
}

/* Merges the n symbols and appends their ids. */
static int merge_and_emit(spm_ctx *c, llm_bpe_sym *syms, int64_t n, llm_error *err)
{
    n = llm_bpe_merge(syms, n, spm_pair, c, err);
    if (n < 0) return (int)n;
    for (int64_t i = 0; i < n; i++) LLM_TRY(emit(c, &syms[i], err));
    return 0;
}

int64_t llm_tok_spm_encode(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                           llm_error *err)
{
    if (len == 0) return 0;
    size_t cap = 3 * len + 3;
    char *esc = malloc(cap);
    llm_bpe_sym *syms = malloc(cap * sizeof *syms);
    if (!esc || !syms) {
        free(esc);
        free(syms);
        return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
    }
    size_t m = 0;
    if (t->space_prefix) memcpy(esc, space_mark, 3), m = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(esc + m, space_mark, 3), m += 3;
        else esc[m++] = text[i];
    }
    spm_ctx c = {.t = t, .text = esc, .ids = ids};
    int64_t n = 0;
    int rc = 0;
    int has_user = t->aux->special_at[256] > 0;
    for (size_t i = 0; rc == 0 && i < m;) {
        int32_t user = has_user ? llm_tok_special_at(t, esc + i, m - i) : -1;
        if (user >= 0) {
            rc = merge_and_emit(&c, syms, n, err);
            n = 0;
            ids[c.n_ids++] = user;
            c.prev_unknown = 0;
            i += llm_tok_len(t, user);
            continue;
        }
        int cl = llm_tok_utf8_len((const unsigned char *)esc + i, m - i);
        if (cl == 0) cl = 1; /* an invalid byte: a symbol of its own */
        syms[n++] = (llm_bpe_sym){.id = -1, .start = (uint32_t)i, .len = (uint32_t)cl};
        i += (size_t)cl;
    }
    if (rc == 0) rc = merge_and_emit(&c, syms, n, err);
    free(esc);
    free(syms);
    return rc < 0 ? rc : c.n_ids;
}

int llm_tok_spm_decode(const llm_tok *t, int32_t prev, int32_t id, char *piece)
{
    if (id < 0 || id >= t->vocab || id == t->bos || id == t->eos) return 0;
    int type = t->types[id];
    if (type == LLM_TOKT_CONTROL) return 0;
    if (type == LLM_TOKT_UNKNOWN) {
        memcpy(piece, unknown_surface, sizeof unknown_surface - 1);
        return (int)sizeof unknown_surface - 1;
    }
    if (type == LLM_TOKT_BYTE) {
        for (int b = 0; b < 256; b++)
            if (t->aux->byte_id[b] == id) {
                piece[0] = (char)b;
                return 1;
            }
    }
    const char *p = t->text + t->offset[id];
    uint32_t n = llm_tok_len(t, id), out = 0;
    for (uint32_t i = 0; i < n;) {
        if (i + 3 <= n && !memcmp(p + i, space_mark, 3)) piece[out++] = ' ', i += 3;
        else piece[out++] = p[i++];
    }
    if (t->space_prefix && t->bos >= 0 && prev == t->bos && out > 0 && piece[0] == ' ')
        memmove(piece, piece + 1, --out);
    return (int)out;
}
