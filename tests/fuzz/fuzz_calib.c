/* libFuzzer target for what llm-calib does with its input: every tensor
 * record of an activation stream counted into per-name histograms (with
 * --per-channel's channel maxima, or --skip-nonfinite), then every method's
 * threshold for every name, and one name's MSE and KL curves (--curve).  The first
 * input byte picks the options: bit 0 --per-channel, bit 1 --skip-nonfinite,
 * bit 2 --report's snapshots, bit 3 --bins 300 instead of 256 (few bins keep
 * the searches fast: at 2048 one input takes seconds).  The rest is the
 * stream. */
#include <stdint.h>
#include <stdlib.h>

#include "calib.h"
#include "stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned o = data[0];
    llm_error err = {0};
    llm_calib *c;
    llm_calib_opts co = {.bins = o & 8 ? 300 : LLM_CALIB_MIN_BINS, .per_channel = o & 1,
                         .skip_nonfinite = (o >> 1) & 1,
                         .report = o & 4 ? (1u << LLM_CALIB_METHODS) - 1 : 0};
    if (llm_calib_create(&c, &co, &err) < 0) return 0;
    llm_reader *r;
    if (llm_reader_open_mem(&r, data + 1, size - 1, "fuzz", &err) == 0) {
        int rc = llm_calib_add_stream(c, r, &err);
        llm_reader_close(r);
        int n = llm_calib_count(c);
        static const int methods[LLM_CALIB_METHODS] = {LLM_CALIB_MAX, LLM_CALIB_PERCENTILE, LLM_CALIB_MSE,
                                                       LLM_CALIB_ENTROPY};
        double *amax = malloc(((size_t)n + 1) * LLM_CALIB_METHODS * sizeof *amax);
        if (rc == 0 && amax) (void)llm_calib_amax_all(c, methods, LLM_CALIB_METHODS, 1, amax, &err);
        free(amax);
        if (rc == 0 && n > 0) { /* --curve NAME: one name's curves */
            const llm_calib_hist *h = &llm_calib_entry_at(c, n - 1)->hist;
            int top = llm_calib_hist_top(h);
            double *mse = malloc(((size_t)top + 1) * sizeof *mse), *kl = malloc(((size_t)top + 1) * sizeof *kl);
            if (mse && kl) (void)llm_calib_amax_curves(h, mse, kl, &err);
            free(mse), free(kl);
        }
    }
    llm_calib_free(c);
    return 0;
}
