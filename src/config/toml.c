/*
 * toml.c - a TOML 1.0.0 parser reading from memory (see toml.h for the contract).
 *
 * The document is first scanned once for invalid UTF-8, bare carriage returns and forbidden
 * control characters. The parser then reads only the valid prefix before the first such byte,
 * so an encoding error is reported at its place unless a syntax error comes earlier, and the
 * grammar code below may assume well-formed UTF-8 with every CR followed by LF.
 *
 * Parsing is one forward pass of recursive descent. Recursion happens only for nested arrays
 * and inline tables, and every container carries a depth that is capped at INF_TOML_MAX_DEPTH,
 * so that neither the parser nor any recursive walk of the tree (free, printers) can exhaust
 * the stack. Keys are indexed in one open-addressing hash keyed by (table, key), which keeps
 * building tables with many keys linear; line/column numbers come from a cache that moves
 * forward with the parser, so computing them is linear in the document as well.
 */
#include "config/toml.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h" /* inf__hex_digit */

/* Bookkeeping bits in struct inf_toml_table.flags. */
enum {
    TF_HEADER = 1u << 0,   /* defined by [header] or [[header]]: cannot be defined again */
    TF_DOTTED = 1u << 1,   /* created or extended by dotted keys: no [header] may define it */
    TF_INLINE = 1u << 2,   /* an inline table: closed to any later addition */
    TF_AOT_ITEM = 1u << 3, /* an element of an array of tables ([[header]]) */
};

/* One part of a (dotted) key while it is being parsed. */
struct seg {
    char *s; /* decoded and NUL-terminated; NULL once ownership moved to the tree */
    size_t len;
    size_t pos; /* offset of the part's first byte in the document */
};

/* One slot of the (table, key) index; t == NULL marks an empty slot. */
struct slot {
    struct inf_toml_table *t;
    size_t idx; /* index into t->kvs */
};

struct parser {
    const char *src;
    size_t len;   /* bytes to parse: the document up to its first encoding error */
    size_t pos;   /* the next byte to read */
    size_t start; /* 3 after a UTF-8 byte-order mark, else 0 */

    size_t lc_pos; /* line/column cache: the offset converted last and its position */
    uint32_t lc_line, lc_col;

    struct inf_error *err;
    size_t err_pos; /* where the reported syntax error is */

    struct inf_toml_table *root;
    struct inf_toml_table *cur; /* the table that key/value lines currently go to */
    int cur_depth;              /* its depth: root 0, each table or array level +1 */

    struct seg *segs; /* [cap_segs]: the parts of the key being parsed */
    size_t n_segs, cap_segs;

    struct slot *slots; /* [cap_slots], a power of two, at most half full */
    size_t n_slots, cap_slots;
};

static void free_value(struct inf_toml_value *v);

/* ---- positions and errors ---------------------------------------------------------------- */

/* Convert a byte offset to a 1-based line and column (columns count characters, not bytes). */
static void linecol(struct parser *p, size_t pos, uint32_t *line, uint32_t *col)
{
    if (pos < p->start)
        pos = p->start;
    if (p->lc_line == 0 || pos < p->lc_pos) {
        p->lc_pos = p->start;
        p->lc_line = 1;
        p->lc_col = 1;
    }
    for (size_t i = p->lc_pos; i < pos; i++) {
        unsigned char c = (unsigned char)p->src[i];
        if (c == '\n') {
            p->lc_line++;
            p->lc_col = 1;
        } else if ((c & 0xC0) != 0x80) {
            p->lc_col++;
        }
    }
    p->lc_pos = pos;
    *line = p->lc_line;
    *col = p->lc_col;
}

static inf_status perr(struct parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a syntax error at byte offset pos: "line L, column C: <message>". */
static inf_status perr(struct parser *p, size_t pos, const char *fmt, ...)
{
    char msg[384];
    uint32_t line, col;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    linecol(p, pos, &line, &col);
    p->err_pos = pos;
    return inf_error_set(p->err, INF_EPARSE, "line %u, column %u: %s", (unsigned)line,
                         (unsigned)col, msg);
}

static inf_status nomem(struct parser *p)
{
    return inf_error_set(p->err, INF_ENOMEM, "out of memory while parsing toml");
}

/* Decode the (valid) UTF-8 character at pos; bounded by p->len. */
static uint32_t decode_at(const struct parser *p, size_t pos)
{
    const unsigned char *s = (const unsigned char *)p->src;
    uint32_t c = s[pos];
    size_t n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;

    if (n == 0)
        return c;
    c &= 0x3Fu >> n;
    for (size_t k = 1; k <= n && pos + k < p->len; k++)
        c = (c << 6) | (s[pos + k] & 0x3Fu);
    return c;
}

/* A short description of what is at pos, for "expected X, found Y" messages. */
static const char *describe(const struct parser *p, size_t pos, char *buf, size_t n)
{
    unsigned char c;

    if (pos >= p->len)
        return "end of input";
    c = (unsigned char)p->src[pos];
    if (c == '\n' || c == '\r')
        return "end of line";
    if (c == '\t')
        return "a tab";
    if (c == ' ')
        return "a space";
    if (c > 0x20 && c < 0x7F)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "U+%04X", (unsigned)decode_at(p, pos));
    return buf;
}

static inf_status expected(struct parser *p, const char *what)
{
    char buf[32];
    return perr(p, p->pos, "expected %s, found %s", what, describe(p, p->pos, buf, sizeof(buf)));
}

/* Copy a key into buf for a message: at most ~40 bytes, control characters and quotes masked. */
static const char *quote_key(const char *s, size_t len, char *buf, size_t n)
{
    size_t cut = len, o = 0;

    if (cut > 40) {
        cut = 40;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    for (size_t i = 0; i < cut && o + 4 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = (c < 0x20 || c == 0x7F || c == '\'') ? '?' : (char)c;
    }
    if (cut < len && o + 4 < n) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- encoding check ---------------------------------------------------------------------- */

/*
 * Return the offset of the first byte that cannot be part of a TOML document (len when there is
 * none) and write the reason to why: invalid or overlong UTF-8, surrogates, code points above
 * U+10FFFF, a CR not followed by LF, or a control character other than tab and LF. TOML allows
 * such control characters nowhere, not even in strings and comments, so this one check covers
 * them all.
 */
static size_t find_bad_byte(const unsigned char *s, size_t start, size_t len, char *why,
                            size_t why_n)
{
    size_t i = start;

    while (i < len) {
        unsigned c = s[i];
        unsigned lo = 0x80, hi = 0xBF;
        size_t need;

        if (c < 0x80) {
            if (c == '\r') {
                if (i + 1 >= len || s[i + 1] != '\n') {
                    snprintf(why, why_n, "carriage return not followed by a line feed");
                    return i;
                }
                i += 2;
                continue;
            }
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F) {
                snprintf(why, why_n, "control character U+%04X is not allowed", c);
                return i;
            }
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2;
            lo = 0xA0;
        } else if (c == 0xED) {
            need = 2;
            hi = 0x9F;
        } else if (c >= 0xE1 && c <= 0xEF) {
            need = 2;
        } else if (c == 0xF0) {
            need = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3;
            hi = 0x8F;
        } else {
            snprintf(why, why_n, "invalid utf-8 byte 0x%02X", c);
            return i;
        }
        if (len - i - 1 < need || s[i + 1] < lo || s[i + 1] > hi) {
            snprintf(why, why_n, "invalid utf-8 sequence starting with byte 0x%02X", c);
            return i;
        }
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                snprintf(why, why_n, "invalid utf-8 sequence starting with byte 0x%02X", c);
                return i;
            }
        }
        i += need + 1;
    }
    return len;
}

/* ---- tree building ----------------------------------------------------------------------- */

static struct inf_toml_value *new_value(enum inf_toml_type type, uint32_t line, uint32_t col)
{
    struct inf_toml_value *v = calloc(1, sizeof(*v));

    if (!v)
        return NULL;
    v->type = type;
    v->line = line;
    v->column = col;
    return v;
}

/* A TABLE value with a fresh, empty table. */
static struct inf_toml_value *new_table_value(uint32_t line, uint32_t col, unsigned flags)
{
    struct inf_toml_value *v = new_value(INF_TOML_TABLE, line, col);

    if (!v)
        return NULL;
    v->u.table = calloc(1, sizeof(*v->u.table));
    if (!v->u.table) {
        free(v);
        return NULL;
    }
    v->u.table->flags = flags;
    return v;
}

static void free_table(struct inf_toml_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->kvs[i].key);
        free_value(t->kvs[i].value);
    }
    free(t->kvs);
    free(t);
}

/* Recursion is bounded: the parser never builds a tree deeper than INF_TOML_MAX_DEPTH. */
static void free_value(struct inf_toml_value *v)
{
    if (!v)
        return;
    switch (v->type) {
    case INF_TOML_STRING:
        free(v->u.str.ptr);
        break;
    case INF_TOML_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++)
            free_value(v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case INF_TOML_TABLE:
        free_table(v->u.table);
        break;
    default:
        break;
    }
    free(v);
}

/* Append item to an array value; the capacity is implied by n (4, 8, 16, ...). */
static bool arr_push(struct inf_toml_value *a, struct inf_toml_value *item)
{
    size_t n = a->u.arr.n;

    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        size_t cap = n == 0 ? 4 : n * 2;
        struct inf_toml_value **items;

        if (cap > SIZE_MAX / sizeof(struct inf_toml_value *))
            return false;
        items = realloc(a->u.arr.items, cap * sizeof(struct inf_toml_value *));
        if (!items)
            return false;
        a->u.arr.items = items;
    }
    a->u.arr.items[n] = item;
    a->u.arr.n = n + 1;
    return true;
}

static size_t hash_key(const struct inf_toml_table *t, const char *key, size_t len)
{
    uint64_t h = 14695981039346656037u ^ ((uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15u);

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211u;
    }
    return (size_t)(h ^ (h >> 29));
}

static struct inf_toml_kv *tab_get(const struct parser *p, struct inf_toml_table *t,
                                   const char *key, size_t len)
{
    size_t mask, i;

    if (p->cap_slots == 0)
        return NULL;
    mask = p->cap_slots - 1;
    for (i = hash_key(t, key, len) & mask; p->slots[i].t; i = (i + 1) & mask) {
        if (p->slots[i].t == t) {
            struct inf_toml_kv *kv = &t->kvs[p->slots[i].idx];
            if (kv->key_len == len && memcmp(kv->key, key, len) == 0)
                return kv;
        }
    }
    return NULL;
}

static void index_put(struct slot *slots, size_t cap, struct inf_toml_table *t, size_t idx)
{
    const struct inf_toml_kv *kv = &t->kvs[idx];
    size_t mask = cap - 1, i = hash_key(t, kv->key, kv->key_len) & mask;

    while (slots[i].t)
        i = (i + 1) & mask;
    slots[i].t = t;
    slots[i].idx = idx;
}

static bool index_grow(struct parser *p)
{
    size_t cap = p->cap_slots ? p->cap_slots * 2 : 64;
    struct slot *slots;

    if (cap > SIZE_MAX / 2 / sizeof(*slots))
        return false;
    slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return false;
    for (size_t i = 0; i < p->cap_slots; i++) {
        if (p->slots[i].t)
            index_put(slots, cap, p->slots[i].t, p->slots[i].idx);
    }
    free(p->slots);
    p->slots = slots;
    p->cap_slots = cap;
    return true;
}

/*
 * Append key = v to table t. Takes ownership of key (malloc'ed, NUL-terminated) and v, and frees
 * both on failure. The caller has checked that the key is not in t yet.
 */
static inf_status tab_add(struct parser *p, struct inf_toml_table *t, char *key, size_t key_len,
                          uint32_t line, uint32_t col, struct inf_toml_value *v)
{
    struct inf_toml_kv *kv;

    if ((p->n_slots + 1) * 2 > p->cap_slots && !index_grow(p))
        goto out_nomem;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        struct inf_toml_kv *kvs;

        if (cap > SIZE_MAX / sizeof(*kvs))
            goto out_nomem;
        kvs = realloc(t->kvs, cap * sizeof(*kvs));
        if (!kvs)
            goto out_nomem;
        t->kvs = kvs;
        t->cap = cap;
    }
    kv = &t->kvs[t->n];
    kv->key = key;
    kv->key_len = key_len;
    kv->line = line;
    kv->column = col;
    kv->value = v;
    index_put(p->slots, p->cap_slots, t, t->n);
    t->n++;
    p->n_slots++;
    return INF_OK;

out_nomem:
    free(key);
    free_value(v);
    return nomem(p);
}

/* True for a [[header]] array (as opposed to a static array written as a value). */
static bool is_table_array(const struct inf_toml_value *v)
{
    return v->type == INF_TOML_ARRAY && v->u.arr.n > 0 &&
           v->u.arr.items[0]->type == INF_TOML_TABLE &&
           (v->u.arr.items[0]->u.table->flags & TF_AOT_ITEM);
}

/* "an integer", "an array of tables", ... for messages about a key that is already taken. */
static const char *kind_of(const struct inf_toml_value *v)
{
    switch (v->type) {
    case INF_TOML_STRING:
        return "a string";
    case INF_TOML_INTEGER:
        return "an integer";
    case INF_TOML_FLOAT:
        return "a float";
    case INF_TOML_BOOL:
        return "a bool";
    case INF_TOML_DATETIME:
        return "an offset date-time";
    case INF_TOML_DATETIME_LOCAL:
        return "a local date-time";
    case INF_TOML_DATE_LOCAL:
        return "a local date";
    case INF_TOML_TIME_LOCAL:
        return "a local time";
    case INF_TOML_ARRAY:
        return is_table_array(v) ? "an array of tables" : "an array";
    case INF_TOML_TABLE:
        return "a table";
    }
    return "a value";
}

/* ---- lexical helpers --------------------------------------------------------------------- */

static int char_at(const struct parser *p, size_t i)
{
    return i < p->len ? (unsigned char)p->src[i] : -1;
}

static bool digit_at(const struct parser *p, size_t i)
{
    int c = char_at(p, i);
    return c >= '0' && c <= '9';
}

static bool digits_at(const struct parser *p, size_t i, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (!digit_at(p, i + k))
            return false;
    }
    return true;
}

/* Length of the newline (LF or CRLF) at i, 0 when there is none. */
static size_t newline_at(const struct parser *p, size_t i)
{
    int c = char_at(p, i);

    if (c == '\n')
        return 1;
    if (c == '\r' && char_at(p, i + 1) == '\n')
        return 2;
    return 0;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->src[p->pos] == ' ' || p->src[p->pos] == '\t'))
        p->pos++;
}

/* Skip a comment up to (not including) the end of its line. */
static void skip_comment(struct parser *p)
{
    if (char_at(p, p->pos) != '#')
        return;
    while (p->pos < p->len && p->src[p->pos] != '\n' && p->src[p->pos] != '\r')
        p->pos++;
}

/* Skip whitespace, newlines and comments (between array elements). */
static void skip_ws_nl(struct parser *p)
{
    for (;;) {
        size_t nl;

        skip_ws(p);
        skip_comment(p);
        nl = newline_at(p, p->pos);
        if (!nl)
            return;
        p->pos += nl;
    }
}

static bool is_bare_key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* ---- strings ----------------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t n, cap; /* cap > n always leaves room for the final NUL */
};

static bool sb_reserve(struct sbuf *b, size_t extra)
{
    size_t cap;
    char *np;

    if (b->cap > b->n && b->cap - b->n > extra)
        return true;
    cap = b->cap ? b->cap : 32;
    while (cap - b->n <= extra) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    np = realloc(b->p, cap);
    if (!np)
        return false;
    b->p = np;
    b->cap = cap;
    return true;
}

static bool sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n))
        return false;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

static bool sb_putc(struct sbuf *b, char c)
{
    return sb_put(b, &c, 1);
}

/* NUL-terminate and hand the buffer over (an empty string still gets an allocation). */
static bool sb_finish(struct sbuf *b, char **out, size_t *out_len)
{
    if (!sb_reserve(b, 0))
        return false;
    b->p[b->n] = '\0';
    *out = b->p;
    *out_len = b->n;
    b->p = NULL;
    return true;
}

/* The end of a string parser: on rc == INF_OK hand the text over (out of memory is still
   possible), otherwise free it; INF_ENOMEM becomes the parser's out-of-memory error. */
static inf_status string_done(struct parser *p, struct sbuf *b, inf_status rc, char **out,
                              size_t *out_len)
{
    if (rc == INF_OK && !sb_finish(b, out, out_len))
        rc = INF_ENOMEM;
    if (rc == INF_ENOMEM)
        rc = nomem(p);
    if (rc != INF_OK)
        free(b->p);
    return rc;
}

static bool sb_put_utf8(struct sbuf *b, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sb_put(b, u, n);
}

/* An escape sequence at p->pos (the backslash) in a basic string; appends its decoded bytes. */
static inf_status parse_escape(struct parser *p, struct sbuf *b)
{
    size_t at = p->pos;
    uint32_t cp = 0;
    int c, ndig;
    char out;

    p->pos++;
    c = char_at(p, p->pos);
    if (c < 0)
        return perr(p, p->pos, "unterminated string");
    p->pos++;
    switch (c) {
    case 'b':
        out = '\b';
        break;
    case 't':
        out = '\t';
        break;
    case 'n':
        out = '\n';
        break;
    case 'f':
        out = '\f';
        break;
    case 'r':
        out = '\r';
        break;
    case '"':
        out = '"';
        break;
    case '\\':
        out = '\\';
        break;
    case 'u':
    case 'U':
        ndig = c == 'u' ? 4 : 8;
        for (int k = 0; k < ndig; k++) {
            int h = inf__hex_digit(char_at(p, p->pos));
            if (h < 0)
                return perr(p, at, "invalid unicode escape: '\\%c' needs %d hexadecimal digits", c,
                            ndig);
            cp = cp * 16 + (uint32_t)h;
            p->pos++;
        }
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return perr(p, at, "invalid unicode escape: U+%04X is not a unicode scalar value",
                        (unsigned)cp);
        return sb_put_utf8(b, cp) ? INF_OK : nomem(p);
    default:
        if (c > 0x20 && c < 0x7F)
            return perr(p, at, "invalid escape sequence '\\%c'", c);
        return perr(p, at, "invalid escape sequence");
    }
    return sb_putc(b, out) ? INF_OK : nomem(p);
}

/* A single-line basic string "..." at p->pos. */
static inf_status parse_basic(struct parser *p, char **out, size_t *out_len)
{
    struct sbuf b = {0};
    inf_status rc;

    p->pos++;
    for (;;) {
        size_t run = p->pos;
        int c;

        while (run < p->len && p->src[run] != '"' && p->src[run] != '\\' && p->src[run] != '\n' &&
               p->src[run] != '\r')
            run++;
        if (run > p->pos && !sb_put(&b, p->src + p->pos, run - p->pos))
            goto out_nomem;
        p->pos = run;
        c = char_at(p, p->pos);
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c == '\\') {
            rc = parse_escape(p, &b);
            if (rc)
                goto out_fail;
            continue;
        }
        if (c < 0)
            rc = perr(p, p->pos, "unterminated string");
        else
            rc = perr(p, p->pos, "unterminated string: a basic string cannot span lines");
        goto out_fail;
    }
    return string_done(p, &b, INF_OK, out, out_len);

out_nomem:
    rc = INF_ENOMEM;
out_fail:
    return string_done(p, &b, rc, out, out_len);
}

/* A single-line literal string '...' at p->pos. */
static inf_status parse_literal(struct parser *p, char **out, size_t *out_len)
{
    struct sbuf b = {0};
    size_t s = p->pos + 1, e = s;

    while (e < p->len && p->src[e] != '\'' && p->src[e] != '\n' && p->src[e] != '\r')
        e++;
    if (e >= p->len)
        return perr(p, e, "unterminated string");
    if (p->src[e] != '\'')
        return perr(p, e, "unterminated string: a literal string cannot span lines");
    if (!sb_put(&b, p->src + s, e - s) || !sb_finish(&b, out, out_len)) {
        free(b.p);
        return nomem(p);
    }
    p->pos = e + 1;
    return INF_OK;
}

/*
 * A multi-line string """...""" or '''...''' at p->pos. A newline right after the opening
 * delimiter is dropped, CRLF becomes LF, and up to two quotes may come right before the closing
 * delimiter. In basic strings a backslash at the end of a line eats all whitespace and newlines
 * that follow it.
 */
static inf_status parse_multiline(struct parser *p, char **out, size_t *out_len)
{
    char q = p->src[p->pos];
    bool basic = q == '"';
    struct sbuf b = {0};
    inf_status rc;

    p->pos += 3;
    p->pos += newline_at(p, p->pos);
    for (;;) {
        size_t run = p->pos, nl;
        int c;

        while (run < p->len && p->src[run] != q && p->src[run] != '\\' && p->src[run] != '\r')
            run++;
        if (run > p->pos && !sb_put(&b, p->src + p->pos, run - p->pos))
            goto out_nomem;
        p->pos = run;
        c = char_at(p, p->pos);
        if (c < 0) {
            rc = perr(p, p->pos, "unterminated multi-line string");
            goto out_fail;
        }
        if (c == q) {
            size_t n = 0;
            while (n < 5 && char_at(p, p->pos + n) == q)
                n++;
            if (n >= 3) {
                for (size_t k = 3; k < n; k++) {
                    if (!sb_putc(&b, q))
                        goto out_nomem;
                }
                p->pos += n;
                break;
            }
            if (!sb_put(&b, p->src + p->pos, n))
                goto out_nomem;
            p->pos += n;
            continue;
        }
        nl = newline_at(p, p->pos);
        if (nl) {
            if (!sb_putc(&b, '\n'))
                goto out_nomem;
            p->pos += nl;
            continue;
        }
        if (c == '\\' && basic) {
            size_t j = p->pos + 1;
            while (char_at(p, j) == ' ' || char_at(p, j) == '\t')
                j++;
            if (newline_at(p, j)) {
                p->pos = j;
                for (;;) {
                    int w = char_at(p, p->pos);
                    if (w == ' ' || w == '\t')
                        p->pos++;
                    else if ((nl = newline_at(p, p->pos)) != 0)
                        p->pos += nl;
                    else
                        break;
                }
                continue;
            }
            rc = parse_escape(p, &b);
            if (rc)
                goto out_fail;
            continue;
        }
        /* a backslash in a literal string, or CR (always part of CRLF, handled above) */
        if (!sb_putc(&b, (char)c))
            goto out_nomem;
        p->pos++;
    }
    return string_done(p, &b, INF_OK, out, out_len);

out_nomem:
    rc = INF_ENOMEM;
out_fail:
    return string_done(p, &b, rc, out, out_len);
}

/* ---- keys -------------------------------------------------------------------------------- */

static void segs_clear(struct parser *p)
{
    for (size_t i = 0; i < p->n_segs; i++)
        free(p->segs[i].s);
    p->n_segs = 0;
}

/* Parse a key (one or more dotted parts) at p->pos into p->segs. */
static inf_status parse_key(struct parser *p)
{
    segs_clear(p);
    for (;;) {
        struct seg *sg;
        inf_status rc;
        int c = char_at(p, p->pos);

        if (p->n_segs == INF_TOML_MAX_DEPTH)
            return perr(p, p->pos, "key has more than %d parts", INF_TOML_MAX_DEPTH);
        if (p->n_segs == p->cap_segs) {
            size_t cap = p->cap_segs ? p->cap_segs * 2 : 8;
            struct seg *segs = realloc(p->segs, cap * sizeof(*segs));
            if (!segs)
                return nomem(p);
            p->segs = segs;
            p->cap_segs = cap;
        }
        sg = &p->segs[p->n_segs];
        sg->pos = p->pos;
        sg->s = NULL;
        if (c == '"' || c == '\'') {
            if (char_at(p, p->pos + 1) == c && char_at(p, p->pos + 2) == c)
                return perr(p, p->pos, "a multi-line string cannot be used as a key");
            rc = c == '"' ? parse_basic(p, &sg->s, &sg->len) : parse_literal(p, &sg->s, &sg->len);
            if (rc)
                return rc;
        } else if (is_bare_key_char(c)) {
            size_t e = p->pos;
            while (is_bare_key_char(char_at(p, e)))
                e++;
            sg->len = e - p->pos;
            sg->s = malloc(sg->len + 1);
            if (!sg->s)
                return nomem(p);
            memcpy(sg->s, p->src + p->pos, sg->len);
            sg->s[sg->len] = '\0';
            p->pos = e;
        } else {
            return expected(p, "a key");
        }
        p->n_segs++;
        skip_ws(p);
        if (char_at(p, p->pos) != '.')
            return INF_OK;
        p->pos++;
        skip_ws(p);
    }
}

/* ---- scalar values ----------------------------------------------------------------------- */

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return 29;
    return days[month - 1];
}

static int num2(const struct parser *p, size_t i)
{
    return (p->src[i] - '0') * 10 + (p->src[i + 1] - '0');
}

/* HH:MM:SS[.fraction] at p->pos. */
static inf_status parse_time(struct parser *p, struct inf_toml_datetime *dt)
{
    size_t s = p->pos;

    if (!digits_at(p, s, 2) || char_at(p, s + 2) != ':' || !digits_at(p, s + 3, 2) ||
        char_at(p, s + 5) != ':' || !digits_at(p, s + 6, 2))
        return perr(p, s, "invalid time: expected HH:MM:SS");
    dt->hour = num2(p, s);
    dt->minute = num2(p, s + 3);
    dt->second = num2(p, s + 6);
    if (dt->hour > 23)
        return perr(p, s, "invalid time: hour %02d is out of range", dt->hour);
    if (dt->minute > 59)
        return perr(p, s + 3, "invalid time: minute %02d is out of range", dt->minute);
    if (dt->second > 60)
        return perr(p, s + 6, "invalid time: second %02d is out of range", dt->second);
    p->pos = s + 8;
    if (char_at(p, p->pos) == '.') {
        int32_t ns = 0;
        int nd = 0;

        p->pos++;
        if (!digit_at(p, p->pos))
            return expected(p, "a digit after '.' in a time");
        while (digit_at(p, p->pos)) {
            if (nd < 9) {
                ns = ns * 10 + (p->src[p->pos] - '0');
                nd++;
            }
            p->pos++;
        }
        dt->frac_digits = nd;
        for (; nd < 9; nd++)
            ns *= 10;
        dt->nanosecond = ns;
    }
    return INF_OK;
}

/* A date, date-time or time at p->pos (the caller saw "DDDD-" or "DD:"). */
static inf_status parse_datetime(struct parser *p, struct inf_toml_value *v)
{
    struct inf_toml_datetime *dt = &v->u.dt;
    size_t s = p->pos;
    inf_status rc;
    int c;

    memset(dt, 0, sizeof(*dt));
    if (!(digits_at(p, s, 4) && char_at(p, s + 4) == '-')) {
        v->type = INF_TOML_TIME_LOCAL;
        return parse_time(p, dt);
    }
    if (!digits_at(p, s + 5, 2) || char_at(p, s + 7) != '-' || !digits_at(p, s + 8, 2))
        return perr(p, s, "invalid date: expected YYYY-MM-DD");
    dt->year = num2(p, s) * 100 + num2(p, s + 2);
    dt->month = num2(p, s + 5);
    dt->day = num2(p, s + 8);
    if (dt->month < 1 || dt->month > 12)
        return perr(p, s + 5, "invalid date: month %02d is out of range", dt->month);
    if (dt->day < 1 || dt->day > days_in_month(dt->year, dt->month))
        return perr(p, s + 8, "invalid date: day %02d is out of range for %04d-%02d", dt->day,
                    dt->year, dt->month);
    p->pos = s + 10;
    c = char_at(p, p->pos);
    if (c == 'T' || c == 't') {
        p->pos++;
    } else if (c == ' ' && digits_at(p, p->pos + 1, 2) && char_at(p, p->pos + 3) == ':') {
        p->pos++;
    } else {
        v->type = INF_TOML_DATE_LOCAL;
        return INF_OK;
    }
    rc = parse_time(p, dt);
    if (rc)
        return rc;
    c = char_at(p, p->pos);
    if (c == 'Z' || c == 'z') {
        p->pos++;
        v->type = INF_TOML_DATETIME;
    } else if (c == '+' || c == '-') {
        size_t o = p->pos + 1;
        int oh, om;

        if (!digits_at(p, o, 2) || char_at(p, o + 2) != ':' || !digits_at(p, o + 3, 2))
            return perr(p, p->pos, "invalid time offset: expected +HH:MM or -HH:MM");
        oh = num2(p, o);
        om = num2(p, o + 3);
        if (oh > 23 || om > 59)
            return perr(p, p->pos, "invalid time offset: %c%02d:%02d is out of range", c, oh, om);
        dt->offset_minutes = (c == '-' ? -1 : 1) * (oh * 60 + om);
        p->pos = o + 5;
        v->type = INF_TOML_DATETIME;
    } else {
        v->type = INF_TOML_DATETIME_LOCAL;
    }
    return INF_OK;
}

static bool is_base_digit(int c, int base)
{
    switch (base) {
    case 2:
        return c == '0' || c == '1';
    case 8:
        return c >= '0' && c <= '7';
    case 16:
        return inf__hex_digit(c) >= 0;
    default:
        return c >= '0' && c <= '9';
    }
}

/* Skip digits of base at p->pos: at least one, with each '_' between two digits. */
static inf_status scan_digits(struct parser *p, int base, const char *what)
{
    if (!is_base_digit(char_at(p, p->pos), base))
        return expected(p, what);
    for (;;) {
        while (is_base_digit(char_at(p, p->pos), base))
            p->pos++;
        if (char_at(p, p->pos) != '_')
            return INF_OK;
        if (!is_base_digit(char_at(p, p->pos + 1), base))
            return perr(p, p->pos, "an underscore in a number must be between two digits");
        p->pos++;
    }
}

/* Convert the digits (and underscores) in [s, e) to an int64, rejecting overflow. */
static inf_status to_int(struct parser *p, size_t num, size_t s, size_t e, int base, bool neg,
                         int64_t *out)
{
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;

    for (size_t i = s; i < e; i++) {
        uint64_t d;

        if (p->src[i] == '_')
            continue;
        d = (uint64_t)inf__hex_digit((unsigned char)p->src[i]);
        if (v > (limit - d) / (uint64_t)base)
            return perr(p, num, "integer does not fit in 64 bits");
        v = v * (uint64_t)base + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return INF_OK;
}

/* Convert the float literal in [s, e) (syntax already checked) with strtod. */
static inf_status to_float(struct parser *p, size_t s, size_t e, double *out)
{
    char small[64], *buf = small, dp = '.';
    const struct lconv *lc = localeconv();
    size_t n = 0;

    /* strtod follows LC_NUMERIC; spell the decimal point the way the locale wants it */
    if (lc && lc->decimal_point && lc->decimal_point[0] && !lc->decimal_point[1])
        dp = lc->decimal_point[0];
    if (e - s >= sizeof(small)) {
        buf = malloc(e - s + 1);
        if (!buf)
            return nomem(p);
    }
    for (size_t i = s; i < e; i++) {
        char c = p->src[i];
        if (c != '_')
            buf[n++] = c == '.' ? dp : c;
    }
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    return INF_OK;
}

/* An integer or float at p->pos (the caller ruled out dates and times). */
static inf_status parse_number(struct parser *p, struct inf_toml_value *v)
{
    size_t s = p->pos, d;
    int c = char_at(p, s);
    bool neg = c == '-', is_float = false;
    inf_status rc;

    d = s + (c == '+' || c == '-');
    p->pos = d;
    c = char_at(p, d);
    if (c == 'i' || c == 'n') {
        if (p->len - d >= 3 && memcmp(p->src + d, "inf", 3) == 0)
            v->u.flt = neg ? -INFINITY : INFINITY;
        else if (p->len - d >= 3 && memcmp(p->src + d, "nan", 3) == 0)
            v->u.flt = neg ? -NAN : NAN;
        else
            return perr(p, s, "expected a value (did you mean 'inf' or 'nan'?)");
        v->type = INF_TOML_FLOAT;
        p->pos = d + 3;
        return INF_OK;
    }
    if (c == '0') {
        int x = char_at(p, d + 1), base = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;

        if (base) {
            if (d != s)
                return perr(p, s, "hexadecimal, octal and binary integers cannot have a sign");
            p->pos = d + 2;
            rc = scan_digits(p, base,
                             base == 16  ? "a hexadecimal digit"
                             : base == 8 ? "an octal digit"
                                         : "a binary digit");
            if (rc)
                return rc;
            v->type = INF_TOML_INTEGER;
            return to_int(p, s, d + 2, p->pos, base, false, &v->u.integer);
        }
    }
    rc = scan_digits(p, 10, "a digit");
    if (rc)
        return rc;
    if (p->src[d] == '0' && p->pos - d > 1)
        return perr(p, d, "leading zeros are not allowed in a number");
    if (char_at(p, p->pos) == '.') {
        p->pos++;
        rc = scan_digits(p, 10, "a digit after the decimal point");
        if (rc)
            return rc;
        is_float = true;
    }
    c = char_at(p, p->pos);
    if (c == 'e' || c == 'E') {
        p->pos++;
        c = char_at(p, p->pos);
        if (c == '+' || c == '-')
            p->pos++;
        rc = scan_digits(p, 10, "a digit in the exponent");
        if (rc)
            return rc;
        is_float = true;
    }
    if (is_float) {
        v->type = INF_TOML_FLOAT;
        return to_float(p, s, p->pos, &v->u.flt);
    }
    v->type = INF_TOML_INTEGER;
    return to_int(p, s, d, p->pos, 10, neg, &v->u.integer);
}

/* ---- values, arrays, inline tables ------------------------------------------------------- */

static inf_status parse_value(struct parser *p, int depth, struct inf_toml_value **out);
static inf_status parse_keyval(struct parser *p, struct inf_toml_table *tab, int depth);

static inf_status too_deep(struct parser *p)
{
    return perr(p, p->pos, "nesting is deeper than %d levels", INF_TOML_MAX_DEPTH);
}

/* An array [...] at p->pos; depth is the array's own depth. */
static inf_status parse_array(struct parser *p, int depth, struct inf_toml_value *v)
{
    inf_status rc;

    if (depth > INF_TOML_MAX_DEPTH)
        return too_deep(p);
    p->pos++;
    for (;;) {
        struct inf_toml_value *item;

        skip_ws_nl(p);
        if (char_at(p, p->pos) == ']')
            break;
        rc = parse_value(p, depth + 1, &item);
        if (rc)
            return rc;
        if (!arr_push(v, item)) {
            free_value(item);
            return nomem(p);
        }
        skip_ws_nl(p);
        if (char_at(p, p->pos) == ',') {
            p->pos++;
            continue;
        }
        if (char_at(p, p->pos) == ']')
            break;
        return expected(p, "',' or ']' after an array element");
    }
    p->pos++;
    return INF_OK;
}

/* An inline table {...} at p->pos: on one line, no trailing comma, closed once parsed. */
static inf_status parse_inline_table(struct parser *p, int depth, struct inf_toml_value *v)
{
    struct inf_toml_table *t = v->u.table;
    inf_status rc;

    if (depth > INF_TOML_MAX_DEPTH)
        return too_deep(p);
    t->line = v->line;
    t->column = v->column;
    p->pos++;
    skip_ws(p);
    if (char_at(p, p->pos) != '}') {
        for (;;) {
            skip_ws(p);
            if (char_at(p, p->pos) == '}')
                return perr(p, p->pos, "a trailing comma is not allowed in an inline table");
            rc = parse_keyval(p, t, depth);
            if (rc)
                return rc;
            skip_ws(p);
            if (char_at(p, p->pos) == ',') {
                p->pos++;
                continue;
            }
            if (char_at(p, p->pos) == '}')
                break;
            if (newline_at(p, p->pos))
                return perr(p, p->pos, "an inline table must be on a single line");
            return expected(p, "',' or '}' in an inline table");
        }
    }
    p->pos++;
    t->flags |= TF_INLINE;
    return INF_OK;
}

static bool match_word(const struct parser *p, const char *w)
{
    size_t n = strlen(w);
    return p->len - p->pos >= n && memcmp(p->src + p->pos, w, n) == 0;
}

/* Any value at p->pos; depth is the depth the value has if it is an array or table. */
static inf_status parse_value(struct parser *p, int depth, struct inf_toml_value **out)
{
    size_t s = p->pos;
    int c = char_at(p, s);
    struct inf_toml_value *v;
    uint32_t line, col;
    inf_status rc;

    *out = NULL;
    linecol(p, s, &line, &col);
    /* BOOL owns nothing, so a value that fails half-parsed is always safe to free */
    if (c == '{')
        v = new_table_value(line, col, 0);
    else
        v = new_value(INF_TOML_BOOL, line, col);
    if (!v)
        return nomem(p);
    if (c == '"' || c == '\'') {
        v->type = INF_TOML_STRING;
        if (char_at(p, s + 1) == c && char_at(p, s + 2) == c)
            rc = parse_multiline(p, &v->u.str.ptr, &v->u.str.len);
        else if (c == '"')
            rc = parse_basic(p, &v->u.str.ptr, &v->u.str.len);
        else
            rc = parse_literal(p, &v->u.str.ptr, &v->u.str.len);
    } else if (c == 't' && match_word(p, "true")) {
        v->type = INF_TOML_BOOL;
        v->u.boolean = true;
        p->pos += 4;
        rc = INF_OK;
    } else if (c == 'f' && match_word(p, "false")) {
        v->type = INF_TOML_BOOL;
        v->u.boolean = false;
        p->pos += 5;
        rc = INF_OK;
    } else if (c == '[') {
        v->type = INF_TOML_ARRAY;
        rc = parse_array(p, depth, v);
    } else if (c == '{') {
        rc = parse_inline_table(p, depth, v);
    } else if ((digits_at(p, s, 4) && char_at(p, s + 4) == '-') ||
               (digits_at(p, s, 2) && char_at(p, s + 2) == ':')) {
        rc = parse_datetime(p, v);
    } else if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'i' || c == 'n') {
        rc = parse_number(p, v);
    } else {
        rc = expected(p, "a value");
    }
    if (rc) {
        free_value(v);
        return rc;
    }
    *out = v;
    return INF_OK;
}

/*
 * key = value at p->pos, into table tab of depth depth (the current section, or an inline
 * table). Dotted keys create tables (TF_DOTTED) or extend ones that dotted keys created, but
 * never tables defined by a [header], inline tables, or anything that is not a table.
 */
static inf_status parse_keyval(struct parser *p, struct inf_toml_table *tab, int depth)
{
    struct inf_toml_table *t = tab;
    struct inf_toml_value *v;
    struct seg *last;
    char qbuf[64];
    char *key;
    size_t key_len;
    uint32_t kline, kcol;
    int d = depth;
    inf_status rc;

    rc = parse_key(p);
    if (rc)
        return rc;
    skip_ws(p);
    if (char_at(p, p->pos) != '=')
        return expected(p, "'=' after a key");
    p->pos++;
    skip_ws(p);

    for (size_t i = 0; i + 1 < p->n_segs; i++) {
        struct seg *sg = &p->segs[i];
        struct inf_toml_kv *kv = tab_get(p, t, sg->s, sg->len);
        struct inf_toml_table *nt;

        if (!kv) {
            struct inf_toml_value *tv;
            uint32_t line, col;

            if (d + 1 > INF_TOML_MAX_DEPTH)
                return perr(p, sg->pos, "nesting is deeper than %d levels", INF_TOML_MAX_DEPTH);
            linecol(p, sg->pos, &line, &col);
            tv = new_table_value(line, col, TF_DOTTED);
            if (!tv)
                return nomem(p);
            nt = tv->u.table;
            rc = tab_add(p, t, sg->s, sg->len, line, col, tv);
            sg->s = NULL;
            if (rc)
                return rc;
        } else if (kv->value->type != INF_TOML_TABLE) {
            return perr(p, sg->pos,
                        "key '%s' is already defined as %s (line %u) and cannot be used as "
                        "a table",
                        quote_key(sg->s, sg->len, qbuf, sizeof(qbuf)), kind_of(kv->value),
                        (unsigned)kv->line);
        } else {
            nt = kv->value->u.table;
            if (nt->flags & TF_INLINE)
                return perr(p, sg->pos, "cannot add keys to inline table '%s' (line %u)",
                            quote_key(sg->s, sg->len, qbuf, sizeof(qbuf)), (unsigned)kv->line);
            if (nt->flags & TF_HEADER)
                return perr(p, sg->pos,
                            "cannot add keys to table '%s' with dotted keys: it was defined "
                            "by a [table] header on line %u",
                            quote_key(sg->s, sg->len, qbuf, sizeof(qbuf)), (unsigned)nt->line);
            nt->flags |= TF_DOTTED;
        }
        t = nt;
        d++;
    }

    last = &p->segs[p->n_segs - 1];
    {
        const struct inf_toml_kv *dup = tab_get(p, t, last->s, last->len);
        if (dup)
            return perr(p, last->pos, "duplicate key '%s' (first defined on line %u)",
                        quote_key(last->s, last->len, qbuf, sizeof(qbuf)), (unsigned)dup->line);
    }
    linecol(p, last->pos, &kline, &kcol);
    key = last->s;
    key_len = last->len;
    last->s = NULL;
    segs_clear(p);

    rc = parse_value(p, d + 1, &v);
    if (rc) {
        free(key);
        return rc;
    }
    return tab_add(p, t, key, key_len, kline, kcol, v);
}

/* ---- table headers ----------------------------------------------------------------------- */

/* [a.b.c] or [[a.b.c]] at p->pos; makes the defined table the current section. */
static inf_status parse_header(struct parser *p)
{
    size_t hpos = p->pos;
    bool aot = char_at(p, p->pos + 1) == '[';
    struct inf_toml_table *t = p->root;
    struct inf_toml_value *tv;
    struct inf_toml_kv *kv;
    struct seg *last;
    char qbuf[64];
    uint32_t hline, hcol;
    int d = 0;
    inf_status rc;

    /* positions are converted in document order: the cache only moves forward */
    linecol(p, hpos, &hline, &hcol);
    p->pos += aot ? 2 : 1;
    skip_ws(p);
    rc = parse_key(p);
    if (rc)
        return rc;
    skip_ws(p);
    if (char_at(p, p->pos) != ']' || (aot && char_at(p, p->pos + 1) != ']'))
        return expected(p, aot ? "']]' to close the array of tables header"
                               : "']' to close the table header");
    p->pos += aot ? 2 : 1;

    for (size_t i = 0; i + 1 < p->n_segs; i++) {
        struct seg *sg = &p->segs[i];

        kv = tab_get(p, t, sg->s, sg->len);
        if (!kv) {
            uint32_t line, col;

            if (d + 1 > INF_TOML_MAX_DEPTH)
                return perr(p, sg->pos, "nesting is deeper than %d levels", INF_TOML_MAX_DEPTH);
            linecol(p, sg->pos, &line, &col);
            tv = new_table_value(line, col, 0);
            if (!tv)
                return nomem(p);
            rc = tab_add(p, t, sg->s, sg->len, line, col, tv);
            sg->s = NULL;
            if (rc)
                return rc;
            t = tv->u.table;
            d++;
        } else if (kv->value->type == INF_TOML_TABLE) {
            if (kv->value->u.table->flags & TF_INLINE)
                return perr(p, sg->pos, "cannot add keys to inline table '%s' (line %u)",
                            quote_key(sg->s, sg->len, qbuf, sizeof(qbuf)), (unsigned)kv->line);
            t = kv->value->u.table;
            d++;
        } else if (is_table_array(kv->value)) {
            const struct inf_toml_value *lastv = kv->value->u.arr.items[kv->value->u.arr.n - 1];
            t = lastv->u.table;
            d += 2;
        } else {
            return perr(p, sg->pos,
                        "key '%s' is already defined as %s (line %u) and cannot be used as "
                        "a table",
                        quote_key(sg->s, sg->len, qbuf, sizeof(qbuf)), kind_of(kv->value),
                        (unsigned)kv->line);
        }
    }

    last = &p->segs[p->n_segs - 1];
    kv = tab_get(p, t, last->s, last->len);
    if (!aot) {
        struct inf_toml_table *nt;

        if (!kv) {
            uint32_t line, col;

            if (d + 1 > INF_TOML_MAX_DEPTH)
                return perr(p, last->pos, "nesting is deeper than %d levels", INF_TOML_MAX_DEPTH);
            tv = new_table_value(hline, hcol, TF_HEADER);
            if (!tv)
                return nomem(p);
            nt = tv->u.table;
            nt->line = tv->line;
            nt->column = tv->column;
            linecol(p, last->pos, &line, &col);
            rc = tab_add(p, t, last->s, last->len, line, col, tv);
            last->s = NULL;
            if (rc)
                return rc;
        } else if (kv->value->type == INF_TOML_TABLE) {
            nt = kv->value->u.table;
            if (nt->flags & (TF_HEADER | TF_DOTTED | TF_INLINE))
                return perr(p, last->pos, "table '%s' is already defined (line %u)",
                            quote_key(last->s, last->len, qbuf, sizeof(qbuf)),
                            (unsigned)(nt->line ? nt->line : kv->line));
            /* an implicit table created by an earlier header: defined here, once */
            nt->flags |= TF_HEADER;
            nt->line = hline;
            nt->column = hcol;
            kv->value->line = nt->line;
            kv->value->column = nt->column;
            linecol(p, last->pos, &kv->line, &kv->column);
        } else {
            return perr(p, last->pos, "key '%s' is already defined as %s (line %u)",
                        quote_key(last->s, last->len, qbuf, sizeof(qbuf)), kind_of(kv->value),
                        (unsigned)kv->line);
        }
        p->cur = nt;
        p->cur_depth = d + 1;
    } else {
        struct inf_toml_value *arr;

        if (d + 2 > INF_TOML_MAX_DEPTH)
            return perr(p, last->pos, "nesting is deeper than %d levels", INF_TOML_MAX_DEPTH);
        if (kv && !is_table_array(kv->value))
            return perr(p, last->pos,
                        "cannot define array of tables '%s': the key is already defined as "
                        "%s (line %u)",
                        quote_key(last->s, last->len, qbuf, sizeof(qbuf)), kind_of(kv->value),
                        (unsigned)kv->line);
        tv = new_table_value(hline, hcol, TF_HEADER | TF_AOT_ITEM);
        if (!tv)
            return nomem(p);
        tv->u.table->line = tv->line;
        tv->u.table->column = tv->column;
        if (kv) {
            arr = kv->value;
        } else {
            uint32_t line, col;

            arr = new_value(INF_TOML_ARRAY, hline, hcol);
            if (!arr) {
                free_value(tv);
                return nomem(p);
            }
            linecol(p, last->pos, &line, &col);
            rc = tab_add(p, t, last->s, last->len, line, col, arr);
            last->s = NULL;
            if (rc) {
                free_value(tv);
                return rc;
            }
        }
        if (!arr_push(arr, tv)) {
            free_value(tv);
            return nomem(p);
        }
        p->cur = tv->u.table;
        p->cur_depth = d + 2;
    }
    segs_clear(p);
    return INF_OK;
}

/* ---- document ---------------------------------------------------------------------------- */

static inf_status parse_document(struct parser *p)
{
    for (;;) {
        size_t nl;
        inf_status rc = INF_OK;
        int c;

        skip_ws(p);
        c = char_at(p, p->pos);
        if (c < 0)
            return INF_OK;
        if (c == '#') {
            skip_comment(p);
        } else if (newline_at(p, p->pos)) {
            /* an empty line */
        } else if (c == '[') {
            rc = parse_header(p);
        } else {
            rc = parse_keyval(p, p->cur, p->cur_depth);
        }
        if (rc)
            return rc;
        skip_ws(p);
        skip_comment(p);
        if (p->pos >= p->len)
            return INF_OK;
        nl = newline_at(p, p->pos);
        if (!nl)
            return expected(p, "end of line");
        p->pos += nl;
    }
}

inf_status inf_toml_parse(const char *src, size_t len, struct inf_toml_table **out,
                          struct inf_error *err)
{
    struct parser p;
    char why[96];
    size_t bad;
    inf_status rc;

    if (!out)
        return inf_error_set(err, INF_EINVAL, "toml: no output pointer");
    *out = NULL;
    if (!src && len)
        return inf_error_set(err, INF_EINVAL, "toml: no input");
    memset(&p, 0, sizeof(p));
    p.src = src ? src : "";
    p.err = err;
    if (len >= 3 && memcmp(p.src, "\xEF\xBB\xBF", 3) == 0)
        p.start = 3;
    p.pos = p.start;
    bad = find_bad_byte((const unsigned char *)p.src, p.start, len, why, sizeof(why));
    p.len = bad;
    p.root = calloc(1, sizeof(*p.root));
    if (!p.root)
        return nomem(&p);
    p.cur = p.root;

    rc = parse_document(&p);
    /* a syntax error at or after the first bad byte is a consequence of that byte */
    if (bad < len && (rc == INF_OK || (rc == INF_EPARSE && p.err_pos >= bad)))
        rc = perr(&p, bad, "%s", why);

    segs_clear(&p);
    free(p.segs);
    free(p.slots);
    if (rc) {
        free_table(p.root);
        return rc;
    }
    *out = p.root;
    return INF_OK;
}

void inf_toml_free(struct inf_toml_table *root)
{
    free_table(root);
}

const struct inf_toml_kv *inf_toml_table_find(const struct inf_toml_table *t, const char *key,
                                              size_t key_len)
{
    if (!t || (!key && key_len))
        return NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (t->kvs[i].key_len == key_len &&
            (key_len == 0 || memcmp(t->kvs[i].key, key, key_len) == 0))
            return &t->kvs[i];
    }
    return NULL;
}

const char *inf_toml_type_name(enum inf_toml_type type)
{
    switch (type) {
    case INF_TOML_STRING:
        return "string";
    case INF_TOML_INTEGER:
        return "integer";
    case INF_TOML_FLOAT:
        return "float";
    case INF_TOML_BOOL:
        return "bool";
    case INF_TOML_DATETIME:
        return "datetime";
    case INF_TOML_DATETIME_LOCAL:
        return "datetime-local";
    case INF_TOML_DATE_LOCAL:
        return "date-local";
    case INF_TOML_TIME_LOCAL:
        return "time-local";
    case INF_TOML_ARRAY:
        return "array";
    case INF_TOML_TABLE:
        return "table";
    }
    return "unknown";
}
