/* heatmap — attention maps drawn as Netpbm images, a band of cells at a time.
 *
 * An image is a mosaic of cells, each one T x T map (row i: query i, column
 * j: key j), enlarged to `scale` pixels per value, with one-pixel separator
 * lines between cells and, on request, the token labels along the left and
 * top edges in the built-in font.  A probability p becomes a level through a
 * tone curve: linear, p^gamma (gamma < 1 brings out small weights), or
 * logarithmic over LLM_HEATMAP_LOG_DECADES decades; inverted, 0 is white.
 *
 * The image is written top to bottom, one band (a row of cells) at a time:
 * the caller fills the band's cells row by row as the stream delivers them,
 * then ends the band.  Memory is one band of 16-bit levels (cols * T * T * 2
 * bytes), never a float map.  When the number of bands is not known in
 * advance (every layer of a stream), bands go to an unlinked temporary file
 * and the header is written once the last band is in.
 *
 *     llm_heatmap *hm;
 *     LLM_TRY(llm_heatmap_open(&hm, &opts, T, cols, rows, fd, "attn.pgm", &err));
 *     llm_heatmap_put_row(hm, cell, i, p, &err);  // every row of every cell of the band
 *     llm_heatmap_end_band(hm, &err);             // again for each band
 *     LLM_TRY(llm_heatmap_close(hm, &err));           // on error: llm_heatmap_free(hm)
 */
#ifndef LLM_HEATMAP_H
#define LLM_HEATMAP_H

#include <stdint.h>

#include "err.h"
#include "labels.h"

#define LLM_HEATMAP_LOG_DECADES 4   /* --log: 1e-4 .. 1 spans the levels */
#define LLM_HEATMAP_SEP 1           /* separator line width, pixels */
#define LLM_HEATMAP_LABEL_GLYPHS 16 /* longer labels are cut */

typedef struct llm_heatmap_tone {
    int maxval;     /* 255 or 65535 */
    double gamma;   /* level ~ p^gamma; 1 is linear */
    int log;        /* logarithmic instead (gamma ignored) */
    int invert;     /* p = 0 white, and white margins */
} llm_heatmap_tone;

typedef struct llm_heatmap_opts {
    llm_heatmap_tone tone;
    int color;                 /* PPM through the colormap */
    int scale;                 /* pixels per value, >= 1; >= LLM_FONT_LINE with labels */
    const llm_labels *labels;  /* T labels, or NULL */
    int64_t max_pixels;        /* refuse a larger image; 0: no limit */
} llm_heatmap_opts;

/* A near-square mosaic for n cells: the smallest divisor of n that is at
 * least sqrt(n) columns when that is at most twice sqrt(n), ceil(sqrt(n))
 * columns otherwise; rows to hold them all. */
void llm_heatmap_grid(int n, int *cols, int *rows);

/* The image size in pixels for cols x rows cells of T values.  0, or
 * LLM_ERR_LIMIT when it exceeds opts->max_pixels or any size limit. */
int llm_heatmap_size(const llm_heatmap_opts *opts, int64_t T, int cols, int64_t rows, int64_t *width,
                     int64_t *height, llm_error *err);

typedef struct llm_heatmap llm_heatmap;

/* Starts an image of cols x rows cells of T x T values written to fd (not
 * closed); rows 0: not known yet (spooled, see above).  label names the output
 * in messages.  *out is owned by the caller until close or free. */
int llm_heatmap_open(llm_heatmap **out, const llm_heatmap_opts *opts, int64_t T, int cols, int64_t rows,
                     int fd, const char *label, llm_error *err);
/* Sets row i (0 <= i < T) of cell `cell` (0 <= cell < cols) of the current
 * band from p[0..T). */
void llm_heatmap_put_row(llm_heatmap *hm, int cell, int64_t i, const double *p);
/* Writes the current band (cells not set are background) and starts the next. */
int llm_heatmap_end_band(llm_heatmap *hm, llm_error *err);
/* Finishes the image (a spooled one: header, then its bands) and frees hm.
 * Every declared band must have been ended.  0 or < 0. */
int llm_heatmap_close(llm_heatmap *hm, llm_error *err);
/* Frees hm without finishing; hm may be NULL. */
void llm_heatmap_free(llm_heatmap *hm);

#endif
