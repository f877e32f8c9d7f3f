/* colormap — a perceptual colormap for heatmaps: dark violet through teal to
 * pale yellow.
 *
 * Designed here in OKLab (Ottosson 2020), a color space whose lightness axis
 * tracks perceived lightness: lightness rises linearly with the value while
 * the hue turns from violet to yellow at a moderate, constant chroma, so equal
 * steps in value look like equal steps in brightness and the map survives
 * greyscale printing and the common kinds of color blindness.  The chroma is
 * low enough that every color is inside the sRGB gamut.
 *
 *     double rgb[3];
 *     llm_colormap(0.5, rgb);    // sRGB (gamma-encoded) components in [0,1]
 */
#ifndef LLM_COLORMAP_H
#define LLM_COLORMAP_H

/* The color of t in [0,1] (clamped) as gamma-encoded sRGB in [0,1]. */
void llm_colormap(double t, double rgb[3]);

#endif
