/* Unit tests for lib/optim.
 *
 * Each optimizer is checked against values computed independently of
 * lib/optim.c: always against a double-precision reference written here from
 * the textbook formulas (bias-corrected m^ and v^ as fractions, decoupled
 * decay as a factor), and, when /usr/bin/python3 can import torch, against
 * torch.optim.SGD(momentum), Adam(weight_decay = L2) and AdamW, and a Lion
 * written in torch from the paper's rule (torch 1.13 has no Lion).  Both
 * comparisons run three steps with a different gradient and learning rate
 * each step, over spans with and without decay.
 *
 * Dimension letters: N parameters, S spans. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "optim.h"

#ifndef PYTHON
#define PYTHON "/usr/bin/python3" /* Debian's, where python3-torch installs */
#endif
enum { STEPS = 3 };

/* A small arena: spans of odd sizes, decayed and not, covering [0, 40). */
static const llm_param_span small_spans[] = {{0, 7, 1}, {7, 5, 0}, {12, 19, 1}, {31, 9, 0}};
enum { SMALL_N = 40, SMALL_S = 4 };
static const float step_lr[STEPS] = {0.01f, 0.02f, 0.005f};

static void fill_normal(float *x, int64_t n, double scale, unsigned long long *rng)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * check_normal(rng));
}

static llm_optim_config test_config(llm_optim_kind kind)
{
    llm_optim_config c;
    llm_optim_defaults(&c, kind);
    c.weight_decay = 0.1f;
    if (kind == LLM_OPTIM_SGD) c.beta1 = 0.9f;
    return c;
}

/* params0 [N] and grads [STEPS][N], drawn from a fixed seed.  The gradient
 * scale changes from step to step so that m and v see different magnitudes,
 * and drops 15-fold at the second step, so that Lion's sign(b1 m + (1-b1) g)
 * often differs from sign(g). */
static void make_problem(float *params0, float *grads, int64_t n, unsigned long long seed)
{
    static const double scale[STEPS] = {0.3, 0.02, 0.1};
    fill_normal(params0, n, 1.0, &seed);
    for (int s = 0; s < STEPS; s++) fill_normal(grads + s * n, n, scale[s], &seed);
}

/* Runs STEPS steps of the library optimizer; grad_scale 0.5 each step. */
static void run_lib(const llm_optim_config *cfg, float *params, const float *params0,
                    const float *grads, int64_t n, const llm_param_span *spans, int n_spans,
                    llm_optim *o)
{
    llm_error err = {0};
    memcpy(params, params0, (size_t)n * sizeof *params);
    CHECK_OK(llm_optim_init(o, cfg, n, &err), err);
    for (int s = 0; s < STEPS; s++)
        llm_optim_step(o, params, grads + s * n, spans, n_spans, step_lr[s], 0.5f);
}

/* ---- the double-precision reference, from the formulas ---- */

static void reference(const llm_optim_config *c, double *p, const float *grads, int64_t n,
                      const llm_param_span *spans, int n_spans, double *m, double *v)
{
    double b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    for (int64_t i = 0; i < n; i++) m[i] = v[i] = 0;
    for (int s = 0; s < STEPS; s++) {
        double lr = step_lr[s], t = s + 1;
        for (int j = 0; j < n_spans; j++) {
            double wd = spans[j].decay ? c->weight_decay : 0;
            for (int64_t i = spans[j].offset; i < spans[j].offset + spans[j].count; i++) {
                double g = (double)grads[s * n + i] * 0.5;
                switch (c->kind) {
                case LLM_OPTIM_SGD:
                    g += wd * p[i];
                    m[i] = b1 * m[i] + g;
                    p[i] -= lr * m[i];
                    break;
                case LLM_OPTIM_ADAM:
                case LLM_OPTIM_ADAMW: {
                    if (c->kind == LLM_OPTIM_ADAM) g += wd * p[i];
                    else p[i] *= 1 - lr * wd;
                    m[i] = b1 * m[i] + (1 - b1) * g;
                    v[i] = b2 * v[i] + (1 - b2) * g * g;
                    double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
                    p[i] -= lr * mh / (sqrt(vh) + eps);
                    break;
                }
                case LLM_OPTIM_LION: {
                    double cc = b1 * m[i] + (1 - b1) * g;
                    p[i] -= lr * ((cc > 0) - (cc < 0)) + lr * wd * p[i];
                    m[i] = b2 * m[i] + (1 - b2) * g;
                    break;
                }
                }
            }
        }
    }
}

/* Largest |a - b| / (|b| + floor) over n values. */
static double max_rel(const float *a, const double *b, int64_t n, double floor)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]) / (fabs(b[i]) + floor);
        if (!(d <= worst)) worst = d; /* NaN wins */
    }
    return worst;
}

static double max_rel_norm(const float *a, const double *b, int64_t n);

static void check_against_reference(llm_optim_kind kind)
{
    llm_optim_config cfg = test_config(kind);
    float p0[SMALL_N], grads[STEPS * SMALL_N], p[SMALL_N];
    make_problem(p0, grads, SMALL_N, 1000 + kind);
    llm_optim o;
    run_lib(&cfg, p, p0, grads, SMALL_N, small_spans, SMALL_S, &o);
    double rp[SMALL_N], rm[SMALL_N], rv[SMALL_N];
    for (int i = 0; i < SMALL_N; i++) rp[i] = p0[i];
    reference(&cfg, rp, grads, SMALL_N, small_spans, SMALL_S, rm, rv);
    /* float arithmetic against double: a few float ulps per step */
    double dp = max_rel(p, rp, SMALL_N, 1e-3);
    CHECK_MSG(dp < 1e-6, "%s params: max relative difference %.3g", llm_optim_name(kind), dp);
    if (o.m) {
        double dm = max_rel_norm(o.m, rm, SMALL_N);
        CHECK_MSG(dm < 1e-6, "%s m: max relative difference %.3g", llm_optim_name(kind), dm);
    }
    if (o.v) {
        double dv = max_rel_norm(o.v, rv, SMALL_N);
        CHECK_MSG(dv < 1e-6, "%s v: max relative difference %.3g", llm_optim_name(kind), dv);
    }
    /* and the step really moved every parameter */
    int moved = 1;
    for (int i = 0; i < SMALL_N; i++) moved &= p[i] != p0[i];
    CHECK(moved);
    llm_optim_free(&o);
}

static void test_reference_sgd(void) { check_against_reference(LLM_OPTIM_SGD); }
static void test_reference_adam(void) { check_against_reference(LLM_OPTIM_ADAM); }
static void test_reference_adamw(void) { check_against_reference(LLM_OPTIM_ADAMW); }
static void test_reference_lion(void) { check_against_reference(LLM_OPTIM_LION); }

/* ---- PyTorch ---- */

static const char torch_script[] =
    "import sys\n"
    "try:\n"
    "    import torch\n"
    "except ImportError:\n"
    "    sys.exit(3)\n"
    "torch.set_num_threads(1)\n"
    "class Lion(torch.optim.Optimizer):\n"
    "    # Chen et al. 2023, 'Symbolic Discovery of Optimization Algorithms', Program 1\n"
    "    def __init__(self, params, lr, betas, weight_decay):\n"
    "        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))\n"
    "    @torch.no_grad()\n"
    "    def step(self):\n"
    "        for g in self.param_groups:\n"
    "            beta1, beta2 = g['betas']\n"
    "            for p in g['params']:\n"
    "                st = self.state[p]\n"
    "                if 'exp_avg' not in st: st['exp_avg'] = torch.zeros_like(p)\n"
    "                m = st['exp_avg']\n"
    "                p.mul_(1 - g['lr'] * g['weight_decay'])\n"
    "                c = m.mul(beta1).add(p.grad, alpha=1 - beta1)\n"
    "                p.add_(torch.sign(c), alpha=-g['lr'])\n"
    "                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)\n"
    "def run(inp, outp):\n"
    "    tok = open(inp).read().split()\n"
    "    pos = 1\n"
    "    def take(k, conv=float):\n"
    "        nonlocal pos\n"
    "        r = [conv(x) for x in tok[pos:pos + k]]\n"
    "        pos += k\n"
    "        return r\n"
    "    kind = tok[0]\n"
    "    b1, b2, eps, wd = take(4)\n"
    "    ns, = take(1, int)\n"
    "    spans = [take(3, int) for _ in range(ns)]\n"
    "    n, steps = take(2, int)\n"
    "    p0 = take(n)\n"
    "    ps = [torch.nn.Parameter(torch.tensor(p0[o:o + c], dtype=torch.float32)) for o, c, d in spans]\n"
    "    groups = [{'params': [p for p, s in zip(ps, spans) if s[2] == w], 'weight_decay': wd if w else 0.0}\n"
    "              for w in (1, 0)]\n"
    "    groups = [g for g in groups if g['params']]\n"
    "    if kind == 'sgd': opt = torch.optim.SGD(groups, lr=0.1, momentum=b1, foreach=False)\n"
    "    elif kind == 'adam': opt = torch.optim.Adam(groups, lr=0.1, betas=(b1, b2), eps=eps, foreach=False)\n"
    "    elif kind == 'adamw': opt = torch.optim.AdamW(groups, lr=0.1, betas=(b1, b2), eps=eps, foreach=False)\n"
    "    else: opt = Lion(groups, lr=0.1, betas=(b1, b2), weight_decay=wd)\n"
    "    for s in range(steps):\n"
    "        lr, = take(1)\n"
    "        g = take(n)\n"
    "        for grp in opt.param_groups: grp['lr'] = lr\n"
    "        for p, (o, c, d) in zip(ps, spans): p.grad = torch.tensor(g[o:o + c], dtype=torch.float32)\n"
    "        opt.step()\n"
    "    def out(ts): return ' '.join('%.9g' % x for t in ts for x in t.detach().reshape(-1).tolist())\n"
    "    names = {'sgd': ['momentum_buffer'], 'adam': ['exp_avg', 'exp_avg_sq'],\n"
    "             'adamw': ['exp_avg', 'exp_avg_sq'], 'lion': ['exp_avg']}[kind]\n"
    "    with open(outp, 'w') as f:\n"
    "        print(out(ps), file=f)\n"
    "        for name in names: print(out([opt.state[p][name] for p in ps]), file=f)\n"
    "for i in range(1, len(sys.argv), 2): run(sys.argv[i], sys.argv[i + 1])\n";

/* Reads n floats from f into x; 0 on success. */
static int read_floats(FILE *f, double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (fscanf(f, "%lf", &x[i]) != 1) return -1;
    return 0;
}

static void torch_path(char *buf, size_t cap, llm_optim_kind kind, const char *ext)
{
    snprintf(buf, cap, "%s/optim_%s.%s", check_tmpdir(), llm_optim_name(kind), ext);
}

/* Writes the problem of `kind` for the script: config, spans, params0, then
 * per step the learning rate and the gradient already scaled by 0.5 (exact
 * in float, so torch sees what the library's first operation makes). */
static int write_torch_input(llm_optim_kind kind)
{
    enum { N = SMALL_N };
    llm_optim_config cfg = test_config(kind);
    float p0[N], grads[STEPS * N];
    make_problem(p0, grads, N, 2000 + kind);
    char path[600];
    torch_path(path, sizeof path, kind, "in");
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "%s %.9g %.9g %.9g %.9g\n%d", llm_optim_name(kind), cfg.beta1, cfg.beta2, cfg.eps,
            cfg.weight_decay, SMALL_S);
    for (int j = 0; j < SMALL_S; j++)
        fprintf(f, " %lld %lld %d", (long long)small_spans[j].offset, (long long)small_spans[j].count,
                small_spans[j].decay);
    fprintf(f, "\n%d %d\n", N, STEPS);
    for (int i = 0; i < N; i++) fprintf(f, "%.9g ", p0[i]);
    for (int s = 0; s < STEPS; s++) {
        fprintf(f, "\n%.9g\n", step_lr[s]);
        for (int i = 0; i < N; i++) fprintf(f, "%.9g ", grads[s * N + i] * 0.5f);
    }
    fprintf(f, "\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* Runs the script once for all four optimizers (one torch import): 1 when
 * the outputs are there, 0 when torch is unavailable, -1 on failure. */
static int run_torch(char *why, size_t cap)
{
    static int state = -2;
    static char reason[700];
    if (state != -2) {
        snprintf(why, cap, "%s", reason);
        return state;
    }
    char script[600], cmd[4000];
    snprintf(script, sizeof script, "%s/optim_ref.py", check_tmpdir());
    FILE *f = fopen(script, "w");
    state = -1;
    if (!f || fputs(torch_script, f) < 0 || fclose(f) != 0) {
        snprintf(reason, sizeof reason, "cannot write %s", script);
        goto out;
    }
    int len = snprintf(cmd, sizeof cmd, "%s '%s'", PYTHON, script);
    for (int k = 0; k < 4; k++) {
        char in[600], outp[600];
        torch_path(in, sizeof in, k, "in");
        torch_path(outp, sizeof outp, k, "out");
        if (write_torch_input(k) < 0) {
            snprintf(reason, sizeof reason, "cannot write %s", in);
            goto out;
        }
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " '%s' '%s'", in, outp);
    }
    snprintf(cmd + len, sizeof cmd - (size_t)len, " 2>'%s/optim_ref.err'", check_tmpdir());
    int rc = system(cmd);
    int code = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (code == 0) {
        state = 1;
    } else if (code == 3 || code == 127) {
        state = 0;
        snprintf(reason, sizeof reason, "%s cannot import torch (python3-torch); the C reference still ran",
                 PYTHON);
    } else {
        snprintf(reason, sizeof reason, "%s failed with status %d; see %s/optim_ref.err", PYTHON, code,
                 check_tmpdir());
    }
out:
    snprintf(why, cap, "%s", reason);
    return state;
}

/* Largest |a - b| over n values, relative to the largest |b|: for moments,
 * where single elements may cancel to near zero. */
static double max_rel_norm(const float *a, const double *b, int64_t n)
{
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= worst)) worst = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return worst / scale;
}

static void check_against_torch(llm_optim_kind kind)
{
    char why[700];
    int got = run_torch(why, sizeof why);
    if (got == 0) check_skip(why);
    if (!CHECK_MSG(got >= 0, "%s", why) || got == 0) return;
    enum { N = SMALL_N };
    llm_optim_config cfg = test_config(kind);
    float p0[N], grads[STEPS * N], p[N];
    make_problem(p0, grads, N, 2000 + kind);
    llm_optim o;
    run_lib(&cfg, p, p0, grads, N, small_spans, SMALL_S, &o);

    char path[600];
    torch_path(path, sizeof path, kind, "out");
    double tp[N], tm[N], tv[N];
    FILE *f = fopen(path, "r");
    if (!CHECK_MSG(f != NULL, "cannot read %s", path)) goto done;
    int bad = read_floats(f, tp, N) || (o.m && read_floats(f, tm, N)) || (o.v && read_floats(f, tv, N));
    fclose(f);
    if (!CHECK_MSG(!bad, "%s: too few numbers", path)) goto done;
    /* the same float arithmetic in a slightly different order: a few ulps */
    double dp = max_rel(p, tp, N, 1e-3), dm = o.m ? max_rel_norm(o.m, tm, N) : 0,
           dv = o.v ? max_rel_norm(o.v, tv, N) : 0;
    fprintf(stderr, "%s vs torch after %d steps: max relative difference params %.3g, m %.3g, v %.3g\n",
            llm_optim_name(kind), STEPS, dp, dm, dv);
    CHECK_MSG(dp < 1e-6, "%s params vs torch: max relative difference %.3g", llm_optim_name(kind), dp);
    CHECK_MSG(dm < 1e-6, "%s m vs torch: max relative difference %.3g", llm_optim_name(kind), dm);
    CHECK_MSG(dv < 1e-6, "%s v vs torch: max relative difference %.3g", llm_optim_name(kind), dv);
done:
    llm_optim_free(&o);
}

static void test_torch_sgd(void) { check_against_torch(LLM_OPTIM_SGD); }
static void test_torch_adam(void) { check_against_torch(LLM_OPTIM_ADAM); }
static void test_torch_adamw(void) { check_against_torch(LLM_OPTIM_ADAMW); }
static void test_torch_lion(void) { check_against_torch(LLM_OPTIM_LION); }

/* ---- single steps in closed form ---- */

static void test_first_step_closed_form(void)
{
    /* After one step m^ = g and v^ = g^2, so Adam moves by lr g/(|g| + eps);
     * Lion by lr sign(g); SGD by lr (g + wd p). */
    const float p0[4] = {1.5f, -2.5f, 0.25f, 3.0f}, g[4] = {0.3f, 0.2f, -0.7f, 1e-3f};
    const llm_param_span span = {0, 4, 1};
    const double lr = 0.01, wd = 0.1;
    for (int kind = 0; kind < 4; kind++) {
        llm_optim_config cfg = test_config(kind);
        llm_optim o;
        llm_error err = {0};
        float p[4];
        memcpy(p, p0, sizeof p);
        CHECK_OK(llm_optim_init(&o, &cfg, 4, &err), err);
        llm_optim_step(&o, p, g, &span, 1, (float)lr, 1.0f);
        for (int i = 0; i < 4; i++) {
            double x = p0[i], gi = g[i], want = 0;
            switch (kind) {
            case LLM_OPTIM_SGD: want = x - lr * (gi + wd * x); break;
            case LLM_OPTIM_ADAM: gi += wd * x; want = x - lr * gi / (fabs(gi) + cfg.eps); break;
            case LLM_OPTIM_ADAMW: want = x * (1 - lr * wd) - lr * gi / (fabs(gi) + cfg.eps); break;
            case LLM_OPTIM_LION: want = x * (1 - lr * wd) - lr * (gi > 0 ? 1 : -1); break;
            }
            CHECK_MSG(fabs(p[i] - want) <= 4e-7 * fabs(want), "%s p[%d] = %.9g, want %.9g",
                      llm_optim_name(kind), i, p[i], want);
        }
        CHECK(o.t == 1);
        if (kind == LLM_OPTIM_LION)
            for (int i = 0; i < 4; i++) CHECK_NEAR(o.m[i], (1 - (double)cfg.beta2) * g[i], 1e-9);
        llm_optim_free(&o);
    }
}

static void test_decay_only_on_decay_spans(void)
{
    /* With a zero gradient only weight decay moves anything: decoupled decay
     * (AdamW, Lion) scales decayed spans by exactly (1 - lr wd); L2 (SGD,
     * Adam) moves them too; undecayed spans keep every bit. */
    enum { N = SMALL_N };
    float p0[N], zero[N] = {0}, p[N];
    unsigned long long rng = 5;
    fill_normal(p0, N, 1.0, &rng);
    const float lr = 0.01f;
    for (int kind = 0; kind < 4; kind++) {
        llm_optim_config cfg = test_config(kind);
        llm_optim o;
        llm_error err = {0};
        memcpy(p, p0, sizeof p);
        CHECK_OK(llm_optim_init(&o, &cfg, N, &err), err);
        llm_optim_step(&o, p, zero, small_spans, SMALL_S, lr, 1.0f);
        float keep = (float)(1 - (double)lr * cfg.weight_decay);
        for (int j = 0; j < SMALL_S; j++)
            for (int64_t i = small_spans[j].offset; i < small_spans[j].offset + small_spans[j].count; i++) {
                if (!small_spans[j].decay)
                    CHECK_MSG(p[i] == p0[i], "%s: undecayed p[%lld] moved", llm_optim_name(kind),
                              (long long)i);
                else if (kind == LLM_OPTIM_ADAMW || kind == LLM_OPTIM_LION)
                    CHECK_MSG(p[i] == p0[i] * keep, "%s: p[%lld] = %.9g, want %.9g", llm_optim_name(kind),
                              (long long)i, p[i], p0[i] * keep);
                else
                    CHECK_MSG(fabsf(p[i]) < fabsf(p0[i]), "%s: decayed p[%lld] did not shrink",
                              llm_optim_name(kind), (long long)i);
            }
        llm_optim_free(&o);
    }
}

static void test_grad_scale(void)
{
    /* grad_scale multiplies the gradient before anything else: a step with
     * (g, 0.25) is bit for bit a step with (g * 0.25, 1) (exact in float),
     * moments included, for every optimizer. */
    enum { N = SMALL_N };
    float p0[N], g[N], gs[N], a[N], b[N];
    unsigned long long rng = 11;
    fill_normal(p0, N, 1.0, &rng);
    fill_normal(g, N, 0.3, &rng);
    for (int i = 0; i < N; i++) gs[i] = g[i] * 0.25f;
    for (int kind = 0; kind < 4; kind++) {
        llm_optim_config cfg = test_config(kind);
        llm_optim oa, ob;
        llm_error err = {0};
        memcpy(a, p0, sizeof a), memcpy(b, p0, sizeof b);
        CHECK_OK(llm_optim_init(&oa, &cfg, N, &err), err);
        CHECK_OK(llm_optim_init(&ob, &cfg, N, &err), err);
        for (int s = 0; s < 2; s++) {
            llm_optim_step(&oa, a, g, small_spans, SMALL_S, 0.01f, 0.25f);
            llm_optim_step(&ob, b, gs, small_spans, SMALL_S, 0.01f, 1.0f);
        }
        CHECK_MSG(memcmp(a, b, sizeof a) == 0, "%s: params differ", llm_optim_name(kind));
        CHECK_MSG(memcmp(oa.m, ob.m, N * sizeof(float)) == 0, "%s: m differs", llm_optim_name(kind));
        if (oa.v) CHECK_MSG(memcmp(oa.v, ob.v, N * sizeof(float)) == 0, "%s: v differs", llm_optim_name(kind));
        llm_optim_free(&oa);
        llm_optim_free(&ob);
    }
    /* and it is not ignored: SGD moves half as far with scale 0.5 */
    llm_optim_config cfg = test_config(LLM_OPTIM_SGD);
    cfg.weight_decay = 0;
    llm_optim o;
    llm_error err = {0};
    const llm_param_span span = {0, 1, 0};
    float x = 1.0f, g1 = 0.5f;
    CHECK_OK(llm_optim_init(&o, &cfg, 1, &err), err);
    llm_optim_step(&o, &x, &g1, &span, 1, 0.5f, 0.5f);
    CHECK(x == 1.0f - 0.5f * 0.25f);
    llm_optim_free(&o);
}

/* ---- schedule, clipping, norm ---- */

static double lr_closed_form(double lr, double min_lr, long warmup, long steps, long step)
{
    if (step < warmup) return lr * (step + 1) / warmup;
    double progress = (double)(step - warmup) / (steps - warmup > 1 ? steps - warmup : 1);
    if (progress > 1) progress = 1;
    return min_lr + 0.5 * (lr - min_lr) * (1 + cos(3.14159265358979323846 * progress));
}

static void test_schedule(void)
{
    llm_optim_config c;
    llm_optim_defaults(&c, LLM_OPTIM_ADAMW);
    c.lr = 3e-3f, c.min_lr = 3e-4f, c.warmup = 100, c.steps = 1100;
    double lr = c.lr, mn = c.min_lr;
    /* warmup: lr/100 at step 0, lr at its last step; cosine from lr at the
     * first step after warmup, halfway at 600, min_lr at 1100 and beyond */
    CHECK_NEAR(llm_optim_lr(&c, 0), lr / 100, 1e-7 * lr);
    CHECK_NEAR(llm_optim_lr(&c, 49), lr / 2, 1e-7 * lr);
    CHECK_NEAR(llm_optim_lr(&c, 99), lr, 1e-7 * lr);
    CHECK_NEAR(llm_optim_lr(&c, 100), lr, 1e-7 * lr);
    CHECK_NEAR(llm_optim_lr(&c, 600), (lr + mn) / 2, 1e-7 * lr);
    CHECK_NEAR(llm_optim_lr(&c, 1100), mn, 1e-7 * lr);
    CHECK_NEAR(llm_optim_lr(&c, 5000), mn, 1e-7 * lr);
    static const long at[] = {0, 1, 37, 99, 100, 101, 350, 600, 851, 1099, 1100, 1101, 100000};
    for (size_t i = 0; i < sizeof at / sizeof *at; i++)
        CHECK_NEAR(llm_optim_lr(&c, at[i]), lr_closed_form(lr, mn, 100, 1100, at[i]), 1e-7 * lr);
    /* monotone: up through warmup, down after */
    int up = 1, down = 1;
    for (long s = 1; s < 100; s++) up &= llm_optim_lr(&c, s) > llm_optim_lr(&c, s - 1);
    for (long s = 101; s <= 1100; s++) down &= llm_optim_lr(&c, s) <= llm_optim_lr(&c, s - 1);
    CHECK(up && down);
    /* no warmup: the peak at step 0; steps <= warmup: warmup, then min_lr */
    c.warmup = 0, c.steps = 10;
    CHECK_NEAR(llm_optim_lr(&c, 0), lr, 1e-7 * lr);
    CHECK_NEAR(llm_optim_lr(&c, 5), lr_closed_form(lr, mn, 0, 10, 5), 1e-7 * lr);
    c.warmup = 10, c.steps = 10;
    CHECK_NEAR(llm_optim_lr(&c, 9), lr, 1e-7 * lr);
    CHECK_NEAR(llm_optim_lr(&c, 10), lr, 1e-7 * lr); /* progress 0 at the first step after */
    CHECK_NEAR(llm_optim_lr(&c, 11), mn, 1e-7 * lr);
    /* min_lr == lr: constant after warmup */
    c.warmup = 0, c.steps = 100, c.min_lr = c.lr;
    CHECK(llm_optim_lr(&c, 0) == c.lr && llm_optim_lr(&c, 50) == c.lr && llm_optim_lr(&c, 200) == c.lr);
}

static void test_clip_scale(void)
{
    CHECK(llm_clip_scale(0.5, 1.0f) == 1.0f);
    CHECK(llm_clip_scale(1.0, 1.0f) == 1.0f);
    CHECK_NEAR(llm_clip_scale(4.0, 1.0f), 0.25, 1e-7);
    CHECK_NEAR(llm_clip_scale(3.0, 0.5f), 0.5 / 3, 1e-7);
    CHECK(llm_clip_scale(1e30, 0.0f) == 1.0f); /* clip 0 = none */
    CHECK(llm_clip_scale(0.0, 1.0f) == 1.0f);
    /* clipping brings the norm to the limit */
    float g[3] = {3, 4, 12};
    float s = llm_clip_scale(llm_grad_norm(g, 3), 2.0f);
    for (int i = 0; i < 3; i++) g[i] *= s;
    CHECK_NEAR(llm_grad_norm(g, 3), 2.0, 1e-6);
}

static void test_grad_norm(void)
{
    CHECK(llm_grad_norm(NULL, 0) == 0);
    float one[1] = {-3};
    CHECK(llm_grad_norm(one, 1) == 3);
    /* sizes around the smallest chunk (4096), and past 4096 of them (2^24) */
    static const int64_t sizes[] = {5, 4095, 4096, 4097, 100003, (1 << 24) + 1, (1 << 24) + 4097};
    int64_t max_n = (1 << 24) + 4097;
    float *g = malloc((size_t)max_n * sizeof *g);
    if (!CHECK(g != NULL)) return;
    unsigned long long rng = 77;
    fill_normal(g, max_n, 1e-2, &rng);
    for (size_t j = 0; j < sizeof sizes / sizeof *sizes; j++) {
        long double s = 0;
        for (int64_t i = 0; i < sizes[j]; i++) s += (long double)g[i] * g[i];
        double want = (double)sqrtl(s), got = llm_grad_norm(g, sizes[j]);
        CHECK_MSG(fabs(got - want) <= 1e-13 * want, "n = %lld: %.17g, want %.17g", (long long)sizes[j],
                  got, want);
    }
    /* and the same bits whatever the thread count */
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double a = llm_grad_norm(g, max_n);
    omp_set_num_threads(3);
    double b = llm_grad_norm(g, max_n);
    omp_set_num_threads(saved);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    free(g);
}

/* ---- state, threads, configuration ---- */

static void test_state_bytes(void)
{
    const int64_t n = 1000;
    size_t bytes[4];
    for (int kind = 0; kind < 4; kind++) {
        llm_optim_config cfg = test_config(kind);
        llm_optim o;
        llm_error err = {0};
        CHECK_OK(llm_optim_init(&o, &cfg, n, &err), err);
        bytes[kind] = llm_optim_state_bytes(&o);
        CHECK(o.m != NULL);
        CHECK((o.v != NULL) == (kind == LLM_OPTIM_ADAM || kind == LLM_OPTIM_ADAMW));
        llm_optim_free(&o);
        llm_optim_free(&o); /* idempotent */
    }
    CHECK(bytes[LLM_OPTIM_ADAM] == 2 * n * sizeof(float));
    CHECK(bytes[LLM_OPTIM_ADAMW] == 2 * n * sizeof(float));
    CHECK(bytes[LLM_OPTIM_LION] * 2 == bytes[LLM_OPTIM_ADAMW]);
    CHECK(bytes[LLM_OPTIM_SGD] == n * sizeof(float));
    /* plain SGD keeps nothing, and still steps */
    llm_optim_config cfg = test_config(LLM_OPTIM_SGD);
    cfg.beta1 = 0;
    llm_optim o;
    llm_error err = {0};
    CHECK_OK(llm_optim_init(&o, &cfg, n, &err), err);
    CHECK(o.m == NULL && o.v == NULL && llm_optim_state_bytes(&o) == 0);
    float x = 2, g = 1;
    const llm_param_span span = {0, 1, 1};
    llm_optim_step(&o, &x, &g, &span, 1, 0.5f, 1.0f);
    CHECK(x == 2.0f - 0.5f * (1.0f + 0.1f * 2.0f));
    llm_optim_free(&o);
}

static void test_thread_count_independent(void)
{
    /* Large enough to run in parallel, spans of odd sizes at odd offsets. */
    enum { N = 300007 };
    const llm_param_span spans[] = {{0, 1, 0}, {1, 65539, 1}, {65540, 3, 0}, {65543, 200000, 1},
                                    {265543, 34464, 0}};
    float *p0 = malloc(N * sizeof *p0), *grads = malloc(STEPS * N * sizeof *grads);
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    if (!CHECK(p0 && grads && a && b)) goto done;
    make_problem(p0, grads, N, 4242);
    int saved = omp_get_max_threads();
    for (int kind = 0; kind < 4; kind++) {
        llm_optim_config cfg = test_config(kind);
        llm_optim oa, ob;
        omp_set_num_threads(1);
        run_lib(&cfg, a, p0, grads, N, spans, 5, &oa);
        omp_set_num_threads(3);
        run_lib(&cfg, b, p0, grads, N, spans, 5, &ob);
        CHECK_MSG(memcmp(a, b, N * sizeof *a) == 0, "%s: params depend on the thread count",
                  llm_optim_name(kind));
        CHECK_MSG(memcmp(oa.m, ob.m, N * sizeof *a) == 0, "%s: m depends on the thread count",
                  llm_optim_name(kind));
        if (oa.v)
            CHECK_MSG(memcmp(oa.v, ob.v, N * sizeof *a) == 0, "%s: v depends on the thread count",
                      llm_optim_name(kind));
        llm_optim_free(&oa);
        llm_optim_free(&ob);
    }
    omp_set_num_threads(saved);
done:
    free(p0), free(grads), free(a), free(b);
}

static void test_defaults_and_names(void)
{
    llm_optim_config c;
    llm_optim_defaults(&c, LLM_OPTIM_ADAMW);
    CHECK(c.kind == LLM_OPTIM_ADAMW && c.lr == 1e-3f && c.min_lr == c.lr / 10 && c.warmup == 0 && c.steps == 1);
    CHECK(c.beta1 == 0.9f && c.beta2 == 0.95f && c.eps == 1e-8f && c.weight_decay == 0.1f && c.clip == 1.0f);
    llm_optim_defaults(&c, LLM_OPTIM_ADAM);
    CHECK(c.beta2 == 0.95f && c.weight_decay == 0 && c.lr == 1e-3f);
    llm_optim_defaults(&c, LLM_OPTIM_LION);
    CHECK(c.lr == 1e-4f && c.min_lr == c.lr / 10 && c.beta1 == 0.9f && c.beta2 == 0.99f && c.weight_decay == 0.1f);
    llm_optim_defaults(&c, LLM_OPTIM_SGD);
    CHECK(c.lr == 1e-3f && c.beta1 == 0.9f && c.weight_decay == 0);
    for (int k = 0; k < 4; k++) CHECK(llm_optim_parse(llm_optim_name(k)) == k);
    CHECK(strcmp(llm_optim_name(LLM_OPTIM_ADAMW), "adamw") == 0);
    CHECK(llm_optim_parse("AdamW") == -1 && llm_optim_parse("") == -1 && llm_optim_parse(NULL) == -1);
}

static void test_init_rejects(void)
{
    llm_optim o;
    llm_error err = {0};
    llm_optim_config c;
    llm_optim_defaults(&c, LLM_OPTIM_ADAM);
    CHECK(llm_optim_init(&o, &c, -1, &err) == LLM_ERR_ARG);
    CHECK(o.m == NULL && o.v == NULL);
    c.beta2 = 1; /* 1 - beta2^t = 0 */
    CHECK(llm_optim_init(&o, &c, 10, &err) == LLM_ERR_ARG);
    llm_optim_defaults(&c, LLM_OPTIM_ADAMW);
    c.weight_decay = NAN;
    CHECK(llm_optim_init(&o, &c, 10, &err) == LLM_ERR_ARG);
    llm_optim_defaults(&c, LLM_OPTIM_LION);
    c.kind = (llm_optim_kind)9;
    CHECK(llm_optim_init(&o, &c, 10, &err) == LLM_ERR_ARG);
    llm_optim_defaults(&c, LLM_OPTIM_LION);
    CHECK(llm_optim_init(&o, &c, INT64_C(1) << 62, &err) == LLM_ERR_LIMIT);
    CHECK_OK(llm_optim_init(&o, &c, 0, &err), err); /* an empty model is fine */
    llm_optim_free(&o);
}

int main(void)
{
    RUN(test_reference_sgd);
    RUN(test_reference_adam);
    RUN(test_reference_adamw);
    RUN(test_reference_lion);
    RUN(test_torch_sgd);
    RUN(test_torch_adam);
    RUN(test_torch_adamw);
    RUN(test_torch_lion);
    RUN(test_first_step_closed_form);
    RUN(test_decay_only_on_decay_spans);
    RUN(test_grad_scale);
    RUN(test_schedule);
    RUN(test_clip_scale);
    RUN(test_grad_norm);
    RUN(test_state_bytes);
    RUN(test_thread_count_independent);
    RUN(test_defaults_and_names);
    RUN(test_init_rejects);
    return check_done();
}
