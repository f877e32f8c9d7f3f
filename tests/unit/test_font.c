/* Unit tests for lib/font: every byte has a glyph inside the 5x7 box, the
 * printable ones and the visible space have ink, no two glyphs look alike,
 * and widths add up. */
#include <string.h>

#include "check.h"
#include "font.h"

static void bitmap(unsigned char c, char out[LLM_FONT_ROWS * LLM_FONT_COLS])
{
    for (int y = 0; y < LLM_FONT_ROWS; y++)
        for (int x = 0; x < LLM_FONT_COLS; x++) out[y * LLM_FONT_COLS + x] = (char)llm_font_ink(c, x, y);
}

static void test_glyphs_distinct_and_inked(void)
{
    enum { N = '~' - ' ' + 2 }; /* ' '..'~' and one byte outside */
    char maps[N][LLM_FONT_ROWS * LLM_FONT_COLS];
    for (int k = 0; k < N; k++) bitmap(k < N - 1 ? (unsigned char)(' ' + k) : 0x80, maps[k]);
    int inked = 1, distinct = 1;
    for (int k = 0; k < N; k++) {
        int ink = 0;
        for (int q = 0; q < LLM_FONT_ROWS * LLM_FONT_COLS; q++) ink += maps[k][q];
        inked &= ink > 0;
        for (int m = 0; m < k; m++) distinct &= memcmp(maps[k], maps[m], sizeof maps[k]) != 0;
    }
    CHECK(inked);
    CHECK(distinct);
    /* every byte outside the printable ones shares the one box */
    char a[LLM_FONT_ROWS * LLM_FONT_COLS], b[LLM_FONT_ROWS * LLM_FONT_COLS];
    bitmap(0x00, a), bitmap(0xff, b);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(a, maps[N - 1], sizeof a) == 0);
    /* nothing outside the box */
    CHECK(!llm_font_ink('A', LLM_FONT_COLS, 0) && !llm_font_ink('A', 0, LLM_FONT_ROWS) &&
          !llm_font_ink('A', -1, 0));
}

static void test_widths(void)
{
    CHECK(llm_font_width(0) == 0);
    CHECK(llm_font_width(1) == LLM_FONT_COLS);
    CHECK(llm_font_width(4) == 3 * LLM_FONT_ADVANCE + LLM_FONT_COLS);
}

int main(void)
{
    RUN(test_glyphs_distinct_and_inked);
    RUN(test_widths);
    return check_done();
}
