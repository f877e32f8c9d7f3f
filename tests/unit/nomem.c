/* nomem — the allocation wrappers of the unit tests (nomem.h). */
#include "nomem.h"

#include <stdatomic.h>

#include "check.h"

/* A test's switches, read by every thread that allocates. */
static atomic_int failing;        /* nomem_fail: every malloc */
static atomic_int armed;          /* nomem_fail_after: every allocation after the first `allowed` */
static atomic_long allowed, refused;

void nomem_fail(int on) { atomic_store(&failing, on); }

/* 1 when this allocation is to be refused under nomem_fail_after. */
static int refuse(void)
{
    if (!atomic_load(&armed) || atomic_fetch_sub(&allowed, 1) > 0) return 0;
    atomic_fetch_add(&refused, 1);
    return 1;
}

void *__wrap_malloc(size_t n) { return atomic_load(&failing) || refuse() ? NULL : __real_malloc(n); }

void *__wrap_calloc(size_t k, size_t n) { return refuse() ? NULL : __real_calloc(k, n); }

void *__wrap_realloc(void *p, size_t n) { return refuse() ? NULL : __real_realloc(p, n); }

void nomem_fail_after(long k)
{
    atomic_store(&allowed, k);
    atomic_store(&refused, 0);
    atomic_store(&armed, 1);
}

long nomem_stop(void)
{
    atomic_store(&armed, 0);
    return atomic_load(&refused);
}

long nomem_sweep(const char *what, int (*fn)(void *ctx, llm_error *err), void *ctx)
{
    for (long k = 0;; k++) {
        llm_error err = {0};
        nomem_fail_after(k);
        int rc = fn(ctx, &err);
        if (nomem_stop() == 0) return k;
        if (!CHECK_MSG(rc == LLM_ERR_NOMEM, "%s: allocation %ld refused: returned %d (%s)", what, k, rc, err.msg))
            return k;
    }
}
