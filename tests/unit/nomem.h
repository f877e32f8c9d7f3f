/* nomem — allocations that fail on request, for testing the paths that
 * handle running out of memory.
 *
 * The unit tests are linked with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=realloc, so every such call in the library's objects and the
 * test's own goes to the wrappers here; the shared libraries (OpenBLAS,
 * libgomp, libzstd, libc itself) are not affected.  Two ways to fail:
 * - nomem_fail(1): every malloc returns NULL (calloc and realloc still
 *   work), so a test can make one of the library's own mallocs fail where
 *   its other buffers already exist;
 * - nomem_sweep: runs a call with its first allocation (malloc, calloc or
 *   realloc) refused, then with the first let through and the second
 *   refused, and so on until the call makes no more, and checks that each
 *   refusal comes back as LLM_ERR_NOMEM — never a NaN, a zero or a
 *   silently skipped result.
 *
 *     nomem_fail(1);
 *     CHECK(llm_something(..., &err) == LLM_ERR_NOMEM);
 *     nomem_fail(0);
 *     static int mse(void *h, llm_error *err) { double a; return llm_calib_amax(h, LLM_CALIB_MSE, 0, &a, err); }
 *     CHECK(nomem_sweep("mse", mse, &hist) > 0);   // each of its allocations refused once
 */
#ifndef LLM_NOMEM_H
#define LLM_NOMEM_H

#include <stddef.h>

#include "err.h"

/* 1: every malloc returns NULL from now on, on every thread; 0: none does. */
void nomem_fail(int on);

/* Lets the next k allocations through and refuses every later one, until
 * nomem_stop. */
void nomem_fail_after(long k);
/* Lets every allocation through again; returns how many were refused since
 * nomem_fail_after. */
long nomem_stop(void);

/* For k = 0, 1, 2, ...: runs fn(ctx, err) with the allocations after its
 * first k refused, until a run has none refused (that run's result is fn's
 * to check).  A run that had one refused must return LLM_ERR_NOMEM, else the
 * running test fails, naming `what`, k and the result.  fn frees what it
 * allocated, also when it fails.  Returns the number of runs with a refusal,
 * the allocations fn makes. */
long nomem_sweep(const char *what, int (*fn)(void *ctx, llm_error *err), void *ctx);

/* The wrappers the linker puts in place of malloc, calloc and realloc, and
 * the real ones. */
void *__wrap_malloc(size_t n);
void *__real_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__real_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__real_realloc(void *p, size_t n);

#endif
