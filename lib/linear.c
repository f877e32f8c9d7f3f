/* linear — names and indices of a model's linears, and their products for
 * training (sgemm, dequantized blocks, LoRA) and inference (sgemv/sgemm,
 * integer kernels, row ranges inside a parallel region). */
#include "linear.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "lora.h"
#include "matvec.h"
#include "qmatmul.h"

static const char *const site_names[LLM_LIN_PER_LAYER] = {"attn.wq", "attn.wk", "attn.wv", "attn.wo",
                                                          "mlp.w1",  "mlp.w2",  "mlp.w3"};

int llm_linear_count(int n_layers) { return LLM_LIN_PER_LAYER * n_layers + 1; }

int llm_linear_index(int layer, int site) { return LLM_LIN_PER_LAYER * layer + site; }

const char *llm_linear_site_name(int site) { return site_names[site]; }

int llm_linear_find(const char *name, int n_layers)
{
    if (!strcmp(name, "cls")) return llm_linear_index(n_layers, 0);
    int layer, used = 0;
    if (sscanf(name, "layers.%d.%n", &layer, &used) != 1 || used == 0 || layer < 0 || layer >= n_layers)
        return -1;
    char want[32];
    snprintf(want, sizeof want, "layers.%d.", layer);
    if (strncmp(name, want, strlen(want)) != 0) return -1; /* "layers.+1." and such */
    for (int i = 0; i < LLM_LIN_PER_LAYER; i++)
        if (!strcmp(name + used, site_names[i])) return llm_linear_index(layer, i);
    return -1;
}

void llm_linear_name(int index, int n_layers, char *buf, size_t size)
{
    if (index == llm_linear_index(n_layers, 0)) snprintf(buf, size, "cls");
    else snprintf(buf, size, "layers.%d.%s", index / LLM_LIN_PER_LAYER, site_names[index % LLM_LIN_PER_LAYER]);
}

/* ---- training ---- */

void llm_linear_forward(const llm_linear *l, const float *x, int n, float *y, float beta,
                        float *qscratch, float *u)
{
    int out = l->out, in = l->in;
    if (!l->q) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, l->w, in, beta, y, out);
    } else {
        for (int r0 = 0; r0 < out; r0 += LLM_QROWS) {
            int rows = out - r0 < LLM_QROWS ? out - r0 : LLM_QROWS;
            llm_dequantize_rows(l->q, r0, r0 + rows, qscratch);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, in, 1.0f, x, in, qscratch, in, beta,
                        y + r0, out);
        }
    }
    if (l->lora_a) llm_lora_forward(l->lora_a, l->lora_b, l->rank, in, out, l->lora_scale, x, n, u, y);
}

void llm_linear_weight_grad(const llm_linear *l, const float *x, const float *dy, int n, float *gw)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l->out, l->in, n, 1.0f, dy, l->out, x, l->in, 1.0f,
                gw, l->in);
}

int llm_linear_lora_grad(const llm_linear *l, const float *x, const float *u, const float *dy, int n,
                         float *du, float *ga, float *gb)
{
    if (!l->lora_a) return 0;
    llm_lora_backward_weights(l->lora_b, l->rank, l->in, l->out, l->lora_scale, x, u, dy, n, du, ga, gb);
    return 1;
}

void llm_linear_input_grad(const llm_linear *l, const float *dy, int n, float *dx, float beta,
                           float *qscratch)
{
    int out = l->out, in = l->in;
    if (!l->q) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, l->w, in, beta, dx, in);
        return;
    }
    /* dx = sum over blocks of dy[:, block] . W[block, :] */
    for (int r0 = 0; r0 < out; r0 += LLM_QROWS) {
        int rows = out - r0 < LLM_QROWS ? out - r0 : LLM_QROWS;
        llm_dequantize_rows(l->q, r0, r0 + rows, qscratch);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, rows, 1.0f, dy + r0, out, qscratch, in,
                    r0 ? 1.0f : beta, dx, in);
    }
}

void llm_linear_lora_input_grad(const llm_linear *l, const float *du, int n, float *dx)
{
    if (l->lora_a) llm_lora_backward_input(l->lora_a, l->rank, l->in, du, n, dx);
}

/* ---- inference ---- */

int llm_linear_apply(const llm_linear *l, const float *x, int n, float *y, float beta, float *scratch,
                     llm_error *err)
{
    int out = l->out, in = l->in;
    if (l->q) {
        LLM_TRY(llm_qlinear_matmul(l->q, x, n, beta == 0 ? y : scratch, out, err));
        if (beta != 0)
            for (size_t i = 0; i < (size_t)n * out; i++) y[i] += scratch[i];
    } else if (n == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, l->w, in, x, 1, beta, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, l->w, in, beta, y, out);
    }
    if (l->lora_a) llm_lora_rows(l->lora_a, l->lora_b, l->rank, in, l->lora_scale, x, n, in, y, out, 0, out);
    return 0;
}

int llm_linear_quantize_input(const llm_linear *l, const float *x, int M, llm_qact *xq)
{
    if (!l->q || !llm_qact_room(xq, M, l->in)) return 0;
    llm_qact_quantize(xq, l->q, x, M);
    return 1;
}

/* The integer product of rows [r0, r1) into y: from xq when it suits l. */
static int qrows(const llm_linear *l, const float *x, const llm_qact *xq, int M, float *y, int ldy, int r0,
                 int r1)
{
    if (xq && xq->M == M && llm_qact_fits(xq, l->q)) {
        llm_qlinear_rows_q(l->q, xq, y, ldy, r0, r1);
        return 0;
    }
    return llm_qlinear_rows(l->q, x, M, y, ldy, r0, r1);
}

int llm_linear_rows(const llm_linear *l, const float *x, const llm_qact *xq, int M, float *y, int ldy,
                    int r0, int r1, float beta, float *scratch)
{
    int in = l->in;
    if (!l->q) {
        llm_matvec_rows(l->w, in, x, M, in, y, ldy, r0, r1, beta);
    } else if (beta == 0) {
        LLM_TRY(qrows(l, x, xq, M, y, ldy, r0, r1));
    } else {
        LLM_TRY(qrows(l, x, xq, M, scratch, ldy, r0, r1));
        for (int m = 0; m < M; m++)
            for (int r = r0; r < r1; r++) y[(size_t)m * ldy + r] += scratch[(size_t)m * ldy + r];
    }
    if (l->lora_a) llm_lora_rows(l->lora_a, l->lora_b, l->rank, in, l->lora_scale, x, M, in, y, ldy, r0, r1);
    return 0;
}
