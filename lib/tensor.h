/* tensor — element types, shapes, sizes and in-memory tensors.
 *
 * Every tensor in llmpipe is a dtype, a shape of up to LLM_MAX_DIMS dimensions
 * (row-major, last dimension fastest) and a little-endian payload.  The dtype
 * codes are part of the stream format: they are never renumbered or reused.
 * Sizes are computed with overflow checks, so a shape read from a file can be
 * validated before anything is allocated.
 *
 *     llm_shape s = llm_shape_make(2, (int64_t[]){4, 64});
 *     uint64_t bytes;
 *     LLM_TRY(llm_payload_bytes(LLM_DTYPE_BF16, &s, &bytes, &err));   // 512
 *     llm_tensor t;
 *     LLM_TRY(llm_reader_read_tensor(r, &t, &err));   // stream.h: a record, whole
 *     llm_tensor_free(&t);
 */
#ifndef LLM_TENSOR_H
#define LLM_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define LLM_MAX_DIMS 8
/* No dimension may exceed 2^48 and no payload 2^62 bytes: far beyond any real
 * tensor, small enough that products of checked values never overflow. */
#define LLM_MAX_DIM (INT64_C(1) << 48)
#define LLM_MAX_BYTES (UINT64_C(1) << 62)

/* Stable codes, written to streams as one byte. */
typedef enum llm_dtype {
    LLM_DTYPE_F32 = 0,
    LLM_DTYPE_F16 = 1,  /* IEEE 754 binary16 */
    LLM_DTYPE_BF16 = 2, /* bfloat16: the high half of an f32 */
    LLM_DTYPE_I8 = 3,
    LLM_DTYPE_U8 = 4,
    LLM_DTYPE_I32 = 5,
    LLM_DTYPE_I64 = 6,
    LLM_DTYPE_I4 = 7,   /* signed 4-bit, two per byte, low nibble first */
    LLM_DTYPE_U4 = 8,   /* unsigned 4-bit, two per byte, low nibble first */
    LLM_DTYPE_F64 = 9,
    LLM_DTYPE_COUNT
} llm_dtype;

typedef struct llm_shape {
    int ndim;                     /* 0 (a scalar) .. LLM_MAX_DIMS */
    int64_t dim[LLM_MAX_DIMS];    /* each 0 .. LLM_MAX_DIM */
} llm_shape;

/* A tensor held in memory.  data is owned when `owned` is set. */
typedef struct llm_tensor {
    llm_dtype dtype;
    llm_shape shape;
    void *data;   /* llm_payload_bytes(dtype, &shape) bytes */
    int owned;
} llm_tensor;

/* "f32", "bf16", ... or NULL for a code that is not a dtype. */
const char *llm_dtype_name(int dtype);
/* Bits per element: 4, 8, 16, 32 or 64; 0 for an invalid code. */
int llm_dtype_bits(int dtype);
/* 1 for f32, f16, bf16 and f64. */
int llm_dtype_is_float(int dtype);

/* A shape from ndim sizes (ndim <= LLM_MAX_DIMS; llm_payload_bytes checks it). */
llm_shape llm_shape_make(int ndim, const int64_t *dims);
/* Number of elements, or -1 when the shape is invalid. */
int64_t llm_shape_numel(const llm_shape *s);
/* Writes "[4,64]" into buf (always terminated); returns buf. */
char *llm_shape_format(const llm_shape *s, char *buf, size_t size);

/* Payload bytes of a dtype and shape (4-bit types round up to whole bytes),
 * ndim and every dimension checked against the limits.  0 on success with
 * *nbytes set; LLM_ERR_FORMAT (no such dtype) or LLM_ERR_LIMIT otherwise. */
int llm_payload_bytes(int dtype, const llm_shape *s, uint64_t *nbytes, llm_error *err);

/* Frees owned data and clears t; t may be NULL. */
void llm_tensor_free(llm_tensor *t);

/* Scalar conversions (round to nearest even; NaN stays NaN). */
float llm_f16_to_f32(uint16_t h);
uint16_t llm_f32_to_f16(float f);
float llm_bf16_to_f32(uint16_t b);
uint16_t llm_f32_to_bf16(float f);

/* The index of the first of x[0..n-1] that is NaN or infinite, or -1 when
 * every one is finite: one vectorised pass, and a second only over a tensor
 * that has such a value, to find where. */
int64_t llm_f32_find_nonfinite(const float *x, int64_t n);

/* Converts the first n elements of a payload slice src (which starts on an
 * element boundary: for 4-bit types, the low nibble of its first byte) to
 * doubles.  Integers convert exactly up to 2^53. */
void llm_dtype_to_f64(int dtype, const void *src, size_t n, double *dst);

/* The dtype numpy can hold a dtype's values in without loss: bf16 -> f32,
 * i4 -> i8, u4 -> u8, any other dtype itself. */
llm_dtype llm_dtype_widened(llm_dtype dtype);
/* Converts the first n elements of src (starting on an element boundary) to
 * llm_dtype_widened(from) in dst. */
void llm_dtype_widen(llm_dtype from, const void *src, size_t n, void *dst);

#endif
