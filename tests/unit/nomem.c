/* nomem — the malloc wrapper of the unit tests (nomem.h). */
#include "nomem.h"

#include <stdatomic.h>

static atomic_int failing; /* a test's switch, read by every thread that allocates */

void nomem_fail(int on) { atomic_store(&failing, on); }

void *__wrap_malloc(size_t n) { return atomic_load(&failing) ? NULL : __real_malloc(n); }
