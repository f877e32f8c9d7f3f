/* Unit tests for lib/generate: greedy continuations, with several slots and
 * prompts longer than a prefill chunk, are the argmax of llm_model_forward's
 * probabilities over each growing sequence; every sequence gets max_new
 * tokens and then its end, once; a stop id ends a sequence before it, where
 * the unstopped run put it; a full context ends one after ctx - len + 1
 * tokens, counted in the stats; sampled continuations do not depend on the
 * number of slots; bad prompts, bad options and an emit error stop it with
 * their codes; out of memory is LLM_ERR_NOMEM.  (test_infer checks
 * non-finite logits.) */
#include <math.h>
#include <string.h>

#include "check.h"
#include "generate.h"
#include "nomem.h"

#define V 40
#define N_PROMPTS 5
#define MAX_MADE 24

static void make_model(llm_model *m)
{
    llm_error err = {0};
    llm_config c = {.vocab = V, .dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .hidden = 48,
                    .seq_len = 24, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_model_init(m, &c, 11, &err), err);
    unsigned long long state = 8;
    for (int64_t i = 0; i < m->n_params; i++) m->arena[i] += (float)(0.1 * check_normal(&state));
}

/* Prompts of 1, 3, 11, 6 and 2 tokens (11: longer than a chunk of 8). */
static const int32_t prompt_ids[N_PROMPTS][11] = {
    {7}, {1, 2, 3}, {30, 12, 5, 5, 9, 38, 0, 21, 17, 4, 33}, {8, 8, 8, 1, 39, 2}, {25, 26}};
static const int64_t prompt_lens[N_PROMPTS] = {1, 3, 11, 6, 2};
static const int32_t *const prompts[N_PROMPTS] = {prompt_ids[0], prompt_ids[1], prompt_ids[2], prompt_ids[3],
                                                  prompt_ids[4]};

/* What emit saw, per sequence: its tokens, and whether it ended (once, last). */
typedef struct made {
    int32_t tok[N_PROMPTS][MAX_MADE];
    int n[N_PROMPTS], ends[N_PROMPTS], after_end, fail_at;
} made;

static int collect(void *ctx, int seq, int32_t token)
{
    made *w = ctx;
    if (w->fail_at-- == 0) return LLM_ERR_IO;
    if (w->ends[seq]) w->after_end++;
    if (token < 0) w->ends[seq]++;
    else if (w->n[seq] < MAX_MADE) w->tok[seq][w->n[seq]++] = token;
    return 0;
}

/* Runs llm_generate on the prompts with the given slots, chunk, context and
 * options; checks each sequence ended exactly once. */
static int run(const llm_model *m, int slots, int chunk, int ctx, const llm_gen_opts *o, made *w,
               llm_gen_stats *st, llm_error *err)
{
    llm_infer s;
    LLM_TRY(llm_infer_init(&s, m, &(llm_infer_opts){.ctx = ctx, .chunk = chunk, .slots = slots}, err));
    memset(w, 0, sizeof *w);
    w->fail_at = -1;
    int rc = llm_generate(&s, prompts, prompt_lens, N_PROMPTS, o, collect, w, st, err);
    llm_infer_free(&s);
    for (int k = 0; rc == 0 && k < N_PROMPTS; k++)
        CHECK_MSG(w->ends[k] == 1, "sequence %d ended %d times", k, w->ends[k]);
    CHECK(w->after_end == 0);
    return rc;
}

/* Each new token maximizes the reference forward pass's probability after
 * the prompt and the tokens before it (within 1e-5, for near ties). */
static void test_greedy_is_argmax_of_forward(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m);
    const int configs[3][2] = {{1, 24}, {2, 8}, {5, 4}}; /* slots, chunk */
    llm_gen_opts o = {.max_new = 9, .sample = {.temp = 0, .top_p = 1}, .stop = {-1, -1}};
    for (int c = 0; c < 3; c++) {
        made w;
        llm_gen_stats st;
        CHECK_OK(run(&m, configs[c][0], configs[c][1], 24, &o, &w, &st, &err), err);
        CHECK(st.prompt_tokens == 23 && st.new_tokens == N_PROMPTS * 9 && st.full == 0);
        for (int k = 0; k < N_PROMPTS; k++) {
            int len = (int)prompt_lens[k], n = len + w.n[k];
            int32_t seq[11 + MAX_MADE], none[11 + MAX_MADE];
            memcpy(seq, prompts[k], (size_t)len * sizeof *seq);
            memcpy(seq + len, w.tok[k], (size_t)w.n[k] * sizeof *seq);
            for (int i = 0; i < n; i++) none[i] = -1;
            CHECK_MSG(w.n[k] == 9, "slots %d: sequence %d made %d", configs[c][0], k, w.n[k]);
            llm_acts a;
            CHECK_OK(llm_acts_init(&a, &m.cfg, 1, n, &err), err);
            llm_model_forward(&m, &a, seq, none);
            for (int j = 0; j < w.n[k]; j++) {
                const float *p = a.probs + (size_t)(len - 1 + j) * V;
                float top = p[0];
                for (int v = 1; v < V; v++) top = fmaxf(top, p[v]);
                CHECK_MSG(p[w.tok[k][j]] >= top - 1e-5f, "slots %d, sequence %d, token %d: %d has %g, the top %g",
                          configs[c][0], k, j, w.tok[k][j], (double)p[w.tok[k][j]], (double)top);
            }
            llm_acts_free(&a);
        }
    }
    llm_model_free(&m);
}

/* A stop id ends each sequence just before its first occurrence in the
 * unstopped greedy run (or at max_new); either of the two ids does. */
static void test_stop_ids(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m);
    llm_gen_opts o = {.max_new = 12, .sample = {.temp = 0, .top_p = 1}, .stop = {-1, -1}};
    made free_run, w;
    llm_gen_stats st;
    CHECK_OK(run(&m, 2, 8, 24, &o, &free_run, &st, &err), err);
    const int32_t stops[2] = {free_run.tok[0][3], free_run.tok[3][5]};
    for (int which = 0; which < 3; which++) { /* stop[0] only, stop[1] only, both */
        o.stop[0] = which != 1 ? stops[0] : -1;
        o.stop[1] = which != 0 ? stops[1] : -1;
        CHECK_OK(run(&m, 2, 8, 24, &o, &w, &st, &err), err);
        int64_t total = 0;
        for (int k = 0; k < N_PROMPTS; k++) {
            int want = 0;
            while (want < 12 && free_run.tok[k][want] != o.stop[0] && free_run.tok[k][want] != o.stop[1]) want++;
            CHECK_MSG(w.n[k] == want && !memcmp(w.tok[k], free_run.tok[k], (size_t)want * sizeof(int32_t)),
                      "stops %d %d, sequence %d: %d tokens, want %d", o.stop[0], o.stop[1], k, w.n[k], want);
            total += want;
        }
        CHECK(st.new_tokens == total);
    }
    llm_model_free(&m);
}

/* A context of 14 holds the 11-token prompt and two more fed tokens, so
 * that sequence ends after 4 and counts as cut short; the others reach
 * max_new; with max_new = 4 none is cut short. */
static void test_full_context(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m);
    made w;
    llm_gen_stats st;
    for (int max_new = 4; max_new <= 8; max_new += 4) {
        llm_gen_opts o = {.max_new = max_new, .sample = {.temp = 0, .top_p = 1}, .stop = {-1, -1}};
        CHECK_OK(run(&m, 3, 8, 14, &o, &w, &st, &err), err);
        for (int k = 0; k < N_PROMPTS; k++) {
            int room = 14 - (int)prompt_lens[k] + 1, want = max_new < room ? max_new : room;
            CHECK_MSG(w.n[k] == want, "max_new %d, sequence %d: %d tokens, want %d", max_new, k, w.n[k], want);
        }
        CHECK_MSG(st.full == (max_new == 8), "max_new %d: %d cut short", max_new, st.full);
    }
    llm_model_free(&m);
}

/* Sampling: each sequence's tokens are the same whatever the slots, and
 * differ with the seed. */
static void test_sampling_independent_of_slots(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m);
    llm_gen_opts o = {.max_new = 10, .sample = {.temp = 1.5f, .top_k = 20, .top_p = 0.95f}, .seed = 3,
                      .stop = {-1, -1}};
    made one, w;
    llm_gen_stats st;
    CHECK_OK(run(&m, 1, 24, 24, &o, &one, &st, &err), err);
    const int slots[2] = {2, 5};
    for (int c = 0; c < 2; c++) {
        CHECK_OK(run(&m, slots[c], 4, 24, &o, &w, &st, &err), err);
        CHECK_MSG(!memcmp(w.tok, one.tok, sizeof w.tok) && !memcmp(w.n, one.n, sizeof w.n), "slots %d", slots[c]);
    }
    o.seed = 4;
    CHECK_OK(run(&m, 1, 24, 24, &o, &w, &st, &err), err);
    CHECK(memcmp(w.tok, one.tok, sizeof w.tok) != 0);
    llm_model_free(&m);
}

static void test_errors(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m);
    llm_infer s;
    CHECK_OK(llm_infer_init(&s, &m, &(llm_infer_opts){.ctx = 10, .slots = 2}, &err), err);
    llm_gen_opts o = {.max_new = 3, .sample = {.temp = 0, .top_p = 1}, .stop = {-1, -1}};
    made w = {.fail_at = -1};
    llm_gen_stats st;
    const int32_t ids[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 40};
    const int32_t *two[2] = {ids, ids};
    const int64_t too_long[2] = {2, 11}, empty[2] = {0, 2};
    CHECK(llm_generate(&s, two, too_long, 2, &o, collect, &w, &st, &err) == LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "prompt 1 is 11 tokens; the context holds 10"), "%s", err.msg);
    CHECK(llm_generate(&s, two, empty, 2, &o, collect, &w, &st, &err) == LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "prompt 0 is 0 tokens"), "%s", err.msg);
    const int32_t *outside[1] = {ids + 10}; /* 11, 40: one past the vocabulary */
    CHECK(llm_generate(&s, outside, (const int64_t[]){2}, 1, &o, collect, &w, &st, &err) == LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "id 40 outside the vocabulary"), "%s", err.msg);
    llm_gen_opts bad = o;
    bad.sample.top_p = 0;
    CHECK(llm_generate(&s, two, (const int64_t[]){2, 2}, 2, &bad, collect, &w, &st, &err) == LLM_ERR_ARG);
    /* emit's error ends it at once: the third call fails, nothing follows */
    memset(&w, 0, sizeof w);
    w.fail_at = 2;
    CHECK(llm_generate(&s, two, (const int64_t[]){2, 2}, 2, &o, collect, &w, &st, &err) == LLM_ERR_IO);
    CHECK_MSG(w.n[0] + w.n[1] + w.ends[0] + w.ends[1] == 2 && w.fail_at == -1, "%d calls after the error",
              -1 - w.fail_at);
    llm_infer_free(&s);
    llm_model_free(&m);
}

static int generate_small(void *model, llm_error *err)
{
    llm_gen_opts o = {.max_new = 3, .sample = {.temp = 1, .top_p = 0.9f}, .seed = 1, .stop = {-1, -1}};
    made w;
    llm_gen_stats st;
    LLM_TRY(run(model, 2, 4, 16, &o, &w, &st, err));
    return st.new_tokens == 3 * N_PROMPTS ? 0 : LLM_ERR_STATE;
}

static void test_out_of_memory(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m);
    /* the state's, the sampler's two, the loop's six, the passes' buffers */
    CHECK(nomem_sweep("generate", generate_small, &m) > 8);
    CHECK_OK(generate_small(&m, &err), err);
    llm_model_free(&m);
}

int main(void)
{
    RUN(test_greedy_is_argmax_of_forward);
    RUN(test_stop_ids);
    RUN(test_full_context);
    RUN(test_sampling_independent_of_slots);
    RUN(test_errors);
    RUN(test_out_of_memory);
    return check_done();
}
