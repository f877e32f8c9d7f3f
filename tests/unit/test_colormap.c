/* Unit tests for lib/colormap: the map is the straight line in OKLCh that
 * its header describes (lightness 0.20 to 0.95, chroma 0.09, hue 305 to 100
 * degrees the long way round, through blue and green), checked by converting
 * its sRGB output back to OKLab with the forward transform of Ottosson's
 * "A perceptual color space for image processing" (2020) — the matrices the
 * library does not use — and the sRGB decoding of IEC 61966-2-1; and
 * out-of-range and NaN values clamped to the ends.  (test_pgm checks CIE
 * lightness rising evenly and the palette built from the map.) */
#include <math.h>
#include <string.h>

#include "check.h"
#include "colormap.h"

static double srgb_decode(double v)
{
    return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

/* Gamma-encoded sRGB to OKLab (Ottosson's linear_srgb_to_oklab). */
static void srgb_to_oklab(const double rgb[3], double lab[3])
{
    double r = srgb_decode(rgb[0]), g = srgb_decode(rgb[1]), b = srgb_decode(rgb[2]);
    double l = cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
    double m = cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
    double s = cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
    lab[0] = 0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s;
    lab[1] = 1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s;
    lab[2] = 0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s;
}

/* The reference itself: white is L = 1 with no chroma, black L = 0. */
static void test_reference_transform(void)
{
    double lab[3];
    srgb_to_oklab((const double[3]){1, 1, 1}, lab);
    CHECK_NEAR(lab[0], 1, 1e-6);
    CHECK(hypot(lab[1], lab[2]) < 1e-6);
    srgb_to_oklab((const double[3]){0, 0, 0}, lab);
    CHECK(fabs(lab[0]) < 1e-12 && hypot(lab[1], lab[2]) < 1e-12);
}

/* Along the map: lightness and hue linear in t, chroma constant, every
 * component inside [0,1] without being clipped there. */
static void test_oklch_line(void)
{
    for (int k = 0; k <= 100; k++) {
        double t = k / 100.0, rgb[3], lab[3];
        llm_colormap(t, rgb);
        int inside = 1;
        for (int c = 0; c < 3; c++) inside &= rgb[c] > 0 && rgb[c] < 1;
        CHECK_MSG(inside, "t %g: (%g, %g, %g) touches the edge of the gamut", t, rgb[0], rgb[1], rgb[2]);
        srgb_to_oklab(rgb, lab);
        double want_hue = 305 - 205 * t, hue = atan2(lab[2], lab[1]) * 180 / M_PI;
        double dh = fmod(hue - want_hue + 720 + 180, 360) - 180; /* difference in (-180, 180] */
        CHECK_MSG(fabs(lab[0] - (0.20 + 0.75 * t)) < 1e-5, "t %g: lightness %.7f", t, lab[0]);
        CHECK_MSG(fabs(hypot(lab[1], lab[2]) - 0.09) < 1e-5, "t %g: chroma %.7f", t, hypot(lab[1], lab[2]));
        CHECK_MSG(fabs(dh) < 0.02, "t %g: hue %.4f degrees, want %.4f", t, hue, want_hue);
    }
}

/* Values outside [0,1], infinities and NaN take the nearest end. */
static void test_clamped(void)
{
    double lo[3], hi[3], rgb[3];
    llm_colormap(0, lo);
    llm_colormap(1, hi);
    const double below[3] = {-1e-9, -INFINITY, NAN}, above[3] = {1 + 1e-9, 7, INFINITY};
    for (int k = 0; k < 3; k++) {
        llm_colormap(below[k], rgb);
        CHECK_MSG(!memcmp(rgb, lo, sizeof rgb), "t %g is not the color of 0", below[k]);
        llm_colormap(above[k], rgb);
        CHECK_MSG(!memcmp(rgb, hi, sizeof rgb), "t %g is not the color of 1", above[k]);
    }
}

int main(void)
{
    RUN(test_reference_transform);
    RUN(test_oklch_line);
    RUN(test_clamped);
    return check_done();
}
