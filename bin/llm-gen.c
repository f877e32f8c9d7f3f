/* llm-gen — generate text with a model, or measure its perplexity (llm-gen(1)). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "ckpt.h"
#include "cli.h"
#include "data.h"
#include "examples.h"
#include "infer.h"
#include "generate.h"
#include "labels.h"
#include "opt.h"
#include "sample.h"
#include "stream.h"

typedef struct options {
    const char *model, *prompt, *eval, *adapter, *classify, *labels;
    long n, top_k, seed, threads, ctx, stride, window;
    double temp, top_p, factor;
    int ids, quiet, scaling, dump_attn, dump_acts, force, batch;
    long slots;
} options;

static void parse(int argc, char **argv, options *o)
{
    *o = (options){.n = 256, .temp = 0.8, .top_p = 0.95, .seed = 42, .slots = 8, .scaling = LLM_ROPE_NONE};
    llm_opt opts[] = {
        {"model", 'm', LLM_OPT_STRING, &o->model, .arg = "CKPT", .help = "the checkpoint (required)",
         .section = "Model:"},
        {"prompt", 'p', LLM_OPT_STRING, &o->prompt, .arg = "TEXT", .help = "the prompt",
         .def = "standard input", .section = "Generation:"},
        {"tokens", 'n', LLM_OPT_LONG, &o->n, .arg = "N", .help = "new tokens at most, per prompt", .def = "256",
         .min = 0, .max = 1 << 24},
        {"temp", 0, LLM_OPT_DOUBLE, &o->temp, .arg = "T", .help = "temperature; 0 = greedy", .def = "0.8",
         .min = 0, .max = 100},
        {"top-k", 0, LLM_OPT_LONG, &o->top_k, .arg = "K", .help = "draw among the K likeliest tokens; 0 = all",
         .def = "0", .min = 0, .max = 1 << 24},
        {"top-p", 0, LLM_OPT_DOUBLE, &o->top_p, .arg = "P", .help = "nucleus sampling; 1 = off", .def = "0.95",
         .min = 1e-6, .max = 1},
        {"seed", 0, LLM_OPT_LONG, &o->seed, .arg = "S", .help = "seeds the draws", .def = "42", .min = 0,
         .max = (double)(1L << 62)},
        {"ids", 0, LLM_OPT_SET, &o->ids, .help = "prompt and output as token ids, space-separated"},
        {"batch", 0, LLM_OPT_SET, &o->batch,
         .help = "each stdin line is a prompt; up to --slots sequences decode together,\n"
                 "a finished one's slot taking the next prompt at once; output in input order"},
        {"slots", 0, LLM_OPT_LONG, &o->slots, .arg = "N", .help = "sequences decoded at once with --batch",
         .def = "8", .min = 1, .max = 4096},
        {"eval", 0, LLM_OPT_STRING, &o->eval, .arg = "FILE",
         .help = "print ppl=... bpb=... tokens=... of FILE ('-': stdin)", .section = "Evaluation:"},
        {"stride", 0, LLM_OPT_LONG, &o->stride, .arg = "S",
         .help = "windows of --ctx tokens advance by S;\neach token is scored once", .def = "--ctx/2", .min = 1,
         .max = 1 << 22},
        {"adapter", 0, LLM_OPT_STRING, &o->adapter, .arg = "A.llmt",
         .help = "apply prompt-tuning tokens and LoRA factors trained on this base\n(llm-train)",
         .section = "Adapters and classification:"},
        {"classify", 0, LLM_OPT_STRING, &o->classify, .arg = "FILE.tsv",
         .help = "for each 'text<TAB>gold' line, score every label by its log-likelihood\n"
                 "after the text and print 'predicted<TAB>gold'; then accuracy=... n=..."},
        {"labels", 0, LLM_OPT_STRING, &o->labels, .arg = "a,b,c", .help = "--classify's candidates",
         .def = "the file's distinct gold labels"},
        {"dump-attn", 0, LLM_OPT_SET, &o->dump_attn,
         .help = "the prompt's attention probabilities: layers.L.attn.probs [heads, T, T]",
         .section = "Dumps (a tensor stream on stdout, one record flushed at a time):"},
        {"dump-acts", 0, LLM_OPT_SET, &o->dump_acts,
         .help = "every linear layer's inputs for the text on stdin, in sequences of --ctx\n"
                 "tokens: layers.L.attn.wq.in [tokens, D] (also read by wk, wv), ...wo.in,\n"
                 "layers.L.mlp.w1.in (also w3), ...w2.in, cls.in"},
        {"force", 0, LLM_OPT_SET, &o->force, .help = "write a dump to a terminal"},
        {"ctx", 0, LLM_OPT_LONG, &o->ctx, .arg = "N", .help = "the positions the KV cache holds",
         .def = "the trained length", .min = 1, .max = 1 << 22, .section = "Context:"},
        {"window", 0, LLM_OPT_LONG, &o->window, .arg = "W",
         .help = "attend to the W latest positions only", .def = "the model's own setting",
         .min = 1, .max = 1 << 22},
        {"rope-scaling", 0, LLM_OPT_CHOICE, &o->scaling, .arg = "none|linear|ntk|dynamic-ntk|yarn",
         .help = "how RoPE's frequencies stretch beyond the trained length", .def = "none",
         .choices = "none|linear|ntk|dynamic-ntk|yarn", .lookup = llm_rope_kind_parse},
        {"rope-factor", 0, LLM_OPT_DOUBLE, &o->factor, .arg = "F", .help = "the scaling factor",
         .def = "--ctx / the trained length", .min = 1, .max = 1024},
        {"threads", 0, LLM_OPT_LONG, &o->threads, .arg = "N", .help = "OpenMP and OpenBLAS threads",
         .def = "OMP_NUM_THREADS, else one per core", .min = 1, .max = 1024, .section = "Other:"},
        {"quiet", 'q', LLM_OPT_SET, &o->quiet, .help = "no timing line, dump report or warning"},
        {0},
    };
    static const char *const exclusive[] = {"eval dump-attn dump-acts batch classify", NULL};
    llm_opt_spec spec = {
        .tool = "llm-gen",
        .usage = "usage: llm-gen -m CKPT [-p TEXT] [options]          (no -p: the prompt is stdin)\n"
                 "       llm-gen -m CKPT --eval FILE [--ctx N] [--stride S]",
        .opts = opts, .exclusive = exclusive, .footer = "See llm-gen(1).", .operands = 0};
    llm_opt_parse(&spec, argc, argv);
    if (!o->model) llm_usage_error("no model: give -m CKPT");
    if (o->dump_acts && o->prompt) llm_usage_error("--dump-acts reads its text from stdin, not -p");
    if (o->stride && o->ctx && o->stride > o->ctx)
        llm_usage_error("--stride %ld is larger than --ctx %ld", o->stride, o->ctx);
    if (o->labels && !o->classify) llm_usage_error("--labels goes with --classify");
}

/* Reads a whole file ("-": stdin), or dies saying why. */
static char *slurp(const char *path, size_t *len)
{
    llm_error err = {0};
    char *text;
    if (llm_data_read_text(path, &text, len, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return text;
}

/* Token ids from "1 17 42" text (where names it in messages); tokenize
 * checks them against the model. */
static int64_t parse_ids(const char *text, int32_t *ids, int64_t cap, const char *where)
{
    int64_t n = 0;
    for (const char *p = text; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            if (*p == ' ' || *p == '\n' || *p == '\t' || *p == ',') { p++; continue; }
            llm_die(LLM_EXIT_DATA, "%s: '%.20s' is not a token id", where, p);
        }
        if (v < INT32_MIN || v > INT32_MAX)
            llm_die(LLM_EXIT_DATA, "%s: token %" PRId64 ": id %.*s outside the vocabulary", where, n + 1,
                    (int)(end - p), p);
        if (n < cap) ids[n] = (int32_t)v;
        n++;
        p = end;
    }
    return n;
}

/* The adapter's virtual tokens (ids V..V+P-1), BOS and the text's tokens
 * (or the ids given), each checked against the model's vocabulary, with
 * `where` in the message; *n gets the count. */
static int32_t *tokenize(const llm_model *m, const char *text, size_t len, int ids, const char *where,
                         int64_t *n)
{
    int P = m->adapter ? m->adapter->cfg.n_virtual : 0;
    size_t cap = llm_tok_max_ids(&m->tok, len) + 1 + (size_t)P;
    int32_t *t = malloc(cap * sizeof *t);
    if (!t) llm_die(LLM_EXIT_DATA, "out of memory");
    for (int i = 0; i < P; i++) t[i] = m->cfg.vocab + i;
    llm_error err = {0};
    int64_t k = 0;
    if (ids) {
        k = parse_ids(text, t + P, (int64_t)cap - P, where);
    } else {
        if (m->tok.add_bos) t[P + k++] = m->tok.bos;
        int64_t got = llm_tok_encode_text(&m->tok, text, len, t + P + k, &err);
        if (got < 0) llm_die(LLM_EXIT_DATA, "%s: %s", where, err.msg);
        k += got;
    }
    if (llm_model_check_ids(m, t + P, k, 0, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: %s", where, err.msg);
    *n = P + k;
    return t;
}

/* Where generated tokens go: straight to stdout (one sequence), or into a
 * buffer per sequence printed in input order (--batch). */
typedef struct out_ctx {
    const llm_model *m;
    int ids;
    int32_t prev;    /* one sequence: the token before (BPE drops a space after BOS) */
    int printed;     /* --batch: sequences printed so far */
    char **text;     /* --batch: [n] growing buffers, NULL once printed */
    size_t *len;
    char *done;      /* --batch: [n] 1 once the sequence has ended */
    int n;
} out_ctx;

static void piece_of(const out_ctx *oc, int32_t prev, int32_t id, char *buf, int *len)
{
    if (oc->ids) *len = snprintf(buf, 24, "%d ", id);
    else *len = llm_tok_decode_next(&oc->m->tok, prev, id, buf);
    if (*len < 0) *len = 0;
}

static int emit_now(void *ctx, int seq, int32_t token)
{
    (void)seq;
    if (token < 0) return 0;
    out_ctx *oc = ctx;
    char piece[LLM_TOK_MAX_PIECE > 24 ? LLM_TOK_MAX_PIECE : 24];
    int len;
    piece_of(oc, oc->prev, token, piece, &len);
    oc->prev = token;
    fwrite(piece, 1, (size_t)len, stdout);
    llm_cli_check_output(stdout, "stdout", 1);
    return 0;
}

static int emit_batch(void *ctx, int seq, int32_t token)
{
    out_ctx *oc = ctx;
    if (token >= 0) {
        char piece[LLM_TOK_MAX_PIECE > 24 ? LLM_TOK_MAX_PIECE : 24];
        int len;
        piece_of(oc, -1, token, piece, &len);
        char *t = realloc(oc->text[seq], oc->len[seq] + 2 * (size_t)len + 1);
        if (!t) llm_die(LLM_EXIT_DATA, "out of memory");
        for (int i = 0; i < len; i++) { /* one line per prompt: \\ and \n escaped */
            if (piece[i] == '\n' || piece[i] == '\\') t[oc->len[seq]++] = '\\';
            t[oc->len[seq]++] = piece[i] == '\n' ? 'n' : piece[i];
        }
        oc->text[seq] = t;
        return 0;
    }
    oc->done[seq] = 1;
    while (oc->printed < oc->n && oc->done[oc->printed]) { /* in input order */
        fwrite(oc->text[oc->printed], 1, oc->len[oc->printed], stdout);
        putchar('\n');
        free(oc->text[oc->printed]);
        oc->text[oc->printed++] = NULL;
    }
    llm_cli_check_output(stdout, "stdout", 1);
    return 0;
}

static void report_stats(const llm_gen_stats *st, int requests, int ctx, int quiet)
{
    if (st->full && !quiet) llm_warn("%d sequence%s stopped: the context (%d tokens) is full", st->full,
                                     st->full == 1 ? "" : "s", ctx);
    if (quiet) return;
    double total = st->prefill_s + st->decode_s;
    fprintf(stderr, "llm-gen: prompt%s %" PRId64 " tokens in %.3f s (%.1f tok/s); %" PRId64
            " tokens generated in %.3f s of decoding (%.1f tok/s)", requests > 1 ? "s" : "",
            st->prompt_tokens, st->prefill_s,
            st->prefill_s > 0 ? (double)st->prompt_tokens / st->prefill_s : 0.0, st->new_tokens,
            st->decode_s, st->decode_s > 0 ? (double)st->new_tokens / st->decode_s : 0.0);
    if (requests > 1)
        fprintf(stderr, "; %d requests, %.2f requests/s, %.1f tok/s overall", requests,
                (double)requests / total, (double)st->new_tokens / total);
    fputc('\n', stderr);
}

/* --batch: every stdin line is a prompt; all decode together. */
static void run_batch(llm_infer *s, const llm_model *m, const options *o, int ctx)
{
    llm_error err = {0};
    size_t len;
    char *text = slurp("-", &len);
    int n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (len && text[len - 1] != '\n') n++;
    int32_t **prompts = calloc((size_t)n + 1, sizeof *prompts);
    int64_t *lens = calloc((size_t)n + 1, sizeof *lens);
    out_ctx oc = {.m = m, .ids = o->ids, .prev = -1, .n = n, .text = calloc((size_t)n + 1, sizeof(char *)),
                  .len = calloc((size_t)n + 1, sizeof(size_t)), .done = calloc((size_t)n + 1, 1)};
    if (!prompts || !lens || !oc.text || !oc.len || !oc.done) llm_die(LLM_EXIT_DATA, "out of memory");
    char *line = text;
    for (int i = 0; i < n; i++) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        char where[32];
        snprintf(where, sizeof where, "line %d", i + 1);
        prompts[i] = tokenize(m, line, strlen(line), o->ids, where, &lens[i]);
        if (lens[i] == 0) llm_die(LLM_EXIT_DATA, "line %d: no token ids", i + 1);
        if (lens[i] > ctx)
            llm_die(LLM_EXIT_DATA, "line %d: the prompt is %" PRId64 " tokens; the context holds %d", i + 1,
                    lens[i], ctx);
        if (!o->ids) { /* each output line starts with its prompt */
            oc.text[i] = strdup(line);
            oc.len[i] = strlen(line);
        }
        line = end ? end + 1 : line + strlen(line);
    }
    llm_gen_opts go = {.max_new = (int)o->n, .seed = (uint64_t)o->seed, .stop = {m->tok.bos, m->tok.eos},
                       .sample = {.temp = (float)o->temp, .top_k = (int)o->top_k, .top_p = (float)o->top_p}};
    llm_gen_stats st;
    if (llm_generate(s, (const int32_t *const *)prompts, lens, n, &go, emit_batch, &oc, &st, &err) < 0)
        llm_die(LLM_EXIT_DATA, "%s", err.msg);
    report_stats(&st, n, ctx, o->quiet);
    for (int i = 0; i < n; i++) free(prompts[i]);
    free(prompts), free(lens), free(oc.text), free(oc.len), free(oc.done), free(text);
}

/* The tap of a dump: each tensor becomes one record of the output stream. */
typedef struct dump {
    llm_writer *w;
    char seq[24]; /* the sequence number, as an attribute */
    char *tokens; /* --dump-attn: the prompt's token labels, as an attribute */
} dump;

static int dump_record(void *ctx, const char *name, const float *data, const llm_shape *shape,
                       llm_error *err)
{
    dump *d = ctx;
    llm_attr attrs[2] = {{"seq", d->seq}, {"tokens", d->tokens}};
    llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = name, .dtype = LLM_DTYPE_F32,
                      .shape = *shape, .attrs = attrs, .n_attrs = d->tokens ? 2 : 1};
    return llm_writer_record(d->w, &rec, data, err);
}

static void run_dump(llm_infer *s, const llm_model *m, const options *o, int ctx)
{
    llm_error err = {0};
    llm_cli_refuse_tty(1, o->force);
    dump d = {0};
    if (llm_writer_open(&d.w, "-", NULL, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    s->tap = (llm_infer_tap){.fn = dump_record, .ctx = &d, .acts = o->dump_acts, .probs = o->dump_attn};
    size_t len;
    char *text = o->prompt && o->dump_attn ? strdup(o->prompt) : slurp("-", &len);
    if (!text) llm_die(LLM_EXIT_DATA, "out of memory");
    int64_t n;
    int32_t *t = tokenize(m, text, strlen(text), o->ids, o->prompt && o->dump_attn ? "-p" : "stdin", &n);
    if (o->dump_attn && n > ctx)
        llm_die(LLM_EXIT_DATA, "the prompt is %" PRId64 " tokens; the context holds %d (see --ctx)", n, ctx);
    if (o->dump_attn) { /* labels too long for an attribute are left out */
        if (llm_labels_format(&m->tok, t, n, &d.tokens, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
        if (strlen(d.tokens) > LLM_MAX_VALUE) free(d.tokens), d.tokens = NULL;
    }
    int64_t seq = 0;
    for (int64_t at = 0; at < n; at += ctx, seq++) { /* --dump-acts: sequences of ctx tokens */
        int k = n - at < ctx ? (int)(n - at) : ctx;
        snprintf(d.seq, sizeof d.seq, "%" PRId64, seq);
        llm_infer_reset(s);
        for (int done = 0; done < k;) {
            int c = k - done < s->chunk ? k - done : s->chunk;
            if (llm_infer_feed(s, t + at + done, c, 1, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
            done += c;
        }
    }
    if (llm_writer_close(d.w, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    if (!o->quiet)
        fprintf(stderr, "llm-gen: dumped %" PRId64 " tokens in %" PRId64 " sequence%s\n", n, seq,
                seq == 1 ? "" : "s");
    free(d.tokens);
    free(t);
    free(text);
}

/* --classify: each example's label chosen by log-likelihood among the candidates. */
static void run_classify(llm_infer *s, const llm_model *m, const options *o, int ctx)
{
    llm_error err = {0};
    size_t len;
    char *text = slurp(o->classify, &len);
    /* the examples, split in place; the candidates from --labels or the golds */
    int n = 0, n_labels = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    n += len && text[len - 1] != '\n';
    char **texts = calloc((size_t)n + 1, sizeof *texts), **golds = calloc((size_t)n + 1, sizeof *golds);
    char *label_list = o->labels ? strdup(o->labels) : NULL;
    const char **labels = calloc((size_t)n + 64 + (o->labels ? strlen(o->labels) : 0), sizeof *labels);
    if (!texts || !golds || !labels || (o->labels && !label_list)) llm_die(LLM_EXIT_DATA, "out of memory");
    if (label_list)
        for (char *save, *l = strtok_r(label_list, ",", &save); l; l = strtok_r(NULL, ",", &save))
            labels[n_labels++] = l;
    int k = 0;
    char *line = text;
    for (int lineno = 1; line < text + len; lineno++) {
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        if (end) *end = '\0';
        else end = text + len;
        if (*line) {
            if (llm_example_split(line, &golds[k]) < 0)
                llm_die(LLM_EXIT_DATA, "%s:%d: no tab before a label", o->classify, lineno);
            texts[k] = line;
            int known = 0;
            for (int j = 0; j < n_labels; j++) known |= !strcmp(labels[j], golds[k]);
            if (!known && !o->labels) labels[n_labels++] = golds[k];
            k++;
        }
        line = end + 1;
    }
    if (n_labels < 2) llm_die(LLM_EXIT_USAGE, "%s: fewer than two labels to choose from", o->classify);
    int P = m->adapter ? m->adapter->cfg.n_virtual : 0, T = ctx - P;
    size_t longest_text = 0, longest_label = 0; /* the window need not outgrow the examples */
    for (int e = 0; e < k; e++) longest_text = strlen(texts[e]) > longest_text ? strlen(texts[e]) : longest_text;
    for (int j = 0; j < n_labels; j++)
        longest_label = strlen(labels[j]) > longest_label ? strlen(labels[j]) : longest_label;
    size_t need = 1 + llm_tok_max_ids(&m->tok, longest_text) + llm_tok_max_ids(&m->tok, longest_label);
    if (need < (size_t)T) T = (int)need;
    int32_t *prefix = malloc(((size_t)P + 1) * sizeof *prefix), *in = malloc((size_t)T * sizeof *in),
            *tg = malloc((size_t)T * sizeof *tg);
    if (!prefix || !in || !tg) llm_die(LLM_EXIT_DATA, "out of memory");
    for (int i = 0; i < P; i++) prefix[i] = m->cfg.vocab + i;
    int correct = 0;
    for (int e = 0; e < k; e++) {
        int best = 0;
        double best_lp = -INFINITY;
        for (int j = 0; j < n_labels; j++) {
            double lp;
            if (llm_example_encode(&m->tok, texts[e], strlen(texts[e]), labels[j], strlen(labels[j]), T, in,
                                   tg, &err) < 0 ||
                llm_examples_logp(s, prefix, P, in, tg, T, &lp, &err) < 0)
                llm_die(LLM_EXIT_DATA, "%s: example %d: %s", o->classify, e + 1, err.msg);
            if (j == 0 || lp > best_lp) best_lp = lp, best = j; /* always a label, even if lp were NaN */
        }
        correct += !strcmp(labels[best], golds[e]);
        printf("%s\t%s\n", labels[best], golds[e]);
        llm_cli_check_output(stdout, "stdout", 0);
    }
    printf("accuracy=%.4f correct=%d n=%d labels=%d\n", k ? (double)correct / k : 0.0, correct, k, n_labels);
    free(prefix), free(in), free(tg), free(texts), free(golds), free(labels), free(label_list), free(text);
}

int main(int argc, char **argv)
{
    llm_cli_init("llm-gen");
    options o;
    parse(argc, argv, &o);
    if (o.threads) llm_cli_threads((int)o.threads);
    llm_error err = {0};
    llm_model m;
    if (llm_ckpt_load_model(o.model, &m, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    if (!o.ids && llm_tok_has_text(&m.tok, &err) < 0) llm_die(LLM_EXIT_USAGE, "%s: %s", o.model, err.msg);
    llm_adapter adapter;
    if (o.adapter) {
        if (llm_adapter_load(o.adapter, &adapter, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
        if (llm_adapter_attach(&m, &adapter, &err) < 0)
            llm_die(LLM_EXIT_DATA, "%s: not for %s: %s", o.adapter, o.model, err.msg);
        if (adapter.cfg.n_virtual && (o.eval || o.dump_attn || o.dump_acts))
            llm_die(LLM_EXIT_USAGE, "%s: a prompt-tuning adapter works with generation and --classify, not "
                    "--eval or dumps", o.adapter);
    }
    int ctx = o.ctx ? (int)o.ctx : m.cfg.seq_len;
    llm_rope_scaling scaling = {.kind = (llm_rope_kind)o.scaling, .orig_ctx = m.cfg.seq_len,
                                .cur_len = ctx,
                                .factor = o.factor ? o.factor
                                          : o.scaling == LLM_ROPE_DYNAMIC_NTK ? 1.0 /* grows with the length itself */
                                                                              : (double)ctx / m.cfg.seq_len};
    if (scaling.factor < 1) scaling.factor = 1;
    if (ctx > m.cfg.seq_len && o.scaling == LLM_ROPE_NONE && !o.quiet)
        llm_warn("--ctx %d is beyond the trained %d without --rope-scaling: positions past it are "
                 "extrapolated", ctx, m.cfg.seq_len);
    llm_infer_opts io = {.ctx = ctx, .window = (int)o.window, .rope = &scaling,
                         .slots = o.batch ? (int)o.slots : 1};
    llm_infer s;
    if (llm_infer_init(&s, &m, &io, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: %s", o.model, err.msg);

    if (o.batch) {
        run_batch(&s, &m, &o, ctx);
    } else if (o.classify) {
        run_classify(&s, &m, &o, ctx);
    } else if (o.dump_attn || o.dump_acts) {
        run_dump(&s, &m, &o, ctx);
    } else if (o.eval) {
        size_t len;
        char *text = slurp(o.eval, &len);
        int64_t n;
        int32_t *t = tokenize(&m, text, len, o.ids, strcmp(o.eval, "-") ? o.eval : "stdin", &n);
        if (n < 2) llm_die(LLM_EXIT_DATA, "%s: nothing to evaluate", o.eval);
        int stride = o.stride ? (int)o.stride : (ctx / 2 > 0 ? ctx / 2 : 1);
        double nats;
        int64_t scored;
        if (llm_infer_nll(&s, t, n, stride, &nats, &scored, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
        printf("ppl=%.4f bpb=%.4f tokens=%" PRId64 "\n", exp(nats / (double)scored),
               nats / log(2.0) / (double)(o.ids ? scored : (int64_t)len), scored);
        free(t);
        free(text);
    } else {
        size_t len;
        char *text = o.prompt ? strdup(o.prompt) : slurp("-", &len);
        if (!text) llm_die(LLM_EXIT_DATA, "out of memory");
        len = strlen(text);
        int64_t n;
        int32_t *t = tokenize(&m, text, len, o.ids, o.prompt ? "-p" : "stdin", &n);
        if (n == 0) llm_die(LLM_EXIT_USAGE, "--ids: no token ids in the prompt");
        if (n > ctx)
            llm_die(LLM_EXIT_DATA, "the prompt is %" PRId64 " tokens; the context holds %d (see --ctx)", n, ctx);
        llm_gen_opts go = {.max_new = (int)o.n, .seed = (uint64_t)o.seed, .stop = {m.tok.bos, m.tok.eos},
                           .sample = {.temp = (float)o.temp, .top_k = (int)o.top_k, .top_p = (float)o.top_p}};
        out_ctx oc = {.m = &m, .ids = o.ids, .prev = t[n - 1]};
        if (!o.ids) fputs(text, stdout);
        llm_cli_check_output(stdout, "stdout", 0);
        const int32_t *prompts[1] = {t};
        llm_gen_stats st;
        if (llm_generate(&s, prompts, &n, 1, &go, emit_now, &oc, &st, &err) < 0)
            llm_die(LLM_EXIT_DATA, "%s", err.msg);
        putchar('\n');
        llm_cli_check_output(stdout, "stdout", 1); /* before any message on stderr */
        report_stats(&st, 1, ctx, o.quiet);
        free(t);
        free(text);
    }
    llm_infer_free(&s);
    llm_model_free(&m);
    if (o.adapter) llm_adapter_free(&adapter);
    return 0;
}
