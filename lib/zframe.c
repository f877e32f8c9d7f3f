/* zframe — frame detection and the window limit shared by the stream reader
 * and the parallel decoder (zframe.h). */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader: exported by every libzstd since 1.3 */
#include "zframe.h"

#include <stdint.h>
#include <zstd.h>

#include "bytes.h"

llm_zframe_kind llm_zframe_detect(const void *p, size_t n)
{
    if (n < 4) return LLM_ZFRAME_NONE;
    uint32_t m = llm_bytes_get_le32(p);
    if (m == ZSTD_MAGICNUMBER) return LLM_ZFRAME_ZSTD;
    if ((m & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START) return LLM_ZFRAME_SKIPPABLE;
    return LLM_ZFRAME_NONE;
}

int llm_zframe_check_header(const void *p, size_t n, llm_error *err)
{
    ZSTD_frameHeader h;
    if (ZSTD_getFrameHeader(&h, p, n) != 0 || h.frameType != ZSTD_frame) return 0;
    unsigned long long limit = 1ull << LLM_ZFRAME_MAX_WINDOW_LOG;
    if (h.windowSize > limit)
        return llm_error_set(err, LLM_ERR_LIMIT,
                             "zstd frame window of %llu bytes is over the limit of %llu (2^%d)",
                             h.windowSize, limit, LLM_ZFRAME_MAX_WINDOW_LOG);
    return 0;
}
