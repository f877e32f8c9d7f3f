/* Unit tests for lib/dist, the MPI behind llm_comm.  Launched by hand (no
 * mpirun), the test starts MPI with one rank and checks that every
 * collective of a world of one leaves its data as it was (a sum over one
 * rank is the value itself, a gather copies), that many sums can be in
 * flight at once, and the errors: a sum too long for MPI's int count, no
 * memory for the requests, an MPI error named with its rank and call.  It
 * also reruns itself as two ranks under mpirun (as tests/cli/test_mpi.sh
 * runs llm-train), where each rank checks every collective against sums of
 * both ranks' values worked out here.  llm_dist_launched is checked
 * against the launcher variables it looks for.  In a build without MPI,
 * llm_dist_init must say MPI is missing, and the rest is skipped. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "dist.h"
#include "nomem.h"

/* Open MPI's own allocations outlive MPI_Finalize by design: under ASan,
 * no leak report (this hook is unused without it). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }

static llm_dist *dist; /* this process's, from test_init */

/* 1 when llm_dist_init said MPI is missing (and checked how); err has it. */
static int mpi_missing(int rc, const llm_error *err)
{
    if (rc != LLM_ERR_STATE || !strstr(err->msg, "MPI is missing")) return 0;
    CHECK_MSG(strstr(err->msg, "libopenmpi-dev"), "no hint at the package: %s", err->msg);
    return 1;
}

/* ---- one rank ---- */

static void test_launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    enum { NV = sizeof vars / sizeof vars[0] };
    char *kept[NV];
    for (int i = 0; i < NV; i++) {
        const char *v = getenv(vars[i]);
        kept[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    CHECK(llm_dist_launched() == 0);
    for (int i = 0; i < NV; i++) {
        setenv(vars[i], "2", 1);
        CHECK_MSG(llm_dist_launched() == 1, "%s set, not seen", vars[i]);
        unsetenv(vars[i]);
    }
    for (int i = 0; i < NV; i++) {
        if (kept[i]) setenv(vars[i], kept[i], 1);
        free(kept[i]);
    }
}

static void test_init(void)
{
    llm_error err = {0};
    int rc = llm_dist_init(&dist, &err);
    if (mpi_missing(rc, &err)) {
        CHECK(dist == NULL && llm_dist_comm(NULL) == NULL && !strcmp(llm_dist_library(NULL), "none"));
        CHECK(llm_dist_finalize(NULL, &err) == 0);
        return; /* as it should: the MPI tests skip */
    }
    CHECK_OK(rc, err);
    if (rc < 0) return;
    const llm_comm *c = llm_dist_comm(dist);
    CHECK_MSG(c->rank == 0 && c->size == 1, "rank %d of %d", c->rank, c->size);
    const char *lib = llm_dist_library(dist);
    CHECK_MSG(lib[0] && !strpbrk(lib, "\n,") && strstr(lib, "MPI"), "library '%s'", lib);
}

/* This process's collectives, or NULL (the test skipped) without MPI. */
static const llm_comm *one_rank(void)
{
    if (!dist) check_skip("built without MPI");
    return dist ? llm_dist_comm(dist) : NULL;
}

/* Refusals: a sum longer than an int counts, no memory for the first
 * request, and an MPI error (a negative count) as LLM_ERR_IO naming the
 * rank and the call.  First, while no request array exists. */
static void test_errors(void)
{
    const llm_comm *c = one_rank();
    if (!c) return;
    llm_error err = {0};
    float buf[4] = {1, 2, 3, 4};
    CHECK(c->isum(c->ctx, buf, (int64_t)INT_MAX + 1, NULL, NULL, &err) == LLM_ERR_LIMIT);
    CHECK_MSG(!strcmp(err.msg, "rank 0: 2147483648 floats in one sum"), "%s", err.msg);
    nomem_fail_after(0);
    int rc = c->isum(c->ctx, buf, 4, NULL, NULL, &err);
    long refused = nomem_stop();
    CHECK_MSG(rc == LLM_ERR_NOMEM && refused == 1 && !strcmp(err.msg, "rank 0: out of memory for requests"),
              "rc %d, %ld refused: %s", rc, refused, err.msg);
    double x[1] = {1};
    rc = c->sum_f64(c->ctx, x, -1, &err);
    CHECK_MSG(rc == LLM_ERR_IO && !strncmp(err.msg, "rank 0: MPI_Allreduce: ", 23), "rc %d: %s", rc, err.msg);
    /* nothing left started: waiting completes nothing, and works */
    CHECK_OK(c->wait(c->ctx, &err), err);
    CHECK(buf[0] == 1 && buf[3] == 4);
}

/* n floats i / 7 + k: not integers, so an average or a doubled sum shows */
static void fill(float *v, int n, int k)
{
    for (int i = 0; i < n; i++) v[i] = (float)i / 7.0f + (float)k;
}

static int same_floats(const float *a, const float *b, int n) { return !memcmp(a, b, (size_t)n * sizeof *a); }

static void test_one_rank_collectives(void)
{
    const llm_comm *c = one_rank();
    if (!c) return;
    llm_error err = {0};
    /* 150 sums in flight at once (the request array grows), then polled and waited for */
    enum { SUMS = 150, LEN = 33 };
    float *bufs = malloc(sizeof(float) * SUMS * LEN), *want = malloc(sizeof(float) * SUMS * LEN);
    for (int s = 0; s < SUMS; s++) fill(bufs + s * LEN, LEN, s);
    memcpy(want, bufs, sizeof(float) * SUMS * LEN);
    for (int s = 0; s < SUMS; s++) CHECK_OK(c->isum(c->ctx, bufs + s * LEN, LEN, NULL, NULL, &err), err);
    CHECK_OK(c->test(c->ctx, &err), err);
    CHECK_OK(c->wait(c->ctx, &err), err);
    CHECK_MSG(same_floats(bufs, want, SUMS * LEN), "a sum over one rank changed its values");
    /* reduce-scatter: the one rank's piece is everything */
    float part[LEN];
    int counts[1] = {LEN}, offs[1] = {0};
    CHECK_OK(c->isum(c->ctx, bufs, LEN, counts, part, &err), err);
    CHECK_OK(c->wait(c->ctx, &err), err);
    CHECK(same_floats(part, want, LEN));
    double x[2] = {0.1, -3e200};
    CHECK_OK(c->sum_f64(c->ctx, x, 2, &err), err);
    CHECK(x[0] == 0.1 && x[1] == -3e200);
    int same = -1;
    CHECK_OK(c->same_u64(c->ctx, UINT64_MAX, &same, &err), err);
    CHECK(same == 1);
    CHECK_OK(c->allgather(c->ctx, bufs, counts, offs, &err), err);
    CHECK(same_floats(bufs, want, LEN));
    float full[LEN] = {0};
    CHECK_OK(c->gather(c->ctx, want, full, counts, offs, &err), err);
    CHECK(same_floats(full, want, LEN));
    free(bufs);
    free(want);
}

static void test_finalize(void)
{
    llm_error err = {0};
    CHECK(llm_dist_finalize(NULL, &err) == 0);
    if (!dist) {
        check_skip("built without MPI");
        return;
    }
    CHECK_OK(llm_dist_finalize(dist, &err), err);
    dist = NULL;
}

/* ---- two ranks (this program under mpirun) ---- */

/* What each rank runs: every collective, against the sum of both ranks'
 * values. */
static void test_two_rank_collectives(void)
{
    llm_error err = {0};
    llm_dist *d;
    int rc = llm_dist_init(&d, &err);
    if (mpi_missing(rc, &err)) {
        check_skip("built without MPI");
        return;
    }
    CHECK_OK(rc, err);
    if (rc < 0) return;
    const llm_comm *c = llm_dist_comm(d);
    int r = c->rank;
    CHECK_MSG(c->size == 2 && (r == 0 || r == 1), "rank %d of %d", r, c->size);
    enum { N = 1000 };
    /* two all-reduces in flight: rank r holds (r + 1) * v and r - v */
    float a[N], b[N];
    for (int i = 0; i < N; i++) a[i] = (float)((r + 1) * i), b[i] = (float)(r - i);
    CHECK_OK(c->isum(c->ctx, a, N, NULL, NULL, &err), err);
    CHECK_OK(c->isum(c->ctx, b, N, NULL, NULL, &err), err);
    CHECK_OK(c->wait(c->ctx, &err), err);
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= a[i] == (float)(3 * i) && b[i] == (float)(1 - 2 * i);
    CHECK_MSG(ok, "rank %d: all-reduce is not the sum of both ranks", r);
    /* reduce-scatter of 5 floats, 2 to rank 0 and 3 to rank 1 */
    const int counts[2] = {2, 3}, offs[2] = {0, 2};
    float v[5], piece[3] = {0};
    for (int i = 0; i < 5; i++) v[i] = (float)(10 * (r + 1) + i); /* sum: 30 + 2i */
    CHECK_OK(c->isum(c->ctx, v, 5, counts, piece, &err), err);
    CHECK_OK(c->wait(c->ctx, &err), err);
    for (int j = 0; j < counts[r]; j++)
        CHECK_MSG(piece[j] == (float)(30 + 2 * (offs[r] + j)), "rank %d: piece[%d] = %g", r, j, piece[j]);
    /* in double: 1 + 2^-39 is no float */
    double x[2] = {r + 0.5, r ? 0x1p-40 : 1 + 0x1p-40};
    CHECK_OK(c->sum_f64(c->ctx, x, 2, &err), err);
    CHECK_MSG(x[0] == 2.0 && x[1] == 1 + 0x1p-39, "rank %d: %.17g %.17g", r, x[0], x[1]);
    const struct {
        uint64_t v0, v1;
        int same;
    } agree[] = {{42, 42, 1}, {0, 1, 0}, {UINT64_MAX, UINT64_MAX, 1}, {0, UINT64_MAX, 0}, {7, 3, 0}};
    for (int k = 0; k < 5; k++) {
        int same = -1;
        CHECK_OK(c->same_u64(c->ctx, r ? agree[k].v1 : agree[k].v0, &same, &err), err);
        CHECK_MSG(same == agree[k].same, "rank %d: %llu vs %llu: same %d", r, (unsigned long long)agree[k].v0,
                  (unsigned long long)agree[k].v1, same);
    }
    /* all-gather: rank r's slice 100 r + j; elsewhere -1 until gathered */
    float g[5], full[5] = {0};
    for (int i = 0; i < 5; i++) g[i] = -1;
    for (int j = 0; j < counts[r]; j++) g[offs[r] + j] = (float)(100 * r + j);
    const float gathered[5] = {0, 1, 100, 101, 102};
    CHECK_OK(c->gather(c->ctx, g + offs[r], full, counts, offs, &err), err);
    if (r == 0) CHECK_MSG(same_floats(full, gathered, 5), "gather to rank 0: %g %g %g", full[0], full[2], full[4]);
    CHECK_OK(c->allgather(c->ctx, g, counts, offs, &err), err);
    CHECK_MSG(same_floats(g, gathered, 5), "rank %d: all-gather %g %g %g %g %g", r, g[0], g[1], g[2], g[3], g[4]);
    CHECK_OK(llm_dist_finalize(d, &err), err);
}

/* Runs this program as 2 ranks under mpirun (before this process starts
 * MPI: no fork after MPI_Init): each rank must report its test passed. */
static void test_two_ranks(void)
{
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        check_skip("no mpirun (Debian: openmpi-bin)");
        return;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || memchr(exe, '\'', (size_t)n)) {
        check_skip("cannot name this program for mpirun");
        return;
    }
    exe[n] = '\0';
    /* local only, oversubscribed small machines, root in CI: as tests/cli/test_mpi.sh */
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    setenv("OMPI_MCA_btl_tcp_if_include", "lo", 1);
    setenv("OMPI_MCA_oob_tcp_if_include", "lo", 1);
    setenv("OMPI_MCA_btl_base_warn_component_unused", "0", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    char cmd[4400], out[8192];
    snprintf(cmd, sizeof cmd, "timeout 60 mpirun %s --oversubscribe -np 2 -x OMP_NUM_THREADS '%s' 2>&1",
             getuid() == 0 ? "--allow-run-as-root" : "", exe);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    size_t len = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[len] = '\0';
    int status = p ? pclose(p) : -1;
    int passed = 0;
    for (const char *s = out; (s = strstr(s, "PASS test_two_rank_collectives")); s++) passed++;
    if (strstr(out, "SKIP test_two_rank_collectives: built without MPI")) {
        check_skip("built without MPI");
        return;
    }
    CHECK_MSG(status == 0 && passed == 2 && !strstr(out, "FAIL"), "mpirun status %d, %d ranks passed:\n%s", status,
              passed, out);
}

int main(void)
{
    if (llm_dist_launched()) { /* one of the ranks test_two_ranks started */
        RUN(test_two_rank_collectives);
        return check_done();
    }
    RUN(test_launched);
    RUN(test_two_ranks);
    RUN(test_init);
    RUN(test_errors);
    RUN(test_one_rank_collectives);
    RUN(test_finalize);
    return check_done();
}
