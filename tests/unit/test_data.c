/* Unit tests for lib/data: files (and stdin) read back byte for byte,
 * across the reader's buffer growth; a corpus of several files is BOS and
 * bytes of each in order, with the split at the last val_frac; missing,
 * empty and untokenizable files refused with their codes and names; the
 * length check at its exact boundary; training windows each a slice of the
 * training part found by brute force, every start drawn about equally
 * often, the same per seed and continuing across batches; validation
 * windows tiling the held-out part; out of memory an error, never a short
 * corpus.  (test_train checks a corpus's split and batches on one text.) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "data.h"
#include "nomem.h"

static void write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(bytes, 1, n, f) == n && fclose(f) == 0);
}

/* Sizes on either side of the 64 KiB first buffer and its doublings, with
 * every byte value (NUL included); then the same bytes through stdin. */
static void test_read_text(void)
{
    llm_error err = {0};
    const size_t sizes[6] = {0, 1, 65535, 65536, 65537, 3 * 65536 + 5};
    char *bytes = malloc(sizes[5]);
    for (size_t i = 0; i < sizes[5]; i++) bytes[i] = (char)(i * 131 + i / 256);
    for (int k = 0; k < 6; k++) {
        const char *path = check_path("text");
        write_file(path, bytes, sizes[k]);
        char *text = NULL;
        size_t len = 1;
        CHECK_OK(llm_data_read_text(path, &text, &len, &err), err);
        CHECK_MSG(text && len == sizes[k] && !memcmp(text, bytes, len) && text[len] == '\0',
                  "%zu bytes read as %zu", sizes[k], len);
        free(text);
        if (k != 4) continue;
        int saved = dup(0), fd = open(path, O_RDONLY);
        CHECK(saved >= 0 && fd >= 0 && dup2(fd, 0) == 0);
        close(fd);
        CHECK_OK(llm_data_read_text("-", &text, &len, &err), err);
        CHECK(dup2(saved, 0) == 0);
        close(saved);
        CHECK_MSG(len == sizes[k] && !memcmp(text, bytes, len), "stdin: %zu bytes read as %zu", sizes[k], len);
        free(text);
    }
    free(bytes);
    char *text;
    size_t len;
    const char *missing = check_path("missing");
    CHECK(llm_data_read_text(missing, &text, &len, &err) == LLM_ERR_IO);
    CHECK_MSG(strstr(err.msg, missing) && strstr(err.msg, "No such file"), "%s", err.msg);
    CHECK(llm_data_read_text(check_tmpdir(), &text, &len, &err) == LLM_ERR_IO); /* a directory */
}

/* Two files: BOS, the first's bytes, BOS, the second's; n_bytes their sum;
 * the split leaves floor(n * val_frac) tokens held out. */
static void test_load_files(void)
{
    llm_error err = {0};
    llm_tok tok;
    llm_tok_bytes(&tok);
    const char *a = check_path("a.txt"), *b = check_path("b.txt");
    write_file(a, "hello\n", 6);
    write_file(b, "\xff\x00z", 3);
    const int32_t want[11] = {256, 'h', 'e', 'l', 'l', 'o', '\n', 256, 255, 0, 'z'};
    const double fracs[4] = {0, 0.1, 0.25, 0.5};
    for (int k = 0; k < 4; k++) {
        llm_data d;
        CHECK_OK(llm_data_load(&d, (const char *[]){a, b}, 2, &tok, fracs[k], &err), err);
        CHECK(d.n_tokens == 11 && !memcmp(d.tokens, want, sizeof want) && d.n_bytes == 9);
        int64_t held = (int64_t)(11 * fracs[k]);
        CHECK_MSG(d.n_train == 11 - held, "val_frac %g: %lld for training", fracs[k], (long long)d.n_train);
        llm_data_free(&d);
        CHECK(!d.tokens && d.n_tokens == 0);
    }
}

/* Each refusal names the file and leaves the corpus empty. */
static void test_load_errors(void)
{
    llm_error err = {0};
    llm_tok bytes, ids;
    llm_tok_bytes(&bytes);
    CHECK_OK(llm_tok_ids(&ids, 300, 1, 2, &err), err);
    const char *good = check_path("good.txt"), *empty = check_path("empty.txt"), *missing = check_path("none.txt");
    write_file(good, "abc", 3);
    write_file(empty, "", 0);
    struct {
        const char *path;
        const llm_tok *tok;
        int code;
        const char *msg;
    } cases[3] = {{empty, &bytes, LLM_ERR_FORMAT, "empty file"},
                  {missing, &bytes, LLM_ERR_IO, "No such file"},
                  {good, &ids, LLM_ERR_ARG, "no tokenizer"}};
    for (int k = 0; k < 3; k++) {
        llm_data d;
        int rc = llm_data_load(&d, (const char *[]){good, cases[k].path}, 2, cases[k].tok, 0.1, &err);
        CHECK_MSG(rc == cases[k].code && strstr(err.msg, cases[k].path) && strstr(err.msg, cases[k].msg),
                  "case %d: %d '%s'", k, rc, err.msg);
        CHECK(!d.tokens && d.n_tokens == 0 && d.n_train == 0);
    }
}

/* A corpus of n tokens whose value is their position, split at n_train. */
static void make_positions(llm_data *d, int64_t n, int64_t n_train)
{
    *d = (llm_data){.tokens = malloc((size_t)n * sizeof(int32_t)), .n_tokens = n, .n_train = n_train};
    for (int64_t i = 0; i < n; i++) d->tokens[i] = (int32_t)i;
}

/* Both parts need T + 1 tokens; an empty held-out part needs none. */
static void test_check_boundaries(void)
{
    llm_error err = {0};
    const int T = 8;
    const struct {
        int64_t n, n_train;
        int ok;
    } cases[6] = {{18, 9, 1}, {17, 8, 0}, {18, 10, 0}, {9, 9, 1}, {8, 8, 0}, {100, 99, 0}};
    for (int k = 0; k < 6; k++) {
        llm_data d;
        make_positions(&d, cases[k].n, cases[k].n_train);
        int rc = llm_data_check(&d, T, &err);
        CHECK_MSG(cases[k].ok ? rc == 0 : rc == LLM_ERR_FORMAT && strstr(err.msg, "--seq 8 needs at least 9"),
                  "%lld tokens, %lld for training: %d '%s'", (long long)cases[k].n, (long long)cases[k].n_train,
                  rc, err.msg);
        llm_data_free(&d);
    }
}

/* Every window lies in the training part at a start s (brute force: its
 * first token, checked against the whole slice); the starts 0..n_train-T-1
 * are drawn uniformly (chi-square); two batches continue one larger one. */
static void test_train_windows(void)
{
    const int T = 5, B = 7, rounds = 3000;
    const int64_t n_train = 45, starts = n_train - T;
    llm_data d;
    make_positions(&d, 60, n_train);
    int32_t in[7 * 5], tg[7 * 5];
    long hits[40] = {0};
    llm_rng rng;
    llm_rng_seed(&rng, 8);
    int inside = 1;
    for (int r = 0; r < rounds; r++) {
        llm_data_train_batch(&d, &rng, B, T, in, tg);
        for (int b = 0; b < B; b++) {
            int32_t s = in[b * T];
            int ok = s >= 0 && s + T < n_train;
            for (int t = 0; ok && t < T; t++)
                ok = in[b * T + t] == d.tokens[s + t] && tg[b * T + t] == d.tokens[s + t + 1];
            inside &= ok;
            if (ok) hits[s]++;
        }
    }
    CHECK(inside);
    double expect = (double)rounds * B / starts, chi2 = 0;
    for (int s = 0; s < starts; s++) chi2 += (hits[s] - expect) * (hits[s] - expect) / expect;
    CHECK_MSG(chi2 < 100, "chi-square %.1f over %lld starts (39 degrees of freedom)", chi2, (long long)starts);
    CHECK_MSG(hits[0] > 0 && hits[starts - 1] > 0, "first start %ld times, last %ld", hits[0], hits[starts - 1]);

    int32_t in4[4 * 5], tg4[4 * 5], in2[4 * 5], tg2[4 * 5];
    llm_rng a, b;
    llm_rng_seed(&a, 21), llm_rng_seed(&b, 21);
    llm_data_train_batch(&d, &a, 4, T, in4, tg4);
    llm_data_train_batch(&d, &b, 2, T, in2, tg2);
    llm_data_train_batch(&d, &b, 2, T, in2 + 2 * T, tg2 + 2 * T);
    CHECK(!memcmp(in4, in2, sizeof in4) && !memcmp(tg4, tg2, sizeof tg4));
    llm_data_free(&d);
}

/* Held-out parts of several lengths: floor((val - 1) / T) windows at stride
 * T from n_train, none past the end; fewer than T + 1 tokens, none. */
static void test_val_windows(void)
{
    const int T = 4;
    for (int64_t val = 0; val <= 14; val++) {
        llm_data d;
        make_positions(&d, 20 + val, 20);
        int64_t n = llm_data_val_windows(&d, T), want = val < T + 1 ? 0 : (val - 1) / T;
        CHECK_MSG(n == want, "%lld held out: %lld windows, want %lld", (long long)val, (long long)n,
                  (long long)want);
        for (int64_t w = 0; w < n; w++) {
            int32_t in[4], tg[4];
            llm_data_val_window(&d, T, w, in, tg);
            int ok = 1;
            for (int t = 0; t < T; t++) ok &= in[t] == 20 + w * T + t && tg[t] == in[t] + 1;
            CHECK_MSG(ok && tg[T - 1] < d.n_tokens, "%lld held out, window %lld", (long long)val, (long long)w);
        }
        llm_data_free(&d);
    }
}

static int corpus_from_text(void *text, llm_error *err)
{
    llm_tok tok;
    llm_tok_bytes(&tok);
    llm_data d;
    LLM_TRY(llm_data_from_text(&d, text, strlen(text), &tok, 0.2, err));
    int whole = d.n_tokens == 1 + (int64_t)strlen(text);
    llm_data_free(&d);
    return whole ? 0 : LLM_ERR_STATE;
}

static int corpus_from_file(void *path, llm_error *err)
{
    llm_tok tok;
    llm_tok_bytes(&tok);
    llm_data d;
    LLM_TRY(llm_data_load(&d, (const char *[]){path, path}, 2, &tok, 0.2, err));
    int whole = d.n_tokens == 2 * (1 + 70000);
    llm_data_free(&d);
    return whole ? 0 : LLM_ERR_STATE;
}

static void test_out_of_memory(void)
{
    llm_error err = {0};
    CHECK(nomem_sweep("from text", corpus_from_text, "some text") >= 1);
    CHECK_OK(corpus_from_text("some text", &err), err);
    const char *path = check_path("big.txt");
    char *big = malloc(70000);
    memset(big, 'q', 70000);
    write_file(path, big, 70000);
    free(big);
    CHECK(nomem_sweep("load", corpus_from_file, (void *)path) >= 3); /* buffer, its growth, the tokens */
    CHECK_OK(corpus_from_file((void *)path, &err), err);
}

int main(void)
{
    RUN(test_read_text);
    RUN(test_load_files);
    RUN(test_load_errors);
    RUN(test_check_boundaries);
    RUN(test_train_windows);
    RUN(test_val_windows);
    RUN(test_out_of_memory);
    return check_done();
}
