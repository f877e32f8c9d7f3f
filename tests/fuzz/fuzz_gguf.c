/* libFuzzer target for the GGUF reader and the import behind llm-tensor
 * import-gguf: the input, made a file, is parsed, every tensor read and
 * decoded where its type is, its vocabulary read as a vocabulary-only file
 * (gguf_tok) and, when it is one, a text encoded and decoded with it, and
 * the model imported into a stream written to /dev/null. */
#include <fcntl.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "gguf.h"
#include "gguf_blocks.h"
#include "gguf_model.h"
#include "gguf_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    llm_error err = {0};
    llm_gguf g;
    if (llm_gguf_open(&g, path, &err) == 0) {
        for (int64_t i = 0; i < g.n_tensors; i++) {
            const llm_gguf_tensor *t = &g.tensors[i];
            if (t->nbytes > (1u << 20) || !llm_gguf_decodable(t->type)) continue; /* the file holds its bytes */
            void *raw = malloc(t->nbytes + 1);
            float *f = malloc((size_t)t->numel * sizeof *f + 1);
            if (raw && f && llm_gguf_read(&g, t, 0, raw, t->nbytes, &err) == 0) llm_gguf_decode(t->type, raw, t->numel, f);
            free(raw);
            free(f);
        }
        llm_tok tok;
        char why[200];
        if (llm_gguf_tok_import(&g, 0, &tok, why, sizeof why, &err) == 0) {
            static const char text[] = "Hi  there,\n\xe2\x96\x81 caf\xc3\xa9 \xff 12345 <s>";
            int32_t ids[3 * sizeof text + 3];
            char piece[LLM_TOK_MAX_PIECE];
            int64_t n = llm_tok_has_text(&tok, NULL) == 0 ? llm_tok_encode_text(&tok, text, sizeof text - 1, ids, NULL) : 0;
            for (int64_t i = 0; i < n; i++) llm_tok_decode_next(&tok, i ? ids[i - 1] : -1, ids[i], piece);
            llm_tok_free(&tok);
        }
        int out = open("/dev/null", O_WRONLY);
        llm_writer *w;
        if (out >= 0 && llm_writer_open_fd(&w, out, "null", NULL, &err) == 0) {
            if (llm_gguf_import(&g, w, NULL, NULL, &err) == 0) llm_writer_close(w, &err);
            else llm_writer_abort(w);
        }
        if (out >= 0) close(out);
        llm_gguf_close(&g);
    }
    close(fd);
    return 0;
}
