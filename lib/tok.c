/* tok — the byte-level, BPE and ids-only tokenizers and their record in
 * checkpoints (the layout is in tok.h). */
#include "tok.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

#define NO_TEXT "this model has no tokenizer; give token ids with --ids"
#define MIN_SCORE (-1e10f) /* run.c's starting best score: pairs at or below never merge */
#define IO_CHUNK 65536

/* "bytes", "bpe", "ids" ("unknown" otherwise): the record's "kind". */
static const char *kind_name(llm_tok_kind kind)
{
    switch (kind) {
    case LLM_TOK_BYTES: return "bytes";
    case LLM_TOK_BPE: return "bpe";
    case LLM_TOK_IDS: return "ids";
    }
    return "unknown";
}

void llm_tok_bytes(llm_tok *t)
{
    memset(t, 0, sizeof *t);
    t->kind = LLM_TOK_BYTES;
    t->vocab = 258;
    t->bos = 256;
    t->eos = 257;
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
    LLM_TRY(check_special(vocab, bos, eos, err));
    t->kind = LLM_TOK_IDS;
    t->vocab = vocab;
    t->bos = bos;
    t->eos = eos;
    return 0;
}

void llm_tok_free(llm_tok *t)
{
    if (!t) return;
    free(t->scores);
    free(t->offset);
    free(t->text);
    free(t->sorted);
    memset(t, 0, sizeof *t);
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

static uint32_t piece_len(const llm_tok *t, int32_t id) { return t->offset[id + 1] - t->offset[id]; }

/* The lowest id whose piece is the n bytes at s, or -1. */
static int32_t lookup(const llm_tok *t, const char *s, uint32_t n)
{
    if (n > (uint32_t)t->max_len) return -1;
    size_t lo = 0, hi = (size_t)t->vocab; /* first entry >= s in [lo, hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t id = t->sorted[mid];
        if (bytes_cmp(t->text + t->offset[id], piece_len(t, id), s, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo == (size_t)t->vocab) return -1;
    int32_t id = t->sorted[lo];
    return bytes_cmp(t->text + t->offset[id], piece_len(t, id), s, n) == 0 ? id : -1;
}

/* Completes a BPE tokenizer from arrays it takes ownership of (freed on
 * error): scores [V], offset [V+1], text [offset[V]]. */
static int finish_bpe(llm_tok *t, int vocab, float *scores, uint32_t *offset, char *text, int bos,
                      int eos, llm_error *err)
{
    memset(t, 0, sizeof *t);
    sort_entry *e = malloc((size_t)vocab * sizeof *e);
    int32_t *sorted = malloc((size_t)vocab * sizeof *sorted);
    if (!e || !sorted) {
        free(e);
        free(sorted);
        free(scores);
        free(offset);
        free(text);
        return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    }
    int max_len = 0;
    for (int i = 0; i < vocab; i++) {
        e[i] = (sort_entry){text + offset[i], offset[i + 1] - offset[i], i};
        if ((int)e[i].n > max_len) max_len = (int)e[i].n;
    }
    qsort(e, (size_t)vocab, sizeof *e, sort_entry_cmp);
    for (int i = 0; i < vocab; i++) sorted[i] = e[i].id;
    free(e);
    *t = (llm_tok){.kind = LLM_TOK_BPE, .vocab = vocab, .bos = bos, .eos = eos, .scores = scores,
                   .offset = offset, .text = text, .sorted = sorted, .max_len = max_len};
    return 0;
}

int llm_tok_bpe(llm_tok *t, int vocab, const char *const *pieces, const uint32_t *lens,
                const float *scores, int bos, int eos, llm_error *err)
{
    memset(t, 0, sizeof *t);
    LLM_TRY(check_special(vocab, bos, eos, err));
    if (!pieces || !scores) return llm_error_set(err, LLM_ERR_ARG, "tokenizer: no pieces or scores");
    size_t total = 0;
    for (int i = 0; i < vocab; i++) {
        if (!pieces[i]) return llm_error_set(err, LLM_ERR_ARG, "tokenizer: piece %d is NULL", i);
        size_t n = lens ? lens[i] : strlen(pieces[i]);
        if (n > LLM_TOK_MAX_PIECE)
            return llm_error_set(err, LLM_ERR_ARG, "tokenizer: piece %d is %zu bytes (at most %d)", i, n,
                                 LLM_TOK_MAX_PIECE);
        total += n;
    }
    float *s = malloc((size_t)vocab * sizeof *s);
    uint32_t *off = malloc(((size_t)vocab + 1) * sizeof *off);
    char *text = malloc(total + 1);
    if (!s || !off || !text) {
        free(s);
        free(off);
        free(text);
        return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    }
    memcpy(s, scores, (size_t)vocab * sizeof *s);
    off[0] = 0;
    for (int i = 0; i < vocab; i++) {
        uint32_t n = lens ? lens[i] : (uint32_t)strlen(pieces[i]);
        if (n) memcpy(text + off[i], pieces[i], n);
        off[i + 1] = off[i] + n;
    }
    return finish_bpe(t, vocab, s, off, text, bos, eos, err);
}

int llm_tok_has_text(const llm_tok *t, llm_error *err)
{
    if (t->kind == LLM_TOK_IDS) return llm_error_set(err, LLM_ERR_ARG, NO_TEXT);
    return 0;
}

size_t llm_tok_max_ids(size_t len) { return len + 1; }

/* ---- BPE encoding ---- */

/* Appends the id of the n-byte code point s, or its bytes' fallback ids. */
static int push_code_point(const llm_tok *t, const char *s, size_t n, size_t at, int32_t *ids,
                           int64_t *count, llm_error *err)
{
    int32_t id = lookup(t, s, (uint32_t)n);
    if (id >= 0) {
        ids[(*count)++] = id;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int b = (unsigned char)s[i] + 3;
        if (b >= t->vocab)
            return llm_error_set(err, LLM_ERR_ARG,
                                 "text byte %zu (0x%02x) has no token: the vocabulary of %d has no "
                                 "byte pieces", at + i, b - 3, t->vocab);
        ids[(*count)++] = b;
    }
    return 0;
}

/* The merge state: a linked list of symbols over ids[0..n-1] and an indexed
 * max-heap of the symbols whose pair with their right neighbour merges. */
typedef struct merger {
    const llm_tok *t;
    int32_t *ids;
    int32_t *next, *prev; /* -1 at the ends */
    int32_t *cand;        /* the id the pair (i, next[i]) merges into, or -1 */
    int32_t *heap;        /* symbols, best first */
    int32_t *hpos;        /* each symbol's place in heap, or -1 */
    int32_t size;
    char buf[2 * LLM_TOK_MAX_PIECE];
} merger;

static int32_t candidate(merger *m, int32_t i)
{
    int32_t j = m->next[i];
    if (j < 0) return -1;
    const llm_tok *t = m->t;
    uint32_t na = piece_len(t, m->ids[i]), nb = piece_len(t, m->ids[j]);
    if (na + nb > (uint32_t)t->max_len) return -1;
    memcpy(m->buf, t->text + t->offset[m->ids[i]], na);
    memcpy(m->buf + na, t->text + t->offset[m->ids[j]], nb);
    int32_t id = lookup(t, m->buf, na + nb);
    return id >= 0 && t->scores[id] > MIN_SCORE ? id : -1;
}

/* a goes before b: a higher score, or the same score further left. */
static int better(const merger *m, int32_t a, int32_t b)
{
    float sa = m->t->scores[m->cand[a]], sb = m->t->scores[m->cand[b]];
    return sa > sb || (sa == sb && a < b);
}

static void heap_put(merger *m, int32_t at, int32_t sym)
{
    m->heap[at] = sym;
    m->hpos[sym] = at;
}

static void sift_up(merger *m, int32_t at)
{
    int32_t sym = m->heap[at];
    while (at > 0) {
        int32_t parent = (at - 1) / 2;
        if (!better(m, sym, m->heap[parent])) break;
        heap_put(m, at, m->heap[parent]);
        at = parent;
    }
    heap_put(m, at, sym);
}

static void sift_down(merger *m, int32_t at)
{
    int32_t sym = m->heap[at];
    for (;;) {
        int32_t c = 2 * at + 1;
        if (c >= m->size) break;
        if (c + 1 < m->size && better(m, m->heap[c + 1], m->heap[c])) c++;
        if (!better(m, m->heap[c], sym)) break;
        heap_put(m, at, m->heap[c]);
        at = c;
    }
    heap_put(m, at, sym);
}

static void heap_remove(merger *m, int32_t sym)
{
    int32_t at = m->hpos[sym];
    m->hpos[sym] = -1;
    int32_t last = m->heap[--m->size];
    if (at == m->size) return;
    heap_put(m, at, last);
    sift_up(m, at);
    sift_down(m, m->hpos[last]);
}

/* Recomputes sym's candidate and its place in the heap. */
static void heap_refresh(merger *m, int32_t sym)
{
    m->cand[sym] = candidate(m, sym);
    if (m->cand[sym] < 0) {
        if (m->hpos[sym] >= 0) heap_remove(m, sym);
        return;
    }
    if (m->hpos[sym] < 0) {
        heap_put(m, m->size++, sym);
        sift_up(m, m->hpos[sym]);
    } else {
        sift_up(m, m->hpos[sym]);
        sift_down(m, m->hpos[sym]);
    }
}

/* Merges the n ids in place; returns the new count or LLM_ERR_NOMEM. */
static int64_t merge_all(const llm_tok *t, int32_t *ids, int64_t n, llm_error *err)
{
    if (n < 2) return n;
    if (n > INT32_MAX) return llm_error_set(err, LLM_ERR_LIMIT, "text too long to tokenize at once");
    merger *m = malloc(sizeof *m);
    int32_t *mem = malloc((size_t)n * 5 * sizeof *mem);
    if (!m || !mem) {
        free(m);
        free(mem);
        return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory for %lld tokens",
                             (long long)n);
    }
    *m = (merger){.t = t, .ids = ids, .next = mem, .prev = mem + n, .cand = mem + 2 * n,
                  .heap = mem + 3 * n, .hpos = mem + 4 * n};
    for (int32_t i = 0; i < n; i++) {
        m->next[i] = i + 1 < n ? i + 1 : -1;
        m->prev[i] = i - 1;
        m->hpos[i] = -1;
    }
    for (int32_t i = 0; i < n; i++) {
        m->cand[i] = candidate(m, i);
        if (m->cand[i] >= 0) heap_put(m, m->size++, i);
    }
    for (int32_t at = m->size / 2 - 1; at >= 0; at--) sift_down(m, at);
    while (m->size > 0) {
        int32_t a = m->heap[0], b = m->next[a];
        ids[a] = m->cand[a];
        if (m->hpos[b] >= 0) heap_remove(m, b);
        m->next[a] = m->next[b];
        if (m->next[b] >= 0) m->prev[m->next[b]] = a;
        heap_refresh(m, a);
        if (m->prev[a] >= 0) heap_refresh(m, m->prev[a]);
    }
    int64_t k = 0;
    for (int32_t i = 0; i >= 0; i = m->next[i]) ids[k++] = ids[i]; /* k <= i: in place */
    free(mem);
    free(m);
    return k;
}

static int64_t encode_bpe(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                          llm_error *err)
{
    if (len == 0) return 0;
    int64_t n = 0;
    LLM_TRY(push_code_point(t, " ", 1, 0, ids, &n, err)); /* the dummy prefix */
    for (size_t i = 0; i < len;) {
        size_t j = i + 1; /* a code point: any byte, then up to 3 continuation bytes */
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        LLM_TRY(push_code_point(t, text + i, j - i, i, ids, &n, err));
        i = j;
    }
    return merge_all(t, ids, n, err);
}

int64_t llm_tok_encode_text(const llm_tok *t, const char *text, size_t len, int32_t *ids,
                            llm_error *err)
{
    switch (t->kind) {
    case LLM_TOK_BYTES:
        for (size_t i = 0; i < len; i++) ids[i] = (unsigned char)text[i];
        return (int64_t)len;
    case LLM_TOK_BPE: return encode_bpe(t, text, len, ids, err);
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
    if (t->kind != LLM_TOK_BPE) return -1;
    *bytes = t->text + t->offset[id];
    return (int)piece_len(t, id);
}

int llm_tok_decode_next(const llm_tok *t, int32_t prev, int32_t id, char *piece)
{
    if (t->kind == LLM_TOK_IDS) return LLM_ERR_ARG;
    if (t->kind == LLM_TOK_BYTES) {
        if (id < 0 || id > 255) return 0;
        piece[0] = (char)id;
        return 1;
    }
    if (id < 0 || id >= t->vocab || id == t->bos || id == t->eos) return 0;
    const char *p = t->text + t->offset[id];
    uint32_t n = piece_len(t, id);
    if (t->bos >= 0 && prev == t->bos && n > 0 && p[0] == ' ') p++, n--;
    if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && hex_digit(p[3]) >= 0 &&
        hex_digit(p[4]) >= 0 && p[5] == '>') {
        piece[0] = (char)(hex_digit(p[3]) * 16 + hex_digit(p[4]));
        return 1;
    }
    memcpy(piece, p, n);
    return (int)n;
}

int llm_tok_decode(const llm_tok *t, int32_t id, char *piece)
{
    return llm_tok_decode_next(t, -1, id, piece);
}

/* ---- the record ---- */

/* Writes count u32 values, from vals or from floats, little-endian. */
static int write_words(llm_writer *w, const uint32_t *vals, const float *floats, size_t count,
                       unsigned char *buf, llm_error *err)
{
    for (size_t i = 0; i < count;) {
        size_t k = 0;
        for (; i < count && k + 4 <= IO_CHUNK; i++, k += 4) {
            uint32_t v;
            if (vals) v = vals[i];
            else memcpy(&v, &floats[i], 4);
            llm_bytes_put_le32(buf + k, v);
        }
        LLM_TRY(llm_writer_write(w, buf, k, err));
    }
    return 0;
}

static int write_payload(llm_writer *w, const llm_tok *t, llm_error *err)
{
    unsigned char *buf = malloc(IO_CHUNK);
    uint32_t *lens = malloc((size_t)t->vocab * sizeof *lens);
    int rc = buf && lens ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory");
    for (int i = 0; rc == 0 && i < t->vocab; i++) lens[i] = piece_len(t, i);
    if (rc == 0) rc = write_words(w, NULL, t->scores, (size_t)t->vocab, buf, err);
    if (rc == 0) rc = write_words(w, lens, NULL, (size_t)t->vocab, buf, err);
    if (rc == 0 && t->offset[t->vocab]) rc = llm_writer_write(w, t->text, t->offset[t->vocab], err);
    free(buf);
    free(lens);
    return rc;
}

int llm_tok_write(const llm_tok *t, llm_writer *w, llm_error *err)
{
    char num[3][16];
    snprintf(num[0], sizeof num[0], "%d", t->vocab);
    snprintf(num[1], sizeof num[1], "%d", t->bos);
    snprintf(num[2], sizeof num[2], "%d", t->eos);
    llm_attr attrs[4] = {{"kind", kind_name(t->kind)}, {"vocab", num[0]}, {"bos", num[1]},
                         {"eos", num[2]}};
    int64_t bytes = t->kind == LLM_TOK_BPE ? 8 * (int64_t)t->vocab + t->offset[t->vocab] : 0;
    llm_record rec = {.kind = LLM_RECORD_META, .name = "tokenizer", .dtype = LLM_DTYPE_U8,
                      .shape = llm_shape_make(1, (int64_t[]){bytes}), .attrs = attrs, .n_attrs = 4};
    LLM_TRY(llm_writer_begin(w, &rec, err));
    if (t->kind == LLM_TOK_BPE) LLM_TRY(write_payload(w, t, err));
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

/* Reads exactly n payload bytes. */
static int read_exact(llm_reader *r, void *buf, size_t n, const char *name, llm_error *err)
{
    int64_t got = llm_reader_read(r, buf, n, err);
    if (got < 0) return (int)got;
    if ((size_t)got != n)
        return llm_error_set(err, LLM_ERR_TRUNCATED, "%s: payload ends early", name);
    return 0;
}

static int read_bpe(llm_tok *t, llm_reader *r, const llm_record *rec, int vocab, int bos, int eos,
                    llm_error *err)
{
    uint64_t head = 8 * (uint64_t)vocab, nbytes = rec->nbytes;
    if (nbytes < head || nbytes - head > (uint64_t)vocab * LLM_TOK_MAX_PIECE)
        return llm_error_set(err, LLM_ERR_FORMAT,
                             "%s: payload of %llu bytes cannot hold %d pieces (want %llu..%llu)",
                             rec->name, (unsigned long long)nbytes, vocab, (unsigned long long)head,
                             (unsigned long long)(head + (uint64_t)vocab * LLM_TOK_MAX_PIECE));
    unsigned char *raw = malloc((size_t)head);
    float *scores = malloc((size_t)vocab * sizeof *scores);
    uint32_t *offset = malloc(((size_t)vocab + 1) * sizeof *offset);
    char *text = NULL;
    int rc = raw && scores && offset ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", rec->name);
    if (rc == 0) rc = read_exact(r, raw, (size_t)head, rec->name, err);
    uint64_t total = 0;
    for (int i = 0; rc == 0 && i < vocab; i++) {
        uint32_t s = llm_bytes_get_le32(raw + 4 * (size_t)i), n = llm_bytes_get_le32(raw + 4 * ((size_t)vocab + i));
        memcpy(&scores[i], &s, 4);
        if (n > LLM_TOK_MAX_PIECE)
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: piece %d is %u bytes (at most %d)", rec->name,
                               i, n, LLM_TOK_MAX_PIECE);
        offset[i] = (uint32_t)total;
        total += n;
    }
    if (rc == 0 && total != nbytes - head)
        rc = llm_error_set(err, LLM_ERR_FORMAT,
                           "%s: the piece lengths add up to %llu bytes, the payload holds %llu",
                           rec->name, (unsigned long long)total, (unsigned long long)(nbytes - head));
    if (rc == 0) {
        offset[vocab] = (uint32_t)total;
        text = malloc((size_t)total + 1);
        if (!text) rc = llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", rec->name);
    }
    if (rc == 0 && total) rc = read_exact(r, text, (size_t)total, rec->name, err);
    free(raw);
    if (rc < 0) {
        free(scores);
        free(offset);
        free(text);
        return rc;
    }
    return finish_bpe(t, vocab, scores, offset, text, bos, eos, err);
}

int llm_tok_read(llm_tok *t, llm_reader *r, const llm_record *rec, llm_error *err)
{
    const char *kind = llm_record_attr(rec, "kind");
    int k = -1;
    for (int i = LLM_TOK_BYTES; kind && i <= LLM_TOK_IDS; i++)
        if (!strcmp(kind, kind_name((llm_tok_kind)i))) k = i;
    if (k < 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: unknown tokenizer kind '%s'", rec->name,
                             kind ? kind : "(none)");
    if (rec->dtype != LLM_DTYPE_U8 || rec->shape.ndim != 1)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: payload must be u8 of one dimension", rec->name);
    int vocab, bos, eos;
    LLM_TRY(attr_int(rec, "vocab", 1, LLM_TOK_MAX_VOCAB, &vocab, err));
    LLM_TRY(attr_int(rec, "bos", -1, vocab - 1, &bos, err));
    LLM_TRY(attr_int(rec, "eos", -1, vocab - 1, &eos, err));
    if (k != LLM_TOK_BPE && rec->nbytes != 0)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: a %s tokenizer has no payload (%llu bytes)",
                             rec->name, kind, (unsigned long long)rec->nbytes);
    llm_tok fresh;
    if (k == LLM_TOK_BYTES) {
        llm_tok_bytes(&fresh);
        if (vocab != fresh.vocab || bos != fresh.bos || eos != fresh.eos)
            return llm_error_set(err, LLM_ERR_FORMAT,
                                 "%s: byte tokenizer with vocab %d, bos %d, eos %d (want 258, 256, 257)",
                                 rec->name, vocab, bos, eos);
    } else if (k == LLM_TOK_IDS) {
        LLM_TRY(llm_tok_ids(&fresh, vocab, bos, eos, err));
    } else {
        LLM_TRY(read_bpe(&fresh, r, rec, vocab, bos, eos, err));
    }
    llm_tok_free(t);
    *t = fresh;
    return 0;
}
