/* Unit tests for lib/zframe: frame detection from the magic, and the window
 * limit on every window descriptor and on single-segment frames, judged
 * against libzstd's own streaming decoder (whose default limit is 2^27) and
 * against the window formula of RFC 8878 written out here. */
#include <stdio.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "check.h"
#include "zframe.h"

/* RFC 8878 3.1.1.1.2: windowLog = 10 + exponent, plus mantissa eighths. */
static unsigned long long window_of(unsigned wd)
{
    unsigned long long base = 1ull << (10 + (wd >> 3));
    return base + base / 8 * (wd & 7);
}

/* Does libzstd's streaming decoder, with its default limits, refuse the
 * frame for its window?  (It needs a decoder no larger than that.) */
static int zstd_refuses(const unsigned char *f, size_t n)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    unsigned char out[64];
    ZSTD_inBuffer ib = {f, n, 0};
    ZSTD_outBuffer ob = {out, sizeof out, 0};
    size_t rc = ZSTD_decompressStream(d, &ob, &ib);
    ZSTD_freeDCtx(d);
    return ZSTD_isError(rc) && ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge;
}

static void test_detect(void)
{
    const unsigned char zstd[] = {0x28, 0xb5, 0x2f, 0xfd}, skip0[] = {0x50, 0x2a, 0x4d, 0x18},
                        skipf[] = {0x5f, 0x2a, 0x4d, 0x18}, near[] = {0x60, 0x2a, 0x4d, 0x18};
    CHECK(llm_zframe_detect(zstd, 4) == LLM_ZFRAME_ZSTD);
    CHECK(llm_zframe_detect(zstd, 3) == LLM_ZFRAME_NONE);
    CHECK(llm_zframe_detect(skip0, 4) == LLM_ZFRAME_SKIPPABLE);
    CHECK(llm_zframe_detect(skipf, 4) == LLM_ZFRAME_SKIPPABLE);
    CHECK(llm_zframe_detect(near, 4) == LLM_ZFRAME_NONE);
    CHECK(llm_zframe_detect("LLMT", 4) == LLM_ZFRAME_NONE);
    CHECK(llm_zframe_detect("", 0) == LLM_ZFRAME_NONE);
}

/* Every window descriptor byte with a legal exponent: a frame of one empty
 * raw block is refused exactly when its window is over 2^27, as libzstd's
 * decoder refuses it, with a message that names the window. */
static void test_window_descriptors(void)
{
    int refused = 0;
    for (unsigned wd = 0; wd < (31 - 10 + 1) << 3; wd++) {
        const unsigned char f[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, (unsigned char)wd, 0x01, 0x00, 0x00};
        llm_error err = {0};
        int rc = llm_zframe_check_header(f, sizeof f, &err);
        int over = window_of(wd) > (1ull << 27);
        CHECK_MSG((rc == LLM_ERR_LIMIT) == over && (rc == 0) == !over, "descriptor 0x%02x (window %llu): %d",
                  wd, window_of(wd), rc);
        CHECK_MSG(zstd_refuses(f, sizeof f) == over, "libzstd disagrees on descriptor 0x%02x", wd);
        char want[64];
        snprintf(want, sizeof want, "window of %llu bytes", window_of(wd));
        if (over) CHECK_MSG(strstr(err.msg, want), "descriptor 0x%02x: %s", wd, err.msg);
        refused += over;
        /* the header cut short, at any byte: left to the decoder */
        for (size_t n = 0; n < 6; n++) CHECK(llm_zframe_check_header(f, n, &err) == 0);
    }
    CHECK(refused == 4 * 8 + 7); /* windowLog 28..31, and 27 with a mantissa */
}

/* Single-segment frames: the window is the content size.  libzstd's own
 * default lets one byte more through (ZSTD_MAXWINDOWSIZE_DEFAULT is
 * 2^27 + 1), which no window descriptor can express. */
static void test_single_segment(void)
{
    const unsigned long long sizes[] = {0, 255, 1ull << 20, (1ull << 27) - 1, 1ull << 27, (1ull << 27) + 1, (1ull << 27) + 2,
                                        1ull << 32, 1ull << 40};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char f[20] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0}; /* single segment, 8-byte size */
        for (int k = 0; k < 8; k++) f[5 + k] = (unsigned char)(sizes[i] >> (8 * k));
        f[13] = 0x01; /* an empty last raw block (the content is short of its size) */
        llm_error err = {0};
        int over = sizes[i] > (1ull << 27);
        CHECK_MSG((llm_zframe_check_header(f, 16, &err) == LLM_ERR_LIMIT) == over, "content size %llu", sizes[i]);
        CHECK_MSG(zstd_refuses(f, 16) == (sizes[i] > (1ull << 27) + 1), "libzstd disagrees on content size %llu",
                  sizes[i]);
    }
}

/* Skippable frames have no window; a header with its reserved bit set is
 * the decoder's to reject. */
static void test_not_checked(void)
{
    llm_error err = {0};
    const unsigned char skip[] = {0x50, 0x2a, 0x4d, 0x18, 0xff, 0xff, 0xff, 0xff};
    CHECK(llm_zframe_check_header(skip, sizeof skip, &err) == 0);
    const unsigned char reserved[] = {0x28, 0xb5, 0x2f, 0xfd, 0x08, 0xff, 0x01, 0x00, 0x00};
    CHECK(llm_zframe_check_header(reserved, sizeof reserved, &err) == 0);
}

int main(void)
{
    RUN(test_detect);
    RUN(test_window_descriptors);
    RUN(test_single_segment);
    RUN(test_not_checked);
    return check_done();
}
