/* llm-train — train or resume a Llama-style decoder on text (llm-train(1)). */
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "adapter.h"
#include "ckpt.h"
#include "cli.h"
#include "data.h"
#include "dist.h"
#include "examples.h"
#include "lora.h"
#include "model.h"
#include "train.h"

static const char usage_text[] =
    "usage: llm-train --data FILE... --out CKPT [options]     (FILE '-': stdin)\n"
    "\n"
    "Model (new runs; a resumed run takes them from its checkpoint):\n"
    "  --dim D (128)  --layers L (4)  --heads H (4)  --kv-heads K (=H)  --hidden F (8D/3, to 32)\n"
    "  --seq T (128)  --tie | --no-tie (tie)  --window W (0 = full causal)\n"
    "Training:\n"
    "  --steps N (1000)  --batch B (8)  --accum N (1)  --optim adamw|adam|lion|sgd (adamw)\n"
    "  --lr X (1e-3; lion 1e-4)  --min-lr X (lr/10)  --warmup N (steps/20)  --wd X (0.1 adamw/lion)\n"
    "  --clip X (1.0, 0 = off)  --seed S (1337)  --val-frac X (0.1)\n"
    "Output:\n"
    "  --out CKPT  --init CKPT (resume, or continue on new text)  --eval-every N (100)\n"
    "  --save-every N (0: at the end)  --stop-at N (stop after step N, saving)  --log FILE.tsv\n"
    "  --sample N (print N greedy bytes at the end)  --prompt TEXT  --threads N\n"
    "  --progress (bar even when stderr is not a terminal)  -q  -h/--help  -V/--version\n"
    "Fine-tuning (with --init BASE; the base stays frozen and --out gets a small adapter stream):\n"
    "  --prompt-tune N (N virtual tokens before every sequence; lr 0.1)\n"
    "  --lora R  --lora-alpha A (2R)  --lora-targets wq,wk,wv,wo,w1,w2,w3 (wq,wv; or all)\n"
    "  --examples FILE.tsv (instead of --data: 'text<TAB>label' lines, loss on the label only)\n"
    "  --adapter A.llmt (resume the adapter run that saved A on BASE, or train A further)\n"
    "Data parallelism (mpirun -np N llm-train ...; --accum counts micro-batches over all ranks, default N):\n"
    "  --shard-optim (ZeRO-1: 1/N of the optimizer state per rank)  --no-overlap\n"
    "  --bucket-mb X (1; 0 = a bucket per layer)  --dist (start MPI without mpirun: one rank)\n"
    "See llm-train(1).\n";

enum {
    O_DATA = 256, O_OUT, O_INIT, O_STEPS, O_BATCH, O_SEQ, O_DIM, O_LAYERS, O_HEADS, O_KV, O_HIDDEN,
    O_TIE, O_NO_TIE, O_OPTIM, O_LR, O_MIN_LR, O_WARMUP, O_WD, O_CLIP, O_ACCUM, O_WINDOW,
    O_EVAL, O_SAVE, O_SEED, O_THREADS, O_LOG, O_STOP, O_SAMPLE, O_PROMPT, O_PROGRESS, O_VALFRAC,
    O_DIST, O_SHARD, O_NO_OVERLAP, O_BUCKET, O_PROMPT_TUNE, O_LORA, O_LORA_ALPHA, O_LORA_TARGETS,
    O_EXAMPLES, O_ADAPTER, O_COUNT
};

static const struct option long_opts[] = {
    {"data", required_argument, 0, O_DATA},       {"out", required_argument, 0, O_OUT},
    {"init", required_argument, 0, O_INIT},       {"steps", required_argument, 0, O_STEPS},
    {"batch", required_argument, 0, O_BATCH},     {"seq", required_argument, 0, O_SEQ},
    {"dim", required_argument, 0, O_DIM},         {"layers", required_argument, 0, O_LAYERS},
    {"heads", required_argument, 0, O_HEADS},     {"kv-heads", required_argument, 0, O_KV},
    {"hidden", required_argument, 0, O_HIDDEN},   {"tie", no_argument, 0, O_TIE},
    {"no-tie", no_argument, 0, O_NO_TIE},         {"optim", required_argument, 0, O_OPTIM},
    {"lr", required_argument, 0, O_LR},           {"min-lr", required_argument, 0, O_MIN_LR},
    {"warmup", required_argument, 0, O_WARMUP},   {"wd", required_argument, 0, O_WD},
    {"clip", required_argument, 0, O_CLIP},       {"accum", required_argument, 0, O_ACCUM},
    {"window", required_argument, 0, O_WINDOW},   {"eval-every", required_argument, 0, O_EVAL},
    {"save-every", required_argument, 0, O_SAVE}, {"seed", required_argument, 0, O_SEED},
    {"threads", required_argument, 0, O_THREADS}, {"log", required_argument, 0, O_LOG},
    {"stop-at", required_argument, 0, O_STOP},    {"sample", required_argument, 0, O_SAMPLE},
    {"prompt", required_argument, 0, O_PROMPT},   {"progress", no_argument, 0, O_PROGRESS},
    {"val-frac", required_argument, 0, O_VALFRAC}, {"quiet", no_argument, 0, 'q'},
    {"dist", no_argument, 0, O_DIST},             {"shard-optim", no_argument, 0, O_SHARD},
    {"no-overlap", no_argument, 0, O_NO_OVERLAP}, {"bucket-mb", required_argument, 0, O_BUCKET},
    {"prompt-tune", required_argument, 0, O_PROMPT_TUNE}, {"lora", required_argument, 0, O_LORA},
    {"lora-alpha", required_argument, 0, O_LORA_ALPHA}, {"lora-targets", required_argument, 0, O_LORA_TARGETS},
    {"examples", required_argument, 0, O_EXAMPLES}, {"adapter", required_argument, 0, O_ADAPTER},
    {"help", no_argument, 0, 'h'},                {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0},
};

typedef struct options {
    const char **data;
    int n_data;
    const char *out, *init, *log, *prompt, *examples, *adapter;
    long prompt_tune, lora;
    double lora_alpha;
    unsigned lora_targets;
    long steps, batch, seq, dim, layers, heads, kv_heads, hidden, accum, window, eval_every,
        save_every, threads, stop_at, sample;
    int tie, quiet, progress;
    const char *optim;
    double lr, min_lr, wd, clip, val_frac, bucket_mb;
    long warmup;
    unsigned long long seed;
    char given[O_COUNT]; /* which options the user set */
} options;

static void parse(int argc, char **argv, options *o)
{
    *o = (options){.steps = 1000, .batch = 8, .seq = 128, .dim = 128, .layers = 4, .heads = 4,
                   .accum = 1, .eval_every = 100, .tie = 1, .optim = "adamw", .clip = 1.0,
                   .seed = 1337, .val_frac = 0.1, .prompt = "", .bucket_mb = 1,
                   .lora_targets = (1u << LLM_LIN_WQ) | (1u << LLM_LIN_WV)};
    llm_error err = {0};
    o->data = calloc((size_t)argc + 1, sizeof *o->data);
    if (!o->data) llm_die(LLM_EXIT_DATA, "out of memory");
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "qhV", long_opts, NULL)) != -1) {
        if (c > 0 && c < O_COUNT) o->given[c] = 1;
        switch (c) {
        case O_DATA: o->data[o->n_data++] = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_INIT: o->init = optarg; break;
        case O_STEPS: o->steps = llm_cli_long("--steps", optarg, 1, 1L << 40); break;
        case O_BATCH: o->batch = llm_cli_long("--batch", optarg, 1, 1 << 16); break;
        case O_SEQ: o->seq = llm_cli_long("--seq", optarg, 1, 1 << 20); break;
        case O_DIM: o->dim = llm_cli_long("--dim", optarg, 2, 1 << 16); break;
        case O_LAYERS: o->layers = llm_cli_long("--layers", optarg, 1, 1024); break;
        case O_HEADS: o->heads = llm_cli_long("--heads", optarg, 1, 1024); break;
        case O_KV: o->kv_heads = llm_cli_long("--kv-heads", optarg, 1, 1024); break;
        case O_HIDDEN: o->hidden = llm_cli_long("--hidden", optarg, 1, 1 << 18); break;
        case O_TIE: o->tie = 1; break;
        case O_NO_TIE: o->tie = 0; break;
        case O_OPTIM: o->optim = optarg;
            if (llm_optim_parse(optarg) < 0) llm_usage_error("--optim: '%s' is not adamw, adam, lion or sgd", optarg);
            break;
        case O_LR: o->lr = llm_cli_double("--lr", optarg, 0, 10); break;
        case O_MIN_LR: o->min_lr = llm_cli_double("--min-lr", optarg, 0, 10); break;
        case O_WARMUP: o->warmup = llm_cli_long("--warmup", optarg, 0, 1L << 40); break;
        case O_WD: o->wd = llm_cli_double("--wd", optarg, 0, 10); break;
        case O_CLIP: o->clip = llm_cli_double("--clip", optarg, 0, 1e9); break;
        case O_ACCUM: o->accum = llm_cli_long("--accum", optarg, 1, 1 << 16); break;
        case O_WINDOW: o->window = llm_cli_long("--window", optarg, 0, 1 << 20); break;
        case O_EVAL: o->eval_every = llm_cli_long("--eval-every", optarg, 0, 1L << 40); break;
        case O_SAVE: o->save_every = llm_cli_long("--save-every", optarg, 0, 1L << 40); break;
        case O_SEED: o->seed = (unsigned long long)llm_cli_long("--seed", optarg, 0, 1L << 62); break;
        case O_THREADS: o->threads = llm_cli_long("--threads", optarg, 1, 1024); break;
        case O_LOG: o->log = optarg; break;
        case O_STOP: o->stop_at = llm_cli_long("--stop-at", optarg, 1, 1L << 40); break;
        case O_SAMPLE: o->sample = llm_cli_long("--sample", optarg, 0, 1 << 20); break;
        case O_PROMPT: o->prompt = optarg; break;
        case O_PROGRESS: o->progress = 1; break;
        case O_DIST: case O_SHARD: case O_NO_OVERLAP: break;
        case O_BUCKET: o->bucket_mb = llm_cli_double("--bucket-mb", optarg, 0, 1 << 20); break;
        case O_PROMPT_TUNE: o->prompt_tune = llm_cli_long("--prompt-tune", optarg, 1, 1 << 16); break;
        case O_LORA: o->lora = llm_cli_long("--lora", optarg, 1, LLM_LORA_MAX_RANK); break;
        case O_LORA_ALPHA: o->lora_alpha = llm_cli_double("--lora-alpha", optarg, 1e-6, 1e5); break;
        case O_LORA_TARGETS:
            if (llm_adapter_parse_targets(optarg, &o->lora_targets, &err) < 0) llm_usage_error("--lora-targets: %s", err.msg);
            break;
        case O_EXAMPLES: o->examples = optarg; break;
        case O_ADAPTER: o->adapter = optarg; break;
        case O_VALFRAC: o->val_frac = llm_cli_double("--val-frac", optarg, 0.001, 0.5); break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case 'V': printf("llm-train (llmpipe) %s\n", LLM_VERSION); exit(0);
        default: llm_usage_error("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    while (optind < argc) o->data[o->n_data++] = argv[optind++];
    if (o->examples && o->n_data) llm_usage_error("--examples replaces --data: give one or the other");
    if (!o->n_data && !o->examples) llm_usage_error("no training text: give --data FILE (or '-' for stdin)");
    if ((o->prompt_tune || o->lora || o->adapter) && !o->init)
        llm_usage_error("--prompt-tune, --lora and --adapter adapt a base model: give it with --init BASE");
    if ((o->given[O_LORA_ALPHA] || o->given[O_LORA_TARGETS]) && !o->lora && !o->adapter)
        llm_usage_error("--lora-alpha and --lora-targets need --lora R (or --adapter A)");
    if (!o->out) llm_usage_error("no --out CKPT to write the model to");
}

/* The distributed run, when there is one (rank 0 of 1 otherwise). */
static llm_dist *dist;
static int rank, n_ranks = 1;

/* A runtime error: on one process, llm_die; among several ranks, the message
 * with this rank's number, then the whole job stops (MPI_Abort), so no rank
 * waits forever for this one. */
__attribute__((noreturn, format(printf, 1, 2))) static void fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!dist || n_ranks == 1) llm_die(LLM_EXIT_DATA, "%s", msg);
    if (strncmp(msg, "rank ", 5) == 0) /* MPI errors name the rank already */
        fprintf(stderr, "%s: %s\n", llm_cli_tool(), msg);
    else
        fprintf(stderr, "%s: rank %d: %s\n", llm_cli_tool(), rank, msg);
    llm_dist_abort(dist, LLM_EXIT_DATA);
}

/* The architecture options a user set that disagree with a checkpoint's. */
static void check_arch(const options *o, const llm_config *c, const char *path)
{
    const struct {
        int opt;
        const char *name;
        long want, have;
    } f[] = {{O_DIM, "dim", o->dim, c->dim},           {O_LAYERS, "layers", o->layers, c->n_layers},
             {O_HEADS, "heads", o->heads, c->n_heads}, {O_KV, "kv-heads", o->kv_heads, c->n_kv_heads},
             {O_HIDDEN, "hidden", o->hidden, c->hidden}, {O_TIE, "tie", 1, c->tie},
             {O_NO_TIE, "tie", 0, c->tie},             {O_WINDOW, "window", o->window, c->window}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (o->given[f[i].opt] && f[i].want != f[i].have)
            fatal("%s: incompatible checkpoint: it has %s %ld, not %ld", path,
                    f[i].name, f[i].have, f[i].want);
    if (o->given[O_SEQ] && o->seq > c->seq_len)
        fatal("%s: incompatible checkpoint: --seq %ld is beyond its context %d",
                path, o->seq, c->seq_len);
}

/* The adapter options a user set that disagree with the --adapter file's
 * settings: its shapes are fixed once trained. */
static void check_adapter(const options *o, const llm_adapter_config *c, const char *path)
{
    char want[40], have[40];
    llm_adapter_targets_name(c->rank ? c->targets : 0, have, sizeof have);
    llm_adapter_targets_name(o->lora_targets, want, sizeof want);
    if (o->given[O_PROMPT_TUNE] && o->prompt_tune != c->n_virtual)
        fatal("%s: incompatible adapter: it has %d virtual tokens, not %ld", path, c->n_virtual, o->prompt_tune);
    if (o->given[O_LORA] && o->lora != c->rank)
        fatal("%s: incompatible adapter: it has LoRA rank %d, not %ld", path, c->rank, o->lora);
    if (o->given[O_LORA_ALPHA] && (float)o->lora_alpha != c->alpha)
        fatal("%s: incompatible adapter: it has LoRA alpha %g, not %g", path, (double)c->alpha, o->lora_alpha);
    if (o->given[O_LORA_TARGETS] && strcmp(want, have))
        fatal("%s: incompatible adapter: it has LoRA targets %s, not %s", path, *have ? have : "none", want);
}

static void optim_config(const options *o, llm_optim_config *oc)
{
    llm_optim_defaults(oc, (llm_optim_kind)llm_optim_parse(o->optim));
    if (o->given[O_LR]) oc->lr = (float)o->lr;
    oc->min_lr = o->given[O_MIN_LR] ? (float)o->min_lr : oc->lr / 10;
    if (o->given[O_WD]) oc->weight_decay = (float)o->wd;
    oc->clip = (float)o->clip;
    oc->steps = o->steps;
    oc->warmup = o->given[O_WARMUP] ? o->warmup : o->steps / 20;
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Every rank calls it: the ranks must hold the same weights, sharded
 * optimizer state is gathered, and rank 0 writes the file. */
static void save(const char *path, llm_trainer *t)
{
    llm_error err = {0};
    if (t->m->adapter) { /* the base is untouched: the adapter alone */
        if (llm_adapter_save(path, t->m->adapter, &t->optim, &t->st, &err) < 0) fatal("%s", err.msg);
        return;
    }
    if (!t->comm) {
        if (llm_ckpt_save(path, t->m, &t->optim, &t->st, &err) < 0) fatal("%s", err.msg);
        return;
    }
    int same;
    if (llm_trainer_in_step(t, &same, &err) < 0) fatal("%s", err.msg);
    if (!same) fatal("%s: not saved: the ranks' weights differ, they fell out of step", path);
    llm_optim full;
    if (llm_trainer_full_optim(t, &full, &err) < 0) fatal("%s", err.msg);
    if (rank == 0 && llm_ckpt_save(path, t->m, &full, &t->st, &err) < 0) fatal("%s", err.msg);
    llm_optim_free(&full);
}

static void print_sample(const llm_trainer *t, const options *o)
{
    llm_error err = {0};
    llm_acts a;
    const llm_adapter *ad = t->m->adapter;
    if (llm_acts_init(&a, &t->m->cfg, 1, t->prefix + t->st.seq, &err) < 0 ||
        (ad && ad->cfg.rank && llm_acts_lora(&a, &t->m->cfg, ad->cfg.rank, &err) < 0) ||
        llm_acts_quant(&a, t->m, &err) < 0)
        fatal("%s", err.msg);
    size_t plen = strlen(o->prompt);
    int32_t *ids = malloc((llm_tok_max_ids(plen) + 1 + (size_t)t->prefix + (size_t)o->sample) * sizeof *ids);
    if (!ids) fatal("out of memory");
    for (int i = 0; i < t->prefix; i++) ids[i] = t->m->cfg.vocab + i; /* the virtual tokens */
    int n = t->prefix, bos = t->m->tok.bos;
    if (bos >= 0) ids[n++] = bos;
    int64_t k = llm_tok_encode_text(&t->m->tok, o->prompt, plen, ids + n, &err);
    if (k < 0) fatal("--prompt: %s", err.msg);
    n += (int)k;
    if (n == 0) fatal("--sample: an empty --prompt, and the tokenizer has no BOS to start from");
    if (llm_model_check_ids(t->m, ids, n, LLM_IDS_VIRTUAL, &err) < 0) fatal("--prompt: %s", err.msg);
    int made = llm_model_greedy(t->m, &a, ids, n, (int)o->sample, ids + n, &err);
    if (made < 0) fatal("--sample: %s", err.msg);
    fputs(o->prompt, stdout);
    for (int i = 0; i < made; i++) {
        char piece[LLM_TOK_MAX_PIECE];
        fwrite(piece, 1, (size_t)llm_tok_decode(&t->m->tok, ids[n + i], piece), stdout);
    }
    putchar('\n');
    free(ids);
    llm_acts_free(&a);
}

/* Reads and tokenizes the --data files (nothing with --examples) with tok,
 * the model's own tokenizer; returns their fingerprint. */
static uint64_t load_text(const options *o, const llm_tok *tok, llm_data *data)
{
    llm_error err = {0};
    if (!o->n_data) return 0;
    if (llm_data_load(data, o->data, o->n_data, tok, o->val_frac, &err) < 0) fatal("%s", err.msg);
    return llm_ckpt_hash_tokens(data->tokens, data->n_tokens);
}

/* Peak resident memory of this process so far, MiB. */
static double peak_rss_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
}

int main(int argc, char **argv)
{
    llm_cli_init("llm-train");
    options o;
    parse(argc, argv, &o);
    if (o.threads) llm_cli_threads((int)o.threads);
    llm_error err = {0};
    if (llm_dist_launched() || o.given[O_DIST] || o.given[O_SHARD] || o.given[O_NO_OVERLAP] ||
        o.given[O_BUCKET]) {
        if (llm_dist_init(&dist, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
        rank = llm_dist_comm(dist)->rank;
        n_ranks = llm_dist_comm(dist)->size;
        if (rank) { /* rank 0 alone speaks and writes */
            o.quiet = 1;
            o.log = NULL;
            o.sample = 0;
        }
        for (int i = 0; i < o.n_data; i++)
            if (strcmp(o.data[i], "-") == 0)
                fatal("--data -: standard input reaches rank 0 only; give every rank the text as a file");
    }
    llm_model model;
    llm_optim resume = {0}, *resume_p = NULL;
    llm_ckpt_train st = {0};
    int has_train = 0;
    const char *how = "new model";
    llm_data data = {0};
    llm_examples ex = {0};
    uint64_t data_hash = 0;
    int adapting = o.prompt_tune || o.lora || o.adapter;
    if (!o.given[O_ACCUM]) o.accum = n_ranks; /* one micro-batch per rank */

    llm_adapter adapter;
    const char *state_file = o.adapter ? o.adapter : o.init;
    if (o.init) {
        /* an adapter needs the weights only: float, or int8/int4 kept
         * quantized (QLoRA) */
        if ((adapting ? llm_ckpt_load_model(o.init, &model, &err)
                      : llm_ckpt_load(o.init, &model, &resume, &st, &has_train, &err)) < 0)
            fatal("%s%s", err.msg, strstr(err.msg, "already quantized")
                                       ? " (a quantized base trains adapters only: give --lora R or --prompt-tune N)"
                                       : "");
        check_arch(&o, &model.cfg, o.init);
        if (llm_tok_has_text(&model.tok, &err) < 0)
            fatal("%s: this model has no tokenizer (imported without one): llm-train has no text for it",
                  o.init);
        data_hash = load_text(&o, &model.tok, &data); /* in the model's own tokens */
        if (o.adapter) { /* its settings and weights, and where its training stands */
            if (llm_adapter_load_train(o.adapter, &adapter, &resume, &st, &has_train, &err) < 0) fatal("%s", err.msg);
            check_adapter(&o, &adapter.cfg, o.adapter);
            if (llm_adapter_attach(&model, &adapter, &err) < 0) fatal("%s: not for %s: %s", o.adapter, o.init, err.msg);
        }
        /* examples become windows of the saved length (or --seq): the fingerprint covers those */
        if (o.examples && has_train) {
            if (llm_examples_load(&ex, o.examples, &model.tok, o.given[O_SEQ] ? (int)o.seq : st.seq, o.val_frac,
                                  &err) < 0)
                fatal("%s", err.msg);
            data_hash = llm_ckpt_hash_tokens(ex.inputs, ex.n * ex.T);
        }
        if (has_train && st.data_hash == data_hash && st.val_frac == o.val_frac && (!o.examples || ex.T == st.seq)) {
            how = "resumed";
            resume_p = &resume;
            /* the schedule may be extended; everything else carries on */
            if (o.given[O_STEPS]) st.optim.steps = o.steps;
            if (st.step >= st.optim.steps)
                fatal("%s: already at step %" PRId64 " of %" PRId64 "; give a larger --steps", state_file,
                      st.step, st.optim.steps);
            llm_optim_config want;
            optim_config(&o, &want);
            const struct {
                int opt, differs;
            } fixed[] = {{O_BATCH, o.batch != st.batch},
                         {O_SEQ, o.seq != st.seq},
                         {O_ACCUM, o.accum != st.accum},
                         {O_OPTIM, want.kind != st.optim.kind},
                         {O_LR, want.lr != st.optim.lr},
                         {O_MIN_LR, want.min_lr != st.optim.min_lr},
                         {O_WARMUP, want.warmup != st.optim.warmup},
                         {O_WD, want.weight_decay != st.optim.weight_decay},
                         {O_CLIP, want.clip != st.optim.clip},
                         {O_SEED, o.seed != st.seed}};
            for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !rank; i++)
                if (o.given[fixed[i].opt] && fixed[i].differs) {
                    llm_warn("resuming %s: batch, seq, accum, optimizer, learning rates, warmup, "
                             "wd, clip and seed come from the %s; ignoring the ones given",
                             state_file, o.adapter ? "adapter" : "checkpoint");
                    break;
                }
        } else {
            how = has_train ? (o.examples ? "continued on new examples (fresh optimizer)"
                                          : "continued on new text (fresh optimizer)")
                  : o.adapter ? "continued from an adapter without training state (fresh optimizer)"
                              : "initialised from a model";
            llm_optim_free(&resume);
            has_train = 0;
        }
    } else {
        llm_tok tok;
        llm_tok_bytes(&tok);
        data_hash = load_text(&o, &tok, &data);
        long hidden = o.hidden ? o.hidden : (8 * o.dim / 3 + 31) / 32 * 32;
        llm_config cfg = {.vocab = tok.vocab, .dim = (int)o.dim, .n_layers = (int)o.layers,
                          .n_heads = (int)o.heads, .n_kv_heads = (int)(o.kv_heads ? o.kv_heads : o.heads),
                          .hidden = (int)hidden, .seq_len = (int)o.seq, .tie = o.tie,
                          .window = (int)o.window, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
        if (llm_config_check(&cfg, &err) < 0) llm_usage_error("%s", err.msg);
        if (llm_model_init(&model, &cfg, o.seed, &err) < 0) fatal("%s", err.msg);
    }
    char how_text[192];
    if (adapting) { /* and on what: "[resumed, ]adapting a frozen base" */
        snprintf(how_text, sizeof how_text, "%s%sadapting a frozen %s", o.adapter ? how : "",
                 o.adapter ? ", " : "",
                 llm_model_quantized(&model) ? "quantized base (QLoRA: its linears stay integer, dequantized a block at a time)"
                            : "base");
        how = how_text;
    }
    if (adapting && !o.adapter) {
        llm_adapter_config ac = {.n_virtual = (int)o.prompt_tune, .rank = (int)o.lora,
                                 .alpha = (float)(o.given[O_LORA_ALPHA] ? o.lora_alpha : 2.0 * o.lora),
                                 .targets = o.lora_targets};
        if (llm_adapter_init(&adapter, &model, &ac, o.seed, &err) < 0 ||
            llm_adapter_attach(&model, &adapter, &err) < 0)
            fatal("%s: %s", o.init, err.msg);
    }
    int prefix = adapting ? adapter.cfg.n_virtual : 0;
    if (!resume_p) {
        st = (llm_ckpt_train){.batch = (int)o.batch, .accum = (int)o.accum, .seed = o.seed,
                              .data_hash = data_hash, .val_frac = o.val_frac,
                              .seq = ex.T ? ex.T
                                          : (int)(o.given[O_SEQ] || !o.init ? o.seq : model.cfg.seq_len - prefix)};
        if (st.seq > model.cfg.seq_len - prefix) st.seq = model.cfg.seq_len - prefix;
        if (st.seq < 1) fatal("%s: %d virtual tokens leave no room in its context of %d", o.init, prefix,
                              model.cfg.seq_len);
        optim_config(&o, &st.optim);
        if (prefix && !o.given[O_LR]) { /* prompt tuning wants a large step */
            st.optim.lr = 0.1f;
            st.optim.min_lr = o.given[O_MIN_LR] ? (float)o.min_lr : 0.01f;
        }
        if (adapting && !o.given[O_WD]) st.optim.weight_decay = 0;
        llm_rng_seed(&st.rng, o.seed ^ 0x9e3779b97f4a7c15ull);
    }
    if (o.examples) {
        if (!ex.T && llm_examples_load(&ex, o.examples, &model.tok, st.seq, o.val_frac, &err) < 0)
            fatal("%s", err.msg);
        st.data_hash = llm_ckpt_hash_tokens(ex.inputs, ex.n * ex.T);
    }
    llm_trainer t;
    int rc = o.examples ? llm_trainer_init_examples(&t, &model, &ex, &st, resume_p, &err)
                        : llm_trainer_init(&t, &model, &data, &st, resume_p, &err);
    if (rc < 0) fatal("%s", err.msg);
    llm_dist_opts dopts = {.overlap = !o.given[O_NO_OVERLAP], .shard = o.given[O_SHARD],
                           .bucket_bytes = (int64_t)(o.bucket_mb * 1048576.0)};
    if (dist && llm_trainer_distribute(&t, llm_dist_comm(dist), &dopts, &err) < 0) fatal("%s", err.msg);
    const llm_config *c = &model.cfg;
    double grad_mib = (double)model.n_params * sizeof(float) / 1048576.0;
    char shard_note[32] = "";
    if (dist && dopts.shard) snprintf(shard_note, sizeof shard_note, ", sharded 1/%d", n_ranks);
    if (!o.quiet) {
        fprintf(stderr,
                "llm-train: %s: %" PRId64 " parameters (dim %d, layers %d, heads %d/%d kv, hidden %d, "
                "seq %d, %s)\n",
                how, model.n_params, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->hidden,
                c->seq_len, c->tie ? "tied" : "untied");
        fprintf(stderr,
                "llm-train: data: %" PRId64 " tokens (%" PRId64 " train, %" PRId64 " held out); "
                "optimizer %s: %.2f MiB of state%s (%d floats per parameter%s); activations %.1f MiB\n",
                o.examples ? ex.n * ex.T : data.n_tokens, o.examples ? ex.n_train * ex.T : data.n_train,
                o.examples ? (ex.n - ex.n_train) * ex.T : data.n_tokens - data.n_train, llm_optim_name(st.optim.kind),
                llm_optim_state_bytes(&t.optim) / 1048576.0, dist ? " per rank" : "",
                (t.optim.m != NULL) + (t.optim.v != NULL), shard_note, t.acts.bytes / 1048576.0);
        if (dist)
            fprintf(stderr,
                    "llm-train: data parallel over %d ranks (%s): %d micro-batches of %d per step; "
                    "gradient %.2f MiB %s %s\n",
                    n_ranks, llm_dist_library(dist), st.accum, st.batch, grad_mib,
                    dopts.shard ? "reduce-scattered (ZeRO-1), weights all-gathered," : "all-reduced",
                    !dopts.overlap ? "after the backward pass (--no-overlap)"
                    : dopts.bucket_bytes ? "in buckets during the backward pass"
                                         : "a layer at a time during the backward pass");
    }
    if (!o.quiet) {
        if (o.examples)
            fprintf(stderr, "llm-train: %s: %" PRId64 " examples (%" PRId64 " train, %" PRId64
                    " held out), windows of %d, loss on the labels only\n", o.examples, ex.n, ex.n_train,
                    ex.n - ex.n_train, ex.T);
        if (adapting) {
            char targets[40] = "", lora[96] = "no LoRA";
            llm_adapter_targets_name(adapter.cfg.targets, targets, sizeof targets);
            if (adapter.cfg.rank)
                snprintf(lora, sizeof lora, "LoRA rank %d alpha %g on %s", adapter.cfg.rank,
                         (double)adapter.cfg.alpha, targets);
            fprintf(stderr, "llm-train: adapter: %d virtual tokens, %s; base frozen (no gradient, no "
                    "optimizer state)\n", adapter.cfg.n_virtual, lora);
        }
        fprintf(stderr, "llm-train: trainable %" PRId64 " parameters of %" PRId64 " (%.3f%%); gradient %.2f MiB, "
                "optimizer state %.1f KiB; peak RSS %.1f MiB\n", t.n_train,
                model.n_params + (adapting ? adapter.n_params : 0),
                100.0 * (double)t.n_train / (double)(model.n_params + (adapting ? adapter.n_params : 0)),
                (double)t.n_train * sizeof(float) / 1048576.0, llm_optim_state_bytes(&t.optim) / 1024.0,
                peak_rss_mib());
    }
    if (o.init && !resume_p && o.eval_every) { /* where the new training starts from */
        float val0;
        if (llm_trainer_eval(&t, 64, &val0, &err) < 0) fatal("%s", err.msg);
        if (!o.quiet) fprintf(stderr, "llm-train: step 0 val %.4f (before training)\n", val0);
    }
    FILE *log = NULL;
    if (o.log) {
        log = fopen(o.log, t.st.step ? "a" : "w");
        if (!log) fatal("%s: %m", o.log);
        if (!t.st.step)
            fprintf(log, "step\ttrain_loss\tval_loss\tlr\ttokens_per_s\tgrad_norm%s%s\n",
                    dist ? "\tcomm_bytes\tcomm_s\tstep_s" : "", adapting ? "\ttrainable\tpeak_rss_mib" : "");
    }
    signal(SIGINT, on_signal);
    if (dist) signal(SIGTERM, on_signal); /* mpirun passes an interrupt on as SIGTERM */
    int bar = !o.quiet && llm_cli_progress_wanted(o.progress);
    int64_t end = st.optim.steps;
    if (o.stop_at && o.stop_at < end) end = o.stop_at;
    double start = llm_cli_now();
    int64_t first = t.st.step;
    double train_time = 0; /* seconds in training steps, evaluations and saves excluded */
    double comm_time = 0, comm_bytes = 0;
    int stop = 0; /* among ranks: every rank stops at the same step */
    while (t.st.step < end && !(dist ? stop : interrupted)) {
        llm_step_stats s = {.stop = interrupted};
        double t0 = llm_cli_now();
        if (llm_trainer_step(&t, &s, &err) < 0) fatal("%s", err.msg);
        stop = s.stop;
        double now = llm_cli_now(), tps = (double)st.batch * st.seq * st.accum / (now - t0);
        train_time += now - t0;
        comm_time += s.comm_s;
        comm_bytes += s.comm_bytes;
        int64_t step = t.st.step;
        float val = NAN;
        int eval = o.eval_every && (step % o.eval_every == 0 || step == end);
        if (eval && llm_trainer_eval(&t, 64, &val, &err) < 0) fatal("%s", err.msg);
        if (log) {
            fprintf(log, "%" PRId64 "\t%.6f\t", step, s.loss);
            if (eval) fprintf(log, "%.6f", val);
            fprintf(log, "\t%.6g\t%.1f\t%.6g", s.lr, tps, s.grad_norm);
            if (dist) fprintf(log, "\t%.0f\t%.6f\t%.6f", s.comm_bytes, s.comm_s, now - t0);
            if (adapting) fprintf(log, "\t%" PRId64 "\t%.1f", t.n_train, peak_rss_mib());
            fputc('\n', log);
            int e = llm_cli_output_errno(log, 1);
            if (e) fatal("%s: write: %s", o.log, strerror(e));
        }
        double avg_tps = (double)(step - first) * st.batch * st.seq * st.accum / train_time;
        char eta[32];
        llm_cli_duration((double)(end - step) * st.batch * st.seq * st.accum / avg_tps, eta, sizeof eta);
        if (bar)
            llm_cli_progress((double)step / (double)end, "step %" PRId64 "/%" PRId64 " loss %.4f %.0f tok/s ETA %s",
                             step, end, s.loss, avg_tps, eta);
        if (eval && !o.quiet) {
            llm_cli_progress_done();
            fprintf(stderr, "llm-train: step %" PRId64 "/%" PRId64 " train %.4f val %.4f lr %.3g %.0f tok/s",
                    step, end, s.loss, val, s.lr, avg_tps);
            if (dist) fprintf(stderr, " comm %.0f%%", 100 * comm_time / train_time);
            fputc('\n', stderr);
        }
        if (o.save_every && step % o.save_every == 0 && step != end) save(o.out, &t);
    }
    if (stop) interrupted = 1;
    llm_cli_progress_done();
    save(o.out, &t);
    if (log) {
        int e = llm_cli_output_errno(log, 1);
        if (e) fatal("%s: write: %s", o.log, strerror(e));
        if (fclose(log) != 0) fatal("%s: close: %m", o.log);
    }
    if (interrupted && !rank) llm_warn("interrupted: saved step %" PRId64 " to %s", t.st.step, o.out);
    else if (!o.quiet)
        fprintf(stderr, "llm-train: saved %s%s at step %" PRId64 " (%.1f s; %.1f s training); peak RSS %.1f MiB\n",
                adapting ? "the adapter " : "", o.out, t.st.step, llm_cli_now() - start, train_time, peak_rss_mib());
    int64_t steps_run = t.st.step - first;
    if (dist && !o.quiet && steps_run > 0)
        fprintf(stderr,
                "llm-train: communication: %.3f MiB sent per rank per step (%.2f x the %.3f MiB "
                "gradient); %.4f s of %.4f s per step waiting on it (%.1f%%)\n",
                comm_bytes / steps_run / 1048576.0, comm_bytes / steps_run / 1048576.0 / grad_mib,
                grad_mib, comm_time / steps_run, train_time / steps_run, 100 * comm_time / train_time);
    if (o.sample && !interrupted) print_sample(&t, &o);
    llm_trainer_free(&t);
    if (adapting) llm_adapter_free(&adapter);
    llm_model_free(&model);
    llm_data_free(&data);
    llm_examples_free(&ex);
    free(o.data);
    if (dist && llm_dist_finalize(dist, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return interrupted ? 130 : 0;
}
