/*
 * test_tui_text.c - the terminal UI's layout code (src/tui/text.c): display widths, wrapping,
 * fitting. Expected widths are the Unicode East Asian Width / emoji presentation classes
 * (UAX #11, UTS #51) that terminals follow, written out by hand here.
 */
#include "t.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "tui/text.h"

/* the lines tui_wrap makes, joined with '|' */
static const char *wrapped(const char *s, int width)
{
    static char out[1024];
    struct tui_span sp[64];
    size_t n = tui_wrap(s, strlen(s), width, sp, 64);
    size_t o = 0;
    for (size_t i = 0; i < n && i < 64; i++) {
        if (i)
            out[o++] = '|';
        memcpy(out + o, s + sp[i].off, sp[i].len);
        o += sp[i].len;
        /* no line is wider than asked, unless it holds one character wider than the line */
        int w = tui_text_width(s + sp[i].off, sp[i].len);
        if (w != sp[i].cols)
            T__FAIL("line %zu of '%s': cols %d, measured %d", i, s, sp[i].cols, w);
        if (w > width && tui_text_width(s + sp[i].off, sp[i].len) > 2)
            T__FAIL("line %zu of '%s' is %d columns wide, more than %d", i, s, w, width);
    }
    out[o] = '\0';
    return out;
}

static const char *fitted(const char *s, int width, int *cols)
{
    static char out[256];
    tui_fit(s, strlen(s), width, out, sizeof(out), cols);
    return out;
}

static void test_widths(void)
{
    T_EQ_INT(tui_cp_width('a'), 1);
    T_EQ_INT(tui_cp_width(0xE9), 1);    /* é, precomposed */
    T_EQ_INT(tui_cp_width(0x301), 0);   /* combining acute accent */
    T_EQ_INT(tui_cp_width(0x4E2D), 2);  /* 中, CJK unified ideograph (W) */
    T_EQ_INT(tui_cp_width(0xAC00), 2);  /* 가, Hangul syllable (W) */
    T_EQ_INT(tui_cp_width(0xFF21), 2);  /* Ａ, fullwidth Latin (F) */
    T_EQ_INT(tui_cp_width(0x1F600), 2); /* 😀, emoji presentation */
    T_EQ_INT(tui_cp_width(0xFF71), 1);  /* ｱ, halfwidth katakana (H) */
    T_EQ_INT(tui_cp_width(0x7), 1);     /* BEL: shown as a replacement */
    T_OK(tui_cp_replaced(0x7));
    T_OK(tui_cp_replaced(0x9B)); /* C1 control */
    T_OK(!tui_cp_replaced(0x4E2D));
    T_EQ_INT(tui_text_width("abc", 3), 3);
    T_EQ_INT(tui_text_width("e\xCC\x81", 3), 1);                /* e + combining acute */
    T_EQ_INT(tui_text_width("\xE4\xB8\xAD\xE6\x96\x87", 6), 4); /* 中文 */
    T_EQ_INT(tui_text_width("\xF0\x9F\x98\x80!", 5), 3);        /* 😀! */
}

static void test_utf8_decoding(void)
{
    uint32_t cp;
    T_EQ_INT((int)tui_utf8_next("\xE4\xB8\xAD", 3, &cp), 3);
    T_EQ_INT((int)cp, 0x4E2D);
    /* truncated, overlong, surrogate, out of range: one byte each, U+FFFD */
    T_EQ_INT((int)tui_utf8_next("\xE4\xB8", 2, &cp), 1);
    T_EQ_INT((int)cp, 0xFFFD);
    T_EQ_INT((int)tui_utf8_next("\xC0\xAF", 2, &cp), 1);
    T_EQ_INT((int)cp, 0xFFFD);
    T_EQ_INT((int)tui_utf8_next("\xE0\x80\xAF", 3, &cp), 1);
    T_EQ_INT((int)cp, 0xFFFD);
    T_EQ_INT((int)tui_utf8_next("\xED\xA0\x80", 3, &cp), 1);
    T_EQ_INT((int)cp, 0xFFFD);
    T_EQ_INT((int)tui_utf8_next("\xF4\x90\x80\x80", 4, &cp), 1);
    T_EQ_INT((int)cp, 0xFFFD);
    T_EQ_INT((int)tui_utf8_next("\xFF", 1, &cp), 1);
    T_EQ_INT((int)cp, 0xFFFD);
    T_EQ_INT(tui_text_width("\xFF\xFE", 2), 2); /* each bad byte: one replacement column */
    /* encoding: the bytes of RFC 3629's examples */
    char u[5] = {0};
    T_EQ_INT((int)tui_utf8_encode('A', u), 1);
    T_EQ_INT((int)tui_utf8_encode(0xE9, u), 2);
    T_OK(memcmp(u, "\xC3\xA9", 2) == 0);
    T_EQ_INT((int)tui_utf8_encode(0x4E2D, u), 3);
    T_OK(memcmp(u, "\xE4\xB8\xAD", 3) == 0);
    T_EQ_INT((int)tui_utf8_encode(0x1F600, u), 4);
    T_OK(memcmp(u, "\xF0\x9F\x98\x80", 4) == 0);
}

static void test_wrap(void)
{
    T_EQ_STR(wrapped("hello world", 5), "hello|world");
    T_EQ_STR(wrapped("hello world", 11), "hello world");
    T_EQ_STR(wrapped("hello world", 20), "hello world");
    T_EQ_STR(wrapped("the quick brown fox", 10), "the quick|brown fox");
    /* a word longer than the line is cut inside */
    T_EQ_STR(wrapped("abcdefghij", 4), "abcd|efgh|ij");
    T_EQ_STR(wrapped("ab abcdefghij", 4), "ab|abcd|efgh|ij");
    /* newlines are kept, empty lines too */
    T_EQ_STR(wrapped("a\n\nb", 10), "a||b");
    T_EQ_STR(wrapped("", 10), "");
    T_EQ_INT((int)tui_wrap("", 0, 10, NULL, 0), 1);
    T_EQ_INT((int)tui_wrap("a\n", 2, 10, NULL, 0), 2);
    /* wide characters never straddle the edge: 中文字 is 6 columns */
    T_EQ_STR(wrapped("\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97", 3),
             "\xE4\xB8\xAD|\xE6\x96\x87|\xE5\xAD\x97");
    T_EQ_STR(wrapped("\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97", 4),
             "\xE4\xB8\xAD\xE6\x96\x87|\xE5\xAD\x97");
    /* a line narrower than a wide character still makes progress: one per line */
    T_EQ_STR(wrapped("\xE4\xB8\xAD\xE6\x96\x87", 1), "\xE4\xB8\xAD|\xE6\x96\x87");
    /* a combining mark stays with its letter at the edge */
    T_EQ_STR(wrapped("abe\xCC\x81"
                     "cd",
                     3),
             "abe\xCC\x81|cd");
    /* emoji mixed with text */
    T_EQ_STR(wrapped("hi \xF0\x9F\x98\x80 there", 5), "hi \xF0\x9F\x98\x80|there");
    /* width 0 or less is taken as 1 */
    T_EQ_STR(wrapped("abc", 0), "a|b|c");
    /* many spaces: the one at the break is dropped, the others kept */
    T_EQ_STR(wrapped("ab   cd", 4), "ab  |cd");
    /* counting without storing gives the same number of lines */
    const char *t = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod";
    struct tui_span sp[32];
    T_EQ_INT((int)tui_wrap(t, strlen(t), 13, NULL, 0), (int)tui_wrap(t, strlen(t), 13, sp, 32));
    /* every byte of the text is on a line, or is a space or newline dropped at a break */
    size_t n = tui_wrap(t, strlen(t), 13, sp, 32), covered = 0;
    for (size_t i = 0; i < n; i++)
        covered += sp[i].len;
    T_EQ_INT((int)(covered + n - 1), (int)strlen(t));
}

static void test_fit(void)
{
    int cols;
    T_EQ_STR(fitted("hello", 10, &cols), "hello");
    T_EQ_INT(cols, 5);
    T_EQ_STR(fitted("hello", 5, &cols), "hello");
    T_EQ_STR(fitted("hello world", 8, &cols), "hello w\xE2\x80\xA6");
    T_EQ_INT(cols, 8);
    /* 中文字 in 4 columns: 中 + ellipsis (中文 would leave no room for it) */
    T_EQ_STR(fitted("\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97", 4, &cols), "\xE4\xB8\xAD\xE2\x80\xA6");
    T_EQ_INT(cols, 3);
    T_EQ_STR(fitted("\xE4\xB8\xAD\xE6\x96\x87", 4, &cols), "\xE4\xB8\xAD\xE6\x96\x87");
    T_EQ_INT(cols, 4);
    T_EQ_STR(fitted("abc", 1, &cols), "\xE2\x80\xA6");
    T_EQ_STR(fitted("abc", 0, &cols), "");
    T_EQ_INT(cols, 0);
    /* one line only */
    T_EQ_STR(fitted("ab\ncd", 10, &cols), "ab\xE2\x80\xA6");
    /* a buffer too small for the text never overflows */
    char small[4];
    tui_fit("abcdefgh", 8, 20, small, sizeof(small), &cols);
    T_OK(strlen(small) < sizeof(small));
}

static void test_human_bytes(void)
{
    char b[32];
    tui_human_bytes(512, b, sizeof(b));
    T_EQ_STR(b, "512 B");
    tui_human_bytes(4096, b, sizeof(b));
    T_EQ_STR(b, "4.0 KiB");
    tui_human_bytes(1288490188ull, b, sizeof(b));
    T_EQ_STR(b, "1.2 GiB");
}

int main(void)
{
    if (!setlocale(LC_ALL, "C.UTF-8"))
        T_SKIP_ALL("no C.UTF-8 locale");
    T_RUN(test_widths);
    T_RUN(test_utf8_decoding);
    T_RUN(test_wrap);
    T_RUN(test_fit);
    T_RUN(test_human_bytes);
    T_DONE();
}
