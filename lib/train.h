/* train — the training loop's steps: micro-batches with gradient
 * accumulation, global-norm clipping, the schedule and the optimizer update;
 * and the validation loss.  The tool around it (bin/llm-train.c) handles
 * options, progress, logs, signals and checkpoints.
 *
 *     llm_trainer t;
 *     TRY(llm_trainer_init(&t, &model, &data, &state, NULL, &err));  // NULL: fresh optimizer
 *     while (t.st.step < t.st.optim.steps) {
 *         llm_step_stats s;
 *         llm_trainer_step(&t, &s);                  // s.loss, s.grad_norm, s.lr
 *     }
 *     float val = llm_trainer_eval(&t, 64);
 *     llm_trainer_free(&t);
 */
#ifndef LLM_TRAIN_H
#define LLM_TRAIN_H

#include "ckpt.h"
#include "data.h"
#include "model.h"
#include "optim.h"

typedef struct llm_trainer {
    llm_model *m;          /* borrowed */
    const llm_data *data;  /* borrowed */
    llm_ckpt_train st;     /* step, tokens, generator, settings */
    llm_optim optim;
    llm_acts acts;         /* [batch, seq] */
    float *grad;           /* [n_params] */
    int32_t *inputs, *targets;
} llm_trainer;

typedef struct llm_step_stats {
    float loss;       /* mean training loss over the step's micro-batches */
    double grad_norm; /* before clipping */
    float lr;
} llm_step_stats;

/* Sets up training of m on d with the settings in st (batch, seq, accum,
 * optimizer, step, generator).  resume (may be NULL) is optimizer state to
 * take over: ownership moves to the trainer. */
int llm_trainer_init(llm_trainer *t, llm_model *m, const llm_data *d, const llm_ckpt_train *st,
                     llm_optim *resume, llm_error *err);
void llm_trainer_free(llm_trainer *t);

/* One optimizer step: accum micro-batches of random windows, gradients
 * averaged, clipped to the global norm, the scheduled learning rate. */
void llm_trainer_step(llm_trainer *t, llm_step_stats *out);

/* Mean loss over the first max_windows validation windows (all when 0). */
float llm_trainer_eval(llm_trainer *t, int64_t max_windows);

#endif
