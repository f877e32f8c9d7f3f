/* bpe — the byte-pair merge loop (see bpe.h): an indexed max-heap of the
 * symbols whose pair with their right neighbour merges. */
#include "bpe.h"

#include <stdlib.h>

typedef struct merger {
    llm_bpe_sym *syms;
    llm_bpe_pair_fn pair;
    void *ctx;
    int32_t *next, *prev; /* -1 at the ends */
    int32_t *cand;        /* the id the pair (i, next[i]) merges into, or -1 */
    double *prio;         /* its priority */
    int32_t *heap;        /* symbols, best first */
    int32_t *hpos;        /* each symbol's place in heap, or -1 */
    int32_t size;
} merger;

static void find_candidate(merger *m, int32_t i)
{
    int32_t j = m->next[i];
    m->cand[i] = j < 0 ? -1 : m->pair(m->ctx, &m->syms[i], &m->syms[j], &m->prio[i]);
}

/* a goes before b: a higher priority, or the same further left. */
static int better(const merger *m, int32_t a, int32_t b)
{
    return m->prio[a] > m->prio[b] || (m->prio[a] == m->prio[b] && a < b);
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
    find_candidate(m, sym);
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

int64_t llm_bpe_merge(llm_bpe_sym *syms, int64_t n, llm_bpe_pair_fn pair, void *ctx,
                      llm_error *err)
{
    if (n < 2) return n;
    if (n > INT32_MAX) return llm_error_set(err, LLM_ERR_LIMIT, "text too long to tokenize at once");
    merger m = {.syms = syms, .pair = pair, .ctx = ctx};
    int32_t *mem = malloc((size_t)n * 5 * sizeof *mem);
    m.prio = malloc((size_t)n * sizeof *m.prio);
    if (!mem || !m.prio) {
        free(mem);
        free(m.prio);
        return llm_error_set(err, LLM_ERR_NOMEM, "tokenizer: out of memory for %lld symbols",
                             (long long)n);
    }
    m.next = mem, m.prev = mem + n, m.cand = mem + 2 * n, m.heap = mem + 3 * n, m.hpos = mem + 4 * n;
    for (int32_t i = 0; i < n; i++) {
        m.next[i] = i + 1 < n ? i + 1 : -1;
        m.prev[i] = i - 1;
        m.hpos[i] = -1;
    }
    for (int32_t i = 0; i < n; i++) {
        find_candidate(&m, i);
        if (m.cand[i] >= 0) heap_put(&m, m.size++, i);
    }
    for (int32_t at = m.size / 2 - 1; at >= 0; at--) sift_down(&m, at);
    while (m.size > 0) {
        int32_t a = m.heap[0], b = m.next[a];
        syms[a].id = m.cand[a];
        syms[a].len += syms[b].len;
        if (m.hpos[b] >= 0) heap_remove(&m, b);
        m.next[a] = m.next[b];
        if (m.next[b] >= 0) m.prev[m.next[b]] = a;
        heap_refresh(&m, a);
        if (m.prev[a] >= 0) heap_refresh(&m, m.prev[a]);
    }
    int64_t k = 0;
    for (int32_t i = 0; i >= 0; i = m.next[i]) syms[k++] = syms[i]; /* k <= i: in place */
    free(mem);
    free(m.prio);
    return k;
}
