/* data — corpus loading, the held-out split, training and validation windows. */
#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int llm_data_read_text(const char *path, char **out, size_t *len, llm_error *err)
{
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY);
    if (fd < 0) return llm_error_set(err, LLM_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            if (fd) close(fd);
            return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            if (fd) close(fd);
            return llm_error_set(err, LLM_ERR_IO, "%s: read: %s", path, strerror(e));
        }
        if (k == 0) break;
        n += (size_t)k;
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    if (fd) close(fd);
    buf[n] = '\0'; /* the loop grows the buffer when full, so n < cap here */
    *out = buf;
    *len = n;
    return 0;
}

/* Appends BOS (when tok has one) and the tokens of text to d->tokens
 * (capacity grown as needed). */
static int append_text(llm_data *d, int64_t *cap, const char *text, size_t len, const llm_tok *tok,
                       llm_error *err)
{
    int64_t need = d->n_tokens + 1 + (int64_t)llm_tok_max_ids(tok, len);
    if (need > *cap) {
        int64_t c = *cap ? *cap : 1024;
        while (c < need) c *= 2;
        int32_t *t = realloc(d->tokens, (size_t)c * sizeof *t);
        if (!t) return llm_error_set(err, LLM_ERR_NOMEM, "corpus: out of memory");
        d->tokens = t;
        *cap = c;
    }
    if (tok->add_bos) d->tokens[d->n_tokens++] = tok->bos;
    int64_t n = llm_tok_encode_text(tok, text, len, d->tokens + d->n_tokens, err);
    if (n < 0) return (int)n;
    d->n_tokens += n;
    d->n_bytes += (int64_t)len;
    return 0;
}

static void split(llm_data *d, double val_frac)
{
    d->n_train = d->n_tokens - (int64_t)((double)d->n_tokens * val_frac);
}

int llm_data_load(llm_data *d, const char *const *paths, int n_paths, const llm_tok *tok,
                  double val_frac, llm_error *err)
{
    memset(d, 0, sizeof *d);
    int64_t cap = 0;
    for (int i = 0; i < n_paths; i++) {
        char *text = NULL;
        size_t len = 0;
        int rc = llm_data_read_text(paths[i], &text, &len, err);
        if (rc == 0 && len == 0) rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: empty file", paths[i]);
        if (rc == 0 && (rc = append_text(d, &cap, text, len, tok, err)) < 0 && rc != LLM_ERR_NOMEM)
            llm_error_prefix(err, "%s", paths[i]);
        if (rc < 0) {
            free(text);
            llm_data_free(d);
            return rc;
        }
        free(text);
    }
    split(d, val_frac);
    return 0;
}

int llm_data_from_text(llm_data *d, const char *text, size_t len, const llm_tok *tok,
                       double val_frac, llm_error *err)
{
    memset(d, 0, sizeof *d);
    int64_t cap = 0;
    int rc = append_text(d, &cap, text, len, tok, err);
    if (rc < 0) llm_data_free(d);
    else split(d, val_frac);
    return rc;
}

void llm_data_free(llm_data *d)
{
    if (!d) return;
    free(d->tokens);
    memset(d, 0, sizeof *d);
}

int llm_data_check(const llm_data *d, int T, llm_error *err)
{
    int64_t val = d->n_tokens - d->n_train;
    if (d->n_train < T + 1 || (val > 0 && val < T + 1))
        return llm_error_set(err, LLM_ERR_FORMAT,
                             "corpus too short: %lld tokens (%lld for training, %lld held out); "
                             "--seq %d needs at least %d in each part",
                             (long long)d->n_tokens, (long long)d->n_train, (long long)val, T, T + 1);
    return 0;
}

void llm_data_train_batch(const llm_data *d, llm_rng *rng, int B, int T, int32_t *inputs,
                          int32_t *targets)
{
    uint64_t starts = (uint64_t)(d->n_train - T); /* windows of T+1 tokens */
    for (int b = 0; b < B; b++) {
        const int32_t *w = d->tokens + llm_rng_below(rng, starts);
        memcpy(inputs + (size_t)b * (size_t)T, w, (size_t)T * sizeof *w);
        memcpy(targets + (size_t)b * (size_t)T, w + 1, (size_t)T * sizeof *w);
    }
}

int64_t llm_data_val_windows(const llm_data *d, int T)
{
    int64_t val = d->n_tokens - d->n_train;
    return val < T + 1 ? 0 : (val - 1) / T;
}

void llm_data_val_window(const llm_data *d, int T, int64_t w, int32_t *inputs, int32_t *targets)
{
    const int32_t *s = d->tokens + d->n_train + w * T;
    memcpy(inputs, s, (size_t)T * sizeof *s);
    memcpy(targets, s + 1, (size_t)T * sizeof *s);
}
