/* Unit tests for lib/infer and lib/sample: the KV-cache path (prefill in
 * chunks, then one token at a time) against the training forward pass, which
 * recomputes everything; the windowed log-likelihood against the training
 * loss; the sampler's choices and distribution, NaN logits included; ids
 * out of the vocabulary and logits that are not finite refused by every
 * scoring and generating path; a quantized product out of memory an error
 * of the pass, on both paths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "examples.h"
#include "generate.h"
#include "infer.h"
#include "nomem.h"
#include "quant.h"
#include "ref_model.h"
#include "sample.h"

/* dim 32 runs a decode step on one thread; dim 256 is past the size where
 * the step's products are split among threads. */
static void make_model(llm_model *m, int dim, int kv_heads, int window)
{
    llm_error err = {0};
    llm_config c = {.vocab = 40, .dim = dim, .n_layers = 2, .n_heads = 4, .n_kv_heads = kv_heads,
                    .hidden = dim * 3 / 2, .seq_len = 24, .tie = 0, .window = window, .norm_eps = 1e-5f,
                    .rope_theta = 10000};
    CHECK_OK(llm_model_init(m, &c, 3, &err), err);
    unsigned long long rng = 5;
    for (int64_t i = 0; i < m->n_params; i++) m->arena[i] += (float)(0.1 * check_normal(&rng));
}

/* Feeds T tokens as a prefill of `first` tokens and then one at a time, and
 * compares each position's softmax with the training forward's. */
static void check_cache_matches_forward(int dim, int kv_heads, int window, int first)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, dim, kv_heads, window);
    int T = 24, V = m.cfg.vocab;
    int32_t tok[24];
    unsigned long long rng = 9;
    for (int i = 0; i < T; i++) tok[i] = (int32_t)(check_uniform(&rng) * V);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &m.cfg, 1, T, &err), err);
    llm_model_forward(&m, &a, tok, NULL);
    llm_infer s;
    llm_infer_opts o = {.ctx = T};
    CHECK_OK(llm_infer_init(&s, &m, &o, &err), err);
    CHECK_OK(llm_infer_feed(&s, tok, first, 1, &err), err);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        if (t >= first) CHECK_OK(llm_infer_feed(&s, tok + t, 1, 0, &err), err);
        const float *z = t < first ? s.logits + (size_t)t * V : s.last;
        worst = ref_softmax_gap(worst, z, a.probs + (size_t)t * V, V);
    }
    /* the same float arithmetic in another order: agreement to ~1e-6 */
    CHECK_MSG(worst < 2e-5, "kv %d window %d prefill %d: probabilities differ by %g", kv_heads, window,
              first, worst);
    CHECK(s.pos == T);
    CHECK(llm_infer_feed(&s, tok, 1, 0, &err) == LLM_ERR_LIMIT && strstr(err.msg, "context full"));
    llm_infer_free(&s);
    llm_acts_free(&a);
    llm_model_free(&m);
}

static void test_cache_matches_forward(void)
{
    check_cache_matches_forward(32, 4, 0, 1);
    check_cache_matches_forward(32, 2, 0, 7);   /* grouped-query attention, a longer prefill */
    check_cache_matches_forward(32, 1, 5, 3);   /* one kv head, sliding window */
    check_cache_matches_forward(32, 2, 0, 24);  /* all at once, through sgemm */
    check_cache_matches_forward(256, 2, 0, 5);  /* decode steps split among threads */
    check_cache_matches_forward(256, 1, 6, 20); /* sgemm prefill, threads, a window */
}

/* A model whose linears are quantized (every slot, the classifier too), in
 * formats[slot % n] (several: linears reading the same input in different
 * formats, so the decode step's input quantized for one does not suit the
 * next): the decode step (quantized kernels by row ranges inside one
 * parallel region, its inputs quantized once; 1 to 5 tokens per pass)
 * against one pass over the whole sequence (the same kernels, whole
 * products), both with the same integer codes. */
static void check_quantized_decode_matches_prefill(int dim, const llm_qformat *formats, int n)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, dim, 2, 0);
    int n_slots = llm_linear_count(m.cfg.n_layers);
    char kinds[128] = "";
    for (int i = 0; i < n; i++)
        snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), " %s/%d%s", llm_qscheme_name(formats[i].scheme),
                 formats[i].group, formats[i].sym ? "s" : "");
    for (int slot = 0; slot < n_slots; slot++) {
        const llm_qformat f = formats[slot % n];
        char name[64];
        llm_linear_name(slot, m.cfg.n_layers, name, sizeof name);
        const llm_param_tensor *t = NULL;
        for (int i = 0; i < m.n_tensors; i++)
            if (!strcmp(m.tensors[i].name, name)) t = &m.tensors[i];
        CHECK_MSG(t != NULL, "no tensor %s", name);
        if (!t) return;
        m.lin[slot].q = calloc(1, sizeof *m.lin[slot].q);
        int rc = llm_quantize_rtn(m.arena + t->offset, (int)t->shape.dim[0], (int)t->shape.dim[1], &f,
                                  m.lin[slot].q, &err);
        if (!CHECK_MSG(rc == 0, "%s: %s", name, err.msg)) {
            llm_model_free(&m);
            return;
        }
        if (f.scheme == LLM_Q_W8A8) m.lin[slot].q->act_scale = 0.04f;
    }
    int T = 24, V = m.cfg.vocab;
    int32_t tok[24];
    unsigned long long rng = 17;
    for (int i = 0; i < T; i++) tok[i] = (int32_t)(check_uniform(&rng) * V);
    llm_infer whole, step;
    llm_infer_opts o = {.ctx = T};
    CHECK_OK(llm_infer_init(&whole, &m, &o, &err), err);
    CHECK_OK(llm_infer_init(&step, &m, &o, &err), err);
    CHECK_OK(llm_infer_feed(&whole, tok, T, 1, &err), err); /* 24 rows: the batched path */
    /* Activations are rounded to int8 inside the kernels, so a last-bit
     * difference between the two paths can, rarely, move one activation
     * across a rounding edge: that position then differs by a fraction of a
     * percent (seen: 0.5% of the logits' scale), and the positions after it a
     * little.  A wiring fault (a wrong slot, a lost residual, rows missed)
     * differs everywhere by the size of the logits.  So: most positions agree
     * to float rounding, and none is off by more than 2% of the scale. */
    double worst = 0, scale = 0;
    int close = 0;
    for (int t0 = 0, n = 1; t0 < T; t0 += n, n = n % 5 + 1) { /* 1 token, then short feeds of 2..5 */
        if (n > T - t0) n = T - t0;
        CHECK_OK(llm_infer_feed(&step, tok + t0, n, 1, &err), err);
        for (int t = t0; t < t0 + n; t++) {
            double w = 0, sc = 1;
            for (int j = 0; j < V; j++) {
                w = fmax(w, fabs(step.logits[(size_t)(t - t0) * V + j] - whole.logits[(size_t)t * V + j]));
                sc = fmax(sc, fabs(whole.logits[(size_t)t * V + j]));
            }
            close += w <= 1e-5 * sc;
            worst = fmax(worst, w), scale = fmax(scale, sc);
        }
    }
    CHECK_MSG(close >= T * 3 / 4 && worst <= 0.02 * scale,
              "dim %d%s: %d of %d positions agree; worst difference %g (logits up to %g)", dim, kinds,
              close, T, worst, scale);
    llm_infer_free(&whole);
    llm_infer_free(&step);
    llm_model_free(&m); /* frees the quantized weights */
}

static void test_quantized_decode_matches_prefill(void)
{
    const llm_qformat i8 = {.scheme = LLM_Q_INT8}, w8a8 = {.scheme = LLM_Q_W8A8},
                      a32 = {.scheme = LLM_Q_INT4, .group = 32}, s64 = {.scheme = LLM_Q_INT4, .group = 64, .sym = 1},
                      s128 = {.scheme = LLM_Q_INT4, .group = 128, .sym = 1};
    check_quantized_decode_matches_prefill(32, &i8, 1);
    check_quantized_decode_matches_prefill(256, &i8, 1); /* split among threads */
    check_quantized_decode_matches_prefill(256, &a32, 1); /* the groups divide 256 and 384 */
    check_quantized_decode_matches_prefill(256, &s128, 1);
    check_quantized_decode_matches_prefill(256, (llm_qformat[]){s64, i8, w8a8, a32}, 4);
}

static void test_nll_matches_training_loss(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, 32, 2, 0);
    int T = 24;
    int32_t tok[25], in[24], tg[24];
    unsigned long long rng = 13;
    for (int i = 0; i < 25; i++) tok[i] = (int32_t)(check_uniform(&rng) * m.cfg.vocab);
    memcpy(in, tok, sizeof in);
    memcpy(tg, tok + 1, sizeof tg);
    llm_acts a;
    CHECK_OK(llm_acts_init(&a, &m.cfg, 1, T, &err), err);
    float loss = llm_model_forward(&m, &a, in, tg);
    llm_infer s;
    llm_infer_opts o = {.ctx = T};
    CHECK_OK(llm_infer_init(&s, &m, &o, &err), err);
    double nats;
    int64_t scored;
    CHECK_OK(llm_infer_nll(&s, tok, 25, T, &nats, &scored, &err), err); /* one window covers it */
    CHECK(scored == 24);
    CHECK_NEAR(nats / scored, loss, 1e-5 * loss);
    /* overlapping windows: every token scored once, each with at least as
     * much context as without overlap */
    int64_t scored2;
    double nats2;
    llm_infer small;
    llm_infer_opts o2 = {.ctx = 8};
    CHECK_OK(llm_infer_init(&small, &m, &o2, &err), err);
    CHECK_OK(llm_infer_nll(&small, tok, 25, 3, &nats2, &scored2, &err), err);
    CHECK(scored2 == 24);
    CHECK(llm_infer_nll(&small, tok, 25, 9, &nats2, &scored2, &err) == LLM_ERR_ARG);
    llm_infer_free(&small);
    llm_infer_free(&s);
    llm_acts_free(&a);
    llm_model_free(&m);
}

/* A context of 2^18 positions costs nothing until tokens come: a slot's
 * cache is mapped at its first pass (resident as it is written: see
 * test_pages), the per-row buffers, the scores and the RoPE table follow
 * the positions and rows used (doubling), and the logits are bit for bit
 * those of a context just large enough. */
static void test_buffers_follow_tokens(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, 32, 2, 0);
    llm_infer big, small;
    llm_infer_opts ob = {.ctx = 1 << 18}, os = {.ctx = 16};
    CHECK_OK(llm_infer_init(&big, &m, &ob, &err), err);
    CHECK_OK(llm_infer_init(&small, &m, &os, &err), err);
    CHECK(!big.cache[0] && big.rows_cap == 0 && big.scores_cap == 0 && big.rope.cap == 0 && !big.x &&
          !big.logits);
    int32_t tok[15];
    unsigned long long rng = 11;
    for (int i = 0; i < 15; i++) tok[i] = (int32_t)(check_uniform(&rng) * m.cfg.vocab);
    const size_t V = (size_t)m.cfg.vocab;
    for (int at = 0; at < 15; at += at ? 1 : 5) {
        int n = at ? 1 : 5;
        CHECK_OK(llm_infer_feed(&big, tok + at, n, 0, &err), err);
        CHECK_OK(llm_infer_feed(&small, tok + at, n, 0, &err), err);
        CHECK_MSG(!memcmp(big.last, small.last, V * sizeof(float)), "position %d: the logits differ", at + n - 1);
    }
    CHECK_MSG(big.rows_cap == 5 && big.cache[0] && big.cache_map[0] > 0 && big.scores_cap == 20 &&
                  big.rope.n_pos == 15 && big.rope.cap == 20,
              "rows %d, cache mapped %zu, scores %d, rope %d of %d", big.rows_cap, big.cache_map[0], big.scores_cap,
              big.rope.n_pos, big.rope.cap);
    llm_infer_free(&big);
    llm_infer_free(&small);
    llm_model_free(&m);
}

static void test_infer_errors(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, 32, 4, 0);
    llm_infer s;
    /* a 7B-sized configuration (only its config is read before the check):
     * 2^22 positions would need 4 TiB of cache */
    llm_model big = {.cfg = {.vocab = 32000, .dim = 4096, .n_layers = 32, .n_heads = 32,
                             .n_kv_heads = 32, .hidden = 11008, .seq_len = 4096,
                             .norm_eps = 1e-5f, .rope_theta = 10000}};
    llm_infer_opts huge = {.ctx = 1 << 22};
    CHECK(llm_infer_init(&s, &big, &huge, &err) == LLM_ERR_LIMIT);
    CHECK_MSG(strstr(err.msg, "needs 4096.0 GiB for the KV cache") != NULL, "%s", err.msg);
    llm_infer_opts o = {.ctx = 8};
    CHECK_OK(llm_infer_init(&s, &m, &o, &err), err);
    int32_t bad = 40;
    CHECK(llm_infer_feed(&s, &bad, 1, 0, &err) == LLM_ERR_ARG && strstr(err.msg, "outside the vocabulary"));
    int32_t many[9] = {0};
    CHECK(llm_infer_feed(&s, many, 9, 0, &err) == LLM_ERR_ARG);
    llm_infer_free(&s);
    llm_model_free(&m);
}

/* Three sequences decoded together, one slot refilled midway (continuous
 * batching), give the logits each gets alone. */
static void check_batched_decode_matches_single(int dim)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, dim, 2, 0);
    int V = m.cfg.vocab, T = 12;
    int32_t seq[4][12];
    unsigned long long rng = 21;
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < T; t++) seq[i][t] = (int32_t)(check_uniform(&rng) * V);
    /* alone: the logits after each token of each sequence */
    float *want = malloc(sizeof(float) * 4 * T * V);
    llm_infer one;
    llm_infer_opts o1 = {.ctx = T};
    CHECK_OK(llm_infer_init(&one, &m, &o1, &err), err);
    for (int i = 0; i < 4; i++) {
        llm_infer_reset(&one);
        for (int t = 0; t < T; t++) {
            CHECK_OK(llm_infer_feed(&one, &seq[i][t], 1, 0, &err), err);
            memcpy(want + ((size_t)i * T + t) * V, one.last, sizeof(float) * V);
        }
    }
    /* together: slots 0..2 hold sequences 0..2 (prompts of 3, 1 and 5 tokens);
     * when sequence 1 has had 6 tokens its slot is reset and takes sequence 3 */
    llm_infer b;
    llm_infer_opts o3 = {.ctx = T, .slots = 3};
    CHECK_OK(llm_infer_init(&b, &m, &o3, &err), err);
    int owner[3] = {0, 1, 2}, at[3] = {3, 1, 5};
    double worst = 0;
    /* the three prompts in one pass: logits row k follows prompt k */
    const int32_t *first[3] = {seq[0], seq[1], seq[2]};
    CHECK_OK(llm_infer_prefill(&b, owner, first, at, 3, &err), err);
    CHECK(b.logit_rows == 3 && b.slot_pos[0] == 3 && b.slot_pos[1] == 1 && b.slot_pos[2] == 5);
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < V; j++) {
            double d = fabs(b.logits[(size_t)k * V + j] - want[((size_t)owner[k] * T + at[k] - 1) * V + j]);
            worst = d > worst ? d : worst;
        }
    CHECK(llm_infer_prefill(&b, owner, first, (const int[]){12, 1, 1}, 3, &err) == LLM_ERR_ARG &&
          strstr(err.msg, "more than one pass"));
    for (int step = 0; step < 30; step++) {
        int slots[3], n = 0;
        int32_t tok[3];
        for (int k = 0; k < 3; k++)
            if (at[k] < T) slots[n] = k, tok[n] = seq[owner[k]][at[k]], n++;
        if (!n) break;
        CHECK_OK(llm_infer_decode(&b, slots, tok, n, &err), err);
        for (int r = 0; r < n; r++) {
            int k = slots[r];
            for (int j = 0; j < V; j++) {
                double d = fabs(b.logits[(size_t)r * V + j] - want[((size_t)owner[k] * T + at[k]) * V + j]);
                worst = d > worst ? d : worst;
            }
            at[k]++;
            if (owner[k] == 1 && at[k] == 6) { /* finished: the slot takes sequence 3 */
                llm_infer_reset_slot(&b, k);
                owner[k] = 3;
                CHECK_OK(llm_infer_feed_slot(&b, k, seq[3], 2, 0, &err), err);
                at[k] = 2;
            }
        }
    }
    CHECK(at[0] == T && at[1] == T && at[2] == T && owner[1] == 3);
    CHECK_MSG(worst < 1e-4, "dim %d: batched logits differ from single ones by %g", dim, worst);
    llm_infer_free(&b);
    llm_infer_free(&one);
    free(want);
    llm_model_free(&m);
}

static void test_batched_decode_matches_single(void)
{
    check_batched_decode_matches_single(32);
    check_batched_decode_matches_single(256);
}

static void test_sampler(void)
{
    llm_error err = {0};
    float z[6] = {0.1f, 2.0f, -1.0f, 1.5f, 2.0f, 0.0f};
    llm_rng rng;
    llm_rng_seed(&rng, 1);
    llm_sampler sp;
    CHECK_OK(llm_sampler_init(&sp, 6, &(llm_sample_opts){.temp = 0, .top_p = 1}, &err), err);
    CHECK(llm_sampler_pick(&sp, z, &rng) == 1); /* argmax, lowest id on a tie */
    llm_sampler_free(&sp);
    CHECK_OK(llm_sampler_init(&sp, 6, &(llm_sample_opts){.temp = 1, .top_k = 2, .top_p = 1}, &err), err);
    int seen[6] = {0};
    for (int i = 0; i < 2000; i++) seen[llm_sampler_pick(&sp, z, &rng)]++;
    CHECK(seen[1] > 800 && seen[4] > 800 && seen[1] + seen[4] == 2000); /* only the top two */
    llm_sampler_free(&sp);
    /* temperature 1, no truncation: frequencies follow the softmax */
    CHECK_OK(llm_sampler_init(&sp, 6, &(llm_sample_opts){.temp = 1, .top_p = 1}, &err), err);
    int n = 60000, count[6] = {0};
    for (int i = 0; i < n; i++) count[llm_sampler_pick(&sp, z, &rng)]++;
    double sum = 0;
    for (int j = 0; j < 6; j++) sum += exp(z[j]);
    for (int j = 0; j < 6; j++) {
        double p = exp(z[j]) / sum, sd = sqrt(p * (1 - p) / n);
        CHECK_MSG(fabs((double)count[j] / n - p) < 5 * sd, "token %d: %g vs %g", j, (double)count[j] / n, p);
    }
    llm_sampler_free(&sp);
    /* top-p: the smallest set reaching p.  Sorted probabilities here are
     * 0.325 0.325 0.197 0.066 0.054 0.040; p = 0.6 keeps the first two */
    CHECK_OK(llm_sampler_init(&sp, 6, &(llm_sample_opts){.temp = 1, .top_p = 0.6f}, &err), err);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 2000; i++) seen[llm_sampler_pick(&sp, z, &rng)]++;
    CHECK(seen[1] + seen[4] == 2000);
    llm_sampler_free(&sp);
    CHECK(llm_sampler_init(&sp, 6, &(llm_sample_opts){.temp = -1, .top_p = 1}, &err) == LLM_ERR_ARG);
}

/* NaN logits are never chosen: greedy takes the largest number; sampling,
 * with or without top-k and top-p, gives them no mass and draws the others
 * by their softmax; infinite logits share all the mass; and with every
 * logit NaN the choice is still an id of the vocabulary. */
static void test_sampler_nan(void)
{
    llm_error err = {0};
    const float z[6] = {NAN, 1.0f, 2.0f, NAN, 1.5f, 0.5f};
    llm_rng rng;
    llm_rng_seed(&rng, 3);
    llm_sampler sp;
    CHECK(llm_sample_argmax(z, 6) == 2);
    CHECK_OK(llm_sampler_init(&sp, 6, &(llm_sample_opts){.temp = 0, .top_p = 1}, &err), err);
    CHECK(llm_sampler_pick(&sp, z, &rng) == 2);
    llm_sampler_free(&sp);
    const llm_sample_opts opts[4] = {{.temp = 1, .top_p = 1}, {.temp = 1, .top_k = 3, .top_p = 1},
                                     {.temp = 1, .top_p = 0.9f}, {.temp = 0.5f, .top_k = 2, .top_p = 0.5f}};
    for (int k = 0; k < 4; k++) {
        CHECK_OK(llm_sampler_init(&sp, 6, &opts[k], &err), err);
        int n = 40000, count[6] = {0};
        for (int i = 0; i < n; i++) {
            int id = llm_sampler_pick(&sp, z, &rng);
            CHECK_MSG(id >= 0 && id < 6, "options %d: id %d", k, id);
            if (id >= 0 && id < 6) count[id]++;
        }
        CHECK_MSG(count[0] == 0 && count[3] == 0, "options %d: NaN logits drawn %d and %d times", k, count[0],
                  count[3]);
        if (k == 0) { /* no truncation: the softmax of the four numbers */
            double sum = exp(1.0) + exp(2.0) + exp(1.5) + exp(0.5);
            for (int j = 1; j < 6; j++) {
                if (j == 3) continue;
                double p = exp((double)z[j]) / sum, sd = sqrt(p * (1 - p) / n);
                CHECK_MSG(fabs((double)count[j] / n - p) < 5 * sd, "token %d: %g vs %g", j,
                          (double)count[j] / n, p);
            }
        }
        llm_sampler_free(&sp);
    }
    const float inf[5] = {1.0f, INFINITY, NAN, INFINITY, 0.0f};
    CHECK(llm_sample_argmax(inf, 5) == 1);
    CHECK_OK(llm_sampler_init(&sp, 5, &(llm_sample_opts){.temp = 1, .top_p = 0.9f}, &err), err);
    int seen[5] = {0};
    for (int i = 0; i < 4000; i++) seen[llm_sampler_pick(&sp, inf, &rng)]++;
    CHECK_MSG(seen[1] + seen[3] == 4000 && seen[1] > 1700 && seen[3] > 1700, "%d %d", seen[1], seen[3]);
    llm_sampler_free(&sp);
    const float nan[4] = {NAN, NAN, NAN, NAN};
    CHECK(llm_sample_argmax(nan, 4) == 0);
    for (int k = 0; k < 4; k++) {
        CHECK_OK(llm_sampler_init(&sp, 4, &opts[k], &err), err);
        CHECK(llm_sampler_pick(&sp, nan, &rng) == 0);
        llm_sampler_free(&sp);
    }
}

/* Scoring refuses a target outside the vocabulary (naming it) instead of
 * reading past the logits. */
static void test_scored_ids_checked(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, 32, 2, 0);
    llm_infer s;
    CHECK_OK(llm_infer_init(&s, &m, &(llm_infer_opts){.ctx = 8}, &err), err);
    int32_t tok[5] = {1, 2, 3, 4, 40}; /* 40: one past the vocabulary */
    double nats;
    int64_t scored;
    CHECK(llm_infer_nll(&s, tok, 5, 4, &nats, &scored, &err) == LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "token 5 of 5: id 40 outside the vocabulary (0..39)") != NULL, "%s", err.msg);
    int32_t in[4] = {1, 2, 3, 4}, tg[4] = {-1, -1, 7, 41};
    double lp;
    CHECK(llm_examples_logp(&s, NULL, 0, in, tg, 4, &lp, &err) == LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "token 4 of 4: id 41 outside") != NULL, "%s", err.msg);
    llm_infer_free(&s);
    llm_model_free(&m);
}

static int count_token(void *ctx, int seq, int32_t token)
{
    (void)seq;
    if (token >= 0) ++*(int *)ctx;
    return 0;
}

/* A model whose logits are all NaN (a NaN final norm gain, as a checkpoint
 * could hold before loads checked; finite weights whose activations
 * overflow give the same): perplexity, a label's log-likelihood and
 * generation each stop with an error instead of a NaN or noise. */
static void test_nonfinite_logits(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m, 32, 2, 0);
    m.p.norm[5] = NAN;
    llm_infer s;
    CHECK_OK(llm_infer_init(&s, &m, &(llm_infer_opts){.ctx = 8}, &err), err);
    int32_t tok[5] = {1, 2, 3, 4, 5};
    double nats = 0;
    int64_t scored = 0;
    CHECK(llm_infer_nll(&s, tok, 5, 4, &nats, &scored, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "not finite") != NULL, "%s", err.msg);
    int32_t in[4] = {1, 2, 3, 4}, tg[4] = {-1, -1, 7, 8};
    double lp = 0;
    CHECK(llm_examples_logp(&s, NULL, 0, in, tg, 4, &lp, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "not finite") != NULL, "%s", err.msg);
    const int32_t *prompts[1] = {tok};
    int64_t lens[1] = {3};
    int made = 0;
    llm_gen_opts go = {.max_new = 4, .sample = {.temp = 1, .top_p = 1}, .seed = 1, .stop = {-1, -1}};
    llm_gen_stats st;
    CHECK(llm_generate(&s, prompts, lens, 1, &go, count_token, &made, &st, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(made == 0 && strstr(err.msg, "logit 0 is ") &&
                  strstr(err.msg, "nan: the model's activations are not finite"),
              "%d tokens; %s", made, err.msg);
    llm_infer_free(&s);
    llm_model_free(&m);
}

/* A quantized linear with rows wider than 32768 values (w2 of a model with
 * that hidden width) quantizes its inputs on the heap.  Without memory for
 * them, the batched pass (20 tokens) ends with LLM_ERR_NOMEM and nothing is
 * appended to the cache: the same feed, memory back, gives the logits it
 * gave before.  The decode step (1 token) quantizes its inputs into the
 * state's buffer, grown with the others by the first pass: a fresh state
 * without memory fails that way; one that has run needs no more memory and
 * gives the same logits again. */
static void test_out_of_memory(void)
{
    llm_error err = {0};
    llm_config c = {.vocab = 40, .dim = 32, .n_layers = 1, .n_heads = 4, .n_kv_heads = 4, .hidden = 32800,
                    .seq_len = 24, .norm_eps = 1e-5f, .rope_theta = 10000};
    llm_model m;
    CHECK_OK(llm_model_init(&m, &c, 3, &err), err);
    llm_linear *w2 = &m.lin[llm_linear_index(0, LLM_LIN_W2)];
    w2->q = calloc(1, sizeof *w2->q);
    CHECK_OK(llm_quantize_rtn(w2->w, w2->out, w2->in, &(llm_qformat){.scheme = LLM_Q_INT8}, w2->q, &err), err);
    int32_t tok[20];
    for (int i = 0; i < 20; i++) tok[i] = (i * 7) % 40;
    float before[40];
    for (int n = 1; n <= 20; n += 19) {
        llm_infer s;
        CHECK_OK(llm_infer_init(&s, &m, &(llm_infer_opts){.ctx = 24}, &err), err);
        CHECK_OK(llm_infer_feed(&s, tok, n, 0, &err), err); /* the buffers are there from now on */
        memcpy(before, s.last, sizeof before);
        llm_infer_reset(&s);
        err = (llm_error){0};
        nomem_fail(1);
        int rc = llm_infer_feed(&s, tok, n, 0, &err);
        nomem_fail(0);
        if (n == 1) {
            CHECK_MSG(rc == 0 && s.pos == 1 && !memcmp(before, s.last, sizeof before),
                      "a decode step without memory: %d, %s", rc, err.msg);
            llm_infer_free(&s);
            CHECK_OK(llm_infer_init(&s, &m, &(llm_infer_opts){.ctx = 24}, &err), err);
            nomem_fail(1);
            rc = llm_infer_feed(&s, tok, n, 0, &err);
            nomem_fail(0);
        }
        CHECK_MSG(rc == LLM_ERR_NOMEM && strstr(err.msg, "out of memory"), "%d tokens: %d, %s", n, rc, err.msg);
        CHECK(s.pos == 0);
        CHECK_OK(llm_infer_feed(&s, tok, n, 0, &err), err);
        CHECK_MSG(s.pos == n && !memcmp(before, s.last, sizeof before), "%d tokens: not as before", n);
        llm_infer_free(&s);
    }
    llm_model_free(&m);
}

int main(void)
{
    RUN(test_sampler_nan);
    RUN(test_scored_ids_checked);
    RUN(test_nonfinite_logits);
    RUN(test_cache_matches_forward);
    RUN(test_nll_matches_training_loss);
    RUN(test_buffers_follow_tokens);
    RUN(test_infer_errors);
    RUN(test_batched_decode_matches_single);
    RUN(test_quantized_decode_matches_prefill);
    RUN(test_sampler);
    RUN(test_out_of_memory);
    return check_done();
}
