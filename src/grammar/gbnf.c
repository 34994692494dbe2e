/*
 * grammar/gbnf.c - llama.cpp's GBNF parsed into a byte-level grammar (grammar_internal.h).
 *
 * Character classes are over Unicode code points in GBNF; here each becomes UTF-8 byte
 * sequences (one alternative per run of sequences whose bytes vary independently), so the
 * matcher only ever compares bytes and a token may end in the middle of a character.
 * Repetitions and groups become rules:  X* -> R ::= X R | "" (the matcher treats the tail
 * reference as a jump, so the stack does not grow), X{m,n} -> m copies of X then n-m nested
 * optional rules. Left recursion would make the matcher's stack grow without bound and is
 * refused here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "grammar/grammar_internal.h"

#define MAX_NESTING                                                                                \
    1024                          /* ( ) groups inside one another (the JSON Schema compiler       \
                                     writes about 330 for a bound of 0.0 on a number) */
#define MAX_ELEMS     (16u << 20) /* elements after expansion */
#define MAX_CODEPOINT 0x10FFFFu

struct galt {
    struct inf__gel *e;
    size_t n, cap;
};

struct grule {
    char *name;     /* NULL for the rules groups and repetitions make */
    const char *at; /* where it was first mentioned (line and column computed on error) */
    bool defined;
    struct galt *alts;
    size_t n_alts, cap_alts;
};

struct parser {
    const char *s, *end, *p;
    struct grule *rules;
    size_t n_rules, cap_rules;
    uint32_t *names; /* open-addressing table of rule indices + 1 */
    size_t names_cap;
    struct inf__byteset *sets;
    size_t n_sets, cap_sets;
    size_t n_elems;
    int depth;
    struct inf_error *err;
    inf_status rc;
};

static void where(const struct parser *ps, const char *at, uint32_t *line, uint32_t *col)
{
    uint32_t l = 1, c = 1;
    for (const char *q = ps->s; q < at && q < ps->end; q++) {
        if (*q == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static bool fail_at(struct parser *ps, const char *at, const char *what)
{
    uint32_t line, col;
    if (ps->rc != INF_OK)
        return false;
    where(ps, at, &line, &col);
    ps->rc = inf_error_set(ps->err, INF_EPARSE, "grammar: line %u, column %u: %s", line, col, what);
    return false;
}

static bool fail(struct parser *ps, inf_status rc, const char *what)
{
    if (ps->rc != INF_OK)
        return false;
    ps->rc = inf_error_set(ps->err, rc, "grammar: %s", what);
    return false;
}

static bool oom(struct parser *ps)
{
    return fail(ps, INF_ENOMEM, "out of memory");
}

/* ---- rules ---------------------------------------------------------------------------------- */

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static bool names_grow(struct parser *ps)
{
    size_t cap = ps->names_cap ? ps->names_cap * 2 : 256;
    uint32_t *t = calloc(cap, sizeof(*t));
    if (!t)
        return false;
    for (size_t i = 0; i < ps->names_cap; i++) {
        uint32_t v = ps->names[i];
        if (!v)
            continue;
        const char *nm = ps->rules[v - 1].name;
        size_t h = (size_t)name_hash(nm, strlen(nm)) & (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = v;
    }
    free(ps->names);
    ps->names = t;
    ps->names_cap = cap;
    return true;
}

static int64_t new_rule(struct parser *ps, const char *name, size_t n)
{
    if (ps->n_rules >= INF_GRAMMAR_MAX_RULES) {
        fail(ps, INF_ELIMIT,
             "more than "
             "200000"
             " rules (repetitions and groups included)");
        return -1;
    }
    if (!inf__grow(&ps->rules, &ps->cap_rules, ps->n_rules + 1, sizeof(*ps->rules), 64)) {
        oom(ps);
        return -1;
    }
    struct grule *r = &ps->rules[ps->n_rules];
    memset(r, 0, sizeof(*r));
    if (name) {
        r->name = malloc(n + 1);
        if (!r->name) {
            oom(ps);
            return -1;
        }
        memcpy(r->name, name, n);
        r->name[n] = '\0';
    }
    return (int64_t)ps->n_rules++;
}

/* The rule called name[0..n), made (undefined) on first mention. */
static int64_t rule_by_name(struct parser *ps, const char *name, size_t n)
{
    if (2 * (ps->n_rules + 1) > ps->names_cap && !names_grow(ps)) {
        oom(ps);
        return -1;
    }
    size_t h = (size_t)name_hash(name, n) & (ps->names_cap - 1);
    while (ps->names[h]) {
        const char *nm = ps->rules[ps->names[h] - 1].name;
        if (strlen(nm) == n && memcmp(nm, name, n) == 0)
            return ps->names[h] - 1;
        h = (h + 1) & (ps->names_cap - 1);
    }
    int64_t r = new_rule(ps, name, n);
    if (r < 0)
        return -1;
    ps->names[h] = (uint32_t)r + 1;
    return r;
}

static struct galt *add_alt(struct parser *ps, uint32_t rule)
{
    struct grule *r = &ps->rules[rule];
    if (!inf__grow(&r->alts, &r->cap_alts, r->n_alts + 1, sizeof(*r->alts), 2)) {
        oom(ps);
        return NULL;
    }
    struct galt *a = &r->alts[r->n_alts++];
    memset(a, 0, sizeof(*a));
    return a;
}

static bool push_el(struct parser *ps, struct galt *a, uint32_t kind, uint32_t arg)
{
    if (ps->n_elems >= MAX_ELEMS)
        return fail(ps, INF_ELIMIT, "the grammar expands to more than 16M elements");
    if (!inf__grow(&a->e, &a->cap, a->n + 1, sizeof(*a->e), 4))
        return oom(ps);
    a->e[a->n++] = (struct inf__gel){kind, arg};
    ps->n_elems++;
    return true;
}

static bool push_all(struct parser *ps, struct galt *a, const struct galt *frag)
{
    for (size_t i = 0; i < frag->n; i++)
        if (!push_el(ps, a, frag->e[i].kind, frag->e[i].arg))
            return false;
    return true;
}

static int64_t new_set(struct parser *ps, const struct inf__byteset *s)
{
    if (!inf__grow(&ps->sets, &ps->cap_sets, ps->n_sets + 1, sizeof(*ps->sets), 64)) {
        oom(ps);
        return -1;
    }
    ps->sets[ps->n_sets] = *s;
    return (int64_t)ps->n_sets++;
}

static bool push_byte_range(struct parser *ps, struct galt *a, unsigned lo, unsigned hi)
{
    struct inf__byteset s = {{0, 0, 0, 0}};
    for (unsigned b = lo; b <= hi; b++)
        s.w[b >> 6] |= 1ull << (b & 63);
    int64_t i = new_set(ps, &s);
    return i >= 0 && push_el(ps, a, INF__GEL_BYTES, (uint32_t)i);
}

/* ---- character classes -> UTF-8 byte sequences ------------------------------------------------
 */

struct cprange {
    uint32_t lo, hi;
};

struct cpclass {
    struct cprange *r;
    size_t n, cap;
};

static bool class_add(struct parser *ps, struct cpclass *c, uint32_t lo, uint32_t hi)
{
    if (!inf__grow(&c->r, &c->cap, c->n + 1, sizeof(*c->r), 8))
        return oom(ps);
    c->r[c->n++] = (struct cprange){lo, hi};
    return true;
}

static int cmp_range(const void *a, const void *b)
{
    const struct cprange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and merge; with negate, the complement in [0, 0x10FFFF]; surrogates removed. */
static bool class_normalize(struct parser *ps, struct cpclass *c, bool negate)
{
    if (c->n > 1)
        qsort(c->r, c->n, sizeof(*c->r), cmp_range);
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (m && c->r[i].lo <= c->r[m - 1].hi + 1) {
            if (c->r[i].hi > c->r[m - 1].hi)
                c->r[m - 1].hi = c->r[i].hi;
        } else {
            c->r[m++] = c->r[i];
        }
    }
    c->n = m;
    if (negate) {
        struct cpclass o = {0};
        uint32_t next = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (c->r[i].lo > next && !class_add(ps, &o, next, c->r[i].lo - 1)) {
                free(o.r);
                return false;
            }
            next = c->r[i].hi + 1;
        }
        if (next <= MAX_CODEPOINT && !class_add(ps, &o, next, MAX_CODEPOINT)) {
            free(o.r);
            return false;
        }
        free(c->r);
        *c = o;
    }
    /* cut the surrogates out */
    struct cpclass o = {0};
    for (size_t i = 0; i < c->n; i++) {
        uint32_t lo = c->r[i].lo, hi = c->r[i].hi;
        if (lo < 0xD800 && hi >= 0xD800) {
            if (!class_add(ps, &o, lo, 0xD7FF))
                goto fail;
            lo = 0xE000;
        }
        if (lo >= 0xD800 && lo <= 0xDFFF)
            lo = 0xE000;
        if (lo <= hi && !class_add(ps, &o, lo, hi))
            goto fail;
    }
    free(c->r);
    *c = o;
    return true;
fail:
    free(o.r);
    return false;
}

static int utf8_len_of(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static void utf8_put(uint32_t cp, unsigned char *b)
{
    int n = utf8_len_of(cp);
    if (n == 1) {
        b[0] = (unsigned char)cp;
    } else if (n == 2) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (n == 3) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    }
}

/* Emit [lo, hi] (same UTF-8 length, non-ASCII) as alternatives of per-byte ranges into rule. */
static bool split_range(struct parser *ps, uint32_t rule, uint32_t lo, uint32_t hi)
{
    static const uint32_t bounds[] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++) {
        if (lo <= bounds[i] && hi > bounds[i])
            return split_range(ps, rule, lo, bounds[i]) && split_range(ps, rule, bounds[i] + 1, hi);
    }
    int n = utf8_len_of(lo);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0)
                return split_range(ps, rule, lo, lo | m) && split_range(ps, rule, (lo | m) + 1, hi);
            if ((hi & m) != m)
                return split_range(ps, rule, lo, (hi & ~m) - 1) &&
                       split_range(ps, rule, hi & ~m, hi);
        }
    }
    unsigned char a[4], b[4];
    utf8_put(lo, a);
    utf8_put(hi, b);
    struct galt *alt = add_alt(ps, rule);
    if (!alt)
        return false;
    for (int i = 0; i < n; i++)
        if (!push_byte_range(ps, alt, a[i], b[i]))
            return false;
    return true;
}

/* Append the class as one element to frag: a byte set when it is all ASCII, else a reference
   to a new rule of UTF-8 sequences. Consumes c. */
static bool emit_class(struct parser *ps, struct galt *frag, struct cpclass *c, bool negate)
{
    bool ok = class_normalize(ps, c, negate);
    if (!ok)
        goto out;
    if (c->n == 0) {
        ok = fail(ps, INF_EPARSE, "a character class matches no character");
        goto out;
    }
    struct inf__byteset ascii = {{0, 0, 0, 0}};
    bool has_ascii = false, has_wide = false;
    for (size_t i = 0; i < c->n; i++) {
        for (uint32_t cp = c->r[i].lo; cp <= c->r[i].hi && cp < 0x80; cp++) {
            ascii.w[cp >> 6] |= 1ull << (cp & 63);
            has_ascii = true;
        }
        if (c->r[i].hi >= 0x80)
            has_wide = true;
    }
    if (!has_wide) {
        int64_t si = new_set(ps, &ascii);
        ok = si >= 0 && push_el(ps, frag, INF__GEL_BYTES, (uint32_t)si);
        goto out;
    }
    int64_t r = new_rule(ps, NULL, 0);
    ok = r >= 0;
    if (!ok)
        goto out;
    ps->rules[r].defined = true;
    if (has_ascii) {
        struct galt *alt = add_alt(ps, (uint32_t)r);
        int64_t si = alt ? new_set(ps, &ascii) : -1;
        ok = si >= 0 && push_el(ps, alt, INF__GEL_BYTES, (uint32_t)si);
    }
    for (size_t i = 0; ok && i < c->n; i++) {
        uint32_t lo = c->r[i].lo < 0x80 ? 0x80 : c->r[i].lo;
        if (c->r[i].hi >= lo)
            ok = split_range(ps, (uint32_t)r, lo, c->r[i].hi);
    }
    ok = ok && push_el(ps, frag, INF__GEL_REF, (uint32_t)r);
out:
    free(c->r);
    c->r = NULL;
    c->n = c->cap = 0;
    return ok;
}

/* ---- the text ------------------------------------------------------------------------------ */

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Skip spaces and comments; newlines only when newline_ok. */
static void skip_space(struct parser *ps, bool newline_ok)
{
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == ' ' || c == '\t' || ((c == '\n' || c == '\r') && newline_ok)) {
            ps->p++;
        } else if (c == '#') {
            while (ps->p < ps->end && *ps->p != '\n' && *ps->p != '\r')
                ps->p++;
        } else {
            break;
        }
    }
}

/* One character of a literal or class, escapes decoded; invalid UTF-8 is an error. */
static bool read_char(struct parser *ps, uint32_t *cp)
{
    const char *at = ps->p;
    if (ps->p >= ps->end)
        return fail_at(ps, at, "unexpected end of the grammar");
    unsigned char c = (unsigned char)*ps->p;
    if (c == '\\') {
        ps->p++;
        if (ps->p >= ps->end)
            return fail_at(ps, at, "unexpected end after '\\'");
        char e = *ps->p++;
        int digits = 0;
        switch (e) {
        case 'x':
            digits = 2;
            break;
        case 'u':
            digits = 4;
            break;
        case 'U':
            digits = 8;
            break;
        case 't':
            *cp = '\t';
            return true;
        case 'n':
            *cp = '\n';
            return true;
        case 'r':
            *cp = '\r';
            return true;
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
        case '.':
            *cp = (uint32_t)e;
            return true;
        default:
            return fail_at(ps, at, "unknown escape sequence");
        }
        uint32_t v = 0;
        for (int i = 0; i < digits; i++) {
            int d = ps->p < ps->end ? inf__hex_digit((unsigned char)*ps->p) : -1;
            if (d < 0)
                return fail_at(ps, at, "bad hexadecimal escape");
            v = v * 16 + (uint32_t)d;
            ps->p++;
        }
        if (v > MAX_CODEPOINT || (v >= 0xD800 && v <= 0xDFFF))
            return fail_at(ps, at, "escape outside the Unicode code points");
        *cp = v;
        return true;
    }
    size_t left = (size_t)(ps->end - ps->p);
    size_t n = inf__utf8_len(c);
    if ((c >= 0x80 && c < 0xC2) || c > 0xF4 || n > left)
        return fail_at(ps, at, "invalid UTF-8");
    uint32_t v = c;
    if (n > 1) {
        v = c & (0xFFu >> (n + 1));
        for (size_t i = 1; i < n; i++) {
            unsigned char cc = (unsigned char)ps->p[i];
            if ((cc & 0xC0) != 0x80)
                return fail_at(ps, at, "invalid UTF-8");
            v = (v << 6) | (cc & 0x3F);
        }
        if (v < (n == 2   ? 0x80u
                 : n == 3 ? 0x800u
                          : 0x10000u) ||
            v > MAX_CODEPOINT || (v >= 0xD800 && v <= 0xDFFF))
            return fail_at(ps, at, "invalid UTF-8");
    }
    ps->p += n;
    *cp = v;
    return true;
}

static bool parse_alternates(struct parser *ps, uint32_t rule, bool nested);

/* Wrap a fragment as a single element (itself when it is one; else a new rule). */
static bool as_single(struct parser *ps, const struct galt *frag, struct inf__gel *out)
{
    if (frag->n == 1) {
        *out = frag->e[0];
        return true;
    }
    int64_t r = new_rule(ps, NULL, 0);
    if (r < 0)
        return false;
    ps->rules[r].defined = true;
    struct galt *a = add_alt(ps, (uint32_t)r);
    if (!a || !push_all(ps, a, frag))
        return false;
    *out = (struct inf__gel){INF__GEL_REF, (uint32_t)r};
    return true;
}

/* R ::= X R | ""  (or R ::= X | "" when loop is false) */
static int64_t rep_rule(struct parser *ps, struct inf__gel x, bool loop, int64_t next)
{
    int64_t r = new_rule(ps, NULL, 0);
    if (r < 0)
        return -1;
    ps->rules[r].defined = true;
    struct galt *a = add_alt(ps, (uint32_t)r);
    if (!a || !push_el(ps, a, x.kind, x.arg))
        return -1;
    if (loop && !push_el(ps, a, INF__GEL_REF, (uint32_t)r))
        return -1;
    if (next >= 0 && !push_el(ps, a, INF__GEL_REF, (uint32_t)next))
        return -1;
    if (!add_alt(ps, (uint32_t)r))
        return -1;
    return r;
}

static bool read_count(struct parser *ps, uint32_t *v)
{
    const char *at = ps->p;
    uint64_t x = 0;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return fail_at(ps, at, "expected a number in { }");
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        x = x * 10 + (uint64_t)(*ps->p++ - '0');
        if (x > INF_GRAMMAR_MAX_REPEAT) {
            ps->p = at;
            return fail_at(ps, at, "repetition count above 10000");
        }
    }
    *v = (uint32_t)x;
    return true;
}

/* Apply a repetition suffix (if any) to frag and append the result to seq. */
static bool apply_repeat(struct parser *ps, struct galt *seq, struct galt *frag)
{
    const char *at = ps->p;
    uint32_t lo, hi;
    bool unbounded;
    if (ps->p >= ps->end)
        return push_all(ps, seq, frag);
    char c = *ps->p;
    if (c == '*') {
        lo = 0, hi = 0, unbounded = true;
        ps->p++;
    } else if (c == '+') {
        lo = 1, hi = 0, unbounded = true;
        ps->p++;
    } else if (c == '?') {
        lo = 0, hi = 1, unbounded = false;
        ps->p++;
    } else if (c == '{') {
        ps->p++;
        skip_space(ps, true);
        if (!read_count(ps, &lo))
            return false;
        skip_space(ps, true);
        unbounded = false;
        hi = lo;
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_space(ps, true);
            if (ps->p < ps->end && *ps->p == '}') {
                unbounded = true;
            } else if (!read_count(ps, &hi)) {
                return false;
            }
            skip_space(ps, true);
        }
        if (ps->p >= ps->end || *ps->p != '}')
            return fail_at(ps, at, "expected '}' closing the repetition");
        ps->p++;
        if (!unbounded && hi < lo)
            return fail_at(ps, at, "repetition {m,n} with n < m");
    } else {
        return push_all(ps, seq, frag);
    }
    if (frag->n == 0)
        return true; /* ""* is "" */
    struct inf__gel x;
    if (!as_single(ps, frag, &x))
        return false;
    for (uint32_t i = 0; i < lo; i++)
        if (!push_el(ps, seq, x.kind, x.arg))
            return false;
    if (unbounded) {
        int64_t r = rep_rule(ps, x, true, -1);
        return r >= 0 && push_el(ps, seq, INF__GEL_REF, (uint32_t)r);
    }
    int64_t chain = -1;
    for (uint32_t i = lo; i < hi; i++) {
        chain = rep_rule(ps, x, false, chain);
        if (chain < 0)
            return false;
    }
    return chain < 0 || push_el(ps, seq, INF__GEL_REF, (uint32_t)chain);
}

/* A sequence of items up to '|', ')' or (when not nested) the end of the line. */
static bool parse_sequence(struct parser *ps, struct galt *seq, bool nested)
{
    for (;;) {
        skip_space(ps, nested);
        if (ps->p >= ps->end)
            return true;
        const char *at = ps->p;
        char c = *ps->p;
        struct galt frag = {0};
        bool ok = true;
        if (c == '"') {
            ps->p++;
            while (ok && (ps->p >= ps->end || *ps->p != '"')) {
                uint32_t cp;
                if (ps->p >= ps->end || *ps->p == '\n') {
                    ok = fail_at(ps, at, "unterminated literal");
                    break;
                }
                ok = read_char(ps, &cp);
                unsigned char b[4];
                if (ok) {
                    utf8_put(cp, b);
                    for (int i = 0; ok && i < utf8_len_of(cp); i++)
                        ok = push_byte_range(ps, &frag, b[i], b[i]);
                }
            }
            if (ok)
                ps->p++;
        } else if (c == '[') {
            ps->p++;
            bool negate = ps->p < ps->end && *ps->p == '^';
            if (negate)
                ps->p++;
            struct cpclass cls = {0};
            while (ok && (ps->p >= ps->end || *ps->p != ']')) {
                uint32_t lo, hi;
                if (ps->p >= ps->end) {
                    ok = fail_at(ps, at, "unterminated character class");
                    break;
                }
                ok = read_char(ps, &lo);
                hi = lo;
                if (ok && ps->end - ps->p >= 2 && ps->p[0] == '-' && ps->p[1] != ']') {
                    ps->p++;
                    ok = read_char(ps, &hi);
                    if (ok && hi < lo)
                        ok = fail_at(ps, at, "character range with its end before its start");
                }
                ok = ok && class_add(ps, &cls, lo, hi);
            }
            if (ok) {
                ps->p++;
                ok = emit_class(ps, &frag, &cls, negate);
            }
            free(cls.r);
        } else if (c == '.') {
            ps->p++;
            struct cpclass cls = {0};
            ok = class_add(ps, &cls, 0, MAX_CODEPOINT) && emit_class(ps, &frag, &cls, false);
            free(cls.r);
        } else if (c == '(') {
            ps->p++;
            if (++ps->depth > MAX_NESTING) {
                ok = fail_at(ps, at, "groups nested more than 1024 deep");
            } else {
                int64_t r = new_rule(ps, NULL, 0);
                ok = r >= 0;
                if (ok) {
                    ps->rules[r].defined = true;
                    ok = parse_alternates(ps, (uint32_t)r, true);
                }
                skip_space(ps, true);
                if (ok && (ps->p >= ps->end || *ps->p != ')'))
                    ok = fail_at(ps, at, "expected ')' closing this group");
                if (ok) {
                    ps->p++;
                    ok = push_el(ps, &frag, INF__GEL_REF, (uint32_t)r);
                }
            }
            ps->depth--;
        } else if (is_word(c)) {
            const char *n0 = ps->p;
            while (ps->p < ps->end && is_word(*ps->p))
                ps->p++;
            int64_t r = rule_by_name(ps, n0, (size_t)(ps->p - n0));
            ok = r >= 0;
            if (ok && !ps->rules[r].at)
                ps->rules[r].at = n0;
            ok = ok && push_el(ps, &frag, INF__GEL_REF, (uint32_t)r);
        } else if (c == '<') {
            ok = fail_at(ps, at, "token references (<...>) are not supported; write the text");
        } else if (c == '|' || c == ')' || c == '\n' || c == '\r') {
            return true;
        } else {
            ok = fail_at(ps, at, "unexpected character");
        }
        if (ok)
            ok = apply_repeat(ps, seq, &frag);
        free(frag.e);
        ps->n_elems -= frag.n;
        if (!ok)
            return false;
    }
}

static bool parse_alternates(struct parser *ps, uint32_t rule, bool nested)
{
    for (;;) {
        struct galt *a = add_alt(ps, rule);
        if (!a)
            return false;
        struct galt seq = {0};
        bool ok = parse_sequence(ps, &seq, nested);
        /* the rules array may have moved: find the alternative again */
        a = &ps->rules[rule].alts[ps->rules[rule].n_alts - 1];
        *a = seq;
        if (!ok)
            return false;
        skip_space(ps, nested);
        if (!nested) {
            /* a line that starts with '|' continues the rule */
            const char *save = ps->p;
            skip_space(ps, true);
            if (ps->p >= ps->end || *ps->p != '|')
                ps->p = save;
        }
        if (ps->p < ps->end && *ps->p == '|') {
            ps->p++;
            continue;
        }
        return true;
    }
}

static bool parse_rules(struct parser *ps)
{
    for (;;) {
        skip_space(ps, true);
        if (ps->p >= ps->end)
            return true;
        const char *at = ps->p;
        if (!is_word(*ps->p))
            return fail_at(ps, at, "expected a rule name");
        while (ps->p < ps->end && is_word(*ps->p))
            ps->p++;
        size_t n = (size_t)(ps->p - at);
        skip_space(ps, false);
        if (ps->end - ps->p < 3 || memcmp(ps->p, "::=", 3) != 0)
            return fail_at(ps, ps->p, "expected '::=' after the rule name");
        ps->p += 3;
        int64_t r = rule_by_name(ps, at, n);
        if (r < 0)
            return false;
        if (ps->rules[r].defined) {
            char msg[160];
            snprintf(msg, sizeof(msg), "rule '%.*s' is defined twice", (int)(n > 64 ? 64 : n), at);
            return fail_at(ps, at, msg);
        }
        ps->rules[r].defined = true;
        ps->rules[r].at = at;
        if (!parse_alternates(ps, (uint32_t)r, false))
            return false;
        if (ps->p < ps->end && *ps->p != '\n' && *ps->p != '\r')
            return fail_at(ps, ps->p,
                           *ps->p == ')' ? "unbalanced ')'" : "expected the end of the line");
    }
}

/* ---- checks on the whole grammar ---------------------------------------------------------------
 */

static bool check_defined(struct parser *ps)
{
    for (size_t i = 0; i < ps->n_rules; i++) {
        if (!ps->rules[i].defined) {
            uint32_t line, col;
            where(ps, ps->rules[i].at, &line, &col);
            ps->rc = inf_error_set(ps->err, INF_EPARSE,
                                   "grammar: line %u, column %u: rule '%s' is used but not defined",
                                   line, col, ps->rules[i].name);
            return false;
        }
    }
    return true;
}

/*
 * The rules for which some alternative has all its elements satisfied, where a byte set is
 * satisfied when bytes_ok and a reference when its rule is in the set (nullable: bytes_ok
 * false; productive: true). A worklist over reference counts: linear in the grammar's size.
 * Returns a malloc'd flag per rule, NULL when out of memory.
 */
static bool *rule_fixpoint(struct parser *ps, bool bytes_ok)
{
    size_t n = ps->n_rules, n_alts = 0, n_refs = 0;
    for (size_t r = 0; r < n; r++) {
        n_alts += ps->rules[r].n_alts;
        for (size_t a = 0; a < ps->rules[r].n_alts; a++)
            for (size_t i = 0; i < ps->rules[r].alts[a].n; i++)
                n_refs += ps->rules[r].alts[a].e[i].kind == INF__GEL_REF;
    }
    bool *flag = calloc(n + 1, sizeof(bool));
    uint32_t *need = malloc((n_alts + 1) * sizeof(uint32_t)), *owner = malloc((n_alts + 1) * 4);
    uint32_t *first = calloc(n + 2, sizeof(uint32_t)), *occ = malloc((n_refs + 1) * 4);
    uint32_t *queue = malloc((n + 1) * sizeof(uint32_t));
    if (!flag || !need || !owner || !first || !occ || !queue) {
        free(flag);
        flag = NULL;
        goto out;
    }
    /* occurrences of each rule, grouped by rule (counting sort) */
    for (size_t r = 0; r < n; r++)
        for (size_t a = 0; a < ps->rules[r].n_alts; a++)
            for (size_t i = 0; i < ps->rules[r].alts[a].n; i++)
                if (ps->rules[r].alts[a].e[i].kind == INF__GEL_REF)
                    first[ps->rules[r].alts[a].e[i].arg + 2]++;
    for (size_t r = 0; r < n; r++)
        first[r + 2] += first[r + 1];
    size_t qn = 0, al = 0;
    for (size_t r = 0; r < n; r++) {
        for (size_t a = 0; a < ps->rules[r].n_alts; a++, al++) {
            const struct galt *x = &ps->rules[r].alts[a];
            uint32_t k = 0;
            bool dead = false;
            for (size_t i = 0; i < x->n; i++) {
                if (x->e[i].kind == INF__GEL_REF) {
                    occ[first[x->e[i].arg + 1]++] = (uint32_t)al;
                    k++;
                } else if (!bytes_ok) {
                    dead = true;
                }
            }
            owner[al] = (uint32_t)r;
            need[al] = dead ? UINT32_MAX : k;
            if (k == 0 && !dead && !flag[r]) {
                flag[r] = true;
                queue[qn++] = (uint32_t)r;
            }
        }
    }
    /* first[r] .. first[r+1] are now rule r's occurrences */
    for (size_t qi = 0; qi < qn; qi++) {
        uint32_t r = queue[qi];
        for (uint32_t o = first[r]; o < first[r + 1]; o++) {
            uint32_t a = occ[o];
            if (need[a] == UINT32_MAX || --need[a] != 0 || flag[owner[a]])
                continue;
            flag[owner[a]] = true;
            queue[qn++] = owner[a];
        }
    }
out:
    free(need);
    free(owner);
    free(first);
    free(occ);
    free(queue);
    return flag;
}

/* Left recursion: a cycle of references reached without consuming a byte, with at least one
   reference that is not in tail position (tail references are jumps in the matcher). */
static bool check_left_recursion(struct parser *ps)
{
    size_t n = ps->n_rules;
    bool *nullable = rule_fixpoint(ps, false);
    if (!nullable)
        return oom(ps);
    /* edges: r -> s for each left-corner reference; tail flag */
    struct edge {
        uint32_t to;
        bool tail;
    };
    size_t *first = calloc(n + 1, sizeof(size_t));
    struct edge *edges = NULL;
    size_t n_edges = 0, cap_edges = 0;
    bool ok = first != NULL;
    for (size_t r = 0; ok && r < n; r++) {
        first[r] = n_edges;
        for (size_t a = 0; ok && a < ps->rules[r].n_alts; a++) {
            const struct galt *al = &ps->rules[r].alts[a];
            for (size_t i = 0; i < al->n && al->e[i].kind == INF__GEL_REF; i++) {
                ok = inf__grow(&edges, &cap_edges, n_edges + 1, sizeof(*edges), 64);
                if (!ok)
                    break;
                edges[n_edges++] = (struct edge){al->e[i].arg, i + 1 == al->n};
                if (!nullable[al->e[i].arg])
                    break;
            }
        }
    }
    if (!ok) {
        free(first);
        free(edges);
        free(nullable);
        return oom(ps);
    }
    first[n] = n_edges;
    /* iterative Tarjan SCC; a component with a non-tail edge inside it, or a non-tail self
       loop, is left recursion */
    int64_t *index = malloc(n * sizeof(int64_t) + 1), *low = malloc(n * sizeof(int64_t) + 1);
    uint32_t *stack = malloc(n * sizeof(uint32_t) + 1), *comp = malloc(n * sizeof(uint32_t) + 1);
    struct frame {
        uint32_t v;
        size_t e;
    } *call = malloc(n * sizeof(struct frame) + 1);
    bool *on = calloc(n + 1, sizeof(bool));
    if (!index || !low || !stack || !comp || !call || !on) {
        ok = oom(ps);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        index[i] = -1;
    int64_t next_index = 0;
    size_t sp = 0, cp;
    uint32_t n_comp = 0;
    for (size_t root = 0; root < n; root++) {
        if (index[root] >= 0)
            continue;
        cp = 0;
        call[cp++] = (struct frame){(uint32_t)root, first[root]};
        index[root] = low[root] = next_index++;
        stack[sp++] = (uint32_t)root;
        on[root] = true;
        while (cp) {
            struct frame *f = &call[cp - 1];
            if (f->e < first[f->v + 1]) {
                uint32_t w = edges[f->e++].to;
                if (index[w] < 0) {
                    index[w] = low[w] = next_index++;
                    stack[sp++] = w;
                    on[w] = true;
                    call[cp++] = (struct frame){w, first[w]};
                } else if (on[w] && index[w] < low[f->v]) {
                    low[f->v] = index[w];
                }
                continue;
            }
            uint32_t v = f->v;
            if (low[v] == index[v]) {
                uint32_t w;
                do {
                    w = stack[--sp];
                    on[w] = false;
                    comp[w] = n_comp;
                } while (w != v);
                n_comp++;
            }
            cp--;
            if (cp && low[v] < low[call[cp - 1].v])
                low[call[cp - 1].v] = low[v];
        }
    }
    for (size_t r = 0; r < n && ok; r++) {
        for (size_t e = first[r]; e < first[r + 1]; e++) {
            if (!edges[e].tail && comp[edges[e].to] == comp[r]) {
                /* name a named rule of the cycle */
                const char *name = ps->rules[r].name;
                for (size_t s = 0; !name && s < n; s++)
                    if (comp[s] == comp[r] && ps->rules[s].name)
                        name = ps->rules[s].name;
                ps->rc = inf_error_set(ps->err, INF_EPARSE,
                                       "grammar: rule '%s' is left-recursive (it can reach itself "
                                       "without consuming a character)",
                                       name ? name : "(group)");
                ok = false;
                break;
            }
        }
    }
out:
    free(index);
    free(low);
    free(stack);
    free(comp);
    free(call);
    free(on);
    free(first);
    free(edges);
    free(nullable);
    return ok;
}

/* A rule is productive when some alternative is all bytes and productive rules. An alternative
   that refers to an unproductive rule can never be completed: it is dropped, so that no mask
   ever lets a model into it (the JSON Schema compiler writes a $ref target that accepts nothing
   as such a rule). A root that is not productive accepts no text at all (root ::= root) and is
   refused rather than matched. */
static bool check_productive(struct parser *ps, uint32_t root)
{
    bool *prod = rule_fixpoint(ps, true);
    if (!prod)
        return oom(ps);
    bool ok = prod[root];
    if (!ok)
        ps->rc = inf_error_set(ps->err, INF_EPARSE,
                               "grammar: rule '%s' can never be completed (it accepts no text)",
                               ps->rules[root].name);
    for (size_t r = 0; ok && r < ps->n_rules; r++) {
        struct grule *g = &ps->rules[r];
        size_t kept = 0;
        for (size_t a = 0; a < g->n_alts; a++) {
            bool dead = false;
            for (size_t i = 0; i < g->alts[a].n && !dead; i++)
                dead = g->alts[a].e[i].kind == INF__GEL_REF && !prod[g->alts[a].e[i].arg];
            if (dead) {
                ps->n_elems -= g->alts[a].n;
                free(g->alts[a].e);
            } else {
                g->alts[kept++] = g->alts[a];
            }
        }
        g->n_alts = kept;
    }
    free(prod);
    return ok;
}

static void parser_release(struct parser *ps)
{
    for (size_t i = 0; i < ps->n_rules; i++) {
        for (size_t a = 0; a < ps->rules[i].n_alts; a++)
            free(ps->rules[i].alts[a].e);
        free(ps->rules[i].alts);
        free(ps->rules[i].name);
    }
    free(ps->rules);
    free(ps->names);
    free(ps->sets);
}

void inf_grammar_free(struct inf_grammar *g)
{
    if (!g)
        return;
    free(g->elems);
    free(g->sets);
    free(g->alts);
    free(g->rule_alt);
    free(g->source);
    free(g->rule_hash);
    free(g->el_rule);
    free(g->el_off);
    free(g->chain_i);
    free(g->chain_len);
    free(g->chain_must);
    free(g);
}

/* rule_hash by depth-first search; a rule that refers to itself directly hashes that reference
   as SELF; a rule on the search path met again from another rule closes a longer cycle, and
   every rule on the path from it gets 0. */
static bool hash_rules(struct inf_grammar *g)
{
    uint32_t n = g->n_rules;
    uint8_t *state = calloc(n ? n : 1, 1); /* 0 new, 1 on path, 2 done */
    struct frame {
        uint32_t r, a, e;
        bool bad;
    } *stack = malloc(((size_t)n + 1) * sizeof(*stack));
    g->rule_hash = calloc(n ? n : 1, sizeof(uint64_t));
    if (!state || !stack || !g->rule_hash) {
        free(state);
        free(stack);
        return false;
    }
    for (uint32_t root = 0; root < n; root++) {
        if (state[root])
            continue;
        size_t sp = 0;
        stack[sp++] = (struct frame){root, g->rule_alt[root], 0, false};
        state[root] = 1;
        while (sp) {
            struct frame *f = &stack[sp - 1];
            /* find the next reference not yet hashed */
            bool pushed = false;
            while (f->a < g->rule_alt[f->r + 1] && !pushed) {
                const struct inf__gel *el = &g->elems[g->alts[f->a] + f->e];
                if (el->kind == INF__GEL_END) {
                    f->a++;
                    f->e = 0;
                    continue;
                }
                f->e++;
                if (el->kind != INF__GEL_REF)
                    continue;
                uint32_t t = el->arg;
                if (t == f->r)
                    continue; /* a rule's reference to itself (repetitions) hashes as SELF */
                if (state[t] == 1) {
                    f->bad = true; /* recursion: this rule and those below it on the path */
                    for (size_t k = 0; k < sp; k++)
                        if (stack[k].r == t)
                            for (size_t q = k; q < sp; q++)
                                stack[q].bad = true;
                } else if (state[t] == 0) {
                    state[t] = 1;
                    stack[sp++] = (struct frame){t, g->rule_alt[t], 0, false};
                    pushed = true;
                } else if (g->rule_hash[t] == 0) {
                    f->bad = true;
                }
            }
            if (pushed)
                continue;
            uint32_t r = f->r;
            uint64_t h = 0;
            if (!f->bad) {
                h = inf__mix64(0x51ED27F4A1B2C3D5ull, g->rule_alt[r + 1] - g->rule_alt[r]);
                for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
                    for (uint32_t p = g->alts[a];; p++) {
                        const struct inf__gel *el = &g->elems[p];
                        h = inf__mix64(h, el->kind);
                        if (el->kind == INF__GEL_END)
                            break;
                        if (el->kind == INF__GEL_REF) {
                            h = inf__mix64(h, el->arg == r ? 0x5E1F5E1F5E1F5E1Full
                                                           : g->rule_hash[el->arg]);
                        } else {
                            for (int k = 0; k < 4; k++)
                                h = inf__mix64(h, g->sets[el->arg].w[k]);
                        }
                    }
                }
                h |= 1;
            }
            g->rule_hash[r] = h;
            state[r] = 2;
            sp--;
            if (sp && !h)
                stack[sp - 1].bad = true;
        }
    }
    free(state);
    free(stack);
    return true;
}

/* True when every string rule r matches is at least one byte long: each alternative starts
   with a byte set or with a reference to such a rule (looked through `depth` levels; false
   where not known). */
static bool starts_with_byte(const struct inf_grammar *g, uint32_t r, int depth)
{
    if (depth == 0)
        return false;
    for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
        const struct inf__gel *e = &g->elems[g->alts[a]];
        if (e->kind == INF__GEL_BYTES)
            continue;
        if (e->kind != INF__GEL_REF || !starts_with_byte(g, e->arg, depth - 1))
            return false;
    }
    return true;
}

/* The fewest bytes each rule matches (a fixpoint from "unknown": a rule that matches nothing
   finite stays at the cap), capped at 1 << 20. */
static uint32_t *min_lengths(const struct inf_grammar *g)
{
    const uint32_t cap = 1u << 20;
    uint32_t *ml = malloc(((size_t)g->n_rules + 1) * sizeof(uint32_t));
    if (!ml)
        return NULL;
    for (uint32_t r = 0; r < g->n_rules; r++)
        ml[r] = cap;
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < g->n_rules; r++) {
            uint32_t best = ml[r];
            for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
                uint64_t len = 0;
                for (const struct inf__gel *e = &g->elems[g->alts[a]]; e->kind != INF__GEL_END; e++)
                    len += e->kind == INF__GEL_BYTES ? 1 : ml[e->arg];
                if (len < best)
                    best = (uint32_t)len;
            }
            if (best < ml[r]) {
                ml[r] = best;
                changed = true;
            }
        }
    }
    return ml;
}

/* 1 + the byte of a set of one byte; 0 for another set. */
static unsigned single_byte(const struct inf__byteset *x)
{
    unsigned b = 0;
    for (int k = 0; k < 4; k++) {
        if (!x->w[k])
            continue;
        if (b || (x->w[k] & (x->w[k] - 1)))
            return 0;
        b = 64u * (unsigned)k + (unsigned)__builtin_ctzll(x->w[k]) + 1;
    }
    return b;
}

/*
 * The bytes every string of each rule reachable from roots[0..n_roots) holds: the greatest
 * solution of must(r) = the intersection over r's alternatives of the union of their
 * elements' (a one-byte set: that byte; a wider set: none), from "every byte" down. Any
 * solution is sound: by induction on a derivation, a string of r holds the bytes its
 * alternative's elements must hold. Rules are visited children first (a depth-first
 * post-order), so a grammar without recursion settles in one pass and the next confirms it.
 * Unreached rules keep "every byte" (never read).
 */
static struct inf__byteset *must_bytes(const struct inf_grammar *g, const uint32_t *roots,
                                       size_t n_roots)
{
    struct inf__byteset *mb = malloc(((size_t)g->n_rules + 1) * sizeof(*mb));
    uint32_t *order = malloc(((size_t)g->n_rules + 1) * sizeof(uint32_t));
    uint8_t *seen = calloc((size_t)g->n_rules + 1, 1);
    struct frame {
        uint32_t r, a, e; /* rule, its alternative and the next element of it to look at */
    } *st = malloc(((size_t)g->n_rules + 1) * sizeof(*st));
    size_t n_order = 0;
    if (!mb || !order || !seen || !st)
        goto fail;
    for (uint32_t r = 0; r < g->n_rules; r++)
        mb[r] = (struct inf__byteset){{~0ull, ~0ull, ~0ull, ~0ull}};
    for (size_t i = 0; i < n_roots; i++) {
        if (seen[roots[i]])
            continue;
        size_t sp = 0;
        seen[roots[i]] = 1;
        st[sp++] = (struct frame){roots[i], g->rule_alt[roots[i]], g->alts[g->rule_alt[roots[i]]]};
        while (sp) {
            struct frame *f = &st[sp - 1];
            bool pushed = false;
            while (!pushed && f->a < g->rule_alt[f->r + 1]) {
                const struct inf__gel *e = &g->elems[f->e++];
                if (e->kind == INF__GEL_END) {
                    if (++f->a < g->rule_alt[f->r + 1])
                        f->e = g->alts[f->a];
                } else if (e->kind == INF__GEL_REF && !seen[e->arg]) {
                    seen[e->arg] = 1;
                    st[sp++] =
                        (struct frame){e->arg, g->rule_alt[e->arg], g->alts[g->rule_alt[e->arg]]};
                    pushed = true;
                }
            }
            if (!pushed) {
                order[n_order++] = f->r;
                sp--;
            }
        }
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < n_order; i++) {
            uint32_t r = order[i];
            struct inf__byteset all = {{~0ull, ~0ull, ~0ull, ~0ull}};
            for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
                struct inf__byteset u = {{0, 0, 0, 0}};
                for (const struct inf__gel *e = &g->elems[g->alts[a]]; e->kind != INF__GEL_END;
                     e++) {
                    if (e->kind == INF__GEL_REF) {
                        for (int k = 0; k < 4; k++)
                            u.w[k] |= mb[e->arg].w[k];
                    } else {
                        unsigned b = single_byte(&g->sets[e->arg]);
                        if (b)
                            u.w[(b - 1) >> 6] |= 1ull << ((b - 1) & 63);
                    }
                }
                for (int k = 0; k < 4; k++)
                    all.w[k] &= u.w[k];
            }
            if (memcmp(&all, &mb[r], sizeof all)) {
                mb[r] = all;
                changed = true;
            }
        }
    }
    free(order);
    free(seen);
    free(st);
    return mb;
fail:
    free(mb);
    free(order);
    free(seen);
    free(st);
    return NULL;
}

/* g->chain_i (see grammar_internal.h): a link is a rule of two alternatives, X then
   optionally the previous rule's reference (which must be a link on the same X), and the
   empty one. */
static bool find_chains(struct inf_grammar *g)
{
    bool any = false;
    uint32_t *ci = calloc(g->n_rules + 1, sizeof(uint32_t));
    if (!ci)
        return false;
    for (uint32_t r = 0; r < g->n_rules; r++) {
        if (g->rule_alt[r + 1] - g->rule_alt[r] != 2)
            continue;
        const struct inf__gel *a0 = &g->elems[g->alts[g->rule_alt[r]]];
        const struct inf__gel *a1 = &g->elems[g->alts[g->rule_alt[r] + 1]];
        if (a1->kind != INF__GEL_END || a0->kind == INF__GEL_END)
            continue;
        if (a0->kind == INF__GEL_REF && !starts_with_byte(g, a0->arg, 4))
            continue;
        if (a0[1].kind == INF__GEL_END) {
            ci[r] = 1;
        } else if (a0[1].kind == INF__GEL_REF && a0[2].kind == INF__GEL_END && r > 0 &&
                   a0[1].arg == r - 1 && ci[r - 1]) {
            const struct inf__gel *p0 = &g->elems[g->alts[g->rule_alt[r - 1]]];
            if (p0->kind == a0->kind && p0->arg == a0->arg)
                ci[r] = ci[r - 1] + 1;
        }
        any |= ci[r] > 1;
    }
    if (!any) {
        free(ci);
        return true;
    }
    /* the fewest bytes of each link's X */
    /* the X of every link whose X is a rule: the roots of must_bytes */
    uint32_t *roots = malloc((g->n_rules + 1) * sizeof(uint32_t));
    size_t n_roots = 0;
    for (uint32_t r = 0; roots && r < g->n_rules; r++) {
        const struct inf__gel *a0 = &g->elems[g->alts[g->rule_alt[r]]];
        if (ci[r] && a0->kind == INF__GEL_REF && (!n_roots || roots[n_roots - 1] != a0->arg))
            roots[n_roots++] = a0->arg;
    }
    uint32_t *ml = min_lengths(g), *cl = calloc(g->n_rules + 1, sizeof(uint32_t));
    struct inf__byteset *mb = roots ? must_bytes(g, roots, n_roots) : NULL;
    struct inf__byteset *cm = calloc(g->n_rules + 1, sizeof(*cm));
    free(roots);
    if (!ml || !cl || !mb || !cm) {
        free(ml);
        free(cl);
        free(mb);
        free(cm);
        free(ci);
        return false;
    }
    for (uint32_t r = 0; r < g->n_rules; r++) {
        if (!ci[r])
            continue;
        const struct inf__gel *a0 = &g->elems[g->alts[g->rule_alt[r]]];
        uint32_t x = a0->kind == INF__GEL_BYTES ? 1 : ml[a0->arg];
        cl[r] = x ? x : 1;
        if (a0->kind == INF__GEL_REF)
            cm[r] = mb[a0->arg];
        else if (single_byte(&g->sets[a0->arg]))
            cm[r] = g->sets[a0->arg];
    }
    free(ml);
    free(mb);
    g->chain_i = ci;
    g->chain_len = cl;
    g->chain_must = cm;
    return true;
}

/* Rules a and b alike: the same alternatives, element by element (byte sets by content,
   references by their targets' representatives, a rule's reference to itself as such). */
static bool same_rule(const struct inf_grammar *g, uint32_t a, uint32_t b, const uint32_t *rep)
{
    if (g->rule_alt[a + 1] - g->rule_alt[a] != g->rule_alt[b + 1] - g->rule_alt[b])
        return false;
    for (uint32_t k = 0; k < g->rule_alt[a + 1] - g->rule_alt[a]; k++) {
        const struct inf__gel *x = &g->elems[g->alts[g->rule_alt[a] + k]];
        const struct inf__gel *y = &g->elems[g->alts[g->rule_alt[b] + k]];
        for (;; x++, y++) {
            if (x->kind != y->kind)
                return false;
            if (x->kind == INF__GEL_END)
                break;
            if (x->kind == INF__GEL_BYTES) {
                if (x->arg != y->arg &&
                    memcmp(&g->sets[x->arg], &g->sets[y->arg], sizeof(struct inf__byteset)))
                    return false;
            } else if ((x->arg == a) != (y->arg == b) ||
                       (x->arg != a && rep[x->arg] != rep[y->arg])) {
                return false;
            }
        }
    }
    return true;
}

/*
 * References to a rule that another, earlier rule matches alike (the same elements; both not
 * recursive but through themselves) go to the earlier one: a JSON schema with twenty string
 * properties of the same maxLength, or the same array items, has twenty such rules, and with
 * one the matcher's states (and the masks cached on them) are the same wherever they occur.
 * Run after find_chains (a chain's links still refer to each other where they are the first
 * of their kind); the rules left unreferenced stay in the tables.
 */
static bool dedupe_rules(struct inf_grammar *g)
{
    uint32_t n = g->n_rules;
    size_t cap = 64;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    uint32_t *rep = malloc(((size_t)n + 1) * sizeof(uint32_t));
    uint32_t *slot = malloc(cap * sizeof(uint32_t));
    uint32_t *stack = malloc(((size_t)n + 1) * 2 * sizeof(uint32_t));
    uint8_t *done = calloc(n + 1, 1);
    if (!rep || !slot || !stack || !done) {
        free(rep);
        free(slot);
        free(stack);
        free(done);
        return false;
    }
    memset(slot, 0xFF, cap * sizeof(uint32_t));
    for (uint32_t r = 0; r < n; r++)
        rep[r] = r;
    /* representatives children first (rules with a hash reach no cycle but themselves) */
    for (uint32_t root = 0; root < n; root++) {
        if (done[root] || !g->rule_hash[root])
            continue;
        size_t sp = 0;
        stack[sp++] = root;
        stack[sp++] = 0; /* the next element position to look at, as an offset */
        while (sp) {
            uint32_t r = stack[sp - 2], off = stack[sp - 1];
            bool pushed = false;
            /* rules' elements lie one after another, in rule order */
            uint32_t na = g->rule_alt[n];
            uint32_t first = g->rule_alt[r] < na ? g->alts[g->rule_alt[r]] : g->n_elems;
            uint32_t end = g->rule_alt[r + 1] < na ? g->alts[g->rule_alt[r + 1]] : g->n_elems;
            for (uint32_t p = first + off; p < end; p++) {
                const struct inf__gel *e = &g->elems[p];
                if (e->kind == INF__GEL_REF && e->arg != r && !done[e->arg] &&
                    g->rule_hash[e->arg]) {
                    stack[sp - 1] = p + 1 - first;
                    stack[sp++] = e->arg;
                    stack[sp++] = 0;
                    pushed = true;
                    break;
                }
            }
            if (pushed)
                continue;
            sp -= 2;
            if (done[r])
                continue;
            done[r] = 1;
            size_t h = (size_t)(g->rule_hash[r] >> 7) & (cap - 1);
            while (slot[h] != UINT32_MAX) {
                uint32_t c = slot[h];
                if (g->rule_hash[c] == g->rule_hash[r] && same_rule(g, r, c, rep)) {
                    rep[r] = c;
                    break;
                }
                h = (h + 1) & (cap - 1);
            }
            if (rep[r] == r)
                slot[h] = r;
        }
    }
    for (uint32_t p = 0; p < g->n_elems; p++) {
        struct inf__gel *e = &g->elems[p];
        if (e->kind == INF__GEL_REF && rep[e->arg] != e->arg)
            e->arg = rep[e->arg];
    }
    if (rep[g->root] != g->root)
        g->root = rep[g->root];
    free(rep);
    free(slot);
    free(stack);
    free(done);
    return true;
}

const char *inf_grammar_gbnf(const struct inf_grammar *g)
{
    return g->source;
}

inf_status inf_grammar_from_gbnf(const char *text, size_t len, const char *root,
                                 struct inf_grammar **out, struct inf_error *err)
{
    *out = NULL;
    if (!text && len)
        return inf_error_set(err, INF_EINVAL, "grammar: no text");
    if (len > INF_GRAMMAR_MAX_SOURCE)
        return inf_error_set(err, INF_ELIMIT, "grammar: %zu bytes of text (the limit is %u)", len,
                             INF_GRAMMAR_MAX_SOURCE);
    if (!root)
        root = "root";
    struct parser ps = {.s = text ? text : "", .p = text ? text : "", .err = err, .rc = INF_OK};
    ps.end = ps.s + len;
    struct inf_grammar *g = NULL;
    if (!parse_rules(&ps) || !check_defined(&ps))
        goto fail;
    int64_t r_root = -1;
    size_t rl = strlen(root);
    for (size_t i = 0; i < ps.n_rules; i++)
        if (ps.rules[i].name && strlen(ps.rules[i].name) == rl &&
            !memcmp(ps.rules[i].name, root, rl))
            r_root = (int64_t)i;
    if (r_root < 0) {
        ps.rc =
            inf_error_set(err, INF_EPARSE, "grammar: no rule named '%s' (the start rule)", root);
        goto fail;
    }
    if (!check_left_recursion(&ps) || !check_productive(&ps, (uint32_t)r_root))
        goto fail;
    g = calloc(1, sizeof(*g));
    if (!g) {
        oom(&ps);
        goto fail;
    }
    size_t n_alts = 0, n_el = 0;
    for (size_t i = 0; i < ps.n_rules; i++) {
        n_alts += ps.rules[i].n_alts;
        for (size_t a = 0; a < ps.rules[i].n_alts; a++)
            n_el += ps.rules[i].alts[a].n + 1;
    }
    g->elems = malloc((n_el + 1) * sizeof(*g->elems));
    g->alts = malloc((n_alts + 1) * sizeof(*g->alts));
    g->rule_alt = malloc((ps.n_rules + 1) * sizeof(*g->rule_alt));
    g->source = malloc(len + 1);
    if (!g->elems || !g->alts || !g->rule_alt || !g->source) {
        oom(&ps);
        goto fail;
    }
    memcpy(g->source, ps.s, len);
    g->source[len] = '\0';
    uint32_t e = 0, al = 0;
    for (size_t i = 0; i < ps.n_rules; i++) {
        g->rule_alt[i] = al;
        for (size_t a = 0; a < ps.rules[i].n_alts; a++) {
            g->alts[al++] = e;
            if (ps.rules[i].alts[a].n) /* an empty alternative has no array */
                memcpy(g->elems + e, ps.rules[i].alts[a].e,
                       ps.rules[i].alts[a].n * sizeof(*g->elems));
            e += (uint32_t)ps.rules[i].alts[a].n;
            g->elems[e++] = (struct inf__gel){INF__GEL_END, 0};
        }
    }
    g->rule_alt[ps.n_rules] = al;
    g->n_elems = e;
    g->n_rules = (uint32_t)ps.n_rules;
    g->root = (uint32_t)r_root;
    g->sets = ps.sets;
    g->n_sets = (uint32_t)ps.n_sets;
    ps.sets = NULL;
    g->el_rule = malloc(((size_t)e + 1) * sizeof(uint32_t));
    g->el_off = malloc(((size_t)e + 1) * sizeof(uint32_t));
    if (!g->el_rule || !g->el_off || !hash_rules(g)) {
        oom(&ps);
        goto fail;
    }
    for (uint32_t r = 0; r < g->n_rules; r++) {
        uint32_t first = g->alts[g->rule_alt[r]];
        for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
            for (uint32_t p = g->alts[a];; p++) {
                g->el_rule[p] = r;
                g->el_off[p] = p - first;
                if (g->elems[p].kind == INF__GEL_END)
                    break;
            }
        }
    }
    if (!find_chains(g) || !dedupe_rules(g)) {
        oom(&ps);
        goto fail;
    }
    parser_release(&ps);
    *out = g;
    return INF_OK;
fail:
    parser_release(&ps);
    inf_grammar_free(g);
    return ps.rc != INF_OK ? ps.rc : INF_EINTERNAL;
}
