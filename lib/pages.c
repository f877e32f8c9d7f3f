/* pages — large zeroed allocations on transparent huge pages. */
#include "pages.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20 };

void *llm_pages_alloc(size_t bytes, size_t *mapped)
{
    const size_t huge = HUGE_PAGE;
    *mapped = 0;
    if (bytes < 2 * huge) return calloc(bytes ? bytes : 1, 1);
    if (bytes > SIZE_MAX - 2 * huge) return NULL;
    bytes = (bytes + huge - 1) / huge * huge;
    char *raw = mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *p = (char *)(((uintptr_t)raw + huge - 1) / huge * huge);
    /* keep exactly [p, p + bytes): the slack before and after goes back */
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (raw + huge > p) munmap(p + bytes, (size_t)(raw + huge - p));
#ifdef MADV_HUGEPAGE
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#endif
    *mapped = bytes;
    return p;
}

void llm_pages_free(void *p, size_t mapped)
{
    if (mapped) munmap(p, mapped);
    else free(p);
}
