/* llm-attnviz — attention maps as PGM/PPM heatmaps, and the diagnostics
 * behind them: causal leaks, per-head statistics, head similarity
 * (llm-attnviz(1)). */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnmap.h"
#include "attnstat.h"
#include "cli.h"
#include "font.h"
#include "heatmap.h"
#include "labels.h"
#include "opt.h"
#include "outfile.h"
#include "stream.h"

#define DEFAULT_MAX_PIXELS (INT64_C(1) << 28) /* 268M pixels: a 32-head x 2048 grid fits */
#define SIM_SCALE 16                          /* default pixels per head pair */

/* One image per: selected head, layer, or the whole input. */
typedef enum { PER_HEAD, PER_LAYER, ALL_LAYERS } split;

typedef struct options {
    long layer, head;   /* -1: all */
    int grid, labels, force, causal, stats, sim;
    long scale;         /* 0: not given */
    double tol, sim_threshold;
    llm_heatmap_tone tone;
    int color;
    const char *pattern;
    const char *input;
    int conversions;    /* %d in the pattern */
    split split;
} options;

/* Counts the %d in a pattern; any other conversion (but %%) is a usage error. */
static int pattern_conversions(const char *pattern)
{
    int n = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p != '%') continue;
        if (p[1] == '%') p++;
        else if (p[1] == 'd') n++, p++;
        else llm_usage_error("-o %s: only %%d (layer, then head) and %%%% may follow a %%", pattern);
    }
    return n;
}

/* The pattern with its %d replaced by layer, then head, and %% by %. */
static char *pattern_name(const char *pattern, long layer, long head)
{
    size_t cap = strlen(pattern) + 48;
    char *out = malloc(cap), *o = out;
    if (!out) llm_die(LLM_EXIT_DATA, "out of memory");
    int k = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '%' && p[1] == '%') *o++ = '%', p++;
        else if (*p == '%' && p[1] == 'd') o += sprintf(o, "%ld", k++ ? head : layer), p++;
        else *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* --maxval: 255 or 65535 into *(int *)dest. */
static const char *parse_maxval(void *dest, const char *arg, char why[64])
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || (v != 255 && v != 65535)) {
        snprintf(why, 64, "%s is neither 255 nor 65535", arg);
        return why;
    }
    *(int *)dest = (int)v;
    return NULL;
}

static void parse(int argc, char **argv, options *o)
{
    *o = (options){.layer = -1, .head = -1, .tol = 1e-6, .sim_threshold = 0.9,
                   .tone = {.maxval = 255, .gamma = 1}};
    llm_opt opts[] = {
        {"layer", 0, LLM_OPT_LONG, &o->layer, .arg = "L", .help = "only layer L", .def = "every layer",
         .min = 0, .max = 999999999, .section = "Heatmaps:"},
        {"head", 0, LLM_OPT_LONG, &o->head, .arg = "H", .help = "only head H", .def = "every head", .min = 0,
         .max = 1L << 30},
        {"grid", 0, LLM_OPT_SET, &o->grid,
         .help = "a layer's heads (without --layer and %d: every layer x head) as a\n"
                 "mosaic with separator lines"},
        {"scale", 0, LLM_OPT_LONG, &o->scale, .arg = "N", .help = "N x N pixels per value",
         .def = "1; 8 with --labels; 16 with --head-sim", .min = 1, .max = 4096},
        {"gamma", 0, LLM_OPT_DOUBLE, &o->tone.gamma, .arg = "G", .help = "level ~ p^G; G < 1 brings out small weights",
         .def = "1", .min = 0.01, .max = 100},
        {"log", 0, LLM_OPT_SET, &o->tone.log, .help = "logarithmic levels over 4 decades (1e-4 .. 1)"},
        {"invert", 0, LLM_OPT_SET, &o->tone.invert, .help = "white background (p = 0 is white)"},
        {"maxval", 0, LLM_OPT_CALL, &o->tone.maxval, .arg = "255|65535",
         .help = "8-bit samples, or 16-bit ones (big-endian)", .def = "255", .parse = parse_maxval},
        {"ppm", 0, LLM_OPT_SET, &o->color, .help = "color (P6) through a perceptual colormap"},
        {"labels", 0, LLM_OPT_SET, &o->labels, .help = "the tokens along both axes (the record's tokens attribute)"},
        {"output", 'o', LLM_OPT_STRING, &o->pattern, .arg = "PATTERN",
         .help = "one file per layer or head: the first %d is the layer, the second the head",
         .def = "standard output"},
        {"force", 0, LLM_OPT_SET, &o->force, .help = "draw images beyond 268M pixels; write binary to a terminal"},
        {"check-causal", 0, LLM_OPT_SET, &o->causal,
         .help = "probability above the diagonal per layer; exit 1 beyond --tol",
         .section = "Diagnostics (text on stdout, no heatmaps):"},
        {"tol", 0, LLM_OPT_DOUBLE, &o->tol, .arg = "X", .help = "the leak --check-causal allows", .def = "1e-6",
         .min = 0, .max = 1},
        {"stats", 0, LLM_OPT_SET, &o->stats,
         .help = "per head: entropy (nats), mean distance, diagonal and first-token share"},
        {"head-sim", 0, LLM_OPT_SET, &o->sim,
         .help = "cosine similarity of the heads' maps; pairs at or above\n"
                 "--sim-threshold are flagged; -o PATTERN also draws it"},
        {"sim-threshold", 0, LLM_OPT_DOUBLE, &o->sim_threshold, .arg = "X",
         .help = "the similarity --head-sim flags", .def = "0.9", .min = -1, .max = 1},
        {0},
    };
    static const char *const exclusive[] = {"head grid", "gamma log", NULL};
    llm_opt_spec spec = {
        .tool = "llm-attnviz",
        .usage = "usage: llm-attnviz [--layer L] [--head H | --grid] [--scale N] [--gamma G | --log]\n"
                 "                   [--invert] [--maxval 255|65535] [--ppm] [--labels] [-o PATTERN] [FILE|-]\n"
                 "       llm-attnviz --check-causal [--tol X] | --stats | --head-sim [--sim-threshold X]\n"
                 "                   [--layer L] [-o PATTERN] [FILE|-]",
        .about = "Reads layers.L.attn.probs records [heads, T, T] (llm-gen --dump-attn) and draws them\n"
                 "as binary PGM (P5): to stdout, or one file per layer/head with -o PATTERN, where the\n"
                 "first %d is the layer and the second the head (attn-L%d-H%d.pgm, attn-L%d.pgm).",
        .opts = opts, .exclusive = exclusive, .footer = "See llm-attnviz(1).", .operands = 1};
    int first = llm_opt_parse(&spec, argc, argv);
    o->input = first < argc ? argv[first] : "-";
    o->conversions = o->pattern ? pattern_conversions(o->pattern) : 0;
    if (o->causal || o->stats || o->sim) {
        if (o->grid || o->labels || o->head >= 0)
            llm_usage_error("--check-causal, --stats and --head-sim take no --grid, --labels or --head");
        if (o->pattern && !o->sim) llm_usage_error("-o draws only with --head-sim");
        if (o->pattern && o->conversions != 1 && !(o->conversions == 0 && o->layer >= 0))
            llm_usage_error("--head-sim -o PATTERN: one %%d for the layer (or give --layer)");
        if (!o->scale) o->scale = SIM_SCALE;
        return;
    }
    if (o->conversions > 2) llm_usage_error("-o %s: two %%d at most (layer, head)", o->pattern);
    if (o->labels && o->scale && o->scale < LLM_FONT_LINE)
        llm_usage_error("--labels needs --scale %d or more (the font's line)", LLM_FONT_LINE);
    if (!o->scale) o->scale = o->labels ? LLM_FONT_LINE : 1;
    if (o->conversions == 2) {
        if (o->grid) llm_usage_error("--grid draws a layer's heads together: give a PATTERN with one %%d");
        o->split = PER_HEAD;
    } else if (o->conversions == 1) {
        if (!o->grid && o->head < 0)
            llm_usage_error("one image per layer holds several heads: add --grid or --head, "
                            "or give a PATTERN with two %%d");
        o->split = o->head >= 0 ? PER_HEAD : PER_LAYER;
    } else {
        if (o->layer < 0 && !o->grid)
            llm_usage_error("one image for every layer: add --grid, or choose --layer, or give -o PATTERN with %%d");
        if (o->head < 0 && !o->grid)
            llm_usage_error("one image holds several heads: add --grid, or choose --head, or give -o PATTERN with %%d");
        o->split = o->layer >= 0 ? (o->head >= 0 ? PER_HEAD : PER_LAYER) : ALL_LAYERS;
    }
    if (!o->pattern) llm_cli_refuse_tty(1, o->force);
}

/* The output being written, aborted when the tool dies. */
static llm_outfile *current_out;
static llm_heatmap *current_map;

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    llm_heatmap_free(current_map);
    llm_outfile_abort(current_out);
    llm_die(LLM_EXIT_DATA, "%s", msg);
}

static void open_image(const options *o, const llm_heatmap_opts *hopts, int64_t T, int cols, int64_t rows,
                       long layer, long head)
{
    llm_error err = {0};
    char *path = o->pattern ? pattern_name(o->pattern, layer, head) : strdup("-");
    if (!path) fail("out of memory");
    if (llm_outfile_open(&current_out, path, &err) < 0) fail("%s", err.msg);
    const char *label = strcmp(path, "-") ? path : "stdout";
    if (llm_heatmap_open(&current_map, hopts, T, cols, rows, llm_outfile_fd(current_out), label, &err) < 0)
        fail("%s", err.msg);
    free(path);
}

static void close_image(void)
{
    llm_error err = {0};
    int rc = llm_heatmap_close(current_map, &err);
    current_map = NULL;
    if (rc < 0) fail("%s", err.msg);
    rc = llm_outfile_commit(current_out, &err);
    current_out = NULL;
    if (rc < 0) fail("%s", err.msg);
}

/* Layers already drawn, so that a repeated one is refused rather than overwritten. */
typedef struct seen {
    long *layers;
    size_t n, cap;
} seen;

static int seen_before(seen *s, long layer)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->layers[i] == layer) return 1;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        if (!(s->layers = realloc(s->layers, s->cap * sizeof *s->layers))) fail("out of memory");
    }
    s->layers[s->n++] = layer;
    return 0;
}

/* What the run carries from record to record. */
typedef struct run {
    const options *o;
    llm_heatmap_opts hopts;
    llm_labels labels;
    int64_t T, heads;       /* of the first record drawn (ALL_LAYERS: every record) */
    seen seen;
    int causal_failed;
    char causal_msg[1600];
} run;

static void warn_rows(const llm_attnmap *m)
{
    if (m->bad_rows)
        llm_warn("%s: %" PRId64 " row%s do not sum to 1 (head %" PRId64 " row %" PRId64 " sums to %.6g)",
                 m->label, m->bad_rows, m->bad_rows == 1 ? "" : "s", m->worst_head, m->worst_row,
                 m->worst_sum);
}

/* Draws one record as the options split it. */
static void draw_record(run *ru, llm_attnmap *m, const llm_record *rec, long layer)
{
    const options *o = ru->o;
    llm_error err = {0};
    int64_t H = m->heads, T = m->T;
    if (o->head >= H) fail("%s: no head %ld: the record has %" PRId64, m->label, o->head, H);
    if (H > INT_MAX) /* the cells of a mosaic are counted in ints */
        fail("%s: %" PRId64 " heads: llm-attnviz draws at most %d", m->label, H, INT_MAX);
    int n_sel = o->head >= 0 ? 1 : (int)H;
    if (o->split == ALL_LAYERS && ru->T && (T != ru->T || H != ru->heads))
        fail("%s: [%" PRId64 ",%" PRId64 ",%" PRId64 "] differs from the first layer's [%" PRId64 ",%" PRId64
             ",%" PRId64 "]: one mosaic needs one shape", m->label, H, T, T, ru->heads, ru->T, ru->T);
    if (o->split != ALL_LAYERS && seen_before(&ru->seen, layer))
        fail("%s: layer %ld appears twice (llm-tensor cat --name picks one)", m->label, layer);
    if (o->labels && (!ru->T || o->split != ALL_LAYERS)) {
        const char *tokens = llm_record_attr(rec, "tokens");
        if (!tokens) fail("%s: no tokens attribute for --labels (llm-gen --dump-attn writes it)", m->label);
        llm_labels_free(&ru->labels);
        if (llm_labels_parse(&ru->labels, tokens, T, &err) < 0) fail("%s: %s", m->label, err.msg);
        ru->hopts.labels = &ru->labels;
    }
    int cols = 1, rows = 1;
    if (o->split == PER_LAYER) llm_heatmap_grid(n_sel, &cols, &rows);
    if (o->split == ALL_LAYERS && !ru->T) open_image(o, &ru->hopts, T, n_sel, 0, layer, 0);
    if (o->split == PER_LAYER) open_image(o, &ru->hopts, T, cols, rows, layer, 0);
    ru->T = T, ru->heads = H;
    const double *p;
    int64_t h, i;
    int rc;
    while ((rc = llm_attnmap_next(m, &p, &h, &i, &err)) > 0) {
        if (o->head >= 0 && h != o->head) continue;
        int k = o->head >= 0 ? 0 : (int)h; /* the cell among the selected heads */
        if (o->split == PER_HEAD && i == 0) open_image(o, &ru->hopts, T, 1, 1, layer, h);
        llm_heatmap_put_row(current_map, k % cols, i, p);
        if (i < T - 1) continue;
        int band_done = o->split == PER_LAYER ? (k % cols == cols - 1 || k == n_sel - 1) : k == n_sel - 1;
        if (o->split == PER_HEAD) band_done = 1;
        if (band_done && llm_heatmap_end_band(current_map, &err) < 0) fail("%s", err.msg);
        if (o->split == PER_HEAD || (o->split == PER_LAYER && k == n_sel - 1)) close_image();
    }
    if (rc < 0) fail("%s", err.msg);
}

/* The statistics of one head, once its last row is in: its --stats line,
 * and for --check-causal the head that leaks most so far (the first of equals). */
static void head_done(run *ru, long layer, int64_t h, llm_attnstat *st, int64_t *worst, llm_attnstat *worst_st)
{
    llm_attnstat_finish(st);
    if (ru->o->stats)
        printf("%ld\t%" PRId64 "\t%.6f\t%.4f\t%.6f\t%.6f\t%.3g\n", layer, h, st->entropy, st->distance,
               st->diagonal, st->first, st->leak_max);
    if (*worst < 0 || st->leak_max > worst_st->leak_max) *worst = h, *worst_st = *st;
}

/* --check-causal and --stats for one record, head by head as the rows
 * arrive (the heads follow one another), and for --head-sim its maps into
 * *maps, grown as the rows arrive ([H][T][T] once all are in). */
static void diagnose_record(run *ru, llm_attnmap *m, long layer, float **maps)
{
    const options *o = ru->o;
    llm_error err = {0};
    int64_t T = m->T, cur = -1, worst = -1;
    llm_attnstat st, worst_st;
    size_t have = 0, cap = 0;
    const double *p;
    int64_t h, i;
    int rc;
    while ((rc = llm_attnmap_next(m, &p, &h, &i, &err)) > 0) {
        if (h != cur) {
            if (cur >= 0) head_done(ru, layer, cur, &st, &worst, &worst_st);
            llm_attnstat_init(&st);
            cur = h;
        }
        llm_attnstat_add_row(&st, i, p, T);
        if (!maps) continue;
        if (have + (size_t)T > cap) {
            cap = cap ? 2 * cap : (size_t)T * (size_t)T;
            float *grown = realloc(*maps, cap * sizeof *grown);
            if (!grown) fail("%s: out of memory for the layer's maps", m->label);
            *maps = grown;
        }
        for (int64_t j = 0; j < T; j++) (*maps)[have++] = (float)p[j];
    }
    if (rc < 0) fail("%s", err.msg);
    head_done(ru, layer, cur, &st, &worst, &worst_st);
    if (o->causal) {
        const llm_attnstat *w = &worst_st;
        int bad = w->leak_max > o->tol;
        printf("layer %ld\t%s\tmax leak %.3g", layer, bad ? "LEAK" : "ok", w->leak_max);
        if (w->leak_row >= 0) printf(" (head %" PRId64 " row %" PRId64 ")", worst, w->leak_row);
        putchar('\n');
        if (bad && !ru->causal_failed) {
            ru->causal_failed = 1;
            snprintf(ru->causal_msg, sizeof ru->causal_msg,
                     "%s: head %" PRId64 " row %" PRId64 " puts %.3g of its probability on future tokens "
                     "(tolerance %g)", m->label, worst, w->leak_row, w->leak_max, o->tol);
        }
    }
}

/* --head-sim for one record whose maps are in `maps` [H][T*T]. */
static void head_sim(run *ru, const char *label, long layer, const float *maps, int64_t H, int64_t T)
{
    const options *o = ru->o;
    double *sim = malloc((size_t)H * (size_t)H * sizeof *sim);
    if (!sim) fail("out of memory");
    llm_attnstat_head_sim(maps, H, T * T, sim);
    printf("# layer %ld: cosine similarity of the heads' attention maps\n", layer);
    for (int64_t a = 0; a < H; a++) {
        printf("%" PRId64, a);
        for (int64_t b = 0; b < H; b++) printf("\t%.4f", sim[a * H + b]);
        putchar('\n');
    }
    for (int64_t a = 0; a < H; a++)
        for (int64_t b = a + 1; b < H; b++)
            if (sim[a * H + b] >= o->sim_threshold)
                printf("redundant\tlayer %ld\theads %" PRId64 " %" PRId64 "\t%.4f\n", layer, a, b, sim[a * H + b]);
    if (o->pattern) {
        if (seen_before(&ru->seen, layer)) fail("%s: layer %ld appears twice", label, layer);
        llm_heatmap_opts sopts = ru->hopts;
        sopts.labels = NULL;
        open_image(o, &sopts, H, 1, 1, layer, 0);
        double *row = malloc((size_t)H * sizeof *row);
        if (!row) fail("out of memory");
        for (int64_t a = 0; a < H; a++) {
            for (int64_t b = 0; b < H; b++) row[b] = sim[a * H + b];
            llm_heatmap_put_row(current_map, 0, a, row);
        }
        free(row);
        llm_error err = {0};
        if (llm_heatmap_end_band(current_map, &err) < 0) fail("%s", err.msg);
        close_image();
    }
    free(sim);
}

int main(int argc, char **argv)
{
    llm_cli_init("llm-attnviz");
    options o;
    parse(argc, argv, &o);
    int64_t max_pixels = o.force ? 0 : DEFAULT_MAX_PIXELS;
    run ru = {.o = &o,
              .hopts = {.tone = o.tone, .color = o.color, .scale = (int)o.scale, .max_pixels = max_pixels}};
    llm_error err = {0};
    llm_reader *r;
    if (llm_reader_open(&r, o.input, &err) < 0) llm_die(LLM_EXIT_DATA, "%s", err.msg);
    const char *label = strcmp(o.input, "-") ? o.input : "stdin";
    int diagnose = o.causal || o.stats || o.sim;
    if (o.stats) printf("layer\thead\tentropy\tdistance\tdiagonal\tfirst\tleak\n");
    const llm_record *rec;
    int rc, matched = 0;
    while ((rc = llm_reader_next(r, &rec, &err)) > 0) {
        long layer = llm_attnmap_layer(rec->name);
        if (layer < 0 || (o.layer >= 0 && layer != o.layer)) continue;
        llm_attnmap m;
        if (llm_attnmap_open(&m, r, rec, label, &err) < 0) fail("%s", err.msg);
        matched++;
        if (!diagnose) {
            draw_record(&ru, &m, rec, layer);
        } else {
            float *maps = NULL;
            if (o.sim && max_pixels && m.heads > max_pixels / (m.T * m.T))
                fail("%s: --head-sim holds the layer's %" PRId64 " x %" PRId64 " x %" PRId64
                     " values, beyond the limit of %" PRId64 " (--force)", m.label, m.heads, m.T, m.T, max_pixels);
            if (o.sim && max_pixels && m.heads > max_pixels / m.heads)
                fail("%s: --head-sim compares %" PRId64 " x %" PRId64 " heads, beyond the limit of %" PRId64
                     " (--force)", m.label, m.heads, m.heads, max_pixels);
            diagnose_record(&ru, &m, layer, o.sim ? &maps : NULL);
            if (o.sim) head_sim(&ru, m.label, layer, maps, m.heads, m.T);
            free(maps);
            llm_cli_check_output(stdout, "stdout", 0);
        }
        warn_rows(&m);
        llm_attnmap_close(&m);
    }
    if (rc < 0) fail("%s", err.msg);
    llm_reader_close(r);
    if (!matched) {
        if (o.layer >= 0) fail("%s: no layers.%ld.attn.probs record", label, o.layer);
        fail("%s: no layers.L.attn.probs record (llm-gen --dump-attn writes them)", label);
    }
    if (current_map) close_image(); /* ALL_LAYERS: the mosaic of every layer */
    llm_labels_free(&ru.labels);
    free(ru.seen.layers);
    llm_cli_check_output(stdout, "stdout", 1);
    if (ru.causal_failed) llm_die(LLM_EXIT_DATA, "%s", ru.causal_msg);
    return 0;
}
