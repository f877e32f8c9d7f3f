/* fuzz_common — what the libFuzzer targets share: an input made a file that
 * the code under test opens by path, as the tools open theirs, and an input
 * cut in two. */
#ifndef LLM_FUZZ_COMMON_H
#define LLM_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* An in-memory file holding the n bytes at data: its descriptor (the caller
 * closes it), its path in path[size]; -1 when it cannot be made. */
static inline int fuzz_memfile(const uint8_t *data, size_t n, char *path, size_t size)
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

/* Takes the first 4 bytes of *data as a length, *split, of at most the rest,
 * and leaves *data and *size the rest; 0 when there are not 4 bytes. */
static inline int fuzz_split(const uint8_t **data, size_t *size, size_t *split)
{
    if (*size < 4) return 0;
    uint32_t at;
    memcpy(&at, *data, 4);
    *data += 4, *size -= 4;
    *split = *size ? at % (uint32_t)(*size + 1) : 0;
    return 1;
}

#endif
