/* Unit tests for lib/grad, the model's backward pass, on what the
 * finite-difference checks elsewhere do not reach (test_model.c checks every
 * base gradient, test_adapter.c every virtual token and LoRA factor
 * gradient, both against central differences of a double-precision loss):
 * - llm_acts.grad_ready: called once after the head and once after each
 *   layer, from the offset where the norm, then each layer's tensors begin
 *   (found here by name), and the floats from there on already hold their
 *   final values, bit for bit, untied and tied;
 * - the gradients are added to what the base and adapter arrays held;
 * - with every target unscored, every gradient is exactly zero;
 * - LoRA on some sites only (the attention's first adapted site not wq):
 *   the same gradients as an adapter on every site whose other sites have
 *   B = 0, which adds nothing (the case test_adapter.c checks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "model.h"

enum { V = 11, L = 2, B = 2, T = 7, P = 2, RANK = 2 };

static void make_model(llm_model *m, int tie)
{
    llm_error err = {0};
    llm_config c = {.vocab = V, .dim = 16, .n_layers = L, .n_heads = 4, .n_kv_heads = 2, .hidden = 24,
                    .seq_len = T, .tie = tie, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_model_init(m, &c, 9, &err), err);
    unsigned long long rng = 31 + (unsigned)tie;
    for (int64_t i = 0; i < m->n_params; i++) m->arena[i] += (float)(0.3 * check_normal(&rng));
}

/* B sequences of T: with virtual tokens, the first P inputs of each are the
 * adapter's (not scored); targets random, or all unscored. */
static void make_ids(int32_t *in, int32_t *tg, int virtual, int scored, unsigned long long seed)
{
    unsigned long long rng = seed;
    for (int n = 0; n < B * T; n++) {
        int t = n % T, is_virtual = virtual && t < P;
        in[n] = is_virtual ? V + t : (int32_t)(check_uniform(&rng) * V);
        tg[n] = scored && !is_virtual ? (int32_t)(check_uniform(&rng) * V) : -1;
    }
}

static float *zeros(int64_t n) { return calloc((size_t)n, sizeof(float)); }

/* ---- grad_ready ---- */

typedef struct ready_log {
    const llm_model *m;
    const float *grad;
    int calls;
    int64_t from[L + 2];
    float *seen[L + 2]; /* grad[from, n_params) when called */
} ready_log;

static void on_ready(void *ctx, int64_t from)
{
    ready_log *log = ctx;
    if (log->calls >= L + 2) return;
    int64_t n = log->m->n_params - from;
    log->from[log->calls] = from;
    log->seen[log->calls] = n > 0 ? malloc((size_t)n * sizeof(float)) : NULL;
    if (n > 0) memcpy(log->seen[log->calls], log->grad + from, (size_t)n * sizeof(float));
    log->calls++;
}

/* Where layer l's tensors begin in the arena: the least offset of any named "layers.l.*". */
static int64_t layer_start(const llm_model *m, int l)
{
    char prefix[32];
    int len = snprintf(prefix, sizeof prefix, "layers.%d.", l);
    int64_t start = -1;
    for (int i = 0; i < m->n_tensors; i++)
        if (!strncmp(m->tensors[i].name, prefix, (size_t)len) && (start < 0 || m->tensors[i].offset < start))
            start = m->tensors[i].offset;
    return start;
}

static void check_grad_ready(int tie)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, tie);
    int32_t in[B * T], tg[B * T];
    make_ids(in, tg, 0, 1, 41);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &m.cfg, B, T, &err), err);
    float *grad = zeros(m.n_params);
    ready_log log = {.m = &m, .grad = grad};
    a.grad_ready = on_ready;
    a.grad_ready_ctx = &log;
    llm_model_forward(&m, &a, in, tg);
    llm_model_backward(&m, &a, grad);
    CHECK_MSG(log.calls == L + 1, "tie %d: %d calls for %d layers", tie, log.calls, L);
    for (int k = 0; k < log.calls && k < L + 1; k++) {
        /* the head first, then layers L-1 .. 0 */
        int64_t want = k == 0 ? llm_model_tensor(&m, "norm")->offset : layer_start(&m, L - k);
        CHECK_MSG(log.from[k] == want, "tie %d, call %d: from %lld, want %lld", tie, k, (long long)log.from[k],
                  (long long)want);
        int64_t n = m.n_params - log.from[k], changed = 0;
        for (int64_t i = 0; i < n; i++) changed += memcmp(&log.seen[k][i], &grad[log.from[k] + i], sizeof(float)) != 0;
        CHECK_MSG(changed == 0, "tie %d, call %d: %lld floats from %lld changed after they were final", tie, k,
                  (long long)changed, (long long)log.from[k]);
    }
    for (int k = 0; k < log.calls; k++) free(log.seen[k]);
    free(grad);
    llm_acts_free(&a);
    llm_model_free(&m);
}

static void test_grad_ready_untied(void) { check_grad_ready(0); }
static void test_grad_ready_tied(void) { check_grad_ready(1); }

/* ---- with an adapter ---- */

/* An adapter with P virtual tokens and LoRA on targets, random factors
 * (B away from zero), attached to m, and acts for it. */
static void make_adapter(llm_adapter *ad, llm_model *m, unsigned targets, llm_acts *a)
{
    llm_error err = {0};
    llm_adapter_config ac = {.n_virtual = P, .rank = RANK, .alpha = 3, .targets = targets};
    CHECK_OK(llm_adapter_init(ad, m, &ac, 13, &err), err);
    unsigned long long rng = 43;
    for (int64_t i = 0; i < ad->n_params; i++) ad->arena[i] += (float)(0.3 * check_normal(&rng));
    CHECK_OK(llm_adapter_attach(m, ad, &err), err);
    CHECK_OK(llm_acts_init(a, &m->cfg, B, T, &err), err);
    CHECK_OK(llm_acts_lora(a, &m->cfg, RANK, &err), err);
}

/* The largest |x[i] - y[i]| - rel |y[i]|, against the largest |y|. */
static void check_close(const char *what, const float *x, const float *y, int64_t n, double rel, double abs_of_max)
{
    double ymax = 0, worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) ymax = fmax(ymax, fabs(y[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - y[i]) - rel * fabs(y[i]);
        if (d > worst || isnan(d)) worst = isnan(d) ? INFINITY : d, at = i;
    }
    CHECK_MSG(ymax > 0, "%s: all zero, nothing compared", what);
    CHECK_MSG(worst <= abs_of_max * ymax, "%s[%lld]: %.9g, want %.9g (max %g)", what, (long long)at, x[at], y[at], ymax);
}

/* A model with an adapter on every site, acts for both, and ids. */
typedef struct fixture {
    llm_model m;
    llm_adapter ad;
    llm_acts a;
    int32_t in[B * T], tg[B * T];
} fixture;

static void fixture_init(fixture *f, int tie, int scored, unsigned long long seed)
{
    make_model(&f->m, tie);
    make_adapter(&f->ad, &f->m, LLM_LORA_ALL, &f->a);
    make_ids(f->in, f->tg, 1, scored, seed);
}

static void fixture_free(fixture *f)
{
    llm_acts_free(&f->a);
    llm_adapter_detach(&f->m);
    llm_adapter_free(&f->ad);
    llm_model_free(&f->m);
}

/* A second backward pass into arrays already holding R: R + the gradient. */
static void test_accumulates(void)
{
    fixture f;
    fixture_init(&f, 0, 1, 47);
    int64_t n = f.m.n_params, an = f.ad.n_params;
    float *g0 = zeros(n), *ag0 = zeros(an), *g = zeros(n), *ag = zeros(an), *want = zeros(n), *awant = zeros(an);
    llm_model_forward(&f.m, &f.a, f.in, f.tg);
    llm_model_backward_adapter(&f.m, &f.a, g0, ag0);
    unsigned long long rng = 53;
    for (int64_t i = 0; i < n; i++) g[i] = (float)check_normal(&rng), want[i] = g[i] + g0[i];
    for (int64_t i = 0; i < an; i++) ag[i] = (float)check_normal(&rng), awant[i] = ag[i] + ag0[i];
    llm_model_forward(&f.m, &f.a, f.in, f.tg);
    llm_model_backward_adapter(&f.m, &f.a, g, ag);
    /* each float: R plus a sum of a few dozen terms, rounded along the way */
    check_close("base", g, want, n, 1e-5, 1e-5);
    check_close("adapter", ag, awant, an, 1e-5, 1e-5);
    free(g0), free(ag0), free(g), free(ag), free(want), free(awant);
    fixture_free(&f);
}

/* No scored target: the loss is constant, every gradient exactly 0. */
static void test_unscored(void)
{
    fixture f;
    fixture_init(&f, 1, 0, 59);
    float *g = zeros(f.m.n_params), *ag = zeros(f.ad.n_params);
    float loss = llm_model_forward(&f.m, &f.a, f.in, f.tg);
    llm_model_backward_adapter(&f.m, &f.a, g, ag);
    int64_t nonzero = 0;
    for (int64_t i = 0; i < f.m.n_params; i++) nonzero += g[i] != 0;
    for (int64_t i = 0; i < f.ad.n_params; i++) nonzero += ag[i] != 0;
    CHECK_MSG(loss == 0 && nonzero == 0, "loss %g, %lld gradients not 0", loss, (long long)nonzero);
    free(g), free(ag);
    fixture_free(&f);
}

/* Forward and backward of m with ad attached: the loss, and both gradients
 * into fresh arrays. */
static float run_with(llm_model *m, llm_adapter *ad, llm_acts *a, const int32_t *in, const int32_t *tg, float **g,
                      float **ag)
{
    llm_error err = {0};
    CHECK_OK(llm_adapter_attach(m, ad, &err), err);
    *g = zeros(m->n_params);
    *ag = zeros(ad->n_params);
    float loss = llm_model_forward(m, a, in, tg);
    llm_model_backward_adapter(m, a, *g, *ag);
    llm_adapter_detach(m);
    return loss;
}

static void check_sites(unsigned targets)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, 0);
    llm_adapter full, part;
    llm_acts a;
    make_adapter(&full, &m, LLM_LORA_ALL, &a);
    llm_adapter_detach(&m);
    llm_adapter_config pc = {.n_virtual = P, .rank = RANK, .alpha = 3, .targets = targets};
    CHECK_OK(llm_adapter_init(&part, &m, &pc, 13, &err), err);
    /* part: full's values where it has factors; full: B = 0 everywhere else */
    memcpy(part.arena + part.virt, full.arena + full.virt, sizeof(float) * P * (size_t)m.cfg.dim);
    for (int i = 0; i < L * LLM_LIN_PER_LAYER; i++) {
        const llm_lora_site *f = &full.sites[i], *p = &part.sites[i];
        size_t na = (size_t)RANK * (size_t)f->in, nb = (size_t)f->out * RANK;
        if (p->a < 0) {
            memset(full.arena + f->b, 0, nb * sizeof(float));
            continue;
        }
        memcpy(part.arena + p->a, full.arena + f->a, na * sizeof(float));
        memcpy(part.arena + p->b, full.arena + f->b, nb * sizeof(float));
    }
    int32_t in[B * T], tg[B * T];
    make_ids(in, tg, 1, 1, 61);
    float *gf, *agf, *gp, *agp;
    float lf = run_with(&m, &full, &a, in, tg, &gf, &agf);
    float lp = run_with(&m, &part, &a, in, tg, &gp, &agp);
    CHECK_NEAR(lp, lf, 1e-6 * fabs(lf));
    check_close("base", gp, gf, m.n_params, 1e-6, 1e-6);
    check_close("virtual", agp + part.virt, agf + full.virt, P * m.cfg.dim, 1e-6, 1e-6);
    for (int i = 0; i < L * LLM_LIN_PER_LAYER; i++) {
        const llm_lora_site *f = &full.sites[i], *p = &part.sites[i];
        if (p->a < 0) continue;
        char what[64];
        snprintf(what, sizeof what, "targets %#x, linear %d, A", targets, i);
        check_close(what, agp + p->a, agf + f->a, (int64_t)RANK * f->in, 1e-6, 1e-6);
        what[strlen(what) - 1] = 'B';
        check_close(what, agp + p->b, agf + f->b, (int64_t)f->out * RANK, 1e-6, 1e-6);
    }
    free(gf), free(agf), free(gp), free(agp);
    llm_acts_free(&a);
    llm_adapter_free(&full);
    llm_adapter_free(&part);
    llm_model_free(&m);
}

static void test_lora_some_sites(void)
{
    check_sites(1u << LLM_LIN_WV | 1u << LLM_LIN_W2);
    check_sites(1u << LLM_LIN_WK | 1u << LLM_LIN_WO);
    check_sites(1u << LLM_LIN_W3);
}

int main(void)
{
    RUN(test_grad_ready_untied);
    RUN(test_grad_ready_tied);
    RUN(test_accumulates);
    RUN(test_unscored);
    RUN(test_lora_some_sites);
    return check_done();
}
