/* Unit tests for lib/model and lib/grad: the whole model's loss against the
 * independent double-precision forward pass of ref_model.c, and every
 * gradient of every parameter tensor against central finite differences of
 * that double-precision loss; the check of token ids against the rule
 * written out here; greedy decoding on logits that are NaN, and out of
 * memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "model.h"
#include "nomem.h"
#include "ref_model.h"

typedef struct setup {
    llm_model m;
    int B, T;
    int32_t in[64], tg[64];
} setup;

static void make(setup *s, int tie, int window, int kv_heads)
{
    llm_error err = {0};
    llm_config c = {.vocab = 11, .dim = 16, .n_layers = 2, .n_heads = 4, .n_kv_heads = kv_heads,
                    .hidden = 24, .seq_len = 12, .tie = tie, .window = window, .norm_eps = 1e-5f,
                    .rope_theta = 10000.0f};
    CHECK_OK(llm_model_init(&s->m, &c, 5, &err), err);
    unsigned long long rng = 77 + (unsigned)tie;
    /* weights far from zero, so every nonlinearity is exercised */
    for (int64_t i = 0; i < s->m.n_params; i++) s->m.arena[i] = (float)(0.4 * check_normal(&rng));
    for (int i = 0; i < s->m.n_tensors; i++)
        if (s->m.tensors[i].shape.ndim == 1)
            for (int64_t j = 0; j < s->m.tensors[i].count; j++)
                s->m.arena[s->m.tensors[i].offset + j] += 1.0f;
    s->B = 2;
    s->T = 9;
    for (int n = 0; n < s->B * s->T; n++) {
        s->in[n] = (int32_t)(check_uniform(&rng) * 11);
        s->tg[n] = n % 7 == 3 ? -1 : (int32_t)(check_uniform(&rng) * 11); /* some ignored */
    }
}

static void check_model(int tie, int window, int kv_heads)
{
    llm_error err = {0};
    setup s;
    make(&s, tie, window, kv_heads);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &s.m.cfg, s.B, s.T, &err), err);
    float loss = llm_model_forward(&s.m, &a, s.in, s.tg);
    float *grad = calloc((size_t)s.m.n_params, sizeof *grad);
    llm_model_backward(&s.m, &a, grad);

    double *w = malloc(sizeof(double) * (size_t)s.m.n_params);
    for (int64_t i = 0; i < s.m.n_params; i++) w[i] = s.m.arena[i];
    ref_model r = {&s.m, NULL, w, NULL};
    double ref_l = ref_model_loss(&r, s.in, s.tg, s.B, s.T);
    /* float32 forward vs double: ~1e-6 relative rounding over a few hundred
     * operations per value */
    CHECK_NEAR(loss, ref_l, 2e-5 * fabs(ref_l));
    ref_model_check_base_gradient(&r, grad, s.in, s.tg, s.B, s.T);
    free(w);
    free(grad);
    llm_acts_free(&a);
    llm_model_free(&s.m);
}

static void test_gradients_untied_full_gqa(void) { check_model(0, 0, 2); }
static void test_gradients_tied_window(void) { check_model(1, 4, 4); }
static void test_gradients_mqa(void) { check_model(0, 0, 1); }

static void test_config_errors(void)
{
    llm_error err = {0};
    llm_config good = {.vocab = 258, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                       .hidden = 128, .seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_config_check(&good, &err), err);
    llm_config c = good;
    c.n_heads = 5;
    CHECK(llm_config_check(&c, &err) < 0 && strstr(err.msg, "not divisible by heads"));
    c = good;
    c.dim = 36, c.n_heads = 4, c.n_kv_heads = 4; /* head size 9 */
    CHECK(llm_config_check(&c, &err) < 0 && strstr(err.msg, "odd"));
    c = good;
    c.n_kv_heads = 3;
    CHECK(llm_config_check(&c, &err) < 0 && strstr(err.msg, "kv-heads"));
    c = good;
    c.n_layers = 0;
    CHECK(llm_config_check(&c, &err) < 0 && strstr(err.msg, "layers 0"));
}

/* A pass counts its B*T tokens in an int: more are refused before any
 * allocation; the RoPE table the acts carry covers exactly their T positions. */
static void test_acts_limits(void)
{
    llm_error err = {0};
    llm_config c = {.vocab = 258, .dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2,
                    .hidden = 8, .seq_len = 1 << 20, .norm_eps = 1e-5f, .rope_theta = 10000};
    llm_acts a;
    CHECK(llm_acts_init(&a, &c, 1 << 16, 1 << 15, &err) == LLM_ERR_LIMIT);
    CHECK_MSG(strstr(err.msg, "batch 65536 x seq 32768 is 2147483648 tokens in one pass, more than 2147483647"),
              "%s", err.msg);
    CHECK(!a.x && !a.inputs && !a.rope.cos);
    CHECK_OK(llm_acts_init(&a, &c, 2, 24, &err), err);
    CHECK(a.rope.n_pos == 24 && a.rope.max_pos == 24 && a.rope.head_dim == 4);
    llm_acts_free(&a);
}

static void test_layout(void)
{
    llm_error err = {0};
    llm_model m;
    llm_config c = {.vocab = 258, .dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                    .hidden = 96, .seq_len = 32, .tie = 0, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_model_init(&m, &c, 1, &err), err);
    int64_t per_layer = 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 64 + 3 * 96 * 64;
    CHECK(m.n_params == 2 * 258 * 64 + 2 * per_layer + 64);
    CHECK(m.n_tensors == 1 + 9 * 2 + 2);
    const llm_param_tensor *wk = llm_model_tensor(&m, "layers.1.attn.wk");
    CHECK(wk && wk->shape.dim[0] == 32 && wk->shape.dim[1] == 64);
    CHECK(m.p.layers[1].wk == m.arena + wk->offset);
    CHECK(m.spans[0].decay == 1 && m.spans[1].decay == 0); /* tok_emb 2-D, norm 1-D */
    llm_model_free(&m);
}

/* llm_model_check_ids on every stretch of a list of ids, for every set of
 * allowances, without an adapter, with a LoRA-only one (no virtual tokens)
 * and with a prompt-tuning one of 2, against the rule itself: 0..V-1; the
 * virtual ids V..V+P-1 only when allowed; negatives only as unscored
 * targets.  The first id that breaks it is named by its place from 1. */
static void test_check_ids(void)
{
    llm_error err = {0};
    llm_config c = {.vocab = 10, .dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2, .hidden = 8,
                    .seq_len = 8, .tie = 1, .norm_eps = 1e-5f, .rope_theta = 10000};
    llm_model m;
    CHECK_OK(llm_model_init(&m, &c, 1, &err), err);
    const int32_t ids[] = {0, 9, 3, 10, 11, 12, -1, -7, 257, INT32_MAX, INT32_MIN, 5};
    const int n = (int)(sizeof ids / sizeof ids[0]);
    const llm_adapter_config kinds[3] = {{0}, {.rank = 1, .alpha = 1, .targets = LLM_LORA_ALL}, {.n_virtual = 2}};
    for (int k = 0; k < 3; k++) {
        llm_adapter ad;
        if (k) {
            CHECK_OK(llm_adapter_init(&ad, &m, &kinds[k], 2, &err), err);
            CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
        }
        int P = kinds[k].n_virtual;
        for (unsigned allow = 0; allow < 4; allow++)
            for (int from = 0; from < n; from++)
                for (int len = 0; from + len <= n; len++) {
                    const int32_t *x = ids + from;
                    int want = -1; /* the first id the rule refuses */
                    for (int i = 0; i < len && want < 0; i++) {
                        int ok = (x[i] >= 0 && x[i] < 10) ||
                                 ((allow & LLM_IDS_VIRTUAL) && x[i] >= 10 && x[i] < 10 + P) ||
                                 ((allow & LLM_IDS_UNSCORED) && x[i] < 0);
                        if (!ok) want = i;
                    }
                    int rc = llm_model_check_ids(&m, x, len, allow, &err);
                    if (want < 0) {
                        CHECK_MSG(rc == 0, "adapter %d allow %u ids %d+%d: %s", k, allow, from, len, err.msg);
                        continue;
                    }
                    char expect[96];
                    snprintf(expect, sizeof expect, "token %d of %d: id %d outside the vocabulary (0..9", want + 1,
                             len, (int)x[want]);
                    CHECK_MSG(rc == LLM_ERR_ARG && !strncmp(err.msg, expect, strlen(expect)),
                              "adapter %d allow %u ids %d+%d: rc %d '%s', want '%s...'", k, allow, from, len, rc,
                              err.msg, expect);
                }
        if (k) {
            llm_adapter_detach(&m);
            llm_adapter_free(&ad);
        }
    }
    llm_model_free(&m);
}

/* Greedy decoding on logits that are NaN (one NaN logit makes the whole
 * softmax row NaN): every id it gives is still one of the vocabulary.  No
 * memory for its window: LLM_ERR_NOMEM. */
static void test_greedy_nan(void)
{
    llm_error err = {0};
    llm_config c = {.vocab = 10, .dim = 8, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2, .hidden = 8,
                    .seq_len = 8, .tie = 0, .norm_eps = 1e-5f, .rope_theta = 10000};
    llm_model m;
    CHECK_OK(llm_model_init(&m, &c, 1, &err), err);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &m.cfg, 1, 8, &err), err);
    for (int last = 7; last <= 9; last += 2) {
        for (int v = 7; v <= last; v++) m.p.cls[v * 8] = NAN; /* logit 7, then 7..9, NaN */
        const int32_t prompt[2] = {4, 5};
        int32_t out[4] = {-2, -2, -2, -2};
        int made = llm_model_greedy(&m, &a, prompt, 2, 4, out, &err);
        CHECK(made >= 1 && made <= 4);
        for (int i = 0; i < made; i++) CHECK_MSG(out[i] >= 0 && out[i] < 10, "token %d is %d", i, (int)out[i]);
    }
    nomem_fail(1); /* its window: an error, not 0 tokens made */
    int made = llm_model_greedy(&m, &a, (const int32_t[]){4, 5}, 2, 4, (int32_t[4]){0}, &err);
    nomem_fail(0);
    CHECK_MSG(made == LLM_ERR_NOMEM && strstr(err.msg, "out of memory"), "%d %s", made, err.msg);
    llm_acts_free(&a);
    llm_model_free(&m);
}

int main(void)
{
    RUN(test_check_ids);
    RUN(test_greedy_nan);
    RUN(test_config_errors);
    RUN(test_layout);
    RUN(test_acts_limits);
    RUN(test_gradients_untied_full_gqa);
    RUN(test_gradients_tied_window);
    RUN(test_gradients_mqa);
    return check_done();
}
