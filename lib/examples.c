/* examples — labelled examples as scored continuations: encoding, loading,
 * batches, and the label's log-likelihood. */
#include "examples.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

int llm_example_split(char *line, char **label)
{
    char *tab = strrchr(line, '\t');
    if (!tab || !tab[1]) return -1;
    *tab = '\0';
    *label = tab + 1;
    return 0;
}

int llm_example_encode(const llm_tok *tok, const char *text, size_t text_len, const char *label,
                       size_t label_len, int T, int32_t *inputs, int32_t *targets, llm_error *err)
{
    size_t cap = 1 + llm_tok_max_ids(tok, text_len) + llm_tok_max_ids(tok, label_len);
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return llm_error_set(err, LLM_ERR_NOMEM, "example: out of memory");
    int bos = tok->add_bos; /* a tokenizer may have none, or not put it first */
    if (bos) ids[0] = tok->bos;
    int64_t nt = llm_tok_encode_text(tok, text, text_len, ids + bos, err);
    int64_t nl = nt < 0 ? nt : llm_tok_encode_text(tok, label, label_len, ids + bos + nt, err);
    if (nl < 0) {
        free(ids);
        return (int)nl;
    }
    if (nl == 0 || nl > T - 1) {
        free(ids);
        return llm_error_set(err, LLM_ERR_ARG, "label '%.*s' is %lld tokens: 1..%d fit in --seq %d",
                             (int)(label_len < 40 ? label_len : 40), label, (long long)nl, T - 1, T);
    }
    if (bos + nt == 0) {
        free(ids);
        return llm_error_set(err, LLM_ERR_ARG, "an empty text, and the tokenizer has no BOS to put before "
                             "the label");
    }
    int64_t n = bos + nt + nl, first = n - 1 > T ? n - 1 - T : 0; /* window ids[first .. first+used] */
    int used = (int)(n - 1 - first); /* <= T */
    int64_t label_from = bos + nt;   /* the first label token's index */
    for (int i = 0; i < T; i++) {
        inputs[i] = i < used ? ids[first + i] : 0;
        targets[i] = i < used && first + i + 1 >= label_from ? ids[first + i + 1] : -1;
    }
    free(ids);
    return used;
}

int llm_examples_load(llm_examples *ex, const char *path, const llm_tok *tok, int T, double val_frac,
                      llm_error *err)
{
    memset(ex, 0, sizeof *ex);
    if (T < 2) return llm_error_set(err, LLM_ERR_ARG, "examples need --seq of at least 2");
    char *text;
    size_t len;
    LLM_TRY(llm_data_read_text(path, &text, &len, err));
    int64_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    lines += len && text[len - 1] != '\n';
    ex->T = T;
    ex->inputs = malloc(((size_t)lines * T + 1) * sizeof *ex->inputs);
    ex->targets = malloc(((size_t)lines * T + 1) * sizeof *ex->targets);
    int rc = ex->inputs && ex->targets ? 0 : llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory", path);
    char *line = text;
    for (int64_t k = 1; rc == 0 && line < text + len; k++) {
        char *end = memchr(line, '\n', (size_t)(text + len - line)), *label;
        if (end) *end = '\0';
        else end = text + len;
        if (*line) { /* blank lines are skipped */
            if (llm_example_split(line, &label) < 0)
                rc = llm_error_set(err, LLM_ERR_FORMAT, "no tab before a label");
            else
                rc = llm_example_encode(tok, line, strlen(line), label, strlen(label), T,
                                        ex->inputs + (size_t)ex->n * T, ex->targets + (size_t)ex->n * T, err);
            if (rc < 0) llm_error_prefix(err, "%s:%lld", path, (long long)k);
            else ex->n++, rc = 0;
        }
        line = end + 1;
    }
    free(text);
    if (rc == 0 && ex->n < 1) rc = llm_error_set(err, LLM_ERR_FORMAT, "%s: no examples", path);
    if (rc < 0) {
        llm_examples_free(ex);
        return rc;
    }
    int64_t val = (int64_t)((double)ex->n * val_frac);
    if (val == 0 && val_frac > 0 && ex->n >= 2) val = 1;
    ex->n_train = ex->n - val;
    return 0;
}

void llm_examples_free(llm_examples *ex)
{
    if (!ex) return;
    free(ex->inputs);
    free(ex->targets);
    memset(ex, 0, sizeof *ex);
}

void llm_examples_batch(const llm_examples *ex, llm_rng *rng, int B, int32_t *inputs, int32_t *targets)
{
    size_t T = (size_t)ex->T;
    for (int b = 0; b < B; b++) {
        size_t k = (size_t)llm_rng_below(rng, (uint64_t)ex->n_train);
        memcpy(inputs + b * T, ex->inputs + k * T, T * sizeof *inputs);
        memcpy(targets + b * T, ex->targets + k * T, T * sizeof *targets);
    }
}

int llm_examples_logp(llm_infer *s, const int32_t *prefix, int n_prefix, const int32_t *inputs,
                      const int32_t *targets, int n, double *logp, llm_error *err)
{
    int V = s->m->cfg.vocab, used = 0;
    LLM_TRY(llm_model_check_ids(s->m, targets, n, LLM_IDS_UNSCORED, err));
    for (int i = 0; i < n; i++)
        if (targets[i] >= 0) used = i + 1; /* positions after the last target are padding */
    int total = n_prefix + used;
    int32_t *ids = malloc((size_t)(total ? total : 1) * sizeof *ids);
    if (!ids) return llm_error_set(err, LLM_ERR_NOMEM, "scoring: out of memory");
    if (n_prefix) memcpy(ids, prefix, (size_t)n_prefix * sizeof *ids); /* prefix may be NULL then */
    memcpy(ids + n_prefix, inputs, (size_t)used * sizeof *ids);
    llm_infer_reset(s);
    int rc = total ? llm_infer_feed(s, ids, total, 1, err) : 0;
    free(ids);
    if (rc < 0) return rc;
    double sum = 0;
    for (int i = 0; i < used; i++) {
        if (targets[i] < 0) continue;
        const float *z = s->logits + (size_t)(n_prefix + i) * V;
        float mx = z[0];
        for (int j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
        double e = 0;
        for (int j = 0; j < V; j++) e += exp((double)z[j] - mx);
        double lp = (double)z[targets[i]] - mx - log(e);
        if (!isfinite(lp)) /* a logit is NaN or infinite: the activations overflowed */
            return llm_error_set(err, LLM_ERR_FORMAT, "position %d: the model's logits are not finite", i);
        sum += lp;
    }
    *logp = sum;
    return 0;
}
