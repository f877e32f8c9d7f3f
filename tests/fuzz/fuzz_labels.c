/* libFuzzer target for the tokens attribute of attention records
 * (llm_labels_parse), the one piece of llm-attnviz's input that is text from
 * outside the stream layer: any bytes, and any expected count, must give the
 * labels or a clean error, and parsed labels must draw without reading past
 * their bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "font.h"
#include "labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int64_t expected = data[0] | data[1] << 8; /* the first two bytes: T */
    char *text = malloc(size - 1);
    if (!text) return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = '\0';
    llm_error err = {0};
    llm_labels lab;
    if (llm_labels_parse(&lab, text, expected, &err) == 0) {
        int ink = 0;
        for (int64_t i = 0; i < lab.n; i++)
            for (size_t k = lab.start[i]; k < lab.start[i + 1]; k++)
                ink += llm_font_ink((unsigned char)lab.bytes[k], 2, 3);
        (void)ink;
        llm_labels_free(&lab);
    }
    free(text);
    return 0;
}
