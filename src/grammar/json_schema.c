/*
 * grammar/json_schema.c - JSON Schema (draft 2020-12 as used in practice) translated into GBNF.
 *
 * The schema is parsed with jansson. Every schema resource ($id) and anchor is indexed first, so
 * a $ref resolves to a node; each $ref target becomes one rule, compiled from a work list (so a
 * long chain of refs costs no stack, and a recursive schema is a recursive rule). A node compiles
 * to one GBNF expression: the union over the JSON types it allows of that type's grammar under
 * the type's keywords (a keyword constrains only instances of its type, as the spec says).
 *
 * Exactness: a keyword is either enforced exactly or refused with INF_EUNSUPPORTED naming it
 * and its JSON pointer. Where JSON has several spellings of one value, the grammar may accept
 * fewer spellings (never a value the schema rejects): bounded numbers take no exponent, an
 * integer is written without a fraction (1, not 1.0), an enum/const number as the value's
 * shortest spelling or jansson's, object keys that must differ from the declared property names
 * in jansson's canonical escaping, strings matched by `pattern` with their characters written
 * literally (escapes only for what JSON must escape).
 *
 * Supported: type (and arrays of types), enum/const (any JSON value; checked against the sibling
 * keywords), properties/required/additionalProperties (default: allowed; strict mode: every
 * property required and additionalProperties false), property order of `properties` with
 * optional ones skippable (opts.any_order: any order, up to JS_MAX_ANY_ORDER properties),
 * min/maxProperties, dependentRequired, propertyNames (without `properties`), patternProperties
 * (one pattern matching no name of `properties`, additionalProperties false),
 * items/prefixItems/min/maxItems,
 * contains/minContains (without items or maxItems), uniqueItems (items from an enum of at most
 * 10 values, or at most one item), string
 * min/maxLength (code points; an escape is one) or pattern or format (date, time, date-time,
 * uuid, email, ipv4, ipv6, uri, hostname; asserted, not just annotated), integer and number
 * bounds exactly (digit-range rules over arbitrary-length decimals), multipleOf (integers up to
 * 1000 without bounds, powers of 1/10), anyOf, oneOf (see below), allOf (merged), not (of a
 * type, of true/false, or beside enum/const), $ref/$defs/definitions/$id/$anchor with local
 * JSON pointers (~0 ~1 %25) and other documents through opts->load_document, unevaluated*
 * where they act as additionalProperties/items.
 *
 * Refused: $dynamicRef, $recursiveRef, if/then/else, dependentSchemas, dependencies,
 * maxContains, uniqueItems on longer arrays, formats not listed, pattern beside length or
 * format, the cases of the keywords above outside what is listed, a schema that accepts nothing.
 * Annotations (title, description, default, examples, $comment, deprecated, readOnly, ...) and
 * unknown keywords are ignored, as the spec says.
 *
 * oneOf is compiled as anyOf only when every pair of its branches is provably disjoint
 * (different JSON types, different const/enum values, or object-only branches with a property
 * both require with different const/enum values, or one requires a property the other forbids);
 * otherwise it is refused. allOf (and $ref beside other keywords) is merged
 * keyword by keyword where that is exact; a pair of keywords that cannot be merged is refused
 * naming allOf.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"
#include "grammar/grammar_internal.h"

#define JS_MAX_DEPTH        256  /* nesting of subschemas while compiling */
#define JS_MAX_REF_DEPTH    1000 /* rules reached through chains of $ref */
#define JS_MAX_MERGE_DEPTH  32   /* $ref expanded inside allOf */
#define JS_MAX_ANY_ORDER    10   /* declared properties in any order: 2^n rules */
#define JS_MAX_DIGITS       400  /* digits of a numeric bound */
#define JS_MAX_COUNT_STATES 4096 /* object rules for min/maxProperties */

/* JSON types as bits; "number" is T_NUM | T_INT, "integer" T_INT. */
enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_STR = 16, T_NUM = 32, T_INT = 64 };
#define T_ALL 127

struct work {
    json_t *node;
    char *name;
    char *base;
    char *path;
    int depth;
};

struct js {
    struct inf_json_schema_opts o;
    struct inf_error *err;
    struct inf__gstr rules; /* every rule but root */
    json_t *names;          /* rule names in use */
    json_t *refrules;       /* "%p" of a $ref target -> its rule name */
    json_t *bases;          /* "%p" of a schema node -> its base URI */
    json_t *registry;       /* absolute URI or URI#anchor -> node address */
    json_t *keep;           /* documents and merged nodes kept alive */
    json_t *shared;         /* "len LO HI" / "re PATTERN" -> the rule every such string uses: one
                               chain of maxLength rules or one compiled regex for all (the GBNF loader
                               would merge the copies for the matcher, but not shrink the grammar) */
    struct work *work;
    size_t n_work, cap_work;
    const char *base;      /* base URI of the node being compiled */
    struct inf__gstr path; /* JSON pointer of the node being compiled */
    int depth, ref_depth, merge_depth;
    unsigned used; /* U_* built-in rules referenced */
    size_t n_rules;
};

enum {
    U_WS = 1,
    U_VALUE = 2,
    U_STRING = 4,
    U_NUMBER = 8,
    U_INTEGER = 16,
    U_KCHAR = 32,
    U_FORMAT = 64
};

/* ---- strings -------------------------------------------------------------------------------- */

static inf_status gput(struct inf__gstr *g, const char *s, size_t n)
{
    return inf__append(&g->p, &g->len, &g->cap, s, n, 256) ? INF_OK : INF_ENOMEM;
}

static inf_status gputs(struct inf__gstr *g, const char *s)
{
    return gput(g, s, strlen(s));
}

static inf_status gprintf(struct inf__gstr *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inf_status gprintf(struct inf__gstr *g, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return INF_EINTERNAL;
    if ((size_t)n < sizeof buf)
        return gput(g, buf, (size_t)n);
    char *p = malloc((size_t)n + 1);
    if (!p)
        return INF_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    inf_status rc = gput(g, p, (size_t)n);
    free(p);
    return rc;
}

static const char *where(struct js *c)
{
    return c->path.len ? c->path.p : "";
}

static inf_status oom(struct js *c)
{
    return inf_error_set(c->err, INF_ENOMEM, "json schema: out of memory");
}

static inf_status refuse(struct js *c, const char *kw, const char *why)
{
    return inf_error_set(c->err, INF_EUNSUPPORTED,
                         "json schema: '%s' at '#%s' is not supported%s%s", kw, where(c),
                         why ? ": " : "", why ? why : "");
}

static inf_status invalid(struct js *c, const char *kw, const char *why)
{
    return inf_error_set(c->err, INF_EINVAL, "json schema: '%s' at '#%s': %s", kw, where(c), why);
}

/* Push "/seg" (escaped as a JSON pointer) onto c->path; returns the old length. */
static size_t path_push(struct js *c, const char *seg, inf_status *rc)
{
    size_t old = c->path.len;
    *rc = gputs(&c->path, "/");
    for (const char *s = seg; !*rc && *s; s++)
        *rc = *s == '~'   ? gputs(&c->path, "~0")
              : *s == '/' ? gputs(&c->path, "~1")
                          : gput(&c->path, s, 1);
    return old;
}

static size_t path_push_i(struct js *c, size_t i, inf_status *rc)
{
    char b[32];
    snprintf(b, sizeof b, "%zu", i);
    return path_push(c, b, rc);
}

static void path_pop(struct js *c, size_t old)
{
    c->path.len = old;
    if (c->path.p)
        c->path.p[old] = 0;
}

static void ptrkey(char *b, size_t n, const void *p)
{
    snprintf(b, n, "%p", p);
}

/* ---- rule names ----------------------------------------------------------------------------- */

/* A fresh rule name from hint: [a-zA-Z0-9-], no "--" (kept for derived names), unique. */
static inf_status new_name(struct js *c, const char *hint, char *out, size_t size)
{
    char base[56];
    size_t n = 0;
    for (const char *s = hint; *s && n < 40; s++) {
        char ch = *s;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!ok)
            ch = '-';
        if (ch == '-' && (n == 0 || base[n - 1] == '-'))
            continue;
        base[n++] = ch;
    }
    while (n && base[n - 1] == '-')
        n--;
    if (n == 0)
        base[n++] = 'r';
    base[n] = 0;
    snprintf(out, size, "%s", base);
    for (unsigned k = 2; json_object_get(c->names, out); k++)
        snprintf(out, size, "%s-%u", base, k);
    if (++c->n_rules > INF_GRAMMAR_MAX_RULES)
        return inf_error_set(c->err, INF_ELIMIT, "json schema: more than %d rules",
                             INF_GRAMMAR_MAX_RULES);
    if (json_object_set_new(c->names, out, json_true()))
        return oom(c);
    return INF_OK;
}

static inf_status add_rule(struct js *c, const char *name, const char *body)
{
    inf_status rc;
    if ((rc = gputs(&c->rules, name)) || (rc = gputs(&c->rules, " ::= ")) ||
        (rc = gputs(&c->rules, body)) || (rc = gputs(&c->rules, "\n")))
        return oom(c);
    if (++c->n_rules > INF_GRAMMAR_MAX_RULES)
        return inf_error_set(c->err, INF_ELIMIT, "json schema: more than %d rules",
                             INF_GRAMMAR_MAX_RULES);
    if (c->rules.len > INF_GRAMMAR_MAX_SOURCE)
        return inf_error_set(c->err, INF_ELIMIT, "json schema: the grammar exceeds %u bytes",
                             INF_GRAMMAR_MAX_SOURCE);
    return INF_OK;
}

/* " ws " or " " (whitespace -1) */
static const char *WS(struct js *c)
{
    if (c->o.whitespace < 0)
        return " ";
    c->used |= U_WS;
    return " ws ";
}

/* ---- literals ------------------------------------------------------------------------------- */

/* s[0..n) as a GBNF literal (without the quotes). */
static inf_status put_gbnf_text(struct inf__gstr *g, const char *s, size_t n)
{
    inf_status rc = INF_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\' || ch < 0x20 || ch == 0x7F)
            rc = gprintf(g, "\\x%02X", ch);
        else
            rc = gput(g, s + i, 1);
    }
    return rc;
}

/* The compact JSON text of v (jansson's spelling) as a GBNF literal. */
static inf_status put_json_literal(struct js *c, struct inf__gstr *g, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    inf_status rc;
    if (!t)
        return oom(c);
    rc = gputs(g, "\"");
    if (!rc)
        rc = put_gbnf_text(g, t, strlen(t));
    if (!rc)
        rc = gputs(g, "\"");
    free(t);
    return rc ? oom(c) : INF_OK;
}

/* A property name as the GBNF literal of its JSON string. */
static inf_status put_key_literal(struct js *c, struct inf__gstr *g, const char *name)
{
    json_t *s = json_string(name);
    inf_status rc;
    if (!s)
        return oom(c);
    rc = put_json_literal(c, g, s);
    json_decref(s);
    return rc;
}

/* ---- URIs (RFC 3986 section 5.2) ------------------------------------------------------------ */

struct uri {
    const char *scheme, *auth, *path, *query, *frag;
    size_t ls, la, lp, lq, lf;
    bool has_scheme, has_auth, has_query, has_frag;
};

static void uri_parse(const char *s, struct uri *u)
{
    memset(u, 0, sizeof *u);
    const char *p = s;
    const char *colon = strpbrk(p, ":/?#");
    if (colon && *colon == ':' && colon > p) {
        u->has_scheme = true, u->scheme = p, u->ls = (size_t)(colon - p);
        p = colon + 1;
    }
    if (p[0] == '/' && p[1] == '/') {
        p += 2;
        u->has_auth = true, u->auth = p;
        u->la = strcspn(p, "/?#");
        p += u->la;
    }
    u->path = p, u->lp = strcspn(p, "?#");
    p += u->lp;
    if (*p == '?') {
        p++;
        u->has_query = true, u->query = p, u->lq = strcspn(p, "#");
        p += u->lq;
    }
    if (*p == '#') {
        p++;
        u->has_frag = true, u->frag = p, u->lf = strlen(p);
    }
}

/* remove_dot_segments of RFC 3986 5.2.4, in place over a copy */
static char *remove_dots(const char *in, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0, i = 0;
    if (!out)
        return NULL;
    while (i < n) {
        if (n - i >= 3 && !strncmp(in + i, "../", 3))
            i += 3;
        else if (n - i >= 2 && !strncmp(in + i, "./", 2))
            i += 2;
        else if (n - i >= 3 && !strncmp(in + i, "/./", 3))
            i += 2;
        else if (n - i == 2 && !strncmp(in + i, "/.", 2))
            i += 1, out[o++] = '/', i = n;
        else if ((n - i >= 4 && !strncmp(in + i, "/../", 4)) ||
                 (n - i == 3 && !strncmp(in + i, "/..", 3))) {
            i += 3;
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
            if (i >= n)
                out[o++] = '/';
        } else if ((n - i == 1 && in[i] == '.') || (n - i == 2 && !strncmp(in + i, "..", 2))) {
            i = n;
        } else {
            do
                out[o++] = in[i++];
            while (i < n && in[i] != '/');
        }
    }
    out[o] = 0;
    return out;
}

/* ref resolved against base; malloc'd, NULL when out of memory */
static char *uri_resolve(const char *base, const char *ref)
{
    struct uri b, r;
    struct inf__gstr t = {0};
    char *path = NULL;
    bool ok = true;
    const char *scheme, *auth, *query;
    size_t ls, la, lq;
    bool has_auth, has_query, has_scheme;

    uri_parse(base, &b);
    uri_parse(ref, &r);
    if (r.has_scheme) {
        has_scheme = true, scheme = r.scheme, ls = r.ls;
        has_auth = r.has_auth, auth = r.auth, la = r.la;
        path = remove_dots(r.path, r.lp);
        has_query = r.has_query, query = r.query, lq = r.lq;
    } else {
        has_scheme = b.has_scheme, scheme = b.scheme, ls = b.ls;
        if (r.has_auth) {
            has_auth = true, auth = r.auth, la = r.la;
            path = remove_dots(r.path, r.lp);
            has_query = r.has_query, query = r.query, lq = r.lq;
        } else {
            has_auth = b.has_auth, auth = b.auth, la = b.la;
            if (r.lp == 0) {
                path = remove_dots(b.path, b.lp);
                if (r.has_query)
                    has_query = true, query = r.query, lq = r.lq;
                else
                    has_query = b.has_query, query = b.query, lq = b.lq;
            } else {
                struct inf__gstr m = {0};
                if (r.path[0] == '/') {
                    ok = !gput(&m, r.path, r.lp);
                } else {
                    if (b.has_auth && b.lp == 0)
                        ok = !gputs(&m, "/");
                    else {
                        size_t k = b.lp;
                        while (k > 0 && b.path[k - 1] != '/')
                            k--;
                        ok = !gput(&m, b.path, k);
                    }
                    ok = ok && !gput(&m, r.path, r.lp);
                }
                path = ok ? remove_dots(m.p ? m.p : "", m.len) : NULL;
                free(m.p);
                has_query = r.has_query, query = r.query, lq = r.lq;
            }
        }
    }
    if (!path)
        return NULL;
    if (has_scheme)
        ok = ok && !gput(&t, scheme, ls) && !gputs(&t, ":");
    if (has_auth)
        ok = ok && !gputs(&t, "//") && !gput(&t, auth, la);
    ok = ok && !gputs(&t, path);
    if (has_query)
        ok = ok && !gputs(&t, "?") && !gput(&t, query, lq);
    if (r.has_frag)
        ok = ok && !gputs(&t, "#") && !gput(&t, r.frag, r.lf);
    ok = ok && !gput(&t, "", 0);
    free(path);
    if (!ok) {
        free(t.p);
        return NULL;
    }
    return t.p;
}

/* ---- indexing $id and anchors --------------------------------------------------------------- */

static const char *const schema_map_kw[] = {"properties",  "patternProperties", "$defs",
                                            "definitions", "dependentSchemas",  NULL};
static const char *const schema_arr_kw[] = {"prefixItems", "allOf", "anyOf", "oneOf", NULL};
static const char *const schema_one_kw[] = {"items",
                                            "additionalProperties",
                                            "not",
                                            "if",
                                            "then",
                                            "else",
                                            "contains",
                                            "propertyNames",
                                            "unevaluatedItems",
                                            "unevaluatedProperties",
                                            "contentSchema",
                                            "additionalItems",
                                            NULL};

static inf_status reg_put(struct js *c, const char *key, const json_t *node)
{
    if (json_object_get(c->registry, key))
        return INF_OK;
    if (json_object_set_new(c->registry, key, json_integer((json_int_t)(uintptr_t)node)))
        return oom(c);
    return INF_OK;
}

static inf_status index_schema(struct js *c, json_t *node, const char *base, int depth)
{
    char key[32];
    char *own = NULL;
    inf_status rc = INF_OK;
    const json_t *id, *anchor;

    if (!json_is_object(node))
        return INF_OK;
    if (depth > JS_MAX_DEPTH)
        return inf_error_set(c->err, INF_ELIMIT, "json schema: nested deeper than %d",
                             JS_MAX_DEPTH);
    id = json_object_get(node, "$id");
    if (json_is_string(id)) {
        own = uri_resolve(base, json_string_value(id));
        if (!own)
            return oom(c);
        char *hash = strchr(own, '#');
        if (hash)
            *hash = 0;
        base = own;
        if ((rc = reg_put(c, base, node)))
            goto out;
    }
    ptrkey(key, sizeof key, node);
    if (json_object_set_new(c->bases, key, json_string(base))) {
        rc = oom(c);
        goto out;
    }
    const char *akw[] = {"$anchor", "$dynamicAnchor"};
    for (size_t k = 0; k < 2; k++) {
        anchor = json_object_get(node, akw[k]);
        if (json_is_string(anchor)) {
            struct inf__gstr a = {0};
            if (gputs(&a, base) || gputs(&a, "#") || gputs(&a, json_string_value(anchor))) {
                free(a.p);
                rc = oom(c);
                goto out;
            }
            rc = reg_put(c, a.p, node);
            free(a.p);
            if (rc)
                goto out;
        }
    }
    for (size_t k = 0; schema_map_kw[k]; k++) {
        json_t *m = json_object_get(node, schema_map_kw[k]);
        const char *name;
        json_t *v;
        if (json_is_object(m))
            json_object_foreach(m, name,
                                v) if ((rc = index_schema(c, v, base, depth + 1))) goto out;
    }
    for (size_t k = 0; schema_arr_kw[k]; k++) {
        json_t *a = json_object_get(node, schema_arr_kw[k]);
        size_t i;
        json_t *v;
        if (json_is_array(a))
            json_array_foreach(a, i, v) if ((rc = index_schema(c, v, base, depth + 1))) goto out;
    }
    for (size_t k = 0; schema_one_kw[k]; k++) {
        json_t *v = json_object_get(node, schema_one_kw[k]);
        if ((rc = index_schema(c, v, base, depth + 1)))
            goto out;
    }
out:
    free(own);
    return rc;
}

static const char *base_of(struct js *c, const json_t *node)
{
    char key[32];
    ptrkey(key, sizeof key, node);
    const json_t *b = json_object_get(c->bases, key);
    return b ? json_string_value(b) : c->base;
}

/* ---- $ref resolution ------------------------------------------------------------------------ */

static json_t *reg_get(struct js *c, const char *key)
{
    const json_t *v = json_object_get(c->registry, key);
    return v ? (json_t *)(uintptr_t)json_integer_value(v) : NULL;
}

/* Percent-decoding of a URI fragment, in place. */
static void pct_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        int h, l;
        if (*s == '%' && (h = inf__hex_digit((unsigned char)s[1])) >= 0 &&
            (l = inf__hex_digit((unsigned char)s[2])) >= 0) {
            *o++ = (char)(h * 16 + l);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

/* A JSON pointer from node; NULL when it leads nowhere. */
static json_t *walk_pointer(json_t *node, char *ptr)
{
    char *p = ptr;
    while (node && *p == '/') {
        char *seg = ++p, *o = seg;
        while (*p && *p != '/') {
            if (*p == '~' && p[1] == '0')
                *o++ = '~', p += 2;
            else if (*p == '~' && p[1] == '1')
                *o++ = '/', p += 2;
            else
                *o++ = *p++;
        }
        char save = *p;
        *o = 0;
        if (json_is_object(node)) {
            node = json_object_get(node, seg);
        } else if (json_is_array(node)) {
            char *end;
            unsigned long long i = strtoull(seg, &end, 10);
            node = (*seg >= '0' && *seg <= '9' && !*end && (seg[0] != '0' || !seg[1]))
                       ? json_array_get(node, (size_t)i)
                       : NULL;
        } else {
            node = NULL;
        }
        *p = save;
    }
    return *p ? NULL : node;
}

static inf_status load_remote(struct js *c, const char *uri, json_t **doc)
{
    char *text = NULL;
    size_t len = 0;
    json_error_t je;
    inf_status rc;

    *doc = NULL;
    if (!c->o.load_document)
        return inf_error_set(c->err, INF_EUNSUPPORTED,
                             "json schema: '$ref' at '#%s' to another document '%s' needs a "
                             "document loader",
                             where(c), uri);
    rc = c->o.load_document(c->o.load_ctx, uri, &text, &len);
    if (rc != INF_OK) {
        free(text);
        return inf_error_set(c->err, rc == INF_ENOMEM ? INF_ENOMEM : INF_ENOTFOUND,
                             "json schema: '$ref' at '#%s': document '%s' could not be loaded",
                             where(c), uri);
    }
    json_t *d = json_loadb(text ? text : "", len, JSON_DECODE_ANY, &je);
    free(text);
    if (!d)
        return inf_error_set(c->err, INF_EPARSE,
                             "json schema: document '%s': line %d, column %d: %s", uri, je.line,
                             je.column, je.text);
    if (json_array_append_new(c->keep, d))
        return oom(c);
    if ((rc = reg_put(c, uri, d)) || (rc = index_schema(c, d, uri, 0)))
        return rc;
    *doc = d;
    return INF_OK;
}

/* The node a $ref string names, resolved against the current base. */
static inf_status resolve_ref(struct js *c, const char *ref, json_t **out)
{
    char *abs = uri_resolve(c->base, ref);
    inf_status rc = INF_OK;
    json_t *doc;

    *out = NULL;
    if (!abs)
        return oom(c);
    char *frag = strchr(abs, '#');
    if (frag)
        *frag++ = 0;
    doc = reg_get(c, abs);
    if (!doc && (rc = load_remote(c, abs, &doc)))
        goto out;
    if (!frag || !*frag) {
        *out = doc;
    } else if (frag[0] == '/') {
        pct_decode(frag);
        *out = walk_pointer(doc, frag);
    } else {
        struct inf__gstr a = {0};
        if (gputs(&a, abs) || gputs(&a, "#") || gputs(&a, frag)) {
            free(a.p);
            rc = oom(c);
            goto out;
        }
        *out = reg_get(c, a.p);
        free(a.p);
    }
    if (!*out)
        rc = inf_error_set(c->err, INF_ENOTFOUND, "json schema: '$ref' '%s' at '#%s' not found",
                           ref, where(c));
out:
    free(abs);
    return rc;
}

/* ---- keyword tables ------------------------------------------------------------------------- */

/* Every keyword of draft 2020-12 that constrains instances (the rest are annotations). */
static bool is_constraint(const char *k)
{
    static const char *const kw[] = {"type",
                                     "enum",
                                     "const",
                                     "properties",
                                     "required",
                                     "additionalProperties",
                                     "patternProperties",
                                     "propertyNames",
                                     "minProperties",
                                     "maxProperties",
                                     "dependentRequired",
                                     "dependentSchemas",
                                     "items",
                                     "prefixItems",
                                     "minItems",
                                     "maxItems",
                                     "contains",
                                     "minContains",
                                     "maxContains",
                                     "uniqueItems",
                                     "minLength",
                                     "maxLength",
                                     "pattern",
                                     "format",
                                     "minimum",
                                     "maximum",
                                     "exclusiveMinimum",
                                     "exclusiveMaximum",
                                     "multipleOf",
                                     "anyOf",
                                     "oneOf",
                                     "allOf",
                                     "not",
                                     "if",
                                     "$ref",
                                     "$dynamicRef",
                                     "$recursiveRef",
                                     "unevaluatedItems",
                                     "unevaluatedProperties",
                                     "dependencies",
                                     "additionalItems",
                                     NULL};
    for (size_t i = 0; kw[i]; i++)
        if (!strcmp(k, kw[i]))
            return true;
    return false;
}

static unsigned type_bit(const char *t)
{
    if (!strcmp(t, "null"))
        return T_NULL;
    if (!strcmp(t, "boolean"))
        return T_BOOL;
    if (!strcmp(t, "object"))
        return T_OBJ;
    if (!strcmp(t, "array"))
        return T_ARR;
    if (!strcmp(t, "string"))
        return T_STR;
    if (!strcmp(t, "number"))
        return T_NUM | T_INT;
    if (!strcmp(t, "integer"))
        return T_INT;
    return 0;
}

static inf_status type_mask(struct js *c, const json_t *t, unsigned *mask)
{
    *mask = T_ALL;
    if (!t)
        return INF_OK;
    if (json_is_string(t)) {
        *mask = type_bit(json_string_value(t));
        if (!*mask)
            return invalid(c, "type", "unknown type name");
        return INF_OK;
    }
    if (json_is_array(t)) {
        size_t i;
        json_t *v;
        *mask = 0;
        json_array_foreach(t, i, v)
        {
            unsigned b = json_is_string(v) ? type_bit(json_string_value(v)) : 0;
            if (!b)
                return invalid(c, "type", "unknown type name");
            *mask |= b;
        }
        return INF_OK;
    }
    return invalid(c, "type", "must be a string or an array");
}

/* The JSON type bit of an instance value. */
static unsigned value_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return T_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return T_BOOL;
    case JSON_OBJECT:
        return T_OBJ;
    case JSON_ARRAY:
        return T_ARR;
    case JSON_STRING:
        return T_STR;
    case JSON_INTEGER:
        return T_INT;
    case JSON_REAL: {
        double d = json_real_value(v);
        return d == floor(d) && fabs(d) < 1e300 ? T_INT : T_NUM;
    }
    }
    return 0;
}

/* ---- a small validator for enum/const values against sibling keywords ----------------------- */

static size_t utf8_count(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static double num_of(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/*
 * 1: v satisfies the keywords of schema s that are checked here; 0: it does not; -1: a keyword
 * cannot be decided here (*kw names it).
 */
static int check_value(const json_t *s, const json_t *v, const char *skip, const char **kw)
{
    const char *k;
    const json_t *x;
    unsigned vt = value_type(v);

    if (json_is_true(s))
        return 1;
    if (json_is_false(s))
        return 0;
    if (!json_is_object(s)) {
        *kw = "schema";
        return -1;
    }
    json_object_foreach((json_t *)s, k, x)
    {
        if (skip && !strcmp(k, skip))
            continue;
        if (!is_constraint(k))
            continue;
        if (!strcmp(k, "type")) {
            unsigned m = 0;
            if (json_is_string(x))
                m = type_bit(json_string_value(x));
            else if (json_is_array(x)) {
                size_t i;
                json_t *t;
                json_array_foreach(x, i, t) m |=
                    json_is_string(t) ? type_bit(json_string_value(t)) : 0;
            }
            if (!(m & vt))
                return 0;
        } else if (!strcmp(k, "const")) {
            if (!json_equal(x, v))
                return 0;
        } else if (!strcmp(k, "enum")) {
            size_t i;
            json_t *e;
            bool found = false;
            json_array_foreach(x, i, e) found |= json_equal(e, v);
            if (!found)
                return 0;
        } else if (!strcmp(k, "minimum") || !strcmp(k, "maximum") ||
                   !strcmp(k, "exclusiveMinimum") || !strcmp(k, "exclusiveMaximum")) {
            if (!json_is_number(x)) {
                *kw = k;
                return -1;
            }
            if (!(vt & (T_NUM | T_INT)))
                continue;
            double a = num_of(v), b = num_of(x);
            if ((k[0] == 'm' && k[1] == 'i' && a < b) || (k[0] == 'm' && k[1] == 'a' && a > b) ||
                (!strcmp(k, "exclusiveMinimum") && a <= b) ||
                (!strcmp(k, "exclusiveMaximum") && a >= b))
                return 0;
        } else if (!strcmp(k, "minLength") || !strcmp(k, "maxLength")) {
            if (!json_is_integer(x)) {
                *kw = k;
                return -1;
            }
            if (vt != T_STR)
                continue;
            size_t n = utf8_count(json_string_value(v), json_string_length(v));
            if (k[1] == 'i' ? (json_int_t)n < json_integer_value(x)
                            : (json_int_t)n > json_integer_value(x))
                return 0;
        } else if (!strcmp(k, "minItems") || !strcmp(k, "maxItems") ||
                   !strcmp(k, "minProperties") || !strcmp(k, "maxProperties")) {
            bool items = k[3] == 'I';
            if (!json_is_integer(x)) {
                *kw = k;
                return -1;
            }
            if (vt != (items ? T_ARR : T_OBJ))
                continue;
            json_int_t n = (json_int_t)(items ? json_array_size(v) : json_object_size(v));
            if (k[1] == 'i' ? n < json_integer_value(x) : n > json_integer_value(x))
                return 0;
        } else if (!strcmp(k, "required")) {
            size_t i;
            json_t *r;
            if (vt != T_OBJ)
                continue;
            json_array_foreach(x, i, r) if (json_is_string(r) &&
                                            !json_object_get(v, json_string_value(r))) return 0;
        } else if (!strcmp(k, "properties")) {
            const char *pk;
            json_t *ps;
            if (vt != T_OBJ)
                continue;
            json_object_foreach((json_t *)x, pk, ps)
            {
                const json_t *pv = json_object_get(v, pk);
                if (pv) {
                    int r = check_value(ps, pv, NULL, kw);
                    if (r <= 0)
                        return r;
                }
            }
        } else if (!strcmp(k, "items")) {
            size_t i;
            json_t *e;
            if (vt != T_ARR)
                continue;
            if (json_object_get(s, "prefixItems")) {
                *kw = "prefixItems";
                return -1;
            }
            json_array_foreach(v, i, e)
            {
                int r = check_value(x, e, NULL, kw);
                if (r <= 0)
                    return r;
            }
        } else if (!strcmp(k, "uniqueItems")) {
            if (vt != T_ARR || !json_is_true(x))
                continue;
            for (size_t i = 0; i < json_array_size(v); i++)
                for (size_t j = i + 1; j < json_array_size(v); j++)
                    if (json_equal(json_array_get(v, i), json_array_get(v, j)))
                        return 0;
        } else if (!strcmp(k, "anyOf") || !strcmp(k, "allOf") || !strcmp(k, "oneOf")) {
            size_t i, hits = 0;
            json_t *b;
            if (!json_is_array(x)) {
                *kw = k;
                return -1;
            }
            json_array_foreach(x, i, b)
            {
                int r = check_value(b, v, NULL, kw);
                if (r < 0)
                    return r;
                hits += (size_t)r;
            }
            if ((k[0] == 'a' && k[1] == 'n' && hits == 0) ||
                (k[0] == 'a' && k[1] == 'l' && hits != json_array_size(x)) ||
                (k[0] == 'o' && hits != 1))
                return 0;
        } else if (!strcmp(k, "not")) {
            int r = check_value(x, v, NULL, kw);
            if (r < 0)
                return r;
            if (r)
                return 0;
        } else {
            /* keywords that only concern other types than v's can be skipped */
            static const struct {
                const char *kw;
                unsigned t;
            } only[] = {{"pattern", T_STR},
                        {"format", T_STR},
                        {"multipleOf", T_NUM | T_INT},
                        {"additionalProperties", T_OBJ},
                        {"patternProperties", T_OBJ},
                        {"propertyNames", T_OBJ},
                        {"dependentRequired", T_OBJ},
                        {"dependentSchemas", T_OBJ},
                        {"unevaluatedProperties", T_OBJ},
                        {"prefixItems", T_ARR},
                        {"contains", T_ARR},
                        {"unevaluatedItems", T_ARR},
                        {"minContains", T_ARR},
                        {"maxContains", T_ARR}};
            bool skipped = false;
            for (size_t i = 0; i < sizeof only / sizeof *only; i++)
                if (!strcmp(k, only[i].kw) && !(only[i].t & vt))
                    skipped = true;
            if (!skipped) {
                *kw = k;
                return -1;
            }
        }
    }
    return 1;
}

/* ---- numbers -------------------------------------------------------------------------------- */

/* A non-negative decimal: integer digits (no leading zeros, "0" for zero) and fraction digits
   (no trailing zeros). */
struct dec {
    bool neg;
    char ip[JS_MAX_DIGITS + 2];
    char fp[JS_MAX_DIGITS + 2];
};

/* The shortest decimal that reads back as d (what the schema's author wrote, in practice). */
static bool dec_from_json(const json_t *v, struct dec *out)
{
    char buf[64], digits[32];
    memset(out, 0, sizeof *out);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        out->neg = i < 0;
        snprintf(out->ip, sizeof out->ip, "%llu",
                 i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i);
        return true;
    }
    double d = json_real_value(v);
    if (!isfinite(d))
        return false;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* buf: [-]D.DDDDe[+-]XX */
    const char *p = buf;
    out->neg = *p == '-';
    if (*p == '-')
        p++;
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    digits[nd] = 0;
    int exp = atoi(p + 1); /* value = 0.D1D2... * 10^(exp+1) */
    int point = exp + 1;   /* digits before the decimal point */
    if (point > JS_MAX_DIGITS || -point > JS_MAX_DIGITS)
        return false;
    size_t ni = 0, nf = 0;
    if (point <= 0) {
        out->ip[ni++] = '0';
        for (int i = 0; i < -point; i++)
            out->fp[nf++] = '0';
        for (size_t i = 0; i < nd; i++)
            out->fp[nf++] = digits[i];
    } else {
        for (int i = 0; i < point; i++)
            out->ip[ni++] = (size_t)i < nd ? digits[i] : '0';
        for (size_t i = (size_t)point; i < nd; i++)
            out->fp[nf++] = digits[i];
    }
    out->ip[ni] = 0;
    while (nf && out->fp[nf - 1] == '0')
        nf--;
    out->fp[nf] = 0;
    /* strip leading zeros of the integer part */
    size_t z = 0;
    while (out->ip[z] == '0' && out->ip[z + 1])
        z++;
    memmove(out->ip, out->ip + z, strlen(out->ip + z) + 1);
    if (!strcmp(out->ip, "0") && !nf)
        out->neg = false;
    return true;
}

/* digit string + 1 / - 1 (non-negative; -1 of "0" is not called) */
static void digits_inc(char *s)
{
    size_t n = strlen(s);
    size_t i = n;
    while (i > 0 && s[i - 1] == '9')
        s[--i] = '0';
    if (i == 0) {
        memmove(s + 1, s, n + 1);
        s[0] = '1';
    } else {
        s[i - 1]++;
    }
}

static void digits_dec(char *s)
{
    size_t n = strlen(s), i = n;
    while (i > 0 && s[i - 1] == '0')
        s[--i] = '9';
    if (i > 0)
        s[i - 1]--;
    size_t z = 0;
    while (s[z] == '0' && s[z + 1])
        z++;
    memmove(s, s + z, strlen(s + z) + 1);
}

static int digits_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return la < lb ? -1 : 1;
    int r = strcmp(a, b);
    return r < 0 ? -1 : r > 0;
}

/* "[0-9]{k}" */
static inf_status put_digits(struct inf__gstr *g, size_t k)
{
    if (k == 0)
        return INF_OK;
    if (k == 1)
        return gputs(g, " [0-9]");
    return gprintf(g, " [0-9]{%zu}", k);
}

/* Same-length digit strings in [x, y] (x <= y). */
static inf_status same_len(struct inf__gstr *g, const char *x, const char *y)
{
    size_t n = strlen(x);
    inf_status rc;
    if (n == 0)
        return INF_OK;
    if (x[0] == y[0]) {
        if ((rc = gprintf(g, " \"%c\"", x[0])))
            return rc;
        return same_len(g, x + 1, y + 1);
    }
    bool x_low = strspn(x + 1, "0") == n - 1, y_high = strspn(y + 1, "9") == n - 1;
    char lo = x_low ? x[0] : (char)(x[0] + 1), hi = y_high ? y[0] : (char)(y[0] - 1);
    bool first = true;
    if ((rc = gputs(g, " (")))
        return rc;
    if (!x_low) {
        char nines[JS_MAX_DIGITS + 2];
        memset(nines, '9', n - 1);
        nines[n - 1] = 0;
        if ((rc = gprintf(g, "\"%c\"", x[0])) || (rc = same_len(g, x + 1, nines)))
            return rc;
        first = false;
    }
    if (lo <= hi) {
        if (!first && (rc = gputs(g, " | ")))
            return rc;
        if ((rc = lo == hi ? gprintf(g, "\"%c\"", lo) : gprintf(g, "[%c-%c]", lo, hi)) ||
            (rc = put_digits(g, n - 1)))
            return rc;
        first = false;
    }
    if (!y_high) {
        char zeros[JS_MAX_DIGITS + 2];
        memset(zeros, '0', n - 1);
        zeros[n - 1] = 0;
        if (!first && (rc = gputs(g, " | ")))
            return rc;
        if ((rc = gprintf(g, "\"%c\"", y[0])) || (rc = same_len(g, zeros, y + 1)))
            return rc;
    }
    return gputs(g, ")");
}

/* Non-negative integers in [a, b] (b NULL: unbounded) without leading zeros, as alternatives
   appended with " | " separators; *any set when something was written. */
static inf_status pos_range(struct inf__gstr *g, const char *a, const char *b, bool *any)
{
    size_t la = strlen(a), lb = b ? strlen(b) : la;
    inf_status rc;
    char lo[JS_MAX_DIGITS + 2], hi[JS_MAX_DIGITS + 2];

    if (b && digits_cmp(a, b) > 0)
        return INF_OK;
    for (size_t L = la; L <= lb; L++) {
        if (L == la)
            snprintf(lo, sizeof lo, "%s", a);
        else
            memset(lo, '0', L), lo[0] = '1', lo[L] = 0;
        if (b && L == lb)
            snprintf(hi, sizeof hi, "%s", b);
        else
            memset(hi, '9', L), hi[L] = 0;
        if (*any && (rc = gputs(g, " |")))
            return rc;
        if ((rc = same_len(g, lo, hi)))
            return rc;
        *any = true;
    }
    if (!b) {
        if (*any && (rc = gputs(g, " |")))
            return rc;
        if ((rc = gprintf(g, " [1-9] [0-9]{%zu,}", la)))
            return rc;
        *any = true;
    }
    return INF_OK;
}

/*
 * Fractions: D grammars over digit strings s (the digits after the point) with 0.s compared
 * to 0.d. Each writes the non-empty strings into g (*ne when there are any) and says whether
 * the empty string (value 0) belongs (*eps).
 */
struct frac {
    struct inf__gstr g;
    bool ne, eps;
};

static inf_status frac_full(struct inf__gstr *g, struct frac *f)
{
    /* the strings of f, empty included when it belongs: (NE)? or (NE) */
    if (!f->ne)
        return INF_OK;
    inf_status rc = gputs(g, " (");
    if (!rc)
        rc = gput(g, f->g.p, f->g.len);
    return rc ? rc : gputs(g, f->eps ? ")?" : ")");
}

static inf_status frac_ge(const char *d, bool strict, struct frac *f);
static inf_status frac_le(const char *d, bool strict, struct frac *f);

static void frac_free(struct frac *f)
{
    free(f->g.p);
    memset(f, 0, sizeof *f);
}

/* alternative "c" REST where REST = full(sub) */
static inf_status frac_alt_lit(struct frac *f, char ch, struct frac *sub)
{
    inf_status rc;
    if (!sub->ne && !sub->eps)
        return INF_OK;
    if (f->ne && (rc = gputs(&f->g, " |")))
        return rc;
    if ((rc = gprintf(&f->g, " \"%c\"", ch)) || (rc = frac_full(&f->g, sub)))
        return rc;
    f->ne = true;
    return INF_OK;
}

static inf_status frac_alt_range(struct frac *f, char lo, char hi)
{
    inf_status rc;
    if (lo > hi)
        return INF_OK;
    if (f->ne && (rc = gputs(&f->g, " |")))
        return rc;
    rc =
        lo == hi ? gprintf(&f->g, " \"%c\" [0-9]*", lo) : gprintf(&f->g, " [%c-%c] [0-9]*", lo, hi);
    f->ne = true;
    return rc;
}

static inf_status frac_ge(const char *d, bool strict, struct frac *f)
{
    struct frac sub = {0};
    inf_status rc;
    memset(f, 0, sizeof *f);
    if (!*d) {
        f->eps = !strict;
        f->ne = true;
        return gputs(&f->g, strict ? " [0-9]* [1-9] [0-9]*" : " [0-9]+");
    }
    if ((rc = frac_alt_range(f, (char)(d[0] + 1), '9')) || (rc = frac_ge(d + 1, strict, &sub)) ||
        (rc = frac_alt_lit(f, d[0], &sub)))
        goto out;
out:
    frac_free(&sub);
    return rc;
}

static inf_status frac_le(const char *d, bool strict, struct frac *f)
{
    struct frac sub = {0};
    inf_status rc;
    memset(f, 0, sizeof *f);
    if (!*d) {
        f->eps = !strict;
        f->ne = !strict;
        return strict ? INF_OK : gputs(&f->g, " \"0\"+");
    }
    f->eps = true;
    if ((rc = frac_alt_range(f, '0', (char)(d[0] - 1))) || (rc = frac_le(d + 1, strict, &sub)) ||
        (rc = frac_alt_lit(f, d[0], &sub)))
        goto out;
out:
    frac_free(&sub);
    return rc;
}

static inf_status frac_between(const char *a, const char *b, bool sa, bool sb, struct frac *f)
{
    struct frac sub = {0};
    inf_status rc = INF_OK;
    memset(f, 0, sizeof *f);
    if (!*b) {
        f->eps = f->ne = !(sa || sb);
        return f->ne ? gputs(&f->g, " \"0\"+") : INF_OK;
    }
    char a0 = *a ? a[0] : '0';
    const char *ar = *a ? a + 1 : a;
    f->eps = !*a && !sa;
    if (a0 == b[0]) {
        if ((rc = frac_between(ar, b + 1, sa, sb, &sub)) || (rc = frac_alt_lit(f, a0, &sub)))
            goto out;
    } else {
        if ((rc = frac_ge(ar, sa, &sub)) || (rc = frac_alt_lit(f, a0, &sub)))
            goto out;
        frac_free(&sub);
        if ((rc = frac_alt_range(f, (char)(a0 + 1), (char)(b[0] - 1))))
            goto out;
        if ((rc = frac_le(b + 1, sb, &sub)) || (rc = frac_alt_lit(f, b[0], &sub)))
            goto out;
    }
out:
    frac_free(&sub);
    return rc;
}

/* The optional fraction part after an integer part: ("." NE)? / "." NE / nothing; false when
   no suffix at all is possible. */
static inf_status put_suffix(struct inf__gstr *g, struct frac *f, bool *possible)
{
    inf_status rc = INF_OK;
    *possible = f->ne || f->eps;
    if (!f->ne)
        return INF_OK;
    if ((rc = gputs(g, " (\".\" (")) || (rc = gput(g, f->g.p, f->g.len)))
        return rc;
    return gputs(g, f->eps ? "))?" : "))");
}

/* alternatives of magnitudes (int part + optional fraction), kinds: ge, le, between */
enum { M_GE, M_LE, M_BETWEEN };

static inf_status alt_sep(struct inf__gstr *g, bool *any)
{
    inf_status rc = *any ? gputs(g, " |") : INF_OK;
    *any = true;
    return rc;
}

static inf_status put_int_frac(struct inf__gstr *g, const char *ip, struct frac *f, bool *any)
{
    struct inf__gstr t = {0};
    bool possible;
    inf_status rc = put_suffix(&t, f, &possible);
    if (!rc && possible) {
        if (!(rc = alt_sep(g, any)) && !(rc = gprintf(g, " \"%s\"", ip)))
            rc = gput(g, t.p ? t.p : "", t.len);
    }
    free(t.p);
    return rc;
}

static const char FRAC_ANY[] = " (\".\" [0-9]+)?";

/* magnitude >= A (> when sa) */
static inf_status mag_ge(struct inf__gstr *g, const struct dec *A, bool sa, bool *any)
{
    char next[JS_MAX_DIGITS + 2];
    struct frac f = {0};
    struct inf__gstr t = {0};
    bool a2 = false;
    inf_status rc;
    snprintf(next, sizeof next, "%s", A->ip);
    digits_inc(next);
    if ((rc = pos_range(&t, next, NULL, &a2)))
        goto out;
    if ((rc = alt_sep(g, any)) || (rc = gputs(g, " (")) || (rc = gput(g, t.p, t.len)) ||
        (rc = gputs(g, ")")) || (rc = gputs(g, FRAC_ANY)))
        goto out;
    if ((rc = frac_ge(A->fp, sa, &f)) || (rc = put_int_frac(g, A->ip, &f, any)))
        goto out;
out:
    free(t.p);
    frac_free(&f);
    return rc;
}

/* magnitude <= B (< when sb) */
static inf_status mag_le(struct inf__gstr *g, const struct dec *B, bool sb, bool *any)
{
    struct frac f = {0};
    inf_status rc = INF_OK;
    if (strcmp(B->ip, "0")) {
        char prev[JS_MAX_DIGITS + 2];
        struct inf__gstr t = {0};
        bool a2 = false;
        snprintf(prev, sizeof prev, "%s", B->ip);
        digits_dec(prev);
        rc = pos_range(&t, "0", prev, &a2);
        if (!rc && !(rc = alt_sep(g, any)) && !(rc = gputs(g, " (")) && !(rc = gput(g, t.p, t.len)))
            rc = gputs(g, ")"), rc = rc ? rc : gputs(g, FRAC_ANY);
        free(t.p);
        if (rc)
            return rc;
    }
    if ((rc = frac_le(B->fp, sb, &f)) == INF_OK)
        rc = put_int_frac(g, B->ip, &f, any);
    frac_free(&f);
    return rc;
}

/* A <= magnitude <= B */
static inf_status mag_between(struct inf__gstr *g, const struct dec *A, bool sa,
                              const struct dec *B, bool sb, bool *any)
{
    struct frac f = {0};
    inf_status rc = INF_OK;
    if (!strcmp(A->ip, B->ip)) {
        if ((rc = frac_between(A->fp, B->fp, sa, sb, &f)) == INF_OK)
            rc = put_int_frac(g, A->ip, &f, any);
        frac_free(&f);
        return rc;
    }
    char lo[JS_MAX_DIGITS + 2], hi[JS_MAX_DIGITS + 2];
    snprintf(lo, sizeof lo, "%s", A->ip);
    snprintf(hi, sizeof hi, "%s", B->ip);
    digits_inc(lo);
    digits_dec(hi);
    if (digits_cmp(lo, hi) <= 0) {
        struct inf__gstr t = {0};
        bool a2 = false;
        rc = pos_range(&t, lo, hi, &a2);
        if (!rc && !(rc = alt_sep(g, any)) && !(rc = gputs(g, " (")) && !(rc = gput(g, t.p, t.len)))
            rc = gputs(g, ")"), rc = rc ? rc : gputs(g, FRAC_ANY);
        free(t.p);
        if (rc)
            return rc;
    }
    if ((rc = frac_ge(A->fp, sa, &f)) || (rc = put_int_frac(g, A->ip, &f, any)))
        goto out;
    frac_free(&f);
    if ((rc = frac_le(B->fp, sb, &f)) || (rc = put_int_frac(g, B->ip, &f, any)))
        goto out;
out:
    frac_free(&f);
    return rc;
}

static int dec_cmp(const struct dec *a, const struct dec *b)
{
    if (a->neg != b->neg)
        return a->neg ? -1 : 1;
    int r = digits_cmp(a->ip, b->ip);
    if (!r)
        r = strcmp(a->fp, b->fp) < 0 ? -1 : strcmp(a->fp, b->fp) > 0;
    return a->neg ? -r : r;
}

/* The tighter of minimum / exclusiveMinimum (lower) or maximum / exclusiveMaximum. */
static inf_status get_bound(struct js *c, const json_t *node, bool lower, bool number,
                            struct dec *d, bool *strict, bool *has)
{
    const char *k1 = lower ? "minimum" : "maximum";
    const char *k2 = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    const json_t *v1 = json_object_get(node, k1), *v2 = json_object_get(node, k2);
    struct dec t;
    *has = false;
    if (v1) {
        if (!json_is_number(v1) || !dec_from_json(v1, d))
            return invalid(c, k1, "must be a finite number of at most 400 digits");
        *has = true, *strict = false;
    }
    if (v2) {
        if (json_is_boolean(v2))
            return refuse(c, k2, "the draft-04 boolean form");
        if (!json_is_number(v2) || !dec_from_json(v2, &t))
            return invalid(c, k2, "must be a finite number of at most 400 digits");
        bool st = true;
        if (number) {
            /* a text that reads back as the bound itself is not beyond it: the bound becomes
               the next double, inclusive (a text at or beyond it reads as a larger double) */
            json_t *nb = json_real(nextafter(num_of(v2), lower ? INFINITY : -INFINITY));
            bool okb = nb && dec_from_json(nb, &t);
            json_decref(nb);
            if (!okb)
                return invalid(c, k2, "must be a finite number of at most 400 digits");
            st = false;
        }
        int r = *has ? dec_cmp(&t, d) : 0;
        if (!*has || (lower ? r >= 0 : r <= 0)) {
            *d = t;
            *strict = st;
            *has = true;
        }
    }
    return INF_OK;
}

/* Integers in [lo, hi]: bounds of struct dec rounded inward. */
static inf_status gen_integer(struct js *c, const json_t *node, struct inf__gstr *g, bool *never)
{
    struct dec L, U;
    bool sl = false, su = false, hl, hu, any = false;
    inf_status rc;

    if ((rc = get_bound(c, node, true, false, &L, &sl, &hl)) ||
        (rc = get_bound(c, node, false, false, &U, &su, &hu)))
        return rc;
    if (!hl && !hu) {
        c->used |= U_INTEGER;
        return gputs(g, "json-integer") ? oom(c) : INF_OK;
    }
    /* integer bounds: lo = ceil(L) (+1 when strict and integral), hi = floor(U) (-1 ...) */
    char lo[JS_MAX_DIGITS + 3], hi[JS_MAX_DIGITS + 3];
    bool lo_neg = false, hi_neg = false;
    if (hl) {
        snprintf(lo, sizeof lo, "%s", L.ip);
        lo_neg = L.neg;
        bool frac = L.fp[0] != 0;
        /* ceil: positive with fraction -> +1; negative with fraction -> magnitude floor */
        if (!lo_neg && (frac || sl))
            digits_inc(lo);
        else if (lo_neg && !frac && sl) {
            digits_dec(lo); /* -5 exclusive -> -4 */
        }
        if (lo_neg && !strcmp(lo, "0"))
            lo_neg = false;
    }
    if (hu) {
        snprintf(hi, sizeof hi, "%s", U.ip);
        hi_neg = U.neg;
        bool frac = U.fp[0] != 0;
        if (hi_neg && (frac || su))
            digits_inc(hi);
        else if (!hi_neg && !frac && su) {
            if (!strcmp(hi, "0"))
                hi_neg = true, snprintf(hi, sizeof hi, "1");
            else
                digits_dec(hi);
        }
    }
    struct inf__gstr t = {0};
    if ((rc = gputs(&t, "(")))
        goto out;
    /* non-negative part [max(lo, 0), hi] */
    if (!hu || !hi_neg) {
        const char *a = hl && !lo_neg ? lo : "0";
        if ((rc = pos_range(&t, a, hu ? hi : NULL, &any)))
            goto out;
    }
    /* negative part: magnitudes [max(1, |hi|), |lo|] */
    if (!hl || lo_neg) {
        const char *a = hu && hi_neg ? hi : "1";
        struct inf__gstr n = {0};
        bool a2 = false;
        if ((rc = pos_range(&n, a, hl ? lo : NULL, &a2))) {
            free(n.p);
            goto out;
        }
        if (a2) {
            rc = alt_sep(&t, &any);
            if (!rc)
                rc = gputs(&t, " \"-\" (");
            if (!rc)
                rc = gput(&t, n.p, n.len);
            if (!rc)
                rc = gputs(&t, ")");
        }
        free(n.p);
        if (rc)
            goto out;
    }
    if ((rc = gputs(&t, ")")))
        goto out;
    if (!any)
        *never = true;
    else
        rc = gput(g, t.p, t.len);
out:
    free(t.p);
    return rc ? (rc == INF_ENOMEM ? oom(c) : rc) : INF_OK;
}

static inf_status gen_number(struct js *c, const json_t *node, struct inf__gstr *g, bool *never)
{
    struct dec L, U, zero = {0};
    bool sl = false, su = false, hl, hu, any = false;
    inf_status rc;
    struct inf__gstr t = {0};

    strcpy(zero.ip, "0");
    if ((rc = get_bound(c, node, true, true, &L, &sl, &hl)) ||
        (rc = get_bound(c, node, false, true, &U, &su, &hu)))
        return rc;
    if (!hl && !hu) {
        c->used |= U_NUMBER;
        return gputs(g, "json-number") ? oom(c) : INF_OK;
    }
    if (hl && hu && (dec_cmp(&L, &U) > 0 || (dec_cmp(&L, &U) == 0 && (sl || su)))) {
        *never = true;
        return INF_OK;
    }
    rc = gputs(&t, "(");
    if (hl && hu) {
        if (!L.neg) {
            rc = rc ? rc : mag_between(&t, &L, sl, &U, su, &any);
        } else if (U.neg) {
            if (!rc && !(rc = gputs(&t, " \"-\" (")))
                rc = mag_between(&t, &U, su, &L, sl, &any), rc = rc ? rc : gputs(&t, ")");
        } else {
            bool a2 = false;
            if (!rc && !(rc = gputs(&t, " \"-\" (")))
                rc = mag_between(&t, &zero, true, &L, sl, &a2), rc = rc ? rc : gputs(&t, ")");
            any = true;
            rc = rc ? rc : mag_le(&t, &U, su, &any);
        }
    } else if (hl) {
        if (!L.neg) {
            rc = rc ? rc : mag_ge(&t, &L, sl, &any);
        } else {
            bool a2 = false;
            if (!rc && !(rc = gputs(&t, " \"-\" (")))
                rc = mag_between(&t, &zero, true, &L, sl, &a2), rc = rc ? rc : gputs(&t, ")");
            rc = rc ? rc : gputs(&t, " | (\"0\" | [1-9] [0-9]*)");
            rc = rc ? rc : gputs(&t, FRAC_ANY);
            any = true;
        }
    } else {
        if (!U.neg) {
            bool a2 = false;
            if (!rc && !(rc = gputs(&t, " \"-\" (")))
                rc = mag_ge(&t, &zero, true, &a2), rc = rc ? rc : gputs(&t, ")");
            any = true;
            rc = rc ? rc : mag_le(&t, &U, su, &any);
        } else {
            if (!rc && !(rc = gputs(&t, " \"-\" (")))
                rc = mag_ge(&t, &U, su, &any), rc = rc ? rc : gputs(&t, ")");
        }
    }
    rc = rc ? rc : gputs(&t, ")");
    if (!rc) {
        if (any)
            rc = gput(g, t.p, t.len);
        else
            *never = true;
    }
    free(t.p);
    return rc ? (rc == INF_ENOMEM ? oom(c) : rc) : INF_OK;
}

/* Numbers with a non-zero fraction digit (not integers), without bounds. */
static inf_status gen_fraction(struct js *c, const json_t *node, struct inf__gstr *g)
{
    if (json_object_get(node, "minimum") || json_object_get(node, "maximum") ||
        json_object_get(node, "exclusiveMinimum") || json_object_get(node, "exclusiveMaximum"))
        return refuse(c, "not", "'integer' excluded from bounded numbers");
    return gputs(g, "(\"-\"? (\"0\" | [1-9] [0-9]*) \".\" [0-9]* [1-9] [0-9]*)") ? oom(c) : INF_OK;
}

/* Integers divisible by k: the remainder of the digits read so far, one rule per value. */
static inf_status gen_multiple(struct js *c, json_int_t k, struct inf__gstr *g)
{
    char base[96], rn[160];
    struct inf__gstr b = {0};
    inf_status rc = new_name(c, "multiple", base, sizeof base);
    for (json_int_t r = 0; r < k && !rc; r++) {
        bool first = true;
        b.len = 0;
        rc = gput(&b, "", 0);
        for (json_int_t t = 0; t < k && !rc; t++) {
            /* the digits d with (10 r + d) mod k == t */
            char cls[32];
            size_t n = 0;
            for (int d = 0; d < 10; d++)
                if ((10 * r + d) % k == t)
                    cls[n++] = (char)('0' + d);
            if (!n)
                continue;
            cls[n] = 0;
            rc = gprintf(&b, "%s[%s] %s--m%lld", first ? "" : " | ", cls, base, (long long)t);
            first = false;
        }
        snprintf(rn, sizeof rn, "%s--m%lld", base, (long long)r);
        if (!rc) {
            if (r == 0) {
                struct inf__gstr w = {0};
                rc = gputs(&w, "(") || gput(&w, b.p, b.len) || gputs(&w, ")?")
                         ? INF_ENOMEM
                         : add_rule(c, rn, w.p);
                free(w.p);
            } else {
                rc = add_rule(c, rn, b.p);
            }
        }
    }
    /* "0", or a first digit 1-9 then the rest */
    rc = rc ? rc : gputs(g, "(\"-\"? (\"0\"");
    for (int d = 1; d < 10 && !rc; d++)
        rc = gprintf(g, " | \"%d\" %s--m%lld", d, base, (long long)(d % k));
    rc = rc ? rc : gputs(g, "))");
    free(b.p);
    return rc == INF_ENOMEM ? oom(c) : rc;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The sorted, distinct texts txt[0..n) from byte offset at on, as one GBNF expression sharing
 * common prefixes (split at UTF-8 character boundaries). A text that ends here makes the rest
 * optional.
 */
static inf_status put_literal_trie(struct js *c, struct inf__gstr *g, const char **txt, size_t n,
                                   size_t at)
{
    inf_status rc = INF_OK;
    bool ends = false, first = true;
    size_t i = 0, groups = 0;

    while (i < n && !txt[i][at])
        ends = true, i++;
    for (size_t j = i; j < n;) {
        size_t cl = inf__utf8_len((unsigned char)txt[j][at]), k = j + 1;
        while (k < n && !strncmp(txt[k] + at, txt[j] + at, cl))
            k++;
        groups++;
        j = k;
    }
    if (groups == 0)
        return INF_OK;
    if ((groups > 1 || ends) && gputs(g, "("))
        return oom(c);
    while (i < n && !rc) {
        size_t cl = inf__utf8_len((unsigned char)txt[i][at]), k = i + 1;
        while (k < n && !strncmp(txt[k] + at, txt[i] + at, cl))
            k++;
        /* the longest run all of txt[i..k) share */
        size_t run = cl;
        for (;;) {
            unsigned char b = (unsigned char)txt[i][at + run];
            size_t l = inf__utf8_len(b);
            if (!b || !txt[k - 1][at + run])
                break;
            bool same = !strncmp(txt[i] + at + run, txt[k - 1] + at + run, l);
            if (!same)
                break;
            run += l;
        }
        if (!first && gputs(g, " | "))
            return oom(c);
        first = false;
        if (gputs(g, "\"") || put_gbnf_text(g, txt[i] + at, run) || gputs(g, "\""))
            return oom(c);
        if (k - i > 1 || txt[i][at + run]) {
            /* drop exact duplicates for the recursion */
            const char **sub = malloc((k - i) * sizeof *sub);
            size_t ns = 0;
            if (!sub)
                return oom(c);
            for (size_t j = i; j < k; j++)
                if (!ns || strcmp(sub[ns - 1], txt[j]))
                    sub[ns++] = txt[j];
            if (ns > 1 || sub[0][at + run]) {
                if (gputs(g, " "))
                    rc = oom(c);
                else
                    rc = put_literal_trie(c, g, sub, ns, at + run);
            }
            free(sub);
        }
        i = k;
    }
    if (!rc && (groups > 1 || ends) && gputs(g, ends ? ")?" : ")"))
        return oom(c);
    return rc;
}

/* A JSON value as GBNF: compact, an integral number as an integer, another number in its
   shortest spelling or jansson's. */
static inf_status put_value_literal(struct js *c, struct inf__gstr *g, const json_t *v)
{
    inf_status rc = INF_OK;
    if (json_is_real(v)) {
        struct dec d;
        if (!dec_from_json(v, &d))
            return put_json_literal(c, g, v);
        struct inf__gstr t = {0};
        if (gprintf(&t, "%s%s%s%s", d.neg ? "-" : "", d.ip, d.fp[0] ? "." : "", d.fp))
            return oom(c);
        char *j = json_dumps(v, JSON_ENCODE_ANY);
        if (!j) {
            free(t.p);
            return oom(c);
        }
        if (d.fp[0] && strcmp(j, t.p))
            rc = gprintf(g, "(\"%s\" | \"%s\")", t.p, j);
        else
            rc = gprintf(g, "\"%s\"", t.p);
        free(j);
        free(t.p);
        return rc ? oom(c) : INF_OK;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        rc = gputs(g, "\"[\"");
        json_array_foreach(v, i, e)
        {
            if (!rc && i)
                rc = gputs(g, " \",\"");
            if (!rc)
                rc = gputs(g, WS(c));
            if (!rc)
                rc = put_value_literal(c, g, e);
        }
        if (!rc)
            rc = gputs(g, WS(c)); /* after the last item, or inside [ ] */
        return rc ? rc : gputs(g, " \"]\"") ? oom(c) : INF_OK;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        bool first = true;
        rc = gputs(g, "\"{\"");
        json_object_foreach((json_t *)v, k, e)
        {
            if (!rc && !first)
                rc = gputs(g, " \",\"");
            first = false;
            if (!rc)
                rc = gputs(g, WS(c));
            if (!rc)
                rc = put_key_literal(c, g, k);
            if (!rc)
                rc = gprintf(g, "%s\":\"%s", WS(c), WS(c));
            if (!rc)
                rc = put_value_literal(c, g, e);
        }
        if (!rc)
            rc = gputs(g, WS(c)); /* after the last member, or inside { } */
        return rc ? rc : gputs(g, " \"}\"") ? oom(c) : INF_OK;
    }
    return put_json_literal(c, g, v);
}

/* ---- strings -------------------------------------------------------------------------------- */

/* Formats as GBNF over the string's content (no escapes needed: none contains `"` or `\`). */
static const struct {
    const char *name, *gbnf;
} formats[] = {
    {"date", "fmt-date"},
    {"time", "fmt-time"},
    {"date-time", "fmt-date \"T\" fmt-time"},
    {"uuid", "[0-9a-fA-F]{8} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" [0-9a-fA-F]{4} \"-\" "
             "[0-9a-fA-F]{12}"},
    {"ipv4", "fmt-ipv4"},
    {"ipv6", "fmt-ipv6"},
    {"hostname", "fmt-hostname"},
    {"email", "fmt-email-local \"@\" fmt-hostname"},
    {"uri", "fmt-uri"},
};

/* The helper rules of the formats (written once when any format is used). */
static const char format_rules[] =
    /* a leap year's Feb 29: YY divisible by 4 (not 00), or YY 00 with CC divisible by 4 */
    "fmt-date ::= [0-9]{4} \"-\" ((\"0\" [13578] | \"1\" [02]) \"-\" (\"0\" [1-9] | [12] [0-9] | "
    "\"3\" [01]) | (\"0\" [469] | \"11\") \"-\" (\"0\" [1-9] | [12] [0-9] | \"30\") | \"02-\" "
    "(\"0\" "
    "[1-9] | \"1\" [0-9] | \"2\" [0-8])) | fmt-leap \"-02-29\"\n"
    "fmt-leap ::= [0-9] [0-9] (\"0\" [48] | [2468] [048] | [13579] [26]) | (\"0\" [48] | [2468] "
    "[048] | [13579] [26]) \"00\"\n"
    "fmt-time ::= ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]+)? "
    "(\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])\n"
    "fmt-ipv4 ::= fmt-octet \".\" fmt-octet \".\" fmt-octet \".\" fmt-octet\n"
    "fmt-octet ::= [0-9] | [1-9] [0-9] | \"1\" [0-9] [0-9] | \"2\" [0-4] [0-9] | \"25\" [0-5]\n"
    "fmt-h16 ::= [0-9a-fA-F]{1,4}\n"
    "fmt-ipv6 ::= (fmt-h16 \":\"){6} fmt-ls32 | \"::\" (fmt-h16 \":\"){5} fmt-ls32 | fmt-h16? "
    "\"::\" "
    "(fmt-h16 \":\"){4} fmt-ls32 | ((fmt-h16 \":\")? fmt-h16)? \"::\" (fmt-h16 \":\"){3} fmt-ls32 "
    "| "
    "((fmt-h16 \":\"){0,2} fmt-h16)? \"::\" (fmt-h16 \":\"){2} fmt-ls32 | ((fmt-h16 \":\"){0,3} "
    "fmt-h16)? \"::\" fmt-h16 \":\" fmt-ls32 | ((fmt-h16 \":\"){0,4} fmt-h16)? \"::\" fmt-ls32 | "
    "((fmt-h16 \":\"){0,5} fmt-h16)? \"::\" fmt-h16 | ((fmt-h16 \":\"){0,6} fmt-h16)? \"::\"\n"
    "fmt-ls32 ::= fmt-h16 \":\" fmt-h16 | fmt-ipv4\n"
    /* at most 4 labels of at most 61 characters: never longer than 253 */
    "fmt-hostname ::= fmt-label (\".\" fmt-label){0,3}\n"
    "fmt-label ::= [a-zA-Z0-9] ([a-zA-Z0-9-]{0,59} [a-zA-Z0-9])?\n"
    "fmt-email-local ::= fmt-atext+ (\".\" fmt-atext+)*\n"
    "fmt-atext ::= [a-zA-Z0-9!#$%&'*+=?^_`{|}~\\x2D]\n"
    /* scheme ":" hier-part ["?" query] ["#" fragment], RFC 3986 without IP literals */
    "fmt-uri ::= [a-zA-Z] [a-zA-Z0-9+.\\x2D]* \":\" (\"//\" (fmt-uchar* \"@\")? fmt-uchar* (\":\" "
    "[0-9]*)? (\"/\" (fmt-uchar | [:@])*)* | \"/\" ((fmt-uchar | [:@])+ (\"/\" (fmt-uchar | "
    "[:@])*)*)? | (fmt-uchar | [:@])+ (\"/\" (fmt-uchar | [:@])*)*)? (\"?\" (fmt-uchar | "
    "[:@/?])*)? (\"#\" (fmt-uchar | [:@/?])*)?\n"
    "fmt-uchar ::= [a-zA-Z0-9._~!$&'()*+,;=\\x2D] | \"%\" [0-9a-fA-F] [0-9a-fA-F]\n";

static inf_status gen_string(struct js *c, const json_t *node, struct inf__gstr *g, bool *never,
                             bool *fmt_used)
{
    const json_t *mn = json_object_get(node, "minLength"), *mx = json_object_get(node, "maxLength");
    const json_t *pat = json_object_get(node, "pattern"), *fmt = json_object_get(node, "format");
    json_int_t lo = 0, hi = -1;
    inf_status rc;

    if (mn && (!json_is_integer(mn) &&
               !(json_is_real(mn) && json_real_value(mn) == floor(json_real_value(mn)))))
        return invalid(c, "minLength", "must be a non-negative integer");
    if (mx && (!json_is_integer(mx) &&
               !(json_is_real(mx) && json_real_value(mx) == floor(json_real_value(mx)))))
        return invalid(c, "maxLength", "must be a non-negative integer");
    if (mn)
        lo = json_is_integer(mn) ? json_integer_value(mn) : (json_int_t)json_real_value(mn);
    if (mx)
        hi = json_is_integer(mx) ? json_integer_value(mx) : (json_int_t)json_real_value(mx);
    if (lo < 0 || (mx && hi < 0))
        return invalid(c, lo < 0 ? "minLength" : "maxLength", "must be a non-negative integer");
    if (hi >= 0 && hi < lo) {
        *never = true;
        return INF_OK;
    }
    if (pat || fmt) {
        if (pat && fmt)
            return refuse(c, "format", "together with 'pattern'");
        if (mn || mx)
            return refuse(c, mn ? "minLength" : "maxLength",
                          pat ? "together with 'pattern'" : "together with 'format'");
    }
    if (pat) {
        char name[96];
        if (!json_is_string(pat))
            return invalid(c, "pattern", "must be a string");
        json_t *key = json_sprintf("re %s", json_string_value(pat)), *have;
        if (!key)
            return oom(c);
        have = json_object_get(c->shared, json_string_value(key));
        if (have) {
            json_decref(key);
            return gprintf(g, "\"\\\"\" %s \"\\\"\"", json_string_value(have)) ? oom(c) : INF_OK;
        }
        if ((rc = new_name(c, "pattern", name, sizeof name - 8))) {
            json_decref(key);
            return rc;
        }
        strcat(name, "--re");
        rc = inf__regex_to_gbnf_json(json_string_value(pat), json_string_length(pat), name, false,
                                     true, &c->rules, c->err);
        if (rc) {
            char msg[INF_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", c->err ? c->err->msg : "");
            json_decref(key);
            if (rc == INF_EUNSUPPORTED || rc == INF_EPARSE || rc == INF_ELIMIT)
                return inf_error_set(c->err, rc == INF_EPARSE ? INF_EINVAL : rc,
                                     "json schema: 'pattern' at '#%s': %s", where(c), msg);
            return rc;
        }
        if (json_object_set_new(c->shared, json_string_value(key), json_string(name))) {
            json_decref(key);
            return oom(c);
        }
        json_decref(key);
        return gprintf(g, "\"\\\"\" %s \"\\\"\"", name) ? oom(c) : INF_OK;
    }
    if (fmt) {
        if (!json_is_string(fmt))
            return invalid(c, "format", "must be a string");
        for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
            if (!strcmp(json_string_value(fmt), formats[i].name)) {
                *fmt_used = true;
                return gprintf(g, "\"\\\"\" %s \"\\\"\"", formats[i].gbnf) ? oom(c) : INF_OK;
            }
        }
        return inf_error_set(c->err, INF_EUNSUPPORTED,
                             "json schema: 'format' '%s' at '#%s' is not supported",
                             json_string_value(fmt), where(c));
    }
    if (!mn && !mx) {
        c->used |= U_STRING;
        return gputs(g, "json-string") ? oom(c) : INF_OK;
    }
    if (lo > INF_GRAMMAR_MAX_REPEAT || hi > INF_GRAMMAR_MAX_REPEAT)
        return inf_error_set(c->err, INF_ELIMIT,
                             "json schema: '%s' at '#%s' above the repetition limit %d",
                             hi > INF_GRAMMAR_MAX_REPEAT ? "maxLength" : "minLength", where(c),
                             INF_GRAMMAR_MAX_REPEAT);
    c->used |= U_STRING;
    /* one rule per pair of bounds, shared by every string that has them */
    char key[64], body[64], name[96];
    if (hi < 0) {
        snprintf(key, sizeof key, "len %lld", (long long)lo);
        snprintf(body, sizeof body, "json-char{%lld,}", (long long)lo);
    } else {
        snprintf(key, sizeof key, "len %lld %lld", (long long)lo, (long long)hi);
        snprintf(body, sizeof body, "json-char{%lld,%lld}", (long long)lo, (long long)hi);
    }
    json_t *have = json_object_get(c->shared, key);
    if (have) {
        snprintf(name, sizeof name, "%s", json_string_value(have));
    } else {
        if ((rc = new_name(c, "json-chars", name, sizeof name)) || (rc = add_rule(c, name, body)))
            return rc;
        if (json_object_set_new(c->shared, key, json_string(name)))
            return oom(c);
    }
    rc = gprintf(g, "\"\\\"\" %s \"\\\"\"", name);
    return rc ? oom(c) : INF_OK;
}

/* ---- the compiler proper -------------------------------------------------------------------- */

static inf_status gen(struct js *c, json_t *node, const char *hint, struct inf__gstr *g,
                      bool *never);

#define NEVER_KEY "$inferno-never" /* set by merges whose result accepts nothing */

/* Compile node into a rule of its own; *name receives it (empty with *never). */
static inf_status gen_rule(struct js *c, json_t *node, const char *hint, char *name, size_t size,
                           bool *never)
{
    struct inf__gstr body = {0};
    inf_status rc;

    name[0] = 0;
    if (json_is_true(node)) {
        c->used |= U_VALUE;
        *never = false;
        snprintf(name, size, "json-value");
        return INF_OK;
    }
    rc = gen(c, node, hint, &body, never);
    if (!rc && !*never) {
        rc = new_name(c, hint, name, size);
        if (!rc)
            rc = add_rule(c, name, body.p);
    }
    free(body.p);
    return rc;
}

/* gen_rule for the subschema at node[key] (path /key) or node[key][idx] / [key][name] */
static inf_status gen_child(struct js *c, json_t *sub, const char *seg1, const char *seg2,
                            const char *hint, char *name, size_t size, bool *never)
{
    inf_status rc = INF_OK;
    size_t old = path_push(c, seg1, &rc);
    if (!rc && seg2)
        path_push(c, seg2, &rc);
    if (!rc)
        rc = gen_rule(c, sub, hint, name, size, never);
    else
        rc = oom(c);
    path_pop(c, old);
    return rc;
}

/* -- objects -- */

struct trie {
    const char *unit; /* into the encoded name */
    size_t len;
    size_t first, next; /* children, siblings (0 = none; node 0 is the root) */
    bool terminal;
};

/* The canonical spelling of one key unit (jansson's escaping) starting at s. */
static size_t unit_len(const char *s)
{
    if (s[0] == '\\')
        return s[1] == 'u' ? 6 : 2;
    unsigned char b = (unsigned char)s[0];
    return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

/* Keys other than the names: a trie of their canonical spellings, one rule per node. */
static inf_status gen_key_notin(struct js *c, json_t *names, const char *base, char *root,
                                size_t size)
{
    struct trie *t = NULL;
    size_t n = 1, cap = 0;
    char **enc = NULL;
    size_t n_enc = json_array_size(names);
    inf_status rc = INF_OK;
    struct inf__gstr body = {0};
    char rn[256];

    if (!inf__grow(&t, &cap, 1, sizeof *t, 16))
        return oom(c);
    memset(t, 0, sizeof *t);
    enc = calloc(n_enc ? n_enc : 1, sizeof *enc);
    if (!enc) {
        free(t);
        return oom(c);
    }
    for (size_t i = 0; i < n_enc; i++) {
        char *e = json_dumps(json_array_get(names, i), JSON_ENCODE_ANY);
        if (!e) {
            rc = oom(c);
            goto out;
        }
        enc[i] = e;
        size_t len = strlen(e);
        e[len - 1] = 0; /* drop the closing quote */
        size_t cur = 0;
        for (const char *p = e + 1; *p;) {
            size_t ul = unit_len(p), k;
            for (k = t[cur].first; k; k = t[k].next)
                if (t[k].len == ul && !memcmp(t[k].unit, p, ul))
                    break;
            if (!k) {
                if (!inf__grow(&t, &cap, n + 1, sizeof *t, 16)) {
                    rc = oom(c);
                    goto out;
                }
                memset(&t[n], 0, sizeof *t);
                t[n].unit = p, t[n].len = ul, t[n].next = t[cur].first;
                t[cur].first = n;
                k = n++;
            }
            cur = k;
            p += ul;
        }
        t[cur].terminal = true;
    }
    c->used |= U_KCHAR;
    snprintf(root, size, "%s--k0", base);
    for (size_t i = 0; i < n && !rc; i++) {
        bool first = true;
        body.len = 0;
        rc = gput(&body, "", 0);
        if (!t[i].terminal)
            rc = rc ? rc : gputs(&body, "\"\\\"\""), first = false;
        /* raw characters other than the children's */
        rc = rc ? rc : gprintf(&body, "%s[^\\x22\\x5C\\x00-\\x1F", first ? "" : " | ");
        for (size_t k = t[i].first; k && !rc; k = t[k].next) {
            if (t[k].unit[0] == '\\')
                continue;
            uint32_t cp = 0;
            const unsigned char *u = (const unsigned char *)t[k].unit;
            if (t[k].len == 1)
                cp = u[0];
            else if (t[k].len == 2)
                cp = ((u[0] & 0x1Fu) << 6) | (u[1] & 0x3Fu);
            else if (t[k].len == 3)
                cp = ((u[0] & 0x0Fu) << 12) | ((u[1] & 0x3Fu) << 6) | (u[2] & 0x3Fu);
            else
                cp = ((u[0] & 0x07u) << 18) | ((u[1] & 0x3Fu) << 12) | ((u[2] & 0x3Fu) << 6) |
                     (u[3] & 0x3Fu);
            rc = cp < 0x10000 ? gprintf(&body, "\\u%04X", cp) : gprintf(&body, "\\U%08X", cp);
        }
        rc = rc ? rc : gprintf(&body, "] %s--kf", base);
        /* escapes other than the children's */
        static const char *const esc[] = {"\\\"", "\\\\", "\\b", "\\f", "\\n", "\\r", "\\t"};
        bool esc_child = false;
        for (size_t k = t[i].first; k; k = t[k].next)
            esc_child |= t[k].unit[0] == '\\';
        if (!esc_child)
            rc = rc ? rc : gprintf(&body, " | json-kesc %s--kf", base);
        for (size_t e = 0; e < 7 + 32 && !rc && esc_child; e++) {
            char u[8];
            if (e < 7)
                snprintf(u, sizeof u, "%s", esc[e]);
            else {
                unsigned cc = (unsigned)(e - 7);
                if (cc == 8 || cc == 9 || cc == 10 || cc == 12 || cc == 13)
                    continue;
                snprintf(u, sizeof u, "\\u%04X", cc);
            }
            size_t k;
            for (k = t[i].first; k; k = t[k].next)
                if (t[k].len == strlen(u) && !memcmp(t[k].unit, u, t[k].len))
                    break;
            if (k)
                continue;
            rc = gputs(&body, " | \"");
            rc = rc ? rc : put_gbnf_text(&body, u, strlen(u));
            rc = rc ? rc : gprintf(&body, "\" %s--kf", base);
        }
        for (size_t k = t[i].first; k && !rc; k = t[k].next) {
            rc = gputs(&body, " | \"");
            rc = rc ? rc : put_gbnf_text(&body, t[k].unit, t[k].len);
            rc = rc ? rc : gprintf(&body, "\" %s--k%zu", base, k);
        }
        if (rc) {
            rc = oom(c);
            break;
        }
        snprintf(rn, sizeof rn, "%s--k%zu", base, i);
        rc = add_rule(c, rn, body.p);
    }
    if (!rc) {
        snprintf(rn, sizeof rn, "%s--kf", base);
        rc = add_rule(c, rn, "json-kchar* \"\\\"\"");
    }
out:
    for (size_t i = 0; i < n_enc; i++)
        free(enc[i]);
    free(enc);
    free(t);
    free(body.p);
    return rc;
}

struct member {
    const char *name;
    char rule[96]; /* the value's rule */
    bool required;
};

static bool json_int_of(const json_t *v, json_int_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
        fabs(json_real_value(v)) < 9e18) {
        *out = (json_int_t)json_real_value(v);
        return true;
    }
    return false;
}

/* Whether the unanchored pattern re matches s: through its own grammar, so the answer is the
   one the compiled schema would give. */
static inf_status regex_matches(struct js *c, const char *re, const char *s, bool *match)
{
    struct inf__gstr g = {0};
    struct inf_grammar *gr = NULL;
    struct inf_matcher *m = NULL;
    struct inf_error e = {0};
    inf_status rc = inf__regex_to_gbnf_json(re, strlen(re), "re", false, false, &g, &e);
    if (!rc)
        rc = inf_grammar_from_gbnf(g.p, g.len, "re", &gr, &e);
    if (!rc)
        rc = inf_matcher_new(gr, NULL, &m, &e);
    if (!rc)
        *match = inf_matcher_accept_bytes(m, s, strlen(s)) && inf_matcher_can_end(m);
    inf_matcher_free(m);
    inf_grammar_free(gr);
    free(g.p);
    if (rc == INF_ENOMEM)
        return oom(c);
    if (rc)
        return inf_error_set(c->err, rc == INF_EPARSE ? INF_EINVAL : rc,
                             "json schema: 'patternProperties' at '#%s': %s", where(c), e.msg);
    return INF_OK;
}

/* The states of an object's members: a position in schema order (p = next declared index)
   or, with any_order or dependentRequired, the set of declared members used (p = bit mask);
   n = members so far (capped at cap unless maxProperties bounds it). */
struct ostate {
    size_t k, cap, req;
    bool any, any_order, addl;
    json_int_t maxp, minp;
    const size_t *deps;
    const struct member *m;
    const unsigned char *ok;
};

struct otrans {
    int member; /* declared member taken, -1 for none */
    bool addl;  /* an additional member */
    size_t p, n;
};

static bool ostate_end(const struct ostate *o, size_t p, size_t n)
{
    if ((json_int_t)n < o->minp)
        return false;
    if (!o->any)
        return p == o->k;
    if ((p & o->req) != o->req)
        return false;
    for (size_t i = 0; i < o->k; i++)
        if ((p & ((size_t)1 << i)) && (p & o->deps[i]) != o->deps[i])
            return false;
    return true;
}

/* The moves out of (p, n) whose targets can complete (o->ok filled for them already). */
static size_t ostate_trans(const struct ostate *o, size_t p, size_t n, struct otrans *t)
{
    size_t nt = 0, nx = o->maxp >= 0 ? n + 1 : (n + 1 > o->cap ? o->cap : n + 1);
    bool can_add = (o->maxp < 0 || (json_int_t)n + 1 <= o->maxp) && nx <= o->cap;
    size_t C = o->cap + 1;
    for (size_t i = 0; i < o->k && can_add; i++) {
        size_t np;
        if (o->any) {
            size_t bit = (size_t)1 << i;
            if ((p & bit) || (!o->any_order && p >= bit))
                continue;
            np = p | bit;
        } else {
            if (i != p)
                continue;
            np = p + 1;
        }
        if (o->ok[np * C + nx])
            t[nt++] = (struct otrans){(int)i, false, np, nx};
    }
    if (!o->any && p < o->k && !o->m[p].required && o->ok[(p + 1) * C + n])
        t[nt++] = (struct otrans){-1, false, p + 1, n};
    if (o->addl && can_add && (o->any || p == o->k) && (nx == n || o->ok[p * C + nx]))
        t[nt++] = (struct otrans){-1, true, p, nx};
    return nt;
}

static unsigned char ostate_ok(const struct ostate *o, size_t p, size_t n)
{
    struct otrans t[JS_MAX_ANY_ORDER + 3];
    size_t nt = ostate_trans(o, p, n, t);
    bool end = ostate_end(o, p, n), more = false;
    for (size_t i = 0; i < nt; i++) {
        if (t[i].addl && t[i].p == p && t[i].n == n)
            continue; /* the capped loop: non-empty when the state completes otherwise */
        unsigned char v = o->ok[t[i].p * (o->cap + 1) + t[i].n];
        if (t[i].member < 0 && !t[i].addl)
            more |= v == 2, end |= v == 1;
        else
            more = true;
    }
    for (size_t i = 0; i < nt; i++)
        if (t[i].addl && t[i].p == p && t[i].n == n && (end || more))
            more = true;
    return more ? 2 : end ? 1 : 0;
}

static inf_status gen_object(struct js *c, json_t *node, const char *hint, struct inf__gstr *g,
                             bool *never)
{
    json_t *props = json_object_get(node, "properties");
    json_t *req = json_object_get(node, "required");
    json_t *ap = json_object_get(node, "additionalProperties");
    json_t *up = json_object_get(node, "unevaluatedProperties");
    json_t *pp = json_object_get(node, "patternProperties");
    json_t *pn = json_object_get(node, "propertyNames");
    const json_t *minp = json_object_get(node, "minProperties");
    const json_t *maxp = json_object_get(node, "maxProperties");
    json_t *names = json_array();
    struct member *m = NULL;
    size_t k = 0, n_props;
    json_int_t minP = 0, maxP = -1;
    char base[96], addl_key[384] = "", addl_val[96] = "";
    bool addl = false;
    inf_status rc = INF_OK;
    struct inf__gstr body = {0};
    unsigned char *ok = NULL;
    const char *ws = WS(c);

    if (!names)
        return oom(c);
    if (props && !json_is_object(props)) {
        rc = invalid(c, "properties", "must be an object");
        goto out;
    }
    if (req && !json_is_array(req)) {
        rc = invalid(c, "required", "must be an array");
        goto out;
    }
    if ((minp && !json_int_of(minp, &minP)) || (maxp && !json_int_of(maxp, &maxP)) || minP < 0 ||
        (maxp && maxP < 0)) {
        rc = invalid(c, minp ? "minProperties" : "maxProperties", "must be a non-negative integer");
        goto out;
    }
    /* additionalProperties: strict mode defaults it to false; unevaluatedProperties acts as it
       when the object has no combinators (those were merged or refused before) */
    if (!ap && up)
        ap = up;
    if (!ap && c->o.strict)
        ap = json_false();
    if (pp && json_object_size(pp)) {
        /* patternProperties with a true schema constrain nothing when other keys are allowed */
        const char *pk;
        json_t *pv;
        bool all_true = true;
        json_object_foreach(pp, pk, pv) all_true &=
            json_is_true(pv) || (json_is_object(pv) && !json_object_size(pv));
        if (!(all_true && (!ap || json_is_true(ap)))) {
            bool clash = false;
            if (json_object_size(pp) == 1 && props) {
                /* a declared name the pattern matches would need both schemas */
                const char *pat = json_object_iter_key(json_object_iter(pp)), *dk;
                json_t *dv;
                json_object_foreach(props, dk, dv)
                {
                    bool hit = false;
                    if ((rc = regex_matches(c, pat, dk, &hit)))
                        goto out;
                    clash |= hit;
                }
            }
            if (json_object_size(pp) != 1 || clash || !json_is_false(ap ? ap : json_true()) || pn) {
                rc = refuse(c, "patternProperties",
                            "only one pattern, matching no name in 'properties', with "
                            "additionalProperties false");
                goto out;
            }
        } else {
            pp = NULL;
        }
    } else {
        pp = NULL;
    }
    if (pn && (json_is_true(pn) || (json_is_object(pn) && !json_object_size(pn))))
        pn = NULL;
    if (pn && ((props && json_object_size(props)) || pp)) {
        rc = refuse(c, "propertyNames", "together with 'properties' or 'patternProperties'");
        goto out;
    }
    /* the declared members, then names only `required` mentions */
    n_props = (props ? json_object_size(props) : 0) + (req ? json_array_size(req) : 0);
    json_t *drq = json_object_get(node, "dependentRequired");
    if (json_is_object(drq)) {
        const char *dk;
        json_t *dv;
        json_object_foreach(drq, dk, dv) n_props += 1 + json_array_size(dv);
    }
    m = calloc(n_props ? n_props : 1, sizeof *m);
    if (!m) {
        rc = oom(c);
        goto out;
    }
    if ((rc = new_name(c, hint, base, sizeof base - 24)))
        goto out;
    if (props) {
        const char *pk;
        json_t *pv;
        json_object_foreach(props, pk, pv)
        {
            bool nv = false, r = c->o.strict;
            size_t i;
            json_t *rv;
            char h[256];
            if (json_array_append_new(names, json_string(pk))) {
                rc = oom(c);
                goto out;
            }
            json_array_foreach(req, i, rv) r |=
                json_is_string(rv) && !strcmp(json_string_value(rv), pk);
            snprintf(h, sizeof h, "%s-%s", base, pk);
            if ((rc = gen_child(c, pv, "properties", pk, h, m[k].rule, sizeof m[k].rule, &nv)))
                goto out;
            if (nv) {
                if (r) {
                    *never = true;
                    goto out;
                }
                continue;
            }
            m[k].name = pk;
            m[k].required = r;
            k++;
        }
    }
    if (req) {
        size_t i;
        json_t *rv;
        json_array_foreach(req, i, rv)
        {
            if (!json_is_string(rv)) {
                rc = invalid(c, "required", "must hold strings");
                goto out;
            }
            const char *rn = json_string_value(rv);
            bool dup = props && json_object_get(props, rn);
            for (size_t j = 0; j < i && !dup; j++)
                dup = !strcmp(json_string_value(json_array_get(req, j)), rn);
            if (dup)
                continue;
            if (pp || pn) {
                rc = refuse(c, "required",
                            "of a property not in 'properties' beside "
                            "patternProperties/propertyNames");
                goto out;
            }
            bool nv = false;
            char h[256];
            snprintf(h, sizeof h, "%s-%s", base, rn);
            if (json_array_append_new(names, json_string(rn))) {
                rc = oom(c);
                goto out;
            }
            if (ap)
                rc = gen_child(c, ap, "additionalProperties", NULL, h, m[k].rule, sizeof m[k].rule,
                               &nv);
            else
                rc = gen_rule(c, json_true(), h, m[k].rule, sizeof m[k].rule, &nv);
            if (rc)
                goto out;
            if (nv) {
                *never = true;
                goto out;
            }
            m[k].name = rn;
            m[k].required = true;
            k++;
        }
    }
    /* names dependentRequired mentions: optional members under additionalProperties */
    if (json_is_object(drq) && (!ap || !json_is_false(ap)) && !pp && !pn) {
        const char *dk;
        json_t *dv;
        json_object_foreach(drq, dk, dv)
        {
            if (!json_is_array(dv) || !json_array_size(dv))
                continue;
            for (size_t i = 0; i <= json_array_size(dv); i++) {
                const char *nm = i == 0 ? dk : json_string_value(json_array_get(dv, i - 1));
                bool known = !nm || (props && json_object_get(props, nm)), nv = false;
                char h[256];
                for (size_t j = 0; j < k && !known; j++)
                    known = !strcmp(m[j].name, nm);
                if (known)
                    continue;
                snprintf(h, sizeof h, "%s-%s", base, nm);
                if (json_array_append_new(names, json_string(nm))) {
                    rc = oom(c);
                    goto out;
                }
                if (ap)
                    rc = gen_child(c, ap, "additionalProperties", NULL, h, m[k].rule,
                                   sizeof m[k].rule, &nv);
                else
                    rc = gen_rule(c, json_true(), h, m[k].rule, sizeof m[k].rule, &nv);
                if (rc)
                    goto out;
                if (nv)
                    continue;
                m[k].name = nm;
                m[k].required = false;
                k++;
            }
        }
    }
    /* the additional members */
    if (pp) {
        const char *pk;
        json_t *pv = NULL;
        bool nv = false;
        void *it = json_object_iter(pp);
        pk = json_object_iter_key(it);
        pv = json_object_iter_value(it);
        char h[256];
        snprintf(h, sizeof h, "%s-pattern", base);
        if ((rc = gen_child(c, pv, "patternProperties", pk, h, addl_val, sizeof addl_val, &nv)))
            goto out;
        if (!nv) {
            snprintf(addl_key, sizeof addl_key, "%s--pk", base);
            rc = inf__regex_to_gbnf_json(pk, strlen(pk), addl_key, false, true, &c->rules, c->err);
            if (rc == INF_EUNSUPPORTED || rc == INF_EPARSE || rc == INF_ELIMIT) {
                /* the regex's message, named as the schema's ('pattern' does the same) */
                char msg[INF_ERROR_MSG_MAX];
                snprintf(msg, sizeof msg, "%s", c->err ? c->err->msg : "");
                rc = inf_error_set(c->err, rc == INF_EPARSE ? INF_EINVAL : rc,
                                   "json schema: 'patternProperties' at '#%s': %s", where(c), msg);
            }
            if (rc)
                goto out;
            snprintf(addl_key, sizeof addl_key, "\"\\\"\" %s--pk \"\\\"\"", base);
            addl = true;
        }
    } else if (!ap || !json_is_false(ap)) {
        bool nv = false;
        char h[256];
        snprintf(h, sizeof h, "%s-additional", base);
        if (ap)
            rc = gen_child(c, ap,
                           json_object_get(node, "additionalProperties") ? "additionalProperties"
                                                                         : "unevaluatedProperties",
                           NULL, h, addl_val, sizeof addl_val, &nv);
        else
            rc = gen_rule(c, json_true(), h, addl_val, sizeof addl_val, &nv);
        if (rc)
            goto out;
        if (!nv) {
            addl = true;
            if (pn) {
                /* the names: propertyNames' schema applied to strings */
                json_t *tmp = json_pack("{s:s, s:[O]}", "type", "string", "allOf", pn);
                bool kn = false;
                char kr[96];
                if (!tmp || json_array_append_new(c->keep, tmp)) {
                    rc = oom(c);
                    goto out;
                }
                snprintf(h, sizeof h, "%s-name", base);
                if ((rc = gen_child(c, tmp, "propertyNames", NULL, h, kr, sizeof kr, &kn)))
                    goto out;
                if (kn)
                    addl = false;
                snprintf(addl_key, sizeof addl_key, "%s", kr);
            } else if (json_array_size(names)) {
                char root[256];
                if ((rc = gen_key_notin(c, names, base, root, sizeof root)))
                    goto out;
                snprintf(addl_key, sizeof addl_key, "\"\\\"\" %s", root);
            } else {
                c->used |= U_STRING;
                snprintf(addl_key, sizeof addl_key, "json-string");
            }
        }
    }
    if (maxp && maxP < minP) {
        *never = true;
        goto out;
    }
    /* dependentRequired: bit masks over the declared members */
    size_t deps[JS_MAX_ANY_ORDER] = {0};
    bool has_deps = false;
    json_t *dr = json_object_get(node, "dependentRequired");
    if (dr) {
        const char *dk;
        json_t *dv;
        if (!json_is_object(dr)) {
            rc = invalid(c, "dependentRequired", "must be an object");
            goto out;
        }
        json_object_foreach(dr, dk, dv)
        {
            size_t ti = k, i;
            json_t *e;
            if (!json_is_array(dv)) {
                rc = invalid(c, "dependentRequired", "must hold arrays");
                goto out;
            }
            if (!json_array_size(dv))
                continue;
            for (i = 0; i < k; i++)
                if (!strcmp(m[i].name, dk))
                    ti = i;
            if (ti == k) {
                /* a trigger that cannot appear beside others, or one we do not track */
                if (!addl)
                    continue;
                rc = refuse(c, "dependentRequired", "a property not declared in 'properties'");
                goto out;
            }
            if (k > JS_MAX_ANY_ORDER) {
                rc = refuse(c, "dependentRequired", "with more than 10 declared properties");
                goto out;
            }
            json_array_foreach(dv, i, e)
            {
                size_t di = k;
                for (size_t j = 0; j < k && json_is_string(e); j++)
                    if (!strcmp(m[j].name, json_string_value(e)))
                        di = j;
                if (di == k) {
                    if (json_is_string(e) && !addl &&
                        !(props && json_object_get(props, json_string_value(e)))) {
                        /* the dependency can never be present: so neither can the trigger */
                        m[ti].required = false;
                        deps[ti] |= (size_t)1 << k; /* a bit no state holds */
                        continue;
                    }
                    rc = refuse(c, "dependentRequired", "a property not declared in 'properties'");
                    goto out;
                }
                deps[ti] |= (size_t)1 << di;
            }
            has_deps = true;
        }
    }
    /* states: (declared index, or the set of members used so far; members so far) */
    bool any = (c->o.any_order && k > 1) || has_deps;
    if (any && k > JS_MAX_ANY_ORDER) {
        rc = inf_error_set(c->err, INF_ELIMIT,
                           "json schema: any_order with more than %d properties at '#%s'",
                           JS_MAX_ANY_ORDER, where(c));
        goto out;
    }
    size_t cap = maxp ? (size_t)maxP : (size_t)(minP > 1 ? minP : 1);
    if (maxp && (size_t)maxP > k && !addl)
        cap = k; /* more members cannot come */
    size_t n_pos = any ? ((size_t)1 << k) : k + 1;
    if (cap + 1 > JS_MAX_COUNT_STATES || n_pos * (cap + 1) > JS_MAX_COUNT_STATES) {
        rc = inf_error_set(c->err, INF_ELIMIT,
                           "json schema: object at '#%s' needs more than %d rules (properties, "
                           "min/maxProperties)",
                           where(c), JS_MAX_COUNT_STATES);
        goto out;
    }
    ok = calloc(n_pos * (cap + 1), 1);
    if (!ok) {
        rc = oom(c);
        goto out;
    }
    struct ostate os = {.k = k,
                        .any = any,
                        .any_order = c->o.any_order,
                        .addl = addl,
                        .cap = cap,
                        .maxp = maxp ? maxP : -1,
                        .minp = minP,
                        .deps = deps,
                        .m = m,
                        .ok = ok};
    for (size_t i = 0; i < k; i++)
        os.req |= m[i].required ? (size_t)1 << i : 0;
    /* ok[]: 0 = no completion, 1 = only the empty one, 2 = non-empty ones (and maybe empty) */
    for (size_t p = n_pos; p-- > 0;)
        for (size_t n = cap + 1; n-- > 0;)
            ok[p * (cap + 1) + n] = ostate_ok(&os, p, n);
    if (!ok[0]) {
        *never = true;
        goto out;
    }
    /* one rule per reachable state with non-empty completions */
    unsigned char *reach = calloc(n_pos * (cap + 1), 1);
    size_t *stack = malloc(n_pos * (cap + 1) * sizeof *stack + 1);
    size_t sp = 0;
    if (!reach || !stack) {
        free(reach);
        free(stack);
        rc = oom(c);
        goto out;
    }
    if (ok[0] == 2)
        reach[0] = 1, stack[sp++] = 0;
    while (sp && !rc) {
        size_t st = stack[--sp], p = st / (cap + 1), n = st % (cap + 1);
        struct otrans tr[JS_MAX_ANY_ORDER + 3];
        size_t nt = ostate_trans(&os, p, n, tr);
        bool empty_ok = ostate_end(&os, p, n), first = true;
        body.len = 0;
        rc = gput(&body, "", 0);
        for (size_t t = 0; t < nt && !rc; t++) {
            size_t to = tr[t].p * (cap + 1) + tr[t].n;
            if (tr[t].member < 0 && tr[t].p != p) { /* a skip (schema order) */
                if (ok[to] == 1)
                    empty_ok = true;
                if (ok[to] != 2)
                    continue;
            }
            if (!first)
                rc = gputs(&body, " | ");
            first = false;
            if (tr[t].member >= 0 || tr[t].addl) {
                rc = rc ? rc : gprintf(&body, "%s%s", n ? "\",\"" : "", n ? ws : "");
                if (tr[t].addl)
                    rc = rc ? rc : gputs(&body, addl_key);
                else
                    rc = rc ? rc : put_key_literal(c, &body, m[tr[t].member].name);
                rc = rc ? rc
                        : gprintf(&body, "%s\":\"%s%s%s", ws, ws,
                                  tr[t].addl ? addl_val : m[tr[t].member].rule,
                                  c->o.whitespace < 0 ? "" : " ws");
            }
            if (ok[to] == 2) {
                rc = rc ? rc : gprintf(&body, " %s--%zu-%zu", base, tr[t].p, tr[t].n);
                if (!reach[to]) {
                    reach[to] = 1;
                    stack[sp++] = to;
                }
            }
        }
        if (!rc) {
            char rn[256];
            snprintf(rn, sizeof rn, "%s--%zu-%zu", base, p, n);
            if (empty_ok) {
                struct inf__gstr w = {0};
                if (gputs(&w, "(") || gput(&w, body.p, body.len) || gputs(&w, ")?"))
                    rc = oom(c);
                else
                    rc = add_rule(c, rn, w.p);
                free(w.p);
            } else {
                rc = add_rule(c, rn, body.p);
            }
        } else if (rc != INF_ELIMIT) {
            rc = oom(c);
        }
    }
    free(reach);
    free(stack);
    if (rc)
        goto out;
#define ST(p, n) ((p) * (cap + 1) + (n))
    rc = gputs(g, "\"{\"");
    rc = rc ? rc : gputs(g, c->o.whitespace < 0 ? "" : " ws");
    if (ok[ST(0, 0)] == 2)
        rc = rc ? rc : gprintf(g, " %s--0-0", base);
    rc = rc ? rc : gputs(g, " \"}\"");
    if (rc)
        rc = oom(c);
#undef ST
out:
    free(ok);
    free(m);
    free(body.p);
    json_decref(names);
    return rc;
}

/* -- arrays -- */

/* ")*" and friends after "(" X; INF_ELIMIT above the repetition limit */
static inf_status put_rep(struct js *c, struct inf__gstr *g, json_int_t lo, json_int_t hi,
                          const char *kw)
{
    if (lo > INF_GRAMMAR_MAX_REPEAT || hi > INF_GRAMMAR_MAX_REPEAT)
        return inf_error_set(c->err, INF_ELIMIT,
                             "json schema: '%s' at '#%s' above the repetition limit %d", kw,
                             where(c), INF_GRAMMAR_MAX_REPEAT);
    inf_status rc;
    if (lo == 0 && hi < 0)
        rc = gputs(g, ")*");
    else if (lo == 1 && hi < 0)
        rc = gputs(g, ")+");
    else if (lo == 0 && hi == 1)
        rc = gputs(g, ")?");
    else if (hi < 0)
        rc = gprintf(g, "){%lld,}", (long long)lo);
    else if (lo == hi)
        rc = gprintf(g, "){%lld}", (long long)lo);
    else
        rc = gprintf(g, "){%lld,%lld}", (long long)lo, (long long)hi);
    return rc ? oom(c) : INF_OK;
}

#define JS_MAX_UNIQUE 10 /* values of a uniqueItems array: 2^n rules */

/*
 * uniqueItems over an array whose items are drawn from a small enum (or const): one rule per
 * set of values used so far, so no value comes twice.
 */
static inf_status gen_unique(struct js *c, json_t *node, json_t *items, json_int_t m, json_int_t M,
                             struct inf__gstr *g, bool *never)
{
    const char *ws = c->o.whitespace < 0 ? "" : " ws";
    json_t *vals, *ev, *cv, *uniq = json_array();
    const char *k;
    json_t *v;
    size_t i, n;
    inf_status rc = INF_OK;
    char base[96];
    struct inf__gstr b = {0};
    struct inf__gstr *lit = NULL;
    unsigned char *ok = NULL;

    if (!uniq)
        return oom(c);
    if (json_object_get(node, "prefixItems") || json_object_get(node, "contains") || !items ||
        !json_is_object(items) ||
        (!(ev = json_object_get(items, "enum")) && !(cv = json_object_get(items, "const")))) {
        json_decref(uniq);
        return refuse(c, "uniqueItems", "only over items that are an enum or a const");
    }
    json_object_foreach(items, k, v)
    {
        if (is_constraint(k) && strcmp(k, "enum") && strcmp(k, "const") && strcmp(k, "type")) {
            json_decref(uniq);
            return refuse(c, "uniqueItems", "only over items that are an enum or a const");
        }
    }
    ev = json_object_get(items, "enum");
    cv = json_object_get(items, "const");
    vals = cv ? json_pack("[O]", cv) : json_incref(ev);
    json_array_foreach(vals, i, v)
    {
        const char *kw = NULL;
        bool dup = false;
        size_t j;
        json_t *u;
        if (check_value(items, v, cv ? "const" : "enum", &kw) != 1)
            continue;
        json_array_foreach(uniq, j, u) dup |= json_equal(u, v);
        if (!dup)
            json_array_append(uniq, v);
    }
    json_decref(vals);
    n = json_array_size(uniq);
    if (n > JS_MAX_UNIQUE) {
        json_decref(uniq);
        return refuse(c, "uniqueItems", "over more than 10 values");
    }
    if (M < 0 || M > (json_int_t)n)
        M = (json_int_t)n;
    if (m > M) {
        json_decref(uniq);
        *never = true;
        return INF_OK;
    }
    size_t ns = (size_t)1 << n;
    lit = calloc(n ? n : 1, sizeof *lit);
    ok = calloc(ns, 1);
    if (!lit || !ok) {
        rc = oom(c);
        goto out;
    }
    for (i = 0; i < n && !rc; i++)
        rc = put_value_literal(c, &lit[i], json_array_get(uniq, i));
    if (rc || (rc = new_name(c, "unique", base, sizeof base - 24)))
        goto out;
    /* ok: 1 = only the end, 2 = non-empty continuations */
    for (size_t s = ns; s-- > 0;) {
        json_int_t pc = __builtin_popcountll((unsigned long long)s);
        bool end = pc >= m, more = false;
        for (i = 0; i < n && pc < M; i++)
            if (!(s & ((size_t)1 << i)) && ok[s | ((size_t)1 << i)])
                more = true;
        ok[s] = more ? 2 : end ? 1 : 0;
    }
    for (size_t s = 0; s < ns && !rc; s++) {
        json_int_t pc = __builtin_popcountll((unsigned long long)s);
        bool first = true;
        if (ok[s] != 2)
            continue;
        b.len = 0;
        rc = gput(&b, "", 0);
        for (i = 0; i < n && pc < M && !rc; i++) {
            size_t t = s | ((size_t)1 << i);
            if ((s & ((size_t)1 << i)) || !ok[t])
                continue;
            rc = gprintf(&b, "%s%s", first ? "" : " | ", s ? "\",\"" : "");
            rc = rc ? rc : gputs(&b, s ? ws : "");
            rc = rc ? rc : gprintf(&b, " %s%s", lit[i].p, ws);
            if (!rc && ok[t] == 2)
                rc = gprintf(&b, " %s--u%zu", base, t);
            first = false;
        }
        char rn[160];
        snprintf(rn, sizeof rn, "%s--u%zu", base, s);
        if (!rc) {
            struct inf__gstr w = {0};
            if (pc >= m) {
                rc =
                    gputs(&w, "(") || gput(&w, b.p, b.len) || gputs(&w, ")?") ? INF_ENOMEM : INF_OK;
                rc = rc ? rc : add_rule(c, rn, w.p);
            } else {
                rc = add_rule(c, rn, b.p);
            }
            free(w.p);
        }
    }
    if (rc)
        goto out;
    if (!ok[0]) {
        *never = true;
        goto out;
    }
    if (ok[0] == 2)
        rc = gprintf(g, "\"[\"%s %s--u0 \"]\"", ws, base);
    else
        rc = gprintf(g, "\"[\"%s \"]\"", ws);
    if (rc)
        rc = oom(c);
out:
    for (i = 0; lit && i < n; i++)
        free(lit[i].p);
    free(lit);
    free(ok);
    free(b.p);
    json_decref(uniq);
    return rc == INF_ENOMEM ? oom(c) : rc;
}
static inf_status gen_array(struct js *c, json_t *node, const char *hint, struct inf__gstr *g,
                            bool *never)
{
    json_t *items = json_object_get(node, "items");
    json_t *prefix = json_object_get(node, "prefixItems");
    json_t *uev = json_object_get(node, "unevaluatedItems");
    json_t *contains = json_object_get(node, "contains");
    const json_t *jmin = json_object_get(node, "minItems"),
                 *jmax = json_object_get(node, "maxItems");
    const json_t *uniq = json_object_get(node, "uniqueItems");
    json_int_t m = 0, M = -1;
    const char *ws = c->o.whitespace < 0 ? "" : " ws";
    char(*pre)[96] = NULL;
    size_t k = 0;
    inf_status rc = INF_OK;
    struct inf__gstr s = {0}, t = {0};
    char irule[96] = "";
    char base[96];

    if ((jmin && !json_int_of(jmin, &m)) || (jmax && !json_int_of(jmax, &M)) || m < 0 ||
        (jmax && M < 0))
        return invalid(c, jmin ? "minItems" : "maxItems", "must be a non-negative integer");
    if (json_is_array(items))
        return refuse(c, "items", "the array form of drafts before 2020-12 (use prefixItems)");
    if (prefix && !json_is_array(prefix))
        return invalid(c, "prefixItems", "must be an array");
    if (!items && uev) {
        if (contains)
            return refuse(c, "unevaluatedItems", "together with 'contains'");
        items = uev;
    }
    if (items && (json_is_true(items) || (json_is_object(items) && !json_object_size(items))))
        items = NULL;
    if (json_is_true(uniq) && !(jmax && M <= 1))
        return gen_unique(c, node, items, m, M, g, never);
    if (M >= 0 && m > M) {
        *never = true;
        return INF_OK;
    }
    if ((rc = new_name(c, hint, base, sizeof base - 24)))
        return rc;
    if (contains) {
        const json_t *jmc = json_object_get(node, "minContains");
        json_int_t mc = 1;
        bool nv = false;
        char crule[96], h[128];
        if (json_object_get(node, "maxContains"))
            return refuse(c, "maxContains", NULL);
        if (jmc && (!json_int_of(jmc, &mc) || mc < 0))
            return invalid(c, "minContains", "must be a non-negative integer");
        if (mc > 0) {
            if (items || prefix || jmax || m > mc)
                return refuse(
                    c, "contains",
                    "only without items, prefixItems, maxItems and minItems above minContains");
            snprintf(h, sizeof h, "%s-contains", base);
            if ((rc = gen_child(c, contains, "contains", NULL, h, crule, sizeof crule, &nv)))
                return rc;
            if (nv) {
                *never = true;
                return INF_OK;
            }
            c->used |= U_VALUE;
            /* [ (V ,)* C ( (, V)* , C ){mc-1} (, V)* ] */
            rc = gprintf(
                g, "\"[\"%s (json-value%s \",\"%s)* %s%s (( \",\"%s json-value%s)* \",\"%s %s%s",
                ws, ws, ws, crule, ws, ws, ws, ws, crule, ws);
            rc = rc ? rc : put_rep(c, g, mc - 1, mc - 1, "minContains");
            rc = rc ? rc : gprintf(g, " (\",\"%s json-value%s)* \"]\"", ws, ws);
            return rc == INF_ELIMIT ? rc : rc ? oom(c) : INF_OK;
        }
    }
    size_t np = prefix ? json_array_size(prefix) : 0;
    pre = calloc(np ? np : 1, sizeof *pre);
    if (!pre)
        return oom(c);
    for (k = 0; k < np; k++) {
        bool nv = false;
        char h[256], idx[24];
        if (M >= 0 && (json_int_t)k >= M)
            break;
        snprintf(h, sizeof h, "%s-%zu", base, k);
        snprintf(idx, sizeof idx, "%zu", k);
        if ((rc = gen_child(c, json_array_get(prefix, k), "prefixItems", idx, h, pre[k],
                            sizeof pre[k], &nv)))
            goto out;
        if (nv) {
            M = (json_int_t)k;
            break;
        }
    }
    if (items) {
        bool nv = false;
        char h[256];
        snprintf(h, sizeof h, "%s-item", base);
        if ((rc = gen_child(c, items, json_object_get(node, "items") ? "items" : "unevaluatedItems",
                            NULL, h, irule, sizeof irule, &nv)))
            goto out;
        if (nv && (M < 0 || M > (json_int_t)k))
            M = (json_int_t)k;
    } else {
        c->used |= U_VALUE;
        snprintf(irule, sizeof irule, "json-value");
    }
    if (M >= 0 && m > M) {
        *never = true;
        goto out;
    }
    /* the items after the prefix: count in [lo, hi] */
    json_int_t lo = m > (json_int_t)k ? m - (json_int_t)k : 0, hi = M < 0 ? -1 : M - (json_int_t)k;
    rc = gput(&s, "", 0);
    if (hi != 0 && !rc) {
        if (k > 0) {
            rc = gprintf(&s, " (\",\"%s %s%s", ws, irule, ws);
            rc = rc ? rc : put_rep(c, &s, lo, hi, "maxItems");
        } else if (lo >= 1) {
            rc = gprintf(&s, " %s%s (\",\"%s %s%s", irule, ws, ws, irule, ws);
            rc = rc ? rc : put_rep(c, &s, lo - 1, hi < 0 ? -1 : hi - 1, "maxItems");
        } else {
            rc = gprintf(&s, " (%s%s (\",\"%s %s%s", irule, ws, ws, irule, ws);
            rc = rc ? rc : put_rep(c, &s, 0, hi < 0 ? -1 : hi - 1, "maxItems");
            rc = rc ? rc : gputs(&s, ")?");
        }
    }
    for (size_t i = k; i-- > 0 && !rc;) {
        t.len = 0;
        rc = gprintf(&t, " (%s%s%s %s%s", i ? "\",\"" : "", i ? ws : "", i ? "" : "", pre[i], ws);
        rc = rc ? rc : gput(&t, s.p, s.len);
        rc = rc ? rc : gputs(&t, (json_int_t)i >= m ? ")?" : ")");
        struct inf__gstr sw = s;
        s = t;
        t = sw;
    }
    rc = rc ? rc : gprintf(g, "\"[\"%s", ws);
    rc = rc ? rc : gput(g, s.p, s.len);
    rc = rc ? rc : gputs(g, " \"]\"");
    if (rc && rc != INF_ELIMIT)
        rc = oom(c);
out:
    free(pre);
    free(s.p);
    free(t.p);
    return rc;
}

/* -- allOf: merging schemas keyword by keyword -- */

static bool has_constraints(const json_t *node, const char *skip1, const char *skip2)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)node, k, v)
    {
        (void)v;
        if (is_constraint(k) && strcmp(k, skip1) && (!skip2 || strcmp(k, skip2)))
            return true;
    }
    return false;
}

static json_t *both(json_t *a, json_t *b)
{
    if (!a)
        return json_incref(b);
    if (!b)
        return json_incref(a);
    return json_pack("{s:[O,O]}", "allOf", a, b);
}

static inf_status set_new(struct js *c, json_t *o, const char *k, json_t *v)
{
    if (!v || json_object_set_new(o, k, v))
        return oom(c);
    return INF_OK;
}

static inf_status merge_into(struct js *c, json_t *dst, json_t *src, bool branch);

static inf_status merge_ref(struct js *c, json_t *dst, const json_t *ref)
{
    json_t *t;
    inf_status rc;
    if (!json_is_string(ref))
        return invalid(c, "$ref", "must be a string");
    if ((rc = resolve_ref(c, json_string_value(ref), &t)))
        return rc;
    if (++c->merge_depth > JS_MAX_MERGE_DEPTH) {
        c->merge_depth--;
        return refuse(c, "allOf", "a recursive $ref beside other keywords");
    }
    rc = merge_into(c, dst, t, true);
    c->merge_depth--;
    return rc;
}

static inf_status merge_body(struct js *c, json_t *dst, json_t *src, bool branch);

/* Merge src's keywords into dst. The $refs src holds resolve against src's own base URI; its
   subschemas keep theirs (base_of looks them up by node). */
static inf_status merge_into(struct js *c, json_t *dst, json_t *src, bool branch)
{
    const char *saved = c->base;
    c->base = base_of(c, src);
    inf_status rc = merge_body(c, dst, src, branch);
    c->base = saved;
    return rc;
}

static inf_status merge_body(struct js *c, json_t *dst, json_t *src, bool branch)
{
    const char *k;
    json_t *v;
    inf_status rc;

    if (json_is_true(src))
        return INF_OK;
    if (json_is_false(src))
        return set_new(c, dst, NEVER_KEY, json_true());
    if (!json_is_object(src))
        return invalid(c, "allOf", "items must be schemas");
    /* 'then' and 'else' are not constraints by themselves: without this the merge would keep
       'if' alone, which constrains nothing */
    if (json_object_get(src, "if") &&
        (json_object_get(src, "then") || json_object_get(src, "else")))
        return refuse(c, "if", "if/then/else");
    if (branch &&
        (json_object_get(src, "unevaluatedProperties") || json_object_get(src, "unevaluatedItems")))
        return refuse(c,
                      json_object_get(src, "unevaluatedProperties") ? "unevaluatedProperties"
                                                                    : "unevaluatedItems",
                      "inside allOf or beside $ref");
    /* object keywords together */
    json_t *sP = json_object_get(src, "properties"),
           *sA = json_object_get(src, "additionalProperties");
    json_t *dP = json_object_get(dst, "properties"),
           *dA = json_object_get(dst, "additionalProperties");
    if ((sP || sA) && (dP || dA)) {
        if (json_object_get(src, "patternProperties") || json_object_get(dst, "patternProperties"))
            return refuse(c, "allOf", "'patternProperties' in more than one subschema");
        json_t *nP = json_object();
        if (!nP)
            return oom(c);
        if (dP)
            json_object_foreach(dP, k,
                                v) if (json_object_set_new(nP, k,
                                                           both(v, sP && json_object_get(sP, k)
                                                                       ? json_object_get(sP, k)
                                                                       : sA))) goto nomem;
        if (sP)
            json_object_foreach(sP, k, v) if (!json_object_get(nP, k) &&
                                              json_object_set_new(nP, k, both(dA, v))) goto nomem;
        json_t *nA = dA && sA ? both(dA, sA) : dA ? json_incref(dA) : sA ? json_incref(sA) : NULL;
        if (json_object_set_new(dst, "properties", nP) ||
            (nA && json_object_set_new(dst, "additionalProperties", nA)))
            return oom(c);
        goto arrays;
    nomem:
        json_decref(nP);
        return oom(c);
    }
arrays:;
    json_t *sI = json_object_get(src, "items"), *sX = json_object_get(src, "prefixItems");
    json_t *dI = json_object_get(dst, "items"), *dX = json_object_get(dst, "prefixItems");
    if ((sI || sX) && (dI || dX)) {
        if (json_is_array(sI) || json_is_array(dI))
            return refuse(c, "items", "the array form of drafts before 2020-12");
        size_t ns = json_array_size(sX), nd = json_array_size(dX);
        json_t *nX = json_array();
        for (size_t i = 0; nX && i < (ns > nd ? ns : nd); i++) {
            json_t *a = i < nd ? json_array_get(dX, i) : dI,
                   *b = i < ns ? json_array_get(sX, i) : sI;
            json_t *e = a && b ? both(a, b) : a ? json_incref(a) : b ? json_incref(b) : json_true();
            if (json_array_append_new(nX, e))
                return json_decref(nX), oom(c);
        }
        if (!nX)
            return oom(c);
        json_t *nI = dI && sI ? both(dI, sI) : dI ? json_incref(dI) : sI ? json_incref(sI) : NULL;
        if ((json_array_size(nX) ? json_object_set_new(dst, "prefixItems", nX)
                                 : (json_decref(nX), 0)) ||
            (nI && json_object_set_new(dst, "items", nI)))
            return oom(c);
    }
    json_object_foreach(src, k, v)
    {
        json_t *d = json_object_get(dst, k);
        if (!strcmp(k, "$ref")) {
            if ((rc = merge_ref(c, dst, v)))
                return rc;
            continue;
        }
        if (!strcmp(k, "allOf")) {
            size_t i;
            json_t *e;
            if (!json_is_array(v))
                return invalid(c, "allOf", "must be an array");
            json_array_foreach(v, i, e) if ((rc = merge_into(c, dst, e, true))) return rc;
            continue;
        }
        if (!is_constraint(k) && strcmp(k, NEVER_KEY))
            continue;
        if (!d) {
            if (json_object_set(dst, k, v))
                return oom(c);
            continue;
        }
        if (d == v || json_equal(d, v))
            continue;
        if (!strcmp(k, "properties") || !strcmp(k, "additionalProperties") || !strcmp(k, "items") ||
            !strcmp(k, "prefixItems"))
            continue; /* done above */
        if (!strcmp(k, "type")) {
            unsigned a, b;
            if ((rc = type_mask(c, d, &a)) || (rc = type_mask(c, v, &b)))
                return rc;
            unsigned r = a & b;
            json_t *arr = json_array();
            static const char *const tn[] = {"null", "boolean", "object", "array", "string"};
            for (unsigned i = 0; arr && i < 5; i++)
                if (r & (1u << i))
                    json_array_append_new(arr, json_string(tn[i]));
            if (arr && (r & T_NUM))
                json_array_append_new(arr, json_string("number"));
            else if (arr && (r & T_INT))
                json_array_append_new(arr, json_string("integer"));
            if (!arr || json_object_set_new(dst, "type", arr))
                return oom(c);
            if (!r && (rc = set_new(c, dst, NEVER_KEY, json_true())))
                return rc;
            continue;
        }
        static const char *const maxkw[] = {"minimum",  "exclusiveMinimum", "minLength",
                                            "minItems", "minProperties",    "minContains",
                                            NULL};
        static const char *const minkw[] = {"maximum",  "exclusiveMaximum", "maxLength",
                                            "maxItems", "maxProperties",    "maxContains",
                                            NULL};
        bool done = false;
        for (size_t i = 0; maxkw[i] && !done; i++) {
            if (!strcmp(k, maxkw[i]) || !strcmp(k, minkw[i])) {
                if (!json_is_number(d) || !json_is_number(v))
                    return invalid(c, k, "must be a number");
                bool take = !strcmp(k, maxkw[i]) ? num_of(v) > num_of(d) : num_of(v) < num_of(d);
                if (take && json_object_set(dst, k, v))
                    return oom(c);
                done = true;
            }
        }
        if (done)
            continue;
        if (!strcmp(k, "required")) {
            size_t i;
            json_t *e, *u = json_copy(d);
            if (!u || !json_is_array(v))
                return json_decref(u), invalid(c, "required", "must be an array");
            json_array_foreach(v, i, e) json_array_append(u, e);
            if (json_object_set_new(dst, k, u))
                return oom(c);
            continue;
        }
        if (!strcmp(k, "enum") || !strcmp(k, "const")) {
            /* keep both: the enum/const filter checks every value against the other */
            if (!strcmp(k, "const")) {
                if ((rc = set_new(c, dst, NEVER_KEY, json_true())))
                    return rc;
                continue;
            }
            json_t *u = json_array();
            size_t i, j;
            json_t *e, *f;
            if (!u || !json_is_array(v) || !json_is_array(d))
                return json_decref(u), invalid(c, "enum", "must be an array");
            json_array_foreach(d, i, e) json_array_foreach(v, j, f) if (json_equal(e, f))
            {
                json_array_append(u, e);
                break;
            }
            if (json_object_set_new(dst, k, u))
                return oom(c);
            continue;
        }
        if (!strcmp(k, "uniqueItems")) {
            if (json_is_true(v) && json_object_set(dst, k, v))
                return oom(c);
            continue;
        }
        if (!strcmp(k, "propertyNames") || !strcmp(k, "unevaluatedProperties") ||
            !strcmp(k, "unevaluatedItems")) {
            if ((rc = set_new(c, dst, k, both(d, v))))
                return rc;
            continue;
        }
        if (!strcmp(k, "not")) {
            if ((rc = set_new(c, dst, k, json_pack("{s:[O,O]}", "anyOf", d, v))))
                return rc;
            continue;
        }
        if (!strcmp(k, "anyOf") || !strcmp(k, "oneOf")) {
            /* (a1|a2) & (b1|b2): the second goes in as a branch of the first */
            json_t *u = json_array();
            size_t i;
            json_t *e;
            json_array_foreach(d, i, e)
            {
                json_t *w = json_pack("{s:[O,{s:O}]}", "allOf", e, k, v);
                if (!w || json_array_append_new(u, w))
                    return json_decref(u), oom(c);
            }
            if (!strcmp(k, "oneOf"))
                return json_decref(u), refuse(c, "allOf", "'oneOf' in more than one subschema");
            if ((rc = set_new(c, dst, k, u)))
                return rc;
            continue;
        }
        if (!strcmp(k, NEVER_KEY))
            continue;
        return inf_error_set(c->err, INF_EUNSUPPORTED,
                             "json schema: 'allOf' at '#%s' is not supported: subschemas with "
                             "different '%s' cannot be merged",
                             where(c), k);
    }
    return INF_OK;
}

/* -- $ref -- */

static bool pure_ref(const json_t *node)
{
    const char *k;
    json_t *v;
    if (!json_is_object(node) || !json_is_string(json_object_get(node, "$ref")))
        return false;
    json_object_foreach((json_t *)node, k, v)
    {
        (void)v;
        if (strcmp(k, "$ref") && is_constraint(k))
            return false;
    }
    return true;
}

static inf_status ref_rule(struct js *c, const char *ref, struct inf__gstr *g, bool *never)
{
    json_t *t;
    char key[32], name[96], hint[64];
    const char *saved = c->base;
    inf_status rc;
    json_t *seen = NULL;
    size_t hops = 0;

    if ((rc = resolve_ref(c, ref, &t)))
        return rc;
    /* a chain of bare $refs is followed here, so only its end becomes a rule */
    while (pure_ref(t)) {
        if (!seen && !(seen = json_object()))
            return oom(c);
        ptrkey(key, sizeof key, t);
        if (json_object_get(seen, key)) {
            json_decref(seen);
            c->base = saved;
            return inf_error_set(c->err, INF_EINVAL,
                                 "json schema: '$ref' '%s' at '#%s' is a cycle of references", ref,
                                 where(c));
        }
        if (++hops > JS_MAX_REF_DEPTH) {
            json_decref(seen);
            c->base = saved;
            return inf_error_set(
                c->err, INF_ELIMIT,
                "json schema: '$ref' '%s' at '#%s' starts a chain of more than %d references", ref,
                where(c), JS_MAX_REF_DEPTH);
        }
        json_object_set_new(seen, key, json_true());
        c->base = base_of(c, t);
        rc = resolve_ref(c, json_string_value(json_object_get(t, "$ref")), &t);
        if (rc) {
            json_decref(seen);
            c->base = saved;
            return rc;
        }
    }
    json_decref(seen);
    c->base = saved;
    if (json_is_false(t)) {
        *never = true;
        return INF_OK;
    }
    if (json_is_true(t)) {
        c->used |= U_VALUE;
        return gputs(g, "json-value") ? oom(c) : INF_OK;
    }
    ptrkey(key, sizeof key, t);
    const json_t *have = json_object_get(c->refrules, key);
    if (have)
        return gputs(g, json_string_value(have)) ? oom(c) : INF_OK;
    if (c->ref_depth + 1 > JS_MAX_REF_DEPTH)
        return inf_error_set(c->err, INF_ELIMIT,
                             "json schema: '$ref' '%s' at '#%s' nests references deeper than %d",
                             ref, where(c), JS_MAX_REF_DEPTH);
    const char *last = strrchr(ref, '/');
    snprintf(hint, sizeof hint, "ref-%s", last ? last + 1 : ref);
    if ((rc = new_name(c, hint, name, sizeof name)))
        return rc;
    if (json_object_set_new(c->refrules, key, json_string(name)) ||
        !inf__grow(&c->work, &c->cap_work, c->n_work + 1, sizeof *c->work, 8))
        return oom(c);
    const char *frag = strchr(ref, '#');
    struct work *w = &c->work[c->n_work];
    w->node = t;
    w->name = strdup(name);
    w->base = strdup(base_of(c, t));
    w->path = strdup(frag && frag[1] == '/' ? frag + 1 : "");
    w->depth = c->ref_depth + 1;
    c->n_work++;
    if (!w->name || !w->base || !w->path)
        return oom(c);
    return gputs(g, name) ? oom(c) : INF_OK;
}

/* -- oneOf -- */

/* The JSON types a branch may accept, as far as its own keywords tell. */
static unsigned branch_types(struct js *c, json_t *b, json_t **resolved)
{
    unsigned mask = T_ALL;
    int hops = 0;
    while (pure_ref(b) && hops++ < 64) {
        json_t *t;
        struct inf_error e = {0};
        struct inf_error *save = c->err;
        c->err = &e;
        inf_status rc = resolve_ref(c, json_string_value(json_object_get(b, "$ref")), &t);
        c->err = save;
        if (rc)
            break;
        b = t;
    }
    *resolved = b;
    if (json_is_false(b))
        return 0;
    if (!json_is_object(b))
        return T_ALL;
    const json_t *t = json_object_get(b, "type"), *cv = json_object_get(b, "const"),
                 *ev = json_object_get(b, "enum");
    if (t) {
        struct inf_error e = {0};
        struct inf_error *save = c->err;
        c->err = &e;
        if (type_mask(c, t, &mask))
            mask = T_ALL;
        c->err = save;
    }
    if (cv)
        mask &= value_type(cv) == T_INT ? (T_INT | T_NUM) : value_type(cv);
    if (json_is_array(ev)) {
        unsigned em = 0;
        size_t i;
        json_t *e;
        json_array_foreach(ev, i, e) em |= value_type(e) == T_INT ? (T_INT | T_NUM) : value_type(e);
        mask &= em;
    }
    /* a JSON integer instance is also a number: overlapping number masks stay overlapping */
    if (mask & T_NUM)
        mask |= T_INT;
    return mask;
}

/* The const/enum values of schema b (an array, borrowed or new in *own); NULL when none. */
static json_t *branch_values(json_t *b, json_t **own)
{
    *own = NULL;
    if (!json_is_object(b))
        return NULL;
    json_t *cv = json_object_get(b, "const"), *ev = json_object_get(b, "enum");
    if (cv) {
        *own = json_pack("[O]", cv);
        return *own;
    }
    return json_is_array(ev) ? ev : NULL;
}

static bool values_disjoint(json_t *a, json_t *b)
{
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x) json_array_foreach(b, j, y) if (json_equal(x, y)) return false;
    return true;
}

static bool requires(const json_t *b, const char *name)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(b, "required"), i,
                       r) if (json_is_string(r) && !strcmp(json_string_value(r), name)) return true;
    return false;
}

/* Object branch b allows no member called name. */
static bool forbids(const json_t *b, const char *name)
{
    const json_t *props = json_object_get(b, "properties");
    const json_t *p = json_object_get(props, name);
    if (p)
        return json_is_false(p);
    return !json_object_get(b, "patternProperties") &&
           json_is_false(json_object_get(b, "additionalProperties"));
}

/* No instance satisfies both object-only branches a and b: a discriminating property (required
   by both, different const/enum values) or one that a requires and b forbids. */
static bool objects_disjoint(json_t *a, json_t *b)
{
    const char *k;
    json_t *v;
    json_t *pa = json_object_get(a, "properties");
    json_object_foreach(pa, k, v)
    {
        json_t *oa, *ob, *va, *vb;
        if (!requires(a, k) || !requires(b, k))
            continue;
        va = branch_values(v, &oa);
        vb = branch_values(json_object_get(json_object_get(b, "properties"), k), &ob);
        bool d = va && vb && values_disjoint(va, vb);
        json_decref(oa);
        json_decref(ob);
        if (d)
            return true;
    }
    for (int side = 0; side < 2; side++) {
        json_t *x = side ? b : a, *y = side ? a : b;
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(x, "required"), i,
                           r) if (json_is_string(r) &&
                                  forbids(y, json_string_value(r))) return true;
    }
    return false;
}

/* Every pair of branches is disjoint by type, by const/enum values, or as objects. */
static bool branches_disjoint(struct js *c, json_t *arr)
{
    size_t n = json_array_size(arr);
    unsigned *mask = calloc(n ? n : 1, sizeof *mask);
    json_t **res = calloc(n ? n : 1, sizeof *res);
    bool ok = mask && res;
    for (size_t i = 0; ok && i < n; i++)
        mask[i] = branch_types(c, json_array_get(arr, i), &res[i]);
    for (size_t i = 0; ok && i < n; i++) {
        for (size_t j = i + 1; ok && j < n; j++) {
            if (!(mask[i] & mask[j]))
                continue;
            json_t *oi, *oj, *vi = branch_values(res[i], &oi), *vj = branch_values(res[j], &oj);
            bool d = vi && vj && values_disjoint(vi, vj);
            json_decref(oi);
            json_decref(oj);
            if (!d && mask[i] == T_OBJ && mask[j] == T_OBJ && json_is_object(res[i]) &&
                json_is_object(res[j]))
                d = objects_disjoint(res[i], res[j]);
            ok = d;
        }
    }
    free(mask);
    free(res);
    return ok;
}

/* -- one schema object -- */

static const char *const object_kw[] = {"properties",           "required",
                                        "additionalProperties", "unevaluatedProperties",
                                        "patternProperties",    "propertyNames",
                                        "minProperties",        "maxProperties",
                                        "dependentRequired",    NULL};
static const char *const array_kw[] = {"items",    "prefixItems", "unevaluatedItems", "contains",
                                       "minItems", "maxItems",    "uniqueItems",      NULL};

static bool has_any(const json_t *node, const char *const *kw)
{
    for (size_t i = 0; kw[i]; i++)
        if (json_object_get(node, kw[i]))
            return true;
    return false;
}

static inf_status join_alts(struct js *c, struct inf__gstr *g, struct inf__gstr *alts, size_t n,
                            bool *never)
{
    if (n == 0) {
        *never = true;
        return INF_OK;
    }
    if (n == 1)
        return gput(g, alts->p, alts->len) ? oom(c) : INF_OK;
    if (gputs(g, "(") || gput(g, alts->p, alts->len) || gputs(g, ")"))
        return oom(c);
    return INF_OK;
}

static inf_status gen_schema(struct js *c, json_t *node, const char *hint, struct inf__gstr *g,
                             bool *never)
{
    static const char *const refused[] = {"$dynamicRef", "$recursiveRef", "dependencies", NULL};
    json_t *ref = json_object_get(node, "$ref"), *all = json_object_get(node, "allOf");
    json_t *any = json_object_get(node, "anyOf"), *one = json_object_get(node, "oneOf");
    json_t *not = json_object_get(node, "not");
    struct inf__gstr alts = {0};
    size_t n_alts = 0;
    inf_status rc = INF_OK;
    unsigned mask, notmask = 0;
    bool fmt_used = false;

    if (json_object_get(node, NEVER_KEY)) {
        *never = true;
        return INF_OK;
    }
    for (size_t i = 0; refused[i]; i++)
        if (json_object_get(node, refused[i]))
            return refuse(c, refused[i], NULL);
    if (json_object_get(node, "dependentSchemas") &&
        json_object_size(json_object_get(node, "dependentSchemas")))
        return refuse(c, "dependentSchemas", NULL);
    if (json_object_get(node, "if") &&
        (json_object_get(node, "then") || json_object_get(node, "else")))
        return refuse(c, "if", "if/then/else");
    if (ref && !json_is_string(ref))
        return invalid(c, "$ref", "must be a string");
    if (all || (ref && has_constraints(node, "$ref", NULL))) {
        json_t *dst = json_object();
        const char *k;
        json_t *v;
        if (!dst || json_array_append_new(c->keep, dst))
            return oom(c);
        if (all && !json_is_array(all))
            return invalid(c, "allOf", "must be an array");
        json_object_foreach(node, k, v) if (strcmp(k, "allOf") && strcmp(k, "$ref") &&
                                            json_object_set(dst, k, v)) return oom(c);
        if (ref && (rc = merge_ref(c, dst, ref)))
            return rc;
        size_t i;
        json_t *e;
        json_array_foreach(all, i, e)
        {
            size_t old = path_push(c, "allOf", &rc);
            path_push_i(c, i, &rc);
            if (!rc)
                rc = merge_into(c, dst, e, true);
            path_pop(c, old);
            if (rc)
                return rc;
        }
        return gen(c, dst, hint, g, never);
    }
    if (ref)
        return ref_rule(c, json_string_value(ref), g, never);
    if (any || one) {
        const char *kw = any ? "anyOf" : "oneOf";
        json_t *arr = any ? any : one;
        json_t *sib = NULL;
        if (any && one)
            return refuse(c, "oneOf", "together with anyOf");
        if (!json_is_array(arr) || !json_array_size(arr))
            return invalid(c, kw, "must be a non-empty array");
        if (json_object_get(node, "unevaluatedProperties") ||
            json_object_get(node, "unevaluatedItems"))
            return refuse(c,
                          json_object_get(node, "unevaluatedProperties") ? "unevaluatedProperties"
                                                                         : "unevaluatedItems",
                          "beside anyOf/oneOf");
        if (one && !branches_disjoint(c, one))
            return refuse(c, "oneOf", "its branches are not provably disjoint (use anyOf)");
        if (has_constraints(node, kw, NULL)) {
            const char *k;
            json_t *v;
            sib = json_object();
            if (!sib || json_array_append_new(c->keep, sib))
                return oom(c);
            json_object_foreach(node, k,
                                v) if (strcmp(k, kw) && json_object_set(sib, k, v)) return oom(c);
        }
        size_t i;
        json_t *b;
        json_array_foreach(arr, i, b)
        {
            bool nv = false;
            char name[96], h[256], idx[24];
            json_t *target = b;
            if (sib) {
                target = json_pack("{s:[O,O]}", "allOf", sib, b);
                if (!target || json_array_append_new(c->keep, target)) {
                    rc = oom(c);
                    break;
                }
            }
            snprintf(h, sizeof h, "%s-%zu", hint, i);
            snprintf(idx, sizeof idx, "%zu", i);
            if ((rc = gen_child(c, target, kw, idx, h, name, sizeof name, &nv)))
                break;
            if (nv)
                continue;
            if ((n_alts && gputs(&alts, " | ")) || gputs(&alts, name)) {
                rc = oom(c);
                break;
            }
            n_alts++;
        }
        if (!rc)
            rc = join_alts(c, g, &alts, n_alts, never);
        free(alts.p);
        return rc;
    }
    if (not ) {
        if (json_is_true(not ) || (json_is_object(not ) && !json_object_size(not ))) {
            *never = true;
            return INF_OK;
        }
        if (json_is_object(not ) && json_object_get(not, "type") &&
            !has_constraints(not, "type", NULL)) {
            if ((rc = type_mask(c, json_object_get(not, "type"), &notmask)))
                return rc;
        } else if (!json_is_false(not )) {
            bool decidable = false;
            /* not beside enum/const is checked value by value below */
            if (json_object_get(node, "enum") || json_object_get(node, "const"))
                decidable = true;
            if (!decidable)
                return refuse(c, "not", NULL);
        }
    }
    if (json_object_get(node, "enum") || json_object_get(node, "const")) {
        json_t *ev = json_object_get(node, "enum");
        json_t *cv = json_object_get(node, "const");
        json_t *vals = cv ? json_pack("[O]", cv) : json_incref(ev);
        const char *skip = cv ? "const" : "enum";
        size_t i;
        json_t *v;
        json_t *plain = json_array(); /* texts of the values written as plain literals */
        if (!plain) {
            json_decref(vals);
            return oom(c);
        }
        if (ev && !json_is_array(ev))
            return json_decref(vals), json_decref(plain), invalid(c, "enum", "must be an array");
        json_array_foreach(vals, i, v)
        {
            const char *kw = NULL;
            int r = check_value(node, v, skip, &kw);
            if (r < 0) {
                json_decref(vals);
                json_decref(plain);
                return refuse(c, kw, "beside enum/const");
            }
            if (!r)
                continue;
            if (!json_is_real(v) && !json_is_array(v) && !json_is_object(v)) {
                char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                if (!t || json_array_append_new(plain, json_stringn(t, strlen(t)))) {
                    free(t);
                    json_decref(vals);
                    free(alts.p);
                    json_decref(plain);
                    return oom(c);
                }
                free(t);
                continue;
            }
            if ((n_alts && gputs(&alts, " | ")) || put_value_literal(c, &alts, v)) {
                json_decref(vals);
                free(alts.p);
                return oom(c);
            }
            n_alts++;
        }
        json_decref(vals);
        if (json_array_size(plain)) {
            /* strings, integers and the constants: one trie, so a long enum stays cheap to
               match */
            size_t np = json_array_size(plain);
            const char **txt = malloc(np * sizeof *txt);
            if (!txt) {
                json_decref(plain);
                free(alts.p);
                return oom(c);
            }
            for (size_t j = 0; j < np; j++)
                txt[j] = json_string_value(json_array_get(plain, j));
            qsort(txt, np, sizeof *txt, cmp_cstr);
            if (n_alts)
                rc = gputs(&alts, " | ") ? oom(c) : INF_OK;
            rc = rc ? rc : put_literal_trie(c, &alts, txt, np, 0);
            n_alts++;
            free(txt);
        }
        json_decref(plain);
        rc = rc ? rc : join_alts(c, g, &alts, n_alts, never);
        free(alts.p);
        return rc;
    }
    if ((rc = type_mask(c, json_object_get(node, "type"), &mask)))
        return rc;
    if ((notmask & T_INT) && !(notmask & T_NUM) && (mask & T_NUM)) {
        /* numbers that are not integers: a non-zero fraction digit, no exponent */
        mask &= ~notmask;
        mask |= T_NUM;
    } else {
        mask &= ~notmask;
        notmask = 0;
    }
    const json_t *mo = json_object_get(node, "multipleOf");
    json_int_t mult = 0;  /* integers: a multiple of mult (> 1) */
    int frac_digits = -1; /* numbers: at most this many fraction digits (multipleOf 10^-p) */
    if (mo && (mask & (T_NUM | T_INT))) {
        struct dec d;
        if (!json_is_number(mo) || num_of(mo) <= 0 || !dec_from_json(mo, &d))
            return invalid(c, "multipleOf", "must be a number above 0");
        bool bounded = json_object_get(node, "minimum") || json_object_get(node, "maximum") ||
                       json_object_get(node, "exclusiveMinimum") ||
                       json_object_get(node, "exclusiveMaximum");
        size_t nf = strlen(d.fp);
        if (!d.fp[0] && json_int_of(mo, &mult) && mult <= 1000) {
            mask &= ~T_NUM; /* a multiple of an integer is an integer */
            if (mult > 1 && bounded)
                return refuse(c, "multipleOf", "beside minimum/maximum");
        } else if (!strcmp(d.ip, "0") && nf && d.fp[nf - 1] == '1' && strspn(d.fp, "0") == nf - 1 &&
                   nf <= 20) {
            /* 10^-p: integers all qualify, other numbers have at most p fraction digits */
            if ((mask & T_NUM) && bounded)
                return refuse(c, "multipleOf", "beside minimum/maximum");
            frac_digits = (int)nf;
            mult = 1;
        } else {
            return refuse(c, "multipleOf", "only integers up to 1000 and powers of 1/10");
        }
    }
    static const unsigned order[] = {T_NULL, T_BOOL, T_OBJ, T_ARR, T_STR, T_NUM, T_INT};
    for (size_t i = 0; i < 7 && !rc; i++) {
        unsigned t = order[i];
        struct inf__gstr e = {0};
        bool nv = false;
        if (!(mask & t) || (t == T_INT && (mask & T_NUM)) || (t == T_NUM && !(mask & T_NUM)))
            continue;
        switch (t) {
        case T_NULL:
            rc = gputs(&e, "\"null\"");
            break;
        case T_BOOL:
            rc = gputs(&e, "(\"true\" | \"false\")");
            break;
        case T_OBJ:
            if (!c->o.strict && !has_any(node, object_kw)) {
                c->used |= U_VALUE;
                rc = gputs(&e, "json-object") ? oom(c) : INF_OK;
            } else {
                rc = gen_object(c, node, hint, &e, &nv);
            }
            break;
        case T_ARR:
            if (!has_any(node, array_kw)) {
                c->used |= U_VALUE;
                rc = gputs(&e, "json-array") ? oom(c) : INF_OK;
            } else {
                rc = gen_array(c, node, hint, &e, &nv);
            }
            break;
        case T_STR:
            rc = gen_string(c, node, &e, &nv, &fmt_used);
            break;
        case T_NUM:
            if (frac_digits >= 0)
                rc =
                    gprintf(&e, "(\"-\"? (\"0\" | [1-9] [0-9]*) (\".\" [0-9]{1,%d})?)", frac_digits)
                        ? oom(c)
                        : INF_OK;
            else if (notmask & T_INT)
                rc = gen_fraction(c, node, &e);
            else
                rc = gen_number(c, node, &e, &nv);
            break;
        case T_INT:
            rc = mult > 1 ? gen_multiple(c, mult, &e) : gen_integer(c, node, &e, &nv);
            break;
        }
        if (!rc && !nv) {
            if ((n_alts && gputs(&alts, " | ")) || gput(&alts, e.p, e.len))
                rc = oom(c);
            n_alts++;
        }
        free(e.p);
    }
    if (fmt_used)
        c->used |= U_FORMAT;
    if (!rc)
        rc = join_alts(c, g, &alts, n_alts, never);
    free(alts.p);
    return rc;
}

static inf_status gen(struct js *c, json_t *node, const char *hint, struct inf__gstr *g,
                      bool *never)
{
    inf_status rc;
    const char *saved = c->base;

    *never = false;
    if (json_is_true(node)) {
        c->used |= U_VALUE;
        return gputs(g, "json-value") ? oom(c) : INF_OK;
    }
    if (json_is_false(node)) {
        *never = true;
        return INF_OK;
    }
    if (!json_is_object(node))
        return inf_error_set(c->err, INF_EINVAL,
                             "json schema: the schema at '#%s' must be an object or a boolean",
                             where(c));
    if (c->depth >= JS_MAX_DEPTH)
        return inf_error_set(c->err, INF_ELIMIT,
                             "json schema: subschemas nested deeper than %d at '#%s'", JS_MAX_DEPTH,
                             where(c));
    c->depth++;
    c->base = base_of(c, node);
    rc = gen_schema(c, node, hint, g, never);
    c->base = saved;
    c->depth--;
    return rc;
}

/* ---- the entry point ------------------------------------------------------------------------ */

static inf_status put_builtins(struct js *c, struct inf__gstr *o)
{
    const char *ws = c->o.whitespace < 0 ? " " : " ws ";
    unsigned u = c->used;
    inf_status rc = INF_OK;

    if (u & U_VALUE)
        u |= U_STRING | U_NUMBER | U_WS;
    if (u & U_NUMBER)
        u |= U_INTEGER;
    if (u & U_VALUE) {
        rc = rc ? rc
                : gputs(o, "json-value ::= json-object | json-array | json-string | json-number | "
                           "\"true\" | \"false\" | \"null\"\n");
        rc = rc ? rc
                : gprintf(o,
                          "json-object ::= "
                          "\"{\"%s(json-string%s\":\"%sjson-value%s(\",\"%sjson-string%s\":\"%"
                          "sjson-value%s)*)? \"}\"\n",
                          ws, ws, ws, ws, ws, ws, ws, ws);
        rc = rc ? rc
                : gprintf(o, "json-array ::= \"[\"%s(json-value%s(\",\"%sjson-value%s)*)? \"]\"\n",
                          ws, ws, ws, ws);
    }
    if (u & U_STRING) {
        rc = rc ? rc : gputs(o, "json-string ::= \"\\\"\" json-char* \"\\\"\"\n");
        rc = rc ? rc : gputs(o, "json-char ::= " INF__JSON_CHAR "\n");
    }
    if (u & U_NUMBER)
        rc = rc ? rc
                : gputs(o, "json-number ::= json-integer (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)?\n");
    if (u & U_INTEGER)
        rc = rc ? rc : gputs(o, "json-integer ::= \"-\"? (\"0\" | [1-9] [0-9]*)\n");
    if (u & U_KCHAR)
        rc = rc ? rc
                : gputs(o, "json-kchar ::= [^\\x22\\x5C\\x00-\\x1F] | json-kesc\n"
                           "json-kesc ::= \"\\\\\" [\"\\\\bfnrt] | "
                           "\"\\\\u00\" (\"0\" [0-7BEF] | \"1\" [0-9A-F])\n");
    if (u & U_FORMAT)
        rc = rc ? rc : gputs(o, format_rules);
    if ((u & U_WS) && c->o.whitespace >= 0) {
        if (c->o.whitespace == 0)
            rc = rc ? rc : gputs(o, "ws ::= (\" \" | \"\\n\" [ \\t]{0,20})?\n");
        else if (c->o.whitespace > INF_GRAMMAR_MAX_REPEAT)
            return inf_error_set(c->err, INF_ELIMIT,
                                 "json schema: whitespace %d above the repetition limit %d",
                                 (int)c->o.whitespace, INF_GRAMMAR_MAX_REPEAT);
        else
            rc = rc ? rc : gprintf(o, "ws ::= [ \\t\\n\\r]{0,%d}\n", (int)c->o.whitespace);
    }
    return rc ? oom(c) : INF_OK;
}

inf_status inf__json_schema_to_gbnf(const char *json, size_t len,
                                    const struct inf_json_schema_opts *opts, struct inf__gstr *out,
                                    struct inf_error *err)
{
    struct js c = {.err = err, .base = ""};
    json_error_t je;
    json_t *root = NULL;
    struct inf__gstr expr = {0};
    inf_status rc;
    bool never = false;

    if (opts)
        c.o = *opts;
    if (len > INF_GRAMMAR_MAX_SOURCE)
        return inf_error_set(err, INF_ELIMIT, "json schema: %zu bytes exceed the limit of %u bytes",
                             len, INF_GRAMMAR_MAX_SOURCE);
    root = json_loadb(json ? json : "", len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!root) {
        bool deep = strstr(je.text, "depth") != NULL;
        return inf_error_set(err, deep ? INF_ELIMIT : INF_EPARSE,
                             "json schema: line %d, column %d: %s", je.line, je.column, je.text);
    }
    c.names = json_object();
    c.refrules = json_object();
    c.bases = json_object();
    c.registry = json_object();
    c.keep = json_array();
    c.shared = json_object();
    if (!c.names || !c.refrules || !c.bases || !c.registry || !c.keep || !c.shared ||
        json_array_append_new(c.keep, root)) {
        rc = oom(&c);
        goto out;
    }
    static const char *const reserved[] = {
        "root",      "ws",          "json-value",   "json-object", "json-array", "json-string",
        "json-char", "json-number", "json-integer", "json-kchar",  "json-kesc",  NULL};
    for (size_t i = 0; reserved[i]; i++)
        json_object_set_new(c.names, reserved[i], json_true());
    if ((rc = reg_put(&c, "", root)) || (rc = index_schema(&c, root, "", 0)))
        goto out;
    if ((rc = gput(&c.path, "", 0)) != INF_OK) {
        rc = oom(&c);
        goto out;
    }
    c.base = base_of(&c, root);
    if ((rc = gen(&c, root, "root", &expr, &never)))
        goto out;
    if (never) {
        rc = inf_error_set(err, INF_EUNSUPPORTED, "json schema: the schema accepts no JSON value");
        goto out;
    }
    for (size_t i = 0; i < c.n_work; i++) {
        struct work *w = &c.work[i];
        struct inf__gstr body = {0};
        bool nv = false;
        c.base = w->base;
        c.ref_depth = w->depth;
        c.path.len = 0;
        if (gputs(&c.path, w->path)) {
            rc = oom(&c);
            goto out;
        }
        rc = gen(&c, w->node, w->name, &body, &nv);
        if (!rc && nv) {
            /* a $ref target that accepts nothing, found after rules refer to it: a rule that
               never completes ("x" r), so no text matches it */
            body.len = 0;
            rc = gprintf(&body, "\"\\x00\" %s", c.work[i].name) ? oom(&c) : INF_OK;
        }
        if (!rc)
            rc = add_rule(&c, c.work[i].name, body.p);
        free(body.p);
        if (rc)
            goto out;
    }
    /* a JSON text: whitespace around the value too */
    const char *rws = c.o.whitespace < 0 ? "" : "ws ";
    if (c.o.whitespace >= 0)
        c.used |= U_WS;
    if ((rc = gputs(out, "root ::= ")) || (rc = gputs(out, rws)) ||
        (rc = gput(out, expr.p, expr.len)) || (rc = gputs(out, c.o.whitespace < 0 ? "" : " ws")) ||
        (rc = gputs(out, "\n")) || (c.rules.len && (rc = gput(out, c.rules.p, c.rules.len)))) {
        rc = oom(&c);
        goto out;
    }
    rc = put_builtins(&c, out);
    if (!rc && out->len > INF_GRAMMAR_MAX_SOURCE)
        rc = inf_error_set(err, INF_ELIMIT, "json schema: the grammar exceeds %u bytes",
                           INF_GRAMMAR_MAX_SOURCE);
out:
    for (size_t i = 0; i < c.n_work; i++) {
        free(c.work[i].name);
        free(c.work[i].base);
        free(c.work[i].path);
    }
    free(c.work);
    free(c.rules.p);
    free(c.path.p);
    free(expr.p);
    json_decref(c.names);
    json_decref(c.refrules);
    json_decref(c.bases);
    json_decref(c.registry);
    json_decref(c.keep);
    json_decref(c.shared);
    return rc;
}
