/* pgm — palettes, headers and row encoding for binary PGM and PPM. */
#include "pgm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "colormap.h"

int llm_pgm_palette_init(llm_pgm_palette *pal, int maxval, int color, int invert, llm_error *err)
{
    pal->rgb = NULL;
    if (maxval != 255 && maxval != 65535)
        return llm_error_set(err, LLM_ERR_ARG, "maxval %d is neither 255 nor 65535", maxval);
    pal->maxval = maxval;
    pal->color = !!color;
    pal->bytes_per_pixel = (maxval > 255 ? 2 : 1) * (color ? 3 : 1);
    size_t levels = (size_t)maxval + 4;
    if (!(pal->rgb = malloc(levels * 3 * sizeof *pal->rgb)))
        return llm_error_set(err, LLM_ERR_NOMEM, "out of memory for a palette of %zu levels", levels);
    for (size_t v = 0; v <= (size_t)maxval; v++) {
        uint16_t *p = pal->rgb + 3 * v;
        if (!color) {
            p[0] = p[1] = p[2] = (uint16_t)v;
            continue;
        }
        double rgb[3];
        llm_colormap((double)v / maxval, rgb);
        for (int c = 0; c < 3; c++) p[c] = (uint16_t)(rgb[c] * maxval + 0.5);
    }
    uint16_t grey = (uint16_t)(maxval / 2), dark = 0, light = (uint16_t)maxval;
    uint16_t extra[3] = {grey, invert ? light : dark, invert ? dark : light};
    for (int k = 0; k < 3; k++)
        for (int c = 0; c < 3; c++) pal->rgb[3 * ((size_t)maxval + 1 + k) + c] = extra[k];
    return 0;
}

void llm_pgm_palette_free(llm_pgm_palette *pal)
{
    free(pal->rgb);
    pal->rgb = NULL;
}

size_t llm_pgm_header(const llm_pgm_palette *pal, int64_t width, int64_t height, char *buf)
{
    int n = snprintf(buf, LLM_PGM_HEADER_MAX, "%s\n%" PRId64 " %" PRId64 "\n%d\n",
                     pal->color ? "P6" : "P5", width, height, pal->maxval);
    return n < 0 ? 0 : (size_t)n;
}

void llm_pgm_encode_row(const llm_pgm_palette *pal, const uint32_t *levels, size_t n,
                        unsigned char *out)
{
    int channels = pal->color ? 3 : 1;
    for (size_t i = 0; i < n; i++) {
        const uint16_t *p = pal->rgb + 3 * (size_t)levels[i];
        for (int c = 0; c < channels; c++) {
            if (pal->maxval > 255) *out++ = (unsigned char)(p[c] >> 8); /* big-endian */
            *out++ = (unsigned char)(p[c] & 0xff);
        }
    }
}
