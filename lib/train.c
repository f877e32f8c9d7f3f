/* train — gradient accumulation, clipping, optimizer steps, validation, and
 * their data-parallel form over an llm_comm (all-reduce in buckets during the
 * backward pass, or ZeRO-1 sharding of the optimizer state); and how a run
 * starts: new, resumed or continued, and what its options may not change. */
#include "train.h"

#include "adapter.h"
#include "quant.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What both inits share once t->data or t->ex is set. */
static int init_common(llm_trainer *t, llm_model *m, const llm_ckpt_train *st, llm_optim *resume,
                       llm_error *err)
{
    t->m = m;
    t->st = *st;
    const llm_adapter *ad = m->adapter;
    t->prefix = ad ? ad->cfg.n_virtual : 0;
    t->n_train = ad ? ad->n_params : m->n_params;
    t->shard_hi = t->n_train;
    if (t->prefix + st->seq > m->cfg.seq_len)
        return llm_error_set(err, LLM_ERR_ARG, "%d virtual tokens + --seq %d exceed the model's context %d",
                             t->prefix, st->seq, m->cfg.seq_len);
    for (int i = 0; i < llm_linear_count(m->cfg.n_layers); i++) {
        const llm_qlinear *q = m->lin[i].q;
        char name[64];
        llm_linear_name(i, m->cfg.n_layers, name, sizeof name);
        if (q && !ad)
            return llm_error_set(err, LLM_ERR_ARG, "%s is quantized (%s): a quantized base is frozen, "
                                 "train an adapter on it (LoRA or prompt tuning)", name,
                                 llm_qscheme_name(q->f.scheme));
        if (q && q->f.scheme == LLM_Q_W8A8)
            return llm_error_set(err, LLM_ERR_ARG, "%s is w8a8 (its inputs are quantized at inference): "
                                 "adapters train on int8 or int4 bases", name);
    }
    int rc = llm_acts_init(&t->acts, &m->cfg, st->batch, t->prefix + st->seq, err);
    if (rc == 0 && ad && ad->cfg.rank) rc = llm_acts_lora(&t->acts, &m->cfg, ad->cfg.rank, err);
    if (rc == 0) rc = llm_acts_quant(&t->acts, m, err);
    if (rc < 0) {
        llm_trainer_free(t);
        return rc;
    }
    size_t n = (size_t)st->batch * (size_t)(t->prefix + st->seq), w = (size_t)st->batch * (size_t)st->seq;
    t->grad = malloc((size_t)t->n_train * sizeof *t->grad);
    t->inputs = malloc(2 * n * sizeof *t->inputs);
    t->win_in = malloc(2 * w * sizeof *t->win_in);
    if (!t->grad || !t->inputs || !t->win_in) {
        llm_trainer_free(t);
        return llm_error_set(err, LLM_ERR_NOMEM, "training buffers: out of memory");
    }
    t->targets = t->inputs + n;
    t->win_tg = t->win_in + w;
    if (resume) {
        if (resume->n != t->n_train) {
            llm_trainer_free(t);
            return llm_error_set(err, LLM_ERR_ARG, "optimizer state for %lld floats, training %lld",
                                 (long long)resume->n, (long long)t->n_train);
        }
        t->optim = *resume;
        memset(resume, 0, sizeof *resume);
    } else if ((rc = llm_optim_init(&t->optim, &st->optim, t->n_train, err)) < 0) {
        llm_trainer_free(t);
        return rc;
    }
    return 0;
}

int llm_trainer_init(llm_trainer *t, llm_model *m, const llm_data *d, const llm_ckpt_train *st,
                     llm_optim *resume, llm_error *err)
{
    memset(t, 0, sizeof *t);
    t->data = d;
    LLM_TRY(llm_data_check(d, st->seq, err));
    if (llm_model_check_ids(m, d->tokens, d->n_tokens, 0, err) < 0) return llm_error_prefix(err, "the text");
    return init_common(t, m, st, resume, err);
}

int llm_trainer_init_examples(llm_trainer *t, llm_model *m, const llm_examples *ex,
                              const llm_ckpt_train *st, llm_optim *resume, llm_error *err)
{
    memset(t, 0, sizeof *t);
    t->ex = ex;
    if (ex->T != st->seq)
        return llm_error_set(err, LLM_ERR_ARG, "examples of %d positions, --seq %d", ex->T, st->seq);
    if (ex->n_train < 1) return llm_error_set(err, LLM_ERR_ARG, "no training examples");
    for (int64_t k = 0; k < ex->n; k++) {
        const int32_t *in = ex->inputs + (size_t)k * (size_t)ex->T, *tg = ex->targets + (size_t)k * (size_t)ex->T;
        if (llm_model_check_ids(m, in, ex->T, 0, err) < 0 ||
            llm_model_check_ids(m, tg, ex->T, LLM_IDS_UNSCORED, err) < 0)
            return llm_error_prefix(err, "example %lld", (long long)(k + 1));
    }
    return init_common(t, m, st, resume, err);
}

/* Rows of B windows [B, seq] with the P virtual ids V..V+P-1 in front (the
 * loss ignores those positions): into t->inputs, t->targets [B, P + seq]. */
static void put_prefix(llm_trainer *t, int rows)
{
    int T = t->st.seq, P = t->prefix, V = t->m->cfg.vocab;
    for (int b = 0; b < rows; b++) {
        int32_t *in = t->inputs + (size_t)b * (P + T), *tg = t->targets + (size_t)b * (P + T);
        for (int i = 0; i < P; i++) in[i] = V + i, tg[i] = -1;
        memcpy(in + P, t->win_in + (size_t)b * T, (size_t)T * sizeof *in);
        memcpy(tg + P, t->win_tg + (size_t)b * T, (size_t)T * sizeof *tg);
    }
}

/* The next training batch, drawn with the step's generator. */
static void next_batch(llm_trainer *t)
{
    int B = t->st.batch, T = t->st.seq;
    if (t->ex) llm_examples_batch(t->ex, &t->st.rng, B, t->win_in, t->win_tg);
    else llm_data_train_batch(t->data, &t->st.rng, B, T, t->win_in, t->win_tg);
}

void llm_trainer_free(llm_trainer *t)
{
    if (!t) return;
    llm_acts_free(&t->acts);
    llm_optim_free(&t->optim);
    free(t->grad);
    free(t->inputs);
    free(t->win_in);
    free(t->shard_counts);
    free(t->shard_grad);
    free(t->shard_spans);
    memset(t, 0, sizeof *t);
}

void llm_shard_range(int64_t n, int size, int rank, int64_t *lo, int64_t *hi)
{
    *lo = n * rank / size;
    *hi = n * (rank + 1) / size;
}

int llm_spans_slice(const llm_param_span *spans, int n_spans, int64_t lo, int64_t hi,
                    llm_param_span *out)
{
    int k = 0;
    for (int s = 0; s < n_spans; s++) {
        int64_t a = spans[s].offset > lo ? spans[s].offset : lo;
        int64_t b = spans[s].offset + spans[s].count;
        if (b > hi) b = hi;
        if (a < b) out[k++] = (llm_param_span){a - lo, b - a, spans[s].decay};
    }
    return k;
}

int llm_trainer_distribute(llm_trainer *t, const llm_comm *comm, const llm_dist_opts *opts,
                           llm_error *err)
{
    int N = comm->size, rank = comm->rank;
    int64_t n = t->m->n_params;
    if (t->m->adapter)
        return llm_error_set(err, LLM_ERR_ARG, "adapters (prompt tuning, LoRA) train on one process only");
    if (N < 1 || rank < 0 || rank >= N)
        return llm_error_set(err, LLM_ERR_ARG, "rank %d of %d ranks", rank, N);
    if (opts->bucket_bytes < 0)
        return llm_error_set(err, LLM_ERR_ARG, "bucket size %lld bytes", (long long)opts->bucket_bytes);
    if (t->st.accum < N)
        return llm_error_set(err, LLM_ERR_ARG,
                             "accum %d is less than the %d ranks: every rank needs a micro-batch per step",
                             t->st.accum, N);
    if (n > INT_MAX)
        return llm_error_set(err, LLM_ERR_LIMIT, "%lld parameters: distributed training handles up to %d",
                             (long long)n, INT_MAX);
    /* counts, offsets, and the per-bucket counts of a reduce-scatter */
    t->shard_counts = malloc(3 * (size_t)N * sizeof *t->shard_counts);
    if (!t->shard_counts) return llm_error_set(err, LLM_ERR_NOMEM, "distributed training: out of memory");
    t->shard_offs = t->shard_counts + N;
    for (int r = 0; r < N; r++) {
        int64_t lo, hi;
        llm_shard_range(n, N, r, &lo, &hi);
        t->shard_counts[r] = (int)(hi - lo);
        t->shard_offs[r] = (int)lo;
    }
    t->comm = comm;
    t->dist = *opts;
    if (!opts->shard) return 0;

    int64_t lo, hi;
    llm_shard_range(n, N, rank, &lo, &hi);
    size_t ns = (size_t)(hi - lo);
    t->shard_grad = malloc((ns ? ns : 1) * sizeof *t->shard_grad);
    t->shard_spans = malloc((size_t)t->m->n_tensors * sizeof *t->shard_spans);
    if (!t->shard_grad || !t->shard_spans)
        return llm_error_set(err, LLM_ERR_NOMEM, "distributed training: out of memory");
    t->n_shard_spans = llm_spans_slice(t->m->spans, t->m->n_tensors, lo, hi, t->shard_spans);
    /* keep only this rank's slice of the optimizer state */
    llm_optim slice;
    LLM_TRY(llm_optim_init(&slice, &t->optim.cfg, (int64_t)ns, err));
    slice.t = t->optim.t;
    if (slice.m) memcpy(slice.m, t->optim.m + lo, ns * sizeof *slice.m);
    if (slice.v) memcpy(slice.v, t->optim.v + lo, ns * sizeof *slice.v);
    llm_optim_free(&t->optim);
    t->optim = slice;
    t->shard_lo = lo;
    t->shard_hi = hi;
    return 0;
}

/* Starts the sum over ranks of the gradient floats [lo, hi). */
static int start_sum(llm_trainer *t, int64_t lo, int64_t hi, llm_error *err)
{
    const llm_comm *c = t->comm;
    int64_t n = hi - lo;
    if (n <= 0) return 0;
    double N = c->size, t0 = seconds();
    int rc;
    if (!t->dist.shard) {
        rc = c->isum(c->ctx, t->grad + lo, n, NULL, NULL, err);
        t->comm_bytes += 2 * (N - 1) / N * (double)n * sizeof(float);
    } else {
        /* the bucket meets the ranks' slices in rank order */
        int *counts = t->shard_offs + c->size;
        for (int r = 0; r < c->size; r++) {
            int64_t a = t->shard_offs[r] > lo ? t->shard_offs[r] : lo;
            int64_t b = (int64_t)t->shard_offs[r] + t->shard_counts[r];
            if (b > hi) b = hi;
            counts[r] = a < b ? (int)(b - a) : 0;
        }
        float *recv = t->shard_grad + (lo > t->shard_lo ? lo - t->shard_lo : 0);
        if (!counts[c->rank]) recv = t->shard_grad;
        rc = c->isum(c->ctx, t->grad + lo, n, counts, recv, err);
        t->comm_bytes += (N - 1) / N * (double)n * sizeof(float);
    }
    t->comm_s += seconds() - t0;
    return rc;
}

/* llm_acts.grad_ready: the gradient from `from` on is final; start a bucket
 * once enough of it waits, and let the buckets in flight progress. */
static void on_grad_ready(void *ctx, int64_t from)
{
    llm_trainer *t = ctx;
    if (t->comm_rc < 0) return;
    int rc = 0;
    if (t->pending > from && (t->pending - from) * (int64_t)sizeof(float) >= t->dist.bucket_bytes) {
        rc = start_sum(t, from, t->pending, &t->comm_err);
        t->pending = from;
    }
    if (rc >= 0) {
        double t0 = seconds();
        rc = t->comm->test(t->comm->ctx, &t->comm_err);
        t->comm_s += seconds() - t0;
    }
    if (rc < 0) t->comm_rc = rc;
}

int llm_trainer_step(llm_trainer *t, llm_step_stats *out, llm_error *err)
{
    const llm_comm *c = t->comm;
    int B = t->st.batch, T = t->st.seq, A = t->st.accum;
    int N = c ? c->size : 1, rank = c ? c->rank : 0;
    int64_t n = t->n_train;
    int last = rank + (A - 1 - rank) / N * N; /* this rank's last micro-batch */
    memset(t->grad, 0, (size_t)n * sizeof *t->grad);
    t->comm_s = t->comm_bytes = 0;
    t->comm_rc = 0;
    t->pending = n;
    double loss = 0;
    for (int a = 0; a < A; a++) {
        /* every rank draws every micro-batch: the generators stay in step */
        next_batch(t);
        if (a % N != rank) continue;
        put_prefix(t, B);
        loss += llm_model_forward(t->m, &t->acts, t->inputs, t->targets);
        if (c && t->dist.overlap && a == last) {
            t->acts.grad_ready = on_grad_ready;
            t->acts.grad_ready_ctx = t;
        }
        if (t->m->adapter) llm_model_backward_adapter(t->m, &t->acts, NULL, t->grad);
        else llm_model_backward(t->m, &t->acts, t->grad);
        t->acts.grad_ready = NULL;
    }
    if (t->comm_rc < 0) {
        *err = t->comm_err;
        return t->comm_rc;
    }
    double norm;
    if (c) {
        LLM_TRY(start_sum(t, 0, t->pending, err));
        t->pending = 0;
        double t0 = seconds();
        LLM_TRY(c->wait(c->ctx, err));
        /* loss, stop request and (sharded) the slice's squared gradient norm */
        double sums[3] = {loss, out->stop ? 1 : 0, 0};
        if (t->dist.shard) {
            double part = llm_grad_norm(t->shard_grad, t->shard_hi - t->shard_lo);
            sums[2] = part * part;
        }
        LLM_TRY(c->sum_f64(c->ctx, sums, 3, err));
        t->comm_s += seconds() - t0;
        loss = sums[0];
        out->stop = sums[1] > 0;
        norm = (t->dist.shard ? sqrt(sums[2]) : llm_grad_norm(t->grad, n)) / A;
    } else {
        norm = llm_grad_norm(t->grad, n) / A;
    }
    /* the gradient of the mean over micro-batches: grad / A, then clipped */
    float scale = llm_clip_scale(norm, t->st.optim.clip) / (float)A;
    float lr = llm_optim_lr(&t->st.optim, t->st.step);
    if (c && t->dist.shard) {
        llm_optim_step(&t->optim, t->m->arena + t->shard_lo, t->shard_grad, t->shard_spans,
                       t->n_shard_spans, lr, scale);
        double t0 = seconds();
        LLM_TRY(c->allgather(c->ctx, t->m->arena, t->shard_counts, t->shard_offs, err));
        t->comm_s += seconds() - t0;
        t->comm_bytes += (double)(N - 1) / N * (double)n * sizeof(float);
    } else if (t->m->adapter) {
        llm_adapter *ad = t->m->adapter;
        llm_optim_step(&t->optim, ad->arena, t->grad, ad->spans, ad->n_tensors, lr, scale);
    } else {
        llm_optim_step(&t->optim, t->m->arena, t->grad, t->m->spans, t->m->n_tensors, lr, scale);
    }
    t->st.step++;
    t->st.tokens += (int64_t)A * B * T;
    out->loss = (float)(loss / A);
    out->grad_norm = norm;
    out->lr = lr;
    out->comm_bytes = t->comm_bytes;
    out->comm_s = t->comm_s;
    return 0;
}

int llm_trainer_eval(llm_trainer *t, int64_t max_windows, float *loss, llm_error *err)
{
    const llm_comm *c = t->comm;
    int B = t->st.batch, T = t->st.seq, N = c ? c->size : 1, rank = c ? c->rank : 0;
    int64_t n = t->ex ? t->ex->n - t->ex->n_train : llm_data_val_windows(t->data, T);
    if (max_windows > 0 && n > max_windows) n = max_windows;
    double total = 0;
    int64_t counted = 0;
    for (int64_t w = 0; w < n; w += B) {
        if (w / B % N != rank) continue; /* batches shared round-robin among the ranks */
        int rows = n - w < B ? (int)(n - w) : B;
        for (int b = 0; b < B; b++) {
            int32_t *in = t->win_in + (size_t)b * T, *tg = t->win_tg + (size_t)b * T;
            if (b < rows && t->ex) {
                size_t k = (size_t)(t->ex->n_train + w + b) * (size_t)T;
                memcpy(in, t->ex->inputs + k, (size_t)T * sizeof *in);
                memcpy(tg, t->ex->targets + k, (size_t)T * sizeof *tg);
            } else if (b < rows) {
                llm_data_val_window(t->data, T, w + b, in, tg);
            } else { /* padding rows: ignored by the loss */
                memset(in, 0, (size_t)T * sizeof *in);
                for (int i = 0; i < T; i++) tg[i] = -1;
            }
        }
        put_prefix(t, B);
        int scored = 0; /* the loss is a mean over the scored targets */
        for (size_t i = 0; i < (size_t)B * (size_t)(t->prefix + T); i++) scored += t->targets[i] >= 0;
        total += (double)llm_model_forward(t->m, &t->acts, t->inputs, t->targets) * scored;
        counted += scored;
    }
    double sums[2] = {total, (double)counted};
    if (c) LLM_TRY(c->sum_f64(c->ctx, sums, 2, err));
    *loss = sums[1] > 0 ? (float)(sums[0] / sums[1]) : 0.0f;
    return 0;
}

int llm_trainer_full_optim(llm_trainer *t, llm_optim *full, llm_error *err)
{
    const llm_comm *c = t->comm;
    int sharded = c && t->dist.shard;
    memset(full, 0, sizeof *full);
    if (!sharded || c->rank == 0) {
        LLM_TRY(llm_optim_init(full, &t->optim.cfg, t->m->n_params, err));
        full->t = t->optim.t;
    }
    if (!sharded) {
        size_t bytes = (size_t)t->m->n_params * sizeof(float);
        if (full->m) memcpy(full->m, t->optim.m, bytes);
        if (full->v) memcpy(full->v, t->optim.v, bytes);
        return 0;
    }
    int rc = 0;
    if (t->optim.m) rc = c->gather(c->ctx, t->optim.m, full->m, t->shard_counts, t->shard_offs, err);
    if (rc >= 0 && t->optim.v)
        rc = c->gather(c->ctx, t->optim.v, full->v, t->shard_counts, t->shard_offs, err);
    if (rc < 0) llm_optim_free(full);
    return rc;
}

int llm_trainer_in_step(llm_trainer *t, int *same, llm_error *err)
{
    *same = 1;
    if (!t->comm) return 0;
    /* FNV-1a over the bytes of the weights */
    const unsigned char *p = (const unsigned char *)t->m->arena;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < (size_t)t->m->n_params * sizeof(float); i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return t->comm->same_u64(t->comm->ctx, h, same, err);
}

static const char *const opt_names[LLM_TRAIN_OPT_COUNT] = {
    "dim", "layers", "heads", "kv-heads", "hidden", "seq", "tie", "no-tie", "window", "steps", "batch",
    "accum", "optim", "lr", "min-lr", "warmup", "wd", "clip", "seed", "prompt-tune", "lora", "lora-alpha",
    "lora-targets"};

const char *llm_train_opt_name(llm_train_opt opt)
{
    return (unsigned)opt < LLM_TRAIN_OPT_COUNT ? opt_names[opt] : NULL;
}

int llm_train_given(const llm_train_args *a, llm_train_opt opt)
{
    return (a->given >> opt) & 1;
}

void llm_train_args_defaults(llm_train_args *a)
{
    *a = (llm_train_args){.dim = 128, .layers = 4, .heads = 4, .seq = 128, .tie = 1, .steps = 1000,
                          .batch = 8, .accum = 1, .seed = 1337, .optim = LLM_OPTIM_ADAMW, .clip = 1.0,
                          .val_frac = 0.1, .lora_targets = (1u << LLM_LIN_WQ) | (1u << LLM_LIN_WV)};
}

void llm_train_new_config(const llm_train_args *a, int vocab, llm_config *c)
{
    long hidden = a->hidden ? a->hidden : (8 * a->dim / 3 + 31) / 32 * 32;
    *c = (llm_config){.vocab = vocab, .dim = (int)a->dim, .n_layers = (int)a->layers,
                      .n_heads = (int)a->heads, .n_kv_heads = (int)(a->kv_heads ? a->kv_heads : a->heads),
                      .hidden = (int)hidden, .seq_len = (int)a->seq, .tie = a->tie,
                      .window = (int)a->window, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
}

int llm_train_check_arch(const llm_train_args *a, const llm_config *c, const char *path, llm_error *err)
{
    const struct {
        llm_train_opt opt;
        const char *name;
        long want, have;
    } f[] = {{LLM_TRAIN_OPT_DIM, "dim", a->dim, c->dim},
             {LLM_TRAIN_OPT_LAYERS, "layers", a->layers, c->n_layers},
             {LLM_TRAIN_OPT_HEADS, "heads", a->heads, c->n_heads},
             {LLM_TRAIN_OPT_KV_HEADS, "kv-heads", a->kv_heads, c->n_kv_heads},
             {LLM_TRAIN_OPT_HIDDEN, "hidden", a->hidden, c->hidden},
             {LLM_TRAIN_OPT_TIE, "tie", 1, c->tie},
             {LLM_TRAIN_OPT_NO_TIE, "tie", 0, c->tie},
             {LLM_TRAIN_OPT_WINDOW, "window", a->window, c->window}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (llm_train_given(a, f[i].opt) && f[i].want != f[i].have)
            return llm_error_set(err, LLM_ERR_ARG, "%s: incompatible checkpoint: it has %s %ld, not %ld", path,
                                 f[i].name, f[i].have, f[i].want);
    if (llm_train_given(a, LLM_TRAIN_OPT_SEQ) && a->seq > c->seq_len)
        return llm_error_set(err, LLM_ERR_ARG, "%s: incompatible checkpoint: --seq %ld is beyond its context %d",
                             path, a->seq, c->seq_len);
    return 0;
}

int llm_train_check_adapter(const llm_train_args *a, const llm_adapter_config *c, const char *path,
                            llm_error *err)
{
    char want[40], have[40];
    llm_adapter_targets_name(c->rank ? c->targets : 0, have, sizeof have);
    llm_adapter_targets_name(a->lora_targets, want, sizeof want);
    if (llm_train_given(a, LLM_TRAIN_OPT_PROMPT_TUNE) && a->prompt_tune != c->n_virtual)
        return llm_error_set(err, LLM_ERR_ARG, "%s: incompatible adapter: it has %d virtual tokens, not %ld", path,
                             c->n_virtual, a->prompt_tune);
    if (llm_train_given(a, LLM_TRAIN_OPT_LORA) && a->lora != c->rank)
        return llm_error_set(err, LLM_ERR_ARG, "%s: incompatible adapter: it has LoRA rank %d, not %ld", path,
                             c->rank, a->lora);
    if (llm_train_given(a, LLM_TRAIN_OPT_LORA_ALPHA) && (float)a->lora_alpha != c->alpha)
        return llm_error_set(err, LLM_ERR_ARG, "%s: incompatible adapter: it has LoRA alpha %g, not %g", path,
                             (double)c->alpha, a->lora_alpha);
    if (llm_train_given(a, LLM_TRAIN_OPT_LORA_TARGETS) && strcmp(want, have))
        return llm_error_set(err, LLM_ERR_ARG, "%s: incompatible adapter: it has LoRA targets %s, not %s", path,
                             *have ? have : "none", want);
    return 0;
}

void llm_train_adapter_config(const llm_train_args *a, llm_adapter_config *c)
{
    double alpha = llm_train_given(a, LLM_TRAIN_OPT_LORA_ALPHA) ? a->lora_alpha : 2.0 * a->lora;
    *c = (llm_adapter_config){.n_virtual = (int)a->prompt_tune, .rank = (int)a->lora, .alpha = (float)alpha,
                              .targets = a->lora_targets};
}

void llm_train_optim_config(const llm_train_args *a, llm_optim_config *c)
{
    llm_optim_defaults(c, a->optim);
    if (llm_train_given(a, LLM_TRAIN_OPT_LR)) c->lr = (float)a->lr;
    c->min_lr = llm_train_given(a, LLM_TRAIN_OPT_MIN_LR) ? (float)a->min_lr : c->lr / 10;
    if (llm_train_given(a, LLM_TRAIN_OPT_WD)) c->weight_decay = (float)a->wd;
    c->clip = (float)a->clip;
    c->steps = a->steps;
    c->warmup = llm_train_given(a, LLM_TRAIN_OPT_WARMUP) ? a->warmup : a->steps / 20;
}

/* The given options that a resumed state st overrides with other values. */
static unsigned overridden(const llm_train_args *a, const llm_ckpt_train *st)
{
    llm_optim_config want;
    llm_train_optim_config(a, &want);
    const struct {
        llm_train_opt opt;
        int differs;
    } fixed[] = {{LLM_TRAIN_OPT_BATCH, a->batch != st->batch},
                 {LLM_TRAIN_OPT_SEQ, a->seq != st->seq},
                 {LLM_TRAIN_OPT_ACCUM, a->accum != st->accum},
                 {LLM_TRAIN_OPT_OPTIM, want.kind != st->optim.kind},
                 {LLM_TRAIN_OPT_LR, want.lr != st->optim.lr},
                 {LLM_TRAIN_OPT_MIN_LR, want.min_lr != st->optim.min_lr},
                 {LLM_TRAIN_OPT_WARMUP, want.warmup != st->optim.warmup},
                 {LLM_TRAIN_OPT_WD, want.weight_decay != st->optim.weight_decay},
                 {LLM_TRAIN_OPT_CLIP, want.clip != st->optim.clip},
                 {LLM_TRAIN_OPT_SEED, (uint64_t)a->seed != st->seed}};
    unsigned bits = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (llm_train_given(a, fixed[i].opt) && fixed[i].differs) bits |= 1u << fixed[i].opt;
    return bits;
}

int llm_train_decide(const llm_train_args *a, const char *path, int has_train, int from_adapter,
                     uint64_t data_hash, int ex_seq, llm_ckpt_train *st, llm_train_start *start,
                     unsigned *ignored, llm_error *err)
{
    *ignored = 0;
    if (!has_train) {
        *start = from_adapter ? LLM_TRAIN_FROM_ADAPTER : LLM_TRAIN_FROM_MODEL;
        return 0;
    }
    if (st->data_hash != data_hash || st->val_frac != a->val_frac || (ex_seq && ex_seq != st->seq)) {
        *start = ex_seq ? LLM_TRAIN_CONTINUED_EXAMPLES : LLM_TRAIN_CONTINUED_TEXT;
        return 0;
    }
    *start = LLM_TRAIN_RESUMED;
    /* the schedule may be extended; everything else carries on */
    if (llm_train_given(a, LLM_TRAIN_OPT_STEPS)) st->optim.steps = a->steps;
    if (st->step >= st->optim.steps)
        return llm_error_set(err, LLM_ERR_ARG, "%s: already at step %lld of %lld; give a larger --steps", path,
                             (long long)st->step, (long long)st->optim.steps);
    *ignored = overridden(a, st);
    return 0;
}

int llm_train_fresh(const llm_train_args *a, const llm_model *m, const char *path, int ex_seq,
                    uint64_t data_hash, llm_ckpt_train *st, llm_error *err)
{
    int prefix = m->adapter ? m->adapter->cfg.n_virtual : 0, room = m->cfg.seq_len - prefix;
    int seq = llm_train_given(a, LLM_TRAIN_OPT_SEQ) || !path ? (int)a->seq : room;
    *st = (llm_ckpt_train){.batch = (int)a->batch, .accum = (int)a->accum, .seed = (uint64_t)a->seed,
                           .data_hash = data_hash, .val_frac = a->val_frac, .seq = ex_seq ? ex_seq : seq};
    if (st->seq > room) st->seq = room;
    if (st->seq < 1)
        return llm_error_set(err, LLM_ERR_ARG, "%s: %d virtual tokens leave no room in its context of %d", path,
                             prefix, m->cfg.seq_len);
    llm_train_optim_config(a, &st->optim);
    if (prefix && !llm_train_given(a, LLM_TRAIN_OPT_LR)) { /* prompt tuning wants a large step */
        st->optim.lr = 0.1f;
        st->optim.min_lr = llm_train_given(a, LLM_TRAIN_OPT_MIN_LR) ? (float)a->min_lr : 0.01f;
    }
    if (m->adapter && !llm_train_given(a, LLM_TRAIN_OPT_WD)) st->optim.weight_decay = 0;
    llm_rng_seed(&st->rng, (uint64_t)a->seed ^ 0x9e3779b97f4a7c15ull);
    return 0;
}

void llm_train_describe(llm_train_start start, const llm_model *m, char *buf, size_t n)
{
    static const char *const names[] = {
        [LLM_TRAIN_NEW] = "new model",
        [LLM_TRAIN_RESUMED] = "resumed",
        [LLM_TRAIN_CONTINUED_TEXT] = "continued on new text (fresh optimizer)",
        [LLM_TRAIN_CONTINUED_EXAMPLES] = "continued on new examples (fresh optimizer)",
        [LLM_TRAIN_FROM_MODEL] = "initialised from a model",
        [LLM_TRAIN_FROM_ADAPTER] = "continued from an adapter without training state (fresh optimizer)"};
    if (!m->adapter) {
        snprintf(buf, n, "%s", names[start]);
        return;
    }
    int from_file = start != LLM_TRAIN_FROM_MODEL; /* the adapter came from --adapter */
    const char *base = llm_model_quantized(m)
                           ? "quantized base (QLoRA: its linears stay integer, dequantized a block at a time)"
                           : "base";
    snprintf(buf, n, "%s%sadapting a frozen %s", from_file ? names[start] : "", from_file ? ", " : "", base);
}
