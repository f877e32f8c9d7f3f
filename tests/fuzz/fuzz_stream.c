/* libFuzzer target for the tensor-stream reader: any bytes, compressed or
 * raw, must give records or a clean error — never a crash, a leak, or an
 * allocation the input cannot justify (libFuzzer's -rss_limit_mb and
 * -malloc_limit_mb catch those). */
#include <stdint.h>
#include <stdlib.h>

#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llm_error err = {0};
    llm_reader *r;
    if (llm_reader_open_mem(&r, data, size, "fuzz", &err) < 0) return 0;
    const llm_record *rec;
    unsigned char chunk[777];
    int i = 0;
    while (llm_reader_next(r, &rec, &err) > 0) {
        (void)llm_record_attr(rec, "scheme");
        if (i++ % 2) { /* alternate: whole payload, or chunks */
            void *all;
            size_t n;
            if (llm_reader_read_all(r, &all, &n, &err) < 0) break;
            free(all);
        } else {
            int64_t k;
            while ((k = llm_reader_read(r, chunk, sizeof chunk, &err)) > 0) {}
            if (k < 0) break;
        }
    }
    llm_reader_close(r);
    return 0;
}
