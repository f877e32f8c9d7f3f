/* Unit tests for lib/examples: an encoded example checked against what the
 * header says it is, on random texts, labels and windows (the scored
 * targets are the label, the inputs and last target a suffix of BOS, text,
 * label, padding after); a file's lines split at their last tab, blank
 * lines skipped, and errors naming their line; the held-out count for
 * several sizes and fractions; batches drawn from the training examples
 * only; a label's log-likelihood against log-softmax of the reference
 * forward pass; out of memory refused.  (test_adapter checks two encodings
 * and the split of one line by hand.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "examples.h"
#include "nomem.h"

static const char *write_examples(const char *name, const char *text)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", check_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
    return path;
}

/* Loads examples from text, through a file, with the byte tokenizer. */
static int load_text(llm_examples *ex, const char *text, int T, double val_frac, llm_error *err)
{
    llm_tok tok;
    llm_tok_bytes(&tok);
    return llm_examples_load(ex, write_examples("examples.tsv", text), &tok, T, val_frac, err);
}

/* Random texts (0..11 bytes) and labels (1..5 bytes), T from 2 to 9,
 * with the byte tokenizer's BOS in front. */
static void test_encode_properties(void)
{
    llm_error err = {0};
    llm_tok tok;
    llm_tok_bytes(&tok);
    unsigned long long state = 4;
    for (int trial = 0; trial < 3000; trial++) {
        char text[12], label[5];
        int nt = (int)(check_uniform(&state) * 12), nl = 1 + (int)(check_uniform(&state) * 5);
        int T = 2 + (int)(check_uniform(&state) * 8);
        for (int i = 0; i < nt; i++) text[i] = (char)('a' + check_uniform(&state) * 26);
        for (int i = 0; i < nl; i++) label[i] = (char)('A' + check_uniform(&state) * 26);
        int32_t all[1 + 12 + 5], in[9], tg[9];
        int n = 0;
        all[n++] = tok.bos;
        for (int i = 0; i < nt; i++) all[n++] = (unsigned char)text[i];
        for (int i = 0; i < nl; i++) all[n++] = (unsigned char)label[i];
        int used = llm_example_encode(&tok, text, (size_t)nt, label, (size_t)nl, T, in, tg, &err);
        if (nl > T - 1) {
            CHECK_MSG(used == LLM_ERR_ARG && strstr(err.msg, "fit in --seq"), "trial %d: %d", trial, used);
            continue;
        }
        int want_used = n - 1 < T ? n - 1 : T, ok = used == want_used;
        for (int i = 0; ok && i < T; i++) /* padding */
            ok = i < used || (in[i] == 0 && tg[i] == -1);
        for (int i = 0; ok && i < used; i++) /* a suffix of all, shifted by one for the targets */
            ok = in[i] == all[n - 1 - used + i] && (tg[i] == -1 || tg[i] == all[n - used + i]);
        int scored = 0;
        for (int i = 0; ok && i < used; i++)
            if (tg[i] >= 0) ok = tg[i] == (unsigned char)label[scored++];
        ok = ok && scored == nl;
        if (!CHECK_MSG(ok, "trial %d: text %d, label %d bytes, T %d: %d positions", trial, nt, nl, T, used)) break;
    }
}

static void test_split(void)
{
    char tabs[] = "a\tb\t\tc", *label;
    CHECK(llm_example_split(tabs, &label) == 0 && !strcmp(tabs, "a\tb\t") && !strcmp(label, "c"));
    char empty_label[] = "text\t", lone_tab[] = "\tx";
    CHECK(llm_example_split(empty_label, &label) < 0);
    CHECK(llm_example_split(lone_tab, &label) == 0 && !strcmp(lone_tab, "") && !strcmp(label, "x"));
}

/* Blank lines skipped, a last line without a newline kept, a text of one
 * tab; each row the encoding of its line. */
static void test_load_rows(void)
{
    llm_error err = {0};
    llm_tok tok;
    llm_tok_bytes(&tok);
    llm_examples ex;
    CHECK_OK(load_text(&ex, "ab\tX\n\nc\td\tYZ\n\t\tQ\n\nlast\tW", 6, 0, &err), err);
    const char *texts[4] = {"ab", "c\td", "\t", "last"}, *labels[4] = {"X", "YZ", "Q", "W"};
    CHECK_MSG(ex.n == 4 && ex.n_train == 4 && ex.T == 6, "%lld examples", (long long)ex.n);
    for (int k = 0; k < 4 && k < ex.n; k++) {
        int32_t in[6], tg[6];
        CHECK(llm_example_encode(&tok, texts[k], strlen(texts[k]), labels[k], strlen(labels[k]), 6, in, tg,
                                 &err) > 0);
        CHECK_MSG(!memcmp(ex.inputs + 6 * k, in, sizeof in) && !memcmp(ex.targets + 6 * k, tg, sizeof tg),
                  "row %d", k);
    }
    llm_examples_free(&ex);
    CHECK(!ex.inputs && !ex.targets && ex.n == 0);
}

/* Each refusal with its code, and the line it is on (blank lines counted). */
static void test_load_errors(void)
{
    llm_error err = {0};
    llm_tok tok;
    llm_tok_bytes(&tok);
    const struct {
        const char *text;
        int T, code;
        const char *msg;
    } cases[6] = {{"one\tA\n\ntwo\tB\nno tab\nfive\tE\n", 8, LLM_ERR_FORMAT, ":4: no tab before a label"},
                  {"one\tA\ntext\t\n", 8, LLM_ERR_FORMAT, ":2: no tab before a label"},
                  {"one\tA\n\n\nx\tlonglabel\n", 4, LLM_ERR_ARG, ":4: label 'longlabel' is 9 tokens: 1..3 fit"},
                  {"\n\n\n", 8, LLM_ERR_FORMAT, ": no examples"},
                  {"", 8, LLM_ERR_FORMAT, ": no examples"},
                  {"a\tb\n", 1, LLM_ERR_ARG, "--seq of at least 2"}};
    for (int k = 0; k < 6; k++) {
        const char *path = write_examples("bad.tsv", cases[k].text);
        llm_examples ex;
        int rc = llm_examples_load(&ex, path, &tok, cases[k].T, 0.1, &err);
        char want[700];
        snprintf(want, sizeof want, "%s%s", k < 5 ? path : "", cases[k].msg);
        /* the message opens with where: a location said twice fails */
        CHECK_MSG(rc == cases[k].code && (k < 5 ? !strncmp(err.msg, want, strlen(want)) : !!strstr(err.msg, want)),
                  "case %d: %d '%s'", k, rc, err.msg);
        CHECK(!ex.inputs && !ex.targets && ex.n == 0);
    }
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing.tsv", check_tmpdir());
    llm_examples ex;
    CHECK(llm_examples_load(&ex, missing, &tok, 8, 0, &err) == LLM_ERR_IO && strstr(err.msg, missing));
}

/* floor(n * val_frac) held out, but one when that is 0, val_frac > 0 and
 * there are two or more. */
static void test_held_out(void)
{
    llm_error err = {0};
    const double fracs[4] = {0, 0.1, 0.34, 0.5};
    char text[64] = "";
    for (int n = 1; n <= 6; n++) {
        strcat(text, "t\tL\n");
        for (int f = 0; f < 4; f++) {
            llm_examples ex;
            CHECK_OK(load_text(&ex, text, 4, fracs[f], &err), err);
            int64_t val = (int64_t)(n * fracs[f]);
            if (val == 0 && fracs[f] > 0 && n >= 2) val = 1;
            CHECK_MSG(ex.n == n && ex.n_train == n - val, "%d examples, val_frac %g: %lld for training", n,
                      fracs[f], (long long)ex.n_train);
            llm_examples_free(&ex);
        }
    }
}

/* Five examples, two held out: every drawn row is one of the first three,
 * each drawn about a third of the time, the same for the same seed. */
static void test_batches(void)
{
    llm_error err = {0};
    llm_examples ex;
    CHECK_OK(load_text(&ex, "a\t0\nb\t1\nc\t2\nd\t3\ne\t4\n", 3, 0.4, &err), err);
    CHECK(ex.n == 5 && ex.n_train == 3);
    int32_t in[8 * 3], tg[8 * 3], in2[8 * 3], tg2[8 * 3];
    llm_rng rng, again;
    llm_rng_seed(&rng, 6);
    long seen[5] = {0};
    int rows_whole = 1;
    for (int r = 0; r < 1500; r++) {
        again = rng;
        llm_examples_batch(&ex, &rng, 8, in, tg);
        llm_examples_batch(&ex, &again, 8, in2, tg2);
        rows_whole &= !memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg);
        for (int b = 0; b < 8; b++) {
            int row = in[b * 3 + 1] - 'a'; /* BOS, the text's letter, its label */
            rows_whole &= row >= 0 && row < 5 && !memcmp(in + b * 3, ex.inputs + row * 3, 3 * sizeof *in) &&
                          !memcmp(tg + b * 3, ex.targets + row * 3, 3 * sizeof *tg);
            if (row >= 0 && row < 5) seen[row]++;
        }
    }
    CHECK(rows_whole);
    CHECK_MSG(seen[3] == 0 && seen[4] == 0, "held-out examples drawn %ld and %ld times", seen[3], seen[4]);
    for (int k = 0; k < 3; k++) CHECK_MSG(fabs(seen[k] - 4000.0) < 5 * sqrt(12000 * 2 / 9.0), "%ld", seen[k]);
    llm_examples_free(&ex);
}

/* A random model of 40 ids. */
static void make_model(llm_model *m)
{
    llm_error err = {0};
    llm_config c = {.vocab = 40, .dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .hidden = 48,
                    .seq_len = 16, .norm_eps = 1e-5f, .rope_theta = 10000};
    CHECK_OK(llm_model_init(m, &c, 7, &err), err);
    unsigned long long state = 3;
    for (int64_t i = 0; i < m->n_params; i++) m->arena[i] += (float)(0.1 * check_normal(&state));
}

/* The label's log-likelihood, with and without ids in front, is the sum of
 * log-probabilities llm_model_forward gives the scored targets over the same
 * ids. */
static void test_logp(void)
{
    llm_error err = {0};
    llm_model m;
    make_model(&m);
    llm_infer s;
    CHECK_OK(llm_infer_init(&s, &m, &(llm_infer_opts){.ctx = 16}, &err), err);
    const int32_t prefix[2] = {11, 2}, in[8] = {5, 9, 3, 17, 22, 39, 39, 39};
    const int32_t tg[8] = {-1, -1, 17, 22, 8, -1, -1, -1};
    for (int n_prefix = 0; n_prefix <= 2; n_prefix += 2) {
        int n = n_prefix + 5; /* prefix, then inputs up to the last target */
        int32_t ids[7], none[7];
        memcpy(ids, prefix, (size_t)n_prefix * sizeof *ids);
        memcpy(ids + n_prefix, in, 5 * sizeof *ids);
        for (int i = 0; i < n; i++) none[i] = -1;
        llm_acts a;
        CHECK_OK(llm_acts_init(&a, &m.cfg, 1, n, &err), err);
        llm_model_forward(&m, &a, ids, none);
        double want = 0;
        for (int i = 0; i < 8; i++)
            if (tg[i] >= 0) want += log((double)a.probs[(size_t)(n_prefix + i) * 40 + tg[i]]);
        llm_acts_free(&a);
        double got = 0;
        CHECK_OK(llm_examples_logp(&s, n_prefix ? prefix : NULL, n_prefix, in, tg, 8, &got, &err), err);
        CHECK_MSG(fabs(got - want) < 1e-4 * fabs(want), "prefix %d: %.7f, forward %.7f", n_prefix, got, want);
    }
    llm_infer_free(&s);
    llm_model_free(&m);
}

static int load_examples(void *text, llm_error *err)
{
    llm_examples ex;
    LLM_TRY(load_text(&ex, text, 8, 0.5, err));
    int whole = ex.n == 3 && ex.n_train == 2;
    llm_examples_free(&ex);
    return whole ? 0 : LLM_ERR_STATE;
}

static void test_out_of_memory(void)
{
    llm_error err = {0};
    char text[] = "one\tA\ntwo\tB\nthree\tC\n";
    CHECK(nomem_sweep("load", load_examples, text) >= 4); /* text, inputs, targets, an encoding */
    CHECK_OK(load_examples(text, &err), err);
}

int main(void)
{
    RUN(test_encode_properties);
    RUN(test_split);
    RUN(test_load_rows);
    RUN(test_load_errors);
    RUN(test_held_out);
    RUN(test_batches);
    RUN(test_logp);
    RUN(test_out_of_memory);
    return check_done();
}
