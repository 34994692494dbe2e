/*
 * grammar/regex.c - regular expressions (the ECMA-262 subset JSON Schema's `pattern` uses)
 * translated into GBNF.
 *
 * The pattern is parsed into a small tree (character sets over code points, concatenation,
 * alternation, repetition, the anchors ^ and $), then written out as one GBNF expression.
 * Character sets are kept as sorted ranges of code points; `.`, negated classes and \D \W \S
 * become their positive complement, so the output never depends on GBNF's negation.
 *
 * In JSON-string mode (json_schema.c's `pattern`) the language is written as JSON string
 * content: a character that JSON must escape (`"`, `\`, control characters) appears as its
 * escape sequence (\n or \u000A alike), `/` also as `\/`, everything else as itself. Characters
 * that JSON allows to be written as \uXXXX are only accepted in their literal form.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "grammar/grammar_internal.h"

#define RX_MAX_DEPTH 256 /* nesting of groups */
#define RX_MAX_CP    0x10FFFFu

struct rx_range {
    uint32_t lo, hi;
};

struct rx_set {
    struct rx_range *r;
    size_t n, cap;
};

enum rx_kind { RX_SET, RX_CAT, RX_ALT, RX_REP, RX_BOL, RX_EOL };

struct rx_node {
    enum rx_kind kind;
    int32_t min, max; /* RX_REP; max -1 = unbounded */
    size_t set;       /* RX_SET: index into rx.sets */
    size_t *kids;     /* RX_CAT, RX_ALT, RX_REP (one) */
    size_t n_kids, cap_kids;
};

struct rx {
    const char *s;
    size_t len, pos;
    struct rx_node *nodes;
    size_t n_nodes, cap_nodes;
    struct rx_set *sets;
    size_t n_sets, cap_sets;
    struct inf_error *err;
    int depth;
    /* output */
    const char *name;
    bool json;
    struct inf__gstr *out;   /* the caller's buffer */
    struct inf__gstr helper; /* helper rules written after the main one */
    size_t n_helper;
    size_t *helper_sets; /* set index of each JSON-mode helper rule, for reuse */
    size_t n_helper_sets, cap_helper_sets;
};

/* ---- small helpers -------------------------------------------------------------------------- */

static inf_status gput(struct inf__gstr *g, const char *s, size_t n)
{
    return inf__append(&g->p, &g->len, &g->cap, s, n, 256) ? INF_OK : INF_ENOMEM;
}

static inf_status gputs(struct inf__gstr *g, const char *s)
{
    return gput(g, s, strlen(s));
}

static inf_status rx_fail(struct rx *x, inf_status code, const char *what)
{
    return inf_error_set(x->err, code, "regex: %s at offset %zu", what, x->pos);
}

static inf_status rx_oom(struct rx *x)
{
    return inf_error_set(x->err, INF_ENOMEM, "regex: out of memory");
}

/* Decode one UTF-8 code point at x->pos; -1 on invalid UTF-8 or the end. */
static int32_t rx_next_cp(struct rx *x)
{
    const unsigned char *p = (const unsigned char *)x->s + x->pos;
    size_t left = x->len - x->pos;
    uint32_t cp;
    size_t n;

    if (left == 0)
        return -1;
    if (p[0] < 0x80) {
        x->pos++;
        return p[0];
    }
    if ((p[0] & 0xE0) == 0xC0) {
        n = 2, cp = p[0] & 0x1Fu;
    } else if ((p[0] & 0xF0) == 0xE0) {
        n = 3, cp = p[0] & 0x0Fu;
    } else if ((p[0] & 0xF8) == 0xF0) {
        n = 4, cp = p[0] & 0x07u;
    } else {
        return -1;
    }
    if (left < n)
        return -1;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > RX_MAX_CP || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    x->pos += n;
    return (int32_t)cp;
}

static int rx_peek(const struct rx *x)
{
    return x->pos < x->len ? (unsigned char)x->s[x->pos] : -1;
}

static bool set_add(struct rx_set *s, uint32_t lo, uint32_t hi)
{
    if (!inf__grow(&s->r, &s->cap, s->n + 1, sizeof *s->r, 4))
        return false;
    s->r[s->n].lo = lo;
    s->r[s->n].hi = hi;
    s->n++;
    return true;
}

static int range_cmp(const void *a, const void *b)
{
    const struct rx_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and merge overlapping or adjacent ranges. */
static void set_normalize(struct rx_set *s)
{
    size_t w = 0;

    if (s->n == 0)
        return;
    qsort(s->r, s->n, sizeof *s->r, range_cmp);
    for (size_t i = 1; i < s->n; i++) {
        if (s->r[i].lo <= s->r[w].hi + 1) {
            if (s->r[i].hi > s->r[w].hi)
                s->r[w].hi = s->r[i].hi;
        } else {
            s->r[++w] = s->r[i];
        }
    }
    s->n = w + 1;
}

/* Replace the (normalized) set by its complement within [0, 0x10FFFF]. */
static bool set_negate(struct rx_set *s)
{
    struct rx_set t = {0};
    uint32_t next = 0;

    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i].lo > next && !set_add(&t, next, s->r[i].lo - 1))
            goto fail;
        next = s->r[i].hi + 1;
    }
    if (next <= RX_MAX_CP && !set_add(&t, next, RX_MAX_CP))
        goto fail;
    free(s->r);
    *s = t;
    return true;
fail:
    free(t.r);
    return false;
}

static bool set_has(const struct rx_set *s, uint32_t cp)
{
    for (size_t i = 0; i < s->n; i++)
        if (cp >= s->r[i].lo && cp <= s->r[i].hi)
            return true;
    return false;
}

/* The class escapes \d \w \s (upper case: negated). Returns false for another letter. */
static bool add_class_escape(struct rx_set *s, int c, bool *ok)
{
    static const struct rx_range digit[] = {{'0', '9'}};
    static const struct rx_range word[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    static const struct rx_range space[] = {
        {0x09, 0x0D},     {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
        {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
    const struct rx_range *r;
    size_t n;
    struct rx_set t = {0};

    *ok = true;
    switch (c | 0x20) {
    case 'd':
        r = digit, n = sizeof digit / sizeof *digit;
        break;
    case 'w':
        r = word, n = sizeof word / sizeof *word;
        break;
    case 's':
        r = space, n = sizeof space / sizeof *space;
        break;
    default:
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!set_add(&t, r[i].lo, r[i].hi))
            goto oom;
    if (c >= 'A' && c <= 'Z' && !set_negate(&t))
        goto oom;
    for (size_t i = 0; i < t.n; i++)
        if (!set_add(s, t.r[i].lo, t.r[i].hi))
            goto oom;
    free(t.r);
    return true;
oom:
    free(t.r);
    *ok = false;
    return true;
}

/* ---- the tree ------------------------------------------------------------------------------- */

static inf_status new_node(struct rx *x, enum rx_kind kind, size_t *out)
{
    if (!inf__grow(&x->nodes, &x->cap_nodes, x->n_nodes + 1, sizeof *x->nodes, 16))
        return rx_oom(x);
    memset(&x->nodes[x->n_nodes], 0, sizeof *x->nodes);
    x->nodes[x->n_nodes].kind = kind;
    *out = x->n_nodes++;
    return INF_OK;
}

static inf_status add_kid(struct rx *x, size_t parent, size_t kid)
{
    struct rx_node *p = &x->nodes[parent];
    if (!inf__grow(&p->kids, &p->cap_kids, p->n_kids + 1, sizeof *p->kids, 2))
        return rx_oom(x);
    p->kids[p->n_kids++] = kid;
    return INF_OK;
}

/* A new RX_SET node with an empty set; *set receives the set's index. */
static inf_status new_set_node(struct rx *x, size_t *node, size_t *set)
{
    inf_status rc = new_node(x, RX_SET, node);
    if (rc)
        return rc;
    if (!inf__grow(&x->sets, &x->cap_sets, x->n_sets + 1, sizeof *x->sets, 8))
        return rx_oom(x);
    memset(&x->sets[x->n_sets], 0, sizeof *x->sets);
    x->nodes[*node].set = x->n_sets;
    *set = x->n_sets++;
    return INF_OK;
}

/* ---- parsing -------------------------------------------------------------------------------- */

static int32_t hex_run(struct rx *x, size_t n)
{
    int32_t v = 0;
    if (x->len - x->pos < n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int d = inf__hex_digit((unsigned char)x->s[x->pos + i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    x->pos += n;
    return v;
}

/*
 * A character escape after the backslash (already consumed): \n \t \r \f \v \0 \xHH \uHHHH
 * \u{H...} \cX and identity escapes of punctuation. in_class: \b is backspace. Returns the code
 * point, or -2 when the escape is a class escape (\d etc.: *cls holds the letter), or a negative
 * status (error already set).
 */
static int32_t parse_char_escape(struct rx *x, bool in_class, int *cls, inf_status *rc)
{
    int c = rx_peek(x);
    int32_t v;

    *rc = INF_OK;
    if (c < 0) {
        *rc = rx_fail(x, INF_EPARSE, "pattern ends with a backslash");
        return -1;
    }
    switch (c) {
    case 'n':
        x->pos++;
        return '\n';
    case 't':
        x->pos++;
        return '\t';
    case 'r':
        x->pos++;
        return '\r';
    case 'f':
        x->pos++;
        return '\f';
    case 'v':
        x->pos++;
        return '\v';
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S':
        x->pos++;
        *cls = c;
        return -2;
    case '0':
        x->pos++;
        if (rx_peek(x) >= '0' && rx_peek(x) <= '9') {
            *rc = rx_fail(x, INF_EUNSUPPORTED, "octal escapes are not supported");
            return -1;
        }
        return 0;
    case 'x':
        x->pos++;
        v = hex_run(x, 2);
        if (v < 0) {
            *rc = rx_fail(x, INF_EPARSE, "\\x needs two hexadecimal digits");
            return -1;
        }
        return v;
    case 'u':
        x->pos++;
        if (rx_peek(x) == '{') {
            uint32_t cp = 0;
            size_t digits = 0;
            x->pos++;
            while (rx_peek(x) >= 0 && inf__hex_digit(rx_peek(x)) >= 0) {
                cp = cp * 16 + (uint32_t)inf__hex_digit(rx_peek(x));
                x->pos++;
                if (++digits > 8 || cp > RX_MAX_CP)
                    break;
            }
            if (digits == 0 || cp > RX_MAX_CP || rx_peek(x) != '}') {
                *rc = rx_fail(x, INF_EPARSE, "bad \\u{...} escape");
                return -1;
            }
            x->pos++;
            return (int32_t)cp;
        }
        v = hex_run(x, 4);
        if (v < 0) {
            *rc = rx_fail(x, INF_EPARSE, "\\u needs four hexadecimal digits");
            return -1;
        }
        /* a surrogate pair written as two escapes is one code point */
        if (v >= 0xD800 && v <= 0xDBFF && x->len - x->pos >= 6 && x->s[x->pos] == '\\' &&
            x->s[x->pos + 1] == 'u') {
            size_t save = x->pos;
            x->pos += 2;
            int32_t lo = hex_run(x, 4);
            if (lo >= 0xDC00 && lo <= 0xDFFF)
                return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            x->pos = save;
        }
        return v;
    case 'c':
        x->pos++;
        c = rx_peek(x);
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
            *rc = rx_fail(x, INF_EPARSE, "\\c needs a letter");
            return -1;
        }
        x->pos++;
        return c % 32;
    case 'b':
        if (in_class) {
            x->pos++;
            return '\b';
        }
        *rc = rx_fail(x, INF_EUNSUPPORTED, "word boundaries (\\b) are not supported");
        return -1;
    case 'B':
        *rc = rx_fail(x, INF_EUNSUPPORTED, "word boundaries (\\B) are not supported");
        return -1;
    case 'k':
        *rc = rx_fail(x, INF_EUNSUPPORTED, "backreferences (\\k<name>) are not supported");
        return -1;
    case 'p':
    case 'P':
        *rc = rx_fail(x, INF_EUNSUPPORTED, "unicode property escapes (\\p{...}) are not supported");
        return -1;
    default:
        break;
    }
    if (c >= '1' && c <= '9') {
        *rc = rx_fail(x, INF_EUNSUPPORTED, "backreferences (\\1...) are not supported");
        return -1;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
        *rc = rx_fail(x, INF_EPARSE, "unknown escape");
        return -1;
    }
    v = rx_next_cp(x);
    if (v < 0)
        *rc = rx_fail(x, INF_EPARSE, "invalid UTF-8");
    return v;
}

/* [...] after the '[' */
static inf_status parse_class(struct rx *x, size_t *out)
{
    size_t node, si;
    bool neg = false;
    inf_status rc = new_set_node(x, &node, &si);
    if (rc)
        return rc;
    if (rx_peek(x) == '^') {
        neg = true;
        x->pos++;
    }
    for (;;) {
        int c = rx_peek(x);
        int32_t lo, hi;
        int cls = 0;
        bool ok;

        if (c < 0)
            return rx_fail(x, INF_EPARSE, "unterminated character class");
        if (c == ']') {
            x->pos++;
            break;
        }
        if (c == '\\') {
            x->pos++;
            lo = parse_char_escape(x, true, &cls, &rc);
            if (rc)
                return rc;
            if (c == '\\' && lo == -2) {
                add_class_escape(&x->sets[si], cls, &ok);
                if (!ok)
                    return rx_oom(x);
                /* "[\d-z]": the '-' after a class escape is literal */
                continue;
            }
        } else {
            lo = rx_next_cp(x);
            if (lo < 0)
                return rx_fail(x, INF_EPARSE, "invalid UTF-8");
        }
        hi = lo;
        if (rx_peek(x) == '-' && x->pos + 1 < x->len && x->s[x->pos + 1] != ']') {
            size_t save = x->pos;
            x->pos++;
            if (rx_peek(x) == '\\') {
                x->pos++;
                hi = parse_char_escape(x, true, &cls, &rc);
                if (rc)
                    return rc;
                if (hi == -2) {
                    /* "[a-\d]": literal 'a', '-' and the class (Annex B) */
                    add_class_escape(&x->sets[si], cls, &ok);
                    if (!ok || !set_add(&x->sets[si], '-', '-'))
                        return rx_oom(x);
                    hi = lo;
                }
            } else {
                hi = rx_next_cp(x);
                if (hi < 0)
                    return rx_fail(x, INF_EPARSE, "invalid UTF-8");
            }
            if (hi < lo) {
                x->pos = save;
                return rx_fail(x, INF_EPARSE, "character class range out of order");
            }
        }
        if (!set_add(&x->sets[si], (uint32_t)lo, (uint32_t)hi))
            return rx_oom(x);
    }
    set_normalize(&x->sets[si]);
    if (neg && !set_negate(&x->sets[si]))
        return rx_oom(x);
    *out = node;
    return INF_OK;
}

/* A decimal number for a quantifier; -1 when none, INT32_MAX when huge. */
static int64_t parse_count(struct rx *x)
{
    int64_t v = -1;
    while (rx_peek(x) >= '0' && rx_peek(x) <= '9') {
        v = (v < 0 ? 0 : v) * 10 + (rx_peek(x) - '0');
        if (v > INT32_MAX)
            v = INT32_MAX;
        x->pos++;
    }
    return v;
}

/* A {m}, {m,}, {m,n} quantifier at x->pos ('{'); false (pos unchanged) when it is not one. */
static bool parse_braces(struct rx *x, int64_t *min, int64_t *max)
{
    size_t save = x->pos;
    int64_t lo, hi;
    x->pos++;
    lo = parse_count(x);
    if (lo < 0)
        goto literal;
    hi = lo;
    if (rx_peek(x) == ',') {
        x->pos++;
        hi = parse_count(x);
    }
    if (rx_peek(x) != '}')
        goto literal;
    x->pos++;
    *min = lo, *max = hi; /* outputs only for a quantifier */
    return true;
literal:
    x->pos = save;
    return false;
}

static inf_status parse_alt(struct rx *x, size_t *out);

static inf_status parse_atom(struct rx *x, size_t *out, bool *is_anchor)
{
    int c = rx_peek(x);
    size_t node, si;
    inf_status rc;
    int32_t cp;
    int cls = 0;
    bool ok;

    *is_anchor = false;
    switch (c) {
    case '^':
    case '$':
        x->pos++;
        *is_anchor = true;
        return new_node(x, c == '^' ? RX_BOL : RX_EOL, out);
    case '(':
        x->pos++;
        if (rx_peek(x) == '?') {
            x->pos++;
            c = rx_peek(x);
            if (c == '=' || c == '!')
                return rx_fail(x, INF_EUNSUPPORTED, "lookahead (?= (?! is not supported");
            if (c == '<' && x->pos + 1 < x->len &&
                (x->s[x->pos + 1] == '=' || x->s[x->pos + 1] == '!'))
                return rx_fail(x, INF_EUNSUPPORTED, "lookbehind (?<= (?<! is not supported");
            if (c == '<')
                return rx_fail(x, INF_EUNSUPPORTED, "named groups (?<name>...) are not supported");
            if (c != ':')
                return rx_fail(x, INF_EPARSE, "unknown group (?...");
            x->pos++;
        }
        if (++x->depth > RX_MAX_DEPTH)
            return rx_fail(x, INF_ELIMIT, "groups nested too deeply");
        rc = parse_alt(x, out);
        x->depth--;
        if (rc)
            return rc;
        if (rx_peek(x) != ')')
            return rx_fail(x, INF_EPARSE, "missing ')'");
        x->pos++;
        return INF_OK;
    case '[':
        x->pos++;
        return parse_class(x, out);
    case '.':
        x->pos++;
        rc = new_set_node(x, &node, &si);
        if (rc)
            return rc;
        if (!set_add(&x->sets[si], '\n', '\n') || !set_add(&x->sets[si], '\r', '\r') ||
            !set_add(&x->sets[si], 0x2028, 0x2029))
            return rx_oom(x);
        set_normalize(&x->sets[si]);
        if (!set_negate(&x->sets[si]))
            return rx_oom(x);
        *out = node;
        return INF_OK;
    case '*':
    case '+':
    case '?':
        return rx_fail(x, INF_EPARSE, "nothing to repeat");
    case '{': {
        int64_t a, b;
        size_t save = x->pos;
        if (parse_braces(x, &a, &b)) {
            x->pos = save;
            return rx_fail(x, INF_EPARSE, "nothing to repeat");
        }
        break;
    }
    case '\\':
        x->pos++;
        rc = new_set_node(x, &node, &si);
        if (rc)
            return rc;
        cp = parse_char_escape(x, false, &cls, &rc);
        if (rc)
            return rc;
        if (cp == -2) {
            add_class_escape(&x->sets[si], cls, &ok);
            if (!ok)
                return rx_oom(x);
            set_normalize(&x->sets[si]);
        } else if (!set_add(&x->sets[si], (uint32_t)cp, (uint32_t)cp)) {
            return rx_oom(x);
        }
        *out = node;
        return INF_OK;
    default:
        break;
    }
    rc = new_set_node(x, &node, &si);
    if (rc)
        return rc;
    cp = rx_next_cp(x);
    if (cp < 0)
        return rx_fail(x, INF_EPARSE, "invalid UTF-8");
    if (!set_add(&x->sets[si], (uint32_t)cp, (uint32_t)cp))
        return rx_oom(x);
    *out = node;
    return INF_OK;
}

/* One alternative: terms up to '|' or ')' or the end. */
static inf_status parse_cat(struct rx *x, size_t *out)
{
    size_t cat;
    inf_status rc = new_node(x, RX_CAT, &cat);
    if (rc)
        return rc;
    for (;;) {
        int c = rx_peek(x);
        size_t atom;
        bool anchor;
        int64_t min, max;

        if (c < 0 || c == '|' || c == ')')
            break;
        rc = parse_atom(x, &atom, &anchor);
        if (rc)
            return rc;
        c = rx_peek(x);
        min = -1;
        if (c == '*')
            min = 0, max = -1, x->pos++;
        else if (c == '+')
            min = 1, max = -1, x->pos++;
        else if (c == '?')
            min = 0, max = 1, x->pos++;
        else if (c == '{' && !parse_braces(x, &min, &max))
            min = -1;
        if (min >= 0) {
            size_t rep;
            if (anchor)
                return rx_fail(x, INF_EPARSE, "nothing to repeat");
            if (max >= 0 && max < min)
                return rx_fail(x, INF_EPARSE, "numbers out of order in {} quantifier");
            if (min > INF_GRAMMAR_MAX_REPEAT || max > INF_GRAMMAR_MAX_REPEAT)
                return inf_error_set(x->err, INF_ELIMIT,
                                     "regex: repetition count above %d at offset %zu",
                                     INF_GRAMMAR_MAX_REPEAT, x->pos);
            if (rx_peek(x) == '?') /* lazy: the same language */
                x->pos++;
            c = rx_peek(x);
            if (c == '*' || c == '+' || c == '?' || (c == '{' && parse_braces(x, &min, &max)))
                return rx_fail(x, INF_EPARSE, "nothing to repeat");
            rc = new_node(x, RX_REP, &rep);
            if (rc)
                return rc;
            x->nodes[rep].min = (int32_t)min;
            x->nodes[rep].max = (int32_t)max;
            if ((rc = add_kid(x, rep, atom)))
                return rc;
            atom = rep;
        }
        if ((rc = add_kid(x, cat, atom)))
            return rc;
    }
    *out = cat;
    return INF_OK;
}

static inf_status parse_alt(struct rx *x, size_t *out)
{
    size_t alt, cat;
    inf_status rc = new_node(x, RX_ALT, &alt);
    if (rc)
        return rc;
    for (;;) {
        if ((rc = parse_cat(x, &cat)) || (rc = add_kid(x, alt, cat)))
            return rc;
        if (rx_peek(x) != '|')
            break;
        x->pos++;
    }
    *out = alt;
    return INF_OK;
}

/* An anchor anywhere but at the ends of a top-level alternative is refused. */
static inf_status check_anchors(struct rx *x, size_t n, bool top)
{
    const struct rx_node *nd = &x->nodes[n];
    inf_status rc;

    if (nd->kind == RX_BOL || nd->kind == RX_EOL)
        return inf_error_set(x->err, INF_EUNSUPPORTED,
                             "regex: anchor '%c' is only supported at the start or end of the "
                             "pattern",
                             nd->kind == RX_BOL ? '^' : '$');
    for (size_t i = 0; i < nd->n_kids; i++) {
        size_t k = nd->kids[i];
        if (top && nd->kind == RX_ALT) {
            /* each top-level alternative: ^* body $* */
            const struct rx_node *cat = &x->nodes[k];
            size_t a = 0, b = cat->n_kids;
            while (a < b && x->nodes[cat->kids[a]].kind == RX_BOL)
                a++;
            while (b > a && x->nodes[cat->kids[b - 1]].kind == RX_EOL)
                b--;
            for (size_t j = a; j < b; j++)
                if ((rc = check_anchors(x, cat->kids[j], false)))
                    return rc;
            continue;
        }
        if ((rc = check_anchors(x, k, false)))
            return rc;
    }
    return INF_OK;
}

/* ---- output --------------------------------------------------------------------------------- */

/* One code point inside a GBNF literal or class: printable ASCII as itself, the rest escaped. */
static inf_status put_cp(struct inf__gstr *g, uint32_t cp, bool in_class)
{
    char buf[16];
    if (cp >= 0x20 && cp < 0x7F && cp != '"' && cp != '\\' &&
        !(in_class && (cp == ']' || cp == '-' || cp == '^' || cp == '[')))
        buf[0] = (char)cp, buf[1] = 0;
    else if (cp < 0x100)
        snprintf(buf, sizeof buf, "\\x%02X", cp);
    else if (cp < 0x10000)
        snprintf(buf, sizeof buf, "\\u%04X", cp);
    else
        snprintf(buf, sizeof buf, "\\U%08X", cp);
    return gputs(g, buf);
}

static inf_status put_class(struct inf__gstr *g, const struct rx_range *r, size_t n)
{
    inf_status rc = gputs(g, "[");
    for (size_t i = 0; i < n && !rc; i++) {
        rc = put_cp(g, r[i].lo, true);
        if (!rc && r[i].hi != r[i].lo) {
            if (r[i].hi > r[i].lo + 1)
                rc = gputs(g, "-");
            if (!rc)
                rc = put_cp(g, r[i].hi, true);
        }
    }
    return rc ? rc : gputs(g, "]");
}

/* The JSON escape sequence(s) of control/quote/backslash character c, as GBNF alternatives. */
static inf_status put_json_escape(struct inf__gstr *g, uint32_t c)
{
    static const char shortesc[] = "\"\"\\\\\bb\ff\nn\rr\tt//";
    char buf[64];
    inf_status rc;
    const char *hex = "0123456789ABCDEF";

    for (size_t i = 0; shortesc[i]; i += 2) {
        if ((unsigned char)shortesc[i] == c) {
            char e = shortesc[i + 1];
            snprintf(buf, sizeof buf, "\"\\\\%s%c\" | ", e == '"' || e == '\\' ? "\\" : "", e);
            if ((rc = gputs(g, buf)))
                return rc;
            break;
        }
    }
    /* \u00XX with either case of the hex letters */
    char d1 = hex[c >> 4], d2 = hex[c & 15];
    snprintf(buf, sizeof buf, "\"\\\\u00%c\" ", d1);
    if ((rc = gputs(g, buf)))
        return rc;
    if (d2 >= 'A')
        snprintf(buf, sizeof buf, "[%c%c]", d2, d2 + 32);
    else
        snprintf(buf, sizeof buf, "\"%c\"", d2);
    return gputs(g, buf);
}

/* A set in JSON-string mode: raw characters plus the escapes of the ones JSON must escape. */
static inf_status put_json_set(struct rx *x, const struct rx_set *s)
{
    struct rx_set raw = {0};
    inf_status rc = INF_OK;
    bool first = true;

    for (size_t i = 0; i < s->n; i++) {
        uint32_t lo = s->r[i].lo, hi = s->r[i].hi;
        /* cut out 0x00-0x1F, '"' (0x22) and '\' (0x5C) */
        uint32_t cuts[][2] = {{0, 0x1F}, {0x22, 0x22}, {0x5C, 0x5C}};
        uint32_t a = lo;
        for (size_t k = 0; k < 3 && a <= hi; k++) {
            if (cuts[k][1] < a)
                continue;
            if (cuts[k][0] > hi)
                break;
            if (cuts[k][0] > a && !set_add(&raw, a, cuts[k][0] - 1))
                goto oom;
            a = cuts[k][1] + 1;
        }
        if (a <= hi && !set_add(&raw, a, hi))
            goto oom;
    }
    if ((rc = gputs(x->out, "(")))
        goto out;
    if (raw.n) {
        if (raw.n == 1 && raw.r[0].lo == raw.r[0].hi)
            rc = gputs(x->out, "\""), rc = rc ? rc : put_cp(x->out, raw.r[0].lo, false),
            rc = rc ? rc : gputs(x->out, "\"");
        else
            rc = put_class(x->out, raw.r, raw.n);
        first = false;
    }
    for (uint32_t c = 0; c < 0x60 && !rc; c++) {
        if (!(c < 0x20 || c == '"' || c == '\\' || c == '/') || !set_has(s, c))
            continue;
        if (!first)
            rc = gputs(x->out, " | ");
        if (!rc)
            rc = put_json_escape(x->out, c);
        first = false;
    }
    if (!rc)
        rc = gputs(x->out, ")");
out:
    free(raw.r);
    return rc;
oom:
    free(raw.r);
    return rx_oom(x);
}

static bool set_needs_escapes(const struct rx_set *s)
{
    return s->n && (s->r[0].lo < 0x20 || set_has(s, '"') || set_has(s, '\\') || set_has(s, '/'));
}

/* Remove the surrogates D800-DFFF: UTF-8 cannot hold them, GBNF refuses them. */
static bool set_strip_surrogates(struct rx_set *s)
{
    struct rx_set t = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t lo = s->r[i].lo, hi = s->r[i].hi;
        if (hi < 0xD800 || lo > 0xDFFF) {
            if (!set_add(&t, lo, hi))
                goto fail;
            continue;
        }
        if (lo < 0xD800 && !set_add(&t, lo, 0xD7FF))
            goto fail;
        if (hi > 0xDFFF && !set_add(&t, 0xE000, hi))
            goto fail;
    }
    free(s->r);
    *s = t;
    return true;
fail:
    free(t.r);
    return false;
}

static inf_status put_set(struct rx *x, size_t si)
{
    struct rx_set *s = &x->sets[si];
    char name[64];
    inf_status rc;

    if (!set_strip_surrogates(s))
        return rx_oom(x);
    if (s->n == 0) /* an empty class matches nothing */
        return inf_error_set(x->err, INF_EUNSUPPORTED,
                             "regex: an empty character class matches nothing");
    if (x->json && set_needs_escapes(s)) {
        /* a helper rule per distinct set, so `.` is written out once */
        size_t h;
        for (h = 0; h < x->n_helper_sets; h++) {
            const struct rx_set *o = &x->sets[x->helper_sets[h]];
            if (o->n == s->n && memcmp(o->r, s->r, s->n * sizeof *s->r) == 0)
                break;
        }
        snprintf(name, sizeof name, "-c%zu", h);
        if (h == x->n_helper_sets) {
            struct inf__gstr *save = x->out;
            if (!inf__grow(&x->helper_sets, &x->cap_helper_sets, h + 1, sizeof(size_t), 8))
                return rx_oom(x);
            x->helper_sets[x->n_helper_sets++] = si;
            x->out = &x->helper;
            if ((rc = gputs(x->out, x->name)) || (rc = gputs(x->out, name)) ||
                (rc = gputs(x->out, " ::= ")) || (rc = put_json_set(x, s)) ||
                (rc = gputs(x->out, "\n")))
                return rc;
            x->out = save;
        }
        if ((rc = gputs(x->out, x->name)))
            return rc;
        return gputs(x->out, name);
    }
    if (s->n == 1 && s->r[0].lo == s->r[0].hi) {
        if ((rc = gputs(x->out, "\"")) || (rc = put_cp(x->out, s->r[0].lo, false)))
            return rc;
        return gputs(x->out, "\"");
    }
    return put_class(x->out, s->r, s->n);
}

/* True when node n matches only the empty string (an empty concatenation, x{0}). */
static bool node_empty(const struct rx *x, size_t n)
{
    const struct rx_node *nd = &x->nodes[n];
    switch (nd->kind) {
    case RX_SET:
        return false;
    case RX_REP:
        return nd->max == 0 || node_empty(x, nd->kids[0]);
    case RX_BOL:
    case RX_EOL:
        return true;
    case RX_CAT:
    case RX_ALT:
        for (size_t i = 0; i < nd->n_kids; i++)
            if (!node_empty(x, nd->kids[i]))
                return false;
        return true;
    }
    return true;
}

/* True when node n matches the empty string. */
static bool node_nullable(const struct rx *x, size_t n)
{
    const struct rx_node *nd = &x->nodes[n];
    switch (nd->kind) {
    case RX_SET:
        return false;
    case RX_REP:
        return nd->min == 0 || node_nullable(x, nd->kids[0]);
    case RX_CAT:
        for (size_t i = 0; i < nd->n_kids; i++)
            if (!node_nullable(x, nd->kids[i]))
                return false;
        return true;
    case RX_ALT:
        for (size_t i = 0; i < nd->n_kids; i++)
            if (node_nullable(x, nd->kids[i]))
                return true;
        return false;
    case RX_BOL:
    case RX_EOL:
        return true;
    }
    return true;
}

static inf_status put_node(struct rx *x, size_t n);
static inf_status put_seq(struct rx *x, const size_t *kids, size_t a, size_t b);

static inf_status put_rep_suffix(struct rx *x, int32_t min, int32_t max)
{
    char buf[48];
    if (min == 0 && max == -1)
        snprintf(buf, sizeof buf, ")*");
    else if (min == 1 && max == -1)
        snprintf(buf, sizeof buf, ")+");
    else if (min == 0 && max == 1)
        snprintf(buf, sizeof buf, ")?");
    else if (max == -1)
        snprintf(buf, sizeof buf, "){%d,}", (int)min);
    else if (max == min)
        snprintf(buf, sizeof buf, "){%d}", (int)min);
    else
        snprintf(buf, sizeof buf, "){%d,%d}", (int)min, (int)max);
    return gputs(x->out, buf);
}

/*
 * The non-empty strings of a nullable, non-empty node n: a repetition of something that can be
 * empty would make the GBNF rule left-recursive, so (x?)* is written as (x)*.
 */
static inf_status put_nonempty(struct rx *x, size_t n)
{
    const struct rx_node *nd = &x->nodes[n];
    inf_status rc;
    bool first = true;

    switch (nd->kind) {
    case RX_REP:
        if ((rc = gputs(x->out, "(")))
            return rc;
        rc =
            node_nullable(x, nd->kids[0]) ? put_nonempty(x, nd->kids[0]) : put_node(x, nd->kids[0]);
        if (rc)
            return rc;
        return put_rep_suffix(x, 1, nd->max);
    case RX_ALT:
        if ((rc = gputs(x->out, "(")))
            return rc;
        for (size_t i = 0; i < nd->n_kids; i++) {
            size_t k = nd->kids[i];
            if (node_empty(x, k))
                continue;
            if (!first && (rc = gputs(x->out, " | ")))
                return rc;
            rc = node_nullable(x, k) ? put_nonempty(x, k) : put_node(x, k);
            if (rc)
                return rc;
            first = false;
        }
        return gputs(x->out, ")");
    case RX_CAT:
        /* all kids nullable: the first non-empty kid's non-empty part, then the rest */
        if ((rc = gputs(x->out, "(")))
            return rc;
        for (size_t i = 0; i < nd->n_kids; i++) {
            size_t k = nd->kids[i];
            if (node_empty(x, k))
                continue;
            if (!first && (rc = gputs(x->out, " | ")))
                return rc;
            if ((rc = put_nonempty(x, k)))
                return rc;
            bool rest = false;
            for (size_t j = i + 1; j < nd->n_kids; j++)
                rest |= !node_empty(x, nd->kids[j]);
            if (rest &&
                ((rc = gputs(x->out, " ")) || (rc = put_seq(x, nd->kids, i + 1, nd->n_kids))))
                return rc;
            first = false;
        }
        return gputs(x->out, ")");
    default:
        return put_node(x, n);
    }
}

/* Concatenation of kids[a..b) (skipping the empty ones); the caller knows it is not empty. */
static inf_status put_seq(struct rx *x, const size_t *kids, size_t a, size_t b)
{
    bool first = true;
    inf_status rc;
    for (size_t i = a; i < b; i++) {
        if (node_empty(x, kids[i]))
            continue;
        if (!first && (rc = gputs(x->out, " ")))
            return rc;
        if ((rc = put_node(x, kids[i])))
            return rc;
        first = false;
    }
    return INF_OK;
}

static inf_status put_node(struct rx *x, size_t n)
{
    const struct rx_node *nd = &x->nodes[n];
    inf_status rc = INF_OK;

    switch (nd->kind) {
    case RX_SET:
        return put_set(x, nd->set);
    case RX_CAT:
        if ((rc = gputs(x->out, "(")) || (rc = put_seq(x, nd->kids, 0, nd->n_kids)))
            return rc;
        return gputs(x->out, ")");
    case RX_ALT: {
        bool any_empty = false, first = true;
        if ((rc = gputs(x->out, "(")))
            return rc;
        for (size_t i = 0; i < nd->n_kids; i++) {
            if (node_empty(x, nd->kids[i])) {
                any_empty = true;
                continue;
            }
            if (!first && (rc = gputs(x->out, " | ")))
                return rc;
            if ((rc = put_node(x, nd->kids[i])))
                return rc;
            first = false;
        }
        return gputs(x->out, any_empty ? ")?" : ")");
    }
    case RX_REP:
        if ((rc = gputs(x->out, "(")))
            return rc;
        if (node_nullable(x, nd->kids[0])) /* (x?){m,n} == (x){0,n} */
            return (rc = put_nonempty(x, nd->kids[0])) ? rc : put_rep_suffix(x, 0, nd->max);
        if ((rc = put_node(x, nd->kids[0])))
            return rc;
        return put_rep_suffix(x, nd->min, nd->max);
    case RX_BOL:
    case RX_EOL:
        break;
    }
    return INF_OK;
}

/* Any character (the unanchored ends), repeated. */
static inf_status put_any_star(struct rx *x)
{
    inf_status rc;
    if (!x->json)
        return gputs(x->out, "[\\x00-\\U0010FFFF]*");
    if ((rc = gputs(x->out, x->name)))
        return rc;
    return gputs(x->out, "-any*");
}

static inf_status put_root(struct rx *x, size_t root, bool anchored, bool *any_used)
{
    const struct rx_node *alt = &x->nodes[root];
    inf_status rc;

    if ((rc = gputs(x->out, x->name)) || (rc = gputs(x->out, " ::= ")))
        return rc;
    for (size_t i = 0; i < alt->n_kids; i++) {
        const struct rx_node *cat = &x->nodes[alt->kids[i]];
        size_t a = 0, b = cat->n_kids;
        bool bol = anchored, eol = anchored, wrote = false;

        while (a < b && x->nodes[cat->kids[a]].kind == RX_BOL)
            a++, bol = true;
        while (b > a && x->nodes[cat->kids[b - 1]].kind == RX_EOL)
            b--, eol = true;
        if (i && (rc = gputs(x->out, " | ")))
            return rc;
        if (!bol) {
            if ((rc = put_any_star(x)))
                return rc;
            *any_used = wrote = true;
        }
        bool body = false;
        for (size_t j = a; j < b; j++)
            body |= !node_empty(x, cat->kids[j]);
        if (body) {
            if ((wrote && (rc = gputs(x->out, " "))) || (rc = put_seq(x, cat->kids, a, b)))
                return rc;
            wrote = true;
        }
        if (!eol) {
            if ((wrote && (rc = gputs(x->out, " "))) || (rc = put_any_star(x)))
                return rc;
            *any_used = wrote = true;
        }
        if (!wrote && (rc = gputs(x->out, "\"\"")))
            return rc;
    }
    return gputs(x->out, "\n");
}

inf_status inf__regex_to_gbnf_json(const char *re, size_t len, const char *rule_name, bool anchored,
                                   bool json_string, struct inf__gstr *out, struct inf_error *err)
{
    struct rx x = {.s = re, .len = len, .err = err, .name = rule_name, .json = json_string};
    size_t root;
    bool any_used = false;
    inf_status rc;

    if (len > INF_GRAMMAR_MAX_SOURCE) {
        rc = inf_error_set(err, INF_ELIMIT, "regex: pattern of %zu bytes exceeds the limit of %u",
                           len, INF_GRAMMAR_MAX_SOURCE);
        goto out;
    }
    if ((rc = parse_alt(&x, &root)))
        goto out;
    if (x.pos != x.len) {
        rc = rx_fail(&x, INF_EPARSE, "unmatched ')'");
        goto out;
    }
    if ((rc = check_anchors(&x, root, true)))
        goto out;
    x.out = out;
    if ((rc = put_root(&x, root, anchored, &any_used)))
        goto out;
    if (any_used && json_string) {
        x.out = &x.helper;
        if ((rc = gputs(x.out, rule_name)) || (rc = gputs(x.out, "-any ::= " INF__JSON_CHAR "\n")))
            goto out;
    }
    if (x.helper.len && (rc = gput(out, x.helper.p, x.helper.len)))
        goto out;
out:
    for (size_t i = 0; i < x.n_nodes; i++)
        free(x.nodes[i].kids);
    free(x.nodes);
    for (size_t i = 0; i < x.n_sets; i++)
        free(x.sets[i].r);
    free(x.sets);
    free(x.helper.p);
    free(x.helper_sets);
    return rc;
}

inf_status inf__regex_to_gbnf(const char *re, size_t len, const char *rule_name, bool anchored,
                              struct inf__gstr *out, struct inf_error *err)
{
    return inf__regex_to_gbnf_json(re, len, rule_name, anchored, false, out, err);
}
