/* smooth — SmoothQuant (Xiao et al., 2023): move the activations' outlier
 * channels into the weights, where quantization copes with them better.
 *
 * For the input x of a group of linears reading the same RMSNorm output
 * (wq, wk, wv after attn_norm; w1, w3 after mlp_norm), and each input
 * channel j:
 *
 *     s_j = max|x_j|^α / max|W_j|^(1-α)        max|W_j|: over every row of
 *                                              every linear of the group
 *     x'_j = x_j / s_j,   W'[:, j] = W[:, j] * s_j      so W' x' = W x
 *
 * and x / s costs nothing at run time: it is folded into the norm's gain
 * (g_j / s_j), since rms(x) * g / s = rms(x) * (g / s).  max|x_j| is the
 * per-channel absmax of a calibration table (llm-calib --per-channel).  A
 * channel that is 0 in x or in W gets s_j = 1; s is kept in [1e-5, 1e5].
 * wo and w2 read no norm and are left alone.
 *
 *     LLM_TRY(llm_smooth_model(&m, absmax, 0.5f, NULL, &err));   // every layer, folded
 *     LLM_TRY(llm_smooth_scales(absmax, ws, rows, 3, D, 0.5f, s, &err));   // one group's s
 */
#ifndef LLM_SMOOTH_H
#define LLM_SMOOTH_H

#include "err.h"
#include "model.h"

/* s [cols] for n_w linears ws[i] [rows[i], cols] reading an input whose
 * per-channel max |x| is act_absmax [cols]; 0 < alpha < 1. */
int llm_smooth_scales(const float *act_absmax, float *const *ws, const int *rows, int n_w, int cols,
                      float alpha, float *s, llm_error *err);

/* Both, for every layer of m: absmax[2l] is layer l's attn.wq.in absmax [D],
 * absmax[2l+1] its mlp.w1.in [D].  scales (may be NULL) gets s as
 * [L, 2, D] in the same order. */
int llm_smooth_model(llm_model *m, const float *const *absmax, float alpha, float *scales,
                     llm_error *err);

#endif
