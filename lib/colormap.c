/* colormap — the heatmap colormap: a straight line in OKLCh, converted to sRGB. */
#include "colormap.h"

#include <math.h>

/* The line: lightness, chroma, hue in degrees at t = 0 and t = 1. */
#define L_START 0.20
#define L_END 0.95
#define CHROMA 0.09
#define HUE_START 305.0 /* violet */
#define HUE_END 100.0   /* yellow, the long way round through blue and green */

static double srgb_encode(double linear)
{
    if (linear <= 0) return 0;
    if (linear >= 1) return 1;
    return linear <= 0.0031308 ? 12.92 * linear : 1.055 * pow(linear, 1 / 2.4) - 0.055;
}

void llm_colormap(double t, double rgb[3])
{
    if (!(t >= 0)) t = 0; /* NaN too */
    if (t > 1) t = 1;
    double lightness = L_START + (L_END - L_START) * t;
    double hue = (HUE_START + (HUE_END - HUE_START) * t) * (M_PI / 180);
    double a = CHROMA * cos(hue), b = CHROMA * sin(hue);
    /* OKLab to linear sRGB through the cone responses (Ottosson's matrices) */
    double l = lightness + 0.3963377774 * a + 0.2158037573 * b;
    double m = lightness - 0.1055613458 * a - 0.0638541728 * b;
    double s = lightness - 0.0894841775 * a - 1.2914855480 * b;
    l = l * l * l, m = m * m * m, s = s * s * s;
    rgb[0] = srgb_encode(4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s);
    rgb[1] = srgb_encode(-1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s);
    rgb[2] = srgb_encode(-0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s);
}
