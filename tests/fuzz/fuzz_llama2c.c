/* libFuzzer target for llama2.c's checkpoint and tokenizer.bin readers: the
 * input, split at its first 4 bytes' worth of length, is written to two
 * in-memory files that the importer reads like any others. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "llama2c.h"

static int memfile(const uint8_t *data, size_t n, char *path, size_t size)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) return -1;
    if (n && write(fd, data, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    snprintf(path, size, "/proc/self/fd/%d", fd);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint32_t split;
    memcpy(&split, data, 4);
    data += 4, size -= 4;
    split = size ? split % (uint32_t)(size + 1) : 0;
    char model_path[64], tok_path[64];
    int mfd = memfile(data, split, model_path, sizeof model_path);
    int tfd = memfile(data + split, size - split, tok_path, sizeof tok_path);
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
