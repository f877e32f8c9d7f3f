/* llm-calib — INT8 calibration tables from activation streams (llm-calib(1)). */
#include <errno.h>
#include <omp.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib.h"
#include "calib_table.h"
#include "cli.h"
#include "opt.h"
#include "outfile.h"
#include "pzstd.h"
#include "stream.h"

typedef struct options {
    unsigned methods; /* bit per llm_calib_method */
    double percentile;
    long bins, threads;
    int per_channel, skip, text, report, force;
    const char *curve, *out;
} options;

/* --method "max,entropy" or "all": its bits added to *(unsigned *)dest (the
 * order written is always the canonical one). */
static const char *parse_methods(void *dest, const char *arg, char why[64])
{
    unsigned mask = 0;
    char *copy = strdup(arg);
    if (!copy) llm_die(LLM_EXIT_DATA, "out of memory");
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int m = llm_calib_method_from_name(tok);
        if (strcmp(tok, "all") == 0) mask |= (1u << LLM_CALIB_METHODS) - 1;
        else if (m >= 0) mask |= 1u << m;
        else {
            snprintf(why, 64, "'%s' is not max, percentile, mse, entropy or all", tok);
            free(copy);
            return why;
        }
    }
    free(copy);
    if (!mask) {
        snprintf(why, 64, "no method in '%s'", arg);
        return why;
    }
    *(unsigned *)dest |= mask;
    return NULL;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){.percentile = 99.99, .bins = LLM_CALIB_BINS};
    llm_opt opts[] = {
        {"method", 0, LLM_OPT_CALL, &o->methods, .arg = "M[,M...]",
         .help = "max, percentile, mse, entropy or all", .def = "entropy", .parse = parse_methods},
        {"percentile", 0, LLM_OPT_DOUBLE, &o->percentile, .arg = "P", .help = "for the percentile method, above 0",
         .def = "99.99", .min = 0, .max = 100},
        {"bins", 0, LLM_OPT_LONG, &o->bins, .arg = "N", .help = "histogram bins, 256..1048576", .def = "2048",
         .min = LLM_CALIB_MIN_BINS, .max = LLM_CALIB_MAX_BINS},
        {"per-channel", 0, LLM_OPT_SET, &o->per_channel,
         .help = "also NAME.absmax: the max |x| of each channel (last dimension)"},
        {"skip-nonfinite", 0, LLM_OPT_SET, &o->skip,
         .help = "count NaN and Inf and go on (without it they are an error)"},
        {"text", 0, LLM_OPT_SET, &o->text, .help = "an aligned text table instead of the stream"},
        {"report", 0, LLM_OPT_SET, &o->report,
         .help = "how each method's amax moves after 32, 64, 128, ... records (stderr)"},
        {"curve", 0, LLM_OPT_STRING, &o->curve, .arg = "NAME",
         .help = "the MSE and KL curves of one tensor as TSV, instead of the table"},
        {"threads", 0, LLM_OPT_LONG, &o->threads, .arg = "N",
         .help = "threads; 2 or more decode zstd frames in parallel",
         .def = "OMP_NUM_THREADS, else one per core", .min = 1, .max = 1024},
        {"output", 'o', LLM_OPT_STRING, &o->out, .arg = "FILE", .help = "written whole or not at all",
         .def = "standard output"},
        {"force", 0, LLM_OPT_SET, &o->force, .help = "write the stream to a terminal"},
        {0},
    };
    static const char *const exclusive[] = {"text curve", NULL};
    llm_opt_spec spec = {
        .tool = "llm-calib",
        .usage = "usage: llm-calib [options] [FILE...]        (FILE '-' or none: stdin, a tensor stream)",
        .about = "Reads activation records (e.g. from llm-gen --dump-acts), aggregates them per tensor name in\n"
                 "one histogram of |x| each, and writes a calibration table: NAME.amax and NAME.scale (amax/127)\n"
                 "with one value per method, in the order of their methods= attribute.",
        .opts = opts, .exclusive = exclusive, .footer = "See llm-calib(1).", .operands = -1};
    int first = llm_opt_parse(&spec, argc, argv);
    if (o->percentile == 0) llm_usage_error("--percentile: must be above 0");
    if (!o->methods) o->methods = 1u << LLM_CALIB_ENTROPY;
    return first;
}

/* The methods asked, in canonical order; returns their count. */
static int method_list(unsigned mask, int *list)
{
    int n = 0;
    for (int m = 0; m < LLM_CALIB_METHODS; m++)
        if (mask & (1u << m)) list[n++] = m;
    return n;
}

static void amaxes(const llm_calib_entry *e, const options *o, const int *list, int n, double *amax)
{
    llm_error err = {0};
    for (int k = 0; k < n; k++)
        if (llm_calib_amax(&e->hist, (llm_calib_method)list[k], o->percentile, &amax[k], &err) < 0)
            llm_die(LLM_EXIT_DATA, "%s: %s", e->name, err.msg);
}

/* Every entry's thresholds ([entry][LLM_CALIB_METHODS], malloc'd). */
static double *all_amaxes(const llm_calib *c, const options *o, int threads)
{
    int list[LLM_CALIB_METHODS], n = method_list(o->methods, list);
    double *amax = malloc(((size_t)llm_calib_count(c) + 1) * LLM_CALIB_METHODS * sizeof *amax);
    if (!amax) llm_die(LLM_EXIT_DATA, "out of memory");
    llm_error err = {0};
    if (llm_calib_amax_all(c, list, n, threads, amax, &err) < 0)
        llm_die(LLM_EXIT_DATA, "%s", err.msg);
    return amax;
}

static void write_table(const llm_calib *c, const options *o, const double *all)
{
    int list[LLM_CALIB_METHODS], n = method_list(o->methods, list);
    const char *path = o->out ? o->out : "-";
    if (strcmp(path, "-") == 0) llm_cli_refuse_tty(1, o->force);
    llm_error err = {0};
    llm_writer *w;
    if (llm_writer_open(&w, path, NULL, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    if (llm_calib_table_write(w, c, list, n, all, &err) < 0) {
        llm_writer_abort(w);
        llm_die(LLM_EXIT_DATA, "%s", err.msg);
    }
    if (llm_writer_close(w, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
}

/* Text output (--text, --curve) through a file that appears whole or not at all. */
static FILE *text_open(const options *o, llm_outfile **f)
{
    llm_error err = {0};
    if (llm_outfile_open(f, o->out ? o->out : "-", &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    int fd = dup(llm_outfile_fd(*f));
    FILE *fp = fd < 0 ? NULL : fdopen(fd, "w");
    if (!fp) llm_die(LLM_EXIT_DATA, "%s: %s", llm_outfile_path(*f), strerror(errno));
    return fp;
}

/* A failed write dies through llm_die, which removes the temporary file. */
static void text_close(FILE *fp, llm_outfile *f)
{
    llm_error err = {0};
    llm_cli_close_output(fp, llm_outfile_path(f));
    if (llm_outfile_commit(f, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
}

static void write_text(const llm_calib *c, const options *o, const double *all)
{
    int list[LLM_CALIB_METHODS], n = method_list(o->methods, list);
    int wname = 4;
    for (int i = 0; i < llm_calib_count(c); i++) {
        int len = (int)strlen(llm_calib_entry_at(c, i)->name);
        if (len > wname) wname = len;
    }
    llm_outfile *f;
    FILE *fp = text_open(o, &f);
    fprintf(fp, "%-*s %8s %12s", wname, "name", "records", "values");
    for (int k = 0; k < n; k++) fprintf(fp, " %12s", llm_calib_method_name(list[k]));
    fputc('\n', fp);
    for (int i = 0; i < llm_calib_count(c); i++) {
        const llm_calib_entry *e = llm_calib_entry_at(c, i);
        const double *amax = all + (size_t)i * LLM_CALIB_METHODS;
        fprintf(fp, "%-*s %8" PRIu64 " %12" PRIu64, wname, e->name, e->records, e->hist.total);
        for (int k = 0; k < n; k++) fprintf(fp, " %12.6g", amax[k]);
        fputc('\n', fp);
        llm_cli_check_output(fp, llm_outfile_path(f), 0);
    }
    text_close(fp, f);
}

static void write_curve(const llm_calib *c, const options *o)
{
    const llm_calib_entry *e = NULL;
    for (int i = 0; i < llm_calib_count(c) && !e; i++)
        if (strcmp(llm_calib_entry_at(c, i)->name, o->curve) == 0) e = llm_calib_entry_at(c, i);
    if (!e) llm_die(LLM_EXIT_DATA, "--curve: no tensor named '%s' in the input", o->curve);
    int top = llm_calib_hist_top(&e->hist);
    if (top == 0) llm_die(LLM_EXIT_DATA, "--curve: %s: every value is zero: no thresholds to compare", o->curve);
    double *mse = malloc((size_t)top * sizeof *mse), *kl = malloc((size_t)top * sizeof *kl);
    if (!mse || !kl) llm_die(LLM_EXIT_DATA, "out of memory");
    llm_error err = {0};
    if (llm_calib_amax_curves(&e->hist, mse, kl, &err) < 0) llm_die(LLM_EXIT_DATA, "%s: %s", o->curve, err.msg);
    llm_outfile *f;
    FILE *fp = text_open(o, &f);
    fprintf(fp, "bin\tthreshold\tmse\tkl\n");
    double width = e->hist.absmax / e->hist.bins;
    for (int j = 1; j <= top; j++) {
        fprintf(fp, "%d\t%.9g\t%.9g\t%.9g\n", j, j * width, mse[j - 1], kl[j - 1]);
        llm_cli_check_output(fp, llm_outfile_path(f), 0);
    }
    text_close(fp, f);
    free(mse), free(kl);
}

/* --report: for each name, each method's amax at every snapshot and at the end,
 * with the relative change from the line before. */
static void print_report(const llm_calib *c, const options *o)
{
    int list[LLM_CALIB_METHODS], n = method_list(o->methods, list);
    for (int i = 0; i < llm_calib_count(c); i++) {
        const llm_calib_entry *e = llm_calib_entry_at(c, i);
        fprintf(stderr, "llm-calib: report: %s\n%10s", e->name, "records");
        for (int k = 0; k < n; k++) fprintf(stderr, " %24s", llm_calib_method_name(list[k]));
        fputc('\n', stderr);
        llm_calib_snapshot rows[LLM_CALIB_MAX_SNAPSHOTS + 1];
        int nr = e->n_snapshots;
        memcpy(rows, e->snapshots, (size_t)nr * sizeof *rows);
        if (nr == 0 || rows[nr - 1].records != e->records) { /* the end, when not a snapshot already */
            double amax[LLM_CALIB_METHODS];
            amaxes(e, o, list, n, amax);
            rows[nr].records = e->records;
            for (int k = 0; k < n; k++) rows[nr].amax[list[k]] = amax[k];
            nr++;
        }
        for (int r = 0; r < nr; r++) {
            fprintf(stderr, "%10" PRIu64, rows[r].records);
            for (int k = 0; k < n; k++) {
                double a = rows[r].amax[list[k]];
                char change[24] = "";
                if (r > 0) {
                    double prev = rows[r - 1].amax[list[k]];
                    if (prev > 0) snprintf(change, sizeof change, "(%+.2f%%)", 100 * (a - prev) / prev);
                    else snprintf(change, sizeof change, "(%s)", a > 0 ? "new" : "+0.00%");
                }
                fprintf(stderr, " %12.6g %11s", a, change);
            }
            fputc('\n', stderr);
        }
        if (e->records < 32) fprintf(stderr, "  (fewer than 32 records: too few to judge convergence)\n");
    }
}

int main(int argc, char **argv)
{
    llm_cli_init("llm-calib");
    options o;
    int first = parse(argc, argv, &o);
    llm_calib_opts co = {.bins = (int)o.bins, .per_channel = o.per_channel, .skip_nonfinite = o.skip,
                         .report = o.report ? o.methods : 0, .percentile = o.percentile};
    llm_error err = {0};
    llm_calib *c;
    int threads = o.threads ? (int)o.threads : omp_get_max_threads();
    if (llm_calib_create(&c, &co, &err) < 0) llm_die(LLM_EXIT_USAGE, "%s", err.msg);
    static char *stdin_only[] = {"-"};
    char **paths = first < argc ? argv + first : stdin_only;
    int n_paths = first < argc ? argc - first : 1;
    for (int i = 0; i < n_paths; i++) {
        llm_reader *r;
        llm_pzstd *pz = NULL; /* two or more threads: frames decoded in parallel */
        if (threads >= 2) { /* more decoders than 4 would outrun the one counting thread */
            if (llm_pzstd_open(&pz, paths[i], threads < 4 ? threads : 4, &err) < 0 || llm_pzstd_reader_open(&r, pz, &err) < 0)
                llm_die(LLM_EXIT_DATA, "%s", err.msg);
        } else if (llm_reader_open(&r, paths[i], &err) < 0) {
            llm_die(LLM_EXIT_DATA, "%s", err.msg);
        }
        int rc = llm_calib_add_stream(c, r, &err);
        llm_reader_close(r);
        llm_pzstd_close(pz);
        if (rc < 0) {
            size_t len = strlen(paths[i]); /* reader messages name the file already */
            if (strncmp(err.msg, paths[i], len) != 0 || err.msg[len] != ':') llm_error_prefix(&err, "%s", paths[i]);
            llm_die(LLM_EXIT_DATA, "%s", err.msg);
        }
    }
    if (llm_calib_count(c) == 0)
        llm_die(LLM_EXIT_DATA, "%s: no tensor records to calibrate", n_paths == 1 ? paths[0] : "input");
    for (int i = 0; i < llm_calib_count(c); i++) {
        const llm_calib_entry *e = llm_calib_entry_at(c, i);
        if (e->hist.total == 0)
            llm_warn("%s: no values (only empty records): amax and scale 0 for every method", e->name);
        else if (e->hist.absmax == 0)
            llm_warn("%s: every value is zero: amax and scale 0 for every method", e->name);
        if (e->nonfinite)
            llm_warn("%s: skipped %" PRIu64 " NaN or Inf value%s", e->name, e->nonfinite, e->nonfinite == 1 ? "" : "s");
    }
    if (o.report) print_report(c, &o);
    if (o.curve) write_curve(c, &o);
    else {
        double *amax = all_amaxes(c, &o, threads);
        if (o.text) write_text(c, &o, amax);
        else write_table(c, &o, amax);
        free(amax);
    }
    llm_calib_free(c);
    return 0;
}
