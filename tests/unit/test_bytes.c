/* Unit tests for lib/bytes: the byte order written out by hand (least
 * significant first), values with the top bit set read back without sign
 * extension, every width round-tripped at every alignment, and writes that
 * touch exactly their 2, 4 or 8 bytes. */
#include <string.h>

#include "bytes.h"
#include "check.h"

static void test_byte_order(void)
{
    unsigned char b[8];
    llm_bytes_put_le16(b, 0x0102);
    CHECK(b[0] == 0x02 && b[1] == 0x01);
    llm_bytes_put_le32(b, 0x01020304u);
    CHECK(b[0] == 0x04 && b[1] == 0x03 && b[2] == 0x02 && b[3] == 0x01);
    llm_bytes_put_le64(b, 0x0102030405060708ull);
    CHECK(b[0] == 0x08 && b[3] == 0x05 && b[4] == 0x04 && b[7] == 0x01);
    const unsigned char ak42[4] = {'2', '4', 'k', 'a'}; /* llama2.c's magic as its files hold it */
    CHECK(llm_bytes_get_le32(ak42) == 0x616b3432u);
    const unsigned char hi[8] = {0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0x80};
    CHECK(llm_bytes_get_le16(hi) == 0xfeffu);
    CHECK(llm_bytes_get_le32(hi) == 0xfcfdfeffu);
    CHECK(llm_bytes_get_le64(hi) == 0x80f9fafbfcfdfeffull);
}

/* Each width at offsets 0..7 of a buffer of guards: the value comes back,
 * and the bytes around it keep their guard. */
static void test_round_trip_unaligned(void)
{
    const uint64_t v64 = 0x8877665544332211ull;
    int ok = 1;
    for (int width = 2; width <= 8; width *= 2)
        for (int at = 0; at < 8; at++) {
            unsigned char buf[24];
            memset(buf, 0xa5, sizeof buf);
            uint64_t back;
            if (width == 2) {
                llm_bytes_put_le16(buf + at, (uint16_t)v64);
                back = llm_bytes_get_le16(buf + at);
            } else if (width == 4) {
                llm_bytes_put_le32(buf + at, (uint32_t)v64);
                back = llm_bytes_get_le32(buf + at);
            } else {
                llm_bytes_put_le64(buf + at, v64);
                back = llm_bytes_get_le64(buf + at);
            }
            ok &= back == (width == 8 ? v64 : v64 & ((1ull << (8 * width)) - 1));
            for (int i = 0; i < (int)sizeof buf; i++)
                if (i < at || i >= at + width) ok &= buf[i] == 0xa5;
        }
    CHECK_MSG(ok, "a value did not come back, or a write touched a byte beside it");
}

int main(void)
{
    RUN(test_byte_order);
    RUN(test_round_trip_unaligned);
    return check_done();
}
