/* Unit tests for lib/adapter, lib/lora, lib/examples and the adapter paths of
 * lib/model, lib/grad, lib/train and lib/infer: the loss of a model with
 * virtual tokens and LoRA factors against the independent double-precision
 * forward pass of ref_model.c, the gradient of every virtual token and every
 * LoRA factor against central finite differences of that loss, the frozen
 * base bit-identical after training, the KV-cache inference with an adapter
 * against the training forward, merging, the stream round trip, an adapter
 * refused on another base, and the training state in the stream (round trip,
 * and every way a malformed one is refused); and QLoRA: the same gradient
 * check on an int4 base whose reference uses llm_dequantize's weights, the block-wise
 * dequantized products against double-precision ones, the int codes
 * bit-identical after training, and the base's identity by its codes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "check.h"
#include "examples.h"
#include "infer.h"
#include "model.h"
#include "model_internal.h"
#include "quant.h"
#include "ref_model.h"
#include "train.h"

/* ---- fixtures ---- */

static void make_base(llm_model *m, int dim, int kv_heads, int seq)
{
    llm_error err = {0};
    llm_config c = {.vocab = 13, .dim = dim, .n_layers = 2, .n_heads = 4, .n_kv_heads = kv_heads,
                    .hidden = dim * 3 / 2, .seq_len = seq, .tie = 0, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_model_init(m, &c, 3, &err), err);
    unsigned long long rng = 5;
    for (int64_t i = 0; i < m->n_params; i++) m->arena[i] += (float)(0.3 * check_normal(&rng));
}

/* An adapter with every site, and B away from zero (a trained adapter), so
 * every factor's gradient is exercised. */
static void make_adapter(llm_adapter *ad, const llm_model *m, int n_virtual, int rank)
{
    llm_error err = {0};
    llm_adapter_config ac = {.n_virtual = n_virtual, .rank = rank, .alpha = 6, .targets = LLM_LORA_ALL};
    CHECK_OK(llm_adapter_init(ad, m, &ac, 11, &err), err);
    unsigned long long rng = 17;
    for (int64_t i = 0; i < ad->n_params; i++) ad->arena[i] += (float)(0.3 * check_normal(&rng));
}

/* ---- tests ---- */

/* T inputs: the first n_virtual the virtual tokens V, V+1, ..., the rest
 * random ids; T targets, the first n_masked -1 (not scored), the rest random. */
static void random_tokens(int32_t *in, int32_t *tg, int T, int V, int n_virtual, int n_masked,
                          unsigned long long seed)
{
    unsigned long long rng = seed;
    for (int t = 0; t < T; t++) {
        in[t] = t < n_virtual ? V + t : (int32_t)(check_uniform(&rng) * V);
        tg[t] = t < n_masked ? -1 : (int32_t)(check_uniform(&rng) * V);
    }
}

/* An adapter (make_adapter's, n_virtual tokens, LoRA rank rank) attached to
 * m, and its forward and backward pass on GRAD_T random ids (seed; the first
 * n_masked targets unscored; a quantized base's kernels get their buffers):
 * the loss, the adapter's gradient, and its weights in double for a
 * ref_model. */
enum { GRAD_T = 10 };
typedef struct adapter_pass {
    llm_adapter ad;
    llm_acts a;
    int32_t in[GRAD_T], tg[GRAD_T];
    float loss, *agrad;
    double *aw;
} adapter_pass;

static void adapter_pass_run(adapter_pass *p, llm_model *m, int n_virtual, int rank, int n_masked,
                             unsigned long long seed)
{
    llm_error err = {0};
    make_adapter(&p->ad, m, n_virtual, rank);
    CHECK_OK(llm_adapter_attach(m, &p->ad, &err), err);
    random_tokens(p->in, p->tg, GRAD_T, m->cfg.vocab, n_virtual, n_masked, seed);
    CHECK_OK(llm_acts_init(&p->a, &m->cfg, 1, GRAD_T, &err), err);
    CHECK_OK(llm_acts_lora(&p->a, &m->cfg, p->ad.cfg.rank, &err), err);
    if (m->lin[0].q) CHECK_OK(llm_acts_quant(&p->a, m, &err), err);
    p->loss = llm_model_forward(m, &p->a, p->in, p->tg);
    p->agrad = calloc((size_t)p->ad.n_params, sizeof *p->agrad);
    llm_model_backward_adapter(m, &p->a, NULL, p->agrad);
    p->aw = malloc(sizeof(double) * (size_t)p->ad.n_params);
    for (int64_t i = 0; i < p->ad.n_params; i++) p->aw[i] = p->ad.arena[i];
}

static void adapter_pass_free(adapter_pass *p)
{
    free(p->agrad), free(p->aw);
    llm_acts_free(&p->a);
    llm_adapter_free(&p->ad);
}

static void test_gradients(void)
{
    llm_model m;
    make_base(&m, 16, 2, 12);
    adapter_pass p;
    adapter_pass_run(&p, &m, 3, 3, 2, 23);
    double *w = malloc(sizeof(double) * (size_t)m.n_params);
    for (int64_t i = 0; i < m.n_params; i++) w[i] = m.arena[i];
    ref_model r = {&m, &p.ad, w, p.aw};
    double ref_l = ref_model_loss(&r, p.in, p.tg, 1, GRAD_T);
    CHECK_NEAR(p.loss, ref_l, 2e-5 * fabs(ref_l));
    ref_model_check_adapter_gradient(&r, p.agrad, p.in, p.tg, 1, GRAD_T);
    /* the frozen-base backward gives the same adapter gradient as the full one */
    float *agrad2 = calloc((size_t)p.ad.n_params, sizeof *agrad2), *grad = calloc((size_t)m.n_params, sizeof *grad);
    llm_model_forward(&m, &p.a, p.in, p.tg);
    llm_model_backward_adapter(&m, &p.a, grad, agrad2);
    double most = 0;
    for (int64_t i = 0; i < p.ad.n_params; i++) most = fmax(most, fabs(agrad2[i] - p.agrad[i]));
    CHECK_MSG(most == 0, "adapter gradient with and without the base's differs by %g", most);
    free(w), free(agrad2), free(grad);
    adapter_pass_free(&p);
    llm_model_free(&m);
}

/* Trains an adapter for a few steps: the base arena stays bit for bit, the
 * adapter moves, the loss falls, and the state is adapter-sized. */
static void check_frozen_training(int n_virtual, int rank, int examples)
{
    llm_error err = {0};
    llm_model m;
    make_base(&m, 16, 4, 24);
    float *before = malloc((size_t)m.n_params * sizeof *before);
    memcpy(before, m.arena, (size_t)m.n_params * sizeof *before);
    llm_adapter ad;
    llm_adapter_config ac = {.n_virtual = n_virtual, .rank = rank, .alpha = 2 * rank, .targets = LLM_LORA_ALL};
    CHECK_OK(llm_adapter_init(&ad, &m, &ac, 1, &err), err);
    float *ad0 = malloc((size_t)ad.n_params * sizeof *ad0);
    memcpy(ad0, ad.arena, (size_t)ad.n_params * sizeof *ad0);
    CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
    llm_tok tok;
    llm_tok_bytes(&tok);
    /* 13-token vocabulary: text over 'a'..'l' won't do with the byte
     * tokenizer, so the corpus is made of token ids directly */
    llm_data d = {0};
    llm_examples ex = {0};
    int T = 12;
    if (examples) {
        ex.T = T, ex.n = ex.n_train = 8;
        ex.inputs = malloc(sizeof(int32_t) * 8 * T), ex.targets = malloc(sizeof(int32_t) * 8 * T);
        for (int e = 0; e < 8; e++)
            for (int t = 0; t < T; t++) {
                ex.inputs[e * T + t] = (e + t) % 12;
                ex.targets[e * T + t] = t == 5 ? e % 2 : -1; /* a "label" at position 5 */
            }
    } else {
        d.n_tokens = 400, d.n_train = 360, d.n_bytes = 400;
        d.tokens = malloc(sizeof(int32_t) * 400);
        for (int i = 0; i < 400; i++) d.tokens[i] = (i * 7 + i / 5) % 12;
    }
    llm_ckpt_train st = {.batch = 4, .seq = T, .accum = 1, .seed = 1};
    llm_optim_defaults(&st.optim, LLM_OPTIM_ADAMW);
    st.optim.lr = 0.05f, st.optim.min_lr = 0.05f, st.optim.steps = 30, st.optim.weight_decay = 0;
    llm_rng_seed(&st.rng, 9);
    llm_trainer t;
    if (examples) CHECK_OK(llm_trainer_init_examples(&t, &m, &ex, &st, NULL, &err), err);
    else CHECK_OK(llm_trainer_init(&t, &m, &d, &st, NULL, &err), err);
    CHECK(t.n_train == ad.n_params && t.optim.n == ad.n_params);
    CHECK(t.acts.T == n_virtual + T);
    float first = 0, last = 0;
    for (int s = 0; s < 30; s++) {
        llm_step_stats ss = {0};
        CHECK_OK(llm_trainer_step(&t, &ss, &err), err);
        if (s == 0) first = ss.loss;
        last = ss.loss;
    }
    CHECK_MSG(last < 0.8 * first, "loss %g -> %g: the adapter did not learn", first, last);
    CHECK_MSG(!memcmp(before, m.arena, (size_t)m.n_params * sizeof *before), "the frozen base changed");
    int moved = 0;
    for (int64_t i = 0; i < ad.n_params; i++) moved += ad.arena[i] != ad0[i];
    CHECK_MSG(moved > ad.n_params / 2, "only %d of %lld adapter floats moved", moved, (long long)ad.n_params);
    llm_trainer_free(&t);
    llm_data_free(&d);
    llm_examples_free(&ex);
    free(before), free(ad0);
    llm_adapter_free(&ad);
    llm_model_free(&m);
}

static void test_frozen_base_prompt(void) { check_frozen_training(4, 0, 0); }
static void test_frozen_base_lora(void) { check_frozen_training(0, 4, 0); }
static void test_frozen_base_lora_examples(void) { check_frozen_training(2, 2, 1); }

/* The logits of the model without its LoRA factors (the virtual tokens
 * stay): how much the adapter moves the probabilities, into a->probs. */
static void forward_without_lora(llm_model *m, llm_acts *a, const int32_t *tok)
{
    int n = llm_linear_count(m->cfg.n_layers);
    llm_linear *with_lora = malloc(sizeof *with_lora * (size_t)n);
    memcpy(with_lora, m->lin, sizeof *with_lora * (size_t)n);
    for (int i = 0; i < n; i++) m->lin[i].lora_a = NULL;
    llm_model_forward(m, a, tok, NULL);
    memcpy(m->lin, with_lora, sizeof *with_lora * (size_t)n);
    free(with_lora);
}

/* max |x[i] - y[i]| over n floats */
static double largest_difference(const float *x, const float *y, size_t n)
{
    double most = 0;
    for (size_t i = 0; i < n; i++) most = fmax(most, fabs(x[i] - y[i]));
    return most;
}

/* The KV-cache path (a prefill, then one token at a time, on one thread
 * (dim 32) and split among threads (dim 256)) against the training forward,
 * both with virtual tokens and LoRA.  The two sum in different orders, so
 * they agree to float rounding: within 1e-4 in every probability, and within
 * 1% of how far the LoRA factors move them (a path that dropped or doubled
 * the factors would be off by about all of it). */
static void check_infer(int dim)
{
    llm_error err = {0};
    llm_model m;
    make_base(&m, dim, 2, 20);
    llm_adapter ad;
    make_adapter(&ad, &m, 2, 4);
    CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
    int T = 20, V = m.cfg.vocab;
    int32_t tok[20];
    unsigned long long rng = 31;
    for (int i = 0; i < T; i++) tok[i] = i < 2 ? V + i : (int32_t)(check_uniform(&rng) * V);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &m.cfg, 1, T, &err), err);
    CHECK_OK(llm_acts_lora(&a, &m.cfg, ad.cfg.rank, &err), err);
    forward_without_lora(&m, &a, tok);
    float *plain = malloc(sizeof(float) * (size_t)T * V);
    memcpy(plain, a.probs, sizeof(float) * (size_t)T * V);
    llm_model_forward(&m, &a, tok, NULL);
    llm_infer s;
    llm_infer_opts o = {.ctx = T};
    CHECK_OK(llm_infer_init(&s, &m, &o, &err), err);
    int first = 7;
    CHECK_OK(llm_infer_feed(&s, tok, first, 1, &err), err);
    double worst = 0, effect = largest_difference(plain, a.probs, (size_t)T * V);
    for (int t = 0; t < T; t++) {
        if (t >= first) CHECK_OK(llm_infer_feed(&s, tok + t, 1, 0, &err), err);
        const float *z = t < first ? s.logits + (size_t)t * V : s.last;
        worst = ref_softmax_gap(worst, z, a.probs + (size_t)t * V, V);
    }
    CHECK_MSG(worst < 1e-4 && worst < 0.01 * effect, "dim %d: probabilities differ by %g; the LoRA factors move them by %g",
              dim, worst, effect);
    free(plain);
    llm_infer_free(&s);
    llm_acts_free(&a);
    llm_adapter_free(&ad);
    llm_model_free(&m);
}

static void test_infer_small(void) { check_infer(32); }
static void test_infer_threads(void) { check_infer(256); }

/* The merged model's forward equals the adapted one up to rounding. */
static void test_merge(void)
{
    llm_error err = {0};
    llm_model m;
    make_base(&m, 16, 2, 12);
    llm_adapter ad;
    make_adapter(&ad, &m, 0, 3);
    int T = 12;
    int32_t in[12], tg[12];
    for (int t = 0; t < T; t++) in[t] = (t * 5) % 13, tg[t] = (t * 3 + 1) % 13;
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &m.cfg, 1, T, &err), err);
    CHECK_OK(llm_acts_lora(&a, &m.cfg, ad.cfg.rank, &err), err);
    float base_loss = llm_model_forward(&m, &a, in, tg);
    CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
    float adapted = llm_model_forward(&m, &a, in, tg);
    llm_adapter_detach(&m);
    CHECK_OK(llm_adapter_merge(&m, &ad, &err), err);
    float merged = llm_model_forward(&m, &a, in, tg);
    CHECK_MSG(fabs(adapted - base_loss) > 1e-2, "the adapter changes nothing (%g vs %g)", adapted, base_loss);
    CHECK_NEAR(merged, adapted, 1e-5 * fabs(adapted));
    llm_adapter pt;
    make_adapter(&pt, &m, 2, 0);
    CHECK(llm_adapter_merge(&m, &pt, &err) < 0 && strstr(err.msg, "cannot be folded"));
    llm_adapter_free(&pt);
    llm_acts_free(&a);
    llm_adapter_free(&ad);
    llm_model_free(&m);
}

static void test_stream_and_identity(void)
{
    llm_error err = {0};
    llm_model m;
    make_base(&m, 16, 2, 12);
    llm_adapter ad, back;
    llm_adapter_config ac = {.n_virtual = 2, .rank = 2, .alpha = 4, .targets = (1u << LLM_LIN_WQ) | (1u << LLM_LIN_W2)};
    CHECK_OK(llm_adapter_init(&ad, &m, &ac, 1, &err), err);
    char path[512];
    snprintf(path, sizeof path, "%s/a.llmt", check_tmpdir());
    CHECK_OK(llm_adapter_save(path, &ad, NULL, NULL, &err), err);
    CHECK_OK(llm_adapter_load(path, &back, &err), err);
    CHECK(back.n_params == ad.n_params && back.n_tensors == 2 * 2 * 2 + 1);
    CHECK(back.cfg.targets == ac.targets && back.cfg.alpha == 4 && back.base_hash == ad.base_hash);
    CHECK(!memcmp(back.arena, ad.arena, (size_t)ad.n_params * sizeof(float)));
    CHECK_OK(llm_adapter_attach(&m, &back, &err), err);
    llm_adapter_detach(&m);
    /* one weight changed by one ulp: another base */
    m.arena[m.n_params / 2] = nextafterf(m.arena[m.n_params / 2], 1.0f);
    CHECK(llm_adapter_attach(&m, &back, &err) < 0 && strstr(err.msg, "another base model"));
    CHECK(m.adapter == NULL);
    llm_model other;
    make_base(&other, 32, 2, 12);
    CHECK(llm_adapter_attach(&other, &back, &err) < 0 && strstr(err.msg, "another architecture"));
    llm_model_free(&other);
    unsigned targets;
    CHECK_OK(llm_adapter_parse_targets("wq,w2", &targets, &err), err);
    CHECK(targets == ac.targets);
    CHECK(llm_adapter_parse_targets("wq,wz", &targets, &err) < 0 && strstr(err.msg, "wz"));
    /* a truncated adapter is refused with a message, not half-loaded */
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    CHECK(ftruncate(fileno(f), size / 2) == 0);
    fclose(f);
    llm_adapter bad;
    CHECK(llm_adapter_load(path, &bad, &err) < 0 && strstr(err.msg, path));
    llm_adapter_free(&back);
    llm_adapter_free(&ad);
    llm_model_free(&m);
}

/* ---- the training state in the stream ---- */

/* An adapter (2 virtual tokens, LoRA rank 2 on wq and w2) for a base of
 * context 12, an optimizer of kind with random moments (v >= 0) at step 7,
 * and a training state with every field away from its default. */
static void make_state(llm_model *m, llm_adapter *ad, llm_optim *o, llm_ckpt_train *st, llm_optim_kind kind)
{
    llm_error err = {0};
    make_base(m, 16, 2, 12);
    llm_adapter_config ac = {.n_virtual = 2, .rank = 2, .alpha = 4, .targets = (1u << LLM_LIN_WQ) | (1u << LLM_LIN_W2)};
    CHECK_OK(llm_adapter_init(ad, m, &ac, 1, &err), err);
    *st = (llm_ckpt_train){.step = 7, .tokens = 1234, .batch = 3, .seq = 10, .accum = 2, .seed = 42,
                           .data_hash = 0x0123456789abcdefull, .val_frac = 0.1};
    llm_optim_defaults(&st->optim, kind);
    st->optim.lr = 0.003f, st->optim.min_lr = 0.0007f, st->optim.warmup = 3, st->optim.steps = 20;
    st->optim.weight_decay = 0.01f, st->optim.clip = 0.5f;
    llm_rng_seed(&st->rng, 99);
    llm_rng_next(&st->rng);
    CHECK_OK(llm_optim_init(o, &st->optim, ad->n_params, &err), err);
    o->t = 7;
    unsigned long long rng = 23;
    for (int64_t i = 0; i < o->n; i++) {
        o->m[i] = (float)check_normal(&rng);
        if (o->v) o->v[i] = (float)fabs(check_normal(&rng));
    }
}

static void check_same_state(const llm_ckpt_train *a, const llm_ckpt_train *b)
{
    CHECK(a->step == b->step && a->tokens == b->tokens && a->batch == b->batch && a->seq == b->seq &&
          a->accum == b->accum && a->seed == b->seed && a->data_hash == b->data_hash && a->val_frac == b->val_frac);
    CHECK(!memcmp(a->rng.s, b->rng.s, sizeof a->rng.s));
    const llm_optim_config *x = &a->optim, *y = &b->optim;
    CHECK(x->kind == y->kind && x->lr == y->lr && x->min_lr == y->min_lr && x->warmup == y->warmup &&
          x->steps == y->steps && x->beta1 == y->beta1 && x->beta2 == y->beta2 && x->eps == y->eps &&
          x->weight_decay == y->weight_decay && x->clip == y->clip);
}

/* Saved with its optimizer state and training state, an adapter comes back
 * with every moment, the step and the generator bit for bit; without them,
 * it loads with none (and still runs). */
static void check_state_round_trip(llm_optim_kind kind)
{
    llm_error err = {0};
    llm_model m;
    llm_adapter ad, back;
    llm_optim o, o2;
    llm_ckpt_train st, st2;
    make_state(&m, &ad, &o, &st, kind);
    char path[512];
    snprintf(path, sizeof path, "%s/state.llmt", check_tmpdir());
    CHECK_OK(llm_adapter_save(path, &ad, &o, &st, &err), err);
    int has = 0;
    CHECK_OK(llm_adapter_load_train(path, &back, &o2, &st2, &has, &err), err);
    CHECK(has == 1 && o2.n == ad.n_params && o2.t == 7);
    CHECK(!memcmp(back.arena, ad.arena, (size_t)ad.n_params * sizeof(float)));
    CHECK(o2.m && !memcmp(o2.m, o.m, (size_t)o.n * sizeof(float)));
    CHECK(!o.v == !o2.v && (!o.v || !memcmp(o2.v, o.v, (size_t)o.n * sizeof(float))));
    check_same_state(&st, &st2);
    llm_optim_free(&o2);
    llm_adapter_free(&back);
    CHECK_OK(llm_adapter_load(path, &back, &err), err); /* for running: the state is left out */
    CHECK(!memcmp(back.arena, ad.arena, (size_t)ad.n_params * sizeof(float)));
    llm_adapter_free(&back);
    /* an adapter saved without a state (as before adapters had one) */
    CHECK_OK(llm_adapter_save(path, &ad, NULL, NULL, &err), err);
    has = 1;
    CHECK_OK(llm_adapter_load_train(path, &back, &o2, &st2, &has, &err), err);
    CHECK(has == 0 && !o2.m && !o2.v);
    CHECK(!memcmp(back.arena, ad.arena, (size_t)ad.n_params * sizeof(float)));
    llm_adapter_free(&back);
    llm_optim_free(&o);
    llm_adapter_free(&ad);
    llm_model_free(&m);
}

static void test_state_round_trip_adamw(void) { check_state_round_trip(LLM_OPTIM_ADAMW); }
static void test_state_round_trip_lion(void) { check_state_round_trip(LLM_OPTIM_LION); }

/* One change to a stream, for the refusals below. */
typedef struct stream_edit {
    const char *drop;          /* leave this record out */
    const char *twice;         /* write this record twice */
    const char *rec;           /* change this record: */
    const char *key, *value;   /*   the value of attribute key */
    int64_t elem;              /*   or element elem of its f32 payload (-1: none) to x */
    float x;
    int64_t dim0;              /*   or (when > 0) its first dimension, the payload cut to fit */
    const char *early;         /* move this record to right after the one named after */
    const char *after;
} stream_edit;

/* The record named name in the stream at path, and its payload (owned). */
static void find_record(const char *path, const char *name, llm_record *out, llm_attr *attrs, char *name_buf,
                        void **data, size_t *n)
{
    llm_error err = {0};
    llm_reader *r;
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    const llm_record *rec;
    *data = NULL;
    while (!*data && llm_reader_next(r, &rec, &err) > 0) {
        if (strcmp(rec->name, name)) continue;
        *out = *rec;
        memcpy(attrs, rec->attrs, (size_t)rec->n_attrs * sizeof *attrs);
        out->attrs = attrs;
        snprintf(name_buf, 64, "%s", rec->name);
        out->name = name_buf;
        CHECK_OK(llm_reader_read_all(r, data, n, &err), err);
    }
    llm_reader_close(r);
    CHECK_MSG(*data != NULL, "no record %s in %s", name, path);
}

/* Copies the stream src to dst record by record with the change e. */
static void rewrite(const char *src, const char *dst, const stream_edit *e)
{
    llm_error err = {0};
    llm_reader *r;
    llm_writer *w;
    CHECK_OK(llm_reader_open(&r, src, &err), err);
    CHECK_OK(llm_writer_open(&w, dst, NULL, &err), err);
    llm_record moved;
    llm_attr moved_attrs[64];
    char moved_name[64];
    void *moved_data = NULL;
    size_t moved_n = 0;
    if (e->early) find_record(src, e->early, &moved, moved_attrs, moved_name, &moved_data, &moved_n);
    const llm_record *rec;
    while (llm_reader_next(r, &rec, &err) > 0) {
        void *data;
        size_t n;
        llm_record out = *rec;
        llm_attr attrs[64];
        CHECK(rec->n_attrs <= 64);
        memcpy(attrs, rec->attrs, (size_t)rec->n_attrs * sizeof *attrs);
        out.attrs = attrs;
        CHECK_OK(llm_reader_read_all(r, &data, &n, &err), err);
        if ((e->drop && !strcmp(rec->name, e->drop)) || (e->early && !strcmp(rec->name, e->early))) {
            free(data);
            continue;
        }
        if (e->rec && !strcmp(rec->name, e->rec)) {
            for (int i = 0; e->key && i < out.n_attrs; i++)
                if (!strcmp(attrs[i].key, e->key)) attrs[i].value = e->value;
            if (e->elem >= 0) ((float *)data)[e->elem] = e->x;
            if (e->dim0 > 0) out.shape.dim[0] = e->dim0;
        }
        int times = e->twice && !strcmp(rec->name, e->twice) ? 2 : 1;
        for (int k = 0; k < times; k++) CHECK_OK(llm_writer_record(w, &out, data, &err), err);
        free(data);
        if (moved_data && !strcmp(rec->name, e->after)) CHECK_OK(llm_writer_record(w, &moved, moved_data, &err), err);
    }
    free(moved_data);
    llm_reader_close(r);
    CHECK_OK(llm_writer_close(w, &err), err);
}

/* A training state that does not fit the adapter, or moments without one,
 * or moments missing, malformed or of another optimizer: refused with a
 * message naming the record, before anything is trained on it.  For running
 * the adapter, missing moments do not matter. */
static void test_state_refused(void)
{
    llm_error err = {0};
    llm_model m;
    llm_adapter ad, back;
    llm_optim o, o2;
    llm_ckpt_train st, st2;
    make_state(&m, &ad, &o, &st, LLM_OPTIM_ADAMW);
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/good.llmt", check_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.llmt", check_tmpdir());
    CHECK_OK(llm_adapter_save(good, &ad, &o, &st, &err), err);
    const struct {
        stream_edit e;
        const char *msg;  /* what the error says */
        int runs;         /* 1: llm_adapter_load still takes it */
    } cases[] = {
        {{.drop = "train", .elem = -1}, "optim.m.virtual: optimizer state without training state", 0},
        {{.twice = "train", .elem = -1}, "train: given twice", 0},
        {{.rec = "train", .key = "seq", .value = "11", .elem = -1}, "seq 11, but 2 virtual tokens leave 10", 0},
        {{.rec = "train", .key = "lr", .value = "nan", .elem = -1}, "train: adamw: learning rates", 0},
        {{.rec = "train", .key = "batch", .value = "0", .elem = -1}, "attribute batch", 0},
        {{.rec = "train", .key = "optim", .value = "lion", .elem = -1}, "optim.v.virtual: optimizer lion keeps no such moment", 1},
        {{.drop = "optim.m.virtual", .elem = -1}, "optimizer state optim.m.virtual is missing", 1},
        {{.drop = "optim.v.layers.1.mlp.w2.lora_b", .elem = -1}, "optim.v.layers.1.mlp.w2.lora_b is missing", 1},
        {{.rec = "optim.m.layers.0.attn.wq.lora_a", .elem = 5, .x = NAN}, "optim.m.layers.0.attn.wq.lora_a: element 5 is not finite", 1},
        {{.rec = "optim.v.virtual", .elem = 3, .x = -1}, "optim.v.virtual: element 3 is negative", 1},
        {{.rec = "optim.m.virtual", .elem = -1, .dim0 = 1}, "optim.m.virtual: f32[1,16], but the settings need f32[2,16]", 0},
        {{.rec = "virtual", .elem = 0, .x = INFINITY}, "virtual: element 0 is not finite", 0},
        /* moments are taken only after every weight: their memory follows bytes read */
        {{.early = "optim.m.virtual", .after = "train", .elem = -1},
         "optim.m.virtual: optimizer state before tensor virtual", 0},
        {{.early = "optim.v.layers.1.mlp.w2.lora_b", .after = "layers.0.attn.wq.lora_b", .elem = -1},
         "optim.v.layers.1.mlp.w2.lora_b: optimizer state before tensor layers.0.mlp.w2.lora_a", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rewrite(good, bad, &cases[i].e);
        int has = 1;
        int rc = llm_adapter_load_train(bad, &back, &o2, &st2, &has, &err);
        CHECK_MSG(rc == LLM_ERR_FORMAT && strstr(err.msg, cases[i].msg) && strstr(err.msg, bad),
                  "case %zu: %d, '%s'", i, rc, err.msg);
        CHECK(has == 0 && !o2.m && !o2.v && !back.arena);
        rc = llm_adapter_load(bad, &back, &err);
        CHECK_MSG(cases[i].runs ? rc == 0 : rc == LLM_ERR_FORMAT && strstr(err.msg, cases[i].msg),
                  "case %zu for running: %d, '%s'", i, rc, err.msg);
        llm_adapter_free(&back);
    }
    llm_optim_free(&o);
    llm_adapter_free(&ad);
    llm_model_free(&m);
}

/* An example's window: BOS, text, label; only label positions scored. */
static void test_example_encode(void)
{
    llm_error err = {0};
    llm_tok tok;
    llm_tok_bytes(&tok);
    int32_t in[8], tg[8];
    int used = llm_example_encode(&tok, "ab", 2, "xy", 2, 8, in, tg, &err);
    CHECK(used == 4);
    const int32_t want_in[8] = {tok.bos, 'a', 'b', 'x', 0, 0, 0, 0};
    const int32_t want_tg[8] = {-1, -1, 'x', 'y', -1, -1, -1, -1};
    CHECK(!memcmp(in, want_in, sizeof in) && !memcmp(tg, want_tg, sizeof tg));
    /* too long: the text's start is cut, the label kept whole */
    used = llm_example_encode(&tok, "abcdefgh", 8, "xy", 2, 4, in, tg, &err);
    const int32_t cut_in[4] = {'f', 'g', 'h', 'x'}, cut_tg[4] = {-1, -1, 'x', 'y'};
    CHECK(used == 4 && !memcmp(in, cut_in, sizeof cut_in) && !memcmp(tg, cut_tg, sizeof cut_tg));
    CHECK(llm_example_encode(&tok, "ab", 2, "xyz", 3, 3, in, tg, &err) < 0 && strstr(err.msg, "label"));
    char line[] = "some\ttext\tlabel", *label;
    CHECK(llm_example_split(line, &label) == 0 && !strcmp(label, "label") && !strcmp(line, "some\ttext"));
    char none[] = "no label";
    CHECK(llm_example_split(none, &label) < 0);
}

/* ---- QLoRA: adapters on a quantized base ---- */

/* A base whose every linear's width is a multiple of LLM_QBLOCK (int4
 * groups), its weights moved by N(0, noise). */
static void make_qbase_float(llm_model *m, double noise)
{
    llm_error err = {0};
    llm_config c = {.vocab = 13, .dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                    .hidden = 64, .seq_len = 24, .tie = 0, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_model_init(m, &c, 3, &err), err);
    unsigned long long rng = 5;
    for (int64_t i = 0; i < m->n_params; i++) m->arena[i] += (float)(noise * check_normal(&rng));
}

/* Quantizes every linear and the classifier of m in place (m->lin[].q) to
 * int4 in groups of 32, symmetric when sym, and fills their float views with
 * NaN: a pass that read them would show. */
static void quantize_base(llm_model *m, int sym)
{
    llm_error err = {0};
    const llm_qformat f = {.scheme = LLM_Q_INT4, .group = 32, .sym = sym};
    for (int i = 0; i < llm_linear_count(m->cfg.n_layers); i++) {
        char name[64];
        llm_linear_name(i, m->cfg.n_layers, name, sizeof name);
        const llm_param_tensor *t = llm_model_tensor(m, name);
        m->lin[i].q = calloc(1, sizeof *m->lin[i].q);
        CHECK_OK(llm_quantize_rtn(m->arena + t->offset, (int)t->shape.dim[0], (int)t->shape.dim[1], &f, m->lin[i].q, &err), err);
        for (int64_t j = 0; j < t->count; j++) m->arena[t->offset + j] = NAN;
    }
}

/* The base's parameters in double for the reference: float tensors as they
 * are, quantized linears as llm_dequantize gives them. */
static double *qbase_weights(const llm_model *m)
{
    double *w = malloc(sizeof(double) * (size_t)m->n_params);
    for (int64_t i = 0; i < m->n_params; i++) w[i] = m->arena[i];
    for (int i = 0; i < llm_linear_count(m->cfg.n_layers); i++) {
        char name[64];
        llm_linear_name(i, m->cfg.n_layers, name, sizeof name);
        const llm_param_tensor *t = llm_model_tensor(m, name);
        float *deq = malloc(sizeof(float) * (size_t)t->count);
        llm_dequantize(m->lin[i].q, deq);
        for (int64_t j = 0; j < t->count; j++) w[t->offset + j] = deq[j];
        free(deq);
    }
    return w;
}

static void test_qlora_gradients(void)
{
    llm_model m;
    make_qbase_float(&m, 0.3);
    double *wf = malloc(sizeof(double) * (size_t)m.n_params);
    for (int64_t i = 0; i < m.n_params; i++) wf[i] = m.arena[i];
    quantize_base(&m, 0);
    adapter_pass p;
    adapter_pass_run(&p, &m, 2, 2, 3, 29);
    double *w = qbase_weights(&m);
    ref_model r = {&m, &p.ad, w, p.aw}, rf = {&m, &p.ad, wf, p.aw};
    double ref_l = ref_model_loss(&r, p.in, p.tg, 1, GRAD_T), float_l = ref_model_loss(&rf, p.in, p.tg, 1, GRAD_T);
    CHECK_MSG(isfinite(p.loss), "loss %g: a float view of a quantized linear was read", p.loss);
    CHECK_NEAR(p.loss, ref_l, 2e-5 * fabs(ref_l));
    /* the int4 base is a different model from the float one it came from */
    CHECK_MSG(fabs(float_l - ref_l) > 100 * 2e-5 * fabs(ref_l), "int4 and float losses %g, %g: too close "
              "to tell which weights ran", ref_l, float_l);
    ref_model_check_adapter_gradient(&r, p.agrad, p.in, p.tg, 1, GRAD_T);
    free(w), free(wf);
    adapter_pass_free(&p);
    llm_model_free(&m);
}

/* LoRA trained on an int4 base: the codes, scales and zero points stay bit
 * for bit, the loss falls; the base alone, or a w8a8 one, is refused. */
static void test_qlora_training(void)
{
    llm_error err = {0};
    llm_model m;
    make_qbase_float(&m, 0.3);
    quantize_base(&m, 0);
    int slots = llm_linear_count(m.cfg.n_layers);
    llm_qlinear keep[15];
    for (int i = 0; i < slots; i++) {
        const llm_qlinear *q = m.lin[i].q;
        size_t g = (size_t)q->rows * q->groups;
        keep[i] = *q;
        keep[i].q4 = malloc((size_t)q->rows * q->cols / 2), keep[i].scale = malloc(g * sizeof(float)), keep[i].zero = malloc(g);
        memcpy(keep[i].q4, q->q4, (size_t)q->rows * q->cols / 2);
        memcpy(keep[i].scale, q->scale, g * sizeof(float));
        memcpy(keep[i].zero, q->zero, g);
    }
    uint64_t hash = llm_model_content_hash(&m);
    llm_data d = {0};
    d.n_tokens = 400, d.n_train = 360, d.n_bytes = 400;
    d.tokens = malloc(sizeof(int32_t) * 400);
    for (int i = 0; i < 400; i++) d.tokens[i] = (i * 7 + i / 5) % 12;
    llm_ckpt_train st = {.batch = 4, .seq = 12, .accum = 1, .seed = 1};
    llm_optim_defaults(&st.optim, LLM_OPTIM_ADAMW);
    st.optim.lr = 0.05f, st.optim.min_lr = 0.05f, st.optim.steps = 30, st.optim.weight_decay = 0;
    llm_rng_seed(&st.rng, 9);
    llm_trainer t;
    CHECK(llm_trainer_init(&t, &m, &d, &st, NULL, &err) < 0 && strstr(err.msg, "train an adapter on it"));
    llm_adapter ad;
    llm_adapter_config ac = {.rank = 4, .alpha = 8, .targets = LLM_LORA_ALL};
    CHECK_OK(llm_adapter_init(&ad, &m, &ac, 1, &err), err);
    CHECK(ad.base_hash == hash);
    CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
    CHECK_OK(llm_trainer_init(&t, &m, &d, &st, NULL, &err), err);
    float first = 0, last = 0;
    for (int s = 0; s < 30; s++) {
        llm_step_stats ss = {0};
        CHECK_OK(llm_trainer_step(&t, &ss, &err), err);
        if (s == 0) first = ss.loss;
        last = ss.loss;
    }
    CHECK_MSG(isfinite(first) && last < 0.8 * first, "loss %g -> %g: the adapter did not learn", first, last);
    int same = 1;
    for (int i = 0; i < slots; i++) {
        const llm_qlinear *q = m.lin[i].q;
        size_t g = (size_t)q->rows * q->groups;
        same &= !memcmp(keep[i].q4, q->q4, (size_t)q->rows * q->cols / 2) &&
                !memcmp(keep[i].scale, q->scale, g * sizeof(float)) && !memcmp(keep[i].zero, q->zero, g);
        free(keep[i].q4), free(keep[i].scale), free(keep[i].zero);
    }
    CHECK_MSG(same, "the int4 base changed in training");
    CHECK(llm_model_content_hash(&m) == hash);
    llm_trainer_free(&t);
    /* the identity covers the codes: one code moved is another base */
    llm_adapter_detach(&m);
    m.lin[3].q->q4[5] ^= 0x10;
    CHECK(llm_adapter_attach(&m, &ad, &err) < 0 && strstr(err.msg, "another base model"));
    m.lin[3].q->q4[5] ^= 0x10;
    CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
    /* w8a8 quantizes activations at inference: no adapter trains on it */
    m.lin[0].q->f.scheme = LLM_Q_W8A8;
    CHECK(llm_trainer_init(&t, &m, &d, &st, NULL, &err) < 0 && strstr(err.msg, "int8 or int4"));
    m.lin[0].q->f.scheme = LLM_Q_INT4;
    llm_data_free(&d);
    llm_adapter_free(&ad);
    llm_model_free(&m);
}

/* llm-gen's path on an int4 base with an adapter (LoRA added after the
 * integer kernels, which round activations to int8) against the training
 * forward on the dequantized weights: within that rounding, far closer than
 * the adapter's own effect. */
static void test_qlora_infer(void)
{
    llm_error err = {0};
    llm_model m;
    make_qbase_float(&m, 0.05);
    quantize_base(&m, 1);
    llm_adapter ad;
    make_adapter(&ad, &m, 2, 4);
    int T = 16, V = m.cfg.vocab;
    int32_t tok[16];
    unsigned long long rng = 37;
    for (int i = 0; i < T; i++) tok[i] = i < 2 ? V + i : (int32_t)(check_uniform(&rng) * V);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &m.cfg, 1, T, &err), err);
    CHECK_OK(llm_acts_lora(&a, &m.cfg, ad.cfg.rank, &err), err);
    CHECK_OK(llm_acts_quant(&a, &m, &err), err);
    CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
    llm_model_forward(&m, &a, tok, NULL);
    float *trained = malloc(sizeof(float) * (size_t)T * V), *plain = malloc(sizeof(float) * (size_t)T * V);
    memcpy(trained, a.probs, sizeof(float) * (size_t)T * V);
    llm_infer s;
    llm_infer_opts o = {.ctx = T};
    CHECK_OK(llm_infer_init(&s, &m, &o, &err), err);
    CHECK_OK(llm_infer_feed(&s, tok, T, 1, &err), err);
    /* the adapter's effect: the same forward without its LoRA (positions
     * after the virtual tokens see them either way) */
    forward_without_lora(&m, &a, tok);
    memcpy(plain, a.probs, sizeof(float) * (size_t)T * V);
    double worst = 0, effect = largest_difference(plain, trained, (size_t)T * V);
    for (int t = 0; t < T; t++)
        worst = ref_softmax_gap(worst, s.logits + (size_t)t * V, trained + (size_t)t * V, V);
    CHECK_MSG(isfinite(worst) && worst < 0.02 * effect, "inference off by %g, the adapter's effect %g", worst, effect);
    free(trained), free(plain);
    llm_infer_free(&s);
    llm_acts_free(&a);
    llm_adapter_free(&ad);
    llm_model_free(&m);
}

int main(void)
{
    RUN(test_gradients);
    RUN(test_frozen_base_prompt);
    RUN(test_frozen_base_lora);
    RUN(test_frozen_base_lora_examples);
    RUN(test_infer_small);
    RUN(test_infer_threads);
    RUN(test_merge);
    RUN(test_stream_and_identity);
    RUN(test_state_round_trip_adamw);
    RUN(test_state_round_trip_lion);
    RUN(test_state_refused);
    RUN(test_example_encode);
    RUN(test_qlora_gradients);
    RUN(test_qlora_training);
    RUN(test_qlora_infer);
    return check_done();
}
