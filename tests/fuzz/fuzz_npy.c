/* fuzz_npy — libFuzzer target for the .npy header parser: any bytes may be
 * rejected with an error, none may crash, overrun or allocate without bound.
 * Accepted headers are checked for consistency and formatted back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llm_npy_header h;
    llm_error err = {0};
    if (llm_npy_parse_header(data, size, &h, &err) < 0) {
        if (err.code >= 0 || !memchr(err.msg, '\0', sizeof err.msg)) abort();
        return 0;
    }
    /* What was accepted is self-consistent and can be written back. */
    uint64_t nbytes;
    if (h.header_bytes > size || h.header_bytes > LLM_NPY_MAX_HEADER) abort();
    if (llm_payload_bytes(h.dtype, &h.shape, &nbytes, NULL) < 0 || nbytes != h.nbytes) abort();
    char buf[1024];
    size_t len;
    if (llm_npy_format_header(h.dtype, &h.shape, buf, sizeof buf, &len, &err) < 0) abort();
    llm_npy_header back;
    if (llm_npy_parse_header(buf, len, &back, &err) < 0 || back.dtype != h.dtype ||
        back.shape.ndim != h.shape.ndim || back.nbytes != h.nbytes)
        abort();
    for (int i = 0; i < h.shape.ndim; i++)
        if (back.shape.dim[i] != h.shape.dim[i]) abort();
    return 0;
}
