/* train — the training loop's steps: micro-batches with gradient
 * accumulation, global-norm clipping, the schedule and the optimizer update;
 * the validation loss; and data parallelism over several processes.  The tool
 * around it (bin/llm-train.c) handles options, progress, logs, signals and
 * checkpoints.
 *
 *     llm_trainer t;
 *     LLM_TRY(llm_trainer_init(&t, &model, &data, &state, NULL, &err));  // NULL: fresh optimizer
 *     LLM_TRY(llm_trainer_distribute(&t, comm, &dist_opts, &err));      // optional, see below
 *     while (t.st.step < t.st.optim.steps) {
 *         llm_step_stats s = {0};
 *         LLM_TRY(llm_trainer_step(&t, &s, &err));       // s.loss, s.grad_norm, s.lr
 *     }
 *     float val;
 *     LLM_TRY(llm_trainer_eval(&t, 64, &val, &err));
 *     llm_trainer_free(&t);
 *
 * Data parallelism.  A step is st.accum micro-batches of st.batch random
 * windows, drawn in order from the one generator in st.rng; with N processes
 * ("ranks") every rank draws all of them, so every generator stays in step,
 * and rank r runs the forward and backward passes of micro-batches r, r+N,
 * r+2N, ...  The global batch is thus the same for any N: N ranks compute
 * what one process computes with the same --accum, up to the order of the
 * floating-point sums.  The summed gradient is reduced over the ranks in
 * buckets, started as the backward pass of the last local micro-batch
 * finishes each layer (llm_acts.grad_ready), so the transfer runs behind the
 * remaining layers' computation; without overlap, in one piece at the end.
 * Every rank then applies the same update to its full copy of the weights.
 * With sharding (ZeRO stage 1) the gradient is reduce-scattered instead:
 * rank r receives the sum of its contiguous 1/N slice of the arena only,
 * keeps the optimizer state of that slice only, updates that slice of the
 * weights, and the slices are all-gathered back into every rank's copy.
 *
 * The transport is a table of functions (llm_comm), so this module needs no
 * MPI: lib/dist.h provides one over MPI.
 *
 * Fine-tuning with a frozen base.  When the model has an adapter attached
 * (m->adapter, adapter.h), only the adapter is trained: the gradient and the
 * optimizer state cover the adapter's arena alone, the backward pass computes
 * no base weight gradient, and the P virtual tokens (prompt tuning) are put
 * before every window of st.seq tokens (the passes run on P + seq
 * positions).  Adapters train on one process.  With examples
 * (llm_trainer_init_examples, examples.h) the windows are labelled examples
 * scored on their labels only, instead of random stretches of a corpus.
 * A quantized base (m->lin[].q, int8 or int4 from llm-quant) trains adapters
 * only (QLoRA): its linears are dequantized a block of rows at a time inside
 * the passes and never held in float; training it itself is refused.
 *
 * Starting a run.  llm_train_args holds the settings of llm-train's options
 * and which of them were given; from it and what an --init checkpoint (or
 * --adapter stream) holds, llm_train_decide says whether the run is resumed
 * (and which given options it ignores), continued with a fresh optimizer, or
 * new, and llm_train_fresh makes the state of a run that is not resumed.
 * Refusals come back as errors naming the file; nothing is printed.
 *
 *     llm_train_args a;
 *     llm_train_args_defaults(&a);                 // then the options, a.given
 *     LLM_TRY(llm_train_check_arch(&a, &model.cfg, "m.llmt", &err));
 *     LLM_TRY(llm_train_decide(&a, "m.llmt", has_train, 0, hash, 0, &st, &start, &ignored, &err));
 *     if (start != LLM_TRAIN_RESUMED) LLM_TRY(llm_train_fresh(&a, &model, "m.llmt", 0, hash, &st, &err)); */
#ifndef LLM_TRAIN_H
#define LLM_TRAIN_H

#include "adapter.h"
#include "ckpt.h"
#include "data.h"
#include "examples.h"
#include "model.h"
#include "optim.h"

/* Collective operations over `size` processes; each returns 0 or a negative
 * LLM_ERR_* with err filled.  Every rank makes the same calls in the same
 * order.  isum starts a non-blocking sum of buf[0, n) over the ranks: with
 * recv NULL the sum replaces buf on every rank (all-reduce); otherwise
 * (reduce-scatter) buf is split in pieces of counts[0], counts[1], ...
 * floats and rank r receives the sum of piece r in recv (counts[r] floats).
 * buf and recv must stay untouched until wait returns. */
typedef struct llm_comm {
    int rank, size;
    void *ctx;
    int (*isum)(void *ctx, float *buf, int64_t n, const int *counts, float *recv, llm_error *err);
    int (*test)(void *ctx, llm_error *err); /* lets started sums progress */
    int (*wait)(void *ctx, llm_error *err); /* completes every started sum */
    /* blocking: x[0, n) summed over the ranks, in place on every rank */
    int (*sum_f64)(void *ctx, double *x, int n, llm_error *err);
    /* blocking: 1 in *same when v is equal on every rank, else 0 */
    int (*same_u64)(void *ctx, uint64_t v, int *same, llm_error *err);
    /* blocking, in place: rank r's piece buf[offs[r], offs[r] + counts[r]) to every rank */
    int (*allgather)(void *ctx, float *buf, const int *counts, const int *offs, llm_error *err);
    /* blocking: rank r's part[0, counts[r]) into full[offs[r], ...) on rank 0 */
    int (*gather)(void *ctx, const float *part, float *full, const int *counts, const int *offs,
                  llm_error *err);
} llm_comm;

typedef struct llm_dist_opts {
    int overlap;           /* 1: reduce buckets during the backward pass */
    int shard;             /* 1: ZeRO-1, each rank keeps 1/N of the optimizer state */
    int64_t bucket_bytes;  /* a bucket starts once this much gradient is final; 0: every layer */
} llm_dist_opts;

typedef struct llm_trainer {
    llm_model *m;          /* borrowed */
    const llm_data *data;  /* borrowed; NULL with examples */
    const llm_examples *ex;/* borrowed; NULL with a corpus */
    int prefix;            /* P: the adapter's virtual tokens before each window */
    int64_t n_train;       /* trained floats: the model's, or its adapter's */
    int32_t *win_in, *win_tg; /* [batch, seq] a window before the prefix goes in */
    llm_ckpt_train st;     /* step, tokens, generator, settings */
    llm_optim optim;       /* the whole arena's, or with sharding this rank's slice */
    llm_acts acts;         /* [batch, P + seq] */
    float *grad;           /* [n_train] */
    int32_t *inputs, *targets;
    /* data parallelism (llm_trainer_distribute); comm NULL: one process */
    const llm_comm *comm;
    llm_dist_opts dist;
    int64_t shard_lo, shard_hi;      /* this rank's slice of the arena (the whole one unsharded) */
    int *shard_counts, *shard_offs;  /* [size]: every rank's slice */
    float *shard_grad;               /* [shard_hi - shard_lo] the reduced gradient (sharding) */
    llm_param_span *shard_spans;     /* the model's spans cut to the slice, from 0 */
    int n_shard_spans;
    int64_t pending;                 /* gradient floats from here on are final but not yet sent */
    double comm_s, comm_bytes;       /* this step's */
    int comm_rc;                     /* the first error met inside the backward hook */
    llm_error comm_err;
} llm_trainer;

typedef struct llm_step_stats {
    float loss;       /* mean training loss over the step's micro-batches */
    double grad_norm; /* before clipping */
    float lr;
    int stop;         /* in: this process wants to stop; out: some rank does */
    double comm_bytes;/* bytes this rank sent in the step (ring algorithms' volume) */
    double comm_s;    /* seconds spent waiting on communication (not hidden by computation) */
} llm_step_stats;

/* Sets up training of m on d with the settings in st (batch, seq, accum,
 * optimizer, step, generator).  resume (may be NULL) is optimizer state to
 * take over: ownership moves to the trainer.  Every token of d must be in
 * m's vocabulary: LLM_ERR_ARG "the text: token K of N: id X outside the
 * vocabulary (0..V-1)" otherwise (llm_model_check_ids). */
int llm_trainer_init(llm_trainer *t, llm_model *m, const llm_data *d, const llm_ckpt_train *st,
                     llm_optim *resume, llm_error *err);
/* The same on labelled examples (their window length is st->seq; each
 * example's inputs and targets are checked the same way, "example K: ..."). */
int llm_trainer_init_examples(llm_trainer *t, llm_model *m, const llm_examples *ex,
                              const llm_ckpt_train *st, llm_optim *resume, llm_error *err);
void llm_trainer_free(llm_trainer *t);

/* Makes t one of comm->size data-parallel ranks (call once, after
 * llm_trainer_init, before the first step; comm is borrowed).  accum must be
 * at least comm->size.  With sharding, the optimizer state given to init is
 * cut to this rank's slice. */
int llm_trainer_distribute(llm_trainer *t, const llm_comm *comm, const llm_dist_opts *opts,
                           llm_error *err);

/* Rank r's slice [*lo, *hi) of n floats over size ranks: contiguous, in rank
 * order, sizes differing by at most one. */
void llm_shard_range(int64_t n, int size, int rank, int64_t *lo, int64_t *hi);
/* The spans that cover [lo, hi), cut to it and moved to start at 0; returns
 * how many were written to out (room for n_spans). */
int llm_spans_slice(const llm_param_span *spans, int n_spans, int64_t lo, int64_t hi,
                    llm_param_span *out);

/* One optimizer step: accum micro-batches of random windows, gradients
 * averaged (over micro-batches and ranks), clipped to the global norm, the
 * scheduled learning rate.  Fails only on a communication error. */
int llm_trainer_step(llm_trainer *t, llm_step_stats *out, llm_error *err);

/* Mean loss over the first max_windows validation windows (all when 0),
 * shared among the ranks. */
int llm_trainer_eval(llm_trainer *t, int64_t max_windows, float *loss, llm_error *err);

/* The whole optimizer state, for a checkpoint: unsharded, a copy of t's;
 * sharded, the slices gathered on rank 0 (other ranks get an empty state;
 * every rank must call).  Free with llm_optim_free. */
int llm_trainer_full_optim(llm_trainer *t, llm_optim *full, llm_error *err);

/* 1 in *same when every rank holds the same weights (a fingerprint of the
 * arena compared across ranks). */
int llm_trainer_in_step(llm_trainer *t, int *same, llm_error *err);

/* The options the decisions below look at: bit LLM_TRAIN_OPT_X of
 * llm_train_args.given says the user gave it (llm_train_opt_name: its long
 * name, "kv-heads"). */
typedef enum llm_train_opt {
    LLM_TRAIN_OPT_DIM, LLM_TRAIN_OPT_LAYERS, LLM_TRAIN_OPT_HEADS, LLM_TRAIN_OPT_KV_HEADS,
    LLM_TRAIN_OPT_HIDDEN, LLM_TRAIN_OPT_SEQ, LLM_TRAIN_OPT_TIE, LLM_TRAIN_OPT_NO_TIE,
    LLM_TRAIN_OPT_WINDOW, LLM_TRAIN_OPT_STEPS, LLM_TRAIN_OPT_BATCH, LLM_TRAIN_OPT_ACCUM,
    LLM_TRAIN_OPT_OPTIM, LLM_TRAIN_OPT_LR, LLM_TRAIN_OPT_MIN_LR, LLM_TRAIN_OPT_WARMUP,
    LLM_TRAIN_OPT_WD, LLM_TRAIN_OPT_CLIP, LLM_TRAIN_OPT_SEED, LLM_TRAIN_OPT_PROMPT_TUNE,
    LLM_TRAIN_OPT_LORA, LLM_TRAIN_OPT_LORA_ALPHA, LLM_TRAIN_OPT_LORA_TARGETS,
    LLM_TRAIN_OPT_COUNT
} llm_train_opt;

/* A run's settings as llm-train's options give them (llm-train(1)). */
typedef struct llm_train_args {
    /* a new model's architecture; kv_heads and hidden 0: derived */
    long dim, layers, heads, kv_heads, hidden, seq, window;
    int tie;
    /* training; lr, min_lr, wd and warmup count only when given */
    long steps, batch, accum, warmup, seed;
    llm_optim_kind optim;
    double lr, min_lr, wd, clip, val_frac;
    /* a fresh adapter: virtual tokens, LoRA rank (0: none), alpha (when given) */
    long prompt_tune, lora;
    double lora_alpha;
    unsigned lora_targets; /* bit LLM_LIN_* (linear.h) */
    unsigned given;        /* bit LLM_TRAIN_OPT_*: the user gave that option */
} llm_train_args;

/* How a run starts, as llm_train_decide tells it. */
typedef enum llm_train_start {
    LLM_TRAIN_NEW,                /* a new model */
    LLM_TRAIN_RESUMED,            /* the saved training state carries on */
    LLM_TRAIN_CONTINUED_TEXT,     /* a training state of other text: fresh optimizer */
    LLM_TRAIN_CONTINUED_EXAMPLES, /* the same with --examples */
    LLM_TRAIN_FROM_MODEL,         /* a model without training state */
    LLM_TRAIN_FROM_ADAPTER,       /* an adapter without training state */
} llm_train_start;

/* The option's long name ("kv-heads"); NULL outside the enum. */
const char *llm_train_opt_name(llm_train_opt opt);

/* 1 when the user gave opt (bit opt of a->given), else 0. */
int llm_train_given(const llm_train_args *a, llm_train_opt opt);

/* Fills a with llm-train's defaults (dim 128, layers 4, heads 4, seq 128,
 * tied, steps 1000, batch 8, accum 1, adamw, clip 1, seed 1337, val_frac
 * 0.1, LoRA targets wq,wv), nothing given. */
void llm_train_args_defaults(llm_train_args *a);

/* A new model's configuration from a's architecture for a tokenizer of
 * vocab ids: kv_heads 0 is heads, hidden 0 is 8 dim / 3 rounded up to a
 * multiple of 32.  Unchecked: see llm_config_check. */
void llm_train_new_config(const llm_train_args *a, int vocab, llm_config *c);

/* LLM_ERR_ARG "PATH: incompatible checkpoint: it has dim 64, not 128" when
 * a given architecture option disagrees with c, the configuration of the
 * checkpoint at path, or "... --seq 512 is beyond its context 256". */
int llm_train_check_arch(const llm_train_args *a, const llm_config *c, const char *path, llm_error *err);

/* LLM_ERR_ARG "PATH: incompatible adapter: it has LoRA rank 8, not 4" when
 * a given adapter option (virtual tokens, rank, alpha, targets) disagrees
 * with c, the settings of the adapter stream at path. */
int llm_train_check_adapter(const llm_train_args *a, const llm_adapter_config *c, const char *path,
                            llm_error *err);

/* The settings of a fresh adapter: alpha 2 * rank unless given. */
void llm_train_adapter_config(const llm_train_args *a, llm_adapter_config *c);

/* The optimizer of a's settings: its kind's defaults, then lr and wd when
 * given, min_lr given or lr / 10, warmup given or steps / 20, clip, steps. */
void llm_train_optim_config(const llm_train_args *a, llm_optim_config *c);

/* How a run from a file starts.  path (for messages) is the --init
 * checkpoint, or the adapter stream when from_adapter; st is the training
 * state it holds when has_train; data_hash the fingerprint of this run's
 * tokens (llm_ckpt_hash_tokens) and ex_seq the window length of its
 * examples, 0 when it trains on text.  Resumed when st's fingerprint and
 * val_frac are this run's and, with examples, its window length: st's
 * schedule is then extended to a given steps, and *ignored gets the bits of
 * the given options (batch, seq, accum, the optimizer's, seed) that disagree
 * with st, which the run ignores; LLM_ERR_ARG "PATH: already at step S of N;
 * give a larger --steps" when the schedule is done.  Otherwise *start is
 * CONTINUED_TEXT or CONTINUED_EXAMPLES (a training state of other data),
 * FROM_ADAPTER (an adapter without one) or FROM_MODEL, st is left alone and
 * *ignored is 0. */
int llm_train_decide(const llm_train_args *a, const char *path, int has_train, int from_adapter,
                     uint64_t data_hash, int ex_seq, llm_ckpt_train *st, llm_train_start *start,
                     unsigned *ignored, llm_error *err);

/* The state, at step 0, of a run on m that is not resumed: a's settings;
 * the window length ex_seq (examples), else a's seq, or without a given seq
 * and with m from a file (path, the --init checkpoint; NULL for a new model)
 * m's context, always at most m's context less the adapter's virtual
 * tokens; with virtual tokens lr 0.1 and min_lr 0.01 unless given, and with
 * an adapter no weight decay unless given.  LLM_ERR_ARG "PATH: 8 virtual
 * tokens leave no room in its context of 8" when no position is left. */
int llm_train_fresh(const llm_train_args *a, const llm_model *m, const char *path, int ex_seq,
                    uint64_t data_hash, llm_ckpt_train *st, llm_error *err);

/* How a run on m starts, in words, into buf (n bytes): "new model",
 * "resumed", "continued on new text (fresh optimizer)", ...; with an
 * adapter attached, "adapting a frozen base" (or "quantized base (QLoRA:
 * ...)"), after the start when that was not FROM_MODEL ("resumed, adapting
 * a frozen base"). */
void llm_train_describe(llm_train_start start, const llm_model *m, char *buf, size_t n);

#endif
