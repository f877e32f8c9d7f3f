/* stream — the llmpipe tensor stream: how tools hand tensors to each other.
 *
 * A stream is a zstd stream (frame checksums on) whose decompressed content is
 * a header ("LLMT", version), self-describing records and an end record; the
 * exact bytes are in llm-tensor(5).  Readers also accept the raw, uncompressed
 * content, and treat concatenated streams (`cat a.llmt b.llmt`) as one.  The
 * writer flushes after every record so the next tool in a pipe can start on it,
 * ends a zstd frame every LLM_FRAME_BYTES raw bytes (also inside a payload) so
 * a reader may decode frames in parallel (pzstd.h), and writes files through a temporary name renamed into place on close, so an
 * interrupted run never leaves a half-written output under the real name.
 *
 *     llm_reader *r;  const llm_record *rec;  int rc;
 *     LLM_TRY(llm_reader_open(&r, "-", &err));              // stdin
 *     while ((rc = llm_reader_next(r, &rec, &err)) > 0)
 *         printf("%s %s\n", rec->name, llm_dtype_name(rec->dtype));  // payload skipped
 *     llm_reader_close(r);                              // rc < 0: err.msg says why
 *
 * Memory: a reader holds one record's header (and at most one 64 KiB block)
 * at a time; payloads are read in caller-sized chunks unless the caller asks for
 * a whole tensor.  Every size field is checked against the limits below before
 * anything is allocated.
 */
#ifndef LLM_STREAM_H
#define LLM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tensor.h"

#define LLM_STREAM_VERSION 1
#define LLM_MAX_NAME 1024              /* bytes in a record name */
#define LLM_MAX_ATTRS 1024             /* attributes per record */
#define LLM_MAX_KEY 256                /* bytes in an attribute key */
#define LLM_MAX_VALUE (1u << 20)       /* bytes in an attribute value */
#define LLM_MAX_ATTR_BYTES (4u << 20)  /* all keys and values of one record */
#define LLM_SHUFFLE_BLOCK 65536        /* bytes per byte-shuffle block */
#define LLM_FRAME_BYTES (4u << 20)     /* the writer ends a zstd frame after this many raw bytes */

typedef enum llm_record_kind {
    LLM_RECORD_TENSOR = 'T',
    LLM_RECORD_META = 'M', /* metadata: attributes, optional u8 payload */
} llm_record_kind;

/* Record flags (one byte in the stream). */
#define LLM_FLAG_SHUFFLE 0x01u /* payload byte-shuffled in 64 KiB blocks */

typedef struct llm_attr {
    const char *key;   /* printable, no '=' or spaces */
    const char *value; /* any bytes but NUL */
} llm_attr;

/* One record's header.  Returned by the reader (valid until its next call),
 * passed by the caller to the writer. */
typedef struct llm_record {
    llm_record_kind kind;
    const char *name;
    llm_dtype dtype;
    llm_shape shape;
    unsigned flags;        /* LLM_FLAG_* */
    int n_attrs;
    const llm_attr *attrs;
    uint64_t nbytes;       /* payload bytes (set by the reader; the writer computes it) */
} llm_record;

/* The value of attribute key, or NULL. */
const char *llm_record_attr(const llm_record *rec, const char *key);

/* ---- reading ----
 *
 * Compressed and raw input may switch only between streams: raw bytes after
 * a zstd frame that ends inside a stream are an error, and so is a frame
 * whose window is over the limit of zframe.h. */

typedef struct llm_reader llm_reader;

/* Opens path for reading; "-" is stdin.  *out is owned by the caller. */
int llm_reader_open(llm_reader **out, const char *path, llm_error *err);
/* Reads from fd (not closed by the reader); label names it in messages. */
int llm_reader_open_fd(llm_reader **out, int fd, const char *label, llm_error *err);
/* Reads from memory (not copied: buf must outlive the reader). */
int llm_reader_open_mem(llm_reader **out, const void *buf, size_t len, const char *label,
                        llm_error *err);
/* A source of input bytes, like read(2): fills up to n bytes of buf and
 * returns how many, 0 at the end of input, or < 0 with err set (its message,
 * which should name the input, is passed up as is).  A source that decodes
 * zstd frames itself (pzstd.h) sets *decoded to 1 for their content, which
 * the reader parses as raw stream without looking for frames in it; it leaves
 * *decoded 0 for input passed through as it is.  One call returns one kind,
 * and decoded bytes come only before any passed through. */
typedef int64_t (*llm_reader_source)(void *ctx, void *buf, size_t n, int *decoded, llm_error *err);
/* Reads from a source (ctx is not freed by the reader); label names it in messages. */
int llm_reader_open_source(llm_reader **out, llm_reader_source fn, void *ctx, const char *label,
                           llm_error *err);
/* Closes the reader; r may be NULL. */
void llm_reader_close(llm_reader *r);

/* Asks for a 1 MiB buffer on fd when it is a pipe (the default 64 KiB is
 * smaller than a compressed zstd block); best effort, silent. */
void llm_widen_pipe(int fd);

/* Advances to the next record, skipping what is left of the current payload.
 * Returns 1 with *rec set, 0 at the clean end of input (after an end record),
 * or a negative LLM_ERR_* (a stream without its end record is LLM_ERR_TRUNCATED). */
int llm_reader_next(llm_reader *r, const llm_record **rec, llm_error *err);

/* Reads up to n bytes of the current payload into buf, decoded (unshuffled).
 * Returns the bytes read (less than n only when the payload ends) or < 0. */
int64_t llm_reader_read(llm_reader *r, void *buf, size_t n, llm_error *err);

/* Reads the rest of the current payload into a new malloc'd buffer (*data,
 * owned by the caller, *n bytes).  The buffer grows with the bytes actually
 * read, so a header claiming a huge size cannot cause a huge allocation. */
int llm_reader_read_all(llm_reader *r, void **data, size_t *n, llm_error *err);

/* Reads the current record's payload into t (owned by the caller). */
int llm_reader_read_tensor(llm_reader *r, llm_tensor *t, llm_error *err);

/* Bytes consumed from the input so far, and raw (decompressed) bytes produced;
 * *compressed is 1 when any zstd frame was seen. */
void llm_reader_counts(const llm_reader *r, uint64_t *in_bytes, uint64_t *raw_bytes,
                       int *compressed);

/* ---- writing ---- */

typedef struct llm_writer llm_writer;

typedef struct llm_writer_opts {
    int level;   /* zstd level 1..19; 0 means the default (3) */
    int raw;     /* 1: write the uncompressed stream */
} llm_writer_opts;

/* Creates path ("-" is stdout).  A file is written under a temporary name in
 * the same directory and renamed to path by llm_writer_close; a FIFO or a
 * device is written directly (outfile.h says what a path gets).  opts may be
 * NULL. */
int llm_writer_open(llm_writer **out, const char *path, const llm_writer_opts *opts,
                    llm_error *err);
/* Writes to fd (not closed); label names it in messages. */
int llm_writer_open_fd(llm_writer **out, int fd, const char *label, const llm_writer_opts *opts,
                       llm_error *err);

/* Starts a record (tensor or metadata); its payload follows through
 * llm_writer_write and must total exactly its size. */
int llm_writer_begin(llm_writer *w, const llm_record *rec, llm_error *err);
int llm_writer_write(llm_writer *w, const void *data, size_t n, llm_error *err);
/* Ends the record and flushes it all the way to the file descriptor. */
int llm_writer_end_record(llm_writer *w, llm_error *err);

/* begin + write + end_record for a payload held whole in memory. */
int llm_writer_record(llm_writer *w, const llm_record *rec, const void *data, llm_error *err);

/* Writes the end record, finishes the zstd frame, and for a file renames it
 * into place.  Frees w in every case; returns 0 or < 0 (then no file is left). */
int llm_writer_close(llm_writer *w, llm_error *err);
/* Frees w without finishing: a file being written is removed.  w may be NULL. */
void llm_writer_abort(llm_writer *w);

#endif
