/* lora — forward, backward and merge of a low-rank update on a linear layer,
 * through cblas_sgemm. */
#include "lora.h"

#include <cblas.h>

void llm_lora_forward(const float *a, const float *b, int rank, int in, int out, float scale,
                      const float *x, int n, float *u, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rank, in, 1.0f, x, in, a, in, 0.0f, u, rank);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, rank, scale, u, rank, b, rank, 1.0f, y, out);
}

void llm_lora_backward_weights(const float *b, int rank, int in, int out, float scale,
                               const float *x, const float *u, const float *dy, int n, float *du,
                               float *ga, float *gb)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, rank, out, scale, dy, out, b, rank, 0.0f, du, rank);
    if (gb)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, rank, n, scale, dy, out, u, rank, 1.0f, gb, rank);
    if (ga)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rank, in, n, 1.0f, du, rank, x, in, 1.0f, ga, in);
}

void llm_lora_backward_input(const float *a, int rank, int in, const float *du, int n, float *dx)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, rank, 1.0f, du, rank, a, in, 1.0f, dx, in);
}

void llm_lora_rows(const float *a, const float *b, int rank, int in, float scale, const float *x,
                   int n, int ldx, float *y, int ldy, int r0, int r1)
{
    enum { BLOCK = 16 };
    float u[BLOCK * LLM_LORA_MAX_RANK];
    for (int i0 = 0; i0 < n && r0 < r1; i0 += BLOCK) {
        int m = n - i0 < BLOCK ? n - i0 : BLOCK;
        for (int i = 0; i < m; i++) {
            const float *xi = x + (size_t)(i0 + i) * ldx;
            for (int r = 0; r < rank; r++) {
                const float *ar = a + (size_t)r * in;
                float sum = 0;
#pragma omp simd reduction(+ : sum)
                for (int k = 0; k < in; k++) sum += xi[k] * ar[k];
                u[i * rank + r] = scale * sum;
            }
        }
        for (int i = 0; i < m; i++) {
            float *yi = y + (size_t)(i0 + i) * ldy;
            const float *ui = u + i * rank;
            for (int j = r0; j < r1; j++) {
                const float *bj = b + (size_t)j * rank;
                float sum = 0;
#pragma omp simd reduction(+ : sum)
                for (int r = 0; r < rank; r++) sum += ui[r] * bj[r];
                yi[j] += sum;
            }
        }
    }
}

void llm_lora_merge(const float *a, const float *b, int rank, int in, int out, float scale, float *w)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, in, rank, scale, b, rank, a, in, 1.0f, w, in);
}
