/* gguf_tok — tokenizers between GGUF metadata and lib/tok (the mapping is
 * in gguf_tok.h). */
#include "gguf_tok.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SentencePiece's space, U+2581, in UTF-8. */
#define SP_SPACE "\xe2\x96\x81"

/* ---- import ---- */

/* Key k of the tokenizer, "tokenizer.ggml.<k>". */
static const llm_gguf_kv *tok_key(const llm_gguf *g, const char *k)
{
    char full[64];
    snprintf(full, sizeof full, "tokenizer.ggml.%s", k);
    return llm_gguf_find(g, full);
}

/* An array key of n elements of a string (want_string) or numeric type, or
 * absent (*kv = NULL) when optional. */
static int want_array(const llm_gguf *g, const char *k, int want_string, int64_t n, int required,
                      const llm_gguf_kv **kv, llm_error *err)
{
    *kv = tok_key(g, k);
    if (!*kv && !required) return 0;
    const char *what = want_string ? "strings" : "numbers";
    if (!*kv) return llm_error_set(err, LLM_ERR_FORMAT, "%s: tokenizer.ggml.%s is missing", g->label, k);
    int elem_ok = (*kv)->type == LLM_GGUF_ARRAY && (want_string ? (*kv)->elem == LLM_GGUF_STRING
                                                                 : (*kv)->elem != LLM_GGUF_STRING &&
                                                                       (*kv)->elem != LLM_GGUF_BOOL);
    if (!elem_ok) return llm_error_set(err, LLM_ERR_FORMAT, "%s: tokenizer.ggml.%s is not an array of %s", g->label, k, what);
    if (n >= 0 && (*kv)->n != (uint64_t)n)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: tokenizer.ggml.%s has %llu %s, the vocabulary %lld", g->label,
                             k, (unsigned long long)(*kv)->n, what, (long long)n);
    return 0;
}

/* An id key: *id (left as it is when absent), checked against 0..V-1. */
static int want_id(const llm_gguf *g, const char *k, int V, int *id, llm_error *err)
{
    char full[64];
    snprintf(full, sizeof full, "tokenizer.ggml.%s", k);
    uint64_t v;
    int got = llm_gguf_get_u64(g, full, &v, err);
    if (got < 0) return got;
    if (got && v >= (uint64_t)V)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s is %llu, outside the vocabulary's %d ids", g->label, full,
                             (unsigned long long)v, V);
    if (got) *id = (int)v;
    return 0;
}

/* A flag key (bool or integer): *flag (left as it is when absent). */
static int want_flag(const llm_gguf *g, const char *k, int *flag, llm_error *err)
{
    char full[64];
    snprintf(full, sizeof full, "tokenizer.ggml.%s", k);
    uint64_t v;
    int got = llm_gguf_get_u64(g, full, &v, err);
    if (got < 0) return got;
    if (got) *flag = v != 0;
    return 0;
}

/* 1 when the n bytes at s are "<0xNN>" for byte b. */
static int is_byte_piece(const char *s, uint64_t n, int b)
{
    char want[8];
    snprintf(want, sizeof want, "<0x%02X>", b);
    return n == 6 && !memcmp(s, want, 6);
}

/* Our byte-level vocabulary as llm_gguf_tok_export writes it. */
static int is_our_bytes(const llm_gguf_kv *tokens, const llm_gguf_kv *types, int bos, int eos, int add_bos,
                        int space_prefix)
{
    const llm_gguf_str *s = tokens->data;
    if (tokens->n != 258 || bos != 256 || eos != 257 || !add_bos || space_prefix || !types) return 0;
    for (int i = 0; i < 256; i++) {
        int type = (int)llm_gguf_array_f64(types, (uint64_t)i);
        int ok = i == ' ' ? s[i].len == 3 && !memcmp(s[i].s, SP_SPACE, 3) && type == LLM_TOKT_NORMAL
                          : is_byte_piece(s[i].s, s[i].len, i) && type == LLM_TOKT_BYTE;
        if (!ok) return 0;
    }
    return s[256].len == 3 && !memcmp(s[256].s, "<s>", 3) && s[257].len == 4 && !memcmp(s[257].s, "</s>", 4);
}

/* The strings of an array key as the pointer and length arrays a spec takes. */
static int strings_of(const llm_gguf_kv *kv, const char ***p, uint32_t **lens, const llm_gguf *g, const char *k,
                      llm_error *err)
{
    const llm_gguf_str *s = kv->data;
    *p = malloc((kv->n ? kv->n : 1) * sizeof **p);
    *lens = malloc((kv->n ? kv->n : 1) * sizeof **lens);
    if (!*p || !*lens) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", g->label);
    for (uint64_t i = 0; i < kv->n; i++) {
        if (s[i].len > UINT32_MAX)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: tokenizer.ggml.%s[%llu] is too long", g->label, k,
                                 (unsigned long long)i);
        (*p)[i] = s[i].s;
        (*lens)[i] = (uint32_t)s[i].len;
    }
    return 0;
}

/* The numbers of an array key (NULL: absent) as V floats or ints. */
static int numbers_of(const llm_gguf_kv *kv, int V, float **f, int32_t **i32, const llm_gguf *g, llm_error *err)
{
    if (!kv) return 0;
    void *p = malloc((size_t)(V ? V : 1) * 4);
    if (!p) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", g->label);
    for (int i = 0; i < V; i++) {
        double v = llm_gguf_array_f64(kv, (uint64_t)i);
        if (f) ((float *)p)[i] = (float)v;
        else ((int32_t *)p)[i] = v >= INT32_MIN && v <= INT32_MAX ? (int32_t)v : INT32_MAX; /* refused as a type */
    }
    if (f) *f = p;
    else *i32 = p;
    return 0;
}

/* A tokenizer kind lib/tok encodes: its spec from the metadata, then t. */
static int import_typed(const llm_gguf *g, int gpt2, const llm_gguf_kv *tokens, int V, const char *pre_name,
                        llm_tok_pre pre, llm_tok *t, llm_error *err)
{
    const llm_gguf_kv *scores, *types, *merges = NULL;
    LLM_TRY(want_array(g, "scores", 0, V, 0, &scores, err));
    LLM_TRY(want_array(g, "token_type", 0, V, 0, &types, err));
    if (types && (types->elem == LLM_GGUF_F32 || types->elem == LLM_GGUF_F64))
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: tokenizer.ggml.token_type is not an array of integers", g->label);
    if (gpt2) LLM_TRY(want_array(g, "merges", 1, -1, 1, &merges, err));
    if (merges && merges->n > LLM_TOK_MAX_VOCAB)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: tokenizer.ggml.merges has %llu merges (at most %d)", g->label,
                             (unsigned long long)merges->n, LLM_TOK_MAX_VOCAB);
    llm_tok_spec s = {.vocab = V, .bos = gpt2 ? -1 : V > 1 ? 1 : -1, .eos = gpt2 ? -1 : V > 2 ? 2 : -1,
                      .unk = gpt2 ? -1 : 0, .add_bos = !gpt2, .space_prefix = !gpt2, .pre = pre,
                      .ignore_merges = gpt2 && !strcmp(pre_name, "llama-bpe")};
    LLM_TRY(want_id(g, "bos_token_id", V, &s.bos, err));
    LLM_TRY(want_id(g, "eos_token_id", V, &s.eos, err));
    LLM_TRY(want_id(g, "unknown_token_id", V, &s.unk, err));
    LLM_TRY(want_flag(g, "add_bos_token", &s.add_bos, err));
    LLM_TRY(want_flag(g, "add_eos_token", &s.add_eos, err));
    if (!gpt2) LLM_TRY(want_flag(g, "add_space_prefix", &s.space_prefix, err));
    if (s.add_bos && s.bos < 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: tokenizer.ggml.add_bos_token is set, but there is no "
                             "bos_token_id", g->label);
    if (!gpt2 && is_our_bytes(tokens, types, s.bos, s.eos, s.add_bos, s.space_prefix)) {
        llm_tok_bytes(t);
        return 0;
    }
    const char **pieces = NULL, **merge_strs = NULL;
    uint32_t *lens = NULL, *merge_lens = NULL;
    float *sc = NULL;
    int32_t *ty = NULL;
    int rc = strings_of(tokens, &pieces, &lens, g, "tokens", err);
    if (rc == 0 && merges) rc = strings_of(merges, &merge_strs, &merge_lens, g, "merges", err);
    if (rc == 0) rc = numbers_of(scores, V, &sc, NULL, g, err);
    if (rc == 0) rc = numbers_of(types, V, NULL, &ty, g, err);
    if (rc == 0) {
        s.pieces = pieces, s.lens = lens, s.scores = sc, s.types = ty;
        s.n_merges = merges ? (int)merges->n : 0, s.merges = merge_strs, s.merge_lens = merge_lens;
        rc = gpt2 ? llm_tok_gpt2(t, &s, err) : llm_tok_spm(t, &s, err);
        if (rc == LLM_ERR_ARG) { /* the file's fault */
            err->code = rc = LLM_ERR_FORMAT;
            llm_error_prefix(err, "%s: tokenizer.ggml.%s", g->label, gpt2 ? "model gpt2" : "model llama");
        }
    }
    free(pieces), free(lens), free(merge_strs), free(merge_lens), free(sc), free(ty);
    return rc;
}

int llm_gguf_tok_import(const llm_gguf *g, int vocab, llm_tok *t, char *why, size_t why_size, llm_error *err)
{
    const char *model = NULL, *pre_name = "default";
    *why = 0;
    LLM_TRY(llm_gguf_get_str(g, "tokenizer.ggml.model", &model, err));
    LLM_TRY(llm_gguf_get_str(g, "tokenizer.ggml.pre", &pre_name, err));
    const llm_gguf_kv *tokens = NULL;
    if (model && (!strcmp(model, "llama") || !strcmp(model, "gpt2"))) {
        LLM_TRY(want_array(g, "tokens", 1, vocab ? vocab : -1, 1, &tokens, err));
        if (tokens->n < 1 || tokens->n > LLM_TOK_MAX_VOCAB)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu strings (want 1..%d)",
                                 g->label, (unsigned long long)tokens->n, LLM_TOK_MAX_VOCAB);
    }
    int V = tokens ? (int)tokens->n : vocab, gpt2 = model && !strcmp(model, "gpt2");
    llm_tok_pre pre = LLM_TOK_PRE_GPT2;
    if (!model) snprintf(why, why_size, "no tokenizer");
    else if (!tokens) snprintf(why, why_size, "tokenizer.ggml.model %s is not one llmpipe encodes", model);
    else if (gpt2 && llm_tok_pre_from_name(pre_name, &pre, NULL) < 0)
        snprintf(why, why_size, "tokenizer.ggml.pre %s is a pre-tokenizer llmpipe does not have (default, gpt2, "
                 "llama-bpe); the tokenizer is left out", pre_name);
    if (*why) {
        if (V < 1) return llm_error_set(err, LLM_ERR_FORMAT, "%s: no vocabulary: %s", g->label, why);
        return llm_tok_ids(t, V, -1, -1, err);
    }
    return import_typed(g, gpt2, tokens, V, pre_name, pre, t, err);
}

/* ---- export ---- */

/* Pieces of a byte-level or llama2.c tokenizer as a "llama" vocabulary. */
static int export_as_llama(llm_gguf_out *o, const llm_tok *t, int V, llm_error *err)
{
    char **pieces = calloc((size_t)V, sizeof *pieces);
    float *scores = calloc((size_t)V, sizeof *scores);
    int32_t *types = calloc((size_t)V, sizeof *types);
    int rc = pieces && scores && types ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < V; i++) {
        const char *p;
        int n = llm_tok_piece(t, i, &p);
        char buf[3 * LLM_TOK_MAX_PIECE + 16];
        size_t at = 0;
        if (t->kind == LLM_TOK_BYTES && i < 256) {
            at = (size_t)snprintf(buf, sizeof buf, i == ' ' ? SP_SPACE : "<0x%02X>", i);
            types[i] = i == ' ' ? LLM_TOKT_NORMAL : LLM_TOKT_BYTE;
        } else if (t->kind == LLM_TOK_BYTES || n < 0) {
            at = (size_t)snprintf(buf, sizeof buf, i == t->bos ? "<s>" : i == t->eos ? "</s>" : "<unused%d>", i);
            types[i] = i == t->bos || i == t->eos ? LLM_TOKT_CONTROL : LLM_TOKT_UNUSED;
        } else {
            for (int j = 0; j < n; j++) {
                if (p[j] == ' ') memcpy(buf + at, SP_SPACE, 3), at += 3;
                else buf[at++] = p[j];
            }
            buf[at] = 0;
            int hex;
            types[i] = i == t->bos || i == t->eos ? LLM_TOKT_CONTROL
                       : n == 6 && sscanf(buf, "<0x%2x>", &hex) == 1 ? LLM_TOKT_BYTE
                       : i == 0 && !strcmp(buf, "<unk>") ? LLM_TOKT_UNKNOWN : LLM_TOKT_NORMAL;
            scores[i] = t->scores[i];
        }
        if (!(pieces[i] = malloc(at + 1))) rc = llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
        else memcpy(pieces[i], buf, at + 1);
    }
    if (rc == 0) rc = llm_gguf_out_str(o, "tokenizer.ggml.model", "llama", err);
    if (rc == 0) rc = llm_gguf_out_str_array(o, "tokenizer.ggml.tokens", (const char *const *)pieces, NULL, (uint64_t)V, err);
    if (rc == 0) rc = llm_gguf_out_f32_array(o, "tokenizer.ggml.scores", scores, (uint64_t)V, err);
    if (rc == 0) rc = llm_gguf_out_i32_array(o, "tokenizer.ggml.token_type", types, (uint64_t)V, err);
    if (rc == 0 && t->bos >= 0) rc = llm_gguf_out_u32(o, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos, err);
    if (rc == 0 && t->eos >= 0) rc = llm_gguf_out_u32(o, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos, err);
    if (rc == 0 && t->kind == LLM_TOK_BPE && !strcmp(pieces[0], "<unk>"))
        rc = llm_gguf_out_u32(o, "tokenizer.ggml.unknown_token_id", 0, err);
    if (rc == 0) rc = llm_gguf_out_bool(o, "tokenizer.ggml.add_bos_token", t->bos >= 0, err);
    if (rc == 0) rc = llm_gguf_out_bool(o, "tokenizer.ggml.add_eos_token", 0, err);
    if (rc == 0) rc = llm_gguf_out_bool(o, "tokenizer.ggml.add_space_prefix", t->kind == LLM_TOK_BPE, err);
    for (int i = 0; pieces && i < V; i++) free(pieces[i]);
    free(pieces);
    free(scores);
    free(types);
    return rc;
}

/* An imported SPM or GPT2 tokenizer, as it came. */
static int export_typed(llm_gguf_out *o, const llm_tok *t, llm_error *err)
{
    int V = t->vocab, M = t->n_merges, gpt2 = t->kind == LLM_TOK_GPT2, any_score = 0;
    const char **pieces = malloc((size_t)V * sizeof *pieces), **merges = malloc((size_t)(M ? M : 1) * sizeof *merges);
    uint32_t *lens = malloc((size_t)V * sizeof *lens), *merge_lens = malloc((size_t)(M ? M : 1) * sizeof *merge_lens);
    int32_t *types = malloc((size_t)V * sizeof *types);
    int rc = pieces && merges && lens && merge_lens && types ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < V; i++) {
        lens[i] = (uint32_t)llm_tok_piece(t, i, &pieces[i]);
        types[i] = t->types[i];
        any_score |= t->scores[i] != 0;
    }
    for (int i = 0; rc == 0 && i < M; i++) {
        merges[i] = t->merge_text + t->merge_offset[i];
        merge_lens[i] = t->merge_offset[i + 1] - t->merge_offset[i];
    }
    if (rc == 0) rc = llm_gguf_out_str(o, "tokenizer.ggml.model", gpt2 ? "gpt2" : "llama", err);
    if (rc == 0 && gpt2)
        rc = llm_gguf_out_str(o, "tokenizer.ggml.pre", t->pre == LLM_TOK_PRE_LLAMA3 ? "llama-bpe" : "gpt2", err);
    if (rc == 0) rc = llm_gguf_out_str_array(o, "tokenizer.ggml.tokens", pieces, lens, (uint64_t)V, err);
    if (rc == 0 && (!gpt2 || any_score)) rc = llm_gguf_out_f32_array(o, "tokenizer.ggml.scores", t->scores, (uint64_t)V, err);
    if (rc == 0) rc = llm_gguf_out_i32_array(o, "tokenizer.ggml.token_type", types, (uint64_t)V, err);
    if (rc == 0 && gpt2) rc = llm_gguf_out_str_array(o, "tokenizer.ggml.merges", merges, merge_lens, (uint64_t)M, err);
    const struct {
        const char *key;
        int id;
    } ids[] = {{"tokenizer.ggml.bos_token_id", t->bos}, {"tokenizer.ggml.eos_token_id", t->eos},
               {"tokenizer.ggml.unknown_token_id", t->unk}};
    for (size_t i = 0; rc == 0 && i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].id >= 0) rc = llm_gguf_out_u32(o, ids[i].key, (uint32_t)ids[i].id, err);
    if (rc == 0) rc = llm_gguf_out_bool(o, "tokenizer.ggml.add_bos_token", t->add_bos, err);
    if (rc == 0) rc = llm_gguf_out_bool(o, "tokenizer.ggml.add_eos_token", t->add_eos, err);
    if (rc == 0 && !gpt2) rc = llm_gguf_out_bool(o, "tokenizer.ggml.add_space_prefix", t->space_prefix, err);
    free(pieces), free(merges), free(lens), free(merge_lens), free(types);
    return rc;
}

int llm_gguf_tok_export(llm_gguf_out *o, const llm_tok *t, int vocab, const char *label, llm_error *err)
{
    if (t->kind == LLM_TOK_IDS) return 0;
    if (t->kind == LLM_TOK_SPM || t->kind == LLM_TOK_GPT2) {
        if (t->vocab != vocab)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: the tokenizer has %d pieces, the model %d ids", label,
                                 t->vocab, vocab);
        return export_typed(o, t, err);
    }
    return export_as_llama(o, t, vocab, err);
}
