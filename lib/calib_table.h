/* calib_table — the calibration table: llm-calib writes it, llm-quant reads
 * it (llm-calib(1), llm-tensor(5)).
 *
 * For each input N (a tensor name of the activation stream), in the order
 * the names first appeared:
 *   N.amax  f32 [M]  the threshold of each of the M methods listed in its
 *                    attribute methods= (comma-separated, in order), with
 *                    count= (values), records=, bins=, percentile= (when the
 *                    percentile method is listed) and nonfinite= (values
 *                    skipped, when skip_nonfinite);
 *   N.scale f32 [M]  the int8 step of each method, amax / 127, the same
 *                    attributes;
 *   N.absmax f32 [width]  the per-channel max |x| (per_channel), with count=
 *                    and records=.
 * The reader keeps the N.scale and N.absmax records and skips the others.
 *
 *     LLM_TRY(llm_calib_table_write(w, c, methods, n, amax, &err));   // llm-calib
 *     llm_calib_table t;
 *     LLM_TRY(llm_calib_table_read(&t, "table.llmt", &err));           // llm-quant
 *     const llm_calib_table_entry *a = llm_calib_table_find(&t, "layers.0.attn.wq.in", "absmax");
 *     LLM_TRY(llm_calib_table_scale(&t, "layers.0.attn.wq.in", "mse", &step, &err));
 *     llm_calib_table_free(&t);
 */
#ifndef LLM_CALIB_TABLE_H
#define LLM_CALIB_TABLE_H

#include <stdint.h>

#include "calib.h"
#include "err.h"
#include "stream.h"

/* Writes the records of every entry of c to w: amax holds the thresholds
 * of the n methods in methods[] (llm_calib_method values, written in that
 * order) as llm_calib_amax_all leaves them; bins=, percentile= and
 * nonfinite= come from c's options, N.absmax from its per-channel maxima.
 * The caller opens w and closes it (or aborts it after an error).
 * 0 or the writer's error. */
int llm_calib_table_write(llm_writer *w, const llm_calib *c, const int *methods, int n, const double *amax,
                          llm_error *err);

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

/* *scale = input's step by method (NULL: "entropy" if listed, else the
 * first), from its N.scale record; a step of 0 (an all-zero input) gives 1.
 * LLM_ERR_FORMAT when the record is missing, lacks the named method, or holds
 * fewer values than its methods= position. */
int llm_calib_table_scale(const llm_calib_table *t, const char *input, const char *method, float *scale,
                          llm_error *err);

#endif
