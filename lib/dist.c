/* dist — MPI behind llm_comm: non-blocking all-reduce and reduce-scatter of
 * gradient buckets, all-gather of weight slices, gathers for checkpoints. */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int llm_dist_launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

#ifdef LLM_HAVE_MPI
#include <mpi.h>

struct llm_dist {
    llm_comm comm;
    MPI_Comm world;
    MPI_Request *reqs; /* started, not yet completed */
    int n_reqs, cap;
    char library[MPI_MAX_LIBRARY_VERSION_STRING];
};


/* Turns an MPI error code into err, naming the rank and the call. */
static int mpi_check(const llm_dist *d, int code, const char *call, llm_error *err)
{
    if (code == MPI_SUCCESS) return 0;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "error %d", code);
    return llm_error_set(err, LLM_ERR_IO, "rank %d: %s: %s", d ? d->comm.rank : -1, call, text);
}

static int push_request(llm_dist *d, llm_error *err)
{
    if (d->n_reqs < d->cap) return 0;
    int cap = d->cap ? 2 * d->cap : 64;
    MPI_Request *r = realloc(d->reqs, (size_t)cap * sizeof *r);
    if (!r) return llm_error_set(err, LLM_ERR_NOMEM, "rank %d: out of memory for requests", d->comm.rank);
    d->reqs = r;
    d->cap = cap;
    return 0;
}

static int c_isum(void *ctx, float *buf, int64_t n, const int *counts, float *recv, llm_error *err)
{
    llm_dist *d = ctx;
    if (n > INT32_MAX) return llm_error_set(err, LLM_ERR_LIMIT, "rank %d: %lld floats in one sum", d->comm.rank, (long long)n);
    LLM_TRY(push_request(d, err));
    MPI_Request *r = &d->reqs[d->n_reqs];
    int rc;
    if (!recv)
        rc = mpi_check(d, MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, d->world, r),
                       "MPI_Iallreduce", err);
    else
        rc = mpi_check(d, MPI_Ireduce_scatter(buf, recv, counts, MPI_FLOAT, MPI_SUM, d->world, r),
                       "MPI_Ireduce_scatter", err);
    if (rc == 0) d->n_reqs++;
    return rc;
}

static int c_test(void *ctx, llm_error *err)
{
    llm_dist *d = ctx;
    int done = 0;
    LLM_TRY(mpi_check(d, MPI_Testall(d->n_reqs, d->reqs, &done, MPI_STATUSES_IGNORE), "MPI_Testall", err));
    if (done) d->n_reqs = 0;
    return 0;
}

static int c_wait(void *ctx, llm_error *err)
{
    llm_dist *d = ctx;
    int n = d->n_reqs;
    d->n_reqs = 0;
    return mpi_check(d, MPI_Waitall(n, d->reqs, MPI_STATUSES_IGNORE), "MPI_Waitall", err);
}

static int c_sum_f64(void *ctx, double *x, int n, llm_error *err)
{
    llm_dist *d = ctx;
    return mpi_check(d, MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, d->world), "MPI_Allreduce", err);
}

static int c_same_u64(void *ctx, uint64_t v, int *same, llm_error *err)
{
    llm_dist *d = ctx;
    /* max(v) and max(~v) = ~min(v): equal everywhere when they agree */
    uint64_t x[2] = {v, ~v};
    LLM_TRY(mpi_check(d, MPI_Allreduce(MPI_IN_PLACE, x, 2, MPI_UINT64_T, MPI_MAX, d->world), "MPI_Allreduce", err));
    *same = x[0] == ~x[1];
    return 0;
}

static int c_allgather(void *ctx, float *buf, const int *counts, const int *offs, llm_error *err)
{
    llm_dist *d = ctx;
    return mpi_check(d, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, offs, MPI_FLOAT, d->world),
                     "MPI_Allgatherv", err);
}

static int c_gather(void *ctx, const float *part, float *full, const int *counts, const int *offs, llm_error *err)
{
    llm_dist *d = ctx;
    return mpi_check(d, MPI_Gatherv(part, counts[d->comm.rank], MPI_FLOAT, full, counts, offs, MPI_FLOAT, 0, d->world),
                     "MPI_Gatherv", err);
}

int llm_dist_init(llm_dist **out, llm_error *err)
{
    *out = NULL;
    int provided = 0;
    /* OpenMP threads never call MPI: the main thread does, between regions */
    LLM_TRY(mpi_check(NULL, MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread", err));
    llm_dist *d = calloc(1, sizeof *d);
    if (!d) return llm_error_set(err, LLM_ERR_NOMEM, "MPI: out of memory");
    d->world = MPI_COMM_WORLD;
    /* errors come back as codes, to be reported with the rank */
    MPI_Comm_set_errhandler(d->world, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->world, &d->comm.rank);
    MPI_Comm_size(d->world, &d->comm.size);
    d->comm.ctx = d;
    d->comm.isum = c_isum;
    d->comm.test = c_test;
    d->comm.wait = c_wait;
    d->comm.sum_f64 = c_sum_f64;
    d->comm.same_u64 = c_same_u64;
    d->comm.allgather = c_allgather;
    d->comm.gather = c_gather;
    int len = 0;
    MPI_Get_library_version(d->library, &len);
    d->library[strcspn(d->library, "\n,")] = 0;
    *out = d;
    return 0;
}

const llm_comm *llm_dist_comm(const llm_dist *d) { return &d->comm; }
const char *llm_dist_library(const llm_dist *d) { return d->library; }

int llm_dist_finalize(llm_dist *d, llm_error *err)
{
    if (!d) return 0;
    free(d->reqs);
    int rank = d->comm.rank, code = MPI_Finalize();
    free(d);
    if (code != MPI_SUCCESS) return llm_error_set(err, LLM_ERR_IO, "rank %d: MPI_Finalize failed", rank);
    return 0;
}

void llm_dist_abort(llm_dist *d, int status)
{
    MPI_Abort(d ? d->world : MPI_COMM_WORLD, status);
    exit(status); /* MPI_Abort does not return; this keeps the promise if it did */
}

#else /* built without MPI */

static int missing(llm_error *err)
{
    return llm_error_set(err, LLM_ERR_STATE,
                         "MPI is missing: this build has no MPI, so no distributed training "
                         "(install Open MPI, on Debian libopenmpi-dev and openmpi-bin, and rebuild)");
}

int llm_dist_init(llm_dist **d, llm_error *err)
{
    *d = NULL;
    return missing(err);
}
const llm_comm *llm_dist_comm(const llm_dist *d)
{
    (void)d;
    return NULL;
}
const char *llm_dist_library(const llm_dist *d)
{
    (void)d;
    return "none";
}
int llm_dist_finalize(llm_dist *d, llm_error *err)
{
    (void)d;
    (void)err;
    return 0;
}
void llm_dist_abort(llm_dist *d, int status)
{
    (void)d;
    exit(status);
}

#endif
