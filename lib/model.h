/* model — a decoder-only Llama: configuration, parameters, training forward.
 *
 *   x = tok_emb[tokens]
 *   for each layer:  x += wo . attn(rope(wq . rms(x)), rope(wk . rms(x)), wv . rms(x))
 *                    x += w2 . (silu(w1 . rms(x)) * (w3 . rms(x)))
 *   logits = cls . rms(x)          (cls is tok_emb when tied)
 *
 * rms(x) = x / sqrt(mean(x^2) + eps) * g with a learned gain per layer and
 * norm; attention is causal (optionally a sliding window), multi-head with
 * grouped-query sharing when n_kv_heads < n_heads (see attn.h); RoPE rotates q
 * and k (rope.h).  Every matrix product goes through cblas_sgemm.
 *
 * All parameters live in one float arena in a fixed order with named views
 * (llm_model_tensors); gradients and optimizer moments use arenas of the same
 * layout, so one loop (optim.h) updates them all.  Weights are [out, in], as
 * in PyTorch's Linear and llama2.c.
 *
 * Dimension letters: B batch, T time, N = B*T tokens, V vocab, D model width,
 * H heads, K kv heads, E head size (D/H), F hidden width, L layers.
 *
 *     llm_model m;
 *     LLM_TRY(llm_model_init(&m, &cfg, seed, &err));          // random weights
 *     llm_acts a;
 *     LLM_TRY(llm_acts_init(&a, &m.cfg, B, T, &err));
 *     float loss = llm_model_forward(&m, &a, inputs, targets);   // [B*T] each
 *     llm_model_backward(&m, &a, grads);                   // grads arena += dLoss/dParams
 */
#ifndef LLM_MODEL_H
#define LLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "linear.h"
#include "optim.h"
#include "rope.h"
#include "tensor.h"
#include "tok.h"

typedef struct llm_config {
    int vocab;        /* V */
    int dim;          /* D */
    int n_layers;     /* L */
    int n_heads;      /* H; D % H == 0 and D/H even (RoPE) */
    int n_kv_heads;   /* K; H % K == 0 */
    int hidden;       /* F */
    int seq_len;      /* the context the model is trained for */
    int tie;          /* 1: the classifier is tok_emb */
    int window;       /* sliding-window attention, 0 = full causal */
    float norm_eps;   /* 1e-5 */
    float rope_theta; /* 10000 */
} llm_config;

/* Checks every field and the shapes they imply, naming the first problem. */
int llm_config_check(const llm_config *c, llm_error *err);
/* The output and input widths of a layer's linear `site` (linear.h). */
void llm_config_linear_shape(const llm_config *c, int site, int *out, int *in);

/* Views of one layer's parameters (or gradients, or moments) in an arena. */
typedef struct llm_layer_params {
    float *attn_norm; /* [D] */
    float *wq;        /* [H*E, D] */
    float *wk;        /* [K*E, D] */
    float *wv;        /* [K*E, D] */
    float *wo;        /* [D, H*E] */
    float *mlp_norm;  /* [D] */
    float *w1;        /* [F, D] gate */
    float *w2;        /* [D, F] down */
    float *w3;        /* [F, D] up */
} llm_layer_params;

typedef struct llm_params {
    float *tok_emb;            /* [V, D] */
    llm_layer_params *layers;  /* [L] */
    float *norm;               /* [D] */
    float *cls;                /* [V, D]; == tok_emb when tied */
} llm_params;

/* One named tensor of the arena, in checkpoint order. */
typedef struct llm_param_tensor {
    char name[48];    /* "tok_emb", "layers.3.attn.wq", "norm", "cls" */
    llm_shape shape;
    int64_t offset;   /* in floats */
    int64_t count;
} llm_param_tensor;

typedef struct llm_model {
    llm_config cfg;
    llm_tok tok;
    int64_t n_params;
    float *arena;              /* [n_params], owned */
    size_t arena_map;          /* bytes mapped for it (mmap), 0 when malloc'd */
    llm_params p;              /* views into arena */
    int n_tensors;
    llm_param_tensor *tensors; /* [n_tensors] */
    llm_param_span *spans;     /* [n_tensors]: decay on 2-D tensors */
    /* Borrowed, NULL when none: prompt-tuning tokens and LoRA factors every
     * forward pass applies (adapter.h); token ids V..V+P-1 are its virtual
     * tokens. */
    struct llm_adapter *adapter;
    /* The linears [llm_linear_count(L)] in linear.h's order: their shapes,
     * float views of the arena, the integer weights of a quantized
     * checkpoint (quant.h; NULL where a linear stays float, and where one is
     * set, its arena view is never touched, so its pages are never
     * resident) and the LoRA factors of an attached adapter. */
    llm_linear *lin;
} llm_model;

/* The arena's layout for c without allocating it: fills tensors[] (names,
 * shapes, offsets, in checkpoint order; at most 9 L + 3 of them) when it is
 * not NULL, sets *n_tensors, and returns the parameter count. */
int64_t llm_model_layout(const llm_config *c, llm_param_tensor *tensors, int *n_tensors);

/* Allocates a model with weights drawn from N(0, 0.02) (output projections
 * wo and w2 scaled by 1/sqrt(2L), as GPT-2 does) and norm gains of 1. */
int llm_model_init(llm_model *m, const llm_config *cfg, uint64_t seed, llm_error *err);
/* Allocates a model with zeroed weights (for loading a checkpoint). */
int llm_model_alloc(llm_model *m, const llm_config *cfg, llm_error *err);
void llm_model_free(llm_model *m);
/* For a model about to get quantized linears (a quantized checkpoint being
 * loaded): no transparent huge pages for its arena, where each float tensor
 * written between the never-touched float views of the quantized linears
 * (every norm gain) would otherwise make a whole 2 MiB page resident. */
void llm_model_sparse_arena(llm_model *m);
/* How many of m's linears are quantized (0: a float model). */
int llm_model_quantized(const llm_model *m);
/* Maps views of an arena with the model's layout (for gradients, moments):
 * tok_emb, norm, cls, and every layer's into p->layers [L] unless it is NULL. */
void llm_params_map(const llm_model *m, float *arena, llm_params *p);
/* The views of layer l alone. */
void llm_layer_params_map(const llm_model *m, float *arena, int l, llm_layer_params *lp);
/* The tensor named name, or NULL. */
const llm_param_tensor *llm_model_tensor(const llm_model *m, const char *name);

/* What the training forward pass keeps for the backward pass, for B
 * sequences of T tokens, plus scratch.  Normalised inputs and the gated MLP
 * activation are recomputed in the backward pass rather than stored. */
typedef struct llm_acts {
    int B, T;
    int32_t *inputs, *targets; /* [N] copies */
    float *x;          /* [L+1, N, D] residual stream entering each layer, and the last */
    float *rms1;       /* [L, N] 1/rms before attention */
    float *q;          /* [L, N, H*E] after RoPE */
    float *k;          /* [L, N, K*E] after RoPE */
    float *v;          /* [L, N, K*E] */
    float *att;        /* [L, N, H*E] attention output (before wo) */
    float *lse;        /* [L, B, H, T] attention log-sum-exp */
    float *x_mid;      /* [L, N, D] after the attention residual */
    float *rms2;       /* [L, N] */
    float *h1, *h3;    /* [L, N, F] gate and up projections */
    float *rmsf;       /* [N] */
    float *xf;         /* [N, D] final normalised stream */
    float *probs;      /* [N, V] softmax of the logits */
    /* scratch for the backward pass */
    float *s_nd, *s_nd2, *s_nd3; /* [N, D] */
    float *s_nf, *s_nf2;         /* [N, F] */
    float *s_kv, *s_kv2;         /* [N, K*E] */
    /* with a LoRA adapter (llm_acts_lora): x A^T of every site, kept for
     * the backward pass, and scratch */
    float *lora_u;     /* [7L, N, R], by linear index (linear.h) */
    float *lora_du;    /* [N, R] */
    float *lora_dx;    /* [N, D] (in lora_du's allocation) */
    /* with a quantized base (llm_acts_quant): one block of LLM_QROWS
     * dequantized weight rows, [LLM_QROWS, max(D, H*E, F)] */
    float *qscratch;
    llm_rope rope;     /* positions 0..T-1 (the table is [T, E/2]) */
    size_t bytes;      /* everything above */
    /* Optional (NULL after llm_acts_init): called by llm_model_backward as the
     * gradients of the arena's floats [from, n_params) become final, once
     * after the head and once after each layer, so a caller can start
     * reducing them over processes while the rest is computed. */
    void (*grad_ready)(void *ctx, int64_t from);
    void *grad_ready_ctx;
} llm_acts;

int llm_acts_init(llm_acts *a, const llm_config *c, int B, int T, llm_error *err);
/* Adds what a LoRA adapter of rank R needs to a (before the first forward
 * pass of a model that has one). */
int llm_acts_lora(llm_acts *a, const llm_config *c, int rank, llm_error *err);
/* Adds the dequantization scratch a model with quantized linears
 * needs to a (before its first forward pass); nothing for a float model. */
int llm_acts_quant(llm_acts *a, const llm_model *m, llm_error *err);
void llm_acts_free(llm_acts *a);

/* What an array of token ids may hold besides the vocabulary 0..V-1 (bits):
 * LLM_IDS_VIRTUAL the ids V..V+P-1 of the attached adapter's P virtual
 * tokens (inputs of a prompt-tuned model), LLM_IDS_UNSCORED negative ids
 * (targets that are not scored, -1 by convention).  0: the vocabulary only
 * (text, and targets that are all scored). */
enum { LLM_IDS_VIRTUAL = 1, LLM_IDS_UNSCORED = 2 };

/* Checks that the n ids are ids model m takes (0..V-1, and what allow adds);
 * every path that hands ids to m's forward passes checks them so first,
 * since an id out of range would index past the embeddings.  Returns 0, or
 * LLM_ERR_ARG with "token K of N: id X outside the vocabulary (0..V-1)"
 * (K counted from 1; the caller prefixes where the ids came from). */
int llm_model_check_ids(const llm_model *m, const int32_t *ids, int64_t n, unsigned allow, llm_error *err);

/* The reference forward pass: every faster one (infer.h) is tested against
 * it.  Runs B sequences of T tokens (B and T from a), inputs [B*T] (ids from
 * V on are the adapter's virtual tokens), and returns the mean cross-entropy
 * (nats) of targets [B*T] (ids < 0 are ignored); a->probs gets the softmax.
 * The ids must pass llm_model_check_ids (inputs with LLM_IDS_VIRTUAL,
 * targets with LLM_IDS_UNSCORED): an id out of range is a programmer error
 * (assert). */
float llm_model_forward(const llm_model *m, llm_acts *a, const int32_t *inputs,
                        const int32_t *targets);

/* Adds the gradient of the last forward pass's loss to the arena `grad`
 * (same layout as m->arena; zero it first unless accumulating). */
void llm_model_backward(const llm_model *m, llm_acts *a, float *grad);

/* The same through the model's adapter: grad (the base's gradient) may be
 * NULL, and then no base weight gradient is computed at all (a frozen base);
 * adapter_grad (layout of m->adapter's arena; NULL: none) gets the
 * adapter's gradient added. */
void llm_model_backward_adapter(const llm_model *m, llm_acts *a, float *grad, float *adapter_grad);

/* Greedy continuation of prompt (n_prompt >= 1 ids, checked as inputs of
 * llm_model_forward are) by n_new tokens, each the most likely one
 * (llm_sample_argmax: an id of the vocabulary even on NaN) after a full
 * forward pass over the last a->T tokens (a has B = 1): simple and slow,
 * O(n T^2), for samples during training.  Stops after EOS or BOS.  Writes
 * the new ids to out and returns how many, or LLM_ERR_NOMEM. */
int llm_model_greedy(const llm_model *m, llm_acts *a, const int32_t *prompt, int n_prompt,
                     int n_new, int32_t *out, llm_error *err);

#endif
