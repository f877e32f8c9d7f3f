/* qmodel — quantizing a whole model: which linears it has and which input
 * each reads, their Hessians from a stream of activations, SmoothQuant from a
 * calibration table, the per-linear RTN / GPTQ / w8a8 loop with its error
 * measurements, and the float model a quantized one stands for
 * (llm-quant(1)).
 *
 * A model of L layers has 7L + 1 linears (linear.h: wq, wk, wv, wo,
 * w1, w2, w3 per layer, then cls) reading 4L + 1 inputs, named as
 * llm-gen --dump-acts names its records: per layer attn.wq.in (read by wq,
 * wk, wv), attn.wo.in (wo), mlp.w1.in (w1, w3), mlp.w2.in (w2); then cls.in.
 * The quantized weights go into m->lin[].q; the model's float weights are left
 * as they are (smoothed when smoothing is asked for).
 *
 *     llm_qmodel q;
 *     LLM_TRY(llm_qmodel_init(&q, &m, "m.llmt", &opts, &err));     // then llm_qmodel_free
 *     LLM_TRY(llm_qmodel_check_format(&q, &err));
 *     LLM_TRY(llm_qmodel_calibrate(&q, &table, &err));            // w8a8 or smoothing only
 *     LLM_TRY(llm_qmodel_hessians(&q, reader, "acts.llmt", &err)); // GPTQ or the report
 *     LLM_TRY(llm_qmodel_quantize(&q, NULL, NULL, &err));
 */
#ifndef LLM_QMODEL_H
#define LLM_QMODEL_H

#include "calib_table.h"
#include "err.h"
#include "gptq.h"
#include "model.h"
#include "quant.h"
#include "stream.h"

#define LLM_QMODEL_INPUTS_PER_LAYER 4

typedef struct llm_qmodel_opts {
    llm_qformat f;
    int gptq;                 /* 1: GPTQ (needs Hessians), 0: round to nearest */
    llm_gptq_opts gptq_opts;
    float smooth;             /* SmoothQuant's alpha in (0, 1); 0: none */
    const char *calib_method; /* w8a8: the table's method; NULL: entropy, else the first */
    const char *const *skip;  /* [n_skip] fnmatch(3) patterns of linears left float */
    int n_skip;
    int cls;                  /* quantize the classifier too */
} llm_qmodel_opts;

/* One linear, and what quantizing it measured (NAN when not measured). */
typedef struct llm_qmodel_linear {
    char name[64];       /* "layers.3.mlp.w2", "cls" */
    float *w;            /* [rows, cols], a view of the model's arena */
    int rows, cols;
    int input;           /* index of the input it reads */
    int quantize;        /* 0: skipped (left float) */
    double w_sqnr;       /* 10 log10(|W|^2 / |W - Ŵ|^2) */
    double out_sqnr;     /* the same of W x over the activations (needs Hessians) */
    double rtn_out_sqnr; /* RTN's out_sqnr, beside GPTQ's */
} llm_qmodel_linear;

typedef struct llm_qmodel {
    llm_model *m;            /* borrowed */
    const char *model_label; /* borrowed, for messages */
    llm_qmodel_opts o;
    int n_lin, n_in;
    llm_qmodel_linear *lin;  /* [n_lin], in the model's order (linear.h) */
    char (*in_name)[48];     /* [n_in] */
    int *in_width;           /* [n_in] */
    llm_hessian *h;          /* [n_in]; h[k].sum is NULL for an input no quantized linear reads */
    const llm_calib_table *table; /* borrowed from llm_qmodel_calibrate */
    float *smooth_s;         /* [L, 2, D]: the smoothing scales, or NULL */
    int todo;                /* linears to quantize */
} llm_qmodel;

/* Describes m's linears and inputs; a linear is quantized unless it is the
 * classifier without opts->cls or it matches a skip pattern.  m, model_label
 * and the strings of opts are borrowed for q's lifetime. */
int llm_qmodel_init(llm_qmodel *q, llm_model *m, const char *model_label, const llm_qmodel_opts *opts,
                    llm_error *err);
/* Frees what q allocated (not the model, nor its quantized weights); q may be NULL. */
void llm_qmodel_free(llm_qmodel *q);

/* Checks the format against every quantized linear's width before any work:
 * LLM_ERR_ARG naming the first linear that does not fit. */
int llm_qmodel_check_format(const llm_qmodel *q, llm_error *err);

/* Checks the table has what the options need (the absmax of each smoothed
 * input, of the model's width; the scale of each input a quantized w8a8
 * linear reads) and smooths the model when opts.smooth is set.  The table is
 * borrowed until llm_qmodel_quantize. */
int llm_qmodel_calibrate(llm_qmodel *q, const llm_calib_table *table, llm_error *err);

/* Accumulates, from every tensor record of r (llm-gen --dump-acts; label
 * names it in messages), the Hessian of each input a quantized linear reads;
 * every record must be f32 [tokens, width] and named for an input of the
 * model, and each such input needs at least one.  A smoothed model's inputs
 * are x / s: call it after llm_qmodel_calibrate. */
int llm_qmodel_hessians(llm_qmodel *q, llm_reader *r, const char *label, llm_error *err);

/* Called before each linear is quantized: done of todo finished. */
typedef void (*llm_qmodel_progress)(int done, int todo, const char *name, void *ctx);

/* Quantizes every linear marked so into its q->m->lin[].q (allocated here;
 * the linears left float keep NULL) by RTN or GPTQ, w8a8's activation step
 * from the table, and fills each linear's measurements; frees the Hessians
 * when done.  progress may be NULL.  On error the linears done so far stay
 * quantized (llm_model_free frees them). */
int llm_qmodel_quantize(llm_qmodel *q, llm_qmodel_progress progress, void *ctx, llm_error *err);

/* *out = the float model a quantized m stands for: its float tensors copied,
 * each quantized linear dequantized.  A quantized tied classifier needs a
 * classifier of its own, so out is then untied.  out takes m's tokenizer
 * (m is left without one); both are freed with llm_model_free. */
int llm_qmodel_dequantize(llm_model *m, llm_model *out, llm_error *err);

#endif
