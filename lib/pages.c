/* pages — large zeroed allocations, resident where written, huge pages optional. */
#include "pages.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux's value, for older headers; older kernels say EINVAL */
#endif

enum { HUGE_PAGE = 2 << 20 };

void *llm_pages_alloc(size_t bytes, int huge, size_t *mapped)
{
    const size_t h = HUGE_PAGE;
    *mapped = 0;
    if (bytes < 2 * h) return calloc(bytes ? bytes : 1, 1);
    if (bytes > SIZE_MAX - 2 * h) return NULL;
    if (!huge) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        *mapped = bytes;
        return p;
    }
    bytes = (bytes + h - 1) / h * h;
    char *raw = mmap(NULL, bytes + h, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *p = (char *)(((uintptr_t)raw + h - 1) / h * h);
    /* keep exactly [p, p + bytes): the slack before and after goes back */
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (raw + h > p) munmap(p + bytes, (size_t)(raw + h - p));
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#endif
    *mapped = bytes;
    return p;
}

void llm_pages_populate(void *p, size_t bytes)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p / page * page, b = ((uintptr_t)p + bytes + page - 1) / page * page;
    if (bytes) madvise((void *)a, b - a, MADV_POPULATE_WRITE); /* advice only */
}

void llm_pages_free(void *p, size_t mapped)
{
    if (mapped) munmap(p, mapped);
    else free(p);
}
