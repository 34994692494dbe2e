/* text.c - UTF-8 decoding, display widths, wrapping and fitting for the terminal UI. */

#include "tui/text.h"

#include <stdio.h>
#include <string.h>
#include <wchar.h>

size_t tui_utf8_next(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07u, min = 0x10000;
    } else {
        *cp = TUI_BAD_CP;
        return 1;
    }
    if (n < len) {
        *cp = TUI_BAD_CP;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0u) != 0x80u) {
            *cp = TUI_BAD_CP;
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = TUI_BAD_CP;
        return 1;
    }
    *cp = v;
    return len;
}

size_t tui_utf8_encode(uint32_t v, char u[4])
{
    if (v < 0x80) {
        u[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        u[0] = (char)(0xC0 | (v >> 6)), u[1] = (char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        u[0] = (char)(0xE0 | (v >> 12)), u[1] = (char)(0x80 | ((v >> 6) & 0x3F));
        u[2] = (char)(0x80 | (v & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | (v >> 18)), u[1] = (char)(0x80 | ((v >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((v >> 6) & 0x3F)), u[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

bool tui_cp_replaced(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
        return true;
    return wcwidth((wchar_t)cp) < 0;
}

int tui_cp_width(uint32_t cp)
{
    if (tui_cp_replaced(cp))
        return 1;
    int w = wcwidth((wchar_t)cp);
    return w > 2 ? 2 : w;
}

int tui_text_width(const char *s, size_t n)
{
    int cols = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += tui_utf8_next(s + i, n - i, &cp);
        if (cp != '\n')
            cols += tui_cp_width(cp);
    }
    return cols;
}

static void emit(struct tui_span *out, size_t max, size_t *nl, size_t off, size_t end, int cols)
{
    if (*nl < max) {
        out[*nl].off = off;
        out[*nl].len = end - off;
        out[*nl].cols = cols;
    }
    (*nl)++;
}

size_t tui_wrap(const char *s, size_t n, int width, struct tui_span *out, size_t max)
{
    size_t nl = 0, start = 0, i = 0;
    int cols = 0;
    /* the last space on the current line: the line may end before it, the next start after */
    size_t brk = (size_t)-1;
    int brk_cols = 0;
    if (width < 1)
        width = 1;
    while (i < n) {
        uint32_t cp;
        size_t k = tui_utf8_next(s + i, n - i, &cp);
        if (cp == '\n') {
            emit(out, max, &nl, start, i, cols);
            start = i + 1, cols = 0, brk = (size_t)-1;
            i += k;
            continue;
        }
        int w = tui_cp_width(cp);
        if (cols + w > width && cols > 0 && w > 0) {
            if (brk != (size_t)-1 && cp != ' ') {
                /* break at the last space: it is dropped */
                emit(out, max, &nl, start, brk, brk_cols);
                start = brk + 1;
                cols -= brk_cols + 1;
            } else if (cp == ' ') {
                /* the space itself is the break */
                emit(out, max, &nl, start, i, cols);
                start = i + k, cols = 0, brk = (size_t)-1;
                i += k;
                continue;
            } else {
                emit(out, max, &nl, start, i, cols);
                start = i, cols = 0;
            }
            brk = (size_t)-1;
            continue; /* look at this character again on the new line */
        }
        if (cp == ' ') {
            brk = i;
            brk_cols = cols;
        }
        cols += w;
        i += k;
    }
    emit(out, max, &nl, start, n, cols);
    return nl;
}

size_t tui_fit(const char *s, size_t n, int width, char *out, size_t cap, int *cols_out)
{
    static const char ell[] = "\xE2\x80\xA6"; /* U+2026, one column */
    size_t end = 0, cut = 0;
    int cols = 0, cut_cols = 0;
    bool whole = true;
    if (width < 0)
        width = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = tui_utf8_next(s + i, n - i, &cp);
        if (cp == '\n') {
            whole = false;
            break;
        }
        int w = tui_cp_width(cp);
        if (cols + w > width) {
            whole = false;
            break;
        }
        /* where a cut would leave room for the ellipsis */
        if (cols + w <= width - 1) {
            cut = i + k;
            cut_cols = cols + w;
        }
        cols += w;
        i += k;
        end = i;
    }
    size_t len;
    if (whole || width == 0) {
        len = whole ? end : 0;
        cut_cols = whole ? cols : 0;
        if (len >= cap)
            len = 0, cut_cols = 0;
        if (cap) {
            if (len)
                memcpy(out, s, len);
            out[len] = '\0';
        }
    } else {
        len = cut;
        if (len + sizeof(ell) > cap)
            len = 0, cut_cols = -1;
        if (cap) {
            if (len)
                memcpy(out, s, len);
            if (len + sizeof(ell) <= cap) {
                memcpy(out + len, ell, sizeof(ell));
                len += sizeof(ell) - 1;
                cut_cols += 1;
            } else {
                out[len] = '\0';
                cut_cols = 0;
            }
        }
    }
    if (cols_out)
        *cols_out = cut_cols < 0 ? 0 : cut_cols;
    return len;
}

void tui_human_bytes(uint64_t bytes, char *out, size_t cap)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4)
        v /= 1024.0, u++;
    if (u == 0)
        snprintf(out, cap, "%llu B", (unsigned long long)bytes);
    else
        snprintf(out, cap, "%.1f %s", v, units[u]);
}
