/* libFuzzer target for the checkpoint loaders: the input is written to an
 * in-memory file and loaded as llm-gen loads a model, float or quantized
 * (config and tokenizer records, every tensor's name, dtype, shape and
 * companions checked), and as llm-train --init and llm-quant -m load one:
 * float only, with the training state and the optimizer's moments. */
#include "ckpt.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
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
    close(fd);
    return 0;
}
