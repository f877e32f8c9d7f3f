/* ckpt — model checkpoints as tensor streams.
 *
 * A checkpoint is a stream: a metadata record "config" (the architecture as
 * attributes), a metadata record "tokenizer", for a training checkpoint a
 * metadata record "train" (step, optimizer settings, generator state, the
 * corpus fingerprint), then every parameter tensor by name in a fixed order
 * (f32, byte-shuffled), then for a training checkpoint the optimizer moments
 * named beside them: "optim.m.<name>" and "optim.v.<name>".  Files are
 * written through a temporary name and renamed (outfile.h).
 *
 * A quantized checkpoint (llm-quant) has the same records, except that each
 * quantized linear (m->lin[].q, quant.h) is its integer codes (i8, or u4) with
 * attributes quant=int8|int4|w8a8 (int4: group=, sym=; w8a8: act_scale=),
 * followed by "<name>.scale" f32 [rows, groups] and, for asymmetric int4,
 * "<name>.zero" u8 [rows, groups]; a tied classifier that is quantized is a
 * record "cls" of its own.  The config record then has quant=<scheme>.
 *
 * Loading checks every float it reads: a parameter or optimizer moment that
 * is NaN or infinite, or a scale that is not finite (a scale may be zero or
 * negative, as those of GGUF's Q4_0 blocks are), is an
 * error naming the tensor and the element (LLM_ERR_FORMAT), as is a
 * tokenizer whose ids do not fit the model's vocabulary.
 *
 *     LLM_TRY(llm_ckpt_save("m.llmt", &model, &optim, &train, &err));   // optim, train may be NULL
 *     llm_ckpt_train t;  int has_train;
 *     LLM_TRY(llm_ckpt_load("m.llmt", &model, &optim, &t, &has_train, &err));
 */
#ifndef LLM_CKPT_H
#define LLM_CKPT_H

#include <stdint.h>

#include "err.h"
#include "model.h"
#include "optim.h"
#include "quant.h"
#include "rng.h"
#include "stream.h"

/* Where a training run stands: enough to resume it exactly. */
typedef struct llm_ckpt_train {
    int64_t step;           /* optimizer steps taken */
    int64_t tokens;         /* training tokens seen */
    llm_optim_config optim; /* the optimizer and its schedule */
    int batch, seq, accum;  /* B, T, micro-batches per step */
    llm_rng rng;            /* the data sampler's generator: the data position */
    uint64_t seed;
    uint64_t data_hash;     /* fingerprint of the training tokens */
    double val_frac;
} llm_ckpt_train;

/* Writes m (and, when given, the optimizer state and training state). */
int llm_ckpt_save(const char *path, const llm_model *m, const llm_optim *o,
                  const llm_ckpt_train *train, llm_error *err);

/* Loads a checkpoint into m (allocated here; free with llm_model_free).
 * When the checkpoint has training state: *has_train = 1, *train is filled,
 * and, if o is not NULL, o is initialised with the saved optimizer state.
 * Otherwise *has_train = 0 and o is left alone. */
int llm_ckpt_load(const char *path, llm_model *m, llm_optim *o, llm_ckpt_train *train,
                  int *has_train, llm_error *err);

/* Loads a checkpoint for running it: float, or with quantized linears
 * (m->lin[].q; their float views are left unused, never filled).  Training
 * state is ignored.  llm_ckpt_load refuses quantized checkpoints. */
int llm_ckpt_load_model(const char *path, llm_model *m, llm_error *err);

/* The "train" metadata record, which checkpoints and adapter streams share:
 * llm_ckpt_write_train writes t with optim_t, the optimizer's own step count
 * (llm_optim.t, for bias correction); llm_ckpt_parse_train reads rec back,
 * every attribute present and in range and the optimizer settings usable
 * (llm_optim_check), else LLM_ERR_FORMAT. */
int llm_ckpt_write_train(llm_writer *w, const llm_ckpt_train *t, int64_t optim_t, llm_error *err);
int llm_ckpt_parse_train(const llm_record *rec, llm_ckpt_train *t, int64_t *optim_t, llm_error *err);

/* The pieces of a checkpoint, for writers that stream one tensor at a time
 * (gguf_model.h) and so write the same bytes llm_ckpt_save does: the
 * "config" record of c (quant: the scheme of its quantized linears, or
 * LLM_Q_NONE); the start of a float tensor's record (f32, byte-shuffled), and
 * of a quantized linear's codes (rows x cols, f's scheme in attributes;
 * act_scale for w8a8), whose payloads follow through llm_writer_write. */
/* Reads a "config" record back into c (checked: llm_config_check). */
int llm_ckpt_parse_config(const llm_record *rec, llm_config *c, llm_error *err);
int llm_ckpt_write_config(llm_writer *w, const llm_config *c, int64_t n_params, llm_qscheme quant,
                          llm_error *err);
int llm_ckpt_begin_floats(llm_writer *w, const char *name, const llm_shape *shape, llm_error *err);
int llm_ckpt_begin_qcodes(llm_writer *w, const char *name, const llm_qformat *f, int rows, int cols,
                          float act_scale, llm_error *err);

/* FNV-1a fingerprint of n token ids. */
uint64_t llm_ckpt_hash_tokens(const int32_t *tokens, int64_t n);

#endif
