/* pzstd — decodes a zstd input's frames on several threads, in order.
 *
 * The stream writer ends a zstd frame every LLM_FRAME_BYTES raw bytes
 * (stream.h), so a stream is many independent frames.  One thread reads the
 * input and cuts it into whole frames; worker threads decode up to a few
 * frames at a time; llm_pzstd_read hands the decoded bytes out in input
 * order, and llm_pzstd_reader_open puts an llm_reader on top of them.
 *
 *     llm_pzstd *p;  llm_reader *r;
 *     LLM_TRY(llm_pzstd_open(&p, "acts.llmt", 2, &err));   // "-": stdin
 *     LLM_TRY(llm_pzstd_reader_open(&r, p, &err));         // then llm_reader_next ...
 *     llm_reader_close(r);
 *     llm_pzstd_close(p);
 *
 * Any input the reader accepts gives the same bytes: input that does not
 * begin with a zstd frame (a raw stream) is passed through unchanged, and so
 * is everything from the first point after a frame where no zstd frame
 * starts; skippable frames are dropped.  Decoded content and input passed
 * through never come in one read, so a reader on top knows which is which
 * and applies the reader's rules (zframe.h, stream.h) to the same effect:
 * a frame whose window is over the limit fails here with the reader's
 * message.  A frame too large to hold whole
 * (over LLM_PZSTD_MAX_FRAME compressed or decompressed), or one a worker
 * cannot decode, is decoded sequentially instead, so corrupt, truncated or
 * checksum-failing input gives the reader's errors ("NAME: byte N: zstd:
 * ...", "... truncated: the zstd frame is cut short") after every byte before
 * the fault.  A frame comes out only once all of it has arrived, so a
 * consumer lags a live producer by up to a frame (4 MiB of raw stream): for
 * consumers of a whole stream such as llm-calib, not for interactive pipes.
 * Memory: threads + 2 slots, each holding one frame (at most
 * LLM_PZSTD_MAX_FRAME + 1 MiB compressed and LLM_PZSTD_MAX_FRAME
 * decompressed), and an input buffer as large; about 9 MiB a slot for the
 * writer's 4 MiB frames.
 */
#ifndef LLM_PZSTD_H
#define LLM_PZSTD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "stream.h"

#define LLM_PZSTD_MAX_FRAME (16u << 20) /* bytes of one frame decoded in parallel */
#define LLM_PZSTD_MAX_THREADS 16

typedef struct llm_pzstd llm_pzstd;

/* Starts decoding path ("-": stdin) with `threads` (1..LLM_PZSTD_MAX_THREADS)
 * workers.  *out is owned by the caller (llm_pzstd_close). */
int llm_pzstd_open(llm_pzstd **out, const char *path, int threads, llm_error *err);
/* The same for fd (not closed); label names it in messages. */
int llm_pzstd_open_fd(llm_pzstd **out, int fd, const char *label, int threads, llm_error *err);

/* Reads up to n decoded bytes into buf: the bytes read (0 at the end of the
 * input) or < 0 with err set.  After an error every call fails the same way.
 * A read stops short where decoded content gives way to input passed through. */
int64_t llm_pzstd_read(llm_pzstd *p, void *buf, size_t n, llm_error *err);

/* A reader (llm_reader_open_source) over p's decoded bytes; p must outlive it. */
int llm_pzstd_reader_open(llm_reader **out, llm_pzstd *p, llm_error *err);

/* Stops the threads and frees p (a read blocked on the input is cancelled);
 * p may be NULL. */
void llm_pzstd_close(llm_pzstd *p);

#endif
