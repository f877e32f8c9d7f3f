/* Unit tests for lib/heatmap: images are written to files, parsed back by a
 * Netpbm reader written here, and compared pixel by pixel with levels
 * computed here from the probabilities (tone curves in double precision,
 * mosaic geometry from first principles): grey and 16-bit, gamma, log,
 * inverted, scaled, mosaics with empty cells, spooled bands, labels, and the
 * pixel limit. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "font.h"
#include "heatmap.h"

typedef struct image {
    int color;
    long width, height, maxval;
    unsigned *px; /* [height][width][channels] */
} image;

/* Reads a P5/P6 file: header tokens separated by whitespace, one whitespace
 * byte, then big-endian samples of 1 or 2 bytes.  0 on success. */
static int read_pnm(const char *path, image *im)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    char magic[3] = {0};
    int ok = fread(magic, 1, 2, f) == 2 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '6') &&
             fscanf(f, "%ld %ld %ld", &im->width, &im->height, &im->maxval) == 3 && fgetc(f) == '\n';
    im->color = magic[1] == '6';
    if (!ok) {
        fclose(f);
        return -1;
    }
    int ch = im->color ? 3 : 1, bytes = im->maxval > 255 ? 2 : 1;
    size_t n = (size_t)im->width * (size_t)im->height * (size_t)ch;
    im->px = malloc(n * sizeof *im->px);
    for (size_t k = 0; k < n; k++) {
        int hi = fgetc(f), lo = bytes == 2 ? fgetc(f) : 0;
        if (hi == EOF || lo == EOF) ok = 0;
        im->px[k] = bytes == 2 ? (unsigned)(hi << 8 | lo) : (unsigned)hi;
    }
    ok = ok && fgetc(f) == EOF; /* nothing after the raster */
    fclose(f);
    return ok ? 0 : -1;
}

/* The level the tone should give p, written out separately from the library. */
static unsigned want_level(double p, int maxval, double gamma, int logscale, int invert)
{
    if (p < 0) p = 0;
    if (p > 1) p = 1;
    double t;
    if (logscale) {
        t = p > 0 ? 1 + log10(p) / 4 : 0;
        if (t < 0) t = 0;
    } else {
        t = pow(p, gamma);
    }
    unsigned v = (unsigned)floor(t * maxval + 0.5);
    return invert ? (unsigned)maxval - v : v;
}

/* A causal softmax map per cell, with a few values clamped out of range. */
static void fill_maps(double *p, int cells, int T, unsigned long long *rng)
{
    for (int c = 0; c < cells; c++)
        for (int i = 0; i < T; i++) {
            double *row = p + ((size_t)c * T + i) * T, sum = 0;
            for (int j = 0; j < T; j++) sum += row[j] = j <= i ? exp(3 * check_normal(rng)) : 0;
            for (int j = 0; j < T; j++) row[j] /= sum;
        }
}

typedef struct setup {
    int T, cells, cols, scale, maxval, logscale, invert;
    double gamma;
} setup;

/* Draws `cells` maps in bands of cols (declared or spooled) and checks every pixel. */
static void draw_and_compare(const setup *s, int spooled)
{
    llm_error err = {0};
    unsigned long long rng = 7;
    double *p = malloc(sizeof *p * (size_t)s->cells * s->T * s->T);
    fill_maps(p, s->cells, s->T, &rng);
    int rows = (s->cells + s->cols - 1) / s->cols;
    char path[600];
    snprintf(path, sizeof path, "%s/map%d.pgm", check_tmpdir(), spooled);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    llm_heatmap_opts o = {.tone = {.maxval = s->maxval, .gamma = s->gamma, .log = s->logscale,
                                   .invert = s->invert},
                          .scale = s->scale};
    llm_heatmap *hm;
    CHECK_OK(llm_heatmap_open(&hm, &o, s->T, s->cols, spooled ? 0 : rows, fd, path, &err), err);
    for (int c = 0; c < s->cells; c++) {
        for (int i = 0; i < s->T; i++) llm_heatmap_put_row(hm, c % s->cols, i, p + ((size_t)c * s->T + i) * s->T);
        if (c % s->cols == s->cols - 1 || c == s->cells - 1) CHECK_OK(llm_heatmap_end_band(hm, &err), err);
    }
    CHECK_OK(llm_heatmap_close(hm, &err), err);
    close(fd);
    image im;
    if (!CHECK(read_pnm(path, &im) == 0)) {
        free(p);
        return;
    }
    long cell = (long)s->T * s->scale;
    CHECK(im.width == s->cols * (cell + 1) - 1 && im.height == rows * (cell + 1) - 1 && im.maxval == s->maxval);
    unsigned background = s->invert ? (unsigned)s->maxval : 0, separator = (unsigned)s->maxval / 2;
    long bad = 0, first_x = -1, first_y = -1;
    for (long y = 0; y < im.height; y++)
        for (long x = 0; x < im.width; x++) {
            unsigned want;
            long cx = x / (cell + 1), cy = y / (cell + 1), ox = x % (cell + 1), oy = y % (cell + 1);
            if (ox == cell || oy == cell) want = separator;
            else if (cy * s->cols + cx >= s->cells) want = background; /* an empty cell */
            else {
                double v = p[((size_t)(cy * s->cols + cx) * s->T + oy / s->scale) * s->T + ox / s->scale];
                want = want_level(v, s->maxval, s->gamma, s->logscale, s->invert);
            }
            if (im.px[y * im.width + x] != want && bad++ == 0) first_x = x, first_y = y;
        }
    CHECK_MSG(bad == 0, "%ld pixels differ, first at (%ld, %ld)", bad, first_x, first_y);
    free(im.px);
    free(p);
}

static void test_linear_grid_with_empty_cell(void)
{
    draw_and_compare(&(setup){.T = 7, .cells = 3, .cols = 2, .scale = 3, .maxval = 255, .gamma = 1}, 0);
}

static void test_gamma_16bit_inverted(void)
{
    draw_and_compare(&(setup){.T = 9, .cells = 1, .cols = 1, .scale = 1, .maxval = 65535, .gamma = 0.4,
                              .invert = 1}, 0);
}

static void test_log_scale(void)
{
    draw_and_compare(&(setup){.T = 11, .cells = 4, .cols = 4, .scale = 2, .maxval = 255, .gamma = 1,
                              .logscale = 1}, 0);
}

static void test_spooled_bands(void)
{
    draw_and_compare(&(setup){.T = 5, .cells = 6, .cols = 2, .scale = 2, .maxval = 255, .gamma = 1}, 1);
}

static void test_labels_in_margins(void)
{
    llm_error err = {0};
    enum { T = 3, S = 10 };
    llm_labels lab;
    CHECK_OK(llm_labels_parse(&lab, "<bos> ab \\x20", T, &err), err);
    char path[600];
    snprintf(path, sizeof path, "%s/labels.pgm", check_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    llm_heatmap_opts o = {.tone = {.maxval = 255, .gamma = 1}, .scale = S, .labels = &lab};
    llm_heatmap *hm;
    CHECK_OK(llm_heatmap_open(&hm, &o, T, 1, 1, fd, path, &err), err);
    double row[T] = {0};
    for (int i = 0; i < T; i++) {
        row[i] = 1; /* the identity: a bright diagonal */
        llm_heatmap_put_row(hm, 0, i, row);
        row[i] = 0;
    }
    CHECK_OK(llm_heatmap_end_band(hm, &err), err);
    CHECK_OK(llm_heatmap_close(hm, &err), err);
    close(fd);
    image im;
    if (!CHECK(read_pnm(path, &im) == 0)) return;
    /* the margin holds the longest label ("<bos>", 5 glyphs) and a pad each side */
    long margin = 5 * LLM_FONT_ADVANCE - 1 + 4;
    CHECK(im.width == margin + T * S && im.height == im.width);
    /* row 1 ("ab"): right-aligned 2 px before the image, glyph rows centred in the 10 px row */
    long text_x = margin - 2 - (2 * LLM_FONT_ADVANCE - 1), top = margin + 1 * S + (S - LLM_FONT_ROWS) / 2;
    long bad = 0;
    for (int gy = 0; gy < LLM_FONT_ROWS; gy++)
        for (int k = 0; k < 2; k++)
            for (int gx = 0; gx < LLM_FONT_COLS; gx++) {
                unsigned want = llm_font_ink("ab"[k], gx, gy) ? 255 : 0;
                bad += im.px[(top + gy) * im.width + text_x + k * LLM_FONT_ADVANCE + gx] != want;
            }
    CHECK_MSG(bad == 0, "%ld pixels of the label 'ab' differ", bad);
    /* column 2 (a space, drawn as the visible-space glyph) reads upwards, its
     * glyph's top row at the left of the column, ending 2 px above the image */
    long col_x = margin + 2 * S + (S - LLM_FONT_ROWS) / 2, last_y = margin - 3;
    bad = 0;
    for (int gx = 0; gx < LLM_FONT_COLS; gx++)
        for (int gy = 0; gy < LLM_FONT_ROWS; gy++) {
            unsigned want = llm_font_ink(' ', gx, gy) ? 255 : 0;
            bad += im.px[(last_y - gx) * im.width + col_x + gy] != want;
        }
    CHECK_MSG(bad == 0, "%ld pixels of the column label differ", bad);
    /* the data: the diagonal at full level, off it zero */
    CHECK(im.px[(margin + S + 4) * im.width + margin + S + 4] == 255);
    CHECK(im.px[(margin + S + 4) * im.width + margin + 4] == 0);
    free(im.px);
    llm_labels_free(&lab);
}

static void test_limits(void)
{
    llm_error err = {0};
    int64_t w, h;
    llm_heatmap_opts o = {.tone = {.maxval = 255, .gamma = 1}, .scale = 1, .max_pixels = 1100};
    CHECK(llm_heatmap_size(&o, 10, 3, 3, &w, &h, &err) == 0 && w == 32 && h == 32);
    CHECK(llm_heatmap_size(&o, 40, 1, 1, &w, &h, &err) == LLM_ERR_LIMIT);
    CHECK(strstr(err.msg, "40 x 40") && strstr(err.msg, "--force"));
    o.max_pixels = 0;
    CHECK(llm_heatmap_size(&o, INT64_C(1) << 40, 1, 1, &w, &h, &err) == LLM_ERR_LIMIT);
    /* a spooled image meets the limit when its bands pile up */
    o.max_pixels = 1100;
    char path[600];
    snprintf(path, sizeof path, "%s/limit.pgm", check_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    llm_heatmap *hm;
    CHECK_OK(llm_heatmap_open(&hm, &o, 10, 3, 0, fd, path, &err), err);
    int rc = 0, bands = 0;
    while (rc == 0 && bands < 10) rc = llm_heatmap_end_band(hm, &err), bands += rc == 0;
    CHECK(rc == LLM_ERR_LIMIT && bands == 3); /* 32 x 32, then 32 x 43 > 1100 */
    llm_heatmap_free(hm);
    close(fd);
}

static void test_grid_shapes(void)
{
    static const int n[] = {1, 2, 3, 4, 6, 7, 8, 12, 16, 32, 64};
    static const int want_cols[] = {1, 2, 3, 2, 3, 3, 4, 4, 4, 8, 8};
    for (size_t k = 0; k < sizeof n / sizeof n[0]; k++) {
        int cols, rows;
        llm_heatmap_grid(n[k], &cols, &rows);
        CHECK_MSG(cols == want_cols[k] && cols * rows >= n[k] && (cols - 1) * rows < n[k],
                  "%d cells: %d x %d", n[k], cols, rows);
    }
}

int main(void)
{
    RUN(test_linear_grid_with_empty_cell);
    RUN(test_gamma_16bit_inverted);
    RUN(test_log_scale);
    RUN(test_spooled_bands);
    RUN(test_labels_in_margins);
    RUN(test_limits);
    RUN(test_grid_shapes);
    return check_done();
}
