/* calib — INT8 calibration: bounded-memory histograms of |x| and the four
 * ways of choosing a clipping threshold (amax) from them.
 *
 * Activations arrive as a stream of records, several per tensor name and
 * interleaved with other names.  Each name keeps one histogram of |x| with a
 * fixed number of fine bins (LLM_CALIB_FINE per candidate bin) whose range is
 * a power of two above every |x| seen: when a larger value arrives the range
 * doubles (as often as needed) and pairs of bins merge, so the histogram is
 * exactly the one that would have been counted had the final range been
 * known from the start, and memory never grows with the data.  Running min,
 * max and |x| max come from the same pass.  The searches then work over
 * [0, max|x|], not over the power-of-two range: the candidate thresholds are
 * j * absmax / bins, and the fine bins, their values taken as spread evenly
 * across each, give the counts, errors and percentiles there.  From a
 * histogram, llm_calib_amax picks a threshold by max, percentile, MSE (the
 * int8 quantize-dequantize error) or entropy (TensorRT's KL method, as
 * TensorRT Model Optimizer computes it); llm-calib(1) states every rule
 * exactly.
 *
 *     llm_calib *c;
 *     TRY(llm_calib_create(&c, &(llm_calib_opts){.bins = 2048}, &err));
 *     TRY(llm_calib_add_stream(c, reader, &err));        // every record of a stream
 *     const llm_calib_entry *e = llm_calib_entry_at(c, 0);
 *     TRY(llm_calib_amax(&e->hist, LLM_CALIB_ENTROPY, 0, &amax, &err));
 *     llm_calib_free(c);
 */
#ifndef LLM_CALIB_H
#define LLM_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "stream.h"
#include "tensor.h"

#define LLM_CALIB_BINS 2048          /* default bin count: candidate thresholds over [0, absmax] */
#define LLM_CALIB_MIN_BINS 256       /* so the entropy method always has candidates */
#define LLM_CALIB_MAX_BINS (1 << 20) /* keeps |x| * fine / range exact in a double */
#define LLM_CALIB_FINE 32            /* counting bins per bin: [0, absmax] spans at least 16 */
#define LLM_CALIB_LEVELS 128         /* int8 levels on one side of zero */
#define LLM_CALIB_MAX_WIDTH (1 << 26) /* --per-channel: channels per tensor */

typedef enum llm_calib_method {
    LLM_CALIB_MAX = 0,
    LLM_CALIB_PERCENTILE,
    LLM_CALIB_MSE,
    LLM_CALIB_ENTROPY,
    LLM_CALIB_METHODS
} llm_calib_method;

/* "max", "percentile", "mse", "entropy"; NULL for another value. */
const char *llm_calib_method_name(int method);
/* The method named `name`, or -1. */
int llm_calib_method_from_name(const char *name);

/* A histogram of |x| counted in `fine` = LLM_CALIB_FINE * bins equal bins
 * over [0, range): fine bin j counts the values with
 * j <= |x| * fine / range < j + 1.  range is 0 while every value seen was
 * zero (they are all in fine bin 0); otherwise absmax >= range / 2, so
 * [0, absmax] spans at least fine / 2 fine bins.  The methods read it as a
 * density: the values of a fine bin spread evenly across it, those of the bin
 * holding absmax across [its lower edge, absmax]. */
typedef struct llm_calib_hist {
    int bins;         /* candidate thresholds j * absmax / bins, j = 1..bins */
    int fine;         /* counting bins, LLM_CALIB_FINE * bins */
    double range;     /* 0 or a power of two strictly above absmax */
    uint64_t *count;  /* [fine] */
    uint64_t total;   /* values counted */
    double absmax;    /* largest |x| */
    double min, max;  /* smallest and largest x; +inf and -inf while total is 0 */
} llm_calib_hist;

/* An empty histogram of `bins` bins (LLM_CALIB_MIN_BINS..LLM_CALIB_MAX_BINS):
 * LLM_CALIB_FINE * bins counts, 256 bytes per bin (512 KiB for 2048). */
int llm_calib_hist_init(llm_calib_hist *h, int bins, llm_error *err);
/* Frees the counts; h may be NULL. */
void llm_calib_hist_free(llm_calib_hist *h);
/* Counts x[0..n) (every one finite: the caller filters NaN and Inf). */
void llm_calib_hist_add(llm_calib_hist *h, const float *x, size_t n);

/* The number of candidate thresholds: h->bins, or 0 when no value is
 * non-zero. */
int llm_calib_hist_top(const llm_calib_hist *h);

/* The histogram over [0, absmax] in h->bins equal bins that the entropy
 * method compares: count[k] is the mass of the fine histogram's density in
 * [k, k + 1) * absmax / bins (the last bin includes absmax).  Each differs
 * from the exact count of the values by less than the counts of the two fine
 * bins holding its edges.  count has h->bins entries, owned by the caller;
 * all the values are in count[0] when absmax is 0. */
void llm_calib_hist_rebin(const llm_calib_hist *h, double *count);

/* The threshold of `method` for the values in h, in the units of x, never
 * above h->absmax; percentile (for LLM_CALIB_PERCENTILE) is in (0, 100].
 * An empty or all-zero histogram gives 0, one repeated value gives |value|.
 * 0, LLM_ERR_ARG, or LLM_ERR_NOMEM for the search's scratch (up to 24
 * bytes per fine bin). */
int llm_calib_amax(const llm_calib_hist *h, llm_calib_method method, double percentile, double *amax,
                   llm_error *err);

/* The curves the MSE and entropy methods minimise, for plotting: for each
 * candidate j = 1..llm_calib_hist_top(h), threshold t = j * absmax / bins,
 * mse[j - 1] is the mean squared int8 quantize-dequantize error with
 * threshold t (over the fine histogram's density) and kl[j - 1] is
 * KL(P || Q) for candidate j over llm_calib_hist_rebin's bins (NAN for
 * j < LLM_CALIB_LEVELS, INFINITY when the threshold leaves no values below
 * it, or clips values onto an empty bin).  Either array may be NULL.  Both
 * have llm_calib_hist_top(h) entries, owned by the caller.  0 or
 * LLM_ERR_NOMEM. */
int llm_calib_curves(const llm_calib_hist *h, double *mse, double *kl, llm_error *err);

/* ---- aggregation of a stream, per tensor name ---- */

typedef struct llm_calib_opts {
    int bins;           /* 0: LLM_CALIB_BINS */
    int per_channel;    /* keep the max |x| of each channel (last dimension) */
    int skip_nonfinite; /* count NaN and Inf and go on, instead of failing */
    unsigned report;    /* bit mask of methods (1 << llm_calib_method) to snapshot as records arrive */
    double percentile;  /* for the report's percentile method; 0: 99.99 */
} llm_calib_opts;

#define LLM_CALIB_MAX_SNAPSHOTS 48

/* The methods' thresholds after the first `records` records of a name. */
typedef struct llm_calib_snapshot {
    uint64_t records;
    double amax[LLM_CALIB_METHODS]; /* the methods in opts.report; others 0 */
} llm_calib_snapshot;

typedef struct llm_calib_entry {
    char *name;
    llm_calib_hist hist;
    uint64_t records;       /* records counted */
    uint64_t records_begun; /* records whose reading has begun (one may be in flight) */
    uint64_t nonfinite;     /* NaN and Inf values skipped (skip_nonfinite) */
    int64_t width;          /* last dimension of the first record; -1 before one with a dimension */
    float *channel_absmax;  /* [width], per_channel only, from the first record with values (NULL before) */
    int n_snapshots;
    llm_calib_snapshot snapshots[LLM_CALIB_MAX_SNAPSHOTS]; /* at 32, 64, 128, ... records */
} llm_calib_entry;

typedef struct llm_calib llm_calib;

/* A new, empty aggregation; *out is owned by the caller. */
int llm_calib_create(llm_calib **out, const llm_calib_opts *opts, llm_error *err);
/* Frees c; c may be NULL. */
void llm_calib_free(llm_calib *c);

/* Adds every tensor record of r (metadata records are skipped) to the entry
 * of its name.  Records must hold floating-point values (f32, f16, bf16,
 * f64); NaN or Inf fails with the name, record and element unless
 * skip_nonfinite.  With --per-channel every record of a name must share its
 * last dimension.
 * 0 or a negative LLM_ERR_*; the entries keep what was added before an error. */
int llm_calib_add_stream(llm_calib *c, llm_reader *r, llm_error *err);

/* Adds one tensor held in memory (dtype, shape, payload) as one record of name. */
int llm_calib_add(llm_calib *c, const char *name, llm_dtype dtype, const llm_shape *shape,
                  const void *data, llm_error *err);

/* Names seen, in order of first appearance, and the entry of each. */
int llm_calib_count(const llm_calib *c);
const llm_calib_entry *llm_calib_entry_at(const llm_calib *c, int i);

/* The thresholds of every entry by each of the n methods in methods[]:
 * amax[i * LLM_CALIB_METHODS + k] for entry i and methods[k], the entries
 * shared among `threads` threads (the MSE and entropy searches cost
 * milliseconds per tensor).  0, or the first failing entry's error with its
 * name in front. */
int llm_calib_amax_all(const llm_calib *c, const int *methods, int n, double percentile, int threads,
                       double *amax, llm_error *err);

/* ---- reading a calibration table (llm-calib's output) ----
 *
 * The records llm-quant uses, per input N (llm-calib(1), llm-tensor(5)):
 * N.scale f32 [M], the int8 step of each of the M methods listed in its
 * attribute methods= (comma-separated, in order), and N.absmax f32 [width],
 * the per-channel max |x| (--per-channel).  Other records are skipped.
 *
 *     llm_calib_table t;
 *     TRY(llm_calib_table_read(&t, "table.llmt", &err));
 *     const llm_calib_table_entry *a = llm_calib_table_find(&t, "layers.0.attn.wq.in", "absmax");
 *     TRY(llm_calib_table_scale(&t, "layers.0.attn.wq.in", "mse", &step, &err));
 *     llm_calib_table_free(&t);
 */

typedef struct llm_calib_table_entry {
    char *name;    /* "N.scale" or "N.absmax" */
    float *data;   /* [n], each finite and >= 0 */
    int64_t n;
    char *methods; /* the methods= attribute, or NULL */
} llm_calib_table_entry;

typedef struct llm_calib_table {
    char *path;                 /* as given to llm_calib_table_read, for messages */
    llm_calib_table_entry *e;   /* [n], in stream order */
    int n;
} llm_calib_table;

/* Reads every N.scale and N.absmax record of the stream at path ("-":
 * stdin) into *t (owned by the caller: llm_calib_table_free, also after an
 * error).  Each must be a 1-D f32 tensor of finite values >= 0.
 * 0 or a negative LLM_ERR_* (messages name the file and the record). */
int llm_calib_table_read(llm_calib_table *t, const char *path, llm_error *err);
/* Frees the entries; t may be NULL. */
void llm_calib_table_free(llm_calib_table *t);

/* The entry named "<input>.<what>" (what: "scale" or "absmax"), or NULL. */
const llm_calib_table_entry *llm_calib_table_find(const llm_calib_table *t, const char *input,
                                                  const char *what);

/* The position of method in a comma-separated list (may be NULL), or -1. */
int llm_calib_table_method_index(const char *list, const char *method);

/* *scale = input's step by method (NULL: "entropy" if listed, else the
 * first), from its N.scale record; a step of 0 (an all-zero input) gives 1.
 * LLM_ERR_FORMAT when the record is missing, lacks the named method, or holds
 * fewer values than its methods= position. */
int llm_calib_table_scale(const llm_calib_table *t, const char *input, const char *method, float *scale,
                          llm_error *err);

#endif
