/* attn_stream — writes a synthetic attention stream for the llm-attnviz
 * benchmark: layers.L.attn.probs [H, T, T] for L = 0..LAYERS-1, raw
 * (uncompressed) to stdout, a row at a time, so the writer itself stays small.
 *
 *   usage: attn_stream HEADS T [LAYERS]
 *
 * Head h's row i is causal: p_ij proportional to exp(-(i - j) / (h + 1)) for
 * j <= i, plus a sink of weight 1 on token 0 (a recency head of growing
 * width, like the heads of trained models), normalised to sum to 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "stream.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: attn_stream HEADS T [LAYERS]\n");
        return 2;
    }
    long H = atol(argv[1]), T = atol(argv[2]), L = argc > 3 ? atol(argv[3]) : 1;
    if (H < 1 || T < 1 || L < 1) return 2;
    llm_error err = {0};
    llm_writer *w;
    llm_writer_opts opts = {.raw = 1};
    float *row = malloc((size_t)T * sizeof *row);
    if (!row || llm_writer_open(&w, "-", &opts, &err) < 0) {
        fprintf(stderr, "attn_stream: %s\n", err.msg);
        return 1;
    }
    for (long l = 0; l < L; l++) {
        char name[64];
        snprintf(name, sizeof name, "layers.%ld.attn.probs", l);
        llm_record rec = {.kind = LLM_RECORD_TENSOR, .name = name, .dtype = LLM_DTYPE_F32,
                          .shape = llm_shape_make(3, (int64_t[]){H, T, T})};
        if (llm_writer_begin(w, &rec, &err) < 0) goto fail;
        for (long h = 0; h < H; h++)
            for (long i = 0; i < T; i++) {
                double sum = 0;
                for (long j = 0; j < T; j++) sum += row[j] = j <= i ? (float)(exp(-(double)(i - j) / (h + 1)) + (j == 0)) : 0;
                for (long j = 0; j < T; j++) row[j] = (float)(row[j] / sum);
                if (llm_writer_write(w, row, (size_t)T * sizeof *row, &err) < 0) goto fail;
            }
        if (llm_writer_end_record(w, &err) < 0) goto fail;
    }
    if (llm_writer_close(w, &err) < 0) goto fail;
    free(row);
    return 0;
fail:
    fprintf(stderr, "attn_stream: %s\n", err.msg);
    return 1;
}
