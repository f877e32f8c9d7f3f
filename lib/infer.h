/* infer — running a trained model: the prompt in one batched pass (every
 * matrix product through sgemm), then one token at a time against a KV cache
 * (matrix-vector products streaming each weight once).  With several slots,
 * each holding its own sequence and cache, one decode step runs a token of
 * every active sequence through the same matrix products, so each weight is
 * streamed once for all of them (continuous batching: a finished sequence's
 * slot is reset and takes the next prompt while the others go on).
 *
 *     llm_infer s;
 *     LLM_TRY(llm_infer_init(&s, &model, &opts, &err));      // opts: ctx, chunk, window
 *     LLM_TRY(llm_infer_feed(&s, prompt, n, 0, &err));       // logits of the last token
 *     int next = llm_sample(s.logits, V, &samp, &rng);   // sample.h
 *     LLM_TRY(llm_infer_feed(&s, &next, 1, 0, &err));        // and so on
 *     llm_infer_free(&s);
 *
 * Letters: C tokens per feed (chunk), P cache capacity (ctx), the rest as in
 * model.h.  Positions run 0..P-1; the cache holds keys after RoPE.
 *
 * The reference is llm_model_forward (model.h).  A pass here takes one of
 * two paths, and tests/unit/test_infer.c checks both against it position
 * by position: up to LLM_INFER_ROWS rows without a tap, every product
 * streams its weights once inside one parallel region (matvec.h, the
 * decode step); longer passes go through sgemm.  They stay two because
 * they sum in different orders: running the decode step through sgemm
 * changed the last bits of the logits on some of the tests' shapes, and so
 * the generated text, and a prompt through the row-streaming products gives
 * up sgemm's cache blocking.
 */
#ifndef LLM_INFER_H
#define LLM_INFER_H

#include "err.h"
#include "model.h"
#include "rope.h"

/* Passes of at most this many rows (a decode step, a short feed) stream each
 * weight once for all rows (matvec.h); longer ones go through sgemm. */
#define LLM_INFER_ROWS 16

typedef struct llm_infer_opts {
    int ctx;      /* P: tokens the cache holds (0: the model's seq_len) */
    int chunk;    /* C: most tokens per llm_infer_feed (0: ctx) */
    int window;   /* sliding-window attention (0: the model's own setting) */
    const llm_rope_scaling *rope; /* NULL: plain RoPE */
    int slots;    /* S: sequences held at once (0: 1) */
} llm_infer_opts;

/* Receives what the model computes as it runs (llm-gen's dumps): the input
 * each linear layer reads, named after its weight ("layers.L.attn.wq.in",
 * shape [n, D], which wk and wv read too; "layers.L.attn.wo.in";
 * "layers.L.mlp.w1.in", read by w3 too; "layers.L.mlp.w2.in"; "cls.in"), and,
 * when probs is set, the attention probabilities "layers.L.attn.probs" of
 * shape [H, n, pos+n].  A negative return stops the feed with that error. */
typedef struct llm_infer_tap {
    int (*fn)(void *ctx, const char *name, const float *data, const llm_shape *shape,
              llm_error *err);
    void *ctx;
    int acts;  /* call fn with the linear layers' inputs */
    int probs; /* call fn with the attention probabilities */
} llm_infer_tap;

typedef struct llm_infer {
    const llm_model *m;
    int ctx, chunk, window, slots;
    int threads;        /* OpenMP threads of a decode step (at init) */
    int rows;           /* R = max(chunk, slots): most tokens per pass */
    int pos;            /* tokens in slot 0's cache */
    int *slot_pos;      /* [S] tokens in each slot's cache */
    struct llm_infer_segment *seg; /* [S] the sequences of the pass being run */
    float attn_scale;   /* multiplies q.k/sqrt(E) (YaRN's temperature; else 1) */
    /* Everything below is sized by what the passes so far used, never by P
     * or R alone: a pass grows what it needs (doubling), so memory follows
     * the tokens actually fed, whatever context the model declares. */
    llm_rope rope;      /* positions 0..ctx-1, tabulated as they come into use */
    float **cache;      /* [S] each slot's keys and values, [L][2][P][K*E] (layer, keys then
                         * values, position): reserved whole at the slot's first pass,
                         * resident as positions are written (pages.h) */
    size_t *cache_map;  /* [S] bytes mapped for each (llm_pages_alloc) */
    int *cache_ready;   /* [S] positions of each whose pages are resident (populated) */
    int rows_cap;       /* rows the per-row buffers below have room for (<= R) */
    float *x, *xn;      /* [rows, D] */
    float *q, *att;     /* [rows, H*E] */
    float *kn, *vn;     /* [rows, K*E] new keys and values before they enter a cache */
    float *h1, *h3;     /* [rows, F] */
    float *lse;         /* [H, rows] */
    llm_qact xq;        /* a decode step's input of a quantized product, quantized
                         * once for every thread (rows_cap rows; none for a float model) */
    float *logits;      /* [rows, V]: after a pass with all_logits, row i holds
                         * row i's logits; without, row g holds the logits of
                         * the last token of sequence g of the pass */
    float *scores;      /* [threads, scores_cap] one query's attention scores, per thread */
    int scores_cap;     /* keys a thread's scores have room for */
    int logit_rows;     /* rows of logits the last pass filled */
    const float *last;  /* [V]: the last fed token's logits (a row of logits) */
    llm_infer_tap tap;  /* zeroed: nothing is reported */
    float *probs;       /* [H, n, pos+n] for tap.probs, grown on demand */
    size_t probs_cap;
    size_t cache_bytes; /* the caches of every slot at the full context */
} llm_infer;

/* Sets up inference; the caches and scratch are allocated by the passes, as
 * their tokens need them (a slot's cache at its first pass, for the whole
 * context, its memory resident as it fills).  Refuses a ctx whose full cache would not fit in
 * this machine's memory, saying how much it needs. */
int llm_infer_init(llm_infer *s, const llm_model *m, const llm_infer_opts *o, llm_error *err);
void llm_infer_free(llm_infer *s);
/* Empties every slot's cache (position 0 again). */
void llm_infer_reset(llm_infer *s);
/* Empties one slot's cache. */
void llm_infer_reset_slot(llm_infer *s, int slot);

/* Runs n tokens (1 <= n <= chunk) at positions pos..pos+n-1 and appends
 * their keys and values to the cache.  Logits go to s->logits: every row when
 * all_logits, else only the last token's, in row 0; s->last points to them
 * (until the next pass, which may move the buffer).  The ids are checked
 * first (llm_model_check_ids with LLM_IDS_VIRTUAL: this and every other pass
 * refuse an id out of range, LLM_ERR_ARG). */
int llm_infer_feed(llm_infer *s, const int32_t *tokens, int n, int all_logits, llm_error *err);
/* The same for the sequence in slot (0 <= slot < slots). */
int llm_infer_feed_slot(llm_infer *s, int slot, const int32_t *tokens, int n, int all_logits,
                        llm_error *err);
/* One decode step for B sequences at once (B <= slots): tokens[b] enters
 * slot slots[b] (distinct slots); logits row b is its next-token logits. */
int llm_infer_decode(llm_infer *s, const int *slots, const int32_t *tokens, int B, llm_error *err);

/* Several prompts in one pass (their lengths adding up to at most chunk):
 * prompts[b] continues the sequence in slot slots[b] (distinct slots), and
 * logits row b gets the next-token logits after it.  Prompts admitted
 * together by continuous batching share the reading of the weights. */
int llm_infer_prefill(llm_infer *s, const int *slots, const int32_t *const *prompts,
                      const int *lens, int B, llm_error *err);

/* Negative log-likelihood (nats) of tokens[1..n-1] each given what precedes
 * it, in windows of at most ctx tokens advancing by stride (each token is
 * scored once, with as much context as its window gives: stride < ctx
 * overlaps the windows).  *scored gets the number of tokens scored.  Every
 * id must be in the vocabulary (no virtual tokens: LLM_ERR_ARG otherwise);
 * logits that are not finite (NaN or infinite: overflowed activations) end
 * it with LLM_ERR_FORMAT rather than a NaN. */
int llm_infer_nll(llm_infer *s, const int32_t *tokens, int64_t n, int stride, double *nats,
                  int64_t *scored, llm_error *err);

#endif
