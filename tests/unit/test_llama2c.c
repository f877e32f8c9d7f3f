/* Unit tests for lib/llama2c: the test writes small random models in
 * llama2.c's legacy format (shared and unshared classifier, grouped-query
 * attention) and a tokenizer.bin, imports them and checks that every tensor
 * and piece lands where it belongs; damaged and lying files give clear
 * errors, weights that are not finite among them; a checkpoint written
 * from the import loads back the same; the
 * training forward pass of the imported model matches tests/llama2c_ref.py,
 * an independent numpy transcription of run.c (logits and greedy ids); and,
 * when ../shared/data/stories260K.bin is there, the real model's header. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ckpt.h"
#include "llama2c.h"
#include "npy.h"
#include "ref_model.h"

/* Dimension letters: D width, F hidden, L layers, H heads, K kv heads, V
 * vocab, S seq_len, E = D/H head size. */
typedef struct shape {
    int D, F, L, H, K, V, S;
} shape;

static const shape small = {48, 80, 2, 6, 2, 300, 32};

/* The file's float sections, in order; counts in floats. */
enum { S_EMB, S_RMS_ATT, S_WQ, S_WK, S_WV, S_WO, S_RMS_FFN, S_W1, S_W2, S_W3, S_RMS_FINAL, S_FREQ,
       S_WCLS, N_SECTIONS };

static void sections(const shape *s, int shared, int64_t count[N_SECTIONS], int64_t start[N_SECTIONS])
{
    int64_t E = s->D / s->H, KE = s->K * E;
    int64_t c[N_SECTIONS] = {
        (int64_t)s->V * s->D, (int64_t)s->L * s->D, (int64_t)s->L * s->D * s->D,
        (int64_t)s->L * KE * s->D, (int64_t)s->L * KE * s->D, (int64_t)s->L * s->D * s->D,
        (int64_t)s->L * s->D, (int64_t)s->L * s->F * s->D, (int64_t)s->L * s->D * s->F,
        (int64_t)s->L * s->F * s->D, s->D, (int64_t)s->S * E, shared ? 0 : (int64_t)s->V * s->D};
    int64_t at = 0;
    for (int i = 0; i < N_SECTIONS; i++) {
        count[i] = c[i];
        start[i] = at;
        at += c[i];
    }
}

/* Writes a random llama2.c model; returns its floats (after the header),
 * malloc'd, and their count in *n.  Matrices have entries N(0, 1/in) (wo and
 * w2 three times that deviation, so the layers move the stream away from its
 * token's embedding), the embedding N(0, 1), gains 1 + N(0, 0.1^2): logits
 * far apart, so greedy choices are clear.  The RoPE tables hold 777, which nothing may read. */
static float *write_model(const char *path, const shape *s, int shared, unsigned long long seed,
                          int64_t *n)
{
    int64_t count[N_SECTIONS], start[N_SECTIONS];
    sections(s, shared, count, start);
    int64_t total = start[N_SECTIONS - 1] + count[N_SECTIONS - 1];
    float *f = malloc((size_t)total * sizeof *f);
    unsigned long long rng = seed;
    for (int k = 0; k < N_SECTIONS; k++) {
        double sd = k == S_EMB || k == S_WCLS ? 1.0
                    : k == S_W2                ? 3.0 / sqrt(s->F)
                    : k == S_WO                ? 3.0 / sqrt(s->D)
                                               : 1.0 / sqrt(s->D);
        for (int64_t i = 0; i < count[k]; i++) {
            float *x = f + start[k] + i;
            if (k == S_RMS_ATT || k == S_RMS_FFN || k == S_RMS_FINAL) *x = (float)(1 + 0.1 * check_normal(&rng));
            else if (k == S_FREQ) *x = 777.0f;
            else *x = (float)(sd * check_normal(&rng));
        }
    }
    int32_t h[7] = {s->D, s->F, s->L, s->H, s->K, shared ? s->V : -s->V, s->S};
    FILE *out = fopen(path, "wb");
    fwrite(h, 4, 7, out);
    fwrite(f, sizeof *f, (size_t)total, out);
    fclose(out);
    *n = total;
    return f;
}

/* Checks that every tensor of m holds its section of the file. */
static void check_tensors(const llm_model *m, const shape *s, int shared, const float *f)
{
    int64_t count[N_SECTIONS], start[N_SECTIONS];
    sections(s, shared, count, start);
    const llm_params *p = &m->p;
    CHECK(!memcmp(p->tok_emb, f + start[S_EMB], (size_t)count[S_EMB] * 4));
    static const int order[9] = {S_RMS_ATT, S_WQ, S_WK, S_WV, S_WO, S_RMS_FFN, S_W1, S_W2, S_W3};
    for (int l = 0; l < s->L; l++) {
        const llm_layer_params *lp = &p->layers[l];
        const float *views[9] = {lp->attn_norm, lp->wq, lp->wk, lp->wv, lp->wo,
                                 lp->mlp_norm,  lp->w1, lp->w2, lp->w3};
        for (int k = 0; k < 9; k++) {
            int64_t per = count[order[k]] / s->L;
            CHECK_MSG(!memcmp(views[k], f + start[order[k]] + l * per, (size_t)per * 4),
                      "layer %d tensor %d differs", l, k);
        }
    }
    CHECK(!memcmp(p->norm, f + start[S_RMS_FINAL], (size_t)s->D * 4));
    if (shared) CHECK(p->cls == p->tok_emb && llm_model_tensor(m, "cls") == NULL);
    else CHECK(p->cls != p->tok_emb && !memcmp(p->cls, f + start[S_WCLS], (size_t)count[S_WCLS] * 4));
    /* and by name, with the right shapes */
    const llm_param_tensor *wk = llm_model_tensor(m, "layers.1.attn.wk");
    CHECK(wk && wk->shape.ndim == 2 && wk->shape.dim[0] == s->K * (s->D / s->H) && wk->shape.dim[1] == s->D);
    CHECK(wk && !memcmp(m->arena + wk->offset, f + start[S_WK] + count[S_WK] / s->L, (size_t)wk->count * 4));
    const llm_param_tensor *w2 = llm_model_tensor(m, "layers.0.mlp.w2");
    CHECK(w2 && w2->shape.dim[0] == s->D && w2->shape.dim[1] == s->F);
}

static void check_config(const llm_config *c, const shape *s, int shared)
{
    CHECK(c->dim == s->D && c->hidden == s->F && c->n_layers == s->L && c->n_heads == s->H &&
          c->n_kv_heads == s->K && c->vocab == s->V && c->seq_len == s->S && c->tie == shared &&
          c->window == 0 && fabsf(c->norm_eps - 1e-5f) < 1e-12f && c->rope_theta == 10000.0f);
}

/* Writes the small model (shared classifier or not) to the file at path and
 * loads it into m, with the ids tokenizer; returns the floats written. */
static float *load_small(const char *path, int shared, unsigned long long seed, llm_model *m)
{
    llm_error err = {0};
    int64_t n;
    float *f = write_model(path, &small, shared, seed, &n);
    CHECK_OK(llm_llama2c_load(path, NULL, m, &err), err);
    return f;
}

static void test_import(void)
{
    for (int shared = 1; shared >= 0; shared--) {
        llm_model m;
        float *f = load_small(check_path(shared ? "shared.bin" : "unshared.bin"), shared, 11 + (unsigned)shared, &m);
        check_config(&m.cfg, &small, shared);
        check_tensors(&m, &small, shared, f);
        CHECK(m.tok.kind == LLM_TOK_IDS && m.tok.vocab == small.V && m.tok.bos == 1 && m.tok.eos == 2);
        llm_tok_free(&m.tok);
        llm_model_free(&m);
        free(f);
    }
}

/* ---- tokenizer.bin ---- */

/* The pieces from 259 on, with scores, for "the cat" worked by hand below. */
static const struct {
    const char *piece;
    float score;
} words[] = {{" ", 0},     {"t", 0},      {"h", 0},     {"e", 0},     {"c", 0},
             {"a", 0},     {" t", -1},    {"th", -2},   {"he", -3},   {"the", -4},
             {" the", -5}, {"at", -1.5f}, {" c", -2.5f}, {" cat", -6}, {"ca", -7}};
enum { N_WORDS = sizeof words / sizeof words[0] };

/* Writes a tokenizer.bin of V pieces: the specials, the 256 byte pieces, the
 * words above, then filler.  bad: 0 good, 1 truncated, 2 one piece too many,
 * 3 a piece 1000 bytes long, 4 a negative length. */
static void write_tokenizer(const char *path, int V, int bad)
{
    FILE *out = fopen(path, "wb");
    int32_t max_len = 8;
    fwrite(&max_len, 4, 1, out);
    int pieces = V + (bad == 2);
    for (int i = 0; i < pieces; i++) {
        char buf[32];
        const char *p = buf;
        float score = 0;
        if (i == 0) p = "<unk>";
        else if (i == 1) p = "\n<s>\n";
        else if (i == 2) p = "\n</s>\n";
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else if (i < 259 + N_WORDS) p = words[i - 259].piece, score = words[i - 259].score;
        else snprintf(buf, sizeof buf, "w%d", i), score = -10;
        int32_t len = (int32_t)strlen(p);
        if (bad == 3 && i == 5) len = 1000;
        if (bad == 4 && i == 5) len = -1;
        fwrite(&score, 4, 1, out);
        fwrite(&len, 4, 1, out);
        if (bad == 1 && i == V - 1) break; /* the last piece's bytes are missing */
        fwrite(p, 1, strlen(p), out);
    }
    fclose(out);
}

static void test_tokenizer(void)
{
    const char *tok_path = check_path("tokenizer.bin"), *model_path = check_path("tm.bin");
    write_tokenizer(tok_path, small.V, 0);
    int64_t n;
    float *f = write_model(model_path, &small, 1, 5, &n);
    llm_error err = {0};
    llm_model m;
    CHECK_OK(llm_llama2c_load(model_path, tok_path, &m, &err), err);
    llm_tok *t = &m.tok;
    CHECK(t->kind == LLM_TOK_BPE && t->vocab == small.V && t->bos == 1 && t->eos == 2);
    const char *p;
    CHECK(llm_tok_piece(t, 1, &p) == 5 && !memcmp(p, "\n<s>\n", 5));
    CHECK(llm_tok_piece(t, 3 + 0x41, &p) == 6 && !memcmp(p, "<0x41>", 6));
    CHECK(llm_tok_piece(t, 272, &p) == 4 && !memcmp(p, " cat", 4) && t->scores[272] == -6);
    CHECK(llm_tok_piece(t, 299, &p) == 4 && !memcmp(p, "w299", 4) && t->scores[299] == -10);
    /* "the cat": " ","t","h","e"," ","c","a","t" (259 260 261 262 259 263 264 260).
     * Merges by score: " t" -1; "at" -1.5; " c" -2.5; "he" -3; then " t"+"he" =
     * " the" -5; then " cat" -6: 269 272.  ("th" -2 never: "t" went into " t".) */
    int32_t ids[16];
    CHECK(llm_tok_encode_text(t, "the cat", 7, ids, NULL) == 2 && ids[0] == 269 && ids[1] == 272);
    char a[LLM_TOK_MAX_PIECE], b[LLM_TOK_MAX_PIECE];
    int la = llm_tok_decode_next(t, 1, 269, a), lb = llm_tok_decode_next(t, 269, 272, b);
    CHECK(la == 3 && !memcmp(a, "the", 3) && lb == 4 && !memcmp(b, " cat", 4));

    /* through a checkpoint and back: weights and tokenizer the same */
    const char *ck = check_path("tm.llmt");
    CHECK_OK(llm_ckpt_save(ck, &m, NULL, NULL, &err), err);
    llm_model back;
    int has_train = -1;
    CHECK_OK(llm_ckpt_load(ck, &back, NULL, NULL, &has_train, &err), err);
    CHECK(has_train == 0 && back.n_params == m.n_params &&
          !memcmp(back.arena, m.arena, (size_t)m.n_params * sizeof *m.arena));
    check_config(&back.cfg, &small, 1);
    CHECK(back.tok.kind == LLM_TOK_BPE && back.tok.vocab == small.V &&
          back.tok.offset[small.V] == t->offset[small.V] &&
          !memcmp(back.tok.text, t->text, t->offset[small.V]) &&
          !memcmp(back.tok.scores, t->scores, (size_t)small.V * 4));
    CHECK(llm_tok_encode_text(&back.tok, "the cat", 7, ids, NULL) == 2 && ids[0] == 269 && ids[1] == 272);
    llm_tok_free(&back.tok);
    llm_model_free(&back);
    /* a checkpoint whose tokenizer does not fit its model does not load */
    llm_tok_free(&m.tok);
    CHECK_OK(llm_tok_ids(&m.tok, small.V - 1, 1, 2, &err), err);
    CHECK_OK(llm_ckpt_save(ck, &m, NULL, NULL, &err), err);
    CHECK(llm_ckpt_load(ck, &back, NULL, NULL, &has_train, &err) == LLM_ERR_FORMAT &&
          strstr(err.msg, "the tokenizer has 299 tokens, the model 300"));
    llm_tok_free(&m.tok);
    llm_model_free(&m);
    free(f);
}

/* ---- bad input ---- */

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *out = fopen(path, "wb");
    fwrite(data, 1, n, out);
    fclose(out);
}

/* Loads path and expects code and msg in the message. */
static void expect_error(const char *path, const char *tok, int code, const char *msg)
{
    llm_error err = {0};
    llm_model m;
    int rc = llm_llama2c_load(path, tok, &m, &err);
    CHECK_MSG(rc == code && strstr(err.msg, msg) && strstr(err.msg, tok ? tok : path),
              "rc %d (want %d): '%s' (want '%s')", rc, code, err.msg, msg);
    if (rc == 0) {
        llm_tok_free(&m.tok);
        llm_model_free(&m);
    }
}

static void test_bad_files(void)
{
    const char *good = check_path("good.bin"), *bad = check_path("bad.bin");
    int64_t n;
    float *f = write_model(good, &small, 0, 3, &n);
    size_t bytes = 28 + (size_t)n * 4;
    unsigned char *raw = malloc(bytes + 8);
    FILE *in = fopen(good, "rb");
    CHECK(fread(raw, 1, bytes, in) == bytes);
    fclose(in);

    write_bytes(bad, raw, bytes - 4); /* one float short */
    expect_error(bad, NULL, LLM_ERR_TRUNCATED, "truncated: ");
    memset(raw + bytes, 0, 8);
    write_bytes(bad, raw, bytes + 8); /* two floats more */
    expect_error(bad, NULL, LLM_ERR_FORMAT, "not a legacy llama2.c checkpoint");
    write_bytes(bad, raw, 10);
    expect_error(bad, NULL, LLM_ERR_FORMAT, "shorter than its 28-byte header");

    int32_t h[7];
    memcpy(h, raw, 28);
    int32_t lie[7];
    memcpy(lie, h, 28);
    lie[5] = 1 << 30; /* a vast vocabulary */
    memcpy(raw, lie, 28);
    write_bytes(bad, raw, bytes);
    expect_error(bad, NULL, LLM_ERR_FORMAT, "not a llama2.c checkpoint: header");
    memcpy(lie, h, 28);
    lie[4] = 4; /* 6 heads over 4 kv heads */
    memcpy(raw, lie, 28);
    write_bytes(bad, raw, bytes);
    expect_error(bad, NULL, LLM_ERR_FORMAT, "heads 6 is not a multiple of kv-heads 4");
    memcpy(lie, h, 28);
    lie[1] = small.F + 1; /* a plausible header the size contradicts */
    memcpy(raw, lie, 28);
    write_bytes(bad, raw, bytes);
    expect_error(bad, NULL, LLM_ERR_TRUNCATED, "implies");
    memcpy(raw, "24ka\x01\0\0\0", 8); /* llama2.c's version-1 export */
    write_bytes(bad, raw, bytes);
    expect_error(bad, NULL, LLM_ERR_FORMAT, "version-1 export (magic ak42)");
    memcpy(raw, "LLMT", 4);
    write_bytes(bad, raw, bytes);
    expect_error(bad, NULL, LLM_ERR_FORMAT, "a tensor stream, not a llama2.c checkpoint");
    expect_error(check_path("missing.bin"), NULL, LLM_ERR_IO, "No such file");
    expect_error(check_tmpdir(), NULL, LLM_ERR_IO, "not a regular file");

    /* weights that are not numbers, named by tensor and element: the final
     * gain's element 7, then layer 1's wk element 3 */
    int64_t count[N_SECTIONS], start[N_SECTIONS];
    sections(&small, 0, count, start);
    memcpy(raw, h, 28);
    const struct {
        int64_t at;
        float value;
        const char *msg;
    } nonfinite[2] = {{start[S_RMS_FINAL] + 7, NAN, "norm: element 7 is nan, not a finite number"},
                      {start[S_WK] + count[S_WK] / small.L + 3, -INFINITY,
                       "layers.1.attn.wk: element 3 is -inf, not a finite number"}};
    for (int k = 0; k < 2; k++) {
        unsigned char *x = raw + 28 + 4 * nonfinite[k].at, keep[4];
        memcpy(keep, x, 4);
        memcpy(x, &nonfinite[k].value, 4);
        write_bytes(bad, raw, bytes);
        memcpy(x, keep, 4);
        expect_error(bad, NULL, LLM_ERR_FORMAT, nonfinite[k].msg);
    }

    /* tokenizers that do not fit */
    const char *tok = check_path("badtok.bin");
    write_tokenizer(tok, small.V, 1);
    expect_error(good, tok, LLM_ERR_TRUNCATED, "truncated in piece 299 of the model's 300");
    write_tokenizer(tok, small.V - 1, 0);
    expect_error(good, tok, LLM_ERR_TRUNCATED, "truncated: 299 of the model's 300 pieces");
    write_tokenizer(tok, small.V, 2);
    expect_error(good, tok, LLM_ERR_FORMAT, "more than 300 pieces");
    write_tokenizer(tok, small.V, 3);
    expect_error(good, tok, LLM_ERR_FORMAT, "piece 5 is 1000 bytes long");
    write_tokenizer(tok, small.V, 4);
    expect_error(good, tok, LLM_ERR_FORMAT, "piece 5 is -1 bytes long");
    write_bytes(tok, "ab", 2);
    expect_error(good, tok, LLM_ERR_FORMAT, "not a llama2.c tokenizer");
    free(raw);
    free(f);
}

/* ---- against the numpy reference ---- */

/* Runs llama2c_ref.py on model with prompt; fills made (greedy ids, *n_made)
 * and logits ([rows, V], malloc'd).  Returns rows, or -1. */
static int run_reference(const char *model, const int32_t *prompt, int n_prompt, int n_new,
                         int32_t *made, int *n_made, float **logits, int V)
{
    const char *top = getenv("LLM_TOP"), *npy = check_path("logits.npy");
    char cmd[4096], ids[1024] = "";
    for (int i = 0; i < n_prompt; i++) snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%d ", prompt[i]);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/llama2c_ref.py' '%s' --ids '%s' -n %d --stop 2 --logits '%s'",
             top, model, ids, n_new, npy);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    *n_made = 0;
    while (*n_made < n_new && fscanf(p, "%d", &made[*n_made]) == 1) (*n_made)++;
    if (pclose(p) != 0) return -1;
    int fd = open(npy, O_RDONLY);
    llm_npy_header h;
    llm_error err = {0};
    if (fd < 0 || llm_npy_read_header(fd, npy, &h, &err) < 0 || h.dtype != LLM_DTYPE_F32 ||
        h.shape.ndim != 2 || h.shape.dim[1] != V) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *logits = malloc(h.nbytes);
    ssize_t got = read(fd, *logits, h.nbytes);
    close(fd);
    return got == (ssize_t)h.nbytes ? (int)h.shape.dim[0] : -1;
}

/* Compares llm_model_forward's probabilities and llm_model_greedy's ids with
 * the reference on the model at path (m loaded from it). */
static void compare_with_reference(const char *path, const llm_model *m, const int32_t *prompt,
                                   int n_prompt, int n_new)
{
    int V = m->cfg.vocab;
    int32_t ref_ids[64];
    int n_ref = 0;
    float *ref_logits = NULL;
    int rows = run_reference(path, prompt, n_prompt, n_new, ref_ids, &n_ref, &ref_logits, V);
    if (!CHECK_MSG(rows == n_prompt + n_ref && n_ref > 0, "the reference gave %d rows, %d ids", rows, n_ref))
        return;
    /* the forward pass over prompt + the reference's ids */
    int T = rows;
    int32_t seq[128];
    memcpy(seq, prompt, (size_t)n_prompt * sizeof *seq);
    memcpy(seq + n_prompt, ref_ids, (size_t)n_ref * sizeof *seq);
    llm_acts a;
    llm_error err = {0};
    CHECK_OK(llm_acts_init(&a, &m->cfg, 1, T, &err), err);
    llm_model_forward(m, &a, seq, NULL);
    double worst = 0;
    for (int t = 0; t < T; t++)
        worst = ref_softmax_gap(worst, ref_logits + (size_t)t * V, a.probs + (size_t)t * V, V);
    CHECK_MSG(worst < 2e-5, "probabilities differ from the reference by %g", worst);
    llm_acts_free(&a);
    /* greedy decoding: the same ids, token for token */
    CHECK_OK(llm_acts_init(&a, &m->cfg, 1, n_prompt + n_new, &err), err); /* the window holds it all */
    int32_t out[64];
    int made = llm_model_greedy(m, &a, prompt, n_prompt, n_new, out, &err);
    int same = made == n_ref;
    for (int i = 0; same && i < made; i++) same = out[i] == ref_ids[i];
    CHECK_MSG(same, "greedy: %d ids (first %d), the reference %d (first %d)", made, out[0], n_ref, ref_ids[0]);
    llm_acts_free(&a);
    free(ref_logits);
}

static void test_forward_matches_reference(void)
{
    if (!getenv("LLM_TOP") || !check_have_numpy()) {
        check_skip("needs /usr/bin/python3 with numpy, and LLM_TOP (run through tests/run.sh)");
        return;
    }
    const int32_t prompt[] = {1, 5, 17, 42, 299, 7, 7, 100};
    for (int shared = 0; shared <= 1; shared++) {
        const char *path = check_path(shared ? "ref_shared.bin" : "ref_unshared.bin");
        llm_model m;
        float *f = load_small(path, shared, 21 + (unsigned)shared, &m);
        compare_with_reference(path, &m, prompt, 8, 20);
        llm_tok_free(&m.tok);
        llm_model_free(&m);
        free(f);
    }
}

static void test_stories260K(void)
{
    const char *top = getenv("LLM_TOP");
    char path[1024];
    snprintf(path, sizeof path, "%s/../shared/data/stories260K.bin", top ? top : ".");
    if (!top || access(path, R_OK) != 0) {
        check_skip("no ../shared/data/stories260K.bin");
        return;
    }
    /* the real header, read independently */
    int32_t h[7];
    FILE *in = fopen(path, "rb");
    CHECK(in && fread(h, 4, 7, in) == 7);
    if (in) fclose(in);
    CHECK(h[0] == 64 && h[3] == 8 && h[4] == 4 && h[5] == 512); /* dim, heads, kv heads, vocab */
    llm_error err = {0};
    llm_model m;
    CHECK_OK(llm_llama2c_load(path, NULL, &m, &err), err);
    const llm_config *cfg = &m.cfg;
    CHECK(cfg->dim == h[0] && cfg->hidden == h[1] && cfg->n_layers == h[2] && cfg->n_heads == h[3] &&
          cfg->n_kv_heads == h[4] && cfg->vocab == abs(h[5]) && cfg->seq_len == h[6] && cfg->tie == (h[5] > 0));
    CHECK_MSG(m.n_params == 260032, "%lld parameters", (long long)m.n_params);
    if (getenv("LLM_TOP") && check_have_numpy()) {
        const int32_t prompt[] = {1};
        compare_with_reference(path, &m, prompt, 1, 24);
    }
    llm_tok_free(&m.tok);
    llm_model_free(&m);
}

int main(void)
{
    RUN(test_import);
    RUN(test_tokenizer);
    RUN(test_bad_files);
    RUN(test_forward_matches_reference);
    RUN(test_stories260K);
    return check_done();
}
