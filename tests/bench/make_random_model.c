/* make_random_model — a random-weight checkpoint of a given Llama shape, for
 * the decode benchmark (tests/bench/decode.sh).
 *
 *   usage: make_random_model OUT.llmt DIM HIDDEN LAYERS HEADS VOCAB SEQ [SEED]
 *
 * Weights from llm_model_init (N(0, 0.02), output projections scaled down),
 * n_kv_heads = heads, the classifier tied to the embedding (as llama2.c's
 * stories15M / stories110M are: its export writes one shared matrix), and a
 * tokenizer without text (ids only, BOS 1, EOS 2 as in llama2.c): drive it
 * with llm-gen --ids.  Saved model-only with llm_ckpt_save.  Prints one line:
 *
 *   params=15191712 matrix_params=15191712 weight_bytes=60766848
 *
 * matrix_params: the weights a decode step streams, L (4 D^2 + 3 D F) + V D
 * (q, k, v, o, w1, w2, w3 and the tied classifier, counted once; the norm
 * gains are vectors and the embedding lookup reads one row); weight_bytes =
 * 4 x matrix_params (fp32).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "ckpt.h"
#include "model.h"
#include "tok.h"

static int arg(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > (1L << 24)) {
        fprintf(stderr, "make_random_model: bad %s '%s'\n", what, s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    if (argc < 8 || argc > 9) {
        fprintf(stderr, "usage: make_random_model OUT.llmt DIM HIDDEN LAYERS HEADS VOCAB SEQ [SEED]\n");
        return 2;
    }
    llm_config cfg = {
        .dim = arg(argv[2], "dim"), .hidden = arg(argv[3], "hidden"),
        .n_layers = arg(argv[4], "layers"), .n_heads = arg(argv[5], "heads"),
        .vocab = arg(argv[6], "vocab"), .seq_len = arg(argv[7], "seq"),
        .tie = 1, .window = 0, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
    };
    cfg.n_kv_heads = cfg.n_heads;
    uint64_t seed = argc > 8 ? (uint64_t)arg(argv[8], "seed") : 1;
    llm_error err = {0};
    llm_model m;
    if (llm_model_init(&m, &cfg, seed, &err) < 0) {
        fprintf(stderr, "make_random_model: %s\n", err.msg);
        return 1;
    }
    llm_tok_free(&m.tok);
    if (llm_tok_ids(&m.tok, cfg.vocab, cfg.vocab > 2 ? 1 : -1, cfg.vocab > 2 ? 2 : -1, &err) < 0 ||
        llm_ckpt_save(argv[1], &m, NULL, NULL, &err) < 0) {
        fprintf(stderr, "make_random_model: %s: %s\n", argv[1], err.msg);
        llm_model_free(&m);
        return 1;
    }
    int64_t D = cfg.dim, F = cfg.hidden, L = cfg.n_layers, V = cfg.vocab;
    int64_t E = D / cfg.n_heads, K = cfg.n_kv_heads;
    int64_t mat = L * (D * D + 2 * D * K * E + D * D + 3 * D * F) + V * D;
    printf("params=%" PRId64 " matrix_params=%" PRId64 " weight_bytes=%" PRId64 "\n", m.n_params, mat,
           4 * mat);
    llm_model_free(&m);
    return 0;
}
