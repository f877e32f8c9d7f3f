/* optim — optimizers, learning-rate schedule and gradient clipping.
 *
 * Parameters and gradients are flat float arrays (one arena each, see
 * model.h); a list of spans says which stretches are 2-D weight matrices,
 * the only ones weight decay touches.  State lives in one arena per kind of
 * moment, so its size is visible: Lion keeps one float per parameter, Adam and
 * AdamW two.
 *
 *   SGD    g += wd p;  v = mu v + g;        p -= lr v            (v = g on the first step)
 *   Adam   g += wd p;  m,v moments;         p -= lr m^/(sqrt(v^) + eps)
 *   AdamW  m,v moments;                     p -= lr (m^/(sqrt(v^) + eps) + wd p)
 *   Lion   c = b1 m + (1-b1) g;             p -= lr (sign(c) + wd p);  m = b2 m + (1-b2) g
 * (m^ and v^ are the bias-corrected moments; wd only on decayed spans.)
 *
 *     llm_optim o;
 *     LLM_TRY(llm_optim_init(&o, &cfg, n_params, &err));
 *     float lr = llm_optim_lr(&cfg, step);
 *     float norm = llm_grad_norm(grad, n_params);
 *     llm_optim_step(&o, params, grad, spans, n_spans, lr, llm_clip_scale(norm, cfg.clip));
 *     llm_optim_free(&o);
 */
#ifndef LLM_OPTIM_H
#define LLM_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum llm_optim_kind {
    LLM_OPTIM_SGD,
    LLM_OPTIM_ADAM,
    LLM_OPTIM_ADAMW,
    LLM_OPTIM_LION,
} llm_optim_kind;

typedef struct llm_optim_config {
    llm_optim_kind kind;
    float lr;           /* peak learning rate */
    float min_lr;       /* the cosine decays to this */
    int64_t warmup;     /* linear warmup steps (from lr/warmup up to lr) */
    int64_t steps;      /* total steps: the cosine reaches min_lr here */
    float beta1, beta2; /* Adam/AdamW: 0.9, 0.95; Lion: 0.9, 0.99; SGD: beta1 is momentum */
    float eps;          /* Adam/AdamW: 1e-8 */
    float weight_decay; /* on decayed spans only; AdamW default 0.1 */
    float clip;         /* global gradient-norm limit, 0 = none */
} llm_optim_config;

/* Fills c with the defaults of kind (lr 1e-3 Adam/AdamW/SGD, 1e-4 Lion;
 * min_lr lr/10; warmup 0; steps 1; betas and eps as above, SGD momentum 0.9;
 * weight decay 0.1 for AdamW and Lion, 0 otherwise; clip 1.0). */
void llm_optim_defaults(llm_optim_config *c, llm_optim_kind kind);
/* "sgd", "adam", "adamw", "lion"; llm_optim_parse returns -1 for others. */
const char *llm_optim_name(llm_optim_kind kind);
int llm_optim_parse(const char *name);

/* A stretch of the parameter arena; decay = 1 for 2-D weight matrices. */
typedef struct llm_param_span {
    int64_t offset, count;
    int decay;
} llm_param_span;

typedef struct llm_optim {
    llm_optim_config cfg;
    int64_t n;     /* parameters */
    int64_t t;     /* steps taken (bias correction uses t after increment) */
    float *m;      /* first moment / momentum [n]; NULL for plain SGD without momentum */
    float *v;      /* second moment [n] (Adam, AdamW only) */
} llm_optim;

/* 0 when c is a usable configuration: a known kind, finite learning rates,
 * eps, weight decay and clip >= 0, betas in [0, 1] ([0, 1) for Adam and
 * AdamW), warmup and steps >= 0; else LLM_ERR_ARG saying which. */
int llm_optim_check(const llm_optim_config *c, llm_error *err);
/* Allocates zeroed state for n parameters (c checked as above). */
int llm_optim_init(llm_optim *o, const llm_optim_config *cfg, int64_t n, llm_error *err);
void llm_optim_free(llm_optim *o);
/* Bytes of optimizer state (m and v). */
size_t llm_optim_state_bytes(const llm_optim *o);

/* The learning rate at step (0-based): linear warmup over cfg->warmup steps,
 * then cosine decay from lr to min_lr ending at cfg->steps. */
float llm_optim_lr(const llm_optim_config *cfg, int64_t step);

/* The global L2 norm of g[0..n), summed in double. */
double llm_grad_norm(const float *g, int64_t n);
/* The factor that brings a gradient of norm `norm` within `clip` (1 when it
 * already is, or when clip is 0). */
float llm_clip_scale(double norm, float clip);

/* One optimizer step on params[0..n) with gradients grad * grad_scale (the
 * scale folds in clipping and the 1/accumulation average; grad is not
 * modified).  spans cover the arena; their decay flags choose weight decay. */
void llm_optim_step(llm_optim *o, float *params, const float *grad, const llm_param_span *spans,
                    int n_spans, float lr, float grad_scale);

#endif
