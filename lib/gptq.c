/* gptq — Hessian accumulation and the GPTQ column-by-column solve. */
#include "gptq.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK through OpenBLAS (Fortran symbols; the trailing length is the
 * hidden length of the character argument). */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t len);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t len);

int llm_hessian_init(llm_hessian *h, int n, llm_error *err)
{
    memset(h, 0, sizeof *h);
    if (n < 1) return llm_error_set(err, LLM_ERR_ARG, "Hessian of width %d", n);
    h->sum = calloc((size_t)n * (size_t)n, sizeof *h->sum);
    if (!h->sum) return llm_error_set(err, LLM_ERR_NOMEM, "Hessian %dx%d: out of memory", n, n);
    h->n = n;
    return 0;
}

void llm_hessian_free(llm_hessian *h)
{
    if (!h) return;
    free(h->sum);
    memset(h, 0, sizeof *h);
}

int llm_hessian_add(llm_hessian *h, const float *x, int64_t rows, llm_error *err)
{
    if (rows < 0 || rows > LLM_HESSIAN_MAX_ROWS) return llm_error_set(err, LLM_ERR_ARG, "%lld rows", (long long)rows);
    if (rows == 0) return 0;
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, h->n, (int)rows, 1.0f, x, h->n, 1.0f, h->sum,
                h->n);
    h->count += rows;
    return 0;
}

void llm_hessian_scale(llm_hessian *h, const float *s)
{
    for (int i = 0; i < h->n; i++)
        for (int j = i; j < h->n; j++) h->sum[(size_t)i * h->n + j] *= s[i] * s[j];
}

int llm_hessian_energy(const llm_hessian *h, const float *d, int rows, double *energy, llm_error *err)
{
    int n = h->n;
    *energy = 0;
    if (h->count == 0) return 0;
    float *dh = malloc((size_t)rows * n * sizeof *dh);
    if (!dh) return llm_error_set(err, LLM_ERR_NOMEM, "output energy of %dx%d weights: out of memory", rows, n);
    cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, rows, n, 1.0f, h->sum, n, d, n, 0.0f, dh, n);
    double e = 0;
    for (size_t i = 0; i < (size_t)rows * n; i++) e += (double)dh[i] * d[i];
    free(dh);
    *energy = e / (double)h->count;
    return 0;
}

/* Columns by decreasing H_jj (ties by index); diag is qsort_r's argument. */
static int by_diag(const void *a, const void *b, void *diag)
{
    int i = *(const int *)a, j = *(const int *)b;
    double x = ((const double *)diag)[i], y = ((const double *)diag)[j];
    return x > y ? -1 : x < y ? 1 : i - j;
}

/* U with H⁻¹ = UᵀU into hinv [n, n] (row-major upper; lower zeroed), from
 * the dampened H in hd (destroyed). */
static int inverse_factor(double *hd, int n, float *hinv, llm_error *err)
{
    int info = 0;
    /* column-major 'L' on a symmetric row-major matrix = row-major upper */
    dpotrf_("L", &n, hd, &n, &info, 1);
    if (info == 0) dpotri_("L", &n, hd, &n, &info, 1);
    if (info == 0) dpotrf_("L", &n, hd, &n, &info, 1);
    if (info != 0)
        return llm_error_set(err, LLM_ERR_ARG,
                             "the Hessian is not positive definite (LAPACK info %d); raise --damp", info);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            hinv[(size_t)i * n + j] = j >= i ? (float)hd[(size_t)i * n + j] : 0.0f;
    return 0;
}

/* Sets row r's scale and zero of group g from the group's n values. */
static void group_params(llm_qlinear *q, int r, int g, const float *vals, int n)
{
    float lo = vals[0], hi = vals[0];
    for (int k = 1; k < n; k++) lo = fminf(lo, vals[k]), hi = fmaxf(hi, vals[k]);
    float scale;
    int zero;
    llm_qgroup_params(&q->f, lo, hi, &scale, &zero);
    q->scale[(size_t)r * q->groups + g] = scale;
    if (q->zero) q->zero[(size_t)r * q->groups + g] = (uint8_t)zero;
}

int llm_gptq(const float *w_in, int rows, int cols, const llm_hessian *h, const llm_qformat *f,
             const llm_gptq_opts *o, llm_qlinear *q, llm_error *err)
{
    if (h->n != cols)
        return llm_error_set(err, LLM_ERR_ARG, "Hessian of width %d for %d columns", h->n, cols);
    if (h->count == 0) return llm_error_set(err, LLM_ERR_ARG, "no activations for the Hessian");
    if (!(o->damp >= 0) || o->block < 1) return llm_error_set(err, LLM_ERR_ARG, "bad GPTQ options");
    LLM_TRY(llm_qlinear_alloc(q, f, rows, cols, err));
    size_t n = (size_t)cols;
    int *perm = malloc(n * sizeof *perm);
    double *hd = malloc(n * n * sizeof *hd), *diag = malloc(n * sizeof *diag);
    float *w = malloc((size_t)rows * n * sizeof *w), *hinv = malloc(n * n * sizeof *hinv);
    int B = o->block < cols ? o->block : cols;
    float *w1 = malloc((size_t)rows * B * sizeof *w1), *e1 = malloc((size_t)rows * B * sizeof *e1);
    int static_groups = f->scheme != LLM_Q_INT4 || o->act_order;
    int gs = cols / q->groups;
    /* [rows, gs]: a group's current weights, for groups fixed as they are reached */
    float *gv = static_groups ? NULL : malloc((size_t)rows * gs * sizeof *gv);
    int rc = 0;
    if (!perm || !hd || !diag || !w || !hinv || !w1 || !e1 || (!static_groups && !gv)) {
        rc = llm_error_set(err, LLM_ERR_NOMEM, "GPTQ on %dx%d: out of memory", rows, cols);
        goto done;
    }
    /* dead inputs: their weights are irrelevant, quantized as zeros */
    for (size_t j = 0; j < n; j++) {
        diag[j] = h->sum[j * n + j];
        perm[j] = (int)j;
    }
    for (int r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) w[(size_t)r * n + j] = diag[j] > 0 ? w_in[(size_t)r * n + j] : 0.0f;
    if (static_groups)
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < q->groups; g++) group_params(q, r, g, w + (size_t)r * n + (size_t)g * gs, gs);
    if (o->act_order) qsort_r(perm, n, sizeof *perm, by_diag, diag);
    /* H permuted, dead diagonals set to 1, then dampened */
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += diag[i] > 0 ? diag[i] : 1.0;
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            size_t a = (size_t)perm[i], b = (size_t)perm[j];
            if (a > b) { size_t t = a; a = b; b = t; }
            hd[i * n + j] = h->sum[a * n + b];
        }
    for (size_t i = 0; i < n; i++) {
        if (!(diag[perm[i]] > 0)) hd[i * n + i] = 1.0;
        hd[i * n + i] += o->damp * mean;
    }
    if ((rc = inverse_factor(hd, cols, hinv, err)) < 0) goto done;
    /* w in the visiting order */
    for (int r = 0; r < rows; r++) {
        float *wr = w + (size_t)r * n;
        for (size_t j = 0; j < n; j++) hd[j] = wr[perm[j]]; /* hd: a row's scratch now */
        for (size_t j = 0; j < n; j++) wr[j] = (float)hd[j];
    }
    for (int i1 = 0; i1 < cols; i1 += B) {
        int nb = cols - i1 < B ? cols - i1 : B;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            float *wr = w + (size_t)r * n, *a = w1 + (size_t)r * B, *e = e1 + (size_t)r * B;
            memcpy(a, wr + i1, (size_t)nb * sizeof *a);
            for (int i = 0; i < nb; i++) {
                int col = i1 + i, orig = perm[col];
                if (!static_groups && orig % gs == 0) { /* the group's current weights */
                    float *vals = gv + (size_t)r * gs;
                    for (int k = 0; k < gs; k++) {
                        if (col + k < i1 + nb) {
                            vals[k] = a[i + k];
                            continue;
                        }
                        float v = wr[col + k]; /* with this block's updates so far */
                        for (int p = 0; p < i; p++) v -= e[p] * hinv[(size_t)(i1 + p) * n + col + k];
                        vals[k] = v;
                    }
                    group_params(q, r, orig / gs, vals, gs);
                }
                int g = orig / gs, zero = llm_qlinear_zero(q, r, g);
                float scale = q->scale[(size_t)r * q->groups + g];
                int code = llm_qcode(&q->f, a[i], scale, zero);
                llm_qlinear_set_code(q, r, orig, code);
                const float *u = hinv + (size_t)col * n + i1;
                float err_i = (a[i] - llm_qvalue(code, scale, zero)) / u[i];
                e[i] = err_i;
#pragma omp simd
                for (int j = i + 1; j < nb; j++) a[j] -= err_i * u[j];
            }
        }
        int rest = cols - i1 - nb;
        if (rest > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, rest, nb, -1.0f, e1, B,
                        hinv + (size_t)i1 * n + i1 + nb, (int)n, 1.0f, w + i1 + nb, (int)n);
    }
done:
    free(perm), free(hd), free(diag), free(w), free(hinv), free(w1), free(e1), free(gv);
    if (rc < 0) llm_qlinear_free(q);
    return rc;
}
