/* tok — the tokenizers' vocabulary and API, the byte-level, llama2.c BPE and
 * ids-only kinds, and the tokenizer record of checkpoints (the layout is in
 * tok.h); SentencePiece BPE is in tok_spm.c, byte-level BPE in tok_gpt2.c. */
#include "tok.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "bytes.h"
#include "tok_internal.h"

#define NO_TEXT "this model has no tokenizer; give token ids with --ids"
#define MIN_SCORE (-1e10f) /* run.c's starting best score: pairs at or below never merge */
#define IO_CHUNK 65536
#define MAX_MERGE (2 * LLM_TOK_MAX_PIECE + 1)

static const char *const kind_names[] = {"bytes", "bpe", "ids", "spm", "gpt2"};
static const char *const pre_names[] = {"gpt2", "llama3"};

void llm_tok_bytes(llm_tok *t)
{
    memset(t, 0, sizeof *t);
    t->kind = LLM_TOK_BYTES;
    t->vocab = 258;
    t->bos = 256;
    t->eos = 257;
    t->add_bos = 1;
    t->unk = -1;
}

static int check_special(int vocab, int bos, int eos, llm_error *err)
{
    if (vocab < 1 || vocab > LLM_TOK_MAX_VOCAB)
        return llm_error_set(err, LLM_ERR_ARG, "tokenizer vocab %d out of range 1..%d", vocab,
                             LLM_TOK_MAX_VOCAB);
    if (bos < -1 || bos >= vocab || eos < -1 || eos >= vocab)
        return llm_error_set(err, LLM_ERR_ARG, "tokenizer bos %d / eos %d outside -1..%d", bos, eos,
                             vocab - 1);
    return 0;
}

int llm_tok_ids(llm_tok *t, int vocab, int bos, int eos, llm_error *err)
{
    memset(t, 0, sizeof *t);
    t->unk = -1;
    LLM_TRY(check_special(vocab, bos, eos, err));
    t->kind = LLM_TOK_IDS;
    t->vocab = vocab;
    t->bos = bos;
    t->eos = eos;
    t->add_bos = bos >= 0;
    return 0;
}

void llm_tok_free(llm_tok *t)
{
    if (!t) return;
    free(t->scores);
    free(t->offset);
    free(t->text);
    free(t->sorted);
    free(t->types);
    free(t->merge_offset);
    free(t->merge_text);
    if (t->aux) {
        llm_tok_gpt2_free(t->aux->gpt2);
        free(t->aux->specials);
        free(t->aux);
    }
    memset(t, 0, sizeof *t);
    t->unk = -1;
}

int llm_tok_pre_from_name(const char *name, llm_tok_pre *pre, llm_error *err)
{
    if (name && (!strcmp(name, "default") || !strcmp(name, "gpt2"))) *pre = LLM_TOK_PRE_GPT2;
    else if (name && (!strcmp(name, "llama-bpe") || !strcmp(name, "llama3"))) *pre = LLM_TOK_PRE_LLAMA3;
    else
        return llm_error_set(err, LLM_ERR_ARG,
                             "unknown pre-tokenizer '%s' (known: default, gpt2, llama-bpe)",
                             name ? name : "(none)");
    return 0;
}

/* ---- the sorted index ---- */

static int bytes_cmp(const char *a, uint32_t an, const char *b, uint32_t bn)
{
    uint32_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return (an > bn) - (an < bn);
}

typedef struct sort_entry {
    const char *p;
    uint32_t n;
    int32_t id;
} sort_entry;

static int sort_entry_cmp(const void *va, const void *vb)
{
    const sort_entry *a = va, *b = vb;
    int c = bytes_cmp(a->p, a->n, b->p, b->n);
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

static int cmp_at(const llm_tok *t, size_t at, const char *s, uint32_t n)
{
    int32_t id = t->sorted[at];
    return bytes_cmp(t->text + t->offset[id], llm_tok_len(t, id), s, n);
}

int32_t llm_tok_lookup(const llm_tok *t, const char *s, uint32_t n, uint32_t mask)
{
    if (n > (uint32_t)t->max_len) return -1;
    size_t lo = 0, hi = (size_t)t->vocab; /* first entry >= s in [lo, hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_at(t, mid, s, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    for (; lo < (size_t)t->vocab && cmp_at(t, lo, s, n) == 0; lo++) /* equal pieces: ids ascending */
        if (mask & LLM_TOK_MASK(llm_tok_type_of(t, t->sorted[lo]))) return t->sorted[lo];
    return -1;
}

int llm_tok_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return (int)len;
}

/* Completes a tokenizer whose pieces (offset, text) are set: the sorted index
 * and the longest piece. */
static int make_index(llm_tok *t, llm_error *err)
{
    sort_entry *e = malloc((size_t)t->vocab * sizeof *e);
    t->sorted = malloc((size_t)t->vocab * sizeof *t->sorted);
    if (!e || !t->sorted) {
        free(e);
        return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    }
    t->max_len = 0;
    for (int i = 0; i < t->vocab; i++) {
        e[i] = (sort_entry){t->text + t->offset[i], llm_tok_len(t, i), i};
        if ((int)e[i].n > t->max_len) t->max_len = (int)e[i].n;
    }
    qsort(e, (size_t)t->vocab, sizeof *e, sort_entry_cmp);
    for (int i = 0; i < t->vocab; i++) t->sorted[i] = e[i].id;
    free(e);
    return 0;
}

/* Copies count strings (lens NULL: NUL-terminated), each at most max bytes,
 * into *offset [count+1] and *text; what names them in messages. */
static int copy_strings(int count, const char *const *strs, const uint32_t *lens, uint32_t max,
                        const char *what, uint32_t **offset, char **text, llm_error *err)
{
    if (count && !strs) return llm_error_set(err, LLM_ERR_ARG, "tokenizer: no %ss", what);
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        if (!strs[i]) return llm_error_set(err, LLM_ERR_ARG, "tokenizer: %s %d is NULL", what, i);
        size_t n = lens ? lens[i] : strlen(strs[i]);
        if (n > max)
            return llm_error_set(err, LLM_ERR_ARG, "tokenizer: %s %d is %zu bytes (at most %u)", what,
                                 i, n, max);
        total += n;
    }
    *offset = malloc(((size_t)count + 1) * sizeof **offset);
    *text = malloc(total + 1);
    if (!*offset || !*text) return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    (*offset)[0] = 0;
    for (int i = 0; i < count; i++) {
        uint32_t n = lens ? lens[i] : (uint32_t)strlen(strs[i]);
        if (n) memcpy(*text + (*offset)[i], strs[i], n);
        (*offset)[i + 1] = (*offset)[i] + n;
    }
    return 0;
}

/* Fills t (zeroed) from s: kind, ids, flags, pieces, scores, types, merges. */
static int copy_spec(llm_tok *t, llm_tok_kind kind, const llm_tok_spec *s, llm_error *err)
{
    LLM_TRY(check_special(s->vocab, s->bos, s->eos, err));
    if (s->unk < -1 || s->unk >= s->vocab)
        return llm_error_set(err, LLM_ERR_ARG, "tokenizer unk %d outside -1..%d", s->unk, s->vocab - 1);
    if (s->add_bos && s->bos < 0) return llm_error_set(err, LLM_ERR_ARG, "tokenizer adds BOS but has none");
    if (s->n_merges < 0 || s->n_merges > LLM_TOK_MAX_VOCAB || (kind == LLM_TOK_SPM && s->n_merges))
        return llm_error_set(err, LLM_ERR_ARG, "tokenizer: %d merges (want %s)", s->n_merges,
                             kind == LLM_TOK_SPM ? "none" : "0..4194304");
    if (s->pre != LLM_TOK_PRE_GPT2 && s->pre != LLM_TOK_PRE_LLAMA3)
        return llm_error_set(err, LLM_ERR_ARG, "tokenizer: pre-tokenizer %d unknown", (int)s->pre);
    *t = (llm_tok){.kind = kind, .vocab = s->vocab, .bos = s->bos, .eos = s->eos, .unk = s->unk,
                   .add_bos = !!s->add_bos, .add_eos = !!s->add_eos,
                   .space_prefix = kind == LLM_TOK_SPM && s->space_prefix,
                   .ignore_merges = kind == LLM_TOK_GPT2 && s->ignore_merges,
                   .pre = kind == LLM_TOK_GPT2 ? s->pre : LLM_TOK_PRE_GPT2, .n_merges = s->n_merges};
    LLM_TRY(copy_strings(s->vocab, s->pieces, s->lens, LLM_TOK_MAX_PIECE, "piece", &t->offset, &t->text, err));
    LLM_TRY(copy_strings(s->n_merges, s->merges, s->merge_lens, MAX_MERGE, "merge", &t->merge_offset,
                         &t->merge_text, err));
    t->scores = malloc((size_t)s->vocab * sizeof *t->scores);
    t->types = malloc((size_t)s->vocab);
    if (!t->scores || !t->types) return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < s->vocab; i++) {
        int32_t type = s->types ? s->types[i] : LLM_TOKT_NORMAL;
        if (type < 0 || type > LLM_TOKT_BYTE)
            return llm_error_set(err, LLM_ERR_ARG, "tokenizer: piece %d has type %d (want 0..6)", i, (int)type);
        t->types[i] = type ? (uint8_t)type : LLM_TOKT_NORMAL;
        t->scores[i] = s->scores ? s->scores[i] : 0.0f;
    }
    return make_index(t, err);
}

int llm_tok_bpe(llm_tok *t, int vocab, const char *const *pieces, const uint32_t *lens,
                const float *scores, int bos, int eos, llm_error *err)
{
    memset(t, 0, sizeof *t);
    if (!scores && vocab > 0) return llm_error_set(err, LLM_ERR_ARG, "tokenizer: no scores");
    llm_tok_spec s = {.vocab = vocab, .pieces = pieces, .lens = lens, .scores = scores, .bos = bos,
                      .eos = eos, .unk = -1};
    int rc = copy_spec(t, LLM_TOK_BPE, &s, err);
    if (rc == 0) {
        free(t->types); /* llama2.c's pieces have no types */
        t->types = NULL;
        t->add_bos = bos >= 0;
        return 0;
    }
    llm_tok_free(t);
    return rc;
}

/* An SPM or GPT2 tokenizer of s: copied, then its kind's tables made. */
static int make_typed(llm_tok *t, llm_tok_kind kind, const llm_tok_spec *s, llm_error *err)
{
    memset(t, 0, sizeof *t);
    int rc = copy_spec(t, kind, s, err);
    if (rc == 0) rc = kind == LLM_TOK_SPM ? llm_tok_spm_finish(t, err) : llm_tok_gpt2_finish(t, err);
    if (rc < 0) llm_tok_free(t);
    return rc;
}

int llm_tok_spm(llm_tok *t, const llm_tok_spec *s, llm_error *err) { return make_typed(t, LLM_TOK_SPM, s, err); }

int llm_tok_gpt2(llm_tok *t, const llm_tok_spec *s, llm_error *err) { return make_typed(t, LLM_TOK_GPT2, s, err); }

/* ---- special pieces, found in the text first ---- */

static const llm_tok *special_sort_tok; /* qsort has no context argument */

/* By first byte, then longer first, then lower id first. */
static int special_cmp(const void *va, const void *vb)
{
    const llm_tok *t = special_sort_tok;
    int32_t a = *(const int32_t *)va, b = *(const int32_t *)vb;
    unsigned char fa = (unsigned char)t->text[t->offset[a]], fb = (unsigned char)t->text[t->offset[b]];
    if (fa != fb) return (fa > fb) - (fa < fb);
    uint32_t la = llm_tok_len(t, a), lb = llm_tok_len(t, b);
    if (la != lb) return (la < lb) - (la > lb);
    return (a > b) - (a < b);
}

int llm_tok_aux_make(llm_tok *t, uint32_t special_mask, llm_error *err)
{
    t->aux = calloc(1, sizeof *t->aux);
    if (!t->aux) return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    for (int b = 0; b < 256; b++) t->aux->byte_id[b] = -1;
    int n = 0;
    for (int i = 0; i < t->vocab; i++)
        n += (special_mask & LLM_TOK_MASK(t->types[i])) && llm_tok_len(t, i) > 0;
    t->aux->specials = malloc(((size_t)n + 1) * sizeof *t->aux->specials);
    if (!t->aux->specials) return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    n = 0;
    for (int i = 0; i < t->vocab; i++)
        if ((special_mask & LLM_TOK_MASK(t->types[i])) && llm_tok_len(t, i) > 0) t->aux->specials[n++] = i;
    special_sort_tok = t;
    qsort(t->aux->specials, (size_t)n, sizeof *t->aux->specials, special_cmp);
    int at = 0;
    for (int b = 0; b <= 256; b++) {
        while (at < n && (unsigned char)t->text[t->offset[t->aux->specials[at]]] < b) at++;
        t->aux->special_at[b] = (uint32_t)at;
    }
    return 0;
}

int32_t llm_tok_special_at(const llm_tok *t, const char *s, size_t n)
{
    unsigned char b = (unsigned char)s[0];
    for (uint32_t k = t->aux->special_at[b]; k < t->aux->special_at[b + 1]; k++) {
        int32_t id = t->aux->specials[k];
        uint32_t len = llm_tok_len(t, id);
        if (len <= n && !memcmp(s, t->text + t->offset[id], len)) return id;
    }
    return -1;
}

int llm_tok_has_text(const llm_tok *t, llm_error *err)
{
    if (t->kind == LLM_TOK_IDS) return llm_error_set(err, LLM_ERR_ARG, NO_TEXT);
    return 0;
}

size_t llm_tok_max_ids(const llm_tok *t, size_t len)
{
    switch (t->kind) {
    case LLM_TOK_BPE: return len + 1;
    case LLM_TOK_SPM: return 3 * len + 3;
    default: return len;
    }
}

/* ---- llama2.c BPE encoding ---- */

/* Appends the id of the n-byte code point s, or its bytes' fallback ids. */
static int push_code_point(const llm_tok *t, const char *s, size_t n, size_t at, llm_bpe_sym *syms,
                           int64_t *count, llm_error *err)
{
    int32_t id = llm_tok_lookup(t, s, (uint32_t)n, LLM_TOK_ANY);
    if (id >= 0) {
        syms[(*count)++].id = id;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int b = (unsigned char)s[i] + 3;
        if (b >= t->vocab)
            return llm_error_set(err, LLM_ERR_ARG,
                                 "text byte %zu (0x%02x) has no token: the vocabulary of %d has no "
                                 "byte pieces", at + i, b - 3, t->vocab);
        syms[(*count)++].id = b;
    }
    return 0;
}

typedef struct bpe_ctx {
    const llm_tok *t;
    char buf[2 * LLM_TOK_MAX_PIECE];
} bpe_ctx;

/* llama2.c's pairs: the concatenated pieces, when a piece above the floor. */
static int32_t bpe_pair(void *ctx, const llm_bpe_sym *a, const llm_bpe_sym *b, double *prio)
{
    bpe_ctx *c = ctx;
    const llm_tok *t = c->t;
    uint32_t na = llm_tok_len(t, a->id), nb = llm_tok_len(t, b->id);
    if (na + nb > (uint32_t)t->max_len) return -1;
    memcpy(c->buf, t->text + t->offset[a->id], na);
    memcpy(c->buf + na, t->text + t->offset[b->id], nb);
    int32_t id = llm_tok_lookup(t, c->buf, na + nb, LLM_TOK_ANY);
    if (id < 0 || !(t->scores[id] > MIN_SCORE)) return -1;
    *prio = t->scores[id];
    return id;
}

static int64_t encode_bpe(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                          llm_error *err)
{
    if (len == 0) return 0;
    llm_bpe_sym *syms = calloc(len + 1, sizeof *syms);
    if (!syms) return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory for %zu bytes", len);
    int64_t n = 0;
    int rc = push_code_point(t, " ", 1, 0, syms, &n, err); /* the dummy prefix */
    for (size_t i = 0; rc == 0 && i < len;) {
        size_t j = i + 1; /* a code point: any byte, then up to 3 continuation bytes */
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        rc = push_code_point(t, text + i, j - i, i, syms, &n, err);
        i = j;
    }
    bpe_ctx ctx = {.t = t};
    if (rc == 0) n = llm_bpe_merge(syms, n, bpe_pair, &ctx, err);
    for (int64_t i = 0; rc == 0 && i < n; i++) ids[i] = syms[i].id;
    free(syms);
    return rc < 0 ? rc : n;
}

int64_t llm_tok_encode_text(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                            llm_error *err)
{
    switch (t->kind) {
    case LLM_TOK_BYTES:
        for (size_t i = 0; i < len; i++) ids[i] = (unsigned char)text[i];
        return (int64_t)len;
    case LLM_TOK_BPE: return encode_bpe(t, text, len, ids, err);
    case LLM_TOK_SPM: return llm_tok_spm_encode(t, text, len, ids, err);
    case LLM_TOK_GPT2: return llm_tok_gpt2_encode(t, text, len, ids, err);
    case LLM_TOK_IDS: break;
    }
    return llm_error_set(err, LLM_ERR_ARG, NO_TEXT);
}

/* ---- decoding ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int llm_tok_piece(const llm_tok *t, int32_t id, const char **bytes)
{
    static const unsigned char all_bytes[256] = {
#define B4(i) i, i + 1, i + 2, i + 3
#define B16(i) B4(i), B4(i + 4), B4(i + 8), B4(i + 12)
#define B64(i) B16(i), B16(i + 16), B16(i + 32), B16(i + 48)
        B64(0), B64(64), B64(128), B64(192)
#undef B64
#undef B16
#undef B4
    };
    if (id < 0 || id >= t->vocab) return -1;
    if (t->kind == LLM_TOK_BYTES) {
        if (id > 255) return -1;
        *bytes = (const char *)all_bytes + id;
        return 1;
    }
    if (t->kind == LLM_TOK_IDS) return -1;
    *bytes = t->text + t->offset[id];
    return (int)llm_tok_len(t, id);
}

static int decode_bpe(const llm_tok *t, int32_t prev, int32_t id, char *piece)
{
    if (id < 0 || id >= t->vocab || id == t->bos || id == t->eos) return 0;
    const char *p = t->text + t->offset[id];
    uint32_t n = llm_tok_len(t, id);
    if (t->bos >= 0 && prev == t->bos && n > 0 && p[0] == ' ') p++, n--;
    if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && hex_digit(p[3]) >= 0 &&
        hex_digit(p[4]) >= 0 && p[5] == '>') {
        piece[0] = (char)(hex_digit(p[3]) * 16 + hex_digit(p[4]));
        return 1;
    }
    memcpy(piece, p, n);
    return (int)n;
}

int llm_tok_decode_next(const llm_tok *t, int32_t prev, int32_t id, char *piece)
{
    switch (t->kind) {
    case LLM_TOK_BYTES:
        if (id < 0 || id > 255) return 0;
        piece[0] = (char)id;
        return 1;
    case LLM_TOK_BPE: return decode_bpe(t, prev, id, piece);
    case LLM_TOK_SPM: return llm_tok_spm_decode(t, prev, id, piece);
    case LLM_TOK_GPT2: return llm_tok_gpt2_decode(t, id, piece);
    case LLM_TOK_IDS: break;
    }
    return LLM_ERR_ARG;
}

int llm_tok_decode(const llm_tok *t, int32_t id, char *piece)
{
    return llm_tok_decode_next(t, -1, id, piece);
}

/* ---- the record ---- */

/* Buffered little-endian output of the payload. */
typedef struct out_buf {
    llm_writer *w;
    unsigned char buf[IO_CHUNK];
    size_t n;
} out_buf;

static int put_bytes(out_buf *o, const void *p, size_t n, llm_error *err)
{
    const unsigned char *s = p;
    while (n > 0) {
        if (o->n == IO_CHUNK) {
            LLM_TRY(llm_writer_write(o->w, o->buf, o->n, err));
            o->n = 0;
        }
        size_t k = IO_CHUNK - o->n < n ? IO_CHUNK - o->n : n;
        memcpy(o->buf + o->n, s, k);
        o->n += k, s += k, n -= k;
    }
    return 0;
}

static int put_u32(out_buf *o, uint32_t v, llm_error *err)
{
    unsigned char b[4];
    llm_bytes_put_le32(b, v);
    return put_bytes(o, b, 4, err);
}

static int write_payload(out_buf *o, const llm_tok *t, llm_error *err)
{
    for (int i = 0; i < t->vocab; i++) {
        uint32_t v;
        memcpy(&v, &t->scores[i], 4);
        LLM_TRY(put_u32(o, v, err));
    }
    if (t->kind != LLM_TOK_BPE) LLM_TRY(put_bytes(o, t->types, (size_t)t->vocab, err));
    for (int i = 0; i < t->vocab; i++) LLM_TRY(put_u32(o, llm_tok_len(t, i), err));
    for (int i = 0; i < t->n_merges; i++)
        LLM_TRY(put_u32(o, t->merge_offset[i + 1] - t->merge_offset[i], err));
    LLM_TRY(put_bytes(o, t->text, t->offset[t->vocab], err));
    if (t->n_merges) LLM_TRY(put_bytes(o, t->merge_text, t->merge_offset[t->n_merges], err));
    return o->n ? llm_writer_write(o->w, o->buf, o->n, err) : 0;
}

int llm_tok_write(const llm_tok *t, llm_writer *w, llm_error *err)
{
    char num[7][16];
    const int vals[7] = {t->vocab, t->bos, t->eos, t->unk, t->add_bos, t->add_eos, t->n_merges};
    for (int i = 0; i < 7; i++) snprintf(num[i], sizeof num[i], "%d", vals[i]);
    llm_attr attrs[11] = {{"kind", kind_names[t->kind]}, {"vocab", num[0]}, {"bos", num[1]},
                          {"eos", num[2]}};
    int n_attrs = 4;
    int typed = t->kind == LLM_TOK_SPM || t->kind == LLM_TOK_GPT2;
    if (typed) {
        attrs[n_attrs++] = (llm_attr){"unk", num[3]};
        attrs[n_attrs++] = (llm_attr){"add_bos", num[4]};
        attrs[n_attrs++] = (llm_attr){"add_eos", num[5]};
        attrs[n_attrs++] = (llm_attr){"space_prefix", t->space_prefix ? "1" : "0"};
        attrs[n_attrs++] = (llm_attr){"merges", num[6]};
    }
    if (t->kind == LLM_TOK_GPT2) {
        attrs[n_attrs++] = (llm_attr){"pre", pre_names[t->pre]};
        attrs[n_attrs++] = (llm_attr){"ignore_merges", t->ignore_merges ? "1" : "0"};
    }
    int64_t bytes = 0;
    if (t->kind == LLM_TOK_BPE) bytes = 8 * (int64_t)t->vocab + t->offset[t->vocab];
    if (typed)
        bytes = 9 * (int64_t)t->vocab + 4 * (int64_t)t->n_merges + t->offset[t->vocab] +
                (t->n_merges ? t->merge_offset[t->n_merges] : 0);
    llm_record rec = {.kind = LLM_RECORD_META, .name = "tokenizer", .dtype = LLM_DTYPE_U8,
                      .shape = llm_shape_make(1, (int64_t[]){bytes}), .attrs = attrs, .n_attrs = n_attrs};
    LLM_TRY(llm_writer_begin(w, &rec, err));
    if (bytes) {
        out_buf *o = malloc(sizeof *o);
        if (!o) return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
        o->w = w, o->n = 0;
        int rc = write_payload(o, t, err);
        free(o);
        LLM_TRY(rc);
    }
    return llm_writer_end_record(w, err);
}

static int attr_int(const llm_record *rec, const char *key, long min, long max, int *out,
                    llm_error *err)
{
    const char *v = llm_record_attr(rec, key);
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || errno || x < min || x > max)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: attribute %s is %s%s%s (want %ld..%ld)",
                             rec->name, key, v ? "'" : "missing", v ? v : "", v ? "'" : "", min, max);
    *out = (int)x;
    return 0;
}

/* Reads the whole payload of nbytes into a buffer grown as its bytes arrive
 * (so a record that declares more than it holds costs no more memory than
 * it holds). */
static int read_payload(llm_reader *r, uint64_t nbytes, const char *name, unsigned char **out,
                        llm_error *err)
{
    size_t cap = nbytes < IO_CHUNK ? (size_t)nbytes + 1 : IO_CHUNK, have = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", name);
    while (have < nbytes) {
        if (have == cap) {
            size_t grow = nbytes - have < cap ? (size_t)(nbytes - have) : cap;
            unsigned char *b = realloc(buf, cap + grow);
            if (!b) {
                free(buf);
                return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", name);
            }
            buf = b, cap += grow;
        }
        int64_t got = llm_reader_read(r, buf + have, cap - have, err);
        if (got <= 0) {
            free(buf);
            return got < 0 ? (int)got : llm_error_set(err, LLM_ERR_TRUNCATED, "%s: payload ends early", name);
        }
        have += (size_t)got;
    }
    *out = buf;
    return 0;
}

/* The payload's parts, parsed in place. */
typedef struct payload {
    const unsigned char *scores, *types, *lens, *merge_lens, *bytes, *merge_bytes;
} payload;

/* Checks count little-endian lengths at p (each at most max) and returns
 * their sum in *total. */
static int sum_lengths(const llm_record *rec, const unsigned char *p, int count, uint32_t max,
                       const char *what, uint64_t *total, llm_error *err)
{
    *total = 0;
    for (int i = 0; i < count; i++) {
        uint32_t n = llm_bytes_get_le32(p + 4 * (size_t)i);
        if (n > max)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s %d is %u bytes (at most %u)", rec->name,
                                 what, i, n, max);
        *total += n;
    }
    return 0;
}

/* Lays out and checks the payload of V pieces and M merges (typed: with
 * types; else llama2.c's layout). */
static int parse_payload(const llm_record *rec, const unsigned char *buf, int vocab, int merges,
                         int typed, payload *p, llm_error *err)
{
    uint64_t head = (typed ? 9 : 8) * (uint64_t)vocab + 4 * (uint64_t)merges;
    uint64_t most = head + (uint64_t)vocab * LLM_TOK_MAX_PIECE + (uint64_t)merges * MAX_MERGE;
    uint64_t nbytes = rec->nbytes;
    if (nbytes < head || nbytes > most)
        return llm_error_set(err, LLM_ERR_FORMAT,
                             "%s: payload of %llu bytes cannot hold %d pieces%s (want %llu..%llu)",
                             rec->name, (unsigned long long)nbytes, vocab, merges ? " and their merges" : "",
                             (unsigned long long)head, (unsigned long long)most);
    if (!buf) return 0; /* sizes only, before reading */
    p->scores = buf;
    p->types = typed ? buf + 4 * (size_t)vocab : NULL;
    p->lens = buf + (typed ? 5 : 4) * (size_t)vocab;
    p->merge_lens = p->lens + 4 * (size_t)vocab;
    p->bytes = p->merge_lens + 4 * (size_t)merges;
    uint64_t s, sm;
    LLM_TRY(sum_lengths(rec, p->lens, vocab, LLM_TOK_MAX_PIECE, "piece", &s, err));
    LLM_TRY(sum_lengths(rec, p->merge_lens, merges, MAX_MERGE, "merge", &sm, err));
    if (s + sm != nbytes - head)
        return llm_error_set(err, LLM_ERR_FORMAT,
                             "%s: the piece%s lengths add up to %llu bytes, the payload holds %llu",
                             rec->name, merges ? " and merge" : "", (unsigned long long)(s + sm),
                             (unsigned long long)(nbytes - head));
    p->merge_bytes = p->bytes + s;
    return 0;
}

/* Makes the tokenizer the parsed payload describes (its arrays copied). */
static int build_from_payload(llm_tok *t, const llm_record *rec, llm_tok_kind kind, llm_tok_spec *s,
                              const payload *p, llm_error *err)
{
    int V = s->vocab, M = s->n_merges;
    const char **strs = malloc(((size_t)V + (size_t)M + 1) * sizeof *strs);
    uint32_t *lens = malloc(((size_t)V + (size_t)M + 1) * sizeof *lens);
    float *scores = malloc((size_t)V * sizeof *scores);
    int32_t *types = malloc((size_t)V * sizeof *types);
    int rc = strs && lens && scores && types ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", rec->name);
    const unsigned char *at = p->bytes;
    for (int i = 0; rc == 0 && i < V + M; i++) {
        lens[i] = llm_bytes_get_le32(p->lens + 4 * (size_t)i); /* the merge lengths follow */
        strs[i] = (const char *)at;
        at += lens[i];
    }
    for (int i = 0; rc == 0 && i < V; i++) {
        uint32_t v = llm_bytes_get_le32(p->scores + 4 * (size_t)i);
        memcpy(&scores[i], &v, 4);
        types[i] = p->types ? p->types[i] : LLM_TOKT_NORMAL;
    }
    if (rc == 0) {
        s->pieces = strs, s->lens = lens, s->scores = scores, s->types = p->types ? types : NULL;
        s->merges = strs + V, s->merge_lens = lens + V;
        if (kind == LLM_TOK_BPE) rc = llm_tok_bpe(t, V, strs, lens, scores, s->bos, s->eos, err);
        else if (kind == LLM_TOK_SPM) rc = llm_tok_spm(t, s, err);
        else rc = llm_tok_gpt2(t, s, err);
        if (rc == LLM_ERR_ARG) { /* what the constructors refuse is a bad record here */
            rc = LLM_ERR_FORMAT;
            if (err) err->code = rc;
        }
    }
    free(strs);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

/* The attributes of kinds spm and gpt2, into s. */
static int read_typed_attrs(const llm_record *rec, llm_tok_kind kind, llm_tok_spec *s, llm_error *err)
{
    LLM_TRY(attr_int(rec, "unk", -1, s->vocab - 1, &s->unk, err));
    LLM_TRY(attr_int(rec, "add_bos", 0, 1, &s->add_bos, err));
    LLM_TRY(attr_int(rec, "add_eos", 0, 1, &s->add_eos, err));
    LLM_TRY(attr_int(rec, "space_prefix", 0, 1, &s->space_prefix, err));
    LLM_TRY(attr_int(rec, "merges", 0, kind == LLM_TOK_GPT2 ? LLM_TOK_MAX_VOCAB : 0, &s->n_merges, err));
    if (kind == LLM_TOK_GPT2) {
        LLM_TRY(attr_int(rec, "ignore_merges", 0, 1, &s->ignore_merges, err));
        const char *pre = llm_record_attr(rec, "pre");
        int k = -1;
        for (int i = 0; pre && i < 2; i++)
            if (!strcmp(pre, pre_names[i])) k = i;
        if (k < 0)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: unknown pre-tokenizer '%s' (want gpt2 or llama3)",
                                 rec->name, pre ? pre : "(none)");
        s->pre = (llm_tok_pre)k;
    }
    return 0;
}

int llm_tok_read(llm_tok *t, llm_reader *r, const llm_record *rec, llm_error *err)
{
    const char *kind = llm_record_attr(rec, "kind");
    int k = -1;
    for (int i = LLM_TOK_BYTES; kind && i <= LLM_TOK_GPT2; i++)
        if (!strcmp(kind, kind_names[i])) k = i;
    if (k < 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: unknown tokenizer kind '%s'", rec->name,
                             kind ? kind : "(none)");
    if (rec->dtype != LLM_DTYPE_U8 || rec->shape.ndim != 1)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: payload must be u8 of one dimension", rec->name);
    llm_tok_spec s = {.unk = -1};
    LLM_TRY(attr_int(rec, "vocab", 1, LLM_TOK_MAX_VOCAB, &s.vocab, err));
    LLM_TRY(attr_int(rec, "bos", -1, s.vocab - 1, &s.bos, err));
    LLM_TRY(attr_int(rec, "eos", -1, s.vocab - 1, &s.eos, err));
    llm_tok fresh;
    if (k == LLM_TOK_BYTES || k == LLM_TOK_IDS) {
        if (rec->nbytes != 0)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: a %s tokenizer has no payload (%llu bytes)",
                                 rec->name, kind, (unsigned long long)rec->nbytes);
        if (k == LLM_TOK_IDS) {
            LLM_TRY(llm_tok_ids(&fresh, s.vocab, s.bos, s.eos, err));
        } else {
            llm_tok_bytes(&fresh);
            if (s.vocab != fresh.vocab || s.bos != fresh.bos || s.eos != fresh.eos)
                return llm_error_set(err, LLM_ERR_FORMAT,
                                     "%s: byte tokenizer with vocab %d, bos %d, eos %d (want 258, 256, 257)",
                                     rec->name, s.vocab, s.bos, s.eos);
        }
    } else {
        int typed = k != LLM_TOK_BPE;
        if (typed) LLM_TRY(read_typed_attrs(rec, (llm_tok_kind)k, &s, err));
        payload p;
        LLM_TRY(parse_payload(rec, NULL, s.vocab, s.n_merges, typed, &p, err));
        unsigned char *buf = NULL;
        LLM_TRY(read_payload(r, rec->nbytes, rec->name, &buf, err));
        int rc = parse_payload(rec, buf, s.vocab, s.n_merges, typed, &p, err);
        if (rc == 0) rc = build_from_payload(&fresh, rec, (llm_tok_kind)k, &s, &p, err);
        free(buf);
        LLM_TRY(rc);
    }
    llm_tok_free(t);
    *t = fresh;
    return 0;
}
