/* font — a 5x7 bitmap font for labels drawn into images.
 *
 * One glyph for every printable ASCII byte ('!'..'~'), a visible space (an
 * open box under the baseline's line, so a token " " can be seen), and a
 * hollow box for any other byte (controls, the bytes of UTF-8 sequences).
 * Glyphs sit in a LLM_FONT_ADVANCE x LLM_FONT_LINE cell: one column and one
 * row of space after the ink.  The shapes are this project's own.
 *
 *     for (int y = 0; y < LLM_FONT_ROWS; y++)
 *         for (int x = 0; x < LLM_FONT_COLS; x++)
 *             putchar(llm_font_ink('A', x, y) ? '#' : '.');
 */
#ifndef LLM_FONT_H
#define LLM_FONT_H

#define LLM_FONT_COLS 5    /* ink columns */
#define LLM_FONT_ROWS 7    /* ink rows */
#define LLM_FONT_ADVANCE 6 /* pixels from one glyph to the next */
#define LLM_FONT_LINE 8    /* pixels from one line to the next */

/* 1 when pixel (x, y) of byte c's glyph is ink (x < LLM_FONT_COLS, y <
 * LLM_FONT_ROWS, y = 0 the top row); 0 elsewhere. */
int llm_font_ink(unsigned char c, int x, int y);

/* Pixels across n glyphs set side by side (0 for none). */
int llm_font_width(int n);

#endif
