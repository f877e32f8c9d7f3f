/* bytes — little-endian integers read and written a byte at a time. */
#include "bytes.h"

/* The n-byte little-endian value at p. */
static uint64_t get_le(const void *p, int n)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* Writes the low n bytes of v at p, least significant first. */
static void put_le(void *p, uint64_t v, int n)
{
    unsigned char *b = p;
    for (int i = 0; i < n; i++) b[i] = (unsigned char)(v >> (8 * i));
}

uint16_t llm_bytes_get_le16(const void *p) { return (uint16_t)get_le(p, 2); }
uint32_t llm_bytes_get_le32(const void *p) { return (uint32_t)get_le(p, 4); }
uint64_t llm_bytes_get_le64(const void *p) { return get_le(p, 8); }

void llm_bytes_put_le16(void *p, uint16_t v) { put_le(p, v, 2); }
void llm_bytes_put_le32(void *p, uint32_t v) { put_le(p, v, 4); }
void llm_bytes_put_le64(void *p, uint64_t v) { put_le(p, v, 8); }
