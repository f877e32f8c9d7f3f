/* llm-quant — quantize a checkpoint's linear layers: int8, int4 (RTN or
 * GPTQ), SmoothQuant, W8A8 (llm-quant(1)). */
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "ckpt.h"
#include "cli.h"
#include "gptq.h"
#include "outfile.h"
#include "quant.h"
#include "smooth.h"
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

/* ---- the model's linears and their inputs ---- */

/* The inputs a linear reads: per layer attn.wq.in (wq, wk, wv), attn.wo.in,
 * mlp.w1.in (w1, w3), mlp.w2.in; then cls.in. */
enum { INPUTS_PER_LAYER = 4 };
static const int input_of_linear[7] = {0, 0, 0, 1, 2, 3, 2};
static const char *const input_names[INPUTS_PER_LAYER] = {"attn.wq.in", "attn.wo.in", "mlp.w1.in", "mlp.w2.in"};

typedef struct linear {
    char name[64];
    float *w;       /* [rows, cols] in the model's arena */
    int rows, cols;
    int input;      /* index of its input */
    int quantize;   /* not skipped */
} linear;

typedef struct model_io {
    llm_model m;
    int n_lin, n_in;
    linear *lin;         /* [7L + 1] */
    char (*in_name)[48]; /* [4L + 1] */
    int *in_width;
    llm_hessian *h;      /* [4L + 1], allocated for the inputs GPTQ or the report needs */
} model_io;

static void describe(model_io *io, const options *o)
{
    const llm_config *c = &io->m.cfg;
    int L = c->n_layers, D = c->dim, E = D / c->n_heads, HE = c->n_heads * E, KE = c->n_kv_heads * E;
    io->n_lin = llm_qlinear_slots(L);
    io->n_in = INPUTS_PER_LAYER * L + 1;
    io->lin = calloc((size_t)io->n_lin, sizeof *io->lin);
    io->in_name = calloc((size_t)io->n_in, sizeof *io->in_name);
    io->in_width = calloc((size_t)io->n_in, sizeof *io->in_width);
    io->h = calloc((size_t)io->n_in, sizeof *io->h);
    if (!io->lin || !io->in_name || !io->in_width || !io->h) llm_die(LLM_EXIT_DATA, "out of memory");
    for (int l = 0; l < L; l++) {
        llm_layer_params *p = &io->m.p.layers[l];
        float *ws[7] = {p->wq, p->wk, p->wv, p->wo, p->w1, p->w2, p->w3};
        int rows[7] = {HE, KE, KE, D, c->hidden, D, c->hidden};
        int cols[7] = {D, D, D, HE, D, c->hidden, D};
        for (int i = 0; i < 7; i++)
            io->lin[7 * l + i] = (linear){.w = ws[i], .rows = rows[i], .cols = cols[i],
                                          .input = INPUTS_PER_LAYER * l + input_of_linear[i]};
        int widths[INPUTS_PER_LAYER] = {D, HE, D, c->hidden};
        for (int k = 0; k < INPUTS_PER_LAYER; k++) {
            snprintf(io->in_name[INPUTS_PER_LAYER * l + k], sizeof io->in_name[0], "layers.%d.%s", l, input_names[k]);
            io->in_width[INPUTS_PER_LAYER * l + k] = widths[k];
        }
    }
    io->lin[7 * L] = (linear){.w = io->m.p.cls, .rows = c->vocab, .cols = D, .input = INPUTS_PER_LAYER * L};
    snprintf(io->in_name[INPUTS_PER_LAYER * L], sizeof io->in_name[0], "cls.in");
    io->in_width[INPUTS_PER_LAYER * L] = D;
    for (int i = 0; i < io->n_lin; i++) {
        linear *li = &io->lin[i];
        llm_qlinear_slot_name(i, L, li->name, sizeof li->name);
        li->quantize = i < 7 * L || o->cls;
        for (int k = 0; li->quantize && k < o->n_skip; k++)
            if (fnmatch(o->skip[k], li->name, 0) == 0) li->quantize = 0;
    }
}

/* ---- the calibration table (llm-calib) ---- */

typedef struct calib_entry {
    char *name;
    float *data;
    int64_t n;
    char *methods;
} calib_entry;

typedef struct calib {
    calib_entry *e;
    int n;
} calib;

static void calib_read(const char *path, calib *t)
{
    llm_error err = {0};
    llm_reader *r;
    if (llm_reader_open(&r, path, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    const llm_record *rec;
    int rc;
    while ((rc = llm_reader_next(r, &rec, &err)) > 0) {
        size_t len = strlen(rec->name);
        int wanted = (len > 7 && !strcmp(rec->name + len - 7, ".absmax")) ||
                     (len > 6 && !strcmp(rec->name + len - 6, ".scale"));
        if (rec->kind != LLM_RECORD_TENSOR || !wanted) continue;
        if (rec->dtype != LLM_DTYPE_F32 || rec->shape.ndim != 1)
            llm_die(LLM_EXIT_DATA, "%s: %s is %s, not a 1-D f32 tensor", path, rec->name, llm_dtype_name(rec->dtype));
        calib_entry *grown = realloc(t->e, (size_t)(t->n + 1) * sizeof *grown);
        if (!grown) llm_die(LLM_EXIT_DATA, "out of memory");
        t->e = grown;
        calib_entry *e = &t->e[t->n++];
        const char *methods = llm_record_attr(rec, "methods");
        *e = (calib_entry){.name = strdup(rec->name), .n = rec->shape.dim[0],
                           .methods = methods ? strdup(methods) : NULL};
        llm_tensor tt;
        if (llm_reader_read_tensor(r, &tt, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: %s", path, err.msg);
        e->data = tt.data;
        for (int64_t i = 0; i < e->n; i++)
            if (!(e->data[i] >= 0 && isfinite(e->data[i])))
                llm_die(LLM_EXIT_DATA, "%s: %s holds %g", path, e->name, (double)e->data[i]);
    }
    if (rc < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    llm_reader_close(r);
}

static const calib_entry *calib_find(const calib *t, const char *input, const char *what)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", input, what);
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->e[i].name, name)) return &t->e[i];
    return NULL;
}

/* Position of method in a comma-separated list, or -1. */
static int method_index(const char *list, const char *method)
{
    int i = 0;
    size_t n = strlen(method);
    for (const char *p = list; p && *p; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, method, n)) return i;
        p = end ? end + 1 : p + len;
    }
    return -1;
}

/* The step of input `in` for w8a8: the table's scale by the chosen method,
 * or, for a smoothed input, max_j absmax_j / s_j / 127. */
static float act_step(const calib *t, const options *o, const char *in, const float *smooth_s, int width)
{
    if (smooth_s) {
        const calib_entry *a = calib_find(t, in, "absmax");
        float amax = 0;
        for (int j = 0; j < width; j++) amax = fmaxf(amax, a->data[j] / smooth_s[j]);
        return amax > 0 ? amax / 127.0f : 1.0f;
    }
    const calib_entry *e = calib_find(t, in, "scale");
    if (!e) llm_die(LLM_EXIT_DATA, "%s: no %s.scale for w8a8", o->calib, in);
    int k = o->calib_method ? method_index(e->methods, o->calib_method) : method_index(e->methods, "entropy");
    if (k < 0 && o->calib_method)
        llm_die(LLM_EXIT_DATA, "%s: %s.scale has no method '%s' (methods=%s)", o->calib, in, o->calib_method,
                e->methods ? e->methods : "");
    if (k < 0) k = 0;
    if (k >= e->n) llm_die(LLM_EXIT_DATA, "%s: %s.scale has %" PRId64 " values for methods=%s", o->calib, in, e->n,
                           e->methods ? e->methods : "");
    float s = e->data[k];
    return s > 0 ? s : 1.0f;
}

/* ---- activations (llm-gen --dump-acts) into Hessians ---- */

static void read_acts(model_io *io, const options *o)
{
    llm_error err = {0};
    llm_reader *r;
    if (llm_reader_open(&r, o->acts, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    const llm_record *rec;
    int rc;
    int64_t records = 0;
    while ((rc = llm_reader_next(r, &rec, &err)) > 0) {
        if (rec->kind != LLM_RECORD_TENSOR) continue;
        int k = 0;
        while (k < io->n_in && strcmp(io->in_name[k], rec->name)) k++;
        if (k == io->n_in)
            llm_die(LLM_EXIT_DATA, "%s: record '%s' is not the input of a linear layer of %s", o->acts,
                    rec->name, o->model);
        if (rec->dtype != LLM_DTYPE_F32 || rec->shape.ndim != 2 || rec->shape.dim[1] != io->in_width[k]) {
            char s[64];
            llm_die(LLM_EXIT_DATA, "%s: %s is %s%s, but the model's input is f32 [tokens, %d]", o->acts,
                    rec->name, llm_dtype_name(rec->dtype), llm_shape_format(&rec->shape, s, sizeof s),
                    io->in_width[k]);
        }
        if (!io->h[k].sum) continue; /* an input no quantized linear reads */
        llm_tensor t;
        if (llm_reader_read_tensor(r, &t, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: %s", o->acts, err.msg);
        if (llm_hessian_add(&io->h[k], t.data, rec->shape.dim[0], &err) < 0)
            llm_die(LLM_EXIT_DATA, "%s: %s: %s", o->acts, rec->name, err.msg);
        llm_tensor_free(&t);
        records++;
    }
    if (rc < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    llm_reader_close(r);
    for (int k = 0; k < io->n_in; k++)
        if (io->h[k].sum && io->h[k].count == 0)
            llm_die(LLM_EXIT_DATA, "%s: no activations for %s", o->acts, io->in_name[k]);
}

/* ---- output ---- */

/* The float model a quantized one stands for; a quantized tied classifier
 * needs a classifier of its own, so the copy is untied. */
static void dequantize_into(model_io *io, llm_model *out)
{
    llm_error err = {0};
    llm_model *m = &io->m;
    int L = m->cfg.n_layers, cls = llm_qlinear_slots(L) - 1;
    int untie = m->cfg.tie && m->qlin[cls];
    llm_config cfg = m->cfg;
    cfg.tie = untie ? 0 : cfg.tie;
    if (llm_model_alloc(out, &cfg, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    llm_tok_free(&out->tok);
    out->tok = m->tok; /* lent: taken back before out is freed */
    for (int i = 0; i < out->n_tensors; i++) {
        const llm_param_tensor *t = &out->tensors[i];
        const llm_param_tensor *src = llm_model_tensor(m, !strcmp(t->name, "cls") && untie ? "tok_emb" : t->name);
        memcpy(out->arena + t->offset, m->arena + src->offset, (size_t)t->count * sizeof(float));
    }
    for (int i = 0; i < io->n_lin; i++)
        if (m->qlin[i]) {
            const llm_param_tensor *t = llm_model_tensor(out, io->lin[i].name);
            llm_dequantize(m->qlin[i], out->arena + t->offset);
        }
}

static long long file_size(const char *path)
{
    struct stat st;
    return strcmp(path, "-") && stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

typedef struct result {
    double w_sqnr, out_sqnr, rtn_out_sqnr; /* NAN when not measured */
} result;

static void write_report(const options *o, const model_io *io, const result *res)
{
    llm_error err = {0};
    llm_outfile *f;
    if (llm_outfile_open(&f, o->report, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    FILE *fp = fdopen(dup(llm_outfile_fd(f)), "w");
    if (!fp) llm_die(LLM_EXIT_DATA, "%s: cannot write", o->report);
    const char *scheme = llm_qscheme_name(o->f.scheme);
    fprintf(fp, "# llm-quant %s -> %s: scheme %s", o->model, o->out, scheme);
    if (o->f.scheme == LLM_Q_INT4) fprintf(fp, " group %d %s", o->f.group, o->f.sym ? "sym" : "asym");
    fprintf(fp, ", method %s%s%s\n", o->gptq ? "gptq" : "rtn", o->act_order ? " act-order" : "",
            o->smooth ? ", smoothed" : "");
    fprintf(fp, "# weight_sqnr_db: 10 log10(|W|^2 / |W - Q|^2); out_sqnr_db: the same of W x over\n"
                "# the --acts activations; rtn_out_sqnr_db: RTN's, beside GPTQ's\n");
    fprintf(fp, "%-24s %6s %6s %8s %14s %12s %15s\n", "tensor", "rows", "cols", "scheme", "weight_sqnr_db",
            "out_sqnr_db", "rtn_out_sqnr_db");
    for (int i = 0; i < io->n_lin; i++) {
        const linear *li = &io->lin[i];
        if (!li->quantize) {
            fprintf(fp, "%-24s %6d %6d %8s %14s %12s %15s\n", li->name, li->rows, li->cols, "float", "-", "-", "-");
            continue;
        }
        char v[3][32];
        const double x[3] = {res[i].w_sqnr, res[i].out_sqnr, res[i].rtn_out_sqnr};
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
    if (fclose(fp) != 0) {
        llm_outfile_abort(f);
        llm_die(LLM_EXIT_DATA, "%s: write failed", o->report);
    }
    if (llm_outfile_commit(f, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
}

int main(int argc, char **argv)
{
    llm_cli_init("llm-quant");
    llm_cli_passive_openmp(argv, "4");
    options o;
    parse(argc, argv, &o);
    if (o.threads) llm_cli_threads((int)o.threads);
    llm_error err = {0};
    model_io io = {0};
    int has_train;
    if (llm_ckpt_load(o.model, &io.m, NULL, NULL, &has_train, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    if (o.merge) { /* W += (alpha/R) B A in every adapted linear, then on as usual */
        llm_adapter ad;
        if (llm_adapter_load(o.merge, &ad, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
        if (llm_adapter_attach(&io.m, &ad, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: not for %s: %s", o.merge, o.model, err.msg);
        io.m.adapter = NULL;
        if (llm_adapter_merge(&io.m, &ad, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: %s", o.merge, err.msg);
        llm_adapter_free(&ad);
        if (!o.f.scheme) {
            if (llm_ckpt_save(o.out, &io.m, NULL, NULL, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
            if (!o.quiet) fprintf(stderr, "llm-quant: merged %s into %s: %s\n", o.merge, o.model, o.out);
            llm_model_free(&io.m);
            return 0;
        }
    }
    describe(&io, &o);
    const llm_config *c = &io.m.cfg;
    int L = c->n_layers, D = c->dim;
    for (int i = 0; i < io.n_lin; i++) /* the format fits every width before any work */
        if (io.lin[i].quantize && llm_qformat_check(&o.f, io.lin[i].cols, &err) < 0)
            llm_die(LLM_EXIT_USAGE, "%s: %s (give --group, or --skip it)", io.lin[i].name, err.msg);

    calib table = {0};
    float *smooth_s = NULL; /* [L, 2, D] */
    if (o.calib) {
        calib_read(o.calib, &table);
        for (int k = 0; k < io.n_in; k++) {
            const char *in = io.in_name[k];
            int needs_absmax = o.smooth && k < INPUTS_PER_LAYER * L && (k % INPUTS_PER_LAYER == 0 || k % INPUTS_PER_LAYER == 2);
            int reads = 0; /* does a quantized w8a8 linear read it? */
            for (int i = 0; i < io.n_lin; i++) reads |= io.lin[i].quantize && io.lin[i].input == k;
            const calib_entry *a = calib_find(&table, in, "absmax");
            if (needs_absmax && !a)
                llm_die(LLM_EXIT_DATA, "%s: no %s.absmax for --smooth (llm-calib --per-channel)", o.calib, in);
            if (needs_absmax && a->n != io.in_width[k])
                llm_die(LLM_EXIT_DATA, "%s: %s.absmax has %" PRId64 " channels, the model's input %d", o.calib, in,
                        a->n, io.in_width[k]);
            if (o.f.scheme == LLM_Q_W8A8 && reads && !needs_absmax && !calib_find(&table, in, "scale"))
                llm_die(LLM_EXIT_DATA, "%s: no %s.scale for w8a8: the table misses a layer", o.calib, in);
        }
    }
    if (o.smooth) {
        const float **absmax = malloc((size_t)2 * L * sizeof *absmax);
        smooth_s = malloc((size_t)2 * L * D * sizeof *smooth_s);
        if (!absmax || !smooth_s) llm_die(LLM_EXIT_DATA, "out of memory");
        for (int l = 0; l < L; l++)
            for (int k = 0; k < 2; k++)
                absmax[2 * l + k] = calib_find(&table, io.in_name[INPUTS_PER_LAYER * l + 2 * k], "absmax")->data;
        if (llm_smooth_model(&io.m, absmax, (float)o.smooth, smooth_s, &err) < 0)
            llm_die(LLM_EXIT_DATA, "%s: %s", o.calib, err.msg);
        free(absmax);
    }
    /* the smoothing scale of input k, or NULL */
#define SMOOTH_OF(k) (smooth_s && (k) < INPUTS_PER_LAYER * L && ((k) % INPUTS_PER_LAYER) % 2 == 0 \
                          ? smooth_s + ((size_t)((k) / INPUTS_PER_LAYER) * 2 + ((k) % INPUTS_PER_LAYER) / 2) * D \
                          : NULL)
    if (o.acts) {
        for (int i = 0; i < io.n_lin; i++) {
            int k = io.lin[i].input;
            if (io.lin[i].quantize && !io.h[k].sum && llm_hessian_init(&io.h[k], io.in_width[k], &err) < 0)
                llm_die(LLM_EXIT_DATA, "%s", err.msg);
        }
        read_acts(&io, &o);
        for (int k = 0; k < io.n_in; k++) { /* the smoothed model's inputs are x / s */
            const float *s = SMOOTH_OF(k);
            if (!s || !io.h[k].sum) continue;
            float *inv = malloc((size_t)D * sizeof *inv);
            if (!inv) llm_die(LLM_EXIT_DATA, "out of memory");
            for (int j = 0; j < D; j++) inv[j] = 1.0f / s[j];
            llm_hessian_scale(&io.h[k], inv);
            free(inv);
        }
    }

    io.m.qlin = calloc((size_t)io.n_lin, sizeof *io.m.qlin);
    result *res = calloc((size_t)io.n_lin, sizeof *res);
    if (!io.m.qlin || !res) llm_die(LLM_EXIT_DATA, "out of memory");
    int progress = llm_cli_progress_wanted(0) && !o.quiet, done = 0, todo = 0;
    for (int i = 0; i < io.n_lin; i++) todo += io.lin[i].quantize;
    for (int i = 0; i < io.n_lin; i++) {
        linear *li = &io.lin[i];
        res[i] = (result){NAN, NAN, NAN};
        if (!li->quantize) continue;
        if (progress) llm_cli_progress((double)done / todo, "%s", li->name);
        llm_qlinear *q = calloc(1, sizeof *q), rtn;
        if (!q) llm_die(LLM_EXIT_DATA, "out of memory");
        llm_hessian *h = io.h[li->input].sum ? &io.h[li->input] : NULL;
        int rc = llm_quantize_rtn(li->w, li->rows, li->cols, &o.f, &rtn, &err);
        if (rc == 0 && o.gptq) {
            llm_gptq_opts go = {.damp = o.damp, .block = (int)o.block, .act_order = o.act_order};
            rc = llm_gptq(li->w, li->rows, li->cols, h, &o.f, &go, q, &err);
        } else if (rc == 0) {
            *q = rtn;
            rtn = (llm_qlinear){0};
        }
        if (rc < 0) llm_die(LLM_EXIT_DATA, "%s: %s", li->name, err.msg);
        if (o.f.scheme == LLM_Q_W8A8)
            q->act_scale = act_step(&table, &o, io.in_name[li->input], SMOOTH_OF(li->input), io.in_width[li->input]);
        size_t n = (size_t)li->rows * li->cols;
        float *wh = malloc(n * sizeof *wh);
        if (!wh) llm_die(LLM_EXIT_DATA, "out of memory");
        llm_dequantize(q, wh);
        res[i].w_sqnr = llm_sqnr_db(li->w, wh, n);
        if (h) {
            double energy = llm_hessian_energy(h, li->w, li->rows);
            for (size_t j = 0; j < n; j++) wh[j] = li->w[j] - wh[j];
            res[i].out_sqnr = 10 * log10(energy / llm_hessian_energy(h, wh, li->rows));
            if (o.gptq) {
                llm_dequantize(&rtn, wh);
                for (size_t j = 0; j < n; j++) wh[j] = li->w[j] - wh[j];
                res[i].rtn_out_sqnr = 10 * log10(energy / llm_hessian_energy(h, wh, li->rows));
            }
        }
        free(wh);
        llm_qlinear_free(&rtn);
        io.m.qlin[i] = q;
        done++;
    }
    if (progress) llm_cli_progress_done();
    for (int k = 0; k < io.n_in; k++) llm_hessian_free(&io.h[k]);

    if (o.dequant) {
        llm_model out;
        dequantize_into(&io, &out);
        int rc = llm_ckpt_save(o.out, &out, NULL, NULL, &err);
        out.tok = (llm_tok){0};
        llm_model_free(&out);
        if (rc < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    } else if (llm_ckpt_save(o.out, &io.m, NULL, NULL, &err) < 0) {
        llm_die(LLM_EXIT_DATA, "%s", err.msg);
    }
    if (o.report) write_report(&o, &io, res);
    if (!o.quiet) {
        long long before = file_size(o.model), after = file_size(o.out);
        fprintf(stderr, "llm-quant: %d linear layers to %s%s; %lld -> %lld bytes\n", todo,
                llm_qscheme_name(o.f.scheme), o.dequant ? " (written dequantized)" : "", before, after);
    }
    for (int i = 0; i < table.n; i++) free(table.e[i].name), free(table.e[i].data), free(table.e[i].methods);
    free(table.e);
    free(smooth_s), free(res), free(io.lin), free(io.in_name), free(io.in_width), free(io.h);
    llm_model_free(&io.m);
    return 0;
}
