/* libFuzzer target for the text files the tools read: a file of labelled
 * examples (llm-train --examples; llm-gen --classify reads its lines with
 * the same split and encoding) loaded into windows and drawn as batches, and
 * a training corpus (llm-train --data) tokenized, checked against the window
 * length and cut into training batches and held-out windows.  The first
 * input byte picks the tokenizer (bit 0: a small BPE vocabulary with byte
 * fallback, else bytes), the window length T = 2 + (bits 1-3) * 5 and
 * bit 4 a held-out fraction of 0.2; the rest is the file, read by path. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "examples.h"
#include "fuzz_common.h"
#include "rng.h"
#include "tok.h"

enum { BATCH = 3, MAX_T = 2 + 7 * 5 };

/* "<unk>", "<s>", "</s>", the 256 byte pieces "<0xNN>", then a few merges. */
static int make_bpe(llm_tok *t)
{
    static const char *const merges[] = {" t", "th", "he", " the", "at", " c", "ca", "cat", "\xc3\xa9"};
    enum { N_MERGES = sizeof merges / sizeof *merges, V = 3 + 256 + N_MERGES };
    static char bytes[256][8];
    const char *pieces[V];
    float scores[V];
    pieces[0] = "<unk>", pieces[1] = "<s>", pieces[2] = "</s>";
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        pieces[3 + i] = bytes[i];
    }
    for (int i = 0; i < N_MERGES; i++) pieces[3 + 256 + i] = merges[i];
    for (int i = 0; i < V; i++) scores[i] = i < 259 ? 0 : (float)-i;
    llm_error err = {0};
    return llm_tok_bpe(t, V, pieces, NULL, scores, 1, 2, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static llm_tok bpe, bytes;
    static int ready;
    if (!ready) {
        llm_tok_bytes(&bytes);
        if (make_bpe(&bpe) < 0) return 0;
        ready = 1;
    }
    if (size < 1) return 0;
    const llm_tok *tok = data[0] & 1 ? &bpe : &bytes;
    int T = 2 + ((data[0] >> 1) & 7) * 5;
    double val = data[0] & 16 ? 0.2 : 0;
    char path[64];
    int fd = fuzz_memfile(data + 1, size - 1, path, sizeof path);
    if (fd < 0) return 0;
    llm_error err = {0};
    llm_rng rng;
    llm_rng_seed(&rng, 1);
    int32_t in[BATCH * MAX_T], tg[BATCH * MAX_T];
    llm_examples ex;
    if (llm_examples_load(&ex, path, tok, T, val, &err) == 0) {
        llm_examples_batch(&ex, &rng, BATCH, in, tg);
        llm_examples_free(&ex);
    }
    llm_data d;
    const char *paths[1] = {path};
    if (llm_data_load(&d, paths, 1, tok, val, &err) == 0) {
        if (llm_data_check(&d, T, &err) == 0) {
            llm_data_train_batch(&d, &rng, BATCH, T, in, tg);
            for (int64_t w = 0; w < llm_data_val_windows(&d, T); w++) llm_data_val_window(&d, T, w, in, tg);
        }
        llm_data_free(&d);
    }
    close(fd);
    return 0;
}
