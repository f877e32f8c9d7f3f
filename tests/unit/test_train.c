/* Unit tests for lib/tok, lib/data, lib/ckpt and lib/train: tokenizing (a
 * tokenizer without BOS too), the held-out split and batches, checkpoint
 * round trips and their errors (weights that are not finite, a tokenizer
 * wider than the model), the trainer's refusal of ids its model cannot take,
 * a tiny model that must learn a repetitive text far below its unigram
 * entropy, and how a run starts: resumed, continued or refused, which given
 * options a resumed run ignores, which disagree with a checkpoint or an
 * adapter, and the settings of a fresh run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "check.h"
#include "ckpt.h"
#include "data.h"
#include "examples.h"
#include "train.h"

static const char text[] =
    "the cat sat on the mat. the dog sat on the log. the cat saw the dog. "
    "the dog saw the cat. a cat and a dog sat on a mat and a log. ";

static void make_corpus(llm_data *d, llm_tok *tok, int repeats)
{
    llm_error err = {0};
    size_t n = strlen(text);
    char *buf = malloc(n * (size_t)repeats + 1);
    for (int i = 0; i < repeats; i++) memcpy(buf + n * (size_t)i, text, n);
    llm_tok_bytes(tok);
    CHECK_OK(llm_data_from_text(d, buf, n * (size_t)repeats, tok, 0.1, &err), err);
    free(buf);
}

static void test_tokenizer(void)
{
    llm_tok t;
    llm_tok_bytes(&t);
    int32_t ids[8];
    CHECK(llm_tok_encode_text(&t, "h\xffi", 3, ids, NULL) == 3 && ids[0] == 'h' && ids[1] == 255);
    char piece[LLM_TOK_MAX_PIECE];
    CHECK(llm_tok_decode(&t, 'h', piece) == 1 && piece[0] == 'h');
    CHECK(llm_tok_decode(&t, t.bos, piece) == 0 && llm_tok_decode(&t, t.eos, piece) == 0);
    CHECK(t.vocab == 258 && t.bos == 256 && t.eos == 257);
}

static void test_data_split_and_batches(void)
{
    llm_error err = {0};
    llm_tok tok;
    llm_data d;
    make_corpus(&d, &tok, 10);
    CHECK(d.n_tokens == 1 + 10 * (int64_t)strlen(text) && d.tokens[0] == tok.bos);
    CHECK(d.n_tokens - d.n_train == (int64_t)(d.n_tokens * 0.1));
    CHECK_OK(llm_data_check(&d, 16, &err), err);
    CHECK(llm_data_check(&d, 5000, &err) == LLM_ERR_FORMAT && strstr(err.msg, "--seq 5000"));
    int32_t in[4 * 16], tg[4 * 16], in2[4 * 16], tg2[4 * 16];
    llm_rng a, b;
    llm_rng_seed(&a, 3), llm_rng_seed(&b, 3);
    llm_data_train_batch(&d, &a, 4, 16, in, tg);
    llm_data_train_batch(&d, &b, 4, 16, in2, tg2);
    CHECK(!memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg));
    int shifted = 1, in_train = 1;
    for (int b2 = 0; b2 < 4; b2++)
        for (int t = 0; t + 1 < 16; t++) shifted &= tg[b2 * 16 + t] == in[b2 * 16 + t + 1];
    for (int i = 0; i < 64; i++) in_train &= in[i] >= 0 && in[i] < 258;
    CHECK(shifted && in_train);
    int64_t nw = llm_data_val_windows(&d, 16);
    CHECK(nw == (d.n_tokens - d.n_train - 1) / 16 && nw > 0);
    llm_data_val_window(&d, 16, nw - 1, in, tg);
    CHECK(tg[15] == d.tokens[d.n_train + nw * 16]); /* the last window ends inside the data */
    llm_data_free(&d);
}

static llm_config tiny_config(void)
{
    return (llm_config){.vocab = 258, .dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                        .hidden = 64, .seq_len = 32, .tie = 0, .norm_eps = 1e-5f,
                        .rope_theta = 10000};
}

static void test_checkpoint_roundtrip(void)
{
    llm_error err = {0};
    llm_config c = tiny_config();
    llm_model m, back;
    CHECK_OK(llm_model_init(&m, &c, 9, &err), err);
    llm_optim o, o2;
    llm_ckpt_train st = {.step = 7, .tokens = 700, .batch = 4, .seq = 32, .accum = 2, .seed = 5,
                         .data_hash = 0xfeedfacecafebeefull, .val_frac = 0.1};
    llm_optim_defaults(&st.optim, LLM_OPTIM_ADAMW);
    st.optim.lr = 3e-4f, st.optim.steps = 100, st.optim.warmup = 10;
    llm_rng_seed(&st.rng, 11);
    CHECK_OK(llm_optim_init(&o, &st.optim, m.n_params, &err), err);
    for (int64_t i = 0; i < m.n_params; i++) o.m[i] = (float)i * 1e-3f, o.v[i] = (float)i * 1e-6f;
    o.t = 7;
    char path[600];
    snprintf(path, sizeof path, "%s/ck.llmt", check_tmpdir());
    CHECK_OK(llm_ckpt_save(path, &m, &o, &st, &err), err);
    llm_ckpt_train st2;
    int has_train;
    CHECK_OK(llm_ckpt_load(path, &back, &o2, &st2, &has_train, &err), err);
    CHECK(has_train && back.n_params == m.n_params);
    CHECK(!memcmp(back.arena, m.arena, (size_t)m.n_params * sizeof(float)));
    CHECK(!memcmp(o2.m, o.m, (size_t)m.n_params * sizeof(float)) &&
          !memcmp(o2.v, o.v, (size_t)m.n_params * sizeof(float)) && o2.t == 7);
    CHECK(st2.step == 7 && st2.tokens == 700 && st2.accum == 2 && st2.data_hash == st.data_hash);
    CHECK(st2.optim.lr == st.optim.lr && st2.optim.warmup == 10 && st2.optim.kind == LLM_OPTIM_ADAMW);
    CHECK(!memcmp(&st2.rng, &st.rng, sizeof st.rng));
    CHECK(back.cfg.dim == 32 && back.cfg.n_kv_heads == 2 && back.cfg.tie == 0);
    llm_model_free(&back);
    llm_optim_free(&o2);
    /* a model-only checkpoint */
    CHECK_OK(llm_ckpt_save(path, &m, NULL, NULL, &err), err);
    CHECK_OK(llm_ckpt_load(path, &back, &o2, &st2, &has_train, &err), err);
    CHECK(!has_train && o2.m == NULL);
    llm_model_free(&back);
    llm_optim_free(&o);
    llm_model_free(&m);
}

static void test_checkpoint_errors(void)
{
    llm_error err = {0};
    llm_config c = tiny_config();
    llm_model m, back;
    CHECK_OK(llm_model_init(&m, &c, 9, &err), err);
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/ok.llmt", check_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.llmt", check_tmpdir());
    CHECK_OK(llm_ckpt_save(path, &m, NULL, NULL, &err), err);
    int has;
    /* drop one tensor */
    llm_reader *r;
    llm_writer *w;
    CHECK_OK(llm_reader_open(&r, path, &err), err);
    CHECK_OK(llm_writer_open(&w, bad, NULL, &err), err);
    const llm_record *rec;
    while (llm_reader_next(r, &rec, &err) > 0) {
        void *data;
        size_t n;
        CHECK_OK(llm_reader_read_all(r, &data, &n, &err), err);
        if (strcmp(rec->name, "layers.1.mlp.w3") != 0) CHECK_OK(llm_writer_record(w, rec, data, &err), err);
        free(data);
    }
    llm_reader_close(r);
    CHECK_OK(llm_writer_close(w, &err), err);
    CHECK(llm_ckpt_load(bad, &back, NULL, NULL, &has, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "layers.1.mlp.w3 is missing") != NULL, "%s", err.msg);
    /* a stream that is not a checkpoint */
    CHECK_OK(llm_writer_open(&w, bad, NULL, &err), err);
    llm_record x = {.kind = LLM_RECORD_TENSOR, .name = "x", .dtype = LLM_DTYPE_F32,
                    .shape = llm_shape_make(1, (int64_t[]){1})};
    float one = 1;
    CHECK_OK(llm_writer_record(w, &x, &one, &err), err);
    CHECK_OK(llm_writer_close(w, &err), err);
    CHECK(llm_ckpt_load(bad, &back, NULL, NULL, &has, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "not a model checkpoint") && strstr(err.msg, "bad.llmt"), "%s", err.msg);

    /* a weight or an optimizer moment that is not a number, named by tensor
     * and element, through both loaders */
    llm_ckpt_train st = {.batch = 4, .seq = 32, .accum = 1, .val_frac = 0.1};
    llm_optim_defaults(&st.optim, LLM_OPTIM_ADAMW);
    llm_optim o, o2;
    CHECK_OK(llm_optim_init(&o, &st.optim, m.n_params, &err), err);
    const llm_param_tensor *w1 = llm_model_tensor(&m, "layers.0.mlp.w1");
    float *spots[3] = {m.p.layers[1].attn_norm + 5, m.p.tok_emb + 1234, o.v + w1->offset + 9};
    const float values[3] = {NAN, INFINITY, NAN};
    const char *want[3] = {"layers.1.attn.norm: element 5 is nan, not a finite number",
                           "tok_emb: element 1234 is inf, not a finite number",
                           "optim.v.layers.0.mlp.w1: element 9 is nan, not a finite number"};
    for (int k = 0; k < 3; k++) {
        float keep = *spots[k];
        *spots[k] = values[k];
        CHECK_OK(llm_ckpt_save(bad, &m, &o, &st, &err), err);
        *spots[k] = keep;
        CHECK(llm_ckpt_load(bad, &back, &o2, NULL, &has, &err) == LLM_ERR_FORMAT);
        CHECK_MSG(strstr(err.msg, want[k]) && strstr(err.msg, "bad.llmt"), "%s", err.msg);
        if (k == 2) continue; /* a model alone reads no moments */
        CHECK(llm_ckpt_load_model(bad, &back, &err) == LLM_ERR_FORMAT);
        CHECK_MSG(strstr(err.msg, want[k]) != NULL, "%s", err.msg);
    }
    llm_optim_free(&o);
    llm_model_free(&m);

    /* a byte-level tokenizer (ids to 257) on a model of 100 ids */
    c.vocab = 100;
    CHECK_OK(llm_model_init(&m, &c, 9, &err), err);
    CHECK_OK(llm_ckpt_save(bad, &m, NULL, NULL, &err), err);
    CHECK(llm_ckpt_load_model(bad, &back, &err) == LLM_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "byte-level tokenizer (ids 0..257) does not fit the model's vocabulary (0..99)"),
              "%s", err.msg);
    llm_model_free(&m);
}

/* A tokenizer without BOS (a BPE record may say bos=-1): the corpus and an
 * example hold the text's ids alone, never -1; an empty text has nothing to
 * put before a label and is refused. */
static void test_text_without_bos(void)
{
    llm_error err = {0};
    char bytes[256][8];
    const char *pieces[259] = {"<unk>", "x", "y"};
    float scores[259] = {0};
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        pieces[3 + b] = bytes[b];
    }
    llm_tok t;
    CHECK_OK(llm_tok_bpe(&t, 259, pieces, NULL, scores, -1, -1, &err), err);
    int32_t ids[8];
    int64_t n = llm_tok_encode_text(&t, "ab", 2, ids, NULL);
    llm_data d;
    CHECK_OK(llm_data_from_text(&d, "ab", 2, &t, 0, &err), err);
    CHECK_MSG(n == 3 && d.n_tokens == n && !memcmp(d.tokens, ids, (size_t)n * sizeof *ids),
              "%lld tokens, first %d", (long long)d.n_tokens, d.n_tokens ? (int)d.tokens[0] : 0);
    llm_data_free(&d);
    int32_t in[8], tg[8];
    int used = llm_example_encode(&t, "ab", 2, "y", 1, 8, in, tg, &err);
    CHECK_MSG(used == 4 && !memcmp(in, ids, 3 * sizeof *ids), "%d positions, first id %d", used, (int)in[0]);
    CHECK(llm_example_encode(&t, "", 0, "y", 1, 8, in, tg, &err) == LLM_ERR_ARG && strstr(err.msg, "no BOS"));
    llm_tok_free(&t);
}

/* The trainer refuses ids its model cannot take, naming the first with its
 * place, before any pass runs: one past the vocabulary in the text, in an
 * example's targets, a negative input; with no adapter, a LoRA adapter, and
 * two prompt-tuning tokens (whose ids V, V+1 only the trainer itself may
 * put in front of a window). */
static void test_trainer_checks_ids(void)
{
    llm_error err = {0};
    llm_tok tok;
    llm_data d;
    make_corpus(&d, &tok, 10);
    d.tokens[37] = 258;
    llm_config c = tiny_config();
    llm_model m;
    CHECK_OK(llm_model_init(&m, &c, 1, &err), err);
    llm_ckpt_train st = {.batch = 2, .seq = 16, .accum = 1};
    llm_optim_defaults(&st.optim, LLM_OPTIM_ADAMW);
    int32_t in[2 * 16], tg[2 * 16];
    for (int i = 0; i < 2 * 16; i++) in[i] = 'a' + i % 16, tg[i] = i % 16 > 12 ? 'b' : -1;
    llm_examples ex = {.T = 16, .n = 2, .n_train = 2, .inputs = in, .targets = tg};
    const llm_adapter_config kinds[3] = {{0}, {.rank = 2, .alpha = 4, .targets = LLM_LORA_ALL}, {.n_virtual = 2}};
    for (int k = 0; k < 3; k++) {
        llm_adapter ad;
        if (k) {
            CHECK_OK(llm_adapter_init(&ad, &m, &kinds[k], 2, &err), err);
            CHECK_OK(llm_adapter_attach(&m, &ad, &err), err);
        }
        llm_trainer t;
        char want[128];
        int rc = llm_trainer_init(&t, &m, &d, &st, NULL, &err);
        snprintf(want, sizeof want, "the text: token 38 of %lld: id 258 outside the vocabulary (0..257)",
                 (long long)d.n_tokens);
        CHECK_MSG(rc == LLM_ERR_ARG && strstr(err.msg, want), "adapter %d: %d '%s'", k, rc, err.msg);
        if (rc == 0) llm_trainer_free(&t);
        const struct {
            int32_t *at, value;
            const char *msg;
        } bad[2] = {{tg + 16 + 14, 258, "example 2: token 15 of 16: id 258 outside the vocabulary (0..257)"},
                    {in + 3, -1, "example 1: token 4 of 16: id -1 outside the vocabulary (0..257)"}};
        for (int b = 0; b < 2; b++) {
            int32_t keep = *bad[b].at;
            *bad[b].at = bad[b].value;
            rc = llm_trainer_init_examples(&t, &m, &ex, &st, NULL, &err);
            *bad[b].at = keep;
            CHECK_MSG(rc == LLM_ERR_ARG && strstr(err.msg, bad[b].msg), "adapter %d: %d '%s'", k, rc, err.msg);
            if (rc == 0) llm_trainer_free(&t);
        }
        CHECK_OK(llm_trainer_init_examples(&t, &m, &ex, &st, NULL, &err), err);
        llm_trainer_free(&t);
        if (k) {
            llm_adapter_detach(&m);
            llm_adapter_free(&ad);
        }
    }
    llm_model_free(&m);
    llm_data_free(&d);
}

/* Entropy of the byte distribution of text, in nats: what a model that
 * ignores context at best achieves. */
static double unigram_entropy(void)
{
    double count[256] = {0}, n = (double)strlen(text), h = 0;
    for (const char *p = text; *p; p++) count[(unsigned char)*p]++;
    for (int i = 0; i < 256; i++)
        if (count[i]) h -= count[i] / n * log(count[i] / n);
    return h;
}

static void test_tiny_model_learns(void)
{
    llm_error err = {0};
    llm_tok tok;
    llm_data d;
    make_corpus(&d, &tok, 40);
    llm_config c = tiny_config();
    llm_model m;
    CHECK_OK(llm_model_init(&m, &c, 1, &err), err);
    llm_ckpt_train st = {.batch = 8, .seq = 32, .accum = 1};
    llm_optim_defaults(&st.optim, LLM_OPTIM_ADAMW);
    st.optim.lr = 1e-2f, st.optim.min_lr = 1e-3f, st.optim.steps = 150, st.optim.warmup = 10;
    llm_rng_seed(&st.rng, 2);
    llm_trainer t;
    CHECK_OK(llm_trainer_init(&t, &m, &d, &st, NULL, &err), err);
    float before, after;
    CHECK_OK(llm_trainer_eval(&t, 0, &before, &err), err);
    llm_step_stats s = {0};
    while (t.st.step < st.optim.steps) CHECK_OK(llm_trainer_step(&t, &s, &err), err);
    CHECK_OK(llm_trainer_eval(&t, 0, &after, &err), err);
    double h = unigram_entropy();
    /* the text is nearly periodic: a model that reads context gets far below
     * the entropy of single bytes (about 2.9 nats here) */
    CHECK_MSG(before > 5.0 && after < 0.35 * h, "validation loss %.3f -> %.3f, unigram entropy %.3f",
              before, after, h);
    CHECK(t.st.tokens == 150 * 8 * 32);
    llm_trainer_free(&t);
    llm_model_free(&m);
    llm_data_free(&d);
}

/* ZeRO-1 slices against a brute-force owner of each float: every float has
 * exactly one rank, slices are contiguous and in rank order, sizes within one. */
static void test_shard_ranges(void)
{
    const int64_t sizes[] = {0, 1, 7, 64, 1001};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (int ranks = 1; ranks <= 5; ranks++) {
            int64_t n = sizes[i], at = 0, min = n, max = 0;
            int ok = 1;
            for (int r = 0; r < ranks; r++) {
                int64_t lo, hi;
                llm_shard_range(n, ranks, r, &lo, &hi);
                ok &= lo == at && hi >= lo;
                at = hi;
                if (hi - lo < min) min = hi - lo;
                if (hi - lo > max) max = hi - lo;
            }
            CHECK_MSG(ok && at == n && max - min <= 1, "n %lld over %d ranks", (long long)n, ranks);
        }
}

/* Spans cut to a window: each float of the window appears once, with the decay
 * flag of the span that held it (checked float by float). */
static void test_spans_slice(void)
{
    const llm_param_span spans[] = {{0, 5, 0}, {5, 10, 1}, {15, 1, 0}, {16, 9, 1}};
    int decay_of[25];
    for (int s = 0; s < 4; s++)
        for (int64_t i = spans[s].offset; i < spans[s].offset + spans[s].count; i++) decay_of[i] = spans[s].decay;
    for (int lo = 0; lo <= 25; lo++)
        for (int hi = lo; hi <= 25; hi++) {
            llm_param_span out[4];
            int k = llm_spans_slice(spans, 4, lo, hi, out), seen[25] = {0}, ok = 1;
            for (int j = 0; j < k; j++)
                for (int64_t i = out[j].offset; i < out[j].offset + out[j].count; i++) {
                    ok &= i >= 0 && lo + i < hi && out[j].decay == decay_of[lo + i];
                    if (i >= 0 && lo + i < 25) seen[lo + i]++;
                }
            for (int i = 0; i < 25; i++) ok &= seen[i] == (i >= lo && i < hi);
            CHECK_MSG(ok, "window [%d, %d)", lo, hi);
        }
}

/* llm-train's defaults with the options named in `given` set, as its
 * parser leaves them. */
static llm_train_args args_given(unsigned given)
{
    llm_train_args a;
    llm_train_args_defaults(&a);
    a.given = given;
    return a;
}

#define BIT(opt) (1u << LLM_TRAIN_OPT_##opt)

/* A saved state as a run with the defaults would write it. */
static llm_ckpt_train saved_state(uint64_t hash, int64_t step)
{
    llm_train_args a = args_given(0);
    llm_model m = {.cfg = {.seq_len = 128}};
    llm_error err = {0};
    llm_ckpt_train st;
    CHECK_OK(llm_train_fresh(&a, &m, NULL, 0, hash, &st, &err), err);
    st.step = step;
    return st;
}

static void test_opt_names(void)
{
    for (int i = 0; i < LLM_TRAIN_OPT_COUNT; i++) {
        const char *name = llm_train_opt_name((llm_train_opt)i);
        CHECK_MSG(name && *name, "option %d has no name", i);
        for (int j = 0; j < i; j++)
            CHECK_MSG(!name || strcmp(name, llm_train_opt_name((llm_train_opt)j)), "%s twice", name);
    }
    CHECK(!strcmp(llm_train_opt_name(LLM_TRAIN_OPT_KV_HEADS), "kv-heads"));
    CHECK(!strcmp(llm_train_opt_name(LLM_TRAIN_OPT_NO_TIE), "no-tie"));
    CHECK(llm_train_opt_name(LLM_TRAIN_OPT_COUNT) == NULL);
}

/* Resume, continue or refuse, from what the file holds and this run's data. */
static void test_decide_start(void)
{
    llm_error err = {0};
    llm_train_args a = args_given(0);
    llm_train_start start = LLM_TRAIN_NEW;
    unsigned ignored = 7;
    llm_ckpt_train st = saved_state(42, 10), before = st;
    CHECK_OK(llm_train_decide(&a, "m.llmt", 0, 0, 42, 0, &st, &start, &ignored, &err), err);
    CHECK(start == LLM_TRAIN_FROM_MODEL && ignored == 0);
    CHECK_OK(llm_train_decide(&a, "a.llmt", 0, 1, 42, 0, &st, &start, &ignored, &err), err);
    CHECK(start == LLM_TRAIN_FROM_ADAPTER);
    CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err), err);
    CHECK(start == LLM_TRAIN_RESUMED && ignored == 0 && st.optim.steps == 1000);
    CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 43, 0, &st, &start, &ignored, &err), err);
    CHECK(start == LLM_TRAIN_CONTINUED_TEXT);
    a.val_frac = 0.2; /* another split of the same text: continued */
    CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 1, 42, 0, &st, &start, &ignored, &err), err);
    CHECK(start == LLM_TRAIN_CONTINUED_TEXT);
    a.val_frac = 0.1;
    /* examples: the same windows resume, windows of another length continue */
    CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 128, &st, &start, &ignored, &err), err);
    CHECK(start == LLM_TRAIN_RESUMED);
    CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 64, &st, &start, &ignored, &err), err);
    CHECK(start == LLM_TRAIN_CONTINUED_EXAMPLES);
    CHECK(!memcmp(&st, &before, sizeof st));
    /* a finished schedule is refused, unless a larger --steps extends it */
    st = saved_state(42, 1000);
    CHECK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err) == LLM_ERR_ARG);
    CHECK_MSG(!strcmp(err.msg, "m.llmt: already at step 1000 of 1000; give a larger --steps"), "%s", err.msg);
    a = args_given(BIT(STEPS));
    a.steps = 1000;
    CHECK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err) == LLM_ERR_ARG);
    a.steps = 1500;
    CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err), err);
    CHECK(start == LLM_TRAIN_RESUMED && st.optim.steps == 1500 && ignored == 0);
    /* a --steps not given leaves the schedule as it was */
    st = saved_state(42, 10);
    a = args_given(0);
    a.steps = 20;
    CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err), err);
    CHECK(st.optim.steps == 1000);
}

/* A resumed run ignores the training options given that disagree with its
 * state, and only those. */
static void test_decide_ignored(void)
{
    llm_error err = {0};
    llm_train_start start;
    unsigned ignored;
    const llm_train_opt fixed[] = {LLM_TRAIN_OPT_BATCH, LLM_TRAIN_OPT_SEQ, LLM_TRAIN_OPT_ACCUM, LLM_TRAIN_OPT_OPTIM,
                                   LLM_TRAIN_OPT_LR, LLM_TRAIN_OPT_MIN_LR, LLM_TRAIN_OPT_WARMUP, LLM_TRAIN_OPT_WD,
                                   LLM_TRAIN_OPT_CLIP, LLM_TRAIN_OPT_SEED};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        const char *name = llm_train_opt_name(fixed[i]);
        llm_ckpt_train st = saved_state(42, 10);
        /* given with the saved value: nothing to ignore */
        llm_train_args a = args_given(1u << fixed[i]);
        a.lr = st.optim.lr, a.min_lr = st.optim.min_lr, a.warmup = st.optim.warmup, a.wd = st.optim.weight_decay;
        CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err), err);
        CHECK_MSG(start == LLM_TRAIN_RESUMED && ignored == 0, "--%s given as saved: ignored %#x", name, ignored);
        /* another value: ignored when given, not when only defaulted */
        a.batch = 4, a.seq = 64, a.accum = 2, a.optim = LLM_OPTIM_LION, a.lr = 0.5, a.min_lr = 0.25;
        a.warmup = 3, a.wd = 0.5, a.clip = 0.5, a.seed = 7;
        CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err), err);
        CHECK_MSG(ignored == 1u << fixed[i], "--%s given otherwise: ignored %#x", name, ignored);
        a.given = 0;
        CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err), err);
        CHECK(ignored == 0);
    }
    /* the architecture and the adapter are not the resume table's business */
    llm_ckpt_train st = saved_state(42, 10);
    llm_train_args a = args_given(BIT(DIM) | BIT(LORA) | BIT(STEPS));
    a.dim = 64, a.lora = 4, a.steps = 2000;
    CHECK_OK(llm_train_decide(&a, "m.llmt", 1, 0, 42, 0, &st, &start, &ignored, &err), err);
    CHECK(ignored == 0 && st.optim.steps == 2000);
}

/* Given architecture options must match the checkpoint; those not given
 * take its values. */
static void test_check_arch(void)
{
    llm_error err = {0};
    llm_config c = tiny_config(); /* dim 32, 2 layers, 4/2 heads, hidden 64, seq 32, untied */
    llm_train_args a = args_given(0);
    CHECK_OK(llm_train_check_arch(&a, &c, "m.llmt", &err), err);
    a = args_given(BIT(DIM));
    CHECK(llm_train_check_arch(&a, &c, "m.llmt", &err) == LLM_ERR_ARG);
    CHECK_MSG(!strcmp(err.msg, "m.llmt: incompatible checkpoint: it has dim 32, not 128"), "%s", err.msg);
    a.dim = 32;
    CHECK_OK(llm_train_check_arch(&a, &c, "m.llmt", &err), err);
    a = args_given(BIT(KV_HEADS));
    a.kv_heads = 4;
    CHECK(llm_train_check_arch(&a, &c, "m.llmt", &err) == LLM_ERR_ARG && strstr(err.msg, "kv-heads 2, not 4"));
    a = args_given(BIT(TIE));
    CHECK(llm_train_check_arch(&a, &c, "m.llmt", &err) == LLM_ERR_ARG && strstr(err.msg, "it has tie 0, not 1"));
    a = args_given(BIT(NO_TIE));
    a.tie = 0;
    CHECK_OK(llm_train_check_arch(&a, &c, "m.llmt", &err), err);
    c.tie = 1;
    CHECK(llm_train_check_arch(&a, &c, "m.llmt", &err) == LLM_ERR_ARG && strstr(err.msg, "it has tie 1, not 0"));
    c.tie = 0;
    a = args_given(BIT(WINDOW));
    a.window = 8;
    CHECK(llm_train_check_arch(&a, &c, "m.llmt", &err) == LLM_ERR_ARG && strstr(err.msg, "window 0, not 8"));
    a = args_given(BIT(SEQ));
    a.seq = 16; /* shorter windows than the context: fine */
    CHECK_OK(llm_train_check_arch(&a, &c, "m.llmt", &err), err);
    a.seq = 33;
    CHECK(llm_train_check_arch(&a, &c, "m.llmt", &err) == LLM_ERR_ARG);
    CHECK_MSG(!strcmp(err.msg, "m.llmt: incompatible checkpoint: --seq 33 is beyond its context 32"), "%s", err.msg);
}

static void test_check_adapter(void)
{
    llm_error err = {0};
    const unsigned wq_wv = (1u << LLM_LIN_WQ) | (1u << LLM_LIN_WV);
    llm_adapter_config c = {.n_virtual = 0, .rank = 8, .alpha = 16, .targets = wq_wv};
    llm_train_args a = args_given(BIT(LORA) | BIT(LORA_ALPHA) | BIT(LORA_TARGETS));
    a.lora = 8, a.lora_alpha = 16;
    CHECK_OK(llm_train_check_adapter(&a, &c, "a.llmt", &err), err);
    a.lora = 4;
    CHECK(llm_train_check_adapter(&a, &c, "a.llmt", &err) == LLM_ERR_ARG);
    CHECK_MSG(!strcmp(err.msg, "a.llmt: incompatible adapter: it has LoRA rank 8, not 4"), "%s", err.msg);
    a.lora = 8, a.lora_alpha = 8;
    CHECK(llm_train_check_adapter(&a, &c, "a.llmt", &err) == LLM_ERR_ARG && strstr(err.msg, "alpha 16, not 8"));
    a.lora_alpha = 16, a.lora_targets = LLM_LORA_ALL;
    CHECK(llm_train_check_adapter(&a, &c, "a.llmt", &err) == LLM_ERR_ARG &&
          strstr(err.msg, "targets wq,wv, not wq,wk,wv,wo,w1,w2,w3"));
    a.given = BIT(PROMPT_TUNE) | BIT(LORA_TARGETS);
    a.prompt_tune = 4;
    CHECK(llm_train_check_adapter(&a, &c, "a.llmt", &err) == LLM_ERR_ARG &&
          strstr(err.msg, "0 virtual tokens, not 4"));
    c = (llm_adapter_config){.n_virtual = 4}; /* prompt tuning alone: no LoRA targets */
    CHECK(llm_train_check_adapter(&a, &c, "a.llmt", &err) == LLM_ERR_ARG && strstr(err.msg, "targets none, not"));
    a.given = BIT(PROMPT_TUNE);
    CHECK_OK(llm_train_check_adapter(&a, &c, "a.llmt", &err), err);
}

/* The state of a run that is not resumed, and the defaults it derives. */
static void test_fresh_state(void)
{
    llm_error err = {0};
    llm_model m = {.cfg = {.seq_len = 256}};
    llm_train_args a = args_given(0);
    llm_ckpt_train st;
    CHECK_OK(llm_train_fresh(&a, &m, NULL, 0, 42, &st, &err), err); /* a new model: --seq */
    CHECK(st.step == 0 && st.seq == 128 && st.batch == 8 && st.accum == 1 && st.seed == 1337 && st.data_hash == 42);
    CHECK(st.optim.kind == LLM_OPTIM_ADAMW && st.optim.lr == 1e-3f && st.optim.min_lr == 1e-3f / 10);
    CHECK(st.optim.steps == 1000 && st.optim.warmup == 50 && st.optim.weight_decay == 0.1f && st.optim.clip == 1);
    CHECK_OK(llm_train_fresh(&a, &m, "m.llmt", 0, 42, &st, &err), err); /* from a file: its context */
    CHECK(st.seq == 256);
    CHECK_OK(llm_train_fresh(&a, &m, "m.llmt", 100, 42, &st, &err), err); /* examples: their windows */
    CHECK(st.seq == 100);
    a = args_given(BIT(SEQ) | BIT(LR) | BIT(WARMUP));
    a.seq = 64, a.lr = 0.5, a.warmup = 7;
    CHECK_OK(llm_train_fresh(&a, &m, "m.llmt", 0, 42, &st, &err), err);
    CHECK(st.seq == 64 && st.optim.lr == 0.5f && st.optim.min_lr == 0.5f / 10 && st.optim.warmup == 7);
    /* lion's own defaults */
    a = args_given(BIT(OPTIM));
    a.optim = LLM_OPTIM_LION;
    CHECK_OK(llm_train_fresh(&a, &m, NULL, 0, 42, &st, &err), err);
    CHECK(st.optim.kind == LLM_OPTIM_LION && st.optim.lr == 1e-4f && st.optim.min_lr == 1e-4f / 10);
    /* an adapter: no weight decay; virtual tokens: lr 0.1 and room for them */
    llm_adapter ad = {.cfg = {.rank = 4}};
    m.adapter = &ad;
    a = args_given(0);
    CHECK_OK(llm_train_fresh(&a, &m, "m.llmt", 0, 42, &st, &err), err);
    CHECK(st.optim.weight_decay == 0 && st.optim.lr == 1e-3f && st.seq == 256);
    ad.cfg.n_virtual = 16;
    CHECK_OK(llm_train_fresh(&a, &m, "m.llmt", 0, 42, &st, &err), err);
    CHECK(st.seq == 240 && st.optim.lr == 0.1f && st.optim.min_lr == 0.01f && st.optim.weight_decay == 0);
    a = args_given(BIT(SEQ) | BIT(MIN_LR) | BIT(WD));
    a.seq = 256, a.min_lr = 0.002, a.wd = 0.3;
    CHECK_OK(llm_train_fresh(&a, &m, "m.llmt", 0, 42, &st, &err), err);
    CHECK(st.seq == 240 && st.optim.lr == 0.1f && st.optim.min_lr == 0.002f && st.optim.weight_decay == 0.3f);
    ad.cfg.n_virtual = 256;
    CHECK(llm_train_fresh(&a, &m, "m.llmt", 0, 42, &st, &err) == LLM_ERR_ARG);
    CHECK_MSG(!strcmp(err.msg, "m.llmt: 256 virtual tokens leave no room in its context of 256"), "%s", err.msg);
}

static void test_new_config_and_adapter(void)
{
    llm_train_args a = args_given(0);
    llm_config c;
    llm_train_new_config(&a, 258, &c);
    CHECK(c.vocab == 258 && c.dim == 128 && c.n_layers == 4 && c.n_heads == 4 && c.n_kv_heads == 4);
    CHECK(c.hidden == 352 && c.seq_len == 128 && c.tie == 1 && c.window == 0);
    a.dim = 64, a.kv_heads = 2, a.tie = 0;
    llm_train_new_config(&a, 258, &c);
    CHECK(c.hidden == 192 && c.n_kv_heads == 2 && c.tie == 0);
    a.hidden = 100;
    llm_train_new_config(&a, 258, &c);
    CHECK(c.hidden == 100);
    llm_adapter_config ac;
    a.lora = 8, a.prompt_tune = 3;
    llm_train_adapter_config(&a, &ac);
    CHECK(ac.rank == 8 && ac.alpha == 16 && ac.n_virtual == 3);
    CHECK(ac.targets == ((1u << LLM_LIN_WQ) | (1u << LLM_LIN_WV)));
    a.given = BIT(LORA_ALPHA), a.lora_alpha = 4;
    llm_train_adapter_config(&a, &ac);
    CHECK(ac.alpha == 4);
}

static void test_describe(void)
{
    char buf[192];
    llm_model m = {0};
    llm_train_describe(LLM_TRAIN_NEW, &m, buf, sizeof buf);
    CHECK(!strcmp(buf, "new model"));
    llm_train_describe(LLM_TRAIN_CONTINUED_EXAMPLES, &m, buf, sizeof buf);
    CHECK(!strcmp(buf, "continued on new examples (fresh optimizer)"));
    llm_adapter ad = {0};
    m.adapter = &ad;
    llm_train_describe(LLM_TRAIN_FROM_MODEL, &m, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "adapting a frozen base"), "%s", buf);
    llm_train_describe(LLM_TRAIN_RESUMED, &m, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "resumed, adapting a frozen base"), "%s", buf);
}

int main(void)
{
    RUN(test_tokenizer);
    RUN(test_data_split_and_batches);
    RUN(test_checkpoint_roundtrip);
    RUN(test_checkpoint_errors);
    RUN(test_text_without_bos);
    RUN(test_trainer_checks_ids);
    RUN(test_tiny_model_learns);
    RUN(test_shard_ranges);
    RUN(test_spans_slice);
    RUN(test_opt_names);
    RUN(test_decide_start);
    RUN(test_decide_ignored);
    RUN(test_check_arch);
    RUN(test_check_adapter);
    RUN(test_fresh_state);
    RUN(test_new_config_and_adapter);
    RUN(test_describe);
    return check_done();
}
