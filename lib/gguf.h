/* gguf — reading and writing GGUF files (versions 2 and 3), the format of
 * ggml and llama.cpp.
 *
 * A GGUF file is, little-endian:
 *     "GGUF"  u32 version  u64 n_tensors  u64 n_kv
 *     n_kv    times { string key, u32 value type, value }
 *     n_tensors times { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset }
 *     padding to the alignment, then the data: each tensor at data start + offset
 * where a string is u64 length + bytes (no NUL), a value is a scalar of its
 * type (bool: one byte), a string, or an array (u32 element type, u64 count,
 * the elements).  ne[0] is the fastest dimension: a [rows, cols] matrix of
 * ours has ne = {cols, rows}.  The alignment is general.alignment (u32, a
 * power of two) or 32; offsets are multiples of it.  A tensor's bytes are
 * (numel / block) * block bytes of its type (llm_gguf_type_size).
 *
 * The reader takes a regular file (a pipe cannot be read out of order): it
 * reads the header, metadata and tensor infos into memory, each length checked
 * against the bytes the file has left before anything is allocated for it,
 * and then reads tensor data on request.  It refuses, with one line naming the
 * file and what is wrong: version 1 and unknown versions, counts or lengths
 * beyond the file, unknown value or ggml types, nested arrays, duplicate keys
 * or tensor names, more than 4 dimensions, shapes whose product overflows, a
 * first dimension that is not a whole number of blocks, misaligned offsets,
 * tensors outside the file or overlapping one another.
 *
 *     llm_gguf g;
 *     LLM_TRY(llm_gguf_open(&g, "model.gguf", &err));
 *     const llm_gguf_kv *arch = llm_gguf_find(&g, "general.architecture");
 *     for (int64_t i = 0; i < g.n_tensors; i++)
 *         LLM_TRY(llm_gguf_read(&g, &g.tensors[i], 0, buf, g.tensors[i].nbytes, &err));
 *     llm_gguf_close(&g);
 *
 * The writer (llm_gguf_out) collects metadata and tensor infos, writes them,
 * then takes each tensor's data in any order, each at the next aligned offset
 * with the type it is given then; closing writes the header again with the
 * final types and offsets (so the output must be seekable).
 */
#ifndef LLM_GGUF_H
#define LLM_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

/* Metadata value types (the file's codes). */
enum llm_gguf_vtype {
    LLM_GGUF_U8 = 0, LLM_GGUF_I8 = 1, LLM_GGUF_U16 = 2, LLM_GGUF_I16 = 3, LLM_GGUF_U32 = 4,
    LLM_GGUF_I32 = 5, LLM_GGUF_F32 = 6, LLM_GGUF_BOOL = 7, LLM_GGUF_STRING = 8, LLM_GGUF_ARRAY = 9,
    LLM_GGUF_U64 = 10, LLM_GGUF_I64 = 11, LLM_GGUF_F64 = 12, LLM_GGUF_VTYPES
};

/* ggml tensor types this library decodes (the file's codes); others are
 * listed by name (llm_gguf_type_name) but not decoded. */
enum llm_ggml_type {
    LLM_GGML_F32 = 0, LLM_GGML_F16 = 1, LLM_GGML_Q4_0 = 2, LLM_GGML_Q4_1 = 3, LLM_GGML_Q8_0 = 8,
    LLM_GGML_Q2_K = 10, LLM_GGML_Q3_K = 11, LLM_GGML_Q4_K = 12, LLM_GGML_Q5_K = 13, LLM_GGML_Q6_K = 14,
    LLM_GGML_BF16 = 30,
};

#define LLM_GGUF_MAX_DIMS 4
#define LLM_GGUF_DEFAULT_ALIGNMENT 32
#define LLM_GGUF_MAX_NAME 1024 /* bytes in a tensor name */
#define LLM_GGUF_MAX_KEY 65535 /* bytes in a key */

typedef struct llm_gguf_str {
    char *s;      /* NUL-terminated copy (may hold NULs before len) */
    uint64_t len;
} llm_gguf_str;

typedef struct llm_gguf_kv {
    char *key;
    int type;              /* LLM_GGUF_* */
    int elem;              /* arrays: the element type (never an array) */
    uint64_t n;            /* arrays: the element count */
    union {
        uint64_t u;        /* unsigned integers and bool */
        int64_t i;         /* signed integers */
        double f;          /* f32, f64 */
    } v;
    llm_gguf_str str;      /* strings */
    void *data;            /* arrays of numbers: n elements as in the file (little-endian);
                            * arrays of strings: llm_gguf_str[n] */
} llm_gguf_kv;

typedef struct llm_gguf_tensor {
    char *name;
    int n_dims;
    int64_t ne[LLM_GGUF_MAX_DIMS]; /* ne[0] fastest; unused ones 1 */
    int type;                      /* ggml type */
    uint64_t offset;               /* from the data start */
    uint64_t nbytes;
    int64_t numel;
} llm_gguf_tensor;

typedef struct llm_gguf {
    FILE *f;
    char *label;           /* the path, for messages */
    uint32_t version;
    uint32_t alignment;
    uint64_t file_size, data_start;
    int64_t n_kv, n_tensors;
    llm_gguf_kv *kv;       /* [n_kv] in file order */
    llm_gguf_tensor *tensors; /* [n_tensors] in file order */
} llm_gguf;

/* 1 when the n bytes at head start with GGUF's magic. */
int llm_gguf_sniff(const void *head, size_t n);

/* Opens and parses path ("-": standard input, which must then be a regular
 * file).  On error g is left empty (llm_gguf_close is harmless). */
int llm_gguf_open(llm_gguf *g, const char *path, llm_error *err);
/* The same over f (taken over: closed by llm_gguf_close, also on error),
 * positioned at the file's start; label names it in messages. */
int llm_gguf_open_file(llm_gguf *g, FILE *f, const char *label, llm_error *err);
void llm_gguf_close(llm_gguf *g);

/* The entry of key, or NULL. */
const llm_gguf_kv *llm_gguf_find(const llm_gguf *g, const char *key);
/* The tensor named name, or NULL. */
const llm_gguf_tensor *llm_gguf_tensor_named(const llm_gguf *g, const char *name);
/* A scalar entry as an unsigned integer (any integer type, or bool, that is
 * >= 0) or as a double (any number): 1 with *out set, 0 when key is absent,
 * LLM_ERR_FORMAT (naming the key) when it is of another type. */
int llm_gguf_get_u64(const llm_gguf *g, const char *key, uint64_t *out, llm_error *err);
int llm_gguf_get_f64(const llm_gguf *g, const char *key, double *out, llm_error *err);
/* A string entry: 1 with *out pointing into g, 0 when absent, LLM_ERR_FORMAT. */
int llm_gguf_get_str(const llm_gguf *g, const char *key, const char **out, llm_error *err);
/* Element i of a number array as a double (no range check on i). */
double llm_gguf_array_f64(const llm_gguf_kv *kv, uint64_t i);

/* Reads n bytes of t's data, from byte `at` of it, into buf. */
int llm_gguf_read(const llm_gguf *g, const llm_gguf_tensor *t, uint64_t at, void *buf, size_t n,
                  llm_error *err);

/* A value type's name ("u32", "string", ...), NULL for an unknown code. */
const char *llm_gguf_vtype_name(int type);
/* A ggml type's name ("F32", "Q4_K", ...), NULL for an unknown code. */
const char *llm_gguf_type_name(int type);
/* Elements per block and bytes per block of a ggml type; 0 for an unknown one. */
int llm_gguf_type_size(int type, int *block, int *bytes);
/* Bytes of a tensor of numel elements (a whole number of blocks) of type. */
uint64_t llm_gguf_nbytes(int type, int64_t numel);

/* ---- writing ---- */

typedef struct llm_gguf_out llm_gguf_out;

int llm_gguf_out_new(llm_gguf_out **out, llm_error *err);
/* Frees o (its output is the caller's); o may be NULL. */
void llm_gguf_out_free(llm_gguf_out *o);
/* Metadata, in the order added (keys must be new). */
int llm_gguf_out_str(llm_gguf_out *o, const char *key, const char *value, llm_error *err);
int llm_gguf_out_u32(llm_gguf_out *o, const char *key, uint32_t value, llm_error *err);
int llm_gguf_out_f32(llm_gguf_out *o, const char *key, float value, llm_error *err);
int llm_gguf_out_bool(llm_gguf_out *o, const char *key, int value, llm_error *err);
/* Arrays: of n strings (lens NULL: NUL-terminated), of n f32, of n i32. */
int llm_gguf_out_str_array(llm_gguf_out *o, const char *key, const char *const *s, const uint32_t *lens,
                           uint64_t n, llm_error *err);
int llm_gguf_out_f32_array(llm_gguf_out *o, const char *key, const float *v, uint64_t n, llm_error *err);
int llm_gguf_out_i32_array(llm_gguf_out *o, const char *key, const int32_t *v, uint64_t n, llm_error *err);
/* A tensor info (its type and offset are set when its data is written):
 * returns its index (>= 0) or < 0. */
int llm_gguf_out_tensor(llm_gguf_out *o, const char *name, int n_dims, const int64_t *ne, llm_error *err);
/* Writes everything declared so far to fd (a regular file, at its start),
 * leaving it at the data start; no metadata or tensor may be added after. */
int llm_gguf_out_begin(llm_gguf_out *o, int fd, const char *label, llm_error *err);
/* Starts tensor i's data, of ggml type `type`, at the next aligned offset;
 * its bytes follow through llm_gguf_out_write and must total its size. */
int llm_gguf_out_start(llm_gguf_out *o, int i, int type, llm_error *err);
int llm_gguf_out_write(llm_gguf_out *o, const void *data, size_t n, llm_error *err);
/* Tensor i's data start in the file (after llm_gguf_out_start). */
uint64_t llm_gguf_out_position(const llm_gguf_out *o, int i);
/* Checks every tensor was written whole and writes the header again with
 * their types and offsets. */
int llm_gguf_out_finish(llm_gguf_out *o, llm_error *err);

#endif
