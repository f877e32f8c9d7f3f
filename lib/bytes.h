/* bytes — little-endian integers in byte buffers.
 *
 * Every file format the library reads or writes stores its integers
 * little-endian whatever the host: the tensor stream's headers and
 * attribute lengths (stream.h), the tokenizer record (tok.h), llama2.c's
 * checkpoints and tokenizers (llama2c.h), .npy header lengths (npy.h), zstd's
 * frame magic (zframe.h).  They all read and write them here, a byte at a
 * time, so the code is the same on any host and any alignment.
 *
 *     unsigned char h[8];
 *     llm_bytes_put_le32(h, 0x616b3432u);          // "24ka" in the file
 *     llm_bytes_put_le32(h + 4, 7);
 *     uint32_t magic = llm_bytes_get_le32(h);      // 0x616b3432 again
 *
 * p may point anywhere (no alignment needed) and must hold the 2, 4 or 8
 * bytes read or written.
 */
#ifndef LLM_BYTES_H
#define LLM_BYTES_H

#include <stdint.h>

/* The value of the 2, 4 or 8 bytes at p, least significant first. */
uint16_t llm_bytes_get_le16(const void *p);
uint32_t llm_bytes_get_le32(const void *p);
uint64_t llm_bytes_get_le64(const void *p);

/* Writes v into the 2, 4 or 8 bytes at p, least significant first. */
void llm_bytes_put_le16(void *p, uint16_t v);
void llm_bytes_put_le32(void *p, uint32_t v);
void llm_bytes_put_le64(void *p, uint64_t v);

#endif
