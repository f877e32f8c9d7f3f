/* llm-quant — quantize a checkpoint's linear layers: int8, int4 (RTN or
 * GPTQ), SmoothQuant, W8A8 (llm-quant(1)).  Options, files, progress and the
 * report; the work is lib/qmodel's. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib_table.h"
#include "adapter.h"
#include "ckpt.h"
#include "cli.h"
#include "opt.h"
#include "outfile.h"
#include "qmodel.h"
#include "stream.h"

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
    *o = (options){.damp = 0.01, .block = 128, .f = {.sym = 1}};
    int scheme = LLM_Q_NONE;
    long group = 128;
    llm_opt_list skip = {.items = o->skip};
    llm_opt opts[] = {
        {"model", 'm', LLM_OPT_STRING, &o->model, .arg = "CKPT", .help = "the float checkpoint (required)",
         .section = "Files:"},
        {"output", 'o', LLM_OPT_STRING, &o->out, .arg = "OUT", .help = "the quantized checkpoint (required)"},
        {"merge-adapter", 0, LLM_OPT_STRING, &o->merge, .arg = "A.llmt",
         .help = "fold a LoRA adapter trained on CKPT (llm-train --lora) into its\n"
                 "weights first; without --scheme, write the merged float model"},
        {"report", 0, LLM_OPT_STRING, &o->report, .arg = "FILE",
         .help = "per linear: weight SQNR, output SQNR on the activations (RTN beside\n"
                 "GPTQ), and the file sizes ('-': stdout)"},
        {"scheme", 0, LLM_OPT_CHOICE, &scheme, .arg = "int8|int4|w8a8",
         .help = "int8: int8 weights, a scale per output channel (W8A16)\n"
                 "int4: int4 weights, a scale per --group input columns (W4A16)\n"
                 "w8a8: int8 weights and int8 inputs with a static step per tensor\n"
                 "(needs --calib: the table's scale of each linear's input)",
         .choices = "int8|int4|w8a8", .lookup = llm_qscheme_parse, .section = "Quantization:"},
        {"group", 0, LLM_OPT_LONG, &group, .arg = "G", .help = "int4: input columns per scale, a multiple of 32",
         .def = "128", .min = 1, .max = 1 << 22},
        {"sym", 0, LLM_OPT_SET, &o->f.sym, .help = "int4: a grid symmetric about 0 (the default)"},
        {"asym", 0, LLM_OPT_CLEAR, &o->f.sym, .help = "int4: a zero point per group"},
        {"method", 0, LLM_OPT_CHOICE, &o->gptq, .arg = "rtn|gptq",
         .help = "round to nearest, or GPTQ, which needs --acts", .def = "rtn", .choices = "rtn|gptq"},
        {"skip", 0, LLM_OPT_LIST, &skip, .arg = "GLOB",
         .help = "leave matching linears in float (repeatable), e.g. 'layers.0.*'", .max = MAX_SKIP},
        {"cls", 0, LLM_OPT_SET, &o->cls,
         .help = "quantize the classifier too (kept float by default; when tied to the\n"
                 "embedding it becomes a tensor of its own)"},
        {"dequant", 0, LLM_OPT_SET, &o->dequant, .help = "write the float model the quantized one stands for"},
        {"acts", 0, LLM_OPT_STRING, &o->acts, .arg = "FILE|-",
         .help = "activations from llm-gen --dump-acts: GPTQ's Hessians and the report's\noutput errors",
         .section = "GPTQ:"},
        {"damp", 0, LLM_OPT_DOUBLE, &o->damp, .arg = "X", .help = "added to H's diagonal, times its mean",
         .def = "0.01", .min = 0, .max = 10},
        {"block", 0, LLM_OPT_LONG, &o->block, .arg = "N", .help = "columns updated together", .def = "128",
         .min = 1, .max = 1 << 16},
        {"act-order", 0, LLM_OPT_SET, &o->act_order, .help = "columns by decreasing H_jj"},
        {"smooth", 0, LLM_OPT_DOUBLE, &o->smooth, .arg = "ALPHA",
         .help = "SmoothQuant with --calib's per-channel absmax (llm-calib --per-channel)", .min = 0.01,
         .max = 0.99, .section = "Calibration:"},
        {"calib", 0, LLM_OPT_STRING, &o->calib, .arg = "FILE", .help = "a calibration table (llm-calib)"},
        {"calib-method", 0, LLM_OPT_STRING, &o->calib_method, .arg = "NAME",
         .help = "which of the table's methods w8a8 uses", .def = "entropy, else the table's first"},
        {"threads", 0, LLM_OPT_LONG, &o->threads, .arg = "N", .help = "threads for the solves and products",
         .def = "OMP_NUM_THREADS, else one per core", .min = 1, .max = 1024, .section = "Other:"},
        {"quiet", 'q', LLM_OPT_SET, &o->quiet, .help = "no summary line on stderr"},
        {0},
    };
    llm_opt_spec spec = {.tool = "llm-quant",
                         .usage = "usage: llm-quant -m CKPT -o OUT --scheme int8|int4|w8a8 [options]",
                         .opts = opts, .footer = "See llm-quant(1).", .operands = 0};
    llm_opt_parse(&spec, argc, argv);
    o->f.scheme = (llm_qscheme)scheme;
    o->f.group = (int)group;
    o->n_skip = skip.n;
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
