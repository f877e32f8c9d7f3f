/* libFuzzer target for the parallel frame decoder: any bytes must give a
 * clean end or a clean error, never a crash, a leak or a hang, and a reader
 * on top must succeed exactly when the normal reader does on the same bytes,
 * with the same record count: a difference traps.  (On damaged input the two
 * may stop at different records: zstd drops the output of a failing call,
 * and the two decode in differently sized calls.) */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pzstd.h"
#include "stream.h"

/* Records read and the final code of llm_reader_next (or of a payload read). */
static int drain(llm_reader *r, int *records)
{
    const llm_record *rec;
    unsigned char chunk[4096];
    int rc;
    *records = 0;
    while ((rc = llm_reader_next(r, &rec, &(llm_error){0})) > 0) {
        int64_t k;
        while ((k = llm_reader_read(r, chunk, sizeof chunk, &(llm_error){0})) > 0) {}
        if (k < 0) return (int)k;
        (*records)++;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return 0;
    }
    llm_error err = {0};
    llm_reader *r;
    int n_mem = 0, n_par = 0, rc_mem = -100, rc_par = -100;
    if (llm_reader_open_mem(&r, data, size, "fuzz", &err) == 0) {
        rc_mem = drain(r, &n_mem);
        llm_reader_close(r);
    }
    llm_pzstd *p;
    if (llm_pzstd_open_fd(&p, fd, "fuzz", 1 + (int)(size % 3), &err) == 0) {
        if (llm_pzstd_reader_open(&r, p, &err) == 0) {
            rc_par = drain(r, &n_par);
            llm_reader_close(r);
        }
        llm_pzstd_close(p);
    }
    close(fd);
    if ((rc_mem == 0) != (rc_par == 0) || (rc_mem == 0 && n_mem != n_par)) __builtin_trap();
    return 0;
}
