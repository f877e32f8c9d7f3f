/* Unit tests for lib/pgm and lib/colormap: headers and samples against the
 * Netpbm format written out by hand here (16-bit big-endian, P6 triplets),
 * and the colormap's lightness measured with CIE L* (a formula independent of
 * the OKLab construction) rising strictly from dark to light. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "colormap.h"
#include "pgm.h"

static void test_header(void)
{
    llm_error err = {0};
    llm_pgm_palette pal;
    char buf[LLM_PGM_HEADER_MAX];
    CHECK_OK(llm_pgm_palette_init(&pal, 255, 0, 0, &err), err);
    size_t n = llm_pgm_header(&pal, 640, 48, buf);
    CHECK(n == strlen("P5\n640 48\n255\n") && memcmp(buf, "P5\n640 48\n255\n", n) == 0);
    llm_pgm_palette_free(&pal);
    CHECK_OK(llm_pgm_palette_init(&pal, 65535, 1, 0, &err), err);
    n = llm_pgm_header(&pal, 3, 2, buf);
    CHECK(n == strlen("P6\n3 2\n65535\n") && memcmp(buf, "P6\n3 2\n65535\n", n) == 0);
    CHECK(pal.bytes_per_pixel == 6);
    llm_pgm_palette_free(&pal);
    CHECK(llm_pgm_palette_init(&pal, 1023, 0, 0, &err) == LLM_ERR_ARG);
}

static void test_grey_samples(void)
{
    llm_error err = {0};
    llm_pgm_palette pal;
    CHECK_OK(llm_pgm_palette_init(&pal, 65535, 0, 0, &err), err);
    uint32_t levels[5] = {0, 1, 0x1234, 65535, LLM_PGM_SEPARATOR(65535)};
    unsigned char out[10];
    llm_pgm_encode_row(&pal, levels, 5, out);
    const unsigned char want[10] = {0, 0, 0, 1, 0x12, 0x34, 0xff, 0xff, 0x7f, 0xff};
    CHECK(memcmp(out, want, 10) == 0);
    llm_pgm_palette_free(&pal);

    CHECK_OK(llm_pgm_palette_init(&pal, 255, 0, 1, &err), err); /* inverted: white margins, black text */
    uint32_t more[5] = {0, 200, LLM_PGM_SEPARATOR(255), LLM_PGM_BACKGROUND(255), LLM_PGM_TEXT(255)};
    llm_pgm_encode_row(&pal, more, 5, out);
    const unsigned char want8[5] = {0, 200, 127, 255, 0};
    CHECK(memcmp(out, want8, 5) == 0);
    llm_pgm_palette_free(&pal);
}

static void test_color_samples(void)
{
    llm_error err = {0};
    llm_pgm_palette pal;
    CHECK_OK(llm_pgm_palette_init(&pal, 255, 1, 0, &err), err);
    uint32_t levels[3] = {0, 128, LLM_PGM_TEXT(255)};
    unsigned char out[9];
    llm_pgm_encode_row(&pal, levels, 3, out);
    for (int k = 0; k < 2; k++) {
        double rgb[3];
        llm_colormap(levels[k] / 255.0, rgb);
        for (int c = 0; c < 3; c++) CHECK(out[3 * k + c] == (unsigned char)lround(rgb[c] * 255));
    }
    CHECK(out[6] == 255 && out[7] == 255 && out[8] == 255);
    llm_pgm_palette_free(&pal);
}

/* CIE 1976 L* of a gamma-encoded sRGB color (D65 white). */
static double cie_lightness(const double rgb[3])
{
    double lin[3];
    for (int c = 0; c < 3; c++)
        lin[c] = rgb[c] <= 0.04045 ? rgb[c] / 12.92 : pow((rgb[c] + 0.055) / 1.055, 2.4);
    double y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
    double f = y > 216.0 / 24389 ? cbrt(y) : (24389.0 / 27 * y + 16) / 116;
    return 116 * f - 16;
}

static void test_colormap_perceptual(void)
{
    double prev = -1, rgb[3];
    int rising = 1, in_gamut = 1;
    double min_step = 1e9, max_step = 0;
    for (int k = 0; k <= 256; k++) {
        llm_colormap(k / 256.0, rgb);
        for (int c = 0; c < 3; c++) in_gamut &= rgb[c] >= 0 && rgb[c] <= 1;
        double L = cie_lightness(rgb);
        if (k > 0) {
            rising &= L > prev;
            min_step = fmin(min_step, L - prev), max_step = fmax(max_step, L - prev);
        }
        prev = L;
    }
    CHECK(rising);
    CHECK(in_gamut);
    /* even steps: no band of the map much flatter than another */
    CHECK_MSG(max_step < 2.5 * min_step, "L* steps from %g to %g", min_step, max_step);
    llm_colormap(0, rgb);
    CHECK(cie_lightness(rgb) < 15);
    llm_colormap(1, rgb);
    CHECK(cie_lightness(rgb) > 85);
    CHECK(rgb[0] > rgb[2] && rgb[1] > rgb[2]); /* ends yellow */
    llm_colormap(-3, rgb);
    double lo[3];
    llm_colormap(0, lo);
    CHECK(memcmp(rgb, lo, sizeof lo) == 0); /* clamped */
}

int main(void)
{
    RUN(test_header);
    RUN(test_grey_samples);
    RUN(test_color_samples);
    RUN(test_colormap_perceptual);
    return check_done();
}
