/* llm-quant — quantize a checkpoint's linear layers: int8, int4 (RTN or
 * GPTQ), SmoothQuant, W8A8 (llm-quant(1)).  Options, files, progress and the
 * report; the work is lib/qmodel's. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib.h"
#include "adapter.h"
#include "ckpt.h"
#include "cli.h"
#include "outfile.h"
#include "qmodel.h"
#include "stream.h"

static const char usage_text[] =
    "usage: llm-quant -m CKPT -o OUT --scheme int8|int4|w8a8 [options]\n"
    "\n"
    "  --scheme int8   int8 weights, a scale per output channel (W8A16)\n"
    "           int4   int4 weights, a scale per --group G (128) input columns (W4A16)\n"
    "           w8a8   int8 weights and int8 inputs with a static step per tensor\n"
    "                  (needs --calib: the table's scale of each linear's input)\n"
    "  --sym | --asym  int4 grid symmetric about 0 (default) or with a zero point per group\n"
    "  --method rtn|gptq  round to nearest (default), or GPTQ (needs --acts)\n"
    "  --acts FILE|-   activations from llm-gen --dump-acts: GPTQ's Hessians and the report's\n"
    "                  output errors\n"
    "  --damp X (0.01)  --block N (128)  --act-order     GPTQ settings\n"
    "  --smooth ALPHA --calib FILE   SmoothQuant with llm-calib --per-channel's absmax\n"
    "  --calib-method NAME   which of the table's methods w8a8 uses (entropy, else the first)\n"
    "  --skip GLOB     leave matching linears in float (repeatable), e.g. 'layers.0.*'\n"
    "  --cls           quantize the classifier too (kept float by default; when tied to the\n"
    "                  embedding it becomes a tensor of its own)\n"
    "  --dequant       write the float model the quantized one stands for\n"
    "  --merge-adapter A.llmt  fold a LoRA adapter trained on CKPT (llm-train --lora) into its\n"
    "                  weights first; without --scheme, write the merged float model\n"
    "  --report FILE   per linear: weight SQNR, output SQNR on the activations (RTN beside\n"
    "                  GPTQ), and the file sizes ('-': stdout)\n"
    "Other: --threads N  -q  -h/--help  -V/--version.  See llm-quant(1).\n";

enum { O_SCHEME = 256, O_GROUP, O_SYM, O_ASYM, O_METHOD, O_ACTS, O_DAMP, O_ACT_ORDER, O_BLOCK,
       O_SMOOTH, O_CALIB, O_CALIB_METHOD, O_SKIP, O_CLS, O_DEQUANT, O_REPORT, O_THREADS,
       O_MERGE };

static const struct option long_opts[] = {
    {"model", required_argument, 0, 'm'},      {"output", required_argument, 0, 'o'},
    {"scheme", required_argument, 0, O_SCHEME}, {"group", required_argument, 0, O_GROUP},
    {"sym", no_argument, 0, O_SYM},            {"asym", no_argument, 0, O_ASYM},
    {"method", required_argument, 0, O_METHOD}, {"acts", required_argument, 0, O_ACTS},
    {"damp", required_argument, 0, O_DAMP},    {"act-order", no_argument, 0, O_ACT_ORDER},
    {"block", required_argument, 0, O_BLOCK},  {"smooth", required_argument, 0, O_SMOOTH},
    {"calib", required_argument, 0, O_CALIB},  {"calib-method", required_argument, 0, O_CALIB_METHOD},
    {"skip", required_argument, 0, O_SKIP},    {"cls", no_argument, 0, O_CLS},
    {"dequant", no_argument, 0, O_DEQUANT},    {"report", required_argument, 0, O_REPORT},
    {"merge-adapter", required_argument, 0, O_MERGE},
    {"threads", required_argument, 0, O_THREADS}, {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},             {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0},
};

enum { MAX_SKIP = 64 };

typedef struct options {
    const char *model, *out, *acts, *calib, *calib_method, *report, *merge;
    const char *skip[MAX_SKIP];
    int n_skip, gptq, act_order, cls, dequant, quiet;
    llm_qformat f;
    double damp, smooth;
    long block, threads;
} options;

static void parse(int argc, char **argv, options *o)
{
    *o = (options){.damp = 0.01, .block = 128, .f = {.group = 128, .sym = 1}};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:qhV", long_opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'o': o->out = optarg; break;
        case O_SCHEME: {
            int s = llm_qscheme_parse(optarg);
            if (s < 0) llm_usage_error("--scheme: '%s' is not int8, int4 or w8a8", optarg);
            o->f.scheme = (llm_qscheme)s;
            break;
        }
        case O_GROUP: o->f.group = (int)llm_cli_long("--group", optarg, 1, 1 << 22); break;
        case O_SYM: o->f.sym = 1; break;
        case O_ASYM: o->f.sym = 0; break;
        case O_METHOD:
            if (!strcmp(optarg, "gptq")) o->gptq = 1;
            else if (!strcmp(optarg, "rtn")) o->gptq = 0;
            else llm_usage_error("--method: '%s' is not rtn or gptq", optarg);
            break;
        case O_ACTS: o->acts = optarg; break;
        case O_DAMP: o->damp = llm_cli_double("--damp", optarg, 0, 10); break;
        case O_ACT_ORDER: o->act_order = 1; break;
        case O_BLOCK: o->block = llm_cli_long("--block", optarg, 1, 1 << 16); break;
        case O_SMOOTH: o->smooth = llm_cli_double("--smooth", optarg, 0.01, 0.99); break;
        case O_CALIB: o->calib = optarg; break;
        case O_CALIB_METHOD: o->calib_method = optarg; break;
        case O_SKIP:
            if (o->n_skip == MAX_SKIP) llm_usage_error("more than %d --skip patterns", MAX_SKIP);
            o->skip[o->n_skip++] = optarg;
            break;
        case O_CLS: o->cls = 1; break;
        case O_DEQUANT: o->dequant = 1; break;
        case O_REPORT: o->report = optarg; break;
        case O_MERGE: o->merge = optarg; break;
        case O_THREADS: o->threads = llm_cli_long("--threads", optarg, 1, 1024); break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(usage_text, stdout); exit(0);
        case 'V': printf("llm-quant (llmpipe) %s\n", LLM_VERSION); exit(0);
        default: llm_usage_error("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) llm_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->model) llm_usage_error("no model: give -m CKPT");
    if (!o->out) llm_usage_error("no output: give -o OUT");
    if (!o->f.scheme && !o->merge) llm_usage_error("no scheme: give --scheme int8, int4 or w8a8");
    if (o->gptq && !o->acts) llm_usage_error("--method gptq needs --acts (llm-gen --dump-acts)");
    if (o->smooth && !o->calib) llm_usage_error("--smooth needs --calib (llm-calib --per-channel)");
    if (o->f.scheme == LLM_Q_W8A8 && !o->calib) llm_usage_error("--scheme w8a8 needs --calib (llm-calib)");
    if (o->f.scheme == LLM_Q_INT4 && o->f.group % LLM_QBLOCK)
        llm_usage_error("--group %d is not a multiple of %d", o->f.group, LLM_QBLOCK);
    if (o->acts && o->calib && !strcmp(o->acts, "-") && !strcmp(o->calib, "-"))
        llm_usage_error("--acts and --calib cannot both be stdin");
}

/* ---- output ---- */

static long long file_size(const char *path)
{
    struct stat st;
    return strcmp(path, "-") && stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void write_report(const options *o, const llm_qmodel *q)
{
    llm_error err = {0};
    llm_outfile *f;
    if (llm_outfile_open(&f, o->report, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    int fd = dup(llm_outfile_fd(f));
    FILE *fp = fd < 0 ? NULL : fdopen(fd, "w");
    if (!fp) llm_die(LLM_EXIT_DATA, "%s: %s", llm_outfile_path(f), strerror(errno));
    const char *scheme = llm_qscheme_name(o->f.scheme);
    fprintf(fp, "# llm-quant %s -> %s: scheme %s", o->model, o->out, scheme);
    if (o->f.scheme == LLM_Q_INT4) fprintf(fp, " group %d %s", o->f.group, o->f.sym ? "sym" : "asym");
    fprintf(fp, ", method %s%s%s\n", o->gptq ? "gptq" : "rtn", o->act_order ? " act-order" : "",
            o->smooth ? ", smoothed" : "");
    fprintf(fp, "# weight_sqnr_db: 10 log10(|W|^2 / |W - Q|^2); out_sqnr_db: the same of W x over\n"
                "# the --acts activations; rtn_out_sqnr_db: RTN's, beside GPTQ's\n");
    fprintf(fp, "%-24s %6s %6s %8s %14s %12s %15s\n", "tensor", "rows", "cols", "scheme", "weight_sqnr_db",
            "out_sqnr_db", "rtn_out_sqnr_db");
    for (int i = 0; i < q->n_lin; i++) {
        llm_cli_check_output(fp, llm_outfile_path(f), 0); /* the lines so far */
        const llm_qmodel_linear *li = &q->lin[i];
        if (!li->quantize) {
            fprintf(fp, "%-24s %6d %6d %8s %14s %12s %15s\n", li->name, li->rows, li->cols, "float", "-", "-", "-");
            continue;
        }
        char v[3][32];
        const double x[3] = {li->w_sqnr, li->out_sqnr, li->rtn_out_sqnr};
        for (int k = 0; k < 3; k++) {
            if (isnan(x[k])) snprintf(v[k], sizeof v[k], "-");
            else snprintf(v[k], sizeof v[k], "%.2f", x[k]);
        }
        fprintf(fp, "%-24s %6d %6d %8s %14s %12s %15s\n", li->name, li->rows, li->cols, scheme, v[0], v[1], v[2]);
    }
    long long before = file_size(o->model), after = file_size(o->out);
    fprintf(fp, "# file bytes: %lld -> %lld", before, after);
    if (before > 0 && after > 0) fprintf(fp, " (%.3fx)", (double)after / (double)before);
    fputc('\n', fp);
    llm_cli_close_output(fp, llm_outfile_path(f)); /* dies removing the temporary file */
    if (llm_outfile_commit(f, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
}


/* The library's message as the tool's, exit 1. */
#define OR_DIE(expr)                                          \
    do {                                                      \
        if ((expr) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg); \
    } while (0)

static void progress_bar(int done, int todo, const char *name, void *ctx)
{
    (void)ctx;
    llm_cli_progress((double)done / todo, "%s", name);
}

/* The quantized model, or with --dequant the float model it stands for. */
static void save(const options *o, llm_model *m)
{
    llm_error err = {0};
    if (!o->dequant) {
        OR_DIE(llm_ckpt_save(o->out, m, NULL, NULL, &err));
        return;
    }
    llm_model out;
    OR_DIE(llm_qmodel_dequantize(m, &out, &err));
    int rc = llm_ckpt_save(o->out, &out, NULL, NULL, &err);
    llm_model_free(&out);
    OR_DIE(rc);
}

int main(int argc, char **argv)
{
    llm_cli_init("llm-quant");
    options o;
    parse(argc, argv, &o);
    if (o.threads) llm_cli_threads((int)o.threads);
    llm_error err = {0};
    llm_model m;
    int has_train;
    OR_DIE(llm_ckpt_load(o.model, &m, NULL, NULL, &has_train, &err));
    if (o.merge) { /* W += (alpha/R) B A in every adapted linear, then on as usual */
        llm_adapter ad;
        OR_DIE(llm_adapter_load(o.merge, &ad, &err));
        if (llm_adapter_attach(&m, &ad, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: not for %s: %s", o.merge, o.model, err.msg);
        llm_adapter_detach(&m);
        if (llm_adapter_merge(&m, &ad, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: %s", o.merge, err.msg);
        llm_adapter_free(&ad);
        if (!o.f.scheme) {
            OR_DIE(llm_ckpt_save(o.out, &m, NULL, NULL, &err));
            if (!o.quiet) fprintf(stderr, "llm-quant: merged %s into %s: %s\n", o.merge, o.model, o.out);
            llm_model_free(&m);
            return 0;
        }
    }

    llm_qmodel_opts qo = {.f = o.f, .gptq = o.gptq, .smooth = (float)o.smooth, .calib_method = o.calib_method,
                          .skip = o.skip, .n_skip = o.n_skip, .cls = o.cls,
                          .gptq_opts = {.damp = o.damp, .block = (int)o.block, .act_order = o.act_order}};
    llm_qmodel q;
    OR_DIE(llm_qmodel_init(&q, &m, o.model, &qo, &err));
    if (llm_qmodel_check_format(&q, &err) < 0) /* the format fits every width before any work */
        llm_die(LLM_EXIT_USAGE, "%s (give --group, or --skip it)", err.msg);
    llm_calib_table table = {0};
    if (o.calib) {
        OR_DIE(llm_calib_table_read(&table, o.calib, &err));
        OR_DIE(llm_qmodel_calibrate(&q, &table, &err));
    }
    if (o.acts) {
        llm_reader *r;
        OR_DIE(llm_reader_open(&r, o.acts, &err));
        OR_DIE(llm_qmodel_hessians(&q, r, o.acts, &err));
        llm_reader_close(r);
    }
    int progress = llm_cli_progress_wanted(0) && !o.quiet;
    OR_DIE(llm_qmodel_quantize(&q, progress ? progress_bar : NULL, NULL, &err));
    if (progress) llm_cli_progress_done();
    llm_calib_table_free(&table);

    save(&o, &m);
    if (o.report) write_report(&o, &q);
    if (!o.quiet) {
        long long before = file_size(o.model), after = file_size(o.out);
        fprintf(stderr, "llm-quant: %d linear layers to %s%s; %lld -> %lld bytes\n", q.todo,
                llm_qscheme_name(o.f.scheme), o.dequant ? " (written dequantized)" : "", before, after);
    }
    llm_qmodel_free(&q);
    llm_model_free(&m);
    return 0;
}
