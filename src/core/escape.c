/* escape.c - JSON string escaping shared by the log, the config commands and the tools. */
#include "core/escape.h"

const char *inf__escape_json_byte(unsigned char c, char tmp[8])
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        if (c >= 0x20 && c != 0x7f)
            return NULL;
        snprintf(tmp, 8, "\\u%04x", c);
        return tmp;
    }
}

void inf__escape_json_write(FILE *f, const char *s, size_t n)
{
    char tmp[8];
    size_t run = 0; /* bytes that stand for themselves, written in one go */
    for (size_t i = 0; i < n; i++) {
        const char *esc = inf__escape_json_byte((unsigned char)s[i], tmp);
        if (!esc)
            continue;
        fwrite(s + run, 1, i - run, f);
        fputs(esc, f);
        run = i + 1;
    }
    fwrite(s + run, 1, n - run, f);
}
