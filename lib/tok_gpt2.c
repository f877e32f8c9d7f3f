/* tok_gpt2 — byte-level BPE (GPT-2, Llama 3): GPT-2's byte-to-unicode
 * mapping, the merge table, and the pre-tokenizer regexes, matched with PCRE2
 * (UTF and Unicode properties: \p{L}, \p{N}, \s and lookahead as Hugging
 * Face's tokenizers match them).  tok.h says what encoding does. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "tok_internal.h"

/* Pieces that merges may name and chunks may become. */
#define BPE_TYPES                                                                          \
    (LLM_TOK_MASK(LLM_TOKT_NORMAL) | LLM_TOK_MASK(LLM_TOKT_UNKNOWN) |                    \
     LLM_TOK_MASK(LLM_TOKT_UNUSED) | LLM_TOK_MASK(LLM_TOKT_BYTE))
#define SPECIAL_TYPES                                                                      \
    (LLM_TOK_MASK(LLM_TOKT_CONTROL) | LLM_TOK_MASK(LLM_TOKT_USER) | LLM_TOK_MASK(LLM_TOKT_UNKNOWN))
#define N_MAPPED 324 /* the byte map's code points are below 256 + 68 */
#define EMPTY_KEY UINT64_MAX

static const char *const pre_regex[] = {
    [LLM_TOK_PRE_GPT2] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    [LLM_TOK_PRE_LLAMA3] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
                           "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                           "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

struct llm_tok_gpt2_table {
    pcre2_code *re;
    uint64_t *keys; /* open addressing on left << 32 | right; EMPTY_KEY: free */
    int32_t *rank, *result;
    size_t mask;
    uint16_t byte_char[256];  /* the code point byte b is written as */
    int16_t char_byte[N_MAPPED]; /* and back; -1: none */
};

void llm_tok_gpt2_free(llm_tok_gpt2_table *g)
{
    if (!g) return;
    pcre2_code_free(g->re);
    free(g->keys);
    free(g->rank);
    free(g->result);
    free(g);
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others
 * become 256, 257, ... in order. */
static void make_byte_map(llm_tok_gpt2_table *g)
{
    int k = 0;
    for (int c = 0; c < N_MAPPED; c++) g->char_byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        g->byte_char[b] = (uint16_t)(printable ? b : 256 + k++);
        g->char_byte[g->byte_char[b]] = (int16_t)b;
    }
}

/* Writes code point c (< 0x800) as UTF-8 at out; returns its length. */
static int put_utf8(char *out, unsigned c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = (char)(0xC0 | c >> 6);
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

static size_t slot_of(const llm_tok_gpt2_table *g, uint64_t key)
{
    size_t at = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & g->mask;
    while (g->keys[at] != EMPTY_KEY && g->keys[at] != key) at = (at + 1) & g->mask;
    return at;
}

static uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)left << 32 | (uint32_t)right; }

/* The merge table: each "LEFT RIGHT" as the ids of LEFT, RIGHT and LEFTRIGHT. */
static int make_merges(llm_tok *t, llm_tok_gpt2_table *g, llm_error *err)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)t->n_merges) cap *= 2;
    g->mask = cap - 1;
    g->keys = malloc(cap * sizeof *g->keys);
    g->rank = malloc(cap * sizeof *g->rank);
    g->result = malloc(cap * sizeof *g->result);
    if (!g->keys || !g->rank || !g->result) return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    memset(g->keys, 0xFF, cap * sizeof *g->keys);
    char buf[2 * LLM_TOK_MAX_PIECE + 1];
    for (int i = 0; i < t->n_merges; i++) {
        const char *m = t->merge_text + t->merge_offset[i];
        uint32_t n = t->merge_offset[i + 1] - t->merge_offset[i], sp = 1;
        while (sp < n && m[sp] != ' ') sp++; /* llama.cpp: the first space after the first byte */
        int32_t left = -1, right = -1, both = -1;
        if (sp < n) {
            left = llm_tok_lookup(t, m, sp, BPE_TYPES);
            right = llm_tok_lookup(t, m + sp + 1, n - sp - 1, BPE_TYPES);
            memcpy(buf, m, sp);
            memcpy(buf + sp, m + sp + 1, n - sp - 1);
            both = llm_tok_lookup(t, buf, n - 1, BPE_TYPES);
        }
        if (left < 0 || right < 0 || both < 0)
            return llm_error_set(err, LLM_ERR_ARG, "tokenizer: merge %d '%.*s' is not two pieces that make a third",
                                 i, (int)(n < 80 ? n : 80), m);
        size_t at = slot_of(g, pair_key(left, right));
        if (g->keys[at] != EMPTY_KEY) continue; /* listed before: the first counts */
        g->keys[at] = pair_key(left, right);
        g->rank[at] = i;
        g->result[at] = both;
    }
    return 0;
}

int llm_tok_gpt2_finish(llm_tok *t, llm_error *err)
{
    LLM_TRY(llm_tok_aux_make(t, SPECIAL_TYPES, err));
    llm_tok_gpt2_table *g = calloc(1, sizeof *g);
    if (!g) return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    t->aux->gpt2 = g;
    make_byte_map(g);
    for (int b = 0; b < 256; b++) {
        char c[2];
        t->aux->byte_id[b] = llm_tok_lookup(t, c, (uint32_t)put_utf8(c, g->byte_char[b]), BPE_TYPES);
    }
    LLM_TRY(make_merges(t, g, err));
    int code;
    PCRE2_SIZE at;
    g->re = pcre2_compile((PCRE2_SPTR)pre_regex[t->pre], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &code, &at, NULL);
    if (!g->re) return llm_error_set(err, LLM_ERR_ARG, "tokenizer: PCRE2 cannot compile the pre-tokenizer (error %d)", code);
    (void)pcre2_jit_compile(g->re, PCRE2_JIT_COMPLETE); /* faster where PCRE2 has a JIT; optional */
    return 0;
}

/* ---- encoding ---- */

typedef struct gpt2_ctx {
    const llm_tok *t;
    int32_t *ids;
    int64_t n_ids;
    llm_bpe_sym *syms;  /* scratch: a symbol per byte of the text */
    char *mapped;       /* scratch: two bytes per byte */
    pcre2_match_data *md;
} gpt2_ctx;

static int32_t gpt2_pair(void *ctx, const llm_bpe_sym *a, const llm_bpe_sym *b, double *prio)
{
    const llm_tok_gpt2_table *g = ((const gpt2_ctx *)ctx)->t->aux->gpt2;
    if (a->id < 0 || b->id < 0) return -1;
    size_t at = slot_of(g, pair_key(a->id, b->id));
    if (g->keys[at] == EMPTY_KEY) return -1;
    *prio = -(double)g->rank[at];
    return g->result[at];
}

/* Appends the ids of one chunk of the pre-tokenizer, s[0..n). */
static int encode_chunk(gpt2_ctx *c, const char *s, size_t n, llm_error *err)
{
    const llm_tok *t = c->t;
    if (n == 0) return 0;
    if (t->ignore_merges) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) m += (size_t)put_utf8(c->mapped + m, t->aux->gpt2->byte_char[(unsigned char)s[i]]);
        int32_t id = m <= UINT32_MAX ? llm_tok_lookup(t, c->mapped, (uint32_t)m, BPE_TYPES) : -1;
        if (id >= 0) {
            c->ids[c->n_ids++] = id;
            return 0;
        }
    }
    for (size_t i = 0; i < n; i++)
        c->syms[i] = (llm_bpe_sym){.id = t->aux->byte_id[(unsigned char)s[i]], .start = (uint32_t)i, .len = 1};
    int64_t k = llm_bpe_merge(c->syms, (int64_t)n, gpt2_pair, c, err);
    if (k < 0) return (int)k;
    for (int64_t i = 0; i < k; i++) {
        int32_t id = c->syms[i].id >= 0 ? c->syms[i].id : t->unk;
        if (id < 0)
            return llm_error_set(err, LLM_ERR_ARG, "byte 0x%02x has no piece and there is no unknown piece",
                                 (unsigned char)s[c->syms[i].start]);
        c->ids[c->n_ids++] = id;
    }
    return 0;
}

/* Pre-tokenizes s[0..n) (no special pieces in it) and encodes each chunk.
 * Invalid bytes are matched as U+FFFD: the regex runs over a copy with them
 * replaced, whose offsets map back. */
static int encode_plain(gpt2_ctx *c, const char *s, size_t n, llm_error *err)
{
    if (n == 0) return 0;
    const unsigned char *u = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        int cl = llm_tok_utf8_len(u + i, n - i);
        bad += cl == 0;
        i += cl ? (size_t)cl : 1;
    }
    const char *subj = s;
    size_t sn = n, *orig = NULL;
    char *copy = NULL;
    if (bad) {
        sn = n + 2 * bad;
        copy = malloc(sn);
        orig = malloc((sn + 1) * sizeof *orig);
        if (!copy || !orig) {
            free(copy);
            free(orig);
            return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", n);
        }
        size_t j = 0;
        for (size_t i = 0; i < n;) {
            int cl = llm_tok_utf8_len(u + i, n - i);
            if (cl == 0) {
                memcpy(copy + j, "\xef\xbf\xbd", 3);
                orig[j] = orig[j + 1] = orig[j + 2] = i;
                j += 3, i++;
            } else {
                for (int k = 0; k < cl; k++) copy[j] = s[i], orig[j++] = i++;
            }
        }
        orig[sn] = n;
        subj = copy;
    }
    const pcre2_code *re = c->t->aux->gpt2->re;
    uint32_t opts = 0; /* the first match checks the subject's UTF-8; later ones need not */
    int rc = 0;
    size_t off = 0;
    while (rc == 0 && off < sn) {
        size_t ms = sn, me = sn;
        int got = pcre2_match(re, (PCRE2_SPTR)subj, sn, off, opts, c->md, NULL);
        opts = PCRE2_NO_UTF_CHECK;
        if (got >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
            ms = ov[0], me = ov[1];
            if (me <= ms) { /* these regexes match no empty string; step a character anyway */
                me = ms + (size_t)llm_tok_utf8_len((const unsigned char *)subj + ms, sn - ms);
            }
        } else if (got != PCRE2_ERROR_NOMATCH) {
            rc = llm_error_set(err, LLM_ERR_ARG, "pre-tokenizer: PCRE2 error %d at byte %zu", got,
                               orig ? orig[off] : off);
            break;
        }
        if (ms > off) /* what no match covered is a chunk too */
            rc = encode_chunk(c, s + (orig ? orig[off] : off), (orig ? orig[ms] - orig[off] : ms - off), err);
        if (rc == 0 && me > ms)
            rc = encode_chunk(c, s + (orig ? orig[ms] : ms), (orig ? orig[me] - orig[ms] : me - ms), err);
        off = me;
    }
    free(copy);
    free(orig);
    return rc;
}

int64_t llm_tok_gpt2_encode(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                            llm_error *err)
{
    if (len == 0) return 0;
    gpt2_ctx c = {.t = t, .ids = ids};
    c.syms = malloc(len * sizeof *c.syms);
    c.mapped = malloc(2 * len);
    c.md = pcre2_match_data_create_from_pattern(t->aux->gpt2->re, NULL);
    int rc = c.syms && c.mapped && c.md ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
    int has_special = t->aux->special_at[256] > 0;
    size_t start = 0;
    for (size_t i = 0; rc == 0 && i < len;) {
        int32_t id = has_special ? llm_tok_special_at(t, text + i, len - i) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        rc = encode_plain(&c, text + start, i - start, err);
        if (rc == 0) ids[c.n_ids++] = id;
        i += llm_tok_len(t, id);
        start = i;
    }
    if (rc == 0) rc = encode_plain(&c, text + start, len - start, err);
    free(c.syms);
    free(c.mapped);
    pcre2_match_data_free(c.md);
    return rc < 0 ? rc : c.n_ids;
}

/* ---- decoding ---- */

int llm_tok_gpt2_decode(const llm_tok *t, int32_t id, char *piece)
{
    if (id < 0 || id >= t->vocab || id == t->bos || id == t->eos) return 0;
    int type = t->types[id];
    if (type == LLM_TOKT_CONTROL || type == LLM_TOKT_UNKNOWN) return 0;
    const char *p = t->text + t->offset[id];
    uint32_t n = llm_tok_len(t, id);
    if (type == LLM_TOKT_USER) {
        memcpy(piece, p, n);
        return (int)n;
    }
    const llm_tok_gpt2_table *g = t->aux->gpt2;
    int out = 0;
    for (uint32_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)p + i;
        int cl = llm_tok_utf8_len(u, n - i);
        unsigned cp = cl == 1 ? u[0] : cl == 2 ? (unsigned)(u[0] & 0x1F) << 6 | (u[1] & 0x3F) : N_MAPPED;
        if (cp < N_MAPPED && g->char_byte[cp] >= 0) {
            piece[out++] = (char)g->char_byte[cp];
            i += (uint32_t)cl;
        } else { /* not of the byte map: as it is */
            uint32_t k = cl ? (uint32_t)cl : 1;
            memcpy(piece + out, p + i, k);
            out += (int)k, i += k;
        }
    }
    return out;
}
