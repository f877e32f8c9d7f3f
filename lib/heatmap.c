/* heatmap — tone curve, mosaic geometry and the band-at-a-time image writer. */
#include "heatmap.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "font.h"
#include "pgm.h"

#define LABEL_PAD 2 /* pixels between a label and the image edge, and beyond it */
#define MAX_SIDE (INT64_C(1) << 31) /* pixels along either side */

struct llm_heatmap {
    llm_heatmap_opts opts;
    llm_pgm_palette pal;
    int64_t T, cols, rows;     /* rows 0: spooled */
    int64_t margin;            /* label margin (left and top), pixels */
    int64_t width;             /* pixels */
    int64_t bands;             /* ended so far */
    uint16_t *band;            /* [T][cols * T] tone levels of the current band */
    unsigned char *filled;     /* [cols] cells of the current band set so far */
    uint32_t *levels;          /* [width] palette levels of one output row */
    unsigned char *bytes;      /* [width * bytes_per_pixel] */
    int fd;                    /* the output */
    int spool;                 /* the temporary file, or -1 */
    char label[512];
};

/* The level of probability p (clamped to [0,1]) under tone. */
static uint16_t level(const llm_heatmap_tone *tone, double p)
{
    double t = p > 0 ? (p < 1 ? p : 1) : 0;
    if (tone->log) t = t > 0 ? fmax(0, 1 + log10(t) / LLM_HEATMAP_LOG_DECADES) : 0;
    else if (tone->gamma != 1 && t > 0) t = pow(t, tone->gamma);
    uint16_t v = (uint16_t)floor(t * tone->maxval + 0.5);
    return tone->invert ? (uint16_t)(tone->maxval - v) : v;
}

void llm_heatmap_grid(int n, int *cols, int *rows)
{
    if (n < 1) n = 1;
    double root = sqrt((double)n);
    int c = (int)ceil(root - 1e-9);
    int d = c;
    while (d < n && n % d) d++;
    if (d <= 2 * root) c = d;
    *cols = c;
    *rows = (n + c - 1) / c;
}

static int64_t label_margin(const llm_heatmap_opts *o)
{
    if (!o->labels) return 0;
    size_t glyphs = o->labels->longest < LLM_HEATMAP_LABEL_GLYPHS ? o->labels->longest
                                                                   : LLM_HEATMAP_LABEL_GLYPHS;
    return llm_font_width((int)glyphs) + 2 * LABEL_PAD;
}

int llm_heatmap_size(const llm_heatmap_opts *o, int64_t T, int cols, int64_t rows, int64_t *width,
                     int64_t *height, llm_error *err)
{
    if (T < 1 || cols < 1 || rows < 1 || o->scale < 1)
        return llm_error_set(err, LLM_ERR_ARG, "heatmap: %lld x %lld cells of %lld values at scale %d",
                             (long long)cols, (long long)rows, (long long)T, o->scale);
    int64_t margin = label_margin(o);
    if (T > MAX_SIDE / o->scale || cols > MAX_SIDE / (T * o->scale + LLM_HEATMAP_SEP) ||
        rows > MAX_SIDE / (T * o->scale + LLM_HEATMAP_SEP))
        return llm_error_set(err, LLM_ERR_LIMIT, "image wider or taller than %lld pixels",
                             (long long)MAX_SIDE);
    *width = margin + cols * (T * o->scale + LLM_HEATMAP_SEP) - LLM_HEATMAP_SEP;
    *height = margin + rows * (T * o->scale + LLM_HEATMAP_SEP) - LLM_HEATMAP_SEP;
    if (o->max_pixels > 0 && *width > o->max_pixels / *height)
        return llm_error_set(err, LLM_ERR_LIMIT,
                             "a %lld x %lld image is beyond the limit of %lld pixels (--force draws it)",
                             (long long)*width, (long long)*height, (long long)o->max_pixels);
    return 0;
}

void llm_heatmap_free(llm_heatmap *hm)
{
    if (!hm) return;
    if (hm->spool >= 0) close(hm->spool);
    llm_pgm_palette_free(&hm->pal);
    free(hm->band);
    free(hm->filled);
    free(hm->levels);
    free(hm->bytes);
    free(hm);
}

static int write_all(int fd, const void *buf, size_t n, const char *label, llm_error *err)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return llm_error_set(err, LLM_ERR_IO, "%s: write: %s", label, strerror(errno));
        p += k, n -= (size_t)k;
    }
    return 0;
}

/* Sends the row in hm->levels, `times` times, to the spool or the output. */
static int emit_row(llm_heatmap *hm, int64_t times, llm_error *err)
{
    llm_pgm_encode_row(&hm->pal, hm->levels, (size_t)hm->width, hm->bytes);
    size_t n = (size_t)hm->width * (size_t)hm->pal.bytes_per_pixel;
    for (int64_t k = 0; k < times; k++)
        LLM_TRY(write_all(hm->spool >= 0 ? hm->spool : hm->fd, hm->bytes, n, hm->label, err));
    return 0;
}

/* The label's glyph ink at pixel u along its text, glyph row gy. */
static int label_ink(const llm_labels *lab, int64_t token, int64_t u, int gy)
{
    size_t len = lab->start[token + 1] - lab->start[token];
    if (len > LLM_HEATMAP_LABEL_GLYPHS) len = LLM_HEATMAP_LABEL_GLYPHS;
    if (u < 0 || u >= llm_font_width((int)len)) return 0;
    unsigned char c = (unsigned char)lab->bytes[lab->start[token] + (size_t)(u / LLM_FONT_ADVANCE)];
    return llm_font_ink(c, (int)(u % LLM_FONT_ADVANCE), gy);
}

/* The top margin: each column's label turned a quarter left, reading upwards
 * and ending LABEL_PAD above the image. */
static int emit_top_margin(llm_heatmap *hm, llm_error *err)
{
    const int64_t s = hm->opts.scale, cell = hm->T * s, M = hm->margin;
    const int maxval = hm->pal.maxval;
    const int glyph_offset = (int)(s - LLM_FONT_ROWS) / 2;
    for (int64_t y = 0; y < M; y++) {
        int64_t u_end = M - LABEL_PAD - 1 - y; /* position along the text, from its start */
        for (int64_t x = 0; x < hm->width; x++) {
            uint32_t level = LLM_PGM_BACKGROUND(maxval);
            int64_t in = x - M;
            if (in >= 0 && in % (cell + LLM_HEATMAP_SEP) < cell) {
                int64_t col = in % (cell + LLM_HEATMAP_SEP);
                int64_t token = col / s;
                int gy = (int)(col % s) - glyph_offset;
                if (label_ink(hm->opts.labels, token, u_end, gy)) level = LLM_PGM_TEXT(maxval);
            }
            hm->levels[x] = level;
        }
        LLM_TRY(emit_row(hm, 1, err));
    }
    return 0;
}

int llm_heatmap_open(llm_heatmap **out, const llm_heatmap_opts *opts, int64_t T, int cols, int64_t rows,
                     int fd, const char *label, llm_error *err)
{
    int64_t width, height;
    LLM_TRY(llm_heatmap_size(opts, T, cols, rows ? rows : 1, &width, &height, err));
    if (opts->labels && (opts->labels->n != T || opts->scale < LLM_FONT_LINE))
        return llm_error_set(err, LLM_ERR_ARG, "heatmap: labels need %lld labels and a scale of %d",
                             (long long)T, LLM_FONT_LINE);
    llm_heatmap *hm = calloc(1, sizeof *hm);
    if (!hm) return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", label);
    hm->spool = -1;
    hm->opts = *opts;
    hm->T = T, hm->cols = cols, hm->rows = rows, hm->width = width, hm->fd = fd;
    hm->margin = label_margin(opts);
    snprintf(hm->label, sizeof hm->label, "%s", label);
    int rc = llm_pgm_palette_init(&hm->pal, opts->tone.maxval, opts->color, opts->tone.invert, err);
    if (rc < 0) {
        llm_heatmap_free(hm);
        return rc;
    }
    size_t band = (size_t)T * (size_t)T * (size_t)cols;
    hm->band = malloc(band * sizeof *hm->band);
    hm->filled = calloc((size_t)cols, 1);
    hm->levels = malloc((size_t)width * sizeof *hm->levels);
    hm->bytes = malloc((size_t)width * (size_t)hm->pal.bytes_per_pixel);
    if (!hm->band || !hm->filled || !hm->levels || !hm->bytes) {
        llm_heatmap_free(hm);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory for a band of %zu pixels", label, band);
    }
    if (rows == 0) {
        const char *dir = getenv("TMPDIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/llm-heatmap.XXXXXX", dir && *dir ? dir : "/tmp");
        hm->spool = mkstemp(path);
        if (hm->spool < 0) {
            rc = llm_error_set(err, LLM_ERR_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
            llm_heatmap_free(hm);
            return rc;
        }
        unlink(path);
    } else {
        char head[LLM_PGM_HEADER_MAX];
        size_t n = llm_pgm_header(&hm->pal, width, height, head);
        rc = write_all(fd, head, n, label, err);
    }
    if (rc == 0) rc = emit_top_margin(hm, err);
    if (rc < 0) {
        llm_heatmap_free(hm);
        return rc;
    }
    *out = hm;
    return 0;
}

void llm_heatmap_put_row(llm_heatmap *hm, int cell, int64_t i, const double *p)
{
    uint16_t *dst = hm->band + (size_t)i * (size_t)(hm->cols * hm->T) + (size_t)cell * (size_t)hm->T;
    const llm_heatmap_tone *tone = &hm->opts.tone;
    hm->filled[cell] = 1;
    if (tone->gamma == 1 && !tone->log) { /* the common case, without pow */
        for (int64_t j = 0; j < hm->T; j++) {
            double t = p[j] > 0 ? (p[j] < 1 ? p[j] : 1) : 0;
            uint16_t v = (uint16_t)floor(t * tone->maxval + 0.5);
            dst[j] = tone->invert ? (uint16_t)(tone->maxval - v) : v;
        }
        return;
    }
    for (int64_t j = 0; j < hm->T; j++) dst[j] = level(tone, p[j]);
}

int llm_heatmap_end_band(llm_heatmap *hm, llm_error *err)
{
    const int64_t s = hm->opts.scale, M = hm->margin, T = hm->T;
    const int maxval = hm->pal.maxval;
    if (hm->rows && hm->bands == hm->rows)
        return llm_error_set(err, LLM_ERR_STATE, "%s: more bands than the %lld declared", hm->label,
                             (long long)hm->rows);
    if (!hm->rows) { /* spooled: the limit applies as bands arrive */
        int64_t w, h;
        LLM_TRY(llm_heatmap_size(&hm->opts, T, (int)hm->cols, hm->bands + 1, &w, &h, err));
    }
    if (hm->bands > 0) { /* the separator line above this band */
        for (int64_t x = 0; x < hm->width; x++)
            hm->levels[x] = x < M ? LLM_PGM_BACKGROUND(maxval) : LLM_PGM_SEPARATOR(maxval);
        LLM_TRY(emit_row(hm, LLM_HEATMAP_SEP, err));
    }
    const int glyph_offset = (int)(s - LLM_FONT_ROWS) / 2;
    for (int64_t i = 0; i < T; i++) {
        const uint16_t *src = hm->band + (size_t)i * (size_t)(hm->cols * T);
        uint32_t *dst = hm->levels + M;
        for (int64_t c = 0; c < hm->cols; c++, src += T) {
            if (c > 0)
                for (int k = 0; k < LLM_HEATMAP_SEP; k++) *dst++ = LLM_PGM_SEPARATOR(maxval);
            for (int64_t j = 0; j < T; j++)
                for (int64_t k = 0; k < s; k++) *dst++ = hm->filled[c] ? src[j] : LLM_PGM_BACKGROUND(maxval);
        }
        if (!M) {
            LLM_TRY(emit_row(hm, s, err));
            continue;
        }
        /* the row's label, right-aligned LABEL_PAD before the image */
        const llm_labels *lab = hm->opts.labels;
        size_t len = lab->start[i + 1] - lab->start[i];
        int64_t text = llm_font_width((int)(len < LLM_HEATMAP_LABEL_GLYPHS ? len : LLM_HEATMAP_LABEL_GLYPHS));
        int64_t text_x = M - LABEL_PAD - text;
        for (int64_t y = 0; y < s; y++) {
            for (int64_t x = 0; x < M; x++)
                hm->levels[x] = label_ink(lab, i, x - text_x, (int)y - glyph_offset) ? LLM_PGM_TEXT(maxval)
                                                                                    : LLM_PGM_BACKGROUND(maxval);
            LLM_TRY(emit_row(hm, 1, err));
        }
    }
    memset(hm->filled, 0, (size_t)hm->cols);
    hm->bands++;
    return 0;
}

int llm_heatmap_close(llm_heatmap *hm, llm_error *err)
{
    int rc = 0;
    if (hm->rows && hm->bands != hm->rows)
        rc = llm_error_set(err, LLM_ERR_STATE, "%s: %lld bands of the %lld declared", hm->label,
                           (long long)hm->bands, (long long)hm->rows);
    else if (!hm->rows && hm->bands == 0)
        rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: nothing to draw", hm->label);
    if (rc == 0 && hm->spool >= 0) {
        int64_t width, height;
        rc = llm_heatmap_size(&hm->opts, hm->T, (int)hm->cols, hm->bands, &width, &height, err);
        char head[LLM_PGM_HEADER_MAX];
        if (rc == 0) rc = write_all(hm->fd, head, llm_pgm_header(&hm->pal, width, height, head), hm->label, err);
        if (rc == 0 && lseek(hm->spool, 0, SEEK_SET) < 0)
            rc = llm_error_set(err, LLM_ERR_IO, "%s: temporary file: %s", hm->label, strerror(errno));
        char buf[1 << 16];
        ssize_t n;
        while (rc == 0 && (n = read(hm->spool, buf, sizeof buf)) != 0) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) rc = llm_error_set(err, LLM_ERR_IO, "%s: temporary file: %s", hm->label, strerror(errno));
            else rc = write_all(hm->fd, buf, (size_t)n, hm->label, err);
        }
    }
    llm_heatmap_free(hm);
    return rc;
}
