/* pages — large zeroed allocations, mapped so that they cost memory only
 * where written, optionally on transparent huge pages.
 *
 * A block of 4 MiB or more is mapped (with huge: aligned to 2 MiB and
 * marked for huge pages, advice the kernel may decline); smaller ones come
 * from calloc.  Mapped pages are zero without being written and become
 * resident as they are first written, so a block may be reserved at its
 * largest size and filled as needed.  Two uses:
 *   the model's parameters, huge: a decode step streams every weight once,
 *     and with 4 KiB pages that walk takes a TLB miss every 4 KiB;
 *   the KV cache, not huge: a slot's cache for the whole context, written
 *     a position at a time; with huge pages each slot's first pass
 *     faulted in 2 MiB per layer's keys and values (24 MiB of zeros on
 *     the 110M shape), and a batch of 8 slots decoded 17% slower.
 *
 *     size_t mapped;
 *     float *p = llm_pages_alloc(bytes, 1, &mapped);   // NULL: out of memory
 *     llm_pages_free(p, mapped);
 */
#ifndef LLM_PAGES_H
#define LLM_PAGES_H

#include <stddef.h>

/* A zeroed block of bytes, on huge pages when huge is 1; *mapped gets the
 * bytes mapped (0: calloc'd). */
void *llm_pages_alloc(size_t bytes, int huge, size_t *mapped);
/* Makes the pages of [p, p + bytes) in a mapped block resident now, in one
 * call into the kernel (MADV_POPULATE_WRITE, Linux 5.14): ~1 us a 4 KiB
 * page on our VMs, against ~12 us for a fault at its first write.  Advice
 * only: where the kernel lacks it, the pages fault in when written. */
void llm_pages_populate(void *p, size_t bytes);
/* Frees a block from llm_pages_alloc (NULL: nothing). */
void llm_pages_free(void *p, size_t mapped);

#endif
