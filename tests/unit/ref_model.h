/* ref_model — a plain double-precision Llama forward pass, written from the
 * definitions independently of lib/model, for the unit tests to check the
 * library against: the loss of a model (with an adapter's virtual tokens and
 * LoRA factors when it has one), every gradient against central differences
 * of that loss, and probabilities against the softmax of logits.
 *
 *     ref_model r = {&m, NULL, w, NULL}; // w: m's arena in double
 *     CHECK_NEAR(llm_model_forward(&m, &a, in, tg), ref_model_loss(&r, in, tg, B, T), tol);
 *     ref_model_check_base_gradient(&r, grad, in, tg, B, T);
 */
#ifndef LLM_REF_MODEL_H
#define LLM_REF_MODEL_H

#include <stdint.h>

#include "adapter.h"
#include "model.h"

typedef struct ref_model {
    const llm_model *m;    /* layout (names, offsets) and configuration only */
    const llm_adapter *ad; /* layout only; NULL: no adapter */
    double *w;             /* the base's parameters, in the arena's layout */
    double *aw;            /* the adapter's, in its arena's layout (with ad) */
} ref_model;

/* Mean cross-entropy over the scored targets (tg >= 0) of B sequences of T
 * ids each; ids >= vocab are the adapter's virtual tokens. */
double ref_model_loss(const ref_model *r, const int32_t *in, const int32_t *tg, int B, int T);

/* Every tensor's gradient in grad (laid out as r->w, or as r->aw for the
 * adapter's) against central differences of ref_model_loss, which perturb
 * r->w (r->aw) one weight at a time and restore it; a tensor whose gradient
 * is all but zero fails too, as a test too weak to tell. */
void ref_model_check_base_gradient(const ref_model *r, const float *grad, const int32_t *in,
                                   const int32_t *tg, int B, int T);
void ref_model_check_adapter_gradient(const ref_model *r, const float *grad, const int32_t *in,
                                      const int32_t *tg, int B, int T);

/* The larger of so_far and every |softmax(logits)[j] - probs[j]| over n
 * entries, the softmax in double: a running maximum over rows, in which a
 * NaN, once met, stays. */
double ref_softmax_gap(double so_far, const float *logits, const float *probs, int n);

#endif
