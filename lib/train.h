/* train — the training loop's steps: micro-batches with gradient
 * accumulation, global-norm clipping, the schedule and the optimizer update;
 * the validation loss; and data parallelism over several processes.  The tool
 * around it (bin/llm-train.c) handles options, progress, logs, signals and
 * checkpoints.
 *
 *     llm_trainer t;
 *     TRY(llm_trainer_init(&t, &model, &data, &state, NULL, &err));  // NULL: fresh optimizer
 *     TRY(llm_trainer_distribute(&t, comm, &dist_opts, &err));      // optional, see below
 *     while (t.st.step < t.st.optim.steps) {
 *         llm_step_stats s = {0};
 *         TRY(llm_trainer_step(&t, &s, &err));       // s.loss, s.grad_norm, s.lr
 *     }
 *     float val;
 *     TRY(llm_trainer_eval(&t, 64, &val, &err));
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
 * the passes and never held in float; training it itself is refused. */
#ifndef LLM_TRAIN_H
#define LLM_TRAIN_H

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

#endif
