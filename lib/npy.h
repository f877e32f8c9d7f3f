/* npy — NumPy's .npy format: parse and write the header, so tensors move
 * between llmpipe streams and numpy.save / numpy.load files.
 *
 * A .npy file is the magic "\x93NUMPY", a version (1.0: 2-byte header length,
 * 2.0 and 3.0: 4-byte), a Python-literal dict {'descr': '<f4',
 * 'fortran_order': False, 'shape': (2, 3), } padded with spaces to a multiple
 * of 64 bytes and ended by '\n', then the raw C-order data.
 *
 *     llm_npy_header h;
 *     LLM_TRY(llm_npy_read_header(fd, "x.npy", &h, &err));   // fd now at the data
 *     // h.dtype, h.shape, h.nbytes; h.swap_bytes when the data is big-endian
 *     LLM_TRY(llm_npy_write_header(out_fd, "-", LLM_DTYPE_F32, &h.shape, &err));
 */
#ifndef LLM_NPY_H
#define LLM_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tensor.h"

/* Longest header accepted (numpy itself refuses much more than this). */
#define LLM_NPY_MAX_HEADER (1u << 20)

typedef struct llm_npy_header {
    int major, minor;     /* format version */
    llm_dtype dtype;      /* f32, f64, f16, i8, u8, i32 or i64 */
    llm_shape shape;      /* () is a scalar: ndim 0 */
    int swap_bytes;       /* 1 when the data is big-endian ('>') */
    size_t header_bytes;  /* magic + version + length + dict: where the data starts */
    uint64_t nbytes;      /* data bytes the shape needs */
} llm_npy_header;

/* Parses a header held in memory (buf starts at the magic).  Returns 0,
 * LLM_ERR_TRUNCATED when buf ends before the header does, or LLM_ERR_FORMAT
 * with a message saying what is wrong (Fortran order, an unsupported descr,
 * a malformed dict, ...). */
int llm_npy_parse_header(const void *buf, size_t len, llm_npy_header *h, llm_error *err);

/* Reads exactly the header from fd (a file or a pipe), leaving fd at the
 * first data byte.  label names the input in messages. */
int llm_npy_read_header(int fd, const char *label, llm_npy_header *h, llm_error *err);

/* Formats a header for dtype and shape (version 1.0, or 2.0 when the dict is
 * too long for 1.0) into buf; *len gets its size (a multiple of 64).  dtype
 * must be one numpy has (not bf16 or the 4-bit types). */
int llm_npy_format_header(llm_dtype dtype, const llm_shape *shape, char *buf, size_t cap,
                          size_t *len, llm_error *err);

/* Writes the header to fd. */
int llm_npy_write_header(int fd, const char *label, llm_dtype dtype, const llm_shape *shape,
                         llm_error *err);

/* Reverses the byte order of n elements of `width` bytes in place. */
void llm_npy_swap(void *data, size_t n, int width);

#endif
