/* libFuzzer target for the tokenizer record of checkpoints (llm_tok_read)
 * and for BPE encoding with whatever vocabulary it yields: any bytes must give
 * a tokenizer or a clean error, never a crash or an unjustified allocation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    llm_error err = {0};
    llm_reader *r;
    if (llm_reader_open_mem(&r, data, size, "fuzz", &err) < 0) return 0;
    const llm_record *rec;
    while (llm_reader_next(r, &rec, &err) > 0) {
        if (rec->kind != LLM_RECORD_META || strcmp(rec->name, "tokenizer") != 0) continue;
        llm_tok t;
        memset(&t, 0, sizeof t);
        if (llm_tok_read(&t, r, rec, &err) == 0) {
            static const char text[] = "Once upon a time, \xc3\xa9t\xe9 \xf0\x9f\x98\x80 <0x41>";
            int32_t ids[64];
            int64_t n = llm_tok_encode_text(&t, text, sizeof text - 1, ids, &err);
            char piece[LLM_TOK_MAX_PIECE];
            for (int64_t i = 0; i < n; i++) (void)llm_tok_decode_next(&t, i ? ids[i - 1] : -1, ids[i], piece);
        }
        llm_tok_free(&t);
    }
    llm_reader_close(r);
    return 0;
}
