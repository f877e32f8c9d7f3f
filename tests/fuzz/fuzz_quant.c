/* libFuzzer target for llm-quant's inputs besides the checkpoint (that one
 * is fuzz_ckpt's): a calibration table (--calib, llm-calib's output: read,
 * checked against the model, smoothing and w8a8 steps taken from it) or an
 * activation stream (--acts, llm-gen --dump-acts: the Hessians GPTQ and the
 * report use), each followed by the quantization it feeds.  The model is a
 * fixed small one made here (dim 32, hidden 64, one layer, vocab 258, like
 * the seeds' checkpoint).  The first input byte picks what the rest is and
 * the options: bit 0 a table (else activations), bit 1 --smooth 0.5 (with a
 * table), bits 2-3 the scheme (int8, int4, w8a8, int4 asymmetric), bit 4
 * --method gptq (with activations), bit 5 --cls, bit 6 --calib-method mse. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "calib_table.h"
#include "fuzz_common.h"
#include "model.h"
#include "qmodel.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned opts = data[0];
    data++, size--;
    int table = opts & 1;
    static const llm_qscheme schemes[4] = {LLM_Q_INT8, LLM_Q_INT4, LLM_Q_W8A8, LLM_Q_INT4};
    llm_qscheme scheme = schemes[(opts >> 2) & 3];
    if (scheme == LLM_Q_W8A8 && !table) scheme = LLM_Q_INT8; /* w8a8 needs a table (a usage error) */
    llm_error err = {0};
    llm_model m;
    llm_config cfg = {.vocab = 258, .dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2, .hidden = 64,
                      .seq_len = 16, .tie = 1, .norm_eps = 1e-5f, .rope_theta = 10000};
    if (llm_model_init(&m, &cfg, 1, &err) < 0) return 0;
    llm_qmodel_opts qo = {.f = {.scheme = scheme, .group = 32, .sym = ((opts >> 2) & 3) != 3},
                          .gptq = !table && (opts & 16), .smooth = table && (opts & 2) ? 0.5f : 0,
                          .calib_method = opts & 64 ? "mse" : NULL, .cls = (opts >> 5) & 1,
                          .gptq_opts = {.damp = 0.01, .block = 128}};
    llm_qmodel q;
    llm_calib_table t = {0};
    int fd = -1;
    int rc = llm_qmodel_init(&q, &m, "fuzz", &qo, &err);
    if (rc == 0) rc = llm_qmodel_check_format(&q, &err);
    if (rc == 0 && table) { /* read by path, as llm-quant does */
        char path[64];
        fd = fuzz_memfile(data, size, path, sizeof path);
        rc = fd >= 0 ? 0 : -1;
        if (rc == 0) rc = llm_calib_table_read(&t, path, &err);
        if (rc == 0) rc = llm_qmodel_calibrate(&q, &t, &err);
    } else if (rc == 0) {
        llm_reader *r;
        rc = llm_reader_open_mem(&r, data, size, "fuzz", &err);
        if (rc == 0) rc = llm_qmodel_hessians(&q, r, "fuzz", &err);
        llm_reader_close(r);
    }
    if (rc == 0) (void)llm_qmodel_quantize(&q, NULL, NULL, &err);
    llm_calib_table_free(&t);
    llm_qmodel_free(&q);
    llm_model_free(&m);
    if (fd >= 0) close(fd);
    return 0;
}
