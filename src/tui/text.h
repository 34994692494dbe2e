/*
 * text.h - the terminal UI's text layout: UTF-8 decoding, display widths, wrapping, fitting.
 *
 * Pure functions over byte strings, so that they are unit-tested without a terminal. Widths are
 * the ones the terminal (and ncurses) gives a character: wcwidth() in the current UTF-8 locale,
 * so CJK ideographs and emoji take two columns and combining marks none. Invalid UTF-8 bytes and
 * control characters are shown as one replacement column each, never passed to the terminal.
 */
#ifndef INFERNO_TUI_TEXT_H
#define INFERNO_TUI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A line of wrapped text: bytes [off, off + len) of the source, cols columns wide. */
struct tui_span {
    size_t off, len;
    int cols;
};

#define TUI_BAD_CP 0xFFFDu

/* Decode the character at s[0..n) (n >= 1): its code point in *cp (TUI_BAD_CP for an invalid or
 * truncated sequence, which then takes one byte); returns the bytes it takes (>= 1). */
size_t tui_utf8_next(const char *s, size_t n, uint32_t *cp);

/* The UTF-8 bytes of code point cp (< 0x110000) into out[4]; returns how many (1-4). */
size_t tui_utf8_encode(uint32_t cp, char out[4]);

/* Columns a character takes: 0 for combining marks, 2 for wide (CJK, emoji), 1 otherwise;
 * control characters and unassigned code points count as the one column of a replacement. */
int tui_cp_width(uint32_t cp);
/* Whether the character is drawn as a replacement ('?') rather than as itself. */
bool tui_cp_replaced(uint32_t cp);

/* Columns of s[0..n) on one line ('\n' counts as nothing). */
int tui_text_width(const char *s, size_t n);

/*
 * Wrap s[0..n) into lines of at most width columns (width >= 1): at spaces where possible (the
 * space at a break is dropped), inside a word longer than the line otherwise, and at every '\n'.
 * Never splits a character; a wide character that does not fit goes to the next line (alone on
 * a line narrower than it). Writes up to max spans into out and returns how many lines there
 * are in all (empty text: one empty line).
 */
size_t tui_wrap(const char *s, size_t n, int width, struct tui_span *out, size_t max);

/*
 * The longest prefix of s[0..n) (one line: stops at '\n') that fits in width columns; when the
 * text is cut, its last column is an ellipsis. Writes that text to out (NUL-terminated, at most
 * cap - 1 bytes; a cut never splits a character), the columns it takes to *cols when cols is
 * not NULL, and returns its length in bytes.
 */
size_t tui_fit(const char *s, size_t n, int width, char *out, size_t cap, int *cols);

/* A human size: "512 B", "4.0 KiB", "1.2 GiB". */
void tui_human_bytes(uint64_t bytes, char *out, size_t cap);

#endif
