/* Unit tests for lib/sample: the distribution llm_sampler_pick draws from,
 * for temperatures other than 1, top-k, top-p on either side of each
 * cutoff, and both together, against the definition computed here in double
 * precision (a chi-square bound on 200000 draws, and no draw of a token the
 * cutoff removes); -inf logits never drawn; llm_sample_argmax against a
 * brute-force scan on arrays full of ties and NaN; options out of range and
 * allocation failure refused with their codes.  (test_infer covers greedy
 * picks, temperature 1 and NaN logits.) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "nomem.h"
#include "sample.h"

#define V 8
#define DRAWS 200000

/* Two equal largest logits (ids 2 and 4); by logit the order is 2 4 7 0 3 6 1 5. */
static const float logits[V] = {1.2f, -0.3f, 2.0f, 0.7f, 2.0f, -1.5f, 0.1f, 1.6f};
static const int by_logit[V] = {2, 4, 7, 0, 3, 6, 1, 5};

/* The tempered softmax of logits in double. */
static void softmax(double temp, double *p)
{
    double sum = 0;
    for (int j = 0; j < V; j++) sum += p[j] = exp(logits[j] / temp);
    for (int j = 0; j < V; j++) p[j] /= sum;
}

/* The probability of the `count` most likely tokens at temp. */
static double top_mass(double temp, int count)
{
    double p[V], mass = 0;
    softmax(temp, p);
    for (int i = 0; i < count; i++) mass += p[by_logit[i]];
    return mass;
}

/* The distribution the options define: the tempered softmax, the top_k most
 * likely kept, then the fewest of those whose probability, renormalized over
 * the top_k, reaches top_p (as Hugging Face transformers' TopK then TopP
 * warpers and llama.cpp's samplers do), renormalized. */
static void reference(const llm_sample_opts *o, double *want)
{
    double p[V];
    softmax(o->temp, p);
    int keep = o->top_k > 0 && o->top_k < V ? o->top_k : V;
    double top_k_mass = 0, cum = 0;
    for (int i = 0; i < keep; i++) top_k_mass += p[by_logit[i]];
    for (int i = 0; i < keep; i++)
        if ((cum += p[by_logit[i]] / top_k_mass) >= o->top_p) {
            keep = i + 1;
            break;
        }
    double mass = 0;
    memset(want, 0, V * sizeof *want);
    for (int i = 0; i < keep; i++) mass += want[by_logit[i]] = p[by_logit[i]];
    for (int j = 0; j < V; j++) want[j] /= mass;
}

/* Draws DRAWS tokens with options o and compares their frequencies with the
 * reference: chi-square over the kept tokens below 40 (its 1e-6 tail for
 * 7 degrees of freedom is 35.3), none of the others drawn. */
static void check_distribution(const char *what, const llm_sample_opts *o)
{
    llm_error err = {0};
    llm_sampler sp;
    CHECK_OK(llm_sampler_init(&sp, V, o, &err), err);
    llm_rng rng;
    llm_rng_seed(&rng, 17);
    long count[V] = {0};
    for (int i = 0; i < DRAWS; i++) count[llm_sampler_pick(&sp, logits, &rng)]++;
    llm_sampler_free(&sp);
    double want[V], chi2 = 0;
    reference(o, want);
    for (int j = 0; j < V; j++) {
        if (want[j] == 0) {
            CHECK_MSG(count[j] == 0, "%s: token %d is cut off but drawn %ld times", what, j, count[j]);
            continue;
        }
        double expect = want[j] * DRAWS;
        chi2 += (count[j] - expect) * (count[j] - expect) / expect;
    }
    CHECK_MSG(chi2 < 40, "%s: chi-square %.1f", what, chi2);
}

static void test_temperature(void)
{
    check_distribution("temp 0.5", &(llm_sample_opts){.temp = 0.5f, .top_p = 1});
    check_distribution("temp 2", &(llm_sample_opts){.temp = 2, .top_p = 1});
    check_distribution("temp 2, top-k 8", &(llm_sample_opts){.temp = 2, .top_k = V, .top_p = 1});
    check_distribution("temp 2, top-k 99", &(llm_sample_opts){.temp = 2, .top_k = 99, .top_p = 1});
}

static void test_top_k(void)
{
    check_distribution("top-k 3", &(llm_sample_opts){.temp = 1, .top_k = 3, .top_p = 1});
    check_distribution("temp 0.7, top-k 5", &(llm_sample_opts){.temp = 0.7f, .top_k = 5, .top_p = 1});
}

/* top-p just below the mass of the k most likely keeps k tokens, just above
 * it keeps k + 1. */
static void test_top_p_cutoffs(void)
{
    const double temps[2] = {1, 1.5};
    for (int t = 0; t < 2; t++)
        for (int k = 2; k <= 6; k++) {
            double mass = top_mass(temps[t], k);
            for (int side = -1; side <= 1; side += 2) {
                llm_sample_opts o = {.temp = (float)temps[t], .top_p = (float)(mass + side * 1e-3)};
                double want[V];
                reference(&o, &want[0]);
                int kept = 0;
                for (int j = 0; j < V; j++) kept += want[j] > 0;
                CHECK_MSG(kept == k + (side > 0), "reference: top-p %g keeps %d", (double)o.top_p, kept);
                char what[64];
                snprintf(what, sizeof what, "temp %g, top-p %g", temps[t], (double)o.top_p);
                check_distribution(what, &o);
            }
        }
}

/* Both at once: top-k the tighter (top-p near 1), then top-p the tighter. */
static void test_top_k_and_top_p(void)
{
    check_distribution("top-k 5, top-p 0.999", &(llm_sample_opts){.temp = 1, .top_k = 5, .top_p = 0.999f});
    float p = (float)(top_mass(1, 2) / top_mass(1, 6) - 1e-3);
    check_distribution("top-k 6, top-p below two", &(llm_sample_opts){.temp = 1, .top_k = 6, .top_p = p});
    /* two of the top 3 hold more than p of the top 3's mass but less than p
     * of all: top-p over the renormalized top-k keeps two, over the whole
     * softmax it would keep three */
    p = (float)(top_mass(1, 2) / top_mass(1, 3) - 1e-3);
    double want[V];
    reference(&(llm_sample_opts){.temp = 1, .top_k = 3, .top_p = p}, want);
    CHECK_MSG(want[by_logit[2]] == 0 && top_mass(1, 2) < p, "the case does not tell the two readings apart");
    check_distribution("top-k 3, top-p of the renormalized top 3", &(llm_sample_opts){.temp = 1, .top_k = 3, .top_p = p});
}

/* A logit of -inf has probability 0; one finite logit among -inf is certain. */
static void test_minus_infinity(void)
{
    llm_error err = {0};
    const float z[5] = {-INFINITY, 0.5f, -INFINITY, 0.2f, -INFINITY}, one[3] = {-INFINITY, -INFINITY, -3};
    llm_rng rng;
    llm_rng_seed(&rng, 5);
    llm_sampler sp;
    CHECK_OK(llm_sampler_init(&sp, 5, &(llm_sample_opts){.temp = 1, .top_p = 1}, &err), err);
    long seen[5] = {0};
    for (int i = 0; i < 20000; i++) seen[llm_sampler_pick(&sp, z, &rng)]++;
    double p1 = 1 / (1 + exp(0.2 - 0.5)), sd = sqrt(p1 * (1 - p1) / 20000);
    CHECK_MSG(seen[0] + seen[2] + seen[4] == 0, "-inf drawn %ld times", seen[0] + seen[2] + seen[4]);
    CHECK_MSG(fabs(seen[1] / 20000.0 - p1) < 5 * sd, "token 1: %g, want %g", seen[1] / 20000.0, p1);
    llm_sampler_free(&sp);
    CHECK_OK(llm_sampler_init(&sp, 3, &(llm_sample_opts){.temp = 0.3f, .top_k = 2, .top_p = 0.5f}, &err), err);
    int always = 1;
    for (int i = 0; i < 1000; i++) always &= llm_sampler_pick(&sp, one, &rng) == 2;
    CHECK(always);
    llm_sampler_free(&sp);
}

/* Brute force: the first index holding the largest non-NaN value. */
static int first_max(const float *x, int n)
{
    int best = -1;
    for (int j = 0; j < n; j++)
        if (!isnan(x[j]) && (best < 0 || x[j] > x[best])) best = j;
    return best < 0 ? 0 : best;
}

/* Arrays of a few distinct values (ties everywhere), NaN and infinities. */
static void test_argmax(void)
{
    const float values[6] = {NAN, -INFINITY, -1, 0, 2, INFINITY};
    unsigned long long state = 99;
    for (int trial = 0; trial < 5000; trial++) {
        float x[12];
        int n = 1 + trial % 12;
        for (int j = 0; j < n; j++) x[j] = values[(int)(check_uniform(&state) * (trial % 2 ? 4 : 6))];
        int got = llm_sample_argmax(x, n), want = first_max(x, n);
        if (!CHECK_MSG(got == want, "trial %d (n %d): %d, brute force %d", trial, n, got, want)) break;
    }
}

/* One token: every option picks it. */
static void test_single_token(void)
{
    llm_error err = {0};
    const float z[1] = {-2};
    llm_rng rng;
    llm_rng_seed(&rng, 1);
    const llm_sample_opts opts[3] = {{.temp = 0, .top_p = 1}, {.temp = 1, .top_k = 1, .top_p = 0.1f},
                                     {.temp = 5, .top_k = 3, .top_p = 1}};
    for (int k = 0; k < 3; k++) {
        llm_sampler sp;
        CHECK_OK(llm_sampler_init(&sp, 1, &opts[k], &err), err);
        CHECK(llm_sampler_pick(&sp, z, &rng) == 0);
        llm_sampler_free(&sp);
    }
}

static int init_and_free(void *ctx, llm_error *err)
{
    llm_sampler sp;
    LLM_TRY(llm_sampler_init(&sp, 1000, ctx, err));
    llm_sampler_free(&sp);
    return 0;
}

static void test_bad_options(void)
{
    llm_error err = {0};
    const llm_sample_opts bad[6] = {{.temp = NAN, .top_p = 1},   {.temp = -0.1f, .top_p = 1},
                                    {.temp = 1, .top_k = -1, .top_p = 1}, {.temp = 1, .top_p = 0},
                                    {.temp = 1, .top_p = 1.01f}, {.temp = 1, .top_p = NAN}};
    for (int k = 0; k < 6; k++) {
        llm_sampler sp;
        err = (llm_error){0};
        int rc = llm_sampler_init(&sp, V, &bad[k], &err);
        CHECK_MSG(rc == LLM_ERR_ARG && err.code == LLM_ERR_ARG && strstr(err.msg, "out of range"),
                  "options %d: %d '%s'", k, rc, err.msg);
        CHECK(!sp.prob && !sp.order);
        llm_sampler_free(&sp);
    }
    CHECK(nomem_sweep("sampler", init_and_free, &(llm_sample_opts){.temp = 1, .top_p = 1}) == 2);
}

int main(void)
{
    RUN(test_temperature);
    RUN(test_top_k);
    RUN(test_top_p_cutoffs);
    RUN(test_top_k_and_top_p);
    RUN(test_minus_infinity);
    RUN(test_argmax);
    RUN(test_single_token);
    RUN(test_bad_options);
    return check_done();
}
