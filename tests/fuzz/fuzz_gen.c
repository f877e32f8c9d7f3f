/* libFuzzer target for what llm-gen does with its files: a checkpoint (float
 * or quantized) and an adapter (--adapter), loaded, checked, attached, and
 * then run: a prompt of the adapter's virtual tokens, BOS and text through
 * the tokenizer, a few generated tokens decoded back to text, and the
 * prompt's log-likelihood (--eval); and the adapter folded into the
 * weights, as llm-quant --merge does.  The input is a 4-byte little-endian
 * length, that many bytes of checkpoint (an in-memory file, read as a path
 * like any other), then the adapter (none when empty).  The context is
 * 32 tokens at most, as with llm-gen --ctx 32: by default llm-gen sizes its
 * cache by the checkpoint's seq_len, and a short prompt exercises the same
 * weights and tokenizer. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "ckpt.h"
#include "fuzz_common.h"
#include "generate.h"
#include "infer.h"

enum { MAX_CTX = 32 };

static int emit(void *ctx, int seq, int32_t token)
{
    (void)seq;
    const llm_model *m = ctx;
    char piece[LLM_TOK_MAX_PIECE];
    if (token >= 0) (void)llm_tok_decode_next(&m->tok, -1, token, piece);
    return 0;
}

/* What llm-gen runs on a loaded (and maybe adapted) model. */
static void run(llm_model *m)
{
    llm_error err = {0};
    int ctx = m->cfg.seq_len < MAX_CTX ? m->cfg.seq_len : MAX_CTX;
    llm_infer s;
    if (llm_infer_init(&s, m, &(llm_infer_opts){.ctx = ctx}, &err) < 0) return;
    static const char text[] = "the cat sat \xc3\xa9t\xc3\xa9";
    int P = m->adapter ? m->adapter->cfg.n_virtual : 0;
    int32_t ids[MAX_CTX + sizeof text + 2];
    int64_t n = 0;
    for (int i = 0; i < P && n < MAX_CTX; i++) ids[n++] = m->cfg.vocab + i;
    ids[n++] = m->tok.bos;
    if (llm_tok_has_text(&m->tok, &err) == 0) {
        int64_t k = llm_tok_encode_text(&m->tok, text, sizeof text - 1, ids + n, &err);
        if (k > 0) n += k;
    } else {
        ids[n++] = 0;
    }
    if (n < ctx) {
        const int32_t *prompts[1] = {ids};
        llm_gen_opts go = {.max_new = 3, .stop = {m->tok.bos, m->tok.eos}};
        llm_gen_stats st;
        (void)llm_generate(&s, prompts, &n, 1, &go, emit, m, &st, &err);
        double nats;
        int64_t scored;
        if (!P && n >= 2) (void)llm_infer_nll(&s, ids, n, ctx / 2 > 0 ? ctx / 2 : 1, &nats, &scored, &err);
    }
    llm_infer_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t split;
    char path[64];
    if (!fuzz_split(&data, &size, &split)) return 0;
    int fd = fuzz_memfile(data, split, path, sizeof path);
    if (fd < 0) return 0;
    llm_error err = {0};
    llm_model m;
    if (llm_ckpt_load_model(path, &m, &err) == 0) {
        llm_adapter ad;
        int have_ad = size > split && llm_adapter_load_mem(data + split, size - split, "adapter", &ad, NULL, NULL, NULL, &err) == 0;
        if (!have_ad || llm_adapter_attach(&m, &ad, &err) == 0) {
            run(&m);
            llm_adapter_detach(&m);
            if (have_ad && !llm_model_quantized(&m)) (void)llm_adapter_merge(&m, &ad, &err); /* float models only */
        }
        llm_adapter_detach(&m);
        llm_model_free(&m);
        if (have_ad) llm_adapter_free(&ad);
    }
    close(fd);
    return 0;
}
