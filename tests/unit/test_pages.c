/* Unit tests for lib/pages: small blocks from calloc, large ones mapped
 * (on huge pages or not); all zeroed; a large block costs resident memory
 * only where written (mincore: at most one page, huge or not, per write,
 * never the whole block). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "pages.h"

/* Bytes of [p, p + n) resident now, by mincore's pages. */
static size_t resident(void *p, size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = (n + page - 1) / page, in = 0;
    unsigned char *v = malloc(pages);
    CHECK(v && mincore(p, n, v) == 0);
    for (size_t i = 0; v && i < pages; i++) in += v[i] & 1;
    free(v);
    return in * page;
}

static void test_small_from_calloc(void)
{
    size_t mapped = 1;
    unsigned char *p = llm_pages_alloc(1000, 1, &mapped);
    CHECK(p && mapped == 0);
    int zero = 1;
    for (int i = 0; i < 1000; i++) zero &= p[i] == 0;
    CHECK(zero);
    llm_pages_free(p, mapped);
    llm_pages_free(NULL, 0);
}

static void check_large(int huge_pages)
{
    const size_t n = ((size_t)256 << 20) + 100, huge = (size_t)2 << 20;
    size_t mapped = 0;
    unsigned char *p = llm_pages_alloc(n, huge_pages, &mapped);
    CHECK(p && mapped >= n);
    if (huge_pages) CHECK(mapped % huge == 0 && (uintptr_t)p % huge == 0);
    CHECK_MSG(resident(p, mapped) == 0, "%zu bytes resident before any write", resident(p, mapped));
    p[n / 2] = 7, p[n - 1] = 9;
    size_t in = resident(p, mapped);
    CHECK_MSG(in > 0 && in <= (huge_pages ? 2 * huge : 2 * (size_t)sysconf(_SC_PAGESIZE)),
              "%zu bytes resident after writing 2 bytes of %zu", in, n);
    CHECK(p[0] == 0 && p[n / 2 + 1] == 0 && p[n / 2] == 7 && p[n - 1] == 9);
    llm_pages_free(p, mapped);
}

static void test_large_resident_where_written(void)
{
    check_large(1);
    check_large(0);
}

/* llm_pages_populate makes a range resident (where the kernel has
 * MADV_POPULATE_WRITE: else a skip), zero, and only that range. */
static void test_populate(void)
{
    const size_t n = (size_t)64 << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    size_t mapped = 0;
    unsigned char *p = llm_pages_alloc(n, 0, &mapped);
    CHECK(p && mapped == n);
    llm_pages_populate(p + 3 * page + 5, 10 * page);
    size_t in = resident(p, n);
    if (in == 0) {
        check_skip("no MADV_POPULATE_WRITE in this kernel");
    } else {
        CHECK_MSG(in >= 10 * page && in <= 12 * page, "%zu pages resident after populating 10-11", in / page);
        CHECK(p[3 * page + 5] == 0 && p[13 * page] == 0);
    }
    llm_pages_free(p, mapped);
}

int main(void)
{
    RUN(test_small_from_calloc);
    RUN(test_large_resident_where_written);
    RUN(test_populate);
    return check_done();
}
