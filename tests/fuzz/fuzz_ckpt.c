/* libFuzzer target for the checkpoint loaders: the input is written to an
 * in-memory file and loaded as llm-gen loads a model, float or quantized
 * (config and tokenizer records, every tensor's name, dtype, shape and
 * companions checked), and as llm-train --init and llm-quant -m load one:
 * float only, with the training state and the optimizer's moments. */
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
        llm_optim o;
        llm_ckpt_train train;
        int has_train;
        if (llm_ckpt_load(path, &m, &o, &train, &has_train, &err) == 0) {
            llm_model_free(&m);
            llm_optim_free(&o);
        }
    }
    close(fd);
    return 0;
}
