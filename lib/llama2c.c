/* llama2c — reading llama2.c's legacy checkpoints and tokenizer.bin (the
 * layouts are in llama2c.h). */
#include "llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"

#define HEADER_BYTES 28
#define MAGIC_AK42 0x616b3432u /* "ak42": llama2.c's export versions 1 and 2 */

static int32_t get_i32(const unsigned char *p)
{
    uint32_t u = llm_bytes_get_le32(p);
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

/* Reads exactly n bytes; LLM_ERR_TRUNCATED when the file ends first. */
static int read_full(int fd, void *buf, size_t n, const char *path, llm_error *err)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = read(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return llm_error_set(err, LLM_ERR_IO, "%s: read: %s", path, strerror(errno));
        if (k == 0) return llm_error_set(err, LLM_ERR_TRUNCATED, "%s: truncated: the file ends early", path);
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads count little-endian floats into dst. */
static int read_floats(int fd, float *dst, int64_t count, const char *path, llm_error *err)
{
    LLM_TRY(read_full(fd, dst, (size_t)count * sizeof *dst, path, err));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int64_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &dst[i], 4);
        u = llm_bytes_get_le32((const unsigned char *)&u);
        memcpy(&dst[i], &u, 4);
    }
#endif
    return 0;
}

static int open_file(const char *path, struct stat *st, llm_error *err)
{
    int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY);
    if (fd < 0) return llm_error_set(err, LLM_ERR_IO, "%s: %s", path, strerror(errno));
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return llm_error_set(err, LLM_ERR_IO, "%s: %s", path, strerror(e));
    }
    return fd;
}

/* Floats in the file after the header, by the header's values. */
static int64_t expected_floats(const llm_config *c, int shared)
{
    int64_t D = c->dim, F = c->hidden, L = c->n_layers, V = c->vocab, S = c->seq_len,
            E = c->dim / c->n_heads, KE = (int64_t)c->n_kv_heads * E;
    int64_t n = V * D;             /* token embedding */
    n += L * D;                    /* rms_att */
    n += L * D * D + 2 * L * KE * D + L * D * D; /* wq, wk, wv, wo */
    n += L * D;                    /* rms_ffn */
    n += 3 * L * F * D;            /* w1, w2, w3 */
    n += D;                        /* rms_final */
    n += S * E;                    /* freq_cis_real, freq_cis_imag: [S, E/2] each */
    if (!shared) n += V * D;       /* wcls */
    return n;
}

/* Reads and checks the header from fd (at offset 0) against the file size. */
static int read_header(int fd, const struct stat *st, const char *path, llm_config *cfg, int *shared,
                       llm_error *err)
{
    if (!S_ISREG(st->st_mode))
        return llm_error_set(err, LLM_ERR_IO, "%s: not a regular file (a llama2.c checkpoint is read "
                             "from a file)", path);
    if (st->st_size < HEADER_BYTES)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: not a llama2.c checkpoint (%lld bytes, "
                             "shorter than its 28-byte header)", path, (long long)st->st_size);
    unsigned char h[HEADER_BYTES];
    LLM_TRY(read_full(fd, h, sizeof h, path, err));
    if (llm_bytes_get_le32(h) == MAGIC_AK42)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: a llama2.c version-%d export (magic ak42); "
                             "only the legacy version 0 is read (export.py --version 0)", path,
                             get_i32(h + 4));
    if (!memcmp(h, "LLMT", 4) || (h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd))
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: a tensor stream, not a llama2.c checkpoint",
                             path);
    int32_t v[7];
    for (int i = 0; i < 7; i++) v[i] = get_i32(h + 4 * i);
    *shared = v[5] > 0;
    llm_config c = {.dim = v[0], .hidden = v[1], .n_layers = v[2], .n_heads = v[3],
                    .n_kv_heads = v[4], .vocab = v[5] == INT32_MIN ? 0 : abs(v[5]), .seq_len = v[6],
                    .tie = *shared, .window = 0, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    llm_error why = {0};
    if (llm_config_check(&c, &why) < 0)
        return llm_error_set(err, LLM_ERR_FORMAT,
                             "%s: not a llama2.c checkpoint: header dim=%d hidden=%d layers=%d "
                             "heads=%d kv_heads=%d vocab=%d seq_len=%d: %s", path, v[0], v[1], v[2],
                             v[3], v[4], v[5], v[6], why.msg);
    int64_t want = HEADER_BYTES + 4 * expected_floats(&c, *shared);
    if ((int64_t)st->st_size != want)
        return llm_error_set(err, st->st_size < want ? LLM_ERR_TRUNCATED : LLM_ERR_FORMAT,
                             "%s: %s: %lld bytes, but its header (dim %d, hidden %d, layers %d, heads "
                             "%d, kv_heads %d, vocab %d%s, seq_len %d) implies %lld", path,
                             st->st_size < want ? "truncated" : "not a legacy llama2.c checkpoint",
                             (long long)st->st_size, c.dim, c.hidden, c.n_layers, c.n_heads,
                             c.n_kv_heads, c.vocab, *shared ? " shared" : " unshared", c.seq_len,
                             (long long)want);
    *cfg = c;
    return 0;
}

/* Reads the weights after the header into m, in the file's order. */
static int read_weights(int fd, const char *path, llm_model *m, llm_error *err)
{
    const llm_config *c = &m->cfg;
    int64_t D = c->dim, F = c->hidden, E = c->dim / c->n_heads, KE = (int64_t)c->n_kv_heads * E,
            HE = (int64_t)c->n_heads * E;
    int L = c->n_layers;
    LLM_TRY(read_floats(fd, m->p.tok_emb, (int64_t)c->vocab * D, path, err));
    /* per-layer tensors, each stored for all layers in turn */
    const struct {
        size_t field;
        int64_t count;
    } order[] = {
        {offsetof(llm_layer_params, attn_norm), D}, {offsetof(llm_layer_params, wq), HE * D},
        {offsetof(llm_layer_params, wk), KE * D},   {offsetof(llm_layer_params, wv), KE * D},
        {offsetof(llm_layer_params, wo), D * HE},   {offsetof(llm_layer_params, mlp_norm), D},
        {offsetof(llm_layer_params, w1), F * D},    {offsetof(llm_layer_params, w2), D * F},
        {offsetof(llm_layer_params, w3), F * D},
    };
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        for (int l = 0; l < L; l++) {
            float *dst;
            memcpy(&dst, (const char *)&m->p.layers[l] + order[k].field, sizeof dst);
            LLM_TRY(read_floats(fd, dst, order[k].count, path, err));
        }
    LLM_TRY(read_floats(fd, m->p.norm, D, path, err));
    off_t skip = (off_t)((int64_t)c->seq_len * E * (int64_t)sizeof(float)); /* freq_cis */
    if (lseek(fd, skip, SEEK_CUR) < 0)
        return llm_error_set(err, LLM_ERR_IO, "%s: seek: %s", path, strerror(errno));
    if (!c->tie) LLM_TRY(read_floats(fd, m->p.cls, (int64_t)c->vocab * D, path, err));
    return 0;
}

/* Every weight read must be a finite number, as a checkpoint's are (ckpt.h). */
static int check_finite(const llm_model *m, const char *path, llm_error *err)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const llm_param_tensor *t = &m->tensors[i];
        const float *w = m->arena + t->offset;
        int64_t bad = llm_f32_find_nonfinite(w, t->count);
        if (bad >= 0)
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s: element %lld is %g, not a finite number", path,
                                 t->name, (long long)bad, (double)w[bad]);
    }
    return 0;
}

int llm_llama2c_load(const char *model_path, const char *tokenizer_path, llm_model *m,
                     llm_error *err)
{
    memset(m, 0, sizeof *m);
    struct stat st;
    int fd = open_file(model_path, &st, err);
    if (fd < 0) return fd;
    llm_config cfg;
    int shared;
    int rc = read_header(fd, &st, model_path, &cfg, &shared, err);
    if (rc == 0) rc = llm_model_alloc(m, &cfg, err);
    if (rc == 0) rc = read_weights(fd, model_path, m, err);
    close(fd);
    if (rc == 0) rc = check_finite(m, model_path, err);
    if (rc == 0 && tokenizer_path)
        rc = llm_llama2c_read_tokenizer(tokenizer_path, cfg.vocab, &m->tok, err);
    else if (rc == 0)
        rc = llm_tok_ids(&m->tok, cfg.vocab, cfg.vocab > LLM_LLAMA2C_BOS ? LLM_LLAMA2C_BOS : -1,
                         cfg.vocab > LLM_LLAMA2C_EOS ? LLM_LLAMA2C_EOS : -1, err);
    if (rc < 0) {
        llm_tok_free(&m->tok);
        llm_model_free(m);
    }
    return rc;
}

int llm_llama2c_read_tokenizer(const char *path, int vocab, llm_tok *t, llm_error *err)
{
    memset(t, 0, sizeof *t);
    if (vocab < 1 || vocab > LLM_TOK_MAX_VOCAB)
        return llm_error_set(err, LLM_ERR_ARG, "%s: vocab %d out of range", path, vocab);
    struct stat st;
    int fd = open_file(path, &st, err);
    if (fd < 0) return fd;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
    }
    const char **pieces = malloc((size_t)vocab * sizeof *pieces);
    uint32_t *lens = malloc((size_t)vocab * sizeof *lens);
    float *scores = malloc((size_t)vocab * sizeof *scores);
    size_t *at = malloc((size_t)vocab * sizeof *at);
    size_t cap = 1 << 16, used = 0;
    char *blob = malloc(cap);
    int rc = pieces && lens && scores && at && blob ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
    unsigned char h[8];
    if (rc == 0 && fread(h, 1, 4, f) != 4)
        rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: not a llama2.c tokenizer (shorter than its header)", path);
    if (rc == 0 && get_i32(h) < 0)
        rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: not a llama2.c tokenizer (max_token_length %d)",
                           path, get_i32(h));
    for (int i = 0; rc == 0 && i < vocab; i++) {
        if (fread(h, 1, 8, f) != 8) {
            rc = llm_error_set(err, LLM_ERR_TRUNCATED, "%s: truncated: %d of the model's %d pieces", path,
                               i, vocab);
            break;
        }
        uint32_t s = llm_bytes_get_le32(h);
        memcpy(&scores[i], &s, 4);
        int32_t n = get_i32(h + 4);
        if (n < 0 || n > LLM_TOK_MAX_PIECE) {
            rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: piece %d is %d bytes long (want 0..%d)", path, i,
                               n, LLM_TOK_MAX_PIECE);
            break;
        }
        if (used + (size_t)n > cap) {
            char *b = realloc(blob, cap *= 2);
            if (!b) {
                rc = llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            blob = b;
        }
        if (fread(blob + used, 1, (size_t)n, f) != (size_t)n) {
            rc = llm_error_set(err, LLM_ERR_TRUNCATED, "%s: truncated in piece %d of the model's %d",
                               path, i, vocab);
            break;
        }
        at[i] = used;
        lens[i] = (uint32_t)n;
        used += (size_t)n;
    }
    if (rc == 0 && ferror(f)) rc = llm_error_set(err, LLM_ERR_IO, "%s: read error", path);
    if (rc == 0 && fgetc(f) != EOF)
        rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: more than %d pieces: not the tokenizer of this "
                           "model (vocab %d)", path, vocab, vocab);
    fclose(f);
    for (int i = 0; rc == 0 && i < vocab; i++) pieces[i] = blob + at[i];
    if (rc == 0) {
        rc = llm_tok_bpe(t, vocab, pieces, lens, scores, vocab > LLM_LLAMA2C_BOS ? LLM_LLAMA2C_BOS : -1,
                         vocab > LLM_LLAMA2C_EOS ? LLM_LLAMA2C_EOS : -1, err);
        if (rc < 0) llm_error_prefix(err, "%s", path);
    }
    free(pieces);
    free(lens);
    free(scores);
    free(at);
    free(blob);
    return rc;
}
