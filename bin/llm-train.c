/* llm-train — train or resume a Llama-style decoder on text (llm-train(1)). */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
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
#include "opt.h"
#include "train.h"

/* The command line: what lib/train decides from, and the rest. */
typedef struct options {
    llm_train_args run;  /* what lib/train decides from */
    llm_opt_list data;   /* --data files, then the operands */
    const char *out, *init, *log, *prompt, *examples, *adapter;
    long eval_every, save_every, threads, stop_at, sample;
    int quiet, progress;
    int dist, shard, no_overlap, mpi; /* mpi: some data-parallel option was given */
    double bucket_mb;
} options;

static llm_error value_err; /* why an --optim or --lora-targets value is bad */

/* --optim: the optimizer's name to its kind (the table's LLM_OPT_CALL). */
static const char *parse_optim(void *dest, const char *arg, char why[64])
{
    (void)why;
    int kind = llm_optim_parse(arg);
    if (kind < 0) {
        llm_error_set(&value_err, LLM_ERR_ARG, "'%s' is not adamw, adam, lion or sgd", arg);
        return value_err.msg;
    }
    *(llm_optim_kind *)dest = (llm_optim_kind)kind;
    return NULL;
}

/* --lora-targets: "wq,wv" or "all" to bits. */
static const char *parse_targets(void *dest, const char *arg, char why[64])
{
    (void)why;
    return llm_adapter_parse_targets(arg, dest, &value_err) < 0 ? value_err.msg : NULL;
}

/* The options, from one table that --help is written from too, then the
 * checks across them. */
static void parse(int argc, char **argv, options *o)
{
    *o = (options){.eval_every = 100, .prompt = "", .bucket_mb = 1};
    llm_train_args *a = &o->run;
    llm_train_args_defaults(a);
    o->data.items = calloc((size_t)argc + 1, sizeof *o->data.items);
    if (!o->data.items) llm_die(LLM_EXIT_DATA, "out of memory");
    llm_opt opts[] = {
        {"dim", 0, LLM_OPT_LONG, &a->dim, .arg = "D", .help = "model width", .def = "128", .min = 2, .max = 1 << 16,
         .section = "Model (new runs; a resumed run takes them from its checkpoint):"},
        {"layers", 0, LLM_OPT_LONG, &a->layers, .arg = "L", .help = "layers", .def = "4", .min = 1, .max = 1024},
        {"heads", 0, LLM_OPT_LONG, &a->heads, .arg = "H", .help = "attention (query) heads", .def = "4", .min = 1,
         .max = 1024},
        {"kv-heads", 0, LLM_OPT_LONG, &a->kv_heads, .arg = "K", .help = "key/value heads", .def = "H", .min = 1,
         .max = 1024},
        {"hidden", 0, LLM_OPT_LONG, &a->hidden, .arg = "F", .help = "feed-forward width",
         .def = "8D/3, up to a multiple of 32", .min = 1, .max = 1 << 18},
        {"seq", 0, LLM_OPT_LONG, &a->seq, .arg = "T", .help = "tokens per window", .def = "128; --init: its context",
         .min = 1, .max = 1 << 20},
        {"tie", 0, LLM_OPT_SET, &a->tie, .help = "the token embedding is the classifier (the default)"},
        {"no-tie", 0, LLM_OPT_CLEAR, &a->tie, .help = "a classifier matrix of its own"},
        {"window", 0, LLM_OPT_LONG, &a->window, .arg = "W", .help = "attend to the last W positions",
         .def = "0: full causal", .min = 0, .max = 1 << 20},
        {"data", 0, LLM_OPT_LIST, &o->data, .arg = "FILE", .max = argc, .section = "Training:",
         .help = "text to train on ('-': stdin); repeatable, as is\nevery operand"},
        {"steps", 0, LLM_OPT_LONG, &a->steps, .arg = "N", .help = "optimizer steps: the schedule's length",
         .def = "1000", .min = 1, .max = 1L << 40},
        {"batch", 0, LLM_OPT_LONG, &a->batch, .arg = "B", .help = "windows per micro-batch", .def = "8", .min = 1,
         .max = 1 << 16},
        {"accum", 0, LLM_OPT_LONG, &a->accum, .arg = "N", .help = "micro-batches per step",
         .def = "1; with MPI the ranks", .min = 1, .max = 1 << 16},
        {"optim", 0, LLM_OPT_CALL, &a->optim, .arg = "adamw|adam|lion|sgd", .help = "the optimizer",
         .def = "adamw", .parse = parse_optim},
        {"lr", 0, LLM_OPT_DOUBLE, &a->lr, .arg = "X", .help = "peak learning rate",
         .def = "1e-3; lion 1e-4; prompt tuning 0.1", .min = 0, .max = 10},
        {"min-lr", 0, LLM_OPT_DOUBLE, &a->min_lr, .arg = "X", .help = "the cosine's last learning rate",
         .def = "lr/10; prompt tuning 0.01", .min = 0, .max = 10},
        {"warmup", 0, LLM_OPT_LONG, &a->warmup, .arg = "N", .help = "steps of linear warmup", .def = "steps/20",
         .min = 0, .max = 1L << 40},
        {"wd", 0, LLM_OPT_DOUBLE, &a->wd, .arg = "X", .help = "weight decay",
         .def = "0.1 adamw/lion; 0 adam/sgd, adapters", .min = 0, .max = 10},
        {"clip", 0, LLM_OPT_DOUBLE, &a->clip, .arg = "X", .help = "gradient norm limit, 0 = off", .def = "1.0",
         .min = 0, .max = 1e9},
        {"seed", 0, LLM_OPT_LONG, &a->seed, .arg = "S", .help = "seeds the weights and the windows",
         .def = "1337", .min = 0, .max = 1L << 62},
        {"val-frac", 0, LLM_OPT_DOUBLE, &a->val_frac, .arg = "X", .help = "fraction held out for validation",
         .def = "0.1", .min = 0.001, .max = 0.5},
        {"out", 0, LLM_OPT_STRING, &o->out, .arg = "CKPT", .section = "Output:",
         .help = "where the checkpoint (or adapter) goes; required"},
        {"init", 0, LLM_OPT_STRING, &o->init, .arg = "CKPT",
         .help = "start from it: resume, or continue on new text"},
        {"eval-every", 0, LLM_OPT_LONG, &o->eval_every, .arg = "N",
         .help = "validation loss every N steps, 0 = never", .def = "100", .min = 0, .max = 1L << 40},
        {"save-every", 0, LLM_OPT_LONG, &o->save_every, .arg = "N", .help = "also save every N steps",
         .def = "0: at the end", .min = 0, .max = 1L << 40},
        {"stop-at", 0, LLM_OPT_LONG, &o->stop_at, .arg = "N", .help = "stop after step N, saving", .min = 1,
         .max = 1L << 40},
        {"log", 0, LLM_OPT_STRING, &o->log, .arg = "FILE.tsv", .help = "one line per step"},
        {"sample", 0, LLM_OPT_LONG, &o->sample, .arg = "N", .help = "print N greedy tokens after --prompt at the end",
         .def = "0", .min = 0, .max = 1 << 20},
        {"prompt", 0, LLM_OPT_STRING, &o->prompt, .arg = "TEXT", .help = "where --sample starts", .def = "empty"},
        {"threads", 0, LLM_OPT_LONG, &o->threads, .arg = "N", .help = "OpenMP and OpenBLAS threads",
         .def = "as the environment says", .min = 1, .max = 1024},
        {"progress", 0, LLM_OPT_SET, &o->progress, .help = "a progress bar even when stderr is not a terminal"},
        {"quiet", 'q', LLM_OPT_SET, &o->quiet, .help = "no progress bar, no messages but errors"},
        {"prompt-tune", 0, LLM_OPT_LONG, &a->prompt_tune, .arg = "N",
         .help = "N virtual tokens before every sequence", .min = 1, .max = 1 << 16,
         .section = "Fine-tuning (with --init BASE; the base stays frozen and --out gets a small adapter stream):"},
        {"lora", 0, LLM_OPT_LONG, &a->lora, .arg = "R", .help = "LoRA of rank R", .min = 1, .max = LLM_LORA_MAX_RANK},
        {"lora-alpha", 0, LLM_OPT_DOUBLE, &a->lora_alpha, .arg = "A", .help = "the LoRA scale numerator", .def = "2R",
         .min = 1e-6, .max = 1e5},
        {"lora-targets", 0, LLM_OPT_CALL, &a->lora_targets, .arg = "LIST",
         .help = "linears: wq,wk,wv,wo,w1,w2,w3 or all", .def = "wq,wv", .parse = parse_targets},
        {"examples", 0, LLM_OPT_STRING, &o->examples, .arg = "FILE.tsv",
         .help = "instead of --data: 'text<TAB>label' lines, loss on\nthe label only"},
        {"adapter", 0, LLM_OPT_STRING, &o->adapter, .arg = "A.llmt",
         .help = "resume the adapter run that saved A on BASE, or\ntrain A further"},
        {"shard-optim", 0, LLM_OPT_SET, &o->shard, .help = "ZeRO-1: 1/N of the optimizer state per rank",
         .section = "Data parallelism (mpirun -np N llm-train ...; --accum counts micro-batches over all ranks, "
                    "default N):"},
        {"no-overlap", 0, LLM_OPT_SET, &o->no_overlap, .help = "reduce the gradient after the backward pass"},
        {"bucket-mb", 0, LLM_OPT_DOUBLE, &o->bucket_mb, .arg = "X",
         .help = "MiB of gradient a bucket waits for, 0 = a layer", .def = "1", .min = 0, .max = 1 << 20},
        {"dist", 0, LLM_OPT_SET, &o->dist, .help = "start MPI without mpirun: one rank"},
        {0},
    };
    llm_opt_spec spec = {.tool = "llm-train", .opts = opts, .operands = -1, .footer = "See llm-train(1).",
                         .usage = "usage: llm-train --data FILE... --out CKPT [options]     (FILE '-': stdin)"};
    for (int i = llm_opt_parse(&spec, argc, argv); i < argc; i++) o->data.items[o->data.n++] = argv[i];
    for (int i = 0; i < LLM_TRAIN_OPT_COUNT; i++)
        if (llm_opt_given(&spec, llm_train_opt_name((llm_train_opt)i))) a->given |= 1u << i;
    o->mpi = o->dist || o->shard || o->no_overlap || llm_opt_given(&spec, "bucket-mb");
    if (o->examples && o->data.n) llm_usage_error("--examples replaces --data: give one or the other");
    if (!o->data.n && !o->examples) llm_usage_error("no training text: give --data FILE (or '-' for stdin)");
    if ((a->prompt_tune || a->lora || o->adapter) && !o->init)
        llm_usage_error("--prompt-tune, --lora and --adapter adapt a base model: give it with --init BASE");
    if ((llm_opt_given(&spec, "lora-alpha") || llm_opt_given(&spec, "lora-targets")) && !a->lora && !o->adapter)
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
    int32_t *ids = malloc((llm_tok_max_ids(&t->m->tok, plen) + 1 + (size_t)t->prefix + (size_t)o->sample) * sizeof *ids);
    if (!ids) fatal("out of memory");
    for (int i = 0; i < t->prefix; i++) ids[i] = t->m->cfg.vocab + i; /* the virtual tokens */
    int n = t->prefix;
    if (t->m->tok.add_bos) ids[n++] = t->m->tok.bos;
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
    if (!o->data.n) return 0;
    if (llm_data_load(data, o->data.items, o->data.n, tok, o->run.val_frac, &err) < 0) fatal("%s", err.msg);
    return llm_ckpt_hash_tokens(data->tokens, data->n_tokens);
}

/* Peak resident memory of this process so far, MiB. */
static double peak_rss_mib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024.0 : 0.0;
}

/* Joins the distributed run when there is one (under an MPI launcher, or
 * asked for): only rank 0 speaks and writes. */
static void start_dist(options *o)
{
    llm_error err = {0};
    if (llm_dist_launched() || o->mpi) {
        if (llm_dist_init(&dist, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
        rank = llm_dist_comm(dist)->rank;
        n_ranks = llm_dist_comm(dist)->size;
        if (rank) {
            o->quiet = 1;
            o->log = NULL;
            o->sample = 0;
        }
        for (int i = 0; i < o->data.n; i++)
            if (strcmp(o->data.items[i], "-") == 0)
                fatal("--data -: standard input reaches rank 0 only; give every rank the text as a file");
    }
    if (!llm_train_given(&o->run, LLM_TRAIN_OPT_ACCUM)) o->run.accum = n_ranks; /* one micro-batch per rank */
}

/* What a run holds from its start to its end. */
typedef struct run {
    llm_model model;
    int adapting;            /* an adapter is trained on the frozen model */
    llm_adapter adapter;     /* when adapting */
    llm_data data;           /* --data's tokens (none with --examples) */
    llm_examples ex;         /* --examples' windows (ex.T 0 until loaded) */
    uint64_t data_hash;      /* the fingerprint of the text */
    llm_train_start start;
    llm_ckpt_train st;       /* the training state: loaded when resumed, else fresh */
    llm_optim resume;        /* the optimizer state a resumed run takes over */
    llm_trainer t;
    llm_dist_opts dopts;
    FILE *log;               /* --log */
    double started, train_s; /* train_s: in training steps, evaluations and saves excluded */
    double comm_s, comm_bytes;
    int64_t first;           /* the step the run started at */
} run;

/* A new model, for the tokens of the --data files. */
static void create_model(const options *o, run *r)
{
    llm_error err = {0};
    llm_tok tok;
    llm_tok_bytes(&tok);
    r->data_hash = load_text(o, &tok, &r->data);
    llm_config cfg;
    llm_train_new_config(&o->run, tok.vocab, &cfg);
    if (llm_config_check(&cfg, &err) < 0) llm_usage_error("%s", err.msg);
    if (llm_model_init(&r->model, &cfg, (uint64_t)o->run.seed, &err) < 0) fatal("%s", err.msg);
    r->start = LLM_TRAIN_NEW;
}

/* The --init model (with the training state it holds, or the --adapter
 * stream's, attached), its text, and how the run goes on from them. */
static void load_init(const options *o, run *r)
{
    llm_error err = {0};
    int has_train = 0;
    /* an adapter needs the weights only: float, or int8/int4 kept quantized (QLoRA) */
    if ((r->adapting ? llm_ckpt_load_model(o->init, &r->model, &err)
                     : llm_ckpt_load(o->init, &r->model, &r->resume, &r->st, &has_train, &err)) < 0)
        fatal("%s%s", err.msg, strstr(err.msg, "already quantized")
                                   ? " (a quantized base trains adapters only: give --lora R or --prompt-tune N)"
                                   : "");
    if (llm_train_check_arch(&o->run, &r->model.cfg, o->init, &err) < 0) fatal("%s", err.msg);
    if (llm_tok_has_text(&r->model.tok, &err) < 0)
        fatal("%s: this model has no tokenizer (imported without one): llm-train has no text for it", o->init);
    r->data_hash = load_text(o, &r->model.tok, &r->data); /* in the model's own tokens */
    if (o->adapter) { /* its settings and weights, and where its training stands */
        if (llm_adapter_load_train(o->adapter, &r->adapter, &r->resume, &r->st, &has_train, &err) < 0 ||
            llm_train_check_adapter(&o->run, &r->adapter.cfg, o->adapter, &err) < 0)
            fatal("%s", err.msg);
        if (llm_adapter_attach(&r->model, &r->adapter, &err) < 0)
            fatal("%s: not for %s: %s", o->adapter, o->init, err.msg);
    }
    /* examples become windows of the saved length (or --seq): the fingerprint covers those */
    if (o->examples && has_train) {
        int seq = llm_train_given(&o->run, LLM_TRAIN_OPT_SEQ) ? (int)o->run.seq : r->st.seq;
        if (llm_examples_load(&r->ex, o->examples, &r->model.tok, seq, o->run.val_frac, &err) < 0)
            fatal("%s", err.msg);
        r->data_hash = llm_ckpt_hash_tokens(r->ex.inputs, r->ex.n * r->ex.T);
    }
    const char *state_file = o->adapter ? o->adapter : o->init;
    unsigned ignored;
    if (llm_train_decide(&o->run, state_file, has_train, o->adapter != NULL, r->data_hash, r->ex.T, &r->st,
                         &r->start, &ignored, &err) < 0)
        fatal("%s", err.msg);
    if (ignored && !rank)
        llm_warn("resuming %s: batch, seq, accum, optimizer, learning rates, warmup, wd, clip and seed come "
                 "from the %s; ignoring the ones given", state_file, o->adapter ? "adapter" : "checkpoint");
    if (r->start != LLM_TRAIN_RESUMED) llm_optim_free(&r->resume);
}

/* A fresh adapter on the --init base, for --prompt-tune and --lora. */
static void attach_new_adapter(const options *o, run *r)
{
    llm_error err = {0};
    llm_adapter_config ac;
    llm_train_adapter_config(&o->run, &ac);
    if (llm_adapter_init(&r->adapter, &r->model, &ac, (uint64_t)o->run.seed, &err) < 0 ||
        llm_adapter_attach(&r->model, &r->adapter, &err) < 0)
        fatal("%s: %s", o->init, err.msg);
}

/* The training state (unless resumed), the examples, and the trainer. */
static void start_training(const options *o, run *r)
{
    llm_error err = {0};
    int resumed = r->start == LLM_TRAIN_RESUMED;
    if (!resumed && llm_train_fresh(&o->run, &r->model, o->init, r->ex.T, r->data_hash, &r->st, &err) < 0)
        fatal("%s", err.msg);
    if (o->examples) {
        if (!r->ex.T && llm_examples_load(&r->ex, o->examples, &r->model.tok, r->st.seq, o->run.val_frac, &err) < 0)
            fatal("%s", err.msg);
        r->st.data_hash = llm_ckpt_hash_tokens(r->ex.inputs, r->ex.n * r->ex.T);
    }
    llm_optim *resume = resumed ? &r->resume : NULL;
    int rc = o->examples ? llm_trainer_init_examples(&r->t, &r->model, &r->ex, &r->st, resume, &err)
                         : llm_trainer_init(&r->t, &r->model, &r->data, &r->st, resume, &err);
    if (rc < 0) fatal("%s", err.msg);
    r->dopts = (llm_dist_opts){.overlap = !o->no_overlap, .shard = o->shard,
                               .bucket_bytes = (int64_t)(o->bucket_mb * 1048576.0)};
    if (dist && llm_trainer_distribute(&r->t, llm_dist_comm(dist), &r->dopts, &err) < 0) fatal("%s", err.msg);
}

/* The start-up messages: the model, the data, the optimizer, the adapter. */
static void report_start(const options *o, const run *r)
{
    const llm_model *m = &r->model;
    const llm_config *c = &m->cfg;
    const llm_ckpt_train *st = &r->st;
    const llm_trainer *t = &r->t;
    const llm_examples *ex = &r->ex;
    char how[192];
    llm_train_describe(r->start, m, how, sizeof how);
    double grad_mib = (double)m->n_params * sizeof(float) / 1048576.0;
    char shard_note[32] = "";
    if (dist && r->dopts.shard) snprintf(shard_note, sizeof shard_note, ", sharded 1/%d", n_ranks);
    fprintf(stderr,
            "llm-train: %s: %" PRId64 " parameters (dim %d, layers %d, heads %d/%d kv, hidden %d, "
            "seq %d, %s)\n",
            how, m->n_params, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->hidden,
            c->seq_len, c->tie ? "tied" : "untied");
    fprintf(stderr,
            "llm-train: data: %" PRId64 " tokens (%" PRId64 " train, %" PRId64 " held out); "
            "optimizer %s: %.2f MiB of state%s (%d floats per parameter%s); activations %.1f MiB\n",
            o->examples ? ex->n * ex->T : r->data.n_tokens, o->examples ? ex->n_train * ex->T : r->data.n_train,
            o->examples ? (ex->n - ex->n_train) * ex->T : r->data.n_tokens - r->data.n_train,
            llm_optim_name(st->optim.kind), llm_optim_state_bytes(&t->optim) / 1048576.0, dist ? " per rank" : "",
            (t->optim.m != NULL) + (t->optim.v != NULL), shard_note, t->acts.bytes / 1048576.0);
    if (dist)
        fprintf(stderr,
                "llm-train: data parallel over %d ranks (%s): %d micro-batches of %d per step; "
                "gradient %.2f MiB %s %s\n",
                n_ranks, llm_dist_library(dist), st->accum, st->batch, grad_mib,
                r->dopts.shard ? "reduce-scattered (ZeRO-1), weights all-gathered," : "all-reduced",
                !r->dopts.overlap ? "after the backward pass (--no-overlap)"
                : r->dopts.bucket_bytes ? "in buckets during the backward pass"
                                        : "a layer at a time during the backward pass");
    if (o->examples)
        fprintf(stderr, "llm-train: %s: %" PRId64 " examples (%" PRId64 " train, %" PRId64
                " held out), windows of %d, loss on the labels only\n", o->examples, ex->n, ex->n_train,
                ex->n - ex->n_train, ex->T);
    int64_t n_params = m->n_params + (r->adapting ? r->adapter.n_params : 0);
    if (r->adapting) {
        const llm_adapter_config *ac = &r->adapter.cfg;
        char targets[40] = "", lora[96] = "no LoRA";
        llm_adapter_targets_name(ac->targets, targets, sizeof targets);
        if (ac->rank)
            snprintf(lora, sizeof lora, "LoRA rank %d alpha %g on %s", ac->rank, (double)ac->alpha, targets);
        fprintf(stderr, "llm-train: adapter: %d virtual tokens, %s; base frozen (no gradient, no "
                "optimizer state)\n", ac->n_virtual, lora);
    }
    fprintf(stderr, "llm-train: trainable %" PRId64 " parameters of %" PRId64 " (%.3f%%); gradient %.2f MiB, "
            "optimizer state %.1f KiB; peak RSS %.1f MiB\n", t->n_train, n_params,
            100.0 * (double)t->n_train / (double)n_params, (double)t->n_train * sizeof(float) / 1048576.0,
            llm_optim_state_bytes(&t->optim) / 1024.0, peak_rss_mib());
}

/* Opens --log: appended to when the run goes on from a saved step, else
 * started with its header line. */
static void open_log(const options *o, run *r)
{
    if (!o->log) return;
    int64_t step = r->t.st.step;
    r->log = fopen(o->log, step ? "a" : "w");
    if (!r->log) fatal("%s: %m", o->log);
    if (!step)
        fprintf(r->log, "step\ttrain_loss\tval_loss\tlr\ttokens_per_s\tgrad_norm%s%s\n",
                dist ? "\tcomm_bytes\tcomm_s\tstep_s" : "", r->adapting ? "\ttrainable\tpeak_rss_mib" : "");
}

/* The --log line of a step that took step_s seconds (val: when eval). */
static void log_step(const options *o, run *r, const llm_step_stats *s, int eval, float val, double step_s)
{
    const llm_ckpt_train *st = &r->st;
    double tps = (double)st->batch * st->seq * st->accum / step_s;
    fprintf(r->log, "%" PRId64 "\t%.6f\t", r->t.st.step, s->loss);
    if (eval) fprintf(r->log, "%.6f", val);
    fprintf(r->log, "\t%.6g\t%.1f\t%.6g", s->lr, tps, s->grad_norm);
    if (dist) fprintf(r->log, "\t%.0f\t%.6f\t%.6f", s->comm_bytes, s->comm_s, step_s);
    if (r->adapting) fprintf(r->log, "\t%" PRId64 "\t%.1f", r->t.n_train, peak_rss_mib());
    fputc('\n', r->log);
    int e = llm_cli_output_errno(r->log, 1);
    if (e) fatal("%s: write: %s", o->log, strerror(e));
}

/* The progress bar, and the line of a step that was evaluated. */
static void show_step(const options *o, const run *r, const llm_step_stats *s, int eval, float val,
                      int64_t end, int bar)
{
    const llm_ckpt_train *st = &r->st;
    int64_t step = r->t.st.step;
    double avg_tps = (double)(step - r->first) * st->batch * st->seq * st->accum / r->train_s;
    char eta[32];
    llm_cli_duration((double)(end - step) * st->batch * st->seq * st->accum / avg_tps, eta, sizeof eta);
    if (bar)
        llm_cli_progress((double)step / (double)end, "step %" PRId64 "/%" PRId64 " loss %.4f %.0f tok/s ETA %s",
                         step, end, s->loss, avg_tps, eta);
    if (eval && !o->quiet) {
        llm_cli_progress_done();
        fprintf(stderr, "llm-train: step %" PRId64 "/%" PRId64 " train %.4f val %.4f lr %.3g %.0f tok/s",
                step, end, s->loss, val, s->lr, avg_tps);
        if (dist) fprintf(stderr, " comm %.0f%%", 100 * r->comm_s / r->train_s);
        fputc('\n', stderr);
    }
}

/* The training loop: steps until the schedule's end, --stop-at or an
 * interruption, evaluating, logging and saving on the way. */
static void train(const options *o, run *r)
{
    llm_error err = {0};
    llm_trainer *t = &r->t;
    if (o->init && r->start != LLM_TRAIN_RESUMED && o->eval_every) { /* where the new training starts from */
        float val0;
        if (llm_trainer_eval(t, 64, &val0, &err) < 0) fatal("%s", err.msg);
        if (!o->quiet) fprintf(stderr, "llm-train: step 0 val %.4f (before training)\n", val0);
    }
    open_log(o, r);
    signal(SIGINT, on_signal);
    if (dist) signal(SIGTERM, on_signal); /* mpirun passes an interrupt on as SIGTERM */
    int bar = !o->quiet && llm_cli_progress_wanted(o->progress);
    int64_t end = r->st.optim.steps;
    if (o->stop_at && o->stop_at < end) end = o->stop_at;
    r->started = llm_cli_now();
    r->first = t->st.step;
    int stop = 0; /* among ranks: every rank stops at the same step */
    while (t->st.step < end && !(dist ? stop : interrupted)) {
        llm_step_stats s = {.stop = interrupted};
        double t0 = llm_cli_now();
        if (llm_trainer_step(t, &s, &err) < 0) fatal("%s", err.msg);
        stop = s.stop;
        double now = llm_cli_now();
        r->train_s += now - t0;
        r->comm_s += s.comm_s;
        r->comm_bytes += s.comm_bytes;
        int64_t step = t->st.step;
        float val = NAN;
        int eval = o->eval_every && (step % o->eval_every == 0 || step == end);
        if (eval && llm_trainer_eval(t, 64, &val, &err) < 0) fatal("%s", err.msg);
        if (r->log) log_step(o, r, &s, eval, val, now - t0);
        show_step(o, r, &s, eval, val, end, bar);
        if (o->save_every && step % o->save_every == 0 && step != end) save(o->out, t);
    }
    if (stop) interrupted = 1;
    llm_cli_progress_done();
}

/* The last save, the closing messages and the sample. */
static void finish(const options *o, run *r)
{
    llm_trainer *t = &r->t;
    save(o->out, t);
    if (r->log) {
        int e = llm_cli_output_errno(r->log, 1);
        if (e) fatal("%s: write: %s", o->log, strerror(e));
        if (fclose(r->log) != 0) fatal("%s: close: %m", o->log);
    }
    if (interrupted && !rank) llm_warn("interrupted: saved step %" PRId64 " to %s", t->st.step, o->out);
    else if (!o->quiet)
        fprintf(stderr, "llm-train: saved %s%s at step %" PRId64 " (%.1f s; %.1f s training); peak RSS %.1f MiB\n",
                r->adapting ? "the adapter " : "", o->out, t->st.step, llm_cli_now() - r->started, r->train_s,
                peak_rss_mib());
    int64_t steps_run = t->st.step - r->first;
    double grad_mib = (double)r->model.n_params * sizeof(float) / 1048576.0;
    if (dist && !o->quiet && steps_run > 0)
        fprintf(stderr,
                "llm-train: communication: %.3f MiB sent per rank per step (%.2f x the %.3f MiB "
                "gradient); %.4f s of %.4f s per step waiting on it (%.1f%%)\n",
                r->comm_bytes / steps_run / 1048576.0, r->comm_bytes / steps_run / 1048576.0 / grad_mib,
                grad_mib, r->comm_s / steps_run, r->train_s / steps_run, 100 * r->comm_s / r->train_s);
    if (o->sample && !interrupted) print_sample(t, o);
}

int main(int argc, char **argv)
{
    llm_cli_init("llm-train");
    options o;
    parse(argc, argv, &o);
    if (o.threads) llm_cli_threads((int)o.threads);
    start_dist(&o);
    run r = {.adapting = o.run.prompt_tune || o.run.lora || o.adapter};
    if (o.init) load_init(&o, &r);
    else create_model(&o, &r);
    if (r.adapting && !o.adapter) attach_new_adapter(&o, &r);
    start_training(&o, &r);
    if (!o.quiet) report_start(&o, &r);
    train(&o, &r);
    finish(&o, &r);
    llm_trainer_free(&r.t);
    if (r.adapting) llm_adapter_free(&r.adapter);
    llm_model_free(&r.model);
    llm_data_free(&r.data);
    llm_examples_free(&r.ex);
    free(o.data.items);
    llm_error err = {0};
    if (dist && llm_dist_finalize(dist, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return interrupted ? 130 : 0;
}
