/* train — gradient accumulation, clipping, optimizer steps, validation. */
#include "train.h"

#include <stdlib.h>
#include <string.h>

int llm_trainer_init(llm_trainer *t, llm_model *m, const llm_data *d, const llm_ckpt_train *st,
                     llm_optim *resume, llm_error *err)
{
    memset(t, 0, sizeof *t);
    t->m = m;
    t->data = d;
    t->st = *st;
    TRY(llm_data_check(d, st->seq, err));
    int rc = llm_acts_init(&t->acts, &m->cfg, st->batch, st->seq, err);
    if (rc < 0) return rc;
    size_t n = (size_t)st->batch * (size_t)st->seq;
    t->grad = malloc((size_t)m->n_params * sizeof *t->grad);
    t->inputs = malloc(2 * n * sizeof *t->inputs);
    if (!t->grad || !t->inputs) {
        llm_trainer_free(t);
        return llm_error_set(err, LLM_ERR_NOMEM, "training buffers: out of memory");
    }
    t->targets = t->inputs + n;
    if (resume) {
        t->optim = *resume;
        memset(resume, 0, sizeof *resume);
    } else if ((rc = llm_optim_init(&t->optim, &st->optim, m->n_params, err)) < 0) {
        llm_trainer_free(t);
        return rc;
    }
    return 0;
}

void llm_trainer_free(llm_trainer *t)
{
    if (!t) return;
    llm_acts_free(&t->acts);
    llm_optim_free(&t->optim);
    free(t->grad);
    free(t->inputs);
    memset(t, 0, sizeof *t);
}

void llm_trainer_step(llm_trainer *t, llm_step_stats *out)
{
    int B = t->st.batch, T = t->st.seq, A = t->st.accum;
    memset(t->grad, 0, (size_t)t->m->n_params * sizeof *t->grad);
    double loss = 0;
    for (int a = 0; a < A; a++) {
        llm_data_train_batch(t->data, &t->st.rng, B, T, t->inputs, t->targets);
        loss += llm_model_forward(t->m, &t->acts, t->inputs, t->targets);
        llm_model_backward(t->m, &t->acts, t->grad);
    }
    /* the gradient of the mean over micro-batches: grad / A, then clipped */
    double norm = llm_grad_norm(t->grad, t->m->n_params) / A;
    float scale = llm_clip_scale(norm, t->st.optim.clip) / (float)A;
    float lr = llm_optim_lr(&t->st.optim, t->st.step);
    llm_optim_step(&t->optim, t->m->arena, t->grad, t->m->spans, t->m->n_tensors, lr, scale);
    t->st.step++;
    t->st.tokens += (int64_t)A * B * T;
    out->loss = (float)(loss / A);
    out->grad_norm = norm;
    out->lr = lr;
}

float llm_trainer_eval(llm_trainer *t, int64_t max_windows)
{
    int B = t->st.batch, T = t->st.seq;
    int64_t n = llm_data_val_windows(t->data, T);
    if (max_windows > 0 && n > max_windows) n = max_windows;
    double total = 0;
    int64_t counted = 0;
    for (int64_t w = 0; w < n; w += B) {
        int rows = n - w < B ? (int)(n - w) : B;
        for (int b = 0; b < B; b++) {
            int32_t *in = t->inputs + (size_t)b * T, *tg = t->targets + (size_t)b * T;
            if (b < rows) {
                llm_data_val_window(t->data, T, w + b, in, tg);
            } else { /* padding rows: ignored by the loss */
                memset(in, 0, (size_t)T * sizeof *in);
                for (int i = 0; i < T; i++) tg[i] = -1;
            }
        }
        total += (double)llm_model_forward(t->m, &t->acts, t->inputs, t->targets) * rows * T;
        counted += (int64_t)rows * T;
    }
    return counted ? (float)(total / (double)counted) : 0.0f;
}
