/* Unit tests for lib/gptq: the streamed Hessian against XᵀX in double; GPTQ
 * against an independent numpy transcription of the algorithm (plain column
 * loop in float64, no lazy blocks; SKIP without numpy); GPTQ's output error
 * below RTN's on correlated activations, measured directly in double; dead
 * inputs; a singular Hessian refused; the output energy out of memory an
 * error, not a NaN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gptq.h"
#include "nomem.h"

/* Correlated activations: x = z A with A a random mixing matrix, plus a few
 * channels much larger than the rest (as LLM activations have). */
static float *activations(int n, int cols, unsigned long long seed)
{
    double *a = malloc((size_t)cols * cols * sizeof *a), *z = malloc((size_t)cols * sizeof *z);
    for (int i = 0; i < cols * cols; i++) a[i] = check_normal(&seed) / sqrt(cols);
    for (int i = 0; i < cols; i++) a[i * cols + i] += 1.0;
    float *x = malloc((size_t)n * cols * sizeof *x);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < cols; i++) z[i] = check_normal(&seed);
        for (int j = 0; j < cols; j++) {
            double s = 0;
            for (int i = 0; i < cols; i++) s += z[i] * a[i * cols + j];
            x[(size_t)t * cols + j] = (float)(s * (j % 17 == 3 ? 10 : 1));
        }
    }
    free(a), free(z);
    return x;
}

static float *weights(int rows, int cols, unsigned long long seed)
{
    float *w = malloc((size_t)rows * cols * sizeof *w);
    for (int i = 0; i < rows * cols; i++) w[i] = (float)(0.05 * check_normal(&seed));
    return w;
}

static llm_hessian hessian_of(const float *x, int n, int cols, llm_error *err)
{
    llm_hessian h;
    llm_hessian_init(&h, cols, err);
    for (int at = 0; at < n; at += 37) llm_hessian_add(&h, x + (size_t)at * cols, n - at < 37 ? n - at : 37, err);
    return h;
}

/* Mean squared output error sum_t ||(W - Ŵ) x_t||^2 / n, in double. */
static double output_error(const float *w, const llm_qlinear *q, const float *x, int n)
{
    int rows = q->rows, cols = q->cols;
    double *wh = malloc((size_t)rows * cols * sizeof *wh), e = 0;
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < cols; k++) {
            int g = k / (cols / q->groups);
            wh[(size_t)r * cols + k] = w[(size_t)r * cols + k] -
                                       (double)q->scale[(size_t)r * q->groups + g] *
                                           (llm_qlinear_code(q, r, k) - llm_qlinear_zero(q, r, g));
        }
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int k = 0; k < cols; k++) s += wh[(size_t)r * cols + k] * x[(size_t)t * cols + k];
            e += s * s;
        }
    free(wh);
    return e / n;
}

static void test_hessian_streamed(void)
{
    llm_error err = {0};
    enum { N = 150, C = 24 };
    float *x = activations(N, C, 1);
    llm_hessian h = hessian_of(x, N, C, &err);
    CHECK(h.count == N);
    double worst = 0;
    for (int i = 0; i < C; i++)
        for (int j = i; j < C; j++) {
            double s = 0;
            for (int t = 0; t < N; t++) s += (double)x[t * C + i] * x[t * C + j];
            worst = fmax(worst, fabs(h.sum[i * C + j] - s) / (fabs(s) + 1));
        }
    CHECK_MSG(worst < 1e-5, "XᵀX differs by %.3g", worst);
    /* energy of D on the activations, against the direct sum */
    float d[2 * C];
    unsigned long long seed = 4;
    for (int i = 0; i < 2 * C; i++) d[i] = (float)check_normal(&seed);
    double direct = 0;
    for (int t = 0; t < N; t++)
        for (int r = 0; r < 2; r++) {
            double s = 0;
            for (int k = 0; k < C; k++) s += (double)d[r * C + k] * x[t * C + k];
            direct += s * s;
        }
    double energy;
    CHECK_OK(llm_hessian_energy(&h, d, 2, &energy, &err), err);
    CHECK_NEAR(energy / (direct / N), 1.0, 1e-4);
    nomem_fail(1); /* its scratch */
    int rc = llm_hessian_energy(&h, d, 2, &energy, &err);
    nomem_fail(0);
    CHECK_MSG(rc == LLM_ERR_NOMEM && energy == 0 && strstr(err.msg, "out of memory"), "%d %g %s", rc, energy, err.msg);
    llm_hessian_free(&h);
    free(x);
}

static void check_beats_rtn(const llm_qformat *f, int act_order)
{
    llm_error err = {0};
    enum { R = 48, C = 128, N = 512 };
    float *x = activations(N, C, 2), *w = weights(R, C, 3);
    llm_hessian h = hessian_of(x, N, C, &err);
    llm_qlinear g, r;
    llm_gptq_opts o = {.damp = 0.01, .block = 32, .act_order = act_order};
    CHECK_OK(llm_gptq(w, R, C, &h, f, &o, &g, &err), err);
    CHECK_OK(llm_quantize_rtn(w, R, C, f, &r, &err), err);
    double eg = output_error(w, &g, x, N), er = output_error(w, &r, x, N);
    CHECK_MSG(eg < 0.7 * er, "%s%s: GPTQ output error %.4g, RTN %.4g", llm_qscheme_name(f->scheme),
              act_order ? " act-order" : "", eg, er);
    llm_qlinear_free(&g), llm_qlinear_free(&r), llm_hessian_free(&h);
    free(x), free(w);
}

static void test_gptq_beats_rtn(void)
{
    check_beats_rtn(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 32, .sym = 1}, 0);
    check_beats_rtn(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 64, .sym = 0}, 0);
    check_beats_rtn(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 32, .sym = 0}, 1);
    check_beats_rtn(&(llm_qformat){.scheme = LLM_Q_INT8}, 0);
}

/* An input that is always zero: its weights become 0, the rest is solved. */
static void test_dead_inputs_and_singular(void)
{
    llm_error err = {0};
    enum { R = 8, C = 64, N = 200 };
    float *x = activations(N, C, 5), *w = weights(R, C, 6);
    for (int t = 0; t < N; t++) x[t * C + 7] = 0;
    llm_hessian h = hessian_of(x, N, C, &err);
    llm_qlinear q;
    llm_gptq_opts o = {.damp = 0.01, .block = 16};
    CHECK_OK(llm_gptq(w, R, C, &h, &(llm_qformat){.scheme = LLM_Q_INT4, .group = 32, .sym = 1}, &o, &q, &err), err);
    for (int r = 0; r < R; r++) CHECK(llm_qlinear_code(&q, r, 7) == 8);
    llm_qlinear_free(&q);
    llm_hessian_free(&h);
    /* 10 samples of 64 inputs and no dampening: H is singular */
    h = hessian_of(x, 10, C, &err);
    o.damp = 0;
    CHECK(llm_gptq(w, R, C, &h, &(llm_qformat){.scheme = LLM_Q_INT8}, &o, &q, &err) == LLM_ERR_ARG);
    CHECK_MSG(strstr(err.msg, "not positive definite") != NULL, "%s", err.msg);
    llm_hessian_free(&h);
    free(x), free(w);
}

/* ---- against numpy ---- */

static const char *numpy_gptq =
    "import sys, numpy as np\n"
    "d = sys.argv[1]; R, C, N, G, sym, act = map(int, sys.argv[2:8])\n"
    "W = np.fromfile(d + '/w.f32', '<f4').reshape(R, C).astype(np.float64)\n"
    "X = np.fromfile(d + '/x.f32', '<f4').reshape(N, C).astype(np.float64)\n"
    "def grid(v):\n"
    "    lo, hi = min(v.min(), 0.0), max(v.max(), 0.0)\n"
    "    if G == 0: s = max(-lo, hi) / 127; return (s if s > 0 else 1.0), 0, -127, 127\n"
    "    if sym: s = max(-lo, hi) / 7.5; return (s if s > 0 else 1.0), 8, 0, 15\n"
    "    s = (hi - lo) / 15\n"
    "    if not s > 0: s = 1.0\n"
    "    return s, int(np.clip(np.round(-lo / s), 0, 15)), 0, 15\n"
    "H = X.T @ X\n"
    "dead = np.diag(H) == 0\n"
    "H[dead, dead] = 1; W[:, dead] = 0\n"
    "gs = C if G == 0 else G\n"
    "params = {}\n"
    "static = act or G == 0\n"
    "if static:\n"
    "    for r in range(R):\n"
    "        for g in range(C // gs): params[r, g] = grid(W[r, g*gs:(g+1)*gs])\n"
    "perm = np.argsort(-np.diag(H), kind='stable') if act else np.arange(C)\n"
    "H = H[perm][:, perm].copy()\n"
    "H += 0.01 * np.mean(np.diag(H)) * np.eye(C)\n"
    "U = np.linalg.cholesky(np.linalg.inv(H)).T\n"
    "Wp = W[:, perm].copy()\n"
    "Q = np.zeros((R, C))\n"
    "for j in range(C):\n"
    "    o = perm[j]\n"
    "    if not static and o % gs == 0:\n"
    "        for r in range(R): params[r, o // gs] = grid(Wp[r, j:j+gs])\n"
    "    for r in range(R):\n"
    "        s, z, lo, hi = params[r, o // gs]\n"
    "        Q[r, o] = s * (np.clip(np.round(Wp[r, j] / s) + z, lo, hi) - z)\n"
    "    e = (Wp[:, j] - Q[:, o]) / U[j, j]\n"
    "    Wp[:, j+1:] -= np.outer(e, U[j, j+1:])\n"
    "Q.astype('<f8').tofile(d + '/q.f64')\n";

static void write_f32(const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(x, sizeof *x, n, f);
    fclose(f);
}

static void compare_numpy(const llm_qformat *f, int act_order, int block)
{
    llm_error err = {0};
    enum { R = 12, C = 96, N = 300 };
    const char *dir = check_tmpdir();
    char path[512], cmd[1024];
    float *x = activations(N, C, 8), *w = weights(R, C, 9);
    snprintf(path, sizeof path, "%s/w.f32", dir), write_f32(path, w, R * C);
    snprintf(path, sizeof path, "%s/x.f32", dir), write_f32(path, x, N * C);
    snprintf(path, sizeof path, "%s/gptq.py", dir);
    FILE *py = fopen(path, "w");
    fputs(numpy_gptq, py);
    fclose(py);
    int G = f->scheme == LLM_Q_INT4 ? f->group : 0;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %d %d %d %d %d %d", path, dir, R, C, N, G,
             f->sym, act_order);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
    llm_hessian h = hessian_of(x, N, C, &err);
    llm_qlinear q;
    llm_gptq_opts o = {.damp = 0.01, .block = block, .act_order = act_order};
    CHECK_OK(llm_gptq(w, R, C, &h, f, &o, &q, &err), err);
    double *ref = malloc(R * C * sizeof *ref);
    snprintf(path, sizeof path, "%s/q.f64", dir);
    FILE *in = fopen(path, "rb");
    CHECK(in && fread(ref, sizeof *ref, R * C, in) == R * C);
    if (in) fclose(in);
    int differ = 0;
    double worst = 0;
    for (int r = 0; r < R; r++)
        for (int k = 0; k < C; k++) {
            int g = k / (C / q.groups);
            double s = q.scale[r * q.groups + g], v = s * (llm_qlinear_code(&q, r, k) - llm_qlinear_zero(&q, r, g));
            double e = fabs(v - ref[r * C + k]);
            worst = fmax(worst, e / s);
            differ += e > 1e-3 * s;
        }
    /* float32 against float64: a value may land on the other side of a
     * rounding boundary now and then; not more than 1 in 200 */
    CHECK_MSG(differ <= R * C / 200, "%d of %d weights differ from numpy (worst %.3g steps)", differ,
              R * C, worst);
    free(ref), free(x), free(w);
    llm_qlinear_free(&q), llm_hessian_free(&h);
}

static void test_against_numpy(void)
{
    if (!check_have_numpy()) {
        check_skip("needs /usr/bin/python3 with numpy");
        return;
    }
    compare_numpy(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 32, .sym = 1}, 0, 32);
    compare_numpy(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 32, .sym = 0}, 0, 24); /* groups across blocks */
    compare_numpy(&(llm_qformat){.scheme = LLM_Q_INT4, .group = 32, .sym = 0}, 1, 16);
    compare_numpy(&(llm_qformat){.scheme = LLM_Q_INT8}, 0, 40);
}

int main(void)
{
    RUN(test_hessian_streamed);
    RUN(test_gptq_beats_rtn);
    RUN(test_dead_inputs_and_singular);
    RUN(test_against_numpy);
    return check_done();
}
