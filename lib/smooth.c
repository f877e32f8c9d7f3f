/* smooth — SmoothQuant's per-channel scales and their folding into the norms. */
#include "smooth.h"

#include <math.h>
#include <stdlib.h>

int llm_smooth_scales(const float *act_absmax, float *const *ws, const int *rows, int n_w, int cols,
                      float alpha, float *s, llm_error *err)
{
    if (!(alpha > 0 && alpha < 1)) return llm_error_set(err, LLM_ERR_ARG, "alpha %g outside (0, 1)", (double)alpha);
    for (int j = 0; j < cols; j++) {
        float wmax = 0, xmax = act_absmax[j];
        for (int i = 0; i < n_w; i++)
            for (int r = 0; r < rows[i]; r++) wmax = fmaxf(wmax, fabsf(ws[i][(size_t)r * cols + j]));
        if (!isfinite(xmax) || xmax < 0)
            return llm_error_set(err, LLM_ERR_FORMAT, "activation absmax of channel %d is %g", j, (double)xmax);
        double v = xmax > 0 && wmax > 0 ? pow(xmax, alpha) / pow(wmax, 1.0 - alpha) : 1.0;
        s[j] = (float)(v < 1e-5 ? 1e-5 : v > 1e5 ? 1e5 : v);
    }
    return 0;
}

/* norm[j] /= s[j]; ws[i][:, j] *= s[j]. */
static void fold(float *norm, float *const *ws, const int *rows, int n_w, int cols, const float *s)
{
    for (int j = 0; j < cols; j++) norm[j] /= s[j];
    for (int i = 0; i < n_w; i++)
        for (int r = 0; r < rows[i]; r++)
            for (int j = 0; j < cols; j++) ws[i][(size_t)r * cols + j] *= s[j];
}

int llm_smooth_model(llm_model *m, const float *const *absmax, float alpha, float *scales,
                     llm_error *err)
{
    const llm_config *c = &m->cfg;
    int D = c->dim, E = D / c->n_heads, HE = c->n_heads * E, KE = c->n_kv_heads * E;
    float *s = malloc((size_t)D * sizeof *s);
    if (!s) return llm_error_set(err, LLM_ERR_NOMEM, "out of memory");
    int rc = 0;
    for (int l = 0; rc == 0 && l < c->n_layers; l++) {
        llm_layer_params *p = &m->p.layers[l];
        float *attn[3] = {p->wq, p->wk, p->wv}, *mlp[2] = {p->w1, p->w3};
        int attn_rows[3] = {HE, KE, KE}, mlp_rows[2] = {c->hidden, c->hidden};
        for (int k = 0; rc == 0 && k < 2; k++) {
            float **ws = k ? mlp : attn;
            int *rows = k ? mlp_rows : attn_rows, n_w = k ? 2 : 3;
            rc = llm_smooth_scales(absmax[2 * l + k], ws, rows, n_w, D, alpha, s, err);
            if (rc < 0) {
                llm_error_prefix(err, "layer %d %s", l, k ? "mlp" : "attention");
                break;
            }
            fold(k ? p->mlp_norm : p->attn_norm, ws, rows, n_w, D, s);
            if (scales)
                for (int j = 0; j < D; j++) scales[((size_t)l * 2 + k) * D + j] = s[j];
        }
    }
    free(s);
    return rc;
}
