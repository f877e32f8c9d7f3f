/* linear — a linear layer as one value, and every product the model takes
 * with one.
 *
 * A linear layer maps rows x [n, in] to y [n, out] = x W^T, with W [out, in]
 * (as PyTorch's Linear and llama2.c store it), plus, when a LoRA adapter is
 * attached (adapter.h, lora.h), s (x A^T) B^T.  W is kept as floats (a view
 * of the model's arena) or as integer codes and scales (quant.h).  This is
 * the one module that looks at how W is kept: the training forward pass
 * (model.c), its backward pass (grad.c), the decode step and the batched
 * pass (infer.c) all go through the functions below, so a new weight format
 * or a new way of splitting a layer is written here, once.
 *
 * A model of L layers has 7L + 1 linears, indexed in checkpoint order:
 * llm_linear_index(l, LLM_LIN_WQ .. LLM_LIN_W3) for layer l's seven, then
 * the classifier "cls" at llm_linear_index(L, 0).
 *
 *     const llm_linear *wq = &m->lin[llm_linear_index(l, LLM_LIN_WQ)];
 *     llm_linear_forward(wq, xn, N, q, 0, a->qscratch, NULL);      // training
 *     LLM_TRY(llm_linear_apply(wq, xn, n, q, 0, NULL, &err));            // inference
 *     #pragma omp parallel    // the decode step: each thread its output rows
 *     {
 *         #pragma omp single
 *         have_xq = llm_linear_quantize_input(wq, xn, M, &xq);    // once, for all threads
 *         bad |= llm_linear_rows(wq, xn, have_xq ? &xq : NULL, M, q, HE, r0, r1, 0, NULL) < 0;
 *     }
 *
 * Letters: n (or M) rows of input, out and in the layer's widths, R the LoRA
 * rank.  Rows are contiguous unless a stride (ldy) is given.
 */
#ifndef LLM_LINEAR_H
#define LLM_LINEAR_H

#include <stddef.h>

#include "err.h"
#include "qmatmul.h"
#include "quant.h"

/* The linears of a layer, in checkpoint order. */
enum llm_linear_site { LLM_LIN_WQ, LLM_LIN_WK, LLM_LIN_WV, LLM_LIN_WO, LLM_LIN_W1, LLM_LIN_W2,
                       LLM_LIN_W3, LLM_LIN_PER_LAYER };

typedef struct llm_linear {
    int out, in;
    float *w;            /* [out, in] float weights, a view of the model's arena;
                          * never read when q is set */
    llm_qlinear *q;      /* integer weights (owned by the model), or NULL */
    /* LoRA, borrowed from the attached adapter; lora_a NULL: none */
    const float *lora_a; /* [R, in] */
    const float *lora_b; /* [out, R] */
    int rank;            /* R */
    float lora_scale;    /* alpha / R */
} llm_linear;

/* Output rows of a quantized linear that the training passes dequantize at
 * once (the scratch they need is LLM_QROWS * in floats). */
#define LLM_QROWS 128

/* 7 * n_layers + 1: the linears of a model. */
int llm_linear_count(int n_layers);
/* The index of layer's site (layer == n_layers, site 0: the classifier). */
int llm_linear_index(int layer, int site);
/* The index of the linear named name ("layers.3.mlp.w2", "cls"), or -1. */
int llm_linear_find(const char *name, int n_layers);
/* The name of linear index, into buf. */
void llm_linear_name(int index, int n_layers, char *buf, size_t size);
/* A site's name within its layer: "attn.wq" ... "mlp.w3". */
const char *llm_linear_site_name(int site);

/* ---- training (model.c, grad.c) ---- */

/* y [n, out] = x W^T + beta y, plus the LoRA update, through sgemm.  A
 * quantized W is dequantized LLM_QROWS rows at a time into qscratch (QLoRA:
 * the base stays integer).  With LoRA, u [n, R] gets x A^T for the backward
 * pass. */
void llm_linear_forward(const llm_linear *l, const float *x, int n, float *y, float beta,
                        float *qscratch, float *u);
/* gw [out, in] += dy^T x: the weight gradient of a float W. */
void llm_linear_weight_grad(const llm_linear *l, const float *x, const float *dy, int n, float *gw);
/* LoRA's weight half of the backward step, given the forward pass's u:
 * du [n, R] = s dy B, ga [R, in] += du^T x, gb [out, R] += s dy^T u (ga and
 * gb NULL: frozen factors, du only).  Returns 0 without LoRA (nothing done),
 * else 1. */
int llm_linear_lora_grad(const llm_linear *l, const float *x, const float *u, const float *dy, int n,
                         float *du, float *ga, float *gb);
/* dx [n, in] = dy W + beta dx (a quantized W dequantized as in the forward). */
void llm_linear_input_grad(const llm_linear *l, const float *dy, int n, float *dx, float beta,
                           float *qscratch);
/* dx [n, in] += du A: LoRA's share of the input gradient (du from
 * llm_linear_lora_grad; nothing without LoRA). */
void llm_linear_lora_input_grad(const llm_linear *l, const float *du, int n, float *dx);

/* ---- inference (infer.c) ---- */

/* y [n, out] = x W^T + beta y, plus LoRA: sgemv for one row, sgemm for more,
 * the integer kernels (qmatmul.h) for a quantized W, which overwrite, so
 * beta = 1 goes through scratch [n, out] (unused otherwise).  0, or
 * LLM_ERR_NOMEM from the integer kernels (llm_qlinear_matmul), with err
 * (may be NULL) saying so. */
int llm_linear_apply(const llm_linear *l, const float *x, int n, float *y, float beta, float *scratch,
                     llm_error *err);
/* Output rows [r0, r1) of the same for M rows, y with row stride ldy, beta 0
 * or 1 (1: scratch's same rows take the integer kernels' result first):
 * called by each thread of a parallel region for its own rows, it starts no
 * threads itself (matvec.h, qmatmul.h).  A quantized W reads x as xq holds
 * it when xq (may be NULL) was quantized from these M rows of x for a
 * weight of its kind (llm_linear_quantize_input), else quantizes x itself.
 * 0, or LLM_ERR_NOMEM without a message (llm_qlinear_rows, rows wider than
 * 32768 values and no xq for them): the region's caller says what failed. */
int llm_linear_rows(const llm_linear *l, const float *x, const llm_qact *xq, int M, float *y, int ldy,
                    int r0, int r1, float beta, float *scratch);
/* For a quantized l, x [M, in] quantized into xq (reserved for at least
 * M rows of that width) once for every thread's llm_linear_rows of l and of
 * the linears of its kind reading the same x: 1; else (a float l, no
 * room) 0, nothing done.  Single-threaded. */
int llm_linear_quantize_input(const llm_linear *l, const float *x, int M, llm_qact *xq);

#endif
