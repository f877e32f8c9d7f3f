/* attnmap — name, shape and row-by-row reading of layers.L.attn.probs records. */
#include "attnmap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (1u << 20) /* payload bytes read at a time, at least one row */

int llm_attnmap_layer(const char *name)
{
    if (strncmp(name, "layers.", 7) != 0) return -1;
    const char *p = name + 7;
    long layer = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 9; p++, digits++) layer = layer * 10 + (*p - '0');
    if (digits == 0 || (digits > 1 && name[7] == '0')) return -1;
    return strcmp(p, ".attn.probs") == 0 ? (int)layer : -1;
}

int llm_attnmap_shape(const llm_record *rec, int64_t *heads, int64_t *T, llm_error *err)
{
    char shape[128];
    if (rec->kind != LLM_RECORD_TENSOR || !llm_dtype_is_float(rec->dtype))
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: %s, not floating-point probabilities", rec->name,
                             rec->kind == LLM_RECORD_TENSOR ? llm_dtype_name(rec->dtype) : "a metadata record");
    const llm_shape *s = &rec->shape;
    if (s->ndim != 3 || s->dim[1] != s->dim[2] || s->dim[0] < 1 || s->dim[1] < 1)
        return llm_error_set(err, LLM_ERR_FORMAT, "%s: shape %s is not [heads, T, T]", rec->name,
                             llm_shape_format(s, shape, sizeof shape));
    *heads = s->dim[0];
    *T = s->dim[1];
    return 0;
}

int llm_attnmap_open(llm_attnmap *m, llm_reader *r, const llm_record *rec, const char *label,
                     llm_error *err)
{
    memset(m, 0, sizeof *m);
    snprintf(m->label, sizeof m->label, "%s: %s", label, rec->name);
    int rc = llm_attnmap_shape(rec, &m->heads, &m->T, err);
    if (rc < 0) return llm_error_prefix(err, "%s", label);
    m->r = r;
    m->dtype = rec->dtype;
    size_t row_bytes = (size_t)m->T * (size_t)(llm_dtype_bits(m->dtype) / 8);
    m->chunk_rows = CHUNK_BYTES / row_bytes ? (int64_t)(CHUNK_BYTES / row_bytes) : 1;
    if (m->chunk_rows > m->heads * m->T) m->chunk_rows = m->heads * m->T;
    m->raw = malloc((size_t)m->chunk_rows * row_bytes);
    m->rows = malloc((size_t)m->chunk_rows * (size_t)m->T * sizeof *m->rows);
    if (!m->raw || !m->rows) {
        llm_attnmap_close(m);
        return llm_error_set(err, LLM_ERR_NOMEM, "%s: out of memory for rows of %lld", m->label,
                             (long long)m->T);
    }
    return 0;
}

int llm_attnmap_next(llm_attnmap *m, const double **row, int64_t *head, int64_t *i, llm_error *err)
{
    int64_t total = m->heads * m->T;
    if (m->next == total) return 0;
    if (m->used == m->have) { /* refill */
        int64_t want = total - m->next < m->chunk_rows ? total - m->next : m->chunk_rows;
        size_t bytes = (size_t)want * (size_t)m->T * (size_t)(llm_dtype_bits(m->dtype) / 8);
        int64_t got = llm_reader_read(m->r, m->raw, bytes, err);
        if (got < 0) return (int)got;
        if ((size_t)got != bytes)
            return llm_error_set(err, LLM_ERR_TRUNCATED, "%s: payload ends early", m->label);
        llm_dtype_to_f64(m->dtype, m->raw, (size_t)want * (size_t)m->T, m->rows);
        m->have = want;
        m->used = 0;
    }
    const double *p = m->rows + (size_t)m->used * (size_t)m->T;
    int64_t h = m->next / m->T, q = m->next % m->T;
    double sum = 0;
    for (int64_t j = 0; j < m->T; j++) {
        if (!isfinite(p[j]))
            return llm_error_set(err, LLM_ERR_FORMAT, "%s: head %lld row %lld column %lld is %s", m->label,
                                 (long long)h, (long long)q, (long long)j, isnan(p[j]) ? "NaN" : "infinite");
        sum += p[j];
    }
    if (fabs(sum - 1) > LLM_ATTNMAP_SUM_TOL) {
        if (m->bad_rows == 0 || fabs(sum - 1) > fabs(m->worst_sum - 1))
            m->worst_head = h, m->worst_row = q, m->worst_sum = sum;
        m->bad_rows++;
    }
    m->used++;
    m->next++;
    *row = p;
    *head = h;
    *i = q;
    return 1;
}

void llm_attnmap_close(llm_attnmap *m)
{
    free(m->raw);
    free(m->rows);
    m->raw = NULL;
    m->rows = NULL;
}
