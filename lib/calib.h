/* calib — INT8 calibration of an activation stream, per tensor name.
 *
 * Activations arrive as a stream of records, several per tensor name and
 * interleaved with other names (llm-gen --dump-acts).  Each name gets an
 * entry: one histogram of |x| (calib_hist) fed chunk by chunk, so memory
 * never grows with the data; with per_channel the max |x| of each channel
 * (the last dimension); with report, the thresholds (calib_amax) after 32,
 * 64, 128, ... records, to judge whether the calibration set was large
 * enough.  llm_calib_amax_all then gives every entry's thresholds, and
 * calib_table writes them as llm-calib's table.
 *
 *     llm_calib *c;
 *     LLM_TRY(llm_calib_create(&c, &(llm_calib_opts){.bins = 2048}, &err));
 *     LLM_TRY(llm_calib_add_stream(c, reader, &err));        // every record of a stream
 *     const llm_calib_entry *e = llm_calib_entry_at(c, 0);
 *     LLM_TRY(llm_calib_amax(&e->hist, LLM_CALIB_ENTROPY, 0, &amax, &err));
 *     llm_calib_free(c);
 */
#ifndef LLM_CALIB_H
#define LLM_CALIB_H

#include <stdint.h>

#include "calib_amax.h"
#include "calib_hist.h"
#include "err.h"
#include "stream.h"

#define LLM_CALIB_MAX_WIDTH (1 << 26) /* --per-channel: channels per tensor */
#define LLM_CALIB_MAX_SNAPSHOTS 48

typedef struct llm_calib_opts {
    int bins;           /* 0: LLM_CALIB_BINS */
    int per_channel;    /* keep the max |x| of each channel (last dimension) */
    int skip_nonfinite; /* count NaN and Inf and go on, instead of failing */
    unsigned report;    /* bit mask of methods (1 << llm_calib_method) to snapshot as records arrive */
    double percentile;  /* for the percentile method (snapshots, llm_calib_amax_all); 0: 99.99 */
} llm_calib_opts;

/* The methods' thresholds after the first `records` records of a name. */
typedef struct llm_calib_snapshot {
    uint64_t records;
    double amax[LLM_CALIB_METHODS]; /* the methods in opts.report; others 0 */
} llm_calib_snapshot;

typedef struct llm_calib_entry {
    char *name;
    llm_calib_hist hist;
    uint64_t records;       /* records counted */
    uint64_t records_begun; /* records begun: also those an error stopped */
    uint64_t nonfinite;     /* NaN and Inf values skipped (skip_nonfinite) */
    int64_t width;          /* last dimension of the first record; -1 before one with a dimension */
    float *channel_absmax;  /* [width], per_channel only, from the first record with values (NULL before) */
    int n_snapshots;
    llm_calib_snapshot snapshots[LLM_CALIB_MAX_SNAPSHOTS]; /* at 32, 64, 128, ... records */
} llm_calib_entry;

typedef struct llm_calib llm_calib;

/* A new, empty aggregation; *out is owned by the caller.  0, LLM_ERR_ARG
 * (bins or percentile out of range) or LLM_ERR_NOMEM. */
int llm_calib_create(llm_calib **out, const llm_calib_opts *opts, llm_error *err);
/* Frees c; c may be NULL. */
void llm_calib_free(llm_calib *c);
/* The options c was created with, the defaults filled in. */
const llm_calib_opts *llm_calib_options(const llm_calib *c);

/* Adds every tensor record of r (metadata records are skipped) to the entry
 * of its name.  Records must hold floating-point values (f32, f16, bf16,
 * f64); NaN or Inf fails with the name, record and element unless
 * skip_nonfinite.  With per_channel every record of a name must share its
 * last dimension.
 * 0 or a negative LLM_ERR_*; the entries keep what was added before an error. */
int llm_calib_add_stream(llm_calib *c, llm_reader *r, llm_error *err);

/* Names seen, in order of first appearance, and the entry of each (NULL
 * when i is out of range). */
int llm_calib_count(const llm_calib *c);
const llm_calib_entry *llm_calib_entry_at(const llm_calib *c, int i);

/* The thresholds of every entry by each of the n methods in methods[], with
 * the options' percentile: amax[i * LLM_CALIB_METHODS + k] for entry i and
 * methods[k] (amax has llm_calib_count(c) * LLM_CALIB_METHODS entries, owned
 * by the caller), the entries shared among `threads` threads (the MSE and
 * entropy searches cost milliseconds per tensor).  0, or the first failing
 * entry's error with its name in front. */
int llm_calib_amax_all(const llm_calib *c, const int *methods, int n, int threads, double *amax, llm_error *err);

#endif
