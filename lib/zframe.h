/* zframe — the rules on zstd framing that every tensor-stream reader enforces.
 *
 * A tensor stream's input is zstd frames and raw-stream bytes (llm-tensor(5)).
 * Two readers take it apart: the stream reader (stream.h) decodes frames as
 * they come, the parallel decoder (pzstd.h) cuts whole frames for worker
 * threads.  Both ask this module what the next bytes start and whether a
 * frame's header is acceptable, so that they accept the same inputs and
 * reject the others with the same message.  The one rule that needs the parse
 * state (raw input may follow a zstd frame only between streams) is the
 * stream reader's, which also parses what pzstd decodes.
 *
 *     if (llm_zframe_detect(p, n) != LLM_ZFRAME_NONE)   // a frame starts here
 *         LLM_TRY(llm_zframe_check_header(p, n, &err));      // its window is allowed
 *
 * A frame's window is the history its decoder must hold; zstd writes it in the
 * frame header, and a streaming decoder allocates it before the first block.
 * The limit is zstd's own default (what `zstd -d` accepts without --memory),
 * and more than any compression level of the writer uses.
 */
#ifndef LLM_ZFRAME_H
#define LLM_ZFRAME_H

#include <stddef.h>

#include "err.h"

#define LLM_ZFRAME_MAX_WINDOW_LOG 27 /* a frame's window is at most 2^27 bytes (128 MiB) */
#define LLM_ZFRAME_HEADER_MAX 18     /* bytes of the longest frame header, magic included */

typedef enum llm_zframe_kind {
    LLM_ZFRAME_NONE = 0,  /* no frame: raw-stream bytes (also fewer than 4 bytes) */
    LLM_ZFRAME_ZSTD,      /* magic 0xFD2FB528 */
    LLM_ZFRAME_SKIPPABLE, /* magic 0x184D2A50..0x184D2A5F: content ignored */
} llm_zframe_kind;

/* What the n bytes at p start, from their first 4 (little-endian magic). */
llm_zframe_kind llm_zframe_detect(const void *p, size_t n);

/* Checks the header of the frame starting at p (n bytes available; the
 * header is at most LLM_ZFRAME_HEADER_MAX bytes): LLM_ERR_LIMIT when its window is over
 * 2^LLM_ZFRAME_MAX_WINDOW_LOG bytes (for a single-segment frame the window
 * is its content size).  0 otherwise, also for a skippable frame and for a
 * header that is incomplete or malformed: the decoder then reports the cut or
 * the damage itself. */
int llm_zframe_check_header(const void *p, size_t n, llm_error *err);

#endif
