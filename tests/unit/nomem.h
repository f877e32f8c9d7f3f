/* nomem — malloc that fails on request, for testing the paths that handle
 * running out of memory.
 *
 * The unit tests are linked with -Wl,--wrap=malloc, so every call of malloc
 * in the library's objects and the test's own goes to __wrap_malloc here:
 * while nomem_fail(1) is in force it returns NULL, otherwise it is the real
 * malloc.  calloc and realloc, and the shared libraries (OpenBLAS, libgomp,
 * libzstd, libc itself), are not affected, so a test can make one of the
 * library's own mallocs fail where its other buffers already exist.
 *
 *     nomem_fail(1);
 *     CHECK(llm_something(..., &err) == LLM_ERR_NOMEM);
 *     nomem_fail(0);
 */
#ifndef LLM_NOMEM_H
#define LLM_NOMEM_H

#include <stddef.h>

/* 1: every malloc returns NULL from now on, on every thread; 0: none does. */
void nomem_fail(int on);

/* The wrapper the linker puts in place of malloc, and the real one. */
void *__wrap_malloc(size_t n);
void *__real_malloc(size_t n);

#endif
