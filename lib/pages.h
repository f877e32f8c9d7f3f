/* pages — large zeroed allocations on transparent huge pages.
 *
 * A block of 4 MiB or more is mapped, aligned to 2 MiB and marked for
 * huge pages (advice: the kernel may decline); smaller ones come from
 * calloc.  Mapped pages are zero without being written and become
 * resident as they are first written, so a block may be reserved at its
 * largest size and filled as needed.  Two uses: the model's parameters (a
 * decode step streams every weight once, and with 4 KiB pages that walk
 * takes a TLB miss every 4 KiB) and the KV cache (on the VMs we measure
 * on, every 4 KiB page a new position first writes was a page fault of
 * ~15 us, 12% of an int8 decode step; a 2 MiB page faults once for ~680
 * positions of a 110M-shape layer).
 *
 *     size_t mapped;
 *     float *p = llm_pages_alloc(bytes, &mapped);   // NULL: out of memory
 *     llm_pages_free(p, mapped);
 */
#ifndef LLM_PAGES_H
#define LLM_PAGES_H

#include <stddef.h>

/* A zeroed block of bytes; *mapped gets the bytes mapped (0: calloc'd). */
void *llm_pages_alloc(size_t bytes, size_t *mapped);
/* Frees a block from llm_pages_alloc (NULL: nothing). */
void llm_pages_free(void *p, size_t mapped);

#endif
