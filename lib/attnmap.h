/* attnmap — attention-probability records, read one query row at a time.
 *
 * llm-gen --dump-attn writes, per layer L, a record "layers.L.attn.probs" of
 * shape [H, T, T] (H heads; row i holds query position i's probabilities over
 * the key positions, zero above the diagonal).  The heads follow one another
 * in the payload, so a reader that takes rows in order holds one chunk of
 * rows, never the layer.  Every value is checked: NaN or infinity is an error
 * naming head, row and column; a row whose sum is off 1 by more than
 * LLM_ATTNMAP_SUM_TOL is counted (a warning for the caller to give).
 *
 *     llm_attnmap m;  const double *p;  int64_t h, i;
 *     LLM_TRY(llm_attnmap_open(&m, reader, rec, "attn.llmt", &err));
 *     while ((rc = llm_attnmap_next(&m, &p, &h, &i, &err)) > 0)
 *         use(h, i, p);                       // p[0..T): row i of head h
 *     llm_attnmap_close(&m);                  // rc < 0: err says why
 */
#ifndef LLM_ATTNMAP_H
#define LLM_ATTNMAP_H

#include <stdint.h>

#include "stream.h"

#define LLM_ATTNMAP_SUM_TOL 1e-3 /* |row sum - 1| beyond this is counted */

/* The layer L of a record named "layers.L.attn.probs", or -1 for any other name. */
int llm_attnmap_layer(const char *name);

/* Checks that rec is a float tensor of shape [H, T, T] with H, T >= 1 and
 * sets *heads and *T.  0 or LLM_ERR_FORMAT. */
int llm_attnmap_shape(const llm_record *rec, int64_t *heads, int64_t *T, llm_error *err);

typedef struct llm_attnmap {
    llm_reader *r;
    char label[1200];       /* "FILE: NAME", for messages */
    llm_dtype dtype;
    int64_t heads, T;       /* H, T */
    int64_t next;           /* rows handed out so far (over all heads) */
    int64_t chunk_rows;     /* rows per read */
    int64_t have, used;     /* rows in the buffer, rows handed out of it */
    unsigned char *raw;     /* [chunk_rows * T] elements as stored */
    double *rows;           /* [chunk_rows][T] as doubles */
    int64_t bad_rows;       /* rows whose sum is off 1 */
    int64_t worst_head, worst_row;
    double worst_sum;       /* the sum furthest from 1 */
} llm_attnmap;

/* Starts reading the payload of rec, the current record of r (checked with
 * llm_attnmap_shape); label names the input in messages.  0 or < 0. */
int llm_attnmap_open(llm_attnmap *m, llm_reader *r, const llm_record *rec, const char *label,
                     llm_error *err);
/* The next row: *row points at T doubles valid until the next call; *head and
 * *i say which.  1, 0 after the last row of the last head, or < 0. */
int llm_attnmap_next(llm_attnmap *m, const double **row, int64_t *head, int64_t *i, llm_error *err);
/* Frees the buffers (the reader is the caller's). */
void llm_attnmap_close(llm_attnmap *m);

#endif
