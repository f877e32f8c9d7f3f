/* libFuzzer target for llama2.c's checkpoint and tokenizer.bin readers: the
 * input, split at its first 4 bytes' worth of length, is written to two
 * in-memory files that the importer reads like any others. */
#include "fuzz_common.h"
#include "llama2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t split;
    if (!fuzz_split(&data, &size, &split)) return 0;
    char model_path[64], tok_path[64];
    int mfd = fuzz_memfile(data, split, model_path, sizeof model_path);
    int tfd = fuzz_memfile(data + split, size - split, tok_path, sizeof tok_path);
    if (mfd >= 0 && tfd >= 0) {
        llm_error err = {0};
        llm_model m;
        if (llm_llama2c_load(model_path, tok_path, &m, &err) == 0) llm_model_free(&m);
        llm_tok t;
        memset(&t, 0, sizeof t);
        if (llm_llama2c_read_tokenizer(tok_path, 512, &t, &err) == 0) llm_tok_free(&t);
    }
    if (mfd >= 0) close(mfd);
    if (tfd >= 0) close(tfd);
    return 0;
}
