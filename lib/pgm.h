/* pgm — Netpbm images: binary PGM (P5) and PPM (P6), written row by row.
 *
 * A picture is a grid of levels: 0..maxval are tones (0 dark), and three more
 * levels name the parts of a figure that are not data — separator lines, the
 * margin background and text.  A palette turns each level into the bytes of
 * one sample (PGM, one byte or two big-endian bytes per pixel) or of one RGB
 * pixel (PPM, tones through the colormap of colormap.h), so the same rows can
 * be written as grey or as color.
 *
 *     llm_pgm_palette pal;
 *     LLM_TRY(llm_pgm_palette_init(&pal, 255, 0, 0, &err));  // 8-bit grey, dark background
 *     n = llm_pgm_header(&pal, width, height, head);     // "P5\n640 480\n255\n"
 *     llm_pgm_encode_row(&pal, levels, width, bytes);    // width uint32 levels -> bytes
 *     llm_pgm_palette_free(&pal);
 */
#ifndef LLM_PGM_H
#define LLM_PGM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define LLM_PGM_HEADER_MAX 64 /* bytes llm_pgm_header may write */

typedef struct llm_pgm_palette {
    int maxval;           /* 255 or 65535 */
    int color;            /* 0: PGM (P5), 1: PPM (P6) */
    int bytes_per_pixel;  /* 1, 2 (PGM) or 3, 6 (PPM) */
    uint16_t *rgb;        /* [(maxval + 4) * 3]: each level's red, green, blue (equal for PGM) */
} llm_pgm_palette;

/* Levels beyond the tones, relative to maxval. */
#define LLM_PGM_SEPARATOR(maxval) ((uint32_t)(maxval) + 1)  /* a mid grey */
#define LLM_PGM_BACKGROUND(maxval) ((uint32_t)(maxval) + 2) /* black, or white when inverted */
#define LLM_PGM_TEXT(maxval) ((uint32_t)(maxval) + 3)       /* the opposite of the background */

/* Fills pal for maxval (255 or 65535), grey (color 0) or the colormap
 * (color 1), with a white background and black text when invert is set.
 * Tone levels map to themselves in grey, to llm_colormap(level / maxval) in
 * color.  0 or LLM_ERR_ARG / LLM_ERR_NOMEM; free with llm_pgm_palette_free. */
int llm_pgm_palette_init(llm_pgm_palette *pal, int maxval, int color, int invert, llm_error *err);
void llm_pgm_palette_free(llm_pgm_palette *pal);

/* Writes the header of a width x height image ("P5" or "P6", one line each
 * for the size and maxval) into buf (LLM_PGM_HEADER_MAX bytes); returns its
 * length. */
size_t llm_pgm_header(const llm_pgm_palette *pal, int64_t width, int64_t height, char *buf);

/* Encodes n levels (each <= maxval + 3) as n * bytes_per_pixel bytes into out. */
void llm_pgm_encode_row(const llm_pgm_palette *pal, const uint32_t *levels, size_t n,
                        unsigned char *out);

#endif
