/* Unit tests for lib/smooth: the scales against the formula evaluated here in
 * double, and a smoothed model's logits equal to the float model's (the
 * transformation is exact up to rounding). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "infer.h"
#include "smooth.h"

static const llm_config cfg = {.vocab = 50, .dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                               .hidden = 48, .seq_len = 16, .tie = 1, .norm_eps = 1e-5f,
                               .rope_theta = 10000};

static float *logits_of(const llm_model *m, const int32_t *tokens, int n)
{
    llm_error err = {0};
    llm_infer s;
    CHECK_OK(llm_infer_init(&s, m, NULL, &err), err);
    CHECK_OK(llm_infer_feed(&s, tokens, n, 1, &err), err);
    float *out = malloc((size_t)n * cfg.vocab * sizeof *out);
    memcpy(out, s.logits, (size_t)n * cfg.vocab * sizeof *out);
    llm_infer_free(&s);
    return out;
}

static void test_outputs_unchanged(void)
{
    llm_error err = {0};
    llm_model m;
    CHECK_OK(llm_model_init(&m, &cfg, 3, &err), err);
    int D = cfg.dim, L = cfg.n_layers;
    unsigned long long seed = 8;
    float *absmax = malloc((size_t)2 * L * D * sizeof *absmax);
    const float *am[4];
    for (int i = 0; i < 2 * L * D; i++) absmax[i] = (float)(0.1 + fabs(check_normal(&seed)) * (i % 11 == 0 ? 50 : 1));
    for (int i = 0; i < 2 * L; i++) am[i] = absmax + (size_t)i * D;
    /* the expected scales of layer 1's attention input, from the weights before */
    double want[32];
    const llm_layer_params *p = &m.p.layers[1];
    for (int j = 0; j < D; j++) {
        double wmax = 0;
        const float *ws[3] = {p->wq, p->wk, p->wv};
        int rows[3] = {D, D / 2, D / 2};
        for (int i = 0; i < 3; i++)
            for (int r = 0; r < rows[i]; r++) wmax = fmax(wmax, fabs(ws[i][r * D + j]));
        want[j] = pow(am[2][j], 0.6) / pow(wmax, 0.4);
    }
    int32_t tokens[12];
    for (int i = 0; i < 12; i++) tokens[i] = (i * 7 + 3) % cfg.vocab;
    float *before = logits_of(&m, tokens, 12);
    float *scales = malloc((size_t)2 * L * D * sizeof *scales);
    CHECK_OK(llm_smooth_model(&m, am, 0.6f, scales, &err), err);
    double worst_s = 0;
    for (int j = 0; j < D; j++) worst_s = fmax(worst_s, fabs(scales[2 * D + j] - want[j]) / want[j]);
    CHECK_MSG(worst_s < 1e-5, "scales differ from the formula by %.3g", worst_s);
    float *after = logits_of(&m, tokens, 12);
    double worst = 0, mag = 0;
    for (int i = 0; i < 12 * cfg.vocab; i++) {
        worst = fmax(worst, fabs(after[i] - before[i]));
        mag = fmax(mag, fabs(before[i]));
    }
    CHECK_MSG(worst <= 1e-5 * mag + 1e-6, "logits moved by %.3g (max %.3g)", worst, mag);
    /* and the transformation did something: the norms' gains moved */
    CHECK(fabsf(m.p.layers[0].attn_norm[0] - 1.0f) > 1e-3f);
    free(before), free(after), free(absmax), free(scales);
    llm_model_free(&m);
}

static void test_degenerate_channels(void)
{
    llm_error err = {0};
    float w[2 * 3] = {0, 1, 2, 0, -3, 1}, act[3] = {0, 4, 9}, s[3];
    float *ws[1] = {w};
    int rows[1] = {2};
    CHECK_OK(llm_smooth_scales(act, ws, rows, 1, 3, 0.5f, s, &err), err);
    CHECK(s[0] == 1.0f);                                 /* x and W both 0 */
    CHECK_NEAR(s[1], sqrt(4.0) / sqrt(3.0), 1e-6);
    CHECK_NEAR(s[2], sqrt(9.0) / sqrt(2.0), 1e-6);
    act[1] = NAN;
    CHECK(llm_smooth_scales(act, ws, rows, 1, 3, 0.5f, s, &err) == LLM_ERR_FORMAT);
    CHECK(llm_smooth_scales(act, ws, rows, 1, 3, 1.5f, s, &err) == LLM_ERR_ARG);
}

int main(void)
{
    RUN(test_outputs_unchanged);
    RUN(test_degenerate_channels);
    return check_done();
}
