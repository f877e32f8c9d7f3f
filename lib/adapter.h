/* adapter — what fine-tuning with a frozen base trains and saves: prompt
 * tuning's virtual tokens and LoRA's low-rank factors, in one small arena of
 * their own, tied to the exact base model they were trained on.
 *
 * Prompt tuning (Lester et al.): P trainable embeddings [P, D] take
 * positions 0..P-1 of every sequence, before its first real token.  In token
 * arrays they are the ids V..V+P-1 (V the base vocabulary), so the training
 * forward pass (model.c) and the inference code (infer.c) read row id-V of
 * the adapter's "virtual" tensor instead of the embedding table.
 *
 * LoRA (lora.h): for each layer and each chosen linear (wq wk wv wo w1 w2
 * w3), factors A [R, in] (drawn from N(0, 1/in)) and B [out, R] (zero), added
 * as s (x A^T) B^T with s = alpha / R.
 *
 * The adapter is attached to a model (m->adapter); the base weights stay
 * untouched.  Its stream (llm-tensor(5)) is a metadata record "adapter"
 * (format llmpipe-adapter, the settings, and base_hash: a content hash of the
 * base's architecture and weights), the training state of the run that made
 * it (a "train" record as in a checkpoint, ckpt.h), the tensors "virtual",
 * "layers.L.attn.wq.lora_a", "layers.L.attn.wq.lora_b", ..., and the
 * optimizer moments of each, "optim.m.virtual", ..., so that the run can be
 * resumed exactly; loading it onto another base is refused.
 *
 *     llm_adapter ad;
 *     llm_adapter_config ac = {.rank = 8, .alpha = 16, .targets = LLM_LORA_ALL};
 *     LLM_TRY(llm_adapter_init(&ad, &base, &ac, seed, &err));
 *     LLM_TRY(llm_adapter_attach(&base, &ad, &err));       // forward passes now use it
 *     LLM_TRY(llm_adapter_save("a.llmt", &ad, &optim, &train, &err));   // optim, train may be NULL
 */
#ifndef LLM_ADAPTER_H
#define LLM_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "err.h"
#include "model.h"
#include "optim.h"

/* Every linear of a layer (bit LLM_LIN_* of linear.h each) as LoRA targets. */
#define LLM_LORA_ALL ((1u << LLM_LIN_PER_LAYER) - 1)

typedef struct llm_adapter_config {
    int n_virtual;    /* P prompt-tuning tokens; 0: none */
    int rank;         /* R; 0: no LoRA */
    float alpha;      /* LoRA scale alpha / R */
    unsigned targets; /* bit LLM_LIN_* (linear.h): that linear is adapted in every layer */
} llm_adapter_config;

/* One adapted linear: offsets of A [rank, in] and B [out, rank] in the
 * arena, or a = -1 when the linear is not adapted. */
typedef struct llm_lora_site {
    int64_t a, b;
    int in, out;
} llm_lora_site;

typedef struct llm_adapter {
    llm_adapter_config cfg;
    llm_config base;           /* the architecture it belongs to */
    uint64_t base_hash;        /* llm_model_content_hash of the base */
    float scale;               /* alpha / rank */
    int64_t n_params;
    float *arena;              /* [n_params], owned */
    int64_t virt;              /* offset of "virtual" [P, D] (0 when P > 0) */
    llm_lora_site *sites;      /* [7L], by linear index (linear.h) */
    int n_tensors;
    llm_param_tensor *tensors; /* [n_tensors], in stream order */
    llm_param_span *spans;     /* [n_tensors], no weight decay */
} llm_adapter;

/* "wq,wk,wv,wo,w1,w2,w3" (any subset, or "all") to bits. */
int llm_adapter_parse_targets(const char *list, unsigned *targets, llm_error *err);
/* Bits back to "wq,wv", into buf. */
void llm_adapter_targets_name(unsigned targets, char *buf, size_t n);

/* A fresh adapter for base: virtual tokens copied from the embeddings of
 * random vocabulary ids, A random, B zero. */
int llm_adapter_init(llm_adapter *ad, const llm_model *base, const llm_adapter_config *c,
                     uint64_t seed, llm_error *err);
void llm_adapter_free(llm_adapter *ad);

/* FNV-1a over the architecture and every weight's bytes: the base's identity.
 * For a quantized base (linears with integer weights) the quantized linears count by their
 * format, codes, scales and zero points, so a QLoRA adapter belongs to the
 * exact int4/int8 checkpoint it was trained on. */
uint64_t llm_model_content_hash(const llm_model *m);

/* Checks that ad was made for m (architecture and content hash), then makes
 * m's forward passes use it: m->adapter = ad (its virtual tokens) and the
 * LoRA factors on m's linears (linear.h), all borrowed. */
int llm_adapter_attach(llm_model *m, llm_adapter *ad, llm_error *err);
/* Takes the adapter off m again (the linears' LoRA factors and m->adapter). */
void llm_adapter_detach(llm_model *m);

/* Folds the LoRA factors into m's weights (W += s B A).  Virtual tokens
 * cannot be folded: an adapter with them is refused. */
int llm_adapter_merge(llm_model *m, const llm_adapter *ad, llm_error *err);

/* The adapter as a stream (written through a temporary name); with train
 * (may be NULL) also the training state and, with o too, the optimizer's
 * moments of the adapter's arena (o->n == ad->n_params). */
int llm_adapter_save(const char *path, const llm_adapter *ad, const llm_optim *o,
                     const llm_ckpt_train *train, llm_error *err);
/* Loads an adapter stream for running it (allocated here; free with
 * llm_adapter_free).  A training state, when there is one, is checked and
 * left out; its moments are optional. */
int llm_adapter_load(const char *path, llm_adapter *ad, llm_error *err);
/* Loads an adapter stream to train it further.  When it has a training
 * state: *has_train = 1, *train is filled and o is initialised with the saved
 * optimizer state (free with llm_optim_free), whose every moment must be
 * there.  Otherwise (an adapter saved without one) *has_train = 0 and o is
 * zeroed. */
int llm_adapter_load_train(const char *path, llm_adapter *ad, llm_optim *o, llm_ckpt_train *train,
                           int *has_train, llm_error *err);
/* Either from a stream in memory (buf is not copied); label names it in
 * messages.  o, train and has_train all NULL: as llm_adapter_load; all
 * given: as llm_adapter_load_train. */
int llm_adapter_load_mem(const void *buf, size_t len, const char *label, llm_adapter *ad, llm_optim *o,
                         llm_ckpt_train *train, int *has_train, llm_error *err);

#endif
