/* libFuzzer target for the checkpoint loader llm-gen uses: the input is
 * written to an in-memory file and loaded as a model, float or quantized
 * (config and tokenizer records, every tensor's name, dtype, shape and
 * companions checked). */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) return 0;
    if (size == 0 || write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        llm_error err = {0};
        llm_model m;
        if (llm_ckpt_load_model(path, &m, &err) == 0) llm_model_free(&m);
    }
    close(fd);
    return 0;
}
