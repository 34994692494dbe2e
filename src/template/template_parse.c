/*
 * template_parse.c - the chat-template lexer and parser.
 *
 * The lexer applies Jinja2's whitespace rules while it splits the source into text and tags:
 * `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all whitespace after
 * it; trim_blocks removes the first newline after a block or comment tag; lstrip_blocks removes
 * spaces and tabs between the start of a line and a block or comment tag (`{%+` keeps them,
 * `+%}` keeps the newline). Line endings are normalised to "\n" and one trailing newline of
 * the source is dropped, as Jinja2 does by default.
 *
 * The parser is a recursive-descent copy of Jinja2's grammar (jinja2/parser.py): conditional
 * expressions, or/and/not, comparisons (chained, in, not in), + -, ~, * / // %, **, unary -,
 * postfix (.attr, [item], [a:b:c], calls), filters and tests. Nesting is bounded.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "template/template_internal.h"

#define MAX_NESTING 100 /* brackets, expressions and blocks inside each other */

enum tok_type {
    TK_EOF,
    TK_TEXT,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
};

/* Two-character operators; single-character ones are their own character. */
enum {
    T_FLOORDIV = 256,
    T_POW,
    T_EQ,
    T_NE,
    T_LE,
    T_GE,
};

struct tok {
    uint8_t type;
    int op;
    uint32_t line, col;
    const char *s; /* TK_NAME: in the normalised source */
    size_t len;
    struct tpl_str *str; /* TK_TEXT, TK_STRING */
    int64_t i;
    double f;
};

struct sym_slot {
    const char *name;
    size_t len;
    int32_t id;
};

struct parser {
    struct inf_template *t;
    struct inf_error *err;
    bool failed;
    char *src; /* normalised copy (malloc'd) */
    size_t len;
    /* incremental position tracking for the lexer */
    size_t loc_off;
    uint32_t loc_line, loc_col;
    struct tok *toks; /* malloc'd */
    size_t n_toks, cap_toks;
    size_t pos; /* parser cursor */
    unsigned depth, loop_depth;
    struct sym_slot *syms; /* malloc'd open-addressing table */
    size_t syms_cap, n_syms;
    const char **sym_names; /* malloc'd [n_syms] */
    size_t sym_names_cap;
};

/* ---- errors and positions --------------------------------------------------------------- */

static void fail_at(struct parser *p, uint32_t line, uint32_t col, inf_status code, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));

static void fail_at(struct parser *p, uint32_t line, uint32_t col, inf_status code, const char *fmt,
                    ...)
{
    char msg[INF_ERROR_MSG_MAX];
    va_list ap;

    if (p->failed)
        return;
    p->failed = true;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line == 0)
        inf_error_set(p->err, code, "%s", msg); /* no position (out of memory) */
    else
        inf_error_set(p->err, code, "line %u, column %u: %s", line, col, msg);
}

/* Line and column of byte offset off; offsets must be asked for in increasing order. */
static void locate(struct parser *p, size_t off, uint32_t *line, uint32_t *col)
{
    while (p->loc_off < off && p->loc_off < p->len) {
        unsigned char c = (unsigned char)p->src[p->loc_off++];
        if (c == '\n') {
            p->loc_line++;
            p->loc_col = 1;
        } else if ((c & 0xC0) != 0x80) {
            p->loc_col++;
        }
    }
    *line = p->loc_line;
    *col = p->loc_col;
}

/* ---- symbols ---------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The symbol id of an identifier, added when new; -1 on allocation failure. */
static int32_t intern(struct parser *p, const char *s, size_t len)
{
    if (p->n_syms * 2 >= p->syms_cap) {
        size_t ncap = p->syms_cap ? p->syms_cap * 2 : 64;
        struct sym_slot *ns = calloc(ncap, sizeof(*ns));
        if (!ns)
            return -1;
        for (size_t i = 0; i < p->syms_cap; i++) {
            if (!p->syms[i].name)
                continue;
            size_t h = (size_t)hash_bytes(p->syms[i].name, p->syms[i].len) & (ncap - 1);
            while (ns[h].name)
                h = (h + 1) & (ncap - 1);
            ns[h] = p->syms[i];
        }
        free(p->syms);
        p->syms = ns;
        p->syms_cap = ncap;
    }
    size_t h = (size_t)hash_bytes(s, len) & (p->syms_cap - 1);
    while (p->syms[h].name) {
        if (p->syms[h].len == len && memcmp(p->syms[h].name, s, len) == 0)
            return p->syms[h].id;
        h = (h + 1) & (p->syms_cap - 1);
    }
    if (!inf__grow(&p->sym_names, &p->sym_names_cap, p->n_syms + 1, sizeof(*p->sym_names), 64))
        return -1;
    char *copy = inf__arena_alloc(&p->t->arena, len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    p->syms[h].name = copy;
    p->syms[h].len = len;
    p->syms[h].id = (int32_t)p->n_syms;
    p->sym_names[p->n_syms] = copy;
    return (int32_t)p->n_syms++;
}

/* An identifier copied into the template arena. */
static const char *name_dup(struct parser *p, const char *s, size_t len)
{
    char *copy = inf__arena_alloc(&p->t->arena, len + 1);
    if (!copy) {
        fail_at(p, 0, 0, INF_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(copy, s, len);
    return copy;
}

/* ---- lexer ------------------------------------------------------------------------------ */

static struct tok *tok_push(struct parser *p, uint8_t type, size_t off)
{
    if (!inf__grow(&p->toks, &p->cap_toks, p->n_toks + 1, sizeof(*p->toks), 256)) {
        fail_at(p, 0, 0, INF_ENOMEM, "out of memory");
        return NULL;
    }
    struct tok *t = &p->toks[p->n_toks++];
    memset(t, 0, sizeof(*t));
    t->type = type;
    locate(p, off, &t->line, &t->col);
    return t;
}

/* Python's str.isspace() at s[i] (UTF-8); returns the byte length of the space, 0 if none. */
static size_t space_len(const char *s, size_t len, size_t i)
{
    uint32_t cp;
    size_t n = inf__tpl_utf8_decode(s + i, len - i, &cp);
    return inf__tpl_is_space(cp) ? n : 0;
}

static size_t skip_spaces(const char *s, size_t len, size_t i)
{
    size_t n;
    while (i < len && (n = space_len(s, len, i)) > 0)
        i += n;
    return i;
}

/* Length of text[0..len) once trailing whitespace (str.rstrip()) is removed. */
static size_t rstrip_len(const char *s, size_t len)
{
    size_t end = 0, i = 0;
    while (i < len) {
        size_t n = space_len(s, len, i);
        if (n) {
            i += n;
        } else {
            uint32_t cp;
            i += inf__tpl_utf8_decode(s + i, len - i, &cp);
            end = i;
        }
    }
    return end;
}

static int emit_text(struct parser *p, size_t off, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    struct tok *t = tok_push(p, TK_TEXT, off);
    if (!t)
        return -1;
    t->str = inf__tpl_str_arena(&p->t->arena, s, len);
    if (!t->str) {
        fail_at(p, t->line, t->col, INF_ENOMEM, "out of memory");
        return -1;
    }
    return 0;
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The byte that \c stands for in a string literal (\\ \' \" \a \b \f \n \r \t \v), or -1. */
static int one_char_escape(char c)
{
    static const char pairs[][2] = {{'\\', '\\'}, {'\'', '\''}, {'"', '"'},  {'a', '\a'},
                                    {'b', '\b'},  {'f', '\f'},  {'n', '\n'}, {'r', '\r'},
                                    {'t', '\t'},  {'v', '\v'}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (pairs[i][0] == c)
            return (unsigned char)pairs[i][1];
    return -1;
}

/* Decode a string literal body (Python "unicode-escape" rules) into the template arena. */
static struct tpl_str *decode_string(struct parser *p, const char *s, size_t len)
{
    char *buf = malloc(len + 1);
    size_t o = 0;
    if (!buf)
        return NULL;
    for (size_t i = 0; i < len;) {
        if (s[i] != '\\' || i + 1 >= len) {
            buf[o++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        uint32_t cp = 0;
        int ndig = 0;
        i += 2;
        int byte = one_char_escape(c);
        if (byte >= 0) {
            buf[o++] = (char)byte;
            continue;
        }
        switch (c) {
        case '\n':
            continue; /* line continuation */
        case 'x':
            ndig = 2;
            break;
        case 'u':
            ndig = 4;
            break;
        case 'U':
            ndig = 8;
            break;
        default:
            if (c >= '0' && c <= '7') {
                cp = (uint32_t)(c - '0');
                for (int k = 0; k < 2 && i < len && s[i] >= '0' && s[i] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(s[i++] - '0');
                o += inf__utf8_encode(cp, buf + o);
            } else {
                /* unknown escapes stay as written */
                buf[o++] = '\\';
                buf[o++] = c;
            }
            continue;
        }
        int k = 0;
        for (; k < ndig && i + (size_t)k < len && inf__hex_digit(s[i + (size_t)k]) >= 0; k++)
            cp = cp * 16 + (uint32_t)inf__hex_digit(s[i + (size_t)k]);
        if (k < ndig) {
            /* Python rejects a truncated escape; keep it literally instead */
            buf[o++] = '\\';
            buf[o++] = c;
            continue;
        }
        i += (size_t)ndig;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            cp = 0xFFFD;
        o += inf__utf8_encode(cp, buf + o);
    }
    struct tpl_str *str = inf__tpl_str_arena(&p->t->arena, buf, o);
    free(buf);
    return str;
}

/*
 * Lex the inside of a tag starting at *pos until its end delimiter. block: a {% %} tag (else
 * {{ }}). On return *pos is past the delimiter and *strip_after / *keep_newline say what the
 * closing modifier asked for.
 */
static int lex_tag(struct parser *p, size_t *pos, bool block, uint32_t line, uint32_t col,
                   bool *strip_after, bool *trim_newline)
{
    const char *s = p->src;
    size_t len = p->len, i = *pos;
    char stack[MAX_NESTING];
    size_t depth = 0;

    for (;;) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
                           s[i] == '\f' || s[i] == '\v'))
            i++;
        if (i >= len) {
            fail_at(p, line, col, INF_EPARSE, "unexpected end of template: missing '%s'",
                    block ? "%}" : "}}");
            return -1;
        }
        if (depth == 0) {
            if (block) {
                if (s[i] == '-' && i + 2 < len && s[i + 1] == '%' && s[i + 2] == '}') {
                    *pos = i + 3;
                    *strip_after = true;
                    return 0;
                }
                if (s[i] == '+' && i + 2 < len && s[i + 1] == '%' && s[i + 2] == '}') {
                    *pos = i + 3;
                    return 0;
                }
                if (s[i] == '%' && i + 1 < len && s[i + 1] == '}') {
                    *pos = i + 2;
                    *trim_newline = true;
                    return 0;
                }
            } else {
                if (s[i] == '-' && i + 2 < len && s[i + 1] == '}' && s[i + 2] == '}') {
                    *pos = i + 3;
                    *strip_after = true;
                    return 0;
                }
                if (s[i] == '}' && i + 1 < len && s[i + 1] == '}') {
                    *pos = i + 2;
                    return 0;
                }
            }
        }
        size_t start = i;
        char c = s[i];
        struct tok *t;
        if (is_digit(c)) {
            /* float: digits ('.' digits)? (e [+-] digits)?  -- needs '.' digits or an exponent;
             * not after a '.', where "x.0.1" is items 0 and 1 */
            bool after_dot = start > 0 && s[start - 1] == '.';
            size_t j = i;
            while (j < len &&
                   (is_digit(s[j]) || (s[j] == '_' && j + 1 < len && is_digit(s[j + 1]))))
                j++;
            size_t int_end = j;
            bool is_float = false;
            if (!after_dot && j + 1 < len && s[j] == '.' && is_digit(s[j + 1])) {
                j++;
                while (j < len &&
                       (is_digit(s[j]) || (s[j] == '_' && j + 1 < len && is_digit(s[j + 1]))))
                    j++;
                is_float = true;
            }
            if (!after_dot && j < len && (s[j] == 'e' || s[j] == 'E')) {
                size_t k = j + 1;
                if (k < len && (s[k] == '+' || s[k] == '-'))
                    k++;
                if (k < len && is_digit(s[k])) {
                    while (k < len &&
                           (is_digit(s[k]) || (s[k] == '_' && k + 1 < len && is_digit(s[k + 1]))))
                        k++;
                    j = k;
                    is_float = true;
                }
            }
            char num[128];
            size_t nn = 0;
            if (!is_float && c == '0' && i + 1 < len &&
                (s[i + 1] == 'x' || s[i + 1] == 'X' || s[i + 1] == 'o' || s[i + 1] == 'O' ||
                 s[i + 1] == 'b' || s[i + 1] == 'B')) {
                int base = (s[i + 1] == 'x' || s[i + 1] == 'X')   ? 16
                           : (s[i + 1] == 'o' || s[i + 1] == 'O') ? 8
                                                                  : 2;
                size_t k = i + 2;
                uint64_t v = 0;
                bool any = false, overflow = false;
                while (k < len) {
                    int d = s[k] == '_' ? -2 : inf__hex_digit(s[k]);
                    if (d == -2) {
                        k++;
                        continue;
                    }
                    if (d < 0 || d >= base)
                        break;
                    if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
                        overflow = true;
                    v = v * (uint64_t)base + (uint64_t)d;
                    any = true;
                    k++;
                }
                if (!any || overflow || v > INT64_MAX) {
                    uint32_t l, cc;
                    locate(p, start, &l, &cc);
                    fail_at(p, l, cc, INF_EPARSE,
                            any ? "integer literal is too large" : "invalid integer literal");
                    return -1;
                }
                t = tok_push(p, TK_INT, start);
                if (!t)
                    return -1;
                t->i = (int64_t)v;
                i = k;
                goto next;
            }
            if (!is_float)
                j = int_end;
            for (size_t k = i; k < j && nn + 1 < sizeof(num); k++)
                if (s[k] != '_')
                    num[nn++] = s[k];
            num[nn] = '\0';
            t = tok_push(p, is_float ? TK_FLOAT : TK_INT, start);
            if (!t)
                return -1;
            if (j - i >= sizeof(num) - 1) {
                fail_at(p, t->line, t->col, INF_EPARSE, "number literal is too long");
                return -1;
            }
            if (is_float) {
                t->f = strtod(num, NULL);
            } else {
                uint64_t v = 0;
                for (size_t k = 0; k < nn; k++) {
                    if (v > (UINT64_MAX - 9) / 10) {
                        fail_at(p, t->line, t->col, INF_EPARSE, "integer literal is too large");
                        return -1;
                    }
                    v = v * 10 + (uint64_t)(num[k] - '0');
                }
                if (v > INT64_MAX) {
                    fail_at(p, t->line, t->col, INF_EPARSE, "integer literal is too large");
                    return -1;
                }
                t->i = (int64_t)v;
            }
            i = j;
            goto next;
        }
        if (is_name_start(c)) {
            size_t j = i + 1;
            while (j < len && is_name_char(s[j]))
                j++;
            t = tok_push(p, TK_NAME, start);
            if (!t)
                return -1;
            t->s = s + i;
            t->len = j - i;
            i = j;
            goto next;
        }
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < len && s[j] != c) {
                if (s[j] == '\\' && j + 1 < len)
                    j++;
                j++;
            }
            t = tok_push(p, TK_STRING, start);
            if (!t)
                return -1;
            if (j >= len) {
                fail_at(p, t->line, t->col, INF_EPARSE, "unterminated string literal");
                return -1;
            }
            t->str = decode_string(p, s + i + 1, j - i - 1);
            if (!t->str) {
                fail_at(p, t->line, t->col, INF_ENOMEM, "out of memory");
                return -1;
            }
            i = j + 1;
            goto next;
        }
        {
            int op = 0;
            size_t olen = 1;
            char d = i + 1 < len ? s[i + 1] : '\0';
            if (c == '/' && d == '/')
                op = T_FLOORDIV, olen = 2;
            else if (c == '*' && d == '*')
                op = T_POW, olen = 2;
            else if (c == '=' && d == '=')
                op = T_EQ, olen = 2;
            else if (c == '!' && d == '=')
                op = T_NE, olen = 2;
            else if (c == '<' && d == '=')
                op = T_LE, olen = 2;
            else if (c == '>' && d == '=')
                op = T_GE, olen = 2;
            else if (strchr("+-/*%~[](){}<>=.:|,;", c) && c != '\0')
                op = c;
            t = tok_push(p, TK_OP, start);
            if (!t)
                return -1;
            if (!op) {
                if ((unsigned char)c >= 0x80) {
                    uint32_t cp;
                    size_t n = inf__tpl_utf8_decode(s + i, len - i, &cp);
                    fail_at(p, t->line, t->col, INF_EPARSE, "unexpected character '%.*s'", (int)n,
                            s + i);
                } else if (c >= 0x20 && c < 0x7f) {
                    fail_at(p, t->line, t->col, INF_EPARSE, "unexpected character '%c'", c);
                } else {
                    fail_at(p, t->line, t->col, INF_EPARSE, "unexpected character 0x%02x",
                            (unsigned)(unsigned char)c);
                }
                return -1;
            }
            t->op = op;
            if (op == '(' || op == '[' || op == '{') {
                if (depth >= MAX_NESTING) {
                    fail_at(p, t->line, t->col, INF_ELIMIT, "brackets nested too deeply");
                    return -1;
                }
                stack[depth++] = (char)op;
            } else if (op == ')' || op == ']' || op == '}') {
                char want = op == ')' ? '(' : op == ']' ? '[' : '{';
                if (depth == 0 || stack[depth - 1] != want) {
                    fail_at(p, t->line, t->col, INF_EPARSE, "unexpected '%c'", (char)op);
                    return -1;
                }
                depth--;
            }
            i += olen;
        }
    next:;
    }
}

/* Find "{{", "{%" or "{#" at or after i; len when none. */
static size_t find_tag(const char *s, size_t len, size_t i)
{
    while (i + 1 < len) {
        const char *q = memchr(s + i, '{', len - 1 - i);
        if (!q)
            return len;
        i = (size_t)(q - s);
        if (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')
            return i;
        i++;
    }
    return len;
}

/* If a block tag at i (just after "{%" and its modifier) is `raw`, the end of its "%}". */
static bool match_word_tag(const char *s, size_t len, size_t i, const char *word, size_t *end,
                           bool *strip_after, bool *trim_newline)
{
    size_t wl = strlen(word);
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
        i++;
    if (i + wl > len || memcmp(s + i, word, wl) != 0)
        return false;
    i += wl;
    if (i < len && is_name_char(s[i]))
        return false;
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
        i++;
    *strip_after = false;
    *trim_newline = false;
    if (i + 2 < len && s[i] == '-' && s[i + 1] == '%' && s[i + 2] == '}') {
        *strip_after = true;
        *end = i + 3;
        return true;
    }
    if (i + 2 < len && s[i] == '+' && s[i + 1] == '%' && s[i + 2] == '}') {
        *end = i + 3;
        return true;
    }
    if (i + 1 < len && s[i] == '%' && s[i + 1] == '}') {
        *trim_newline = true;
        *end = i + 2;
        return true;
    }
    return false;
}

static int lex(struct parser *p)
{
    const char *s = p->src;
    size_t len = p->len, pos = 0;
    bool line_starting = true, strip_next = false;

    while (pos < len) {
        if (strip_next) {
            /* `-%}`: the whitespace after the tag belongs to the tag */
            pos = skip_spaces(s, len, pos);
            line_starting = pos > 0 && s[pos - 1] == '\n';
            strip_next = false;
            if (pos >= len)
                break;
        }
        size_t tag = find_tag(s, len, pos);
        size_t tstart = pos, tend = tag;
        if (tag >= len) {
            if (emit_text(p, tstart, s + tstart, tend - tstart))
                return -1;
            break;
        }
        char kind = s[tag + 1];
        char mod = tag + 2 < len ? s[tag + 2] : '\0';
        if (kind == '{' && mod != '-' && mod != '+')
            mod = '\0';
        if (mod == '-') {
            tend = tstart + rstrip_len(s + tstart, tend - tstart);
        } else if (kind != '{' && mod != '+') {
            /* lstrip_blocks: spaces and tabs from the start of the line to the tag */
            size_t lp = tend;
            while (lp > tstart && s[lp - 1] != '\n')
                lp--;
            bool newline = lp > tstart;
            if (newline || line_starting) {
                bool blank = true;
                for (size_t k = lp; k < tend; k++)
                    if (s[k] != ' ' && s[k] != '\t')
                        blank = false;
                if (blank)
                    tend = lp;
            }
        }
        if (emit_text(p, tstart, s + tstart, tend - tstart))
            return -1;
        uint32_t line, col;
        locate(p, tag, &line, &col);
        size_t after = tag + 2 + (mod == '-' || mod == '+' ? 1 : 0);
        bool strip_after = false, trim_newline = false;
        if (kind == '#') {
            size_t k = after;
            const char *q = NULL;
            while (k + 1 < len) {
                q = memchr(s + k, '#', len - 1 - k);
                if (!q)
                    break;
                k = (size_t)(q - s);
                if (s[k + 1] == '}')
                    break;
                k++;
                q = NULL;
            }
            if (!q) {
                fail_at(p, line, col, INF_EPARSE, "unclosed comment");
                return -1;
            }
            if (k > after && s[k - 1] == '-')
                strip_after = true;
            else if (!(k > after && s[k - 1] == '+'))
                trim_newline = true;
            pos = k + 2;
        } else if (kind == '%') {
            size_t end;
            if (match_word_tag(s, len, after, "raw", &end, &strip_after, &trim_newline)) {
                /* raw: everything up to {% endraw %} is text */
                size_t body = end;
                if (strip_after)
                    body = skip_spaces(s, len, body);
                else if (trim_newline && body < len && s[body] == '\n')
                    body++;
                size_t k = body, close_end = 0;
                bool found = false, es = false, et = false;
                char emod = '\0';
                while ((k = find_tag(s, len, k)) < len) {
                    if (s[k + 1] == '%') {
                        emod = k + 2 < len ? s[k + 2] : '\0';
                        size_t a = k + 2 + (emod == '-' || emod == '+' ? 1 : 0);
                        if (match_word_tag(s, len, a, "endraw", &close_end, &es, &et)) {
                            found = true;
                            break;
                        }
                    }
                    k++;
                }
                if (!found) {
                    fail_at(p, line, col, INF_EPARSE,
                            "unclosed 'raw' block: missing "
                            "'{%% endraw %%}'");
                    return -1;
                }
                size_t blen = k - body;
                if (emod == '-')
                    blen = rstrip_len(s + body, blen);
                if (emit_text(p, body, s + body, blen))
                    return -1;
                strip_after = es;
                trim_newline = et;
                pos = close_end;
            } else {
                if (!tok_push(p, TK_BLOCK_BEGIN, tag))
                    return -1;
                pos = after;
                if (lex_tag(p, &pos, true, line, col, &strip_after, &trim_newline))
                    return -1;
                struct tok *t = tok_push(p, TK_BLOCK_END, pos - 2);
                if (!t)
                    return -1;
            }
        } else {
            if (!tok_push(p, TK_VAR_BEGIN, tag))
                return -1;
            pos = after;
            if (lex_tag(p, &pos, false, line, col, &strip_after, &trim_newline))
                return -1;
            if (!tok_push(p, TK_VAR_END, pos - 2))
                return -1;
            trim_newline = false;
        }
        if (trim_newline && pos < len && s[pos] == '\n')
            pos++;
        strip_next = strip_after;
        line_starting = pos > 0 && s[pos - 1] == '\n';
    }
    struct tok *t = tok_push(p, TK_EOF, len);
    return t ? 0 : -1;
}

/* ---- parser helpers --------------------------------------------------------------------- */

static struct tok *cur(struct parser *p)
{
    return &p->toks[p->pos];
}

static struct tok *look(struct parser *p, size_t k)
{
    size_t i = p->pos + k;
    return &p->toks[i < p->n_toks ? i : p->n_toks - 1];
}

static void advance(struct parser *p)
{
    if (p->pos + 1 < p->n_toks)
        p->pos++;
}

static bool tok_is_name(const struct tok *t, const char *name)
{
    return t->type == TK_NAME && t->len == strlen(name) && memcmp(t->s, name, t->len) == 0;
}

static bool tok_is_op(const struct tok *t, int op)
{
    return t->type == TK_OP && t->op == op;
}

static void describe(const struct tok *t, char *buf, size_t size)
{
    switch (t->type) {
    case TK_EOF:
        snprintf(buf, size, "end of template");
        break;
    case TK_TEXT:
        snprintf(buf, size, "template text");
        break;
    case TK_VAR_BEGIN:
        snprintf(buf, size, "'{{'");
        break;
    case TK_VAR_END:
        snprintf(buf, size, "'}}'");
        break;
    case TK_BLOCK_BEGIN:
        snprintf(buf, size, "'{%%'");
        break;
    case TK_BLOCK_END:
        snprintf(buf, size, "'%%}'");
        break;
    case TK_NAME:
        snprintf(buf, size, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->s);
        break;
    case TK_STRING:
        snprintf(buf, size, "a string");
        break;
    case TK_INT:
    case TK_FLOAT:
        snprintf(buf, size, "a number");
        break;
    case TK_OP: {
        static const char *const two[] = {"//", "**", "==", "!=", "<=", ">="};
        if (t->op >= 256)
            snprintf(buf, size, "'%s'", two[t->op - 256]);
        else
            snprintf(buf, size, "'%c'", (char)t->op);
        break;
    }
    default:
        snprintf(buf, size, "?");
    }
}

static void fail_tok(struct parser *p, const struct tok *t, const char *what)
{
    char d[64];
    describe(t, d, sizeof(d));
    fail_at(p, t->line, t->col, INF_EPARSE, "expected %s, got %s", what, d);
}

static bool expect_op(struct parser *p, int op, const char *what)
{
    if (!tok_is_op(cur(p), op)) {
        fail_tok(p, cur(p), what);
        return false;
    }
    advance(p);
    return true;
}

static bool expect_block_end(struct parser *p)
{
    if (cur(p)->type != TK_BLOCK_END) {
        fail_tok(p, cur(p), "'%}'");
        return false;
    }
    advance(p);
    return true;
}

static struct tpl_node *node_new(struct parser *p, uint8_t kind, const struct tok *at)
{
    struct tpl_node *n = inf__arena_alloc(&p->t->arena, sizeof(*n));
    if (!n) {
        fail_at(p, at->line, at->col, INF_ENOMEM, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->sym = -1;
    n->fid = -1;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/*
 * Make the template-arena array *pv (n items of elem bytes, room for *cap) hold one more item:
 * when full, a copy with twice the room (4 at first) replaces it; old arrays are abandoned.
 */
static bool vec_room(struct parser *p, void *pv, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *nv = inf__arena_alloc(&p->t->arena, ncap * elem);
    if (!nv) {
        fail_at(p, 0, 0, INF_ENOMEM, "out of memory");
        return false;
    }
    if (n)
        memcpy(nv, *(void **)pv, n * elem);
    *(void **)pv = nv;
    *cap = ncap;
    return true;
}

/* Growable arrays in the template arena: of node pointers, symbol ids and names. */
struct nvec {
    struct tpl_node **v;
    size_t n, cap;
};
struct svec {
    int32_t *v;
    size_t n, cap;
};
struct cvec {
    const char **v;
    size_t n, cap;
};

/* Append x to *vec (a struct nvec, svec or cvec); false when out of memory. */
#define VEC_PUSH(p, vec, x)                                                                        \
    (vec_room(p, &(vec)->v, (vec)->n, &(vec)->cap, sizeof(*(vec)->v)) &&                           \
     ((vec)->v[(vec)->n++] = (x), true))

static bool enter(struct parser *p)
{
    if (++p->depth > MAX_NESTING) {
        fail_at(p, cur(p)->line, cur(p)->col, INF_ELIMIT,
                "template nested too deeply (more than %d levels)", MAX_NESTING);
        return false;
    }
    return true;
}

static void leave(struct parser *p)
{
    p->depth--;
}

/* ---- expressions ------------------------------------------------------------------------ */

static struct tpl_node *parse_expression(struct parser *p, bool with_condexpr);
static struct tpl_node *parse_tuple(struct parser *p, bool with_condexpr, bool explicit_parens,
                                    const char *extra_end);
static struct tpl_node *parse_primary(struct parser *p);
static struct tpl_node *parse_postfix(struct parser *p, struct tpl_node *node);
static struct tpl_node *parse_filter(struct parser *p, struct tpl_node *node, bool start_inline);

/* ( args, kw=values ) into n->list / n->list2 / n->kw. The '(' is current. */
static bool parse_call_args(struct parser *p, struct tpl_node *n)
{
    struct nvec args = {0}, kwv = {0};
    struct cvec kwn = {0};
    bool require_comma = false;

    if (!expect_op(p, '(', "'('"))
        return false;
    while (!tok_is_op(cur(p), ')')) {
        if (require_comma) {
            if (!expect_op(p, ',', "',' or ')'"))
                return false;
            if (tok_is_op(cur(p), ')'))
                break;
        }
        struct tok *t = cur(p);
        if (tok_is_op(t, '*') || tok_is_op(t, T_POW)) {
            fail_at(p, t->line, t->col, INF_EPARSE, "argument unpacking is not supported");
            return false;
        }
        if (t->type == TK_NAME && tok_is_op(look(p, 1), '=')) {
            const char *key = name_dup(p, t->s, t->len);
            if (!key)
                return false;
            advance(p);
            advance(p);
            struct tpl_node *v = parse_expression(p, true);
            if (!v || !VEC_PUSH(p, &kwn, key) || !VEC_PUSH(p, &kwv, v))
                return false;
        } else {
            if (kwv.n) {
                fail_at(p, t->line, t->col, INF_EPARSE,
                        "positional argument follows keyword argument");
                return false;
            }
            struct tpl_node *v = parse_expression(p, true);
            if (!v || !VEC_PUSH(p, &args, v))
                return false;
        }
        require_comma = true;
    }
    advance(p); /* ')' */
    n->list = args.v;
    n->n = args.n;
    n->list2 = kwv.v;
    n->n2 = kwv.n;
    n->kw = kwn.v;
    return true;
}

static struct tpl_node *parse_subscribed(struct parser *p)
{
    struct tok *t = cur(p);
    struct tpl_node *args[3] = {NULL, NULL, NULL};

    if (tok_is_op(t, ':')) {
        advance(p);
    } else {
        struct tpl_node *node = parse_expression(p, true);
        if (!node || !tok_is_op(cur(p), ':'))
            return node;
        advance(p);
        args[0] = node;
    }
    if (!tok_is_op(cur(p), ':') && !tok_is_op(cur(p), ']') && !tok_is_op(cur(p), ',')) {
        args[1] = parse_expression(p, true);
        if (!args[1])
            return NULL;
    }
    if (tok_is_op(cur(p), ':')) {
        advance(p);
        if (!tok_is_op(cur(p), ']') && !tok_is_op(cur(p), ',')) {
            args[2] = parse_expression(p, true);
            if (!args[2])
                return NULL;
        }
    }
    struct tpl_node *n = node_new(p, N_SLICE, t);
    if (!n)
        return NULL;
    n->a = args[0];
    n->b = args[1];
    n->c = args[2];
    return n;
}

static struct tpl_node *parse_subscript(struct parser *p, struct tpl_node *node)
{
    struct tok *t = cur(p);
    if (tok_is_op(t, '.')) {
        advance(p);
        struct tok *a = cur(p);
        if (a->type == TK_NAME) {
            struct tpl_node *n = node_new(p, N_GETATTR, a);
            if (!n)
                return NULL;
            n->a = node;
            n->name = name_dup(p, a->s, a->len);
            advance(p);
            return n->name ? n : NULL;
        }
        if (a->type == TK_INT) {
            struct tpl_node *k = node_new(p, N_LIT, a), *n = node_new(p, N_GETITEM, a);
            if (!k || !n)
                return NULL;
            k->lit = tpl_int(a->i);
            n->a = node;
            n->b = k;
            advance(p);
            return n;
        }
        fail_tok(p, a, "a name or a number after '.'");
        return NULL;
    }
    /* '[' */
    advance(p);
    struct nvec args = {0};
    while (!tok_is_op(cur(p), ']')) {
        if (args.n) {
            if (!expect_op(p, ',', "',' or ']'"))
                return NULL;
            if (tok_is_op(cur(p), ']'))
                break;
        }
        struct tpl_node *a = parse_subscribed(p);
        if (!a || !VEC_PUSH(p, &args, a))
            return NULL;
    }
    advance(p);
    if (args.n == 0) {
        fail_at(p, t->line, t->col, INF_EPARSE, "expected a subscript");
        return NULL;
    }
    struct tpl_node *n = node_new(p, N_GETITEM, t);
    if (!n)
        return NULL;
    n->a = node;
    if (args.n == 1) {
        n->b = args.v[0];
    } else {
        struct tpl_node *tu = node_new(p, N_TUPLE, t);
        if (!tu)
            return NULL;
        tu->list = args.v;
        tu->n = args.n;
        n->b = tu;
    }
    return n;
}

static struct tpl_node *parse_postfix(struct parser *p, struct tpl_node *node)
{
    while (node) {
        struct tok *t = cur(p);
        if (tok_is_op(t, '.') || tok_is_op(t, '[')) {
            node = parse_subscript(p, node);
        } else if (tok_is_op(t, '(')) {
            struct tpl_node *c = node_new(p, N_CALL, t);
            if (!c)
                return NULL;
            c->a = node;
            c->line = node->line;
            c->col = node->col;
            if (!parse_call_args(p, c))
                return NULL;
            node = c;
        } else {
            break;
        }
    }
    return node;
}

/* A filter or test name, dotted names allowed ("a.b"). */
static const char *parse_dotted_name(struct parser *p)
{
    struct tok *t = cur(p);
    if (t->type != TK_NAME) {
        fail_tok(p, t, "a name");
        return NULL;
    }
    char buf[256];
    size_t n = 0;
    for (;;) {
        t = cur(p);
        if (t->len + n + 1 >= sizeof(buf)) {
            fail_at(p, t->line, t->col, INF_EPARSE, "name is too long");
            return NULL;
        }
        memcpy(buf + n, t->s, t->len);
        n += t->len;
        advance(p);
        if (!tok_is_op(cur(p), '.') || look(p, 1)->type != TK_NAME)
            break;
        buf[n++] = '.';
        advance(p);
    }
    return name_dup(p, buf, n);
}

static struct tpl_node *parse_filter(struct parser *p, struct tpl_node *node, bool start_inline)
{
    while (tok_is_op(cur(p), '|') || start_inline) {
        if (!start_inline)
            advance(p);
        start_inline = false;
        struct tok *t = cur(p);
        struct tpl_node *f = node_new(p, N_FILTER, t);
        if (!f)
            return NULL;
        f->a = node;
        f->name = parse_dotted_name(p);
        if (!f->name)
            return NULL;
        f->fid = inf__tpl_filter_find(f->name);
        if (tok_is_op(cur(p), '(') && !parse_call_args(p, f))
            return NULL;
        node = f;
    }
    return node;
}

static struct tpl_node *parse_test(struct parser *p, struct tpl_node *node)
{
    struct tok *is = cur(p);
    bool negated = false;
    advance(p);
    if (tok_is_name(cur(p), "not")) {
        negated = true;
        advance(p);
    }
    struct tok *t = cur(p);
    struct tpl_node *n = node_new(p, N_TEST, t);
    if (!n)
        return NULL;
    n->a = node;
    n->name = parse_dotted_name(p);
    if (!n->name)
        return NULL;
    n->fid = inf__tpl_test_find(n->name);
    struct tok *c = cur(p);
    if (tok_is_op(c, '(')) {
        if (!parse_call_args(p, n))
            return NULL;
    } else if ((c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT ||
                c->type == TK_FLOAT || tok_is_op(c, '(') || tok_is_op(c, '[') ||
                tok_is_op(c, '{')) &&
               !tok_is_name(c, "else") && !tok_is_name(c, "or") && !tok_is_name(c, "and")) {
        if (tok_is_name(c, "is")) {
            fail_at(p, c->line, c->col, INF_EPARSE, "cannot chain tests with 'is'");
            return NULL;
        }
        struct tpl_node *arg = parse_postfix(p, parse_primary(p));
        if (!arg)
            return NULL;
        n->list = inf__arena_alloc(&p->t->arena, sizeof(*n->list));
        if (!n->list) {
            fail_at(p, c->line, c->col, INF_ENOMEM, "out of memory");
            return NULL;
        }
        n->list[0] = arg;
        n->n = 1;
    }
    if (negated) {
        struct tpl_node *no = node_new(p, N_UNARY, is);
        if (!no)
            return NULL;
        no->op = OP_NOT;
        no->a = n;
        return no;
    }
    return n;
}

static struct tpl_node *parse_filter_expr(struct parser *p, struct tpl_node *node)
{
    while (node) {
        struct tok *t = cur(p);
        if (tok_is_op(t, '|')) {
            node = parse_filter(p, node, false);
        } else if (tok_is_name(t, "is")) {
            node = parse_test(p, node);
        } else if (tok_is_op(t, '(')) {
            struct tpl_node *c = node_new(p, N_CALL, t);
            if (!c)
                return NULL;
            c->a = node;
            if (!parse_call_args(p, c))
                return NULL;
            node = c;
        } else {
            break;
        }
    }
    return node;
}

static struct tpl_node *parse_list_literal(struct parser *p, uint8_t kind, int close)
{
    struct tok *t = cur(p);
    struct nvec items = {0};
    advance(p);
    while (!tok_is_op(cur(p), close)) {
        if (items.n) {
            if (!expect_op(p, ',', close == ']' ? "',' or ']'" : "',' or ')'"))
                return NULL;
            if (tok_is_op(cur(p), close))
                break;
        }
        struct tpl_node *e = parse_expression(p, true);
        if (!e || !VEC_PUSH(p, &items, e))
            return NULL;
    }
    advance(p);
    struct tpl_node *n = node_new(p, kind, t);
    if (!n)
        return NULL;
    n->list = items.v;
    n->n = items.n;
    return n;
}

static struct tpl_node *parse_dict_literal(struct parser *p)
{
    struct tok *t = cur(p);
    struct nvec keys = {0}, vals = {0};
    advance(p);
    while (!tok_is_op(cur(p), '}')) {
        if (keys.n) {
            if (!expect_op(p, ',', "',' or '}'"))
                return NULL;
            if (tok_is_op(cur(p), '}'))
                break;
        }
        struct tpl_node *k = parse_expression(p, true);
        if (!k || !expect_op(p, ':', "':'"))
            return NULL;
        struct tpl_node *v = parse_expression(p, true);
        if (!v || !VEC_PUSH(p, &keys, k) || !VEC_PUSH(p, &vals, v))
            return NULL;
    }
    advance(p);
    struct tpl_node *n = node_new(p, N_DICT, t);
    if (!n)
        return NULL;
    n->list = keys.v;
    n->n = keys.n;
    n->list2 = vals.v;
    n->n2 = vals.n;
    return n;
}

static struct tpl_node *parse_primary(struct parser *p)
{
    struct tok *t = cur(p);
    struct tpl_node *n;

    switch (t->type) {
    case TK_NAME:
        n = node_new(p, N_LIT, t);
        if (!n)
            return NULL;
        if (tok_is_name(t, "true") || tok_is_name(t, "True")) {
            n->lit = tpl_bool(true);
        } else if (tok_is_name(t, "false") || tok_is_name(t, "False")) {
            n->lit = tpl_bool(false);
        } else if (tok_is_name(t, "none") || tok_is_name(t, "None")) {
            n->lit = tpl_none();
        } else {
            n->kind = N_NAME;
            n->sym = intern(p, t->s, t->len);
            if (n->sym < 0) {
                fail_at(p, t->line, t->col, INF_ENOMEM, "out of memory");
                return NULL;
            }
            n->name = p->sym_names[n->sym];
        }
        advance(p);
        return n;
    case TK_STRING: {
        n = node_new(p, N_LIT, t);
        if (!n)
            return NULL;
        struct tpl_str *s = t->str;
        advance(p);
        if (cur(p)->type == TK_STRING) {
            /* adjacent literals concatenate */
            size_t total = s->len;
            for (size_t k = p->pos; p->toks[k].type == TK_STRING; k++)
                total += p->toks[k].str->len;
            char *buf = malloc(total + 1);
            if (!buf) {
                fail_at(p, t->line, t->col, INF_ENOMEM, "out of memory");
                return NULL;
            }
            memcpy(buf, s->data, s->len);
            size_t o = s->len;
            while (cur(p)->type == TK_STRING) {
                memcpy(buf + o, cur(p)->str->data, cur(p)->str->len);
                o += cur(p)->str->len;
                advance(p);
            }
            s = inf__tpl_str_arena(&p->t->arena, buf, o);
            free(buf);
            if (!s) {
                fail_at(p, t->line, t->col, INF_ENOMEM, "out of memory");
                return NULL;
            }
        }
        n->lit.type = TPL_STR;
        n->lit.u.s = s;
        return n;
    }
    case TK_INT:
    case TK_FLOAT:
        n = node_new(p, N_LIT, t);
        if (!n)
            return NULL;
        n->lit = t->type == TK_INT ? tpl_int(t->i) : tpl_float(t->f);
        advance(p);
        return n;
    case TK_OP:
        if (t->op == '(') {
            advance(p);
            n = parse_tuple(p, true, true, NULL);
            if (!n || !expect_op(p, ')', "')'"))
                return NULL;
            return n;
        }
        if (t->op == '[')
            return parse_list_literal(p, N_LIST, ']');
        if (t->op == '{')
            return parse_dict_literal(p);
        break;
    default:
        break;
    }
    fail_tok(p, t, "an expression");
    return NULL;
}

static struct tpl_node *parse_unary(struct parser *p, bool with_filter)
{
    struct tok *t = cur(p);
    struct tpl_node *node;

    if (!enter(p))
        return NULL;
    if (tok_is_op(t, '-') || tok_is_op(t, '+')) {
        advance(p);
        node = node_new(p, N_UNARY, t);
        if (node) {
            node->op = t->op == '-' ? OP_NEG : OP_POS;
            node->a = parse_unary(p, false);
            if (!node->a)
                node = NULL;
        }
    } else {
        node = parse_primary(p);
    }
    node = parse_postfix(p, node);
    if (with_filter)
        node = parse_filter_expr(p, node);
    leave(p);
    return node;
}

static struct tpl_node *binary(struct parser *p, const struct tok *t, uint8_t op,
                               struct tpl_node *l, struct tpl_node *r)
{
    if (!l || !r)
        return NULL;
    struct tpl_node *n = node_new(p, N_BINARY, t);
    if (!n)
        return NULL;
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

/*
 * A level of left-associative binary operators: the operators (tok, or the keyword name when
 * set) and their node ops; the operands are the next tighter level.
 */
struct binop {
    int tok;
    const char *name;
    uint8_t op;
};

static struct tpl_node *parse_left_assoc(struct parser *p,
                                         struct tpl_node *(*operand)(struct parser *p),
                                         const struct binop *ops, size_t n_ops)
{
    struct tpl_node *l = operand(p);
    while (l) {
        struct tok *t = cur(p);
        uint8_t op = OP_NONE;
        for (size_t i = 0; i < n_ops && op == OP_NONE; i++)
            if (ops[i].name ? tok_is_name(t, ops[i].name) : tok_is_op(t, ops[i].tok))
                op = ops[i].op;
        if (op == OP_NONE)
            break;
        advance(p);
        l = binary(p, t, op, l, operand(p));
    }
    return l;
}

#define LEFT_ASSOC(p, operand, ops) parse_left_assoc(p, operand, ops, sizeof(ops) / sizeof(ops[0]))

static struct tpl_node *parse_unary_filtered(struct parser *p)
{
    return parse_unary(p, true);
}

static struct tpl_node *parse_pow(struct parser *p)
{
    static const struct binop ops[] = {{T_POW, NULL, OP_POW}};
    return LEFT_ASSOC(p, parse_unary_filtered, ops);
}

static struct tpl_node *parse_math2(struct parser *p)
{
    static const struct binop ops[] = {{'*', NULL, OP_MUL},
                                       {'/', NULL, OP_DIV},
                                       {T_FLOORDIV, NULL, OP_FLOORDIV},
                                       {'%', NULL, OP_MOD}};
    return LEFT_ASSOC(p, parse_pow, ops);
}

static struct tpl_node *parse_concat(struct parser *p)
{
    static const struct binop ops[] = {{'~', NULL, OP_CONCAT}};
    return LEFT_ASSOC(p, parse_math2, ops);
}

static struct tpl_node *parse_math1(struct parser *p)
{
    static const struct binop ops[] = {{'+', NULL, OP_ADD}, {'-', NULL, OP_SUB}};
    return LEFT_ASSOC(p, parse_concat, ops);
}

static struct tpl_node *parse_compare(struct parser *p)
{
    struct tok *start = cur(p);
    struct tpl_node *expr = parse_math1(p);
    struct nvec operands = {0};
    struct svec ops = {0};

    while (expr) {
        struct tok *t = cur(p);
        int32_t op = tok_is_op(t, T_EQ)   ? OP_EQ
                     : tok_is_op(t, T_NE) ? OP_NE
                     : tok_is_op(t, '<')  ? OP_LT
                     : tok_is_op(t, T_LE) ? OP_LE
                     : tok_is_op(t, '>')  ? OP_GT
                     : tok_is_op(t, T_GE) ? OP_GE
                                          : OP_NONE;
        if (op != OP_NONE) {
            advance(p);
        } else if (tok_is_name(t, "in")) {
            op = OP_IN;
            advance(p);
        } else if (tok_is_name(t, "not") && tok_is_name(look(p, 1), "in")) {
            op = OP_NOTIN;
            advance(p);
            advance(p);
        } else {
            break;
        }
        struct tpl_node *rhs = parse_math1(p);
        if (!rhs || !VEC_PUSH(p, &operands, rhs) || !VEC_PUSH(p, &ops, op))
            return NULL;
    }
    if (!expr || operands.n == 0)
        return expr;
    struct tpl_node *n = node_new(p, N_COMPARE, start);
    if (!n)
        return NULL;
    /* point at the first operator for messages */
    n->line = operands.v[0]->line;
    n->col = operands.v[0]->col;
    n->a = expr;
    n->list = operands.v;
    n->n = operands.n;
    n->syms = ops.v;
    n->n_syms = ops.n;
    return n;
}

static struct tpl_node *parse_not(struct parser *p)
{
    struct tok *t = cur(p);
    if (tok_is_name(t, "not")) {
        if (!enter(p))
            return NULL;
        advance(p);
        struct tpl_node *n = node_new(p, N_UNARY, t);
        if (n) {
            n->op = OP_NOT;
            n->a = parse_not(p);
            if (!n->a)
                n = NULL;
        }
        leave(p);
        return n;
    }
    return parse_compare(p);
}

static struct tpl_node *parse_and(struct parser *p)
{
    static const struct binop ops[] = {{0, "and", OP_AND}};
    return LEFT_ASSOC(p, parse_not, ops);
}

static struct tpl_node *parse_or(struct parser *p)
{
    static const struct binop ops[] = {{0, "or", OP_OR}};
    return LEFT_ASSOC(p, parse_and, ops);
}

static struct tpl_node *parse_condexpr(struct parser *p)
{
    struct tpl_node *expr1 = parse_or(p);
    while (expr1 && tok_is_name(cur(p), "if")) {
        struct tok *t = cur(p);
        advance(p);
        struct tpl_node *n = node_new(p, N_COND, t);
        if (!n)
            return NULL;
        n->a = expr1;
        n->b = parse_or(p);
        if (!n->b)
            return NULL;
        if (tok_is_name(cur(p), "else")) {
            advance(p);
            n->c = parse_condexpr(p);
            if (!n->c)
                return NULL;
        }
        expr1 = n;
    }
    return expr1;
}

static struct tpl_node *parse_expression(struct parser *p, bool with_condexpr)
{
    if (!enter(p))
        return NULL;
    struct tpl_node *n = with_condexpr ? parse_condexpr(p) : parse_or(p);
    leave(p);
    return n;
}

static bool is_tuple_end(struct parser *p, const char *extra_end)
{
    struct tok *t = cur(p);
    if (t->type == TK_VAR_END || t->type == TK_BLOCK_END || tok_is_op(t, ')') || t->type == TK_EOF)
        return true;
    return extra_end && tok_is_name(t, extra_end);
}

static struct tpl_node *parse_tuple(struct parser *p, bool with_condexpr, bool explicit_parens,
                                    const char *extra_end)
{
    struct tok *start = cur(p);
    struct nvec items = {0};
    bool is_tuple = false;

    for (;;) {
        if (items.n && !expect_op(p, ',', "','"))
            return NULL;
        if (is_tuple_end(p, extra_end))
            break;
        struct tpl_node *e = parse_expression(p, with_condexpr);
        if (!e || !VEC_PUSH(p, &items, e))
            return NULL;
        if (tok_is_op(cur(p), ','))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n)
            return items.v[0];
        if (!explicit_parens) {
            fail_tok(p, cur(p), "an expression");
            return NULL;
        }
    }
    struct tpl_node *n = node_new(p, N_TUPLE, start);
    if (!n)
        return NULL;
    n->list = items.v;
    n->n = items.n;
    return n;
}

/* ---- statements ------------------------------------------------------------------------- */

static bool subparse(struct parser *p, const struct tok *opener, const char *const *end_tags,
                     struct nvec *body);

/* Names for `for`/`set`/`with` targets: NAME or NAME, NAME… (optionally in parentheses). */
static bool parse_targets(struct parser *p, struct svec *syms, bool *unpack)
{
    bool paren = false;
    *unpack = false;
    if (tok_is_op(cur(p), '(')) {
        paren = true;
        *unpack = true;
        advance(p);
    }
    for (;;) {
        struct tok *t = cur(p);
        if (t->type != TK_NAME || tok_is_name(t, "in")) {
            fail_tok(p, t, "a variable name");
            return false;
        }
        if (tok_is_name(t, "true") || tok_is_name(t, "false") || tok_is_name(t, "none") ||
            tok_is_name(t, "True") || tok_is_name(t, "False") || tok_is_name(t, "None")) {
            fail_at(p, t->line, t->col, INF_EPARSE, "cannot assign to '%.*s'", (int)t->len, t->s);
            return false;
        }
        int32_t s = intern(p, t->s, t->len);
        if (s < 0) {
            fail_at(p, t->line, t->col, INF_ENOMEM, "out of memory");
            return false;
        }
        if (!VEC_PUSH(p, syms, s))
            return false;
        advance(p);
        if (!tok_is_op(cur(p), ','))
            break;
        *unpack = true;
        advance(p);
        if (paren && tok_is_op(cur(p), ')'))
            break;
        if (!paren && (tok_is_name(cur(p), "in") || tok_is_op(cur(p), '=')))
            break;
    }
    if (paren && !expect_op(p, ')', "')'"))
        return false;
    return true;
}

static const char *const END_FOR[] = {"endfor", "else", NULL};
static const char *const END_FOR2[] = {"endfor", NULL};
static const char *const END_IF[] = {"elif", "else", "endif", NULL};
static const char *const END_IF2[] = {"endif", NULL};
static const char *const END_SET[] = {"endset", NULL};
static const char *const END_MACRO[] = {"endmacro", NULL};
static const char *const END_CALL[] = {"endcall", NULL};
static const char *const END_FILTER[] = {"endfilter", NULL};
static const char *const END_WITH[] = {"endwith", NULL};
static const char *const END_GEN[] = {"endgeneration", NULL};

/* Consume "{% <name>" checks already done by the caller; here: the name, then '%}'. */
static bool end_tag(struct parser *p)
{
    advance(p); /* the end tag's name */
    return expect_block_end(p);
}

static struct tpl_node *parse_for(struct parser *p, struct tok *t)
{
    struct tpl_node *n = node_new(p, N_FOR, t);
    struct svec syms = {0};
    bool unpack;
    struct nvec body = {0}, alt = {0};

    if (!n || !parse_targets(p, &syms, &unpack))
        return NULL;
    n->syms = syms.v;
    n->n_syms = syms.n;
    n->flags = unpack ? TPL_FLAG_UNPACK : 0;
    if (!tok_is_name(cur(p), "in")) {
        fail_tok(p, cur(p), "'in'");
        return NULL;
    }
    advance(p);
    n->a = parse_tuple(p, false, false, "recursive");
    if (!n->a)
        return NULL;
    if (tok_is_name(cur(p), "if")) {
        advance(p);
        n->b = parse_expression(p, true);
        if (!n->b)
            return NULL;
    }
    if (tok_is_name(cur(p), "recursive")) {
        fail_at(p, cur(p)->line, cur(p)->col, INF_EPARSE, "recursive loops are not supported");
        return NULL;
    }
    if (!expect_block_end(p))
        return NULL;
    p->loop_depth++;
    bool ok = subparse(p, t, END_FOR, &body);
    p->loop_depth--;
    if (!ok)
        return NULL;
    if (tok_is_name(cur(p), "else")) {
        if (!end_tag(p) || !subparse(p, t, END_FOR2, &alt))
            return NULL;
    }
    if (!end_tag(p))
        return NULL;
    n->list = body.v;
    n->n = body.n;
    n->list2 = alt.v;
    n->n2 = alt.n;
    return n;
}

/* if / elif… / else: elif branches chain through list2 (flagged TPL_FLAG_ELIF), built and run
 * iteratively so a long chain cannot exhaust the stack. */
static struct tpl_node *parse_if(struct parser *p, struct tok *t)
{
    struct tpl_node *first = NULL, *prev = NULL;
    struct tok *at = t;

    for (;;) {
        struct tpl_node *n = node_new(p, N_IF, at);
        struct nvec body = {0};
        if (!n)
            return NULL;
        n->a = parse_tuple(p, false, false, NULL);
        if (!n->a || !expect_block_end(p) || !subparse(p, t, END_IF, &body))
            return NULL;
        n->list = body.v;
        n->n = body.n;
        if (prev) {
            struct nvec link = {0};
            if (!VEC_PUSH(p, &link, n))
                return NULL;
            prev->list2 = link.v;
            prev->n2 = 1;
            n->flags |= TPL_FLAG_ELIF;
        } else {
            first = n;
        }
        prev = n;
        if (tok_is_name(cur(p), "elif")) {
            at = cur(p);
            advance(p);
            continue;
        }
        if (tok_is_name(cur(p), "else")) {
            struct nvec alt = {0};
            if (!end_tag(p) || !subparse(p, t, END_IF2, &alt))
                return NULL;
            n->list2 = alt.v;
            n->n2 = alt.n;
        }
        if (!end_tag(p))
            return NULL;
        return first;
    }
}

static struct tpl_node *parse_set(struct parser *p, struct tok *t)
{
    struct tpl_node *n = node_new(p, N_SET, t);
    if (!n)
        return NULL;
    struct tok *a = cur(p);
    if (a->type == TK_NAME && tok_is_op(look(p, 1), '.') && look(p, 2)->type == TK_NAME) {
        /* ns.attr */
        n->kind = N_SET_ATTR;
        n->a = parse_primary(p);
        if (!n->a)
            return NULL;
        advance(p); /* '.' */
        n->name = name_dup(p, cur(p)->s, cur(p)->len);
        if (!n->name)
            return NULL;
        advance(p);
    } else {
        struct svec syms = {0};
        bool unpack;
        if (!parse_targets(p, &syms, &unpack))
            return NULL;
        n->syms = syms.v;
        n->n_syms = syms.n;
        n->flags = unpack ? TPL_FLAG_UNPACK : 0;
    }
    if (tok_is_op(cur(p), '=')) {
        advance(p);
        n->b = parse_tuple(p, true, false, NULL);
        if (!n->b || !expect_block_end(p))
            return NULL;
        return n;
    }
    /* block set */
    if (n->flags & TPL_FLAG_UNPACK) {
        fail_at(p, t->line, t->col, INF_EPARSE, "a block set takes one target");
        return NULL;
    }
    if (tok_is_op(cur(p), '|')) {
        n->c = parse_filter(p, NULL, false);
        if (!n->c)
            return NULL;
    }
    struct nvec body = {0};
    unsigned saved = p->loop_depth;
    p->loop_depth = 0;
    bool ok = expect_block_end(p) && subparse(p, t, END_SET, &body) && end_tag(p);
    p->loop_depth = saved;
    if (!ok)
        return NULL;
    if (n->kind == N_SET_ATTR)
        n->flags |= TPL_FLAG_ATTR;
    n->kind = N_SET_BLOCK;
    n->list = body.v;
    n->n = body.n;
    return n;
}

/* ( name [= default], … ) into syms / list2 */
static bool parse_params(struct parser *p, struct tpl_node *n)
{
    struct svec syms = {0};
    struct nvec defs = {0};
    if (!expect_op(p, '(', "'('"))
        return false;
    while (!tok_is_op(cur(p), ')')) {
        if (syms.n && !expect_op(p, ',', "',' or ')'"))
            return false;
        if (tok_is_op(cur(p), ')'))
            break;
        struct tok *a = cur(p);
        if (a->type != TK_NAME) {
            fail_tok(p, a, "a parameter name");
            return false;
        }
        int32_t s = intern(p, a->s, a->len);
        if (s < 0 || !VEC_PUSH(p, &syms, s))
            return false;
        advance(p);
        struct tpl_node *def = NULL;
        if (tok_is_op(cur(p), '=')) {
            advance(p);
            def = parse_expression(p, true);
            if (!def)
                return false;
        } else if (defs.n && defs.v[defs.n - 1]) {
            fail_at(p, a->line, a->col, INF_EPARSE,
                    "parameter without a default follows one with a default");
            return false;
        }
        if (!VEC_PUSH(p, &defs, def))
            return false;
    }
    advance(p);
    n->syms = syms.v;
    n->n_syms = syms.n;
    n->list2 = defs.v;
    n->n2 = defs.n;
    return true;
}

static struct tpl_node *parse_macro(struct parser *p, struct tok *t)
{
    struct tpl_node *n = node_new(p, N_MACRO, t);
    struct tok *a = cur(p);
    if (!n)
        return NULL;
    if (a->type != TK_NAME) {
        fail_tok(p, a, "a macro name");
        return NULL;
    }
    n->sym = intern(p, a->s, a->len);
    if (n->sym < 0) {
        fail_at(p, a->line, a->col, INF_ENOMEM, "out of memory");
        return NULL;
    }
    n->name = p->sym_names[n->sym];
    advance(p);
    if (!parse_params(p, n))
        return NULL;
    struct nvec body = {0};
    unsigned saved = p->loop_depth;
    p->loop_depth = 0;
    bool ok = expect_block_end(p) && subparse(p, t, END_MACRO, &body);
    p->loop_depth = saved;
    if (!ok)
        return NULL;
    advance(p); /* endmacro */
    if (cur(p)->type == TK_NAME)
        advance(p); /* {% endmacro name %} */
    if (!expect_block_end(p))
        return NULL;
    n->list = body.v;
    n->n = body.n;
    return n;
}

static struct tpl_node *parse_call_block(struct parser *p, struct tok *t)
{
    struct tpl_node *n = node_new(p, N_CALL_BLOCK, t);
    if (!n)
        return NULL;
    if (tok_is_op(cur(p), '(') && !parse_params(p, n))
        return NULL;
    n->a = parse_expression(p, true);
    if (!n->a)
        return NULL;
    if (n->a->kind != N_CALL) {
        fail_at(p, n->a->line, n->a->col, INF_EPARSE, "expected a call after 'call'");
        return NULL;
    }
    struct nvec body = {0};
    unsigned saved = p->loop_depth;
    p->loop_depth = 0;
    bool ok = expect_block_end(p) && subparse(p, t, END_CALL, &body) && end_tag(p);
    p->loop_depth = saved;
    if (!ok)
        return NULL;
    n->list = body.v;
    n->n = body.n;
    return n;
}

static struct tpl_node *parse_filter_block(struct parser *p, struct tok *t)
{
    struct tpl_node *n = node_new(p, N_FILTER_BLOCK, t);
    if (!n)
        return NULL;
    n->c = parse_filter(p, NULL, true);
    if (!n->c)
        return NULL;
    struct nvec body = {0};
    if (!expect_block_end(p) || !subparse(p, t, END_FILTER, &body) || !end_tag(p))
        return NULL;
    n->list = body.v;
    n->n = body.n;
    return n;
}

static struct tpl_node *parse_with(struct parser *p, struct tok *t)
{
    struct tpl_node *n = node_new(p, N_WITH, t);
    struct svec syms = {0};
    struct nvec vals = {0}, body = {0};
    if (!n)
        return NULL;
    while (cur(p)->type != TK_BLOCK_END) {
        if (syms.n && !expect_op(p, ',', "','"))
            return NULL;
        struct tok *a = cur(p);
        if (a->type != TK_NAME) {
            fail_tok(p, a, "a variable name");
            return NULL;
        }
        int32_t s = intern(p, a->s, a->len);
        if (s < 0 || !VEC_PUSH(p, &syms, s))
            return NULL;
        advance(p);
        if (!expect_op(p, '=', "'='"))
            return NULL;
        struct tpl_node *v = parse_expression(p, true);
        if (!v || !VEC_PUSH(p, &vals, v))
            return NULL;
    }
    if (!expect_block_end(p) || !subparse(p, t, END_WITH, &body) || !end_tag(p))
        return NULL;
    n->syms = syms.v;
    n->n_syms = syms.n;
    n->list2 = vals.v;
    n->n2 = vals.n;
    n->list = body.v;
    n->n = body.n;
    return n;
}

static struct tpl_node *parse_statement(struct parser *p)
{
    struct tok *t = cur(p);
    if (t->type != TK_NAME) {
        fail_tok(p, t, "a tag name");
        return NULL;
    }
    advance(p);
    if (tok_is_name(t, "for"))
        return parse_for(p, t);
    if (tok_is_name(t, "if"))
        return parse_if(p, t);
    if (tok_is_name(t, "set"))
        return parse_set(p, t);
    if (tok_is_name(t, "macro"))
        return parse_macro(p, t);
    if (tok_is_name(t, "call"))
        return parse_call_block(p, t);
    if (tok_is_name(t, "filter"))
        return parse_filter_block(p, t);
    if (tok_is_name(t, "with"))
        return parse_with(p, t);
    if (tok_is_name(t, "break") || tok_is_name(t, "continue")) {
        if (p->loop_depth == 0) {
            fail_at(p, t->line, t->col, INF_EPARSE, "'%.*s' outside of a loop", (int)t->len, t->s);
            return NULL;
        }
        struct tpl_node *n = node_new(p, tok_is_name(t, "break") ? N_BREAK : N_CONTINUE, t);
        if (!n || !expect_block_end(p))
            return NULL;
        return n;
    }
    if (tok_is_name(t, "do")) {
        struct tpl_node *n = node_new(p, N_DO, t);
        if (!n)
            return NULL;
        n->a = parse_tuple(p, true, false, NULL);
        if (!n->a || !expect_block_end(p))
            return NULL;
        return n;
    }
    if (tok_is_name(t, "generation")) {
        struct tpl_node *n = node_new(p, N_BLOCK, t);
        struct nvec body = {0};
        if (!n || !expect_block_end(p) || !subparse(p, t, END_GEN, &body) || !end_tag(p))
            return NULL;
        n->list = body.v;
        n->n = body.n;
        return n;
    }
    if (tok_is_name(t, "extends") || tok_is_name(t, "include") || tok_is_name(t, "import") ||
        tok_is_name(t, "from") || tok_is_name(t, "block") || tok_is_name(t, "autoescape")) {
        fail_at(p, t->line, t->col, INF_EPARSE, "the '%.*s' tag is not supported", (int)t->len,
                t->s);
        return NULL;
    }
    fail_at(p, t->line, t->col, INF_EPARSE, "unknown tag '%.*s'", (int)(t->len > 40 ? 40 : t->len),
            t->s);
    return NULL;
}

static bool in_list(const struct tok *t, const char *const *names)
{
    for (size_t i = 0; names && names[i]; i++)
        if (tok_is_name(t, names[i]))
            return true;
    return false;
}

/*
 * Statements until a block tag named in end_tags (left current, after its '{%') or the end of
 * the template (an error when end_tags is not NULL).
 */
static bool subparse(struct parser *p, const struct tok *opener, const char *const *end_tags,
                     struct nvec *body)
{
    if (!enter(p))
        return false;
    for (;;) {
        struct tok *t = cur(p);
        struct tpl_node *n = NULL;
        if (t->type == TK_EOF) {
            if (end_tags) {
                char want[128] = "";
                size_t o = 0;
                for (size_t i = 0; end_tags[i] && o < sizeof(want) - 40; i++)
                    o += (size_t)snprintf(want + o, sizeof(want) - o, "%s'%s'", i ? " or " : "",
                                          end_tags[i]);
                fail_at(p, opener->line, opener->col, INF_EPARSE,
                        "'%.*s' is never closed: the template ends before %s", (int)opener->len,
                        opener->s, want);
                goto out;
            }
            leave(p);
            return true;
        }
        if (t->type == TK_TEXT) {
            n = node_new(p, N_TEXT, t);
            if (!n)
                goto out;
            n->lit.type = TPL_STR;
            n->lit.u.s = t->str;
            advance(p);
        } else if (t->type == TK_VAR_BEGIN) {
            advance(p);
            n = node_new(p, N_OUTPUT, t);
            if (!n)
                goto out;
            n->a = parse_tuple(p, true, false, NULL);
            if (!n->a)
                goto out;
            if (cur(p)->type != TK_VAR_END) {
                fail_tok(p, cur(p), "'}}'");
                goto out;
            }
            advance(p);
        } else if (t->type == TK_BLOCK_BEGIN) {
            advance(p);
            struct tok *name = cur(p);
            if (end_tags && in_list(name, end_tags)) {
                leave(p);
                return true;
            }
            if (name->type == TK_NAME && name->len > 3 &&
                (memcmp(name->s, "end", 3) == 0 || tok_is_name(name, "else") ||
                 tok_is_name(name, "elif"))) {
                fail_at(p, name->line, name->col, INF_EPARSE, "unexpected '%.*s'",
                        (int)(name->len > 40 ? 40 : name->len), name->s);
                goto out;
            }
            if (tok_is_name(name, "else") || tok_is_name(name, "elif")) {
                fail_at(p, name->line, name->col, INF_EPARSE, "unexpected '%.*s'", (int)name->len,
                        name->s);
                goto out;
            }
            n = parse_statement(p);
            if (!n)
                goto out;
        } else {
            fail_tok(p, t, "template text or a tag");
            goto out;
        }
        if (!VEC_PUSH(p, body, n))
            goto out;
    }
out:
    leave(p);
    return false;
}

/* ---- entry point ------------------------------------------------------------------------ */

/* Validate UTF-8; on failure set the error with the position of the first bad byte. */
static bool check_utf8(const char *s, size_t len, struct inf_error *err)
{
    uint32_t line = 1, col = 1;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = 0;
        uint32_t cp = 0, min = 0;
        if (c < 0x80) {
            n = 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4, cp = c & 0x07, min = 0x10000;
        }
        bool ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            if ((cc & 0xC0) != 0x80)
                ok = false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (ok && n > 1 && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
            ok = false;
        if (!ok) {
            inf_error_set(err, INF_EPARSE, "line %u, column %u: the template is not valid UTF-8",
                          line, col);
            return false;
        }
        if (c == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return true;
}

inf_status inf__tpl_parse(const char *src, size_t len, struct inf_template **out,
                          struct inf_error *err)
{
    struct parser p = {0};
    struct nvec body = {0};
    inf_status rc = INF_OK;

    *out = NULL;
    if (!src && len)
        return inf_error_set(err, INF_EINVAL, "no template source");
    if (len > INF_TEMPLATE_MAX_SOURCE)
        return inf_error_set(err, INF_ELIMIT, "template is too large (%zu bytes, the limit is %u)",
                             len, (unsigned)INF_TEMPLATE_MAX_SOURCE);
    if (!check_utf8(src, len, err))
        return INF_EPARSE;
    p.err = err;
    p.t = calloc(1, sizeof(*p.t));
    p.src = malloc(len + 1);
    if (!p.t || !p.src) {
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto out;
    }
    /* normalise newlines; drop one trailing newline */
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            p.src[p.len++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            p.src[p.len++] = src[i];
        }
    }
    if (p.len && p.src[p.len - 1] == '\n')
        p.len--;
    p.src[p.len] = '\0';
    p.loc_line = 1;
    p.loc_col = 1;

    if (lex(&p) || !subparse(&p, NULL, NULL, &body)) {
        rc = err && err->code ? err->code : INF_EPARSE;
        if (!p.failed)
            rc = inf_error_set(err, INF_EPARSE, "parse error");
        goto out;
    }
    p.t->root = node_new(&p, N_BLOCK, &p.toks[0]);
    if (!p.t->root) {
        rc = INF_ENOMEM;
        goto out;
    }
    p.t->root->list = body.v;
    p.t->root->n = body.n;
    p.t->n_syms = p.n_syms;
    p.t->sym_names = inf__arena_alloc(&p.t->arena, (p.n_syms + 1) * sizeof(char *));
    if (!p.t->sym_names) {
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto out;
    }
    if (p.n_syms)
        memcpy(p.t->sym_names, p.sym_names, p.n_syms * sizeof(char *));
    p.t->sym_loop = p.t->sym_caller = p.t->sym_varargs = p.t->sym_kwargs = -1;
    for (size_t i = 0; i < p.n_syms; i++) {
        if (strcmp(p.sym_names[i], "loop") == 0)
            p.t->sym_loop = (int32_t)i;
        else if (strcmp(p.sym_names[i], "caller") == 0)
            p.t->sym_caller = (int32_t)i;
        else if (strcmp(p.sym_names[i], "varargs") == 0)
            p.t->sym_varargs = (int32_t)i;
        else if (strcmp(p.sym_names[i], "kwargs") == 0)
            p.t->sym_kwargs = (int32_t)i;
    }
    *out = p.t;
    p.t = NULL;
out:
    if (p.failed && rc == INF_OK)
        rc = INF_EPARSE;
    if (p.t) {
        inf__arena_release(&p.t->arena);
        free(p.t);
    }
    free(p.src);
    free(p.toks);
    free(p.syms);
    free(p.sym_names);
    return rc;
}
