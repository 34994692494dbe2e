/*
 * template_value.c - the chat-template value model: arena, strings, lists, insertion-ordered
 * dicts, Python truthiness / equality / ordering, str() and repr(), json.dumps, and the
 * conversion from jansson values.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template_internal.h"

#define MAX_VALUE_DEPTH 512
#define EQ_BUDGET       10000   /* nodes one inf__tpl_equal may visit */
#define EQ_BUDGET_BIG   1000000 /* nodes one inf__tpl_eq may visit */
#define HASH_BUDGET     64

/* ---- arena ------------------------------------------------------------------------------ */

void *inf__tpl_ralloc(struct tpl_render *r, size_t size)
{
    void *p = inf__arena_alloc(&r->arena, size);
    if (!p) {
        if (r->arena.limit && size <= SIZE_MAX / 2 && r->arena.used + size > r->arena.limit)
            inf__tpl_fail(r, INF_ELIMIT, "the template used more than %zu MiB of memory",
                          r->arena.limit >> 20);
        else
            inf__tpl_fail(r, INF_ENOMEM, "out of memory");
        return NULL;
    }
    if (inf__tpl_work(r, size / 64))
        return NULL;
    return p;
}

int inf__tpl_rgrow(struct tpl_render *r, void *pv, size_t n, size_t *cap, size_t elem,
                   size_t min_cap, size_t max_cap, const char *what)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : min_cap;
    if (ncap > max_cap)
        return inf__tpl_fail(r, INF_ELIMIT, "%s is too large", what);
    void *nv = inf__tpl_ralloc(r, ncap * elem);
    if (!nv)
        return -1;
    if (n)
        memcpy(nv, *(void **)pv, n * elem);
    *(void **)pv = nv;
    *cap = ncap;
    return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

size_t inf__tpl_utf8_decode(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0) {
        *cp = 0;
        return 1;
    }
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    size_t n = inf__utf8_len(u[0]);
    if (n == 1 || n > len) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t c = u[0] & (0x7F >> n);
    for (size_t k = 1; k < n; k++) {
        if ((u[k] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        c = (c << 6) | (u[k] & 0x3F);
    }
    *cp = c;
    return n;
}

bool inf__tpl_is_space(uint32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---- strings ---------------------------------------------------------------------------- */

static size_t count_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

struct tpl_str *inf__tpl_str_arena(struct inf__arena *a, const char *s, size_t len)
{
    if (len > SIZE_MAX / 2)
        return NULL;
    struct tpl_str *str = inf__arena_alloc(a, sizeof(*str) + len + 1);
    if (!str)
        return NULL;
    if (len)
        memcpy(str->data, s, len);
    str->data[len] = '\0';
    str->len = len;
    str->nchars = count_chars(s, len);
    return str;
}

/* ---- untrusted ranges ------------------------------------------------------------------ */

static int str_set_taint(struct tpl_render *r, struct tpl_str *s, const struct tpl_span *v,
                         size_t n)
{
    s->taint = NULL;
    if (n == 0)
        return 0;
    struct tpl_taint *t = inf__tpl_ralloc(r, sizeof(*t) + n * sizeof(t->v[0]));
    if (!t)
        return -1;
    t->n = n;
    memcpy(t->v, v, n * sizeof(*v));
    s->taint = t;
    r->any_taint = true;
    return 0;
}

int inf__tpl_str_taint_all(struct tpl_render *r, struct tpl_str *s)
{
    struct tpl_span all = {0, s->len};
    return str_set_taint(r, s, &all, s->len ? 1 : 0);
}

/* Append [off, off + len) to a sorted span list (the new span never starts before the last). */
static void spans_append(struct tpl_span *v, size_t *n, size_t off, size_t len)
{
    if (len == 0)
        return;
    if (*n && v[*n - 1].off + v[*n - 1].len >= off) {
        size_t end = off + len, last = v[*n - 1].off + v[*n - 1].len;
        if (end > last)
            v[*n - 1].len = end - v[*n - 1].off;
        return;
    }
    v[*n].off = off;
    v[*n].len = len;
    (*n)++;
}

int inf__tpl_str_concat_taint(struct tpl_render *r, struct tpl_str *dst, const struct tpl_str *a,
                              const struct tpl_str *b)
{
    if (r->taint_scope)
        return inf__tpl_str_taint_all(r, dst);
    size_t na = a->taint ? a->taint->n : 0, nb = b->taint ? b->taint->n : 0, n = 0;
    dst->taint = NULL;
    if (na + nb == 0)
        return 0;
    if (nb == 0 && a->len == dst->len) {
        dst->taint = a->taint;
        return 0;
    }
    struct tpl_span *v = inf__tpl_ralloc(r, (na + nb) * sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < na; i++)
        spans_append(v, &n, a->taint->v[i].off, a->taint->v[i].len);
    for (size_t i = 0; i < nb; i++)
        spans_append(v, &n, a->len + b->taint->v[i].off, b->taint->v[i].len);
    return str_set_taint(r, dst, v, n);
}

/* Whether v holds untrusted text; *budget counts the values looked at. */
static bool tainted_walk(struct tpl_val v, size_t *budget)
{
    if (*budget == 0)
        return true;
    (*budget)--;
    switch (v.type) {
    case TPL_STR:
        return v.u.s->taint != NULL;
    case TPL_LIST:
    case TPL_TUPLE:
        for (size_t i = 0; i < v.u.l->n; i++)
            if (tainted_walk(v.u.l->v[i], budget))
                return true;
        return false;
    case TPL_DICT:
    case TPL_NS:
        for (size_t i = 0; i < v.u.d->n; i++)
            if (tainted_walk(v.u.d->k[i], budget) || tainted_walk(v.u.d->v[i], budget))
                return true;
        return false;
    case TPL_FUNC:
        return v.u.fn->kind == FN_BUILTIN && tainted_walk(v.u.fn->self, budget);
    case TPL_LOOP:
        return true; /* not walked: assume the worst */
    default:
        return false;
    }
}

#define TAINT_WALK_BUDGET 4096

bool inf__tpl_tainted(struct tpl_render *r, struct tpl_val v)
{
    if (!r->any_taint)
        return false;
    if (v.type == TPL_STR)
        return v.u.s->taint != NULL;
    if (v.type != TPL_LIST && v.type != TPL_TUPLE && v.type != TPL_DICT && v.type != TPL_NS &&
        v.type != TPL_FUNC && v.type != TPL_LOOP)
        return false;
    size_t budget = TAINT_WALK_BUDGET;
    bool t = tainted_walk(v, &budget);
    r->steps += (TAINT_WALK_BUDGET - budget) / 16; /* charged; the next check enforces it */
    return t;
}

/* A new string value; strings the template makes are capped at the output limit (input
 * strings only by the memory limit). Inside a taint scope the string is untrusted. */
static int str_alloc(struct tpl_render *r, const char *s, size_t len, bool capped,
                     struct tpl_val *out)
{
    if (capped && len > r->max_output && len > 4096)
        return inf__tpl_fail(r, INF_ELIMIT, "a string of %zu bytes is over the output limit", len);
    struct tpl_str *str = inf__tpl_ralloc(r, sizeof(*str) + len + 1);
    if (!str)
        return -1;
    if (len)
        memcpy(str->data, s, len);
    str->data[len] = '\0';
    str->len = len;
    str->nchars = count_chars(s, len);
    out->type = TPL_STR;
    out->u.s = str;
    if (r->taint_scope && len)
        return inf__tpl_str_taint_all(r, str);
    return 0;
}

int inf__tpl_str_sub(struct tpl_render *r, const struct tpl_str *s, size_t off, size_t len,
                     struct tpl_val *out)
{
    unsigned scope = r->taint_scope;
    r->taint_scope = 0; /* exact: the ranges of s that the substring covers */
    int rc = str_alloc(r, s->data + off, len, true, out);
    r->taint_scope = scope;
    if (rc || !s->taint)
        return rc;
    size_t n = 0;
    struct tpl_span *v = inf__tpl_ralloc(r, s->taint->n * sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < s->taint->n; i++) {
        size_t a = s->taint->v[i].off, b = a + s->taint->v[i].len;
        if (a < off)
            a = off;
        if (b > off + len)
            b = off + len;
        if (a < b)
            spans_append(v, &n, a - off, b - a);
    }
    return str_set_taint(r, out->u.s, v, n);
}

int inf__tpl_str_buf(struct tpl_render *r, const struct tpl_buf *b, struct tpl_val *out)
{
    TPL_TRY(str_alloc(r, b->p ? b->p : "", b->len, true, out));
    if (r->taint_scope || b->n_taint == 0)
        return 0;
    return str_set_taint(r, out->u.s, b->taint, b->n_taint);
}

int inf__tpl_str_new(struct tpl_render *r, const char *s, size_t len, struct tpl_val *out)
{
    return str_alloc(r, s, len, true, out);
}

int inf__tpl_str_cstr(struct tpl_render *r, const char *s, struct tpl_val *out)
{
    return inf__tpl_str_new(r, s, strlen(s), out);
}

size_t *inf__tpl_str_offsets(struct tpl_render *r, const struct tpl_str *s)
{
    size_t *off = inf__tpl_ralloc(r, (s->nchars + 1) * sizeof(size_t));
    if (!off)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < s->len; i++)
        if (((unsigned char)s->data[i] & 0xC0) != 0x80)
            off[k++] = i;
    off[k] = s->len;
    return off;
}

/* ---- lists and dicts -------------------------------------------------------------------- */

/* Room for cap values in the render arena; NULL past max_cap ("<what> is too large") or when
 * the arena fails. */
static struct tpl_val *vals_new(struct tpl_render *r, size_t cap, size_t max_cap, const char *what)
{
    if (cap > max_cap) {
        inf__tpl_fail(r, INF_ELIMIT, "%s is too large", what);
        return NULL;
    }
    return inf__tpl_ralloc(r, cap * sizeof(struct tpl_val));
}

struct tpl_list *inf__tpl_list_new(struct tpl_render *r, size_t cap)
{
    struct tpl_list *l = inf__tpl_ralloc(r, sizeof(*l));
    if (!l)
        return NULL;
    if (cap) {
        l->v = vals_new(r, cap, SIZE_MAX / sizeof(struct tpl_val) / 2, "list");
        if (!l->v)
            return NULL;
        l->cap = cap;
    }
    return l;
}

int inf__tpl_list_push(struct tpl_render *r, struct tpl_list *l, struct tpl_val v)
{
    TPL_TRY(inf__tpl_rgrow(r, &l->v, l->n, &l->cap, sizeof(*l->v), 4,
                           SIZE_MAX / sizeof(struct tpl_val) / 2, "list"));
    l->v[l->n++] = v;
    return 0;
}

int inf__tpl_list_val(struct tpl_render *r, size_t cap, bool tuple, struct tpl_val *out)
{
    struct tpl_list *l = inf__tpl_list_new(r, cap);
    if (!l)
        return -1;
    out->type = tuple ? TPL_TUPLE : TPL_LIST;
    out->u.l = l;
    return 0;
}

struct tpl_dict *inf__tpl_dict_new(struct tpl_render *r, size_t cap)
{
    struct tpl_dict *d = inf__tpl_ralloc(r, sizeof(*d));
    if (!d)
        return NULL;
    if (cap) {
        d->k = vals_new(r, cap, SIZE_MAX / sizeof(struct tpl_val) / 4, "dict");
        d->v = vals_new(r, cap, SIZE_MAX / sizeof(struct tpl_val) / 4, "dict");
        if (!d->k || !d->v)
            return NULL;
        d->cap = cap;
    }
    return d;
}

/* Past its budget (shared sub-structures can hold exponentially many paths) a tuple counts as
 * hashable: hashing and equality are budgeted too, so nothing breaks. */
static bool hashable_budget(struct tpl_val v, int *budget)
{
    switch (v.type) {
    case TPL_NONE:
    case TPL_BOOL:
    case TPL_INT:
    case TPL_FLOAT:
    case TPL_STR:
        return true;
    case TPL_TUPLE:
        for (size_t i = 0; i < v.u.l->n && --*budget > 0; i++)
            if (!hashable_budget(v.u.l->v[i], budget))
                return false;
        return true;
    default:
        return false;
    }
}

bool inf__tpl_hashable(struct tpl_val v)
{
    int budget = 10000;
    return hashable_budget(v, &budget);
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_val(struct tpl_val v, int *budget)
{
    switch (v.type) {
    case TPL_BOOL:
        return mix((uint64_t)v.u.b);
    case TPL_INT:
        return mix((uint64_t)v.u.i);
    case TPL_FLOAT:
        if (v.u.f == floor(v.u.f) && fabs(v.u.f) < 9.2e18)
            return mix((uint64_t)(int64_t)v.u.f);
        {
            uint64_t bits;
            memcpy(&bits, &v.u.f, sizeof(bits));
            return mix(bits);
        }
    case TPL_STR: {
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < v.u.s->len; i++) {
            h ^= (unsigned char)v.u.s->data[i];
            h *= 1099511628211ull;
        }
        return h;
    }
    case TPL_TUPLE: {
        uint64_t h = 0x345678;
        for (size_t i = 0; i < v.u.l->n && --*budget > 0; i++)
            h = mix(h ^ hash_val(v.u.l->v[i], budget)) + i;
        return h;
    }
    default:
        return 7;
    }
}

static void index_insert(struct tpl_dict *d, size_t entry)
{
    int budget = HASH_BUDGET;
    size_t mask = d->idx_cap - 1, h = (size_t)hash_val(d->k[entry], &budget) & mask;
    while (d->idx[h])
        h = (h + 1) & mask;
    d->idx[h] = (uint32_t)(entry + 1);
}

static int index_rebuild(struct tpl_render *r, struct tpl_dict *d, size_t want)
{
    size_t cap = 16;
    while (cap < want * 2)
        cap *= 2;
    if (cap > UINT32_MAX)
        return inf__tpl_fail(r, INF_ELIMIT, "dict is too large");
    uint32_t *idx = inf__tpl_ralloc(r, cap * sizeof(*idx));
    if (!idx)
        return -1;
    d->idx = idx;
    d->idx_cap = cap;
    for (size_t i = 0; i < d->n; i++)
        index_insert(d, i);
    return 0;
}

static struct tpl_val *dict_find(const struct tpl_dict *d, struct tpl_val key, size_t *pos)
{
    if (d->idx) {
        int budget = HASH_BUDGET;
        size_t mask = d->idx_cap - 1, h = (size_t)hash_val(key, &budget) & mask;
        while (d->idx[h]) {
            size_t e = d->idx[h] - 1;
            if (inf__tpl_equal(d->k[e], key)) {
                if (pos)
                    *pos = e;
                return &d->v[e];
            }
            h = (h + 1) & mask;
        }
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        if (inf__tpl_equal(d->k[i], key)) {
            if (pos)
                *pos = i;
            return &d->v[i];
        }
    }
    return NULL;
}

struct tpl_val *inf__tpl_dict_get(const struct tpl_dict *d, struct tpl_val key)
{
    return dict_find(d, key, NULL);
}

struct tpl_val *inf__tpl_dict_get_str(const struct tpl_dict *d, const char *key, size_t len)
{
    if (!d->idx) {
        for (size_t i = 0; i < d->n; i++) {
            const struct tpl_val *k = &d->k[i];
            if (k->type == TPL_STR && k->u.s->len == len && memcmp(k->u.s->data, key, len) == 0)
                return &d->v[i];
        }
        return NULL;
    }
    /* a temporary key on the stack: only read */
    union {
        struct tpl_str s;
        char buf[sizeof(struct tpl_str) + 256];
    } tmp;
    if (len >= 256) {
        for (size_t i = 0; i < d->n; i++) {
            const struct tpl_val *k = &d->k[i];
            if (k->type == TPL_STR && k->u.s->len == len && memcmp(k->u.s->data, key, len) == 0)
                return &d->v[i];
        }
        return NULL;
    }
    tmp.s.len = len;
    tmp.s.nchars = 0;
    memcpy(tmp.s.data, key, len);
    tmp.s.data[len] = '\0';
    struct tpl_val kv = {.type = TPL_STR};
    kv.u.s = &tmp.s;
    return dict_find(d, kv, NULL);
}

int inf__tpl_dict_set(struct tpl_render *r, struct tpl_dict *d, struct tpl_val key,
                      struct tpl_val v)
{
    if (!inf__tpl_hashable(key))
        return inf__tpl_fail(r, INF_ETYPE, "unhashable type: '%s'", inf__tpl_type_name(key));
    struct tpl_val *slot = dict_find(d, key, NULL);
    if (slot) {
        *slot = v;
        return 0;
    }
    /* keys and values grow in step: the values get the room the keys reached */
    size_t kcap = d->cap, vcap = d->cap;
    TPL_TRY(inf__tpl_rgrow(r, &d->k, d->n, &kcap, sizeof(*d->k), 4, UINT32_MAX / 2, "dict"));
    TPL_TRY(inf__tpl_rgrow(r, &d->v, d->n, &vcap, sizeof(*d->v), 4, UINT32_MAX / 2, "dict"));
    d->cap = kcap;
    d->k[d->n] = key;
    d->v[d->n] = v;
    d->n++;
    if (d->n > 8) {
        if (!d->idx || d->n * 2 > d->idx_cap)
            return index_rebuild(r, d, d->cap);
        index_insert(d, d->n - 1);
    }
    return 0;
}

bool inf__tpl_dict_del(struct tpl_dict *d, struct tpl_val key)
{
    size_t pos;
    if (!dict_find(d, key, &pos))
        return false;
    memmove(d->k + pos, d->k + pos + 1, (d->n - pos - 1) * sizeof(*d->k));
    memmove(d->v + pos, d->v + pos + 1, (d->n - pos - 1) * sizeof(*d->v));
    d->n--;
    if (d->idx) {
        memset(d->idx, 0, d->idx_cap * sizeof(*d->idx));
        for (size_t i = 0; i < d->n; i++)
            index_insert(d, i);
    }
    return true;
}

/* ---- predicates, equality, ordering ----------------------------------------------------- */

const char *inf__tpl_type_name(struct tpl_val v)
{
    switch (v.type) {
    case TPL_UNDEF:
        return "Undefined";
    case TPL_NONE:
        return "NoneType";
    case TPL_BOOL:
        return "bool";
    case TPL_INT:
        return "int";
    case TPL_FLOAT:
        return "float";
    case TPL_STR:
        return "str";
    case TPL_LIST:
        return "list";
    case TPL_TUPLE:
        return "tuple";
    case TPL_DICT:
        return "dict";
    case TPL_NS:
        return "Namespace";
    case TPL_FUNC:
        return v.u.fn->kind == FN_MACRO ? "Macro" : "function";
    case TPL_LOOP:
        return "LoopContext";
    }
    return "object";
}

bool inf__tpl_truthy(struct tpl_val v)
{
    switch (v.type) {
    case TPL_UNDEF:
    case TPL_NONE:
        return false;
    case TPL_BOOL:
        return v.u.b;
    case TPL_INT:
        return v.u.i != 0;
    case TPL_FLOAT:
        return v.u.f != 0.0;
    case TPL_STR:
        return v.u.s->len != 0;
    case TPL_LIST:
    case TPL_TUPLE:
        return v.u.l->n != 0;
    case TPL_DICT:
        return v.u.d->n != 0;
    default:
        return true;
    }
}

bool inf__tpl_is_seq(struct tpl_val v)
{
    return v.type == TPL_LIST || v.type == TPL_TUPLE;
}

static bool is_num(struct tpl_val v)
{
    return v.type == TPL_BOOL || v.type == TPL_INT || v.type == TPL_FLOAT;
}

static int64_t as_i64(struct tpl_val v)
{
    return v.type == TPL_BOOL ? (int64_t)v.u.b : v.u.i;
}

/* Compare an integer with a float exactly: -1, 0, 1. */
static int cmp_int_float(int64_t i, double f)
{
    if (f != f)
        return 2; /* unordered */
    if (f >= 9223372036854775808.0)
        return -1;
    if (f < -9223372036854775808.0)
        return 1;
    double fl = floor(f);
    int64_t fi = (int64_t)fl;
    if (i < fi)
        return -1;
    if (i > fi)
        return 1;
    return f > fl ? -1 : 0;
}

/* -1/0/1 for numbers, 2 when unordered (NaN). */
static int cmp_num(struct tpl_val a, struct tpl_val b)
{
    if (a.type != TPL_FLOAT && b.type != TPL_FLOAT) {
        int64_t x = as_i64(a), y = as_i64(b);
        return x < y ? -1 : x > y;
    }
    if (a.type == TPL_FLOAT && b.type == TPL_FLOAT) {
        if (a.u.f != a.u.f || b.u.f != b.u.f)
            return 2;
        return a.u.f < b.u.f ? -1 : a.u.f > b.u.f;
    }
    if (a.type == TPL_FLOAT) {
        int c = cmp_int_float(as_i64(b), a.u.f);
        return c == 2 ? 2 : -c;
    }
    return cmp_int_float(as_i64(a), b.u.f);
}

static bool equal_depth(struct tpl_val a, struct tpl_val b, int depth, long *budget)
{
    if (depth > MAX_VALUE_DEPTH || --*budget <= 0)
        return false;
    if (is_num(a) && is_num(b))
        return cmp_num(a, b) == 0;
    if (a.type != b.type)
        return false;
    switch (a.type) {
    case TPL_UNDEF:
    case TPL_NONE:
        return true;
    case TPL_STR:
        return a.u.s == b.u.s ||
               (a.u.s->len == b.u.s->len && memcmp(a.u.s->data, b.u.s->data, a.u.s->len) == 0);
    case TPL_LIST:
    case TPL_TUPLE:
        if (a.u.l == b.u.l)
            return true;
        if (a.u.l->n != b.u.l->n)
            return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!equal_depth(a.u.l->v[i], b.u.l->v[i], depth + 1, budget))
                return false;
        return true;
    case TPL_DICT:
    case TPL_NS:
        if (a.u.d == b.u.d)
            return true;
        if (a.type == TPL_NS || a.u.d->n != b.u.d->n)
            return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            const struct tpl_val *o = dict_find(b.u.d, a.u.d->k[i], NULL);
            if (!o || !equal_depth(a.u.d->v[i], *o, depth + 1, budget))
                return false;
        }
        return true;
    case TPL_FUNC:
        return a.u.fn == b.u.fn;
    case TPL_LOOP:
        return a.u.loop == b.u.loop;
    default:
        return false;
    }
}

bool inf__tpl_equal(struct tpl_val a, struct tpl_val b)
{
    long budget = EQ_BUDGET;
    return equal_depth(a, b, 0, &budget);
}

int inf__tpl_eq(struct tpl_render *r, struct tpl_val a, struct tpl_val b, bool *out)
{
    long budget = EQ_BUDGET_BIG;
    *out = equal_depth(a, b, 0, &budget);
    return inf__tpl_work(r, (uint64_t)(EQ_BUDGET_BIG - budget) / 16);
}

static int compare_depth(struct tpl_render *r, struct tpl_val a, struct tpl_val b, int *res,
                         const char *op, int depth)
{
    if (depth > MAX_VALUE_DEPTH)
        return inf__tpl_fail(r, INF_ELIMIT, "values nested too deeply to compare");
    if (a.type == TPL_UNDEF || b.type == TPL_UNDEF) {
        const char *name = a.type == TPL_UNDEF ? a.u.undef_name : b.u.undef_name;
        return inf__tpl_fail(r, INF_ETYPE, "'%s' is undefined", name ? name : "value");
    }
    if (is_num(a) && is_num(b)) {
        int c = cmp_num(a, b);
        *res = c == 2 ? 2 : c;
        return 0;
    }
    if (a.type == TPL_STR && b.type == TPL_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->data, b.u.s->data, n);
        *res = c < 0 ? -1 : c > 0 ? 1 : a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len;
        return 0;
    }
    if ((a.type == TPL_LIST || a.type == TPL_TUPLE) && a.type == b.type) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            bool same;
            TPL_TRY(inf__tpl_eq(r, a.u.l->v[i], b.u.l->v[i], &same));
            if (same)
                continue;
            return compare_depth(r, a.u.l->v[i], b.u.l->v[i], res, op, depth + 1);
        }
        *res = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return 0;
    }
    return inf__tpl_fail(r, INF_ETYPE, "'%s' not supported between instances of '%s' and '%s'", op,
                         inf__tpl_type_name(a), inf__tpl_type_name(b));
}

int inf__tpl_compare(struct tpl_render *r, struct tpl_val a, struct tpl_val b, const char *op,
                     int *res)
{
    return compare_depth(r, a, b, res, op ? op : "<", 0);
}

/* ---- buffers ---------------------------------------------------------------------------- */

int inf__tpl_buf_add(struct tpl_render *r, struct tpl_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (n > r->max_output || b->len > r->max_output - n)
        return inf__tpl_fail(r, INF_ELIMIT, "the output is larger than the limit of %zu bytes",
                             r->max_output);
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        if (r->arena.limit && r->buf_bytes + (ncap - b->cap) + r->arena.used > r->arena.limit)
            return inf__tpl_fail(r, INF_ELIMIT, "the template used more than %zu MiB of memory",
                                 r->arena.limit >> 20);
        char *np = realloc(b->p, ncap);
        if (!np)
            return inf__tpl_fail(r, INF_ENOMEM, "out of memory");
        r->buf_bytes += ncap - b->cap;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int inf__tpl_buf_addc(struct tpl_render *r, struct tpl_buf *b, char c)
{
    return inf__tpl_buf_add(r, b, &c, 1);
}

/* Mark b[off, off + len) untrusted; off is at or after the start of the last range. */
static int buf_taint(struct tpl_render *r, struct tpl_buf *b, size_t off, size_t len)
{
    if (len == 0)
        return 0;
    if (b->n_taint && b->taint[b->n_taint - 1].off + b->taint[b->n_taint - 1].len >= off) {
        spans_append(b->taint, &b->n_taint, off, len);
        return 0;
    }
    if (b->n_taint == b->cap_taint) {
        size_t ncap = b->cap_taint ? b->cap_taint * 2 : 16;
        size_t grow = (ncap - b->cap_taint) * sizeof(*b->taint);
        if (r->arena.limit && r->buf_bytes + grow + r->arena.used > r->arena.limit)
            return inf__tpl_fail(r, INF_ELIMIT, "the template used more than %zu MiB of memory",
                                 r->arena.limit >> 20);
        struct tpl_span *nv = realloc(b->taint, ncap * sizeof(*nv));
        if (!nv)
            return inf__tpl_fail(r, INF_ENOMEM, "out of memory");
        r->buf_bytes += grow;
        b->taint = nv;
        b->cap_taint = ncap;
    }
    spans_append(b->taint, &b->n_taint, off, len);
    return 0;
}

int inf__tpl_buf_add_str(struct tpl_render *r, struct tpl_buf *b, const struct tpl_str *s)
{
    size_t start = b->len;
    TPL_TRY(inf__tpl_buf_add(r, b, s->data, s->len));
    for (size_t i = 0; s->taint && i < s->taint->n; i++)
        TPL_TRY(buf_taint(r, b, start + s->taint->v[i].off, s->taint->v[i].len));
    return 0;
}

int inf__tpl_buf_taint_from(struct tpl_render *r, struct tpl_buf *b, size_t start)
{
    return start < b->len ? buf_taint(r, b, start, b->len - start) : 0;
}

void inf__tpl_buf_free(struct tpl_buf *b)
{
    free(b->p);
    free(b->taint);
    b->p = NULL;
    b->taint = NULL;
    b->len = b->cap = 0;
    b->n_taint = b->cap_taint = 0;
}

static int buf_addf(struct tpl_render *r, struct tpl_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int buf_addf(struct tpl_render *r, struct tpl_buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return inf__tpl_fail(r, INF_EINTERNAL, "formatting failed");
    return inf__tpl_buf_add(r, b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* ---- str() / repr() --------------------------------------------------------------------- */

void inf__tpl_fmt_float(double f, char *buf, size_t size)
{
    if (f != f) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, size, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        snprintf(buf, size, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    /* tmp: [-]d[.ddd]e[+-]xx */
    char digits[32];
    size_t nd = 0;
    const char *q = tmp;
    bool neg = false;
    if (*q == '-') {
        neg = true;
        q++;
    }
    while (*q && *q != 'e') {
        if (*q >= '0' && *q <= '9' && nd < sizeof(digits) - 1)
            digits[nd++] = *q;
        q++;
    }
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int e = *q == 'e' ? atoi(q + 1) : 0;
    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int k = 0; k <= e; k++)
                out[o++] = (size_t)k < nd ? digits[k] : '0';
            out[o++] = '.';
            if ((size_t)(e + 1) < nd) {
                for (size_t k = (size_t)e + 1; k < nd; k++)
                    out[o++] = digits[k];
            } else {
                out[o++] = '0';
            }
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int k = 0; k < -e - 1; k++)
                out[o++] = '0';
            for (size_t k = 0; k < nd; k++)
                out[o++] = digits[k];
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t k = 1; k < nd; k++)
                out[o++] = digits[k];
        }
        snprintf(out + o, sizeof(out) - o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    snprintf(buf, size, "%s", out);
}

/* Is code point cp printable in Python's sense (approximately: not a control, separator or
 * format character)? */
static bool py_printable(uint32_t cp)
{
    if (cp < 0x20 || cp == 0x7F)
        return false;
    if (cp >= 0x80 && cp <= 0xA0)
        return false;
    if (cp == 0xAD || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) ||
        (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x2064) ||
        (cp >= 0x2066 && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF ||
        (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0xF0000 ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0x61C || cp == 0x180E)
        return false;
    return true;
}

static int write_str_repr(struct tpl_render *r, struct tpl_buf *b, const struct tpl_str *s)
{
    bool has_sq = memchr(s->data, '\'', s->len) != NULL;
    bool has_dq = memchr(s->data, '"', s->len) != NULL;
    char quote = has_sq && !has_dq ? '"' : '\'';
    TPL_TRY(inf__tpl_buf_addc(r, b, quote));
    size_t run = 0; /* start of a run of bytes copied as they are */
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        size_t n = inf__tpl_utf8_decode(s->data + i, s->len - i, &cp);
        char esc[16];
        const char *e = NULL;
        if (cp == (uint32_t)quote || cp == '\\') {
            esc[0] = '\\';
            esc[1] = (char)cp;
            esc[2] = '\0';
            e = esc;
        } else if (cp == '\n') {
            e = "\\n";
        } else if (cp == '\r') {
            e = "\\r";
        } else if (cp == '\t') {
            e = "\\t";
        } else if (!py_printable(cp)) {
            if (cp < 0x100)
                snprintf(esc, sizeof(esc), "\\x%02x", cp);
            else if (cp < 0x10000)
                snprintf(esc, sizeof(esc), "\\u%04x", cp);
            else
                snprintf(esc, sizeof(esc), "\\U%08x", cp);
            e = esc;
        }
        if (e) {
            TPL_TRY(inf__tpl_buf_add(r, b, s->data + run, i - run));
            TPL_TRY(inf__tpl_buf_add(r, b, e, strlen(e)));
            run = i + n;
        }
        i += n;
    }
    TPL_TRY(inf__tpl_buf_add(r, b, s->data + run, s->len - run));
    return inf__tpl_buf_addc(r, b, quote);
}

static int write_any(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v, bool repr,
                     int depth);

static int write_items(struct tpl_render *r, struct tpl_buf *b, const struct tpl_dict *d, int depth)
{
    TPL_TRY(inf__tpl_buf_addc(r, b, '{'));
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            TPL_TRY(inf__tpl_buf_add(r, b, ", ", 2));
        TPL_TRY(write_any(r, b, d->k[i], true, depth + 1));
        TPL_TRY(inf__tpl_buf_add(r, b, ": ", 2));
        TPL_TRY(write_any(r, b, d->v[i], true, depth + 1));
    }
    return inf__tpl_buf_addc(r, b, '}');
}

static int write_any(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v, bool repr,
                     int depth)
{
    char tmp[64];
    if (depth > MAX_VALUE_DEPTH)
        return inf__tpl_fail(r, INF_ELIMIT, "value nested too deeply to print");
    switch (v.type) {
    case TPL_UNDEF:
        return repr ? inf__tpl_buf_add(r, b, "Undefined", 9) : 0;
    case TPL_NONE:
        return inf__tpl_buf_add(r, b, "None", 4);
    case TPL_BOOL:
        return v.u.b ? inf__tpl_buf_add(r, b, "True", 4) : inf__tpl_buf_add(r, b, "False", 5);
    case TPL_INT:
        return buf_addf(r, b, "%lld", (long long)v.u.i);
    case TPL_FLOAT:
        inf__tpl_fmt_float(v.u.f, tmp, sizeof(tmp));
        return inf__tpl_buf_add(r, b, tmp, strlen(tmp));
    case TPL_STR:
        if (repr) {
            size_t start = b->len;
            TPL_TRY(write_str_repr(r, b, v.u.s));
            return v.u.s->taint ? inf__tpl_buf_taint_from(r, b, start) : 0;
        }
        return inf__tpl_buf_add_str(r, b, v.u.s);
    case TPL_LIST:
    case TPL_TUPLE: {
        bool tuple = v.type == TPL_TUPLE;
        TPL_TRY(inf__tpl_buf_addc(r, b, tuple ? '(' : '['));
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                TPL_TRY(inf__tpl_buf_add(r, b, ", ", 2));
            TPL_TRY(write_any(r, b, v.u.l->v[i], true, depth + 1));
        }
        if (tuple && v.u.l->n == 1)
            TPL_TRY(inf__tpl_buf_addc(r, b, ','));
        return inf__tpl_buf_addc(r, b, tuple ? ')' : ']');
    }
    case TPL_DICT:
        return write_items(r, b, v.u.d, depth);
    case TPL_NS:
        TPL_TRY(inf__tpl_buf_add(r, b, "<Namespace ", 11));
        TPL_TRY(write_items(r, b, v.u.d, depth));
        return inf__tpl_buf_addc(r, b, '>');
    case TPL_FUNC:
        if (v.u.fn->kind == FN_MACRO)
            return buf_addf(r, b, "<Macro '%.64s'>", v.u.fn->name ? v.u.fn->name : "caller");
        return buf_addf(r, b, "<built-in function %.64s>", v.u.fn->name ? v.u.fn->name : "?");
    case TPL_LOOP:
        return buf_addf(r, b, "<LoopContext %lld/%lld>", (long long)v.u.loop->index0 + 1,
                        (long long)v.u.loop->length);
    }
    return 0;
}

int inf__tpl_write_str(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v)
{
    return write_any(r, b, v, false, 0);
}

int inf__tpl_write_repr(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v)
{
    return write_any(r, b, v, true, 0);
}

int inf__tpl_to_str(struct tpl_render *r, struct tpl_val v, struct tpl_val *out)
{
    char tmp[64];
    switch (v.type) {
    case TPL_STR:
        *out = v;
        return 0;
    case TPL_UNDEF:
        return inf__tpl_str_new(r, "", 0, out);
    case TPL_INT:
        snprintf(tmp, sizeof(tmp), "%lld", (long long)v.u.i);
        return inf__tpl_str_cstr(r, tmp, out);
    case TPL_FLOAT:
        inf__tpl_fmt_float(v.u.f, tmp, sizeof(tmp));
        return inf__tpl_str_cstr(r, tmp, out);
    default: {
        struct tpl_buf b = {0};
        int rc = write_any(r, &b, v, false, 0);
        if (rc == 0)
            rc = inf__tpl_str_buf(r, &b, out);
        inf__tpl_buf_free(&b);
        return rc;
    }
    }
}

/* ---- json.dumps ------------------------------------------------------------------------- */

static int json_str_out(struct tpl_render *r, struct tpl_buf *b, const char *s, size_t len,
                        bool ensure_ascii)
{
    TPL_TRY(inf__tpl_buf_addc(r, b, '"'));
    size_t run = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = inf__tpl_utf8_decode(s + i, len - i, &cp);
        char esc[16];
        const char *e = NULL;
        switch (cp) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        default:
            if (cp < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", cp);
                e = esc;
            } else if (ensure_ascii && cp >= 0x7F) {
                if (cp == 0x7F) {
                    break; /* Python keeps DEL as it is */
                } else if (cp < 0x10000) {
                    snprintf(esc, sizeof(esc), "\\u%04x", cp);
                } else {
                    uint32_t v = cp - 0x10000;
                    snprintf(esc, sizeof(esc), "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                             0xDC00 + (v & 0x3FF));
                }
                e = esc;
            }
        }
        if (e) {
            TPL_TRY(inf__tpl_buf_add(r, b, s + run, i - run));
            TPL_TRY(inf__tpl_buf_add(r, b, e, strlen(e)));
            run = i + n;
        }
        i += n;
    }
    TPL_TRY(inf__tpl_buf_add(r, b, s + run, len - run));
    return inf__tpl_buf_addc(r, b, '"');
}

static int json_newline(struct tpl_render *r, struct tpl_buf *b, const struct tpl_json_opts *o,
                        int level)
{
    TPL_TRY(inf__tpl_buf_addc(r, b, '\n'));
    for (int k = 0; k < level; k++)
        TPL_TRY(inf__tpl_buf_add(r, b, o->indent, o->indent_len));
    return 0;
}

static int json_value(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v,
                      const struct tpl_json_opts *o, int level);

/* A dict key as json.dumps writes it (keys that are not strings are converted). */
static int json_key(struct tpl_render *r, struct tpl_buf *b, struct tpl_val k,
                    const struct tpl_json_opts *o)
{
    char tmp[64];
    switch (k.type) {
    case TPL_STR: {
        size_t start = b->len;
        TPL_TRY(json_str_out(r, b, k.u.s->data, k.u.s->len, o->ensure_ascii));
        return k.u.s->taint ? inf__tpl_buf_taint_from(r, b, start) : 0;
    }
    case TPL_BOOL:
        return json_str_out(r, b, k.u.b ? "true" : "false", k.u.b ? 4 : 5, false);
    case TPL_NONE:
        return json_str_out(r, b, "null", 4, false);
    case TPL_INT:
        snprintf(tmp, sizeof(tmp), "%lld", (long long)k.u.i);
        return json_str_out(r, b, tmp, strlen(tmp), false);
    case TPL_FLOAT:
        if (k.u.f != k.u.f)
            snprintf(tmp, sizeof(tmp), "NaN");
        else if (isinf(k.u.f))
            snprintf(tmp, sizeof(tmp), k.u.f < 0 ? "-Infinity" : "Infinity");
        else
            inf__tpl_fmt_float(k.u.f, tmp, sizeof(tmp));
        return json_str_out(r, b, tmp, strlen(tmp), false);
    default:
        return inf__tpl_fail(r, INF_ETYPE, "keys must be str, int, float, bool or None, not %s",
                             inf__tpl_type_name(k));
    }
}

static int json_value(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v,
                      const struct tpl_json_opts *o, int level)
{
    char tmp[64];
    if (level > MAX_VALUE_DEPTH)
        return inf__tpl_fail(r, INF_ELIMIT, "value nested too deeply for tojson");
    switch (v.type) {
    case TPL_NONE:
        return inf__tpl_buf_add(r, b, "null", 4);
    case TPL_BOOL:
        return v.u.b ? inf__tpl_buf_add(r, b, "true", 4) : inf__tpl_buf_add(r, b, "false", 5);
    case TPL_INT:
        return buf_addf(r, b, "%lld", (long long)v.u.i);
    case TPL_FLOAT:
        if (v.u.f != v.u.f)
            return inf__tpl_buf_add(r, b, "NaN", 3);
        if (isinf(v.u.f))
            return v.u.f < 0 ? inf__tpl_buf_add(r, b, "-Infinity", 9)
                             : inf__tpl_buf_add(r, b, "Infinity", 8);
        inf__tpl_fmt_float(v.u.f, tmp, sizeof(tmp));
        return inf__tpl_buf_add(r, b, tmp, strlen(tmp));
    case TPL_STR: {
        size_t start = b->len;
        TPL_TRY(json_str_out(r, b, v.u.s->data, v.u.s->len, o->ensure_ascii));
        return v.u.s->taint ? inf__tpl_buf_taint_from(r, b, start) : 0;
    }
    case TPL_LIST:
    case TPL_TUPLE: {
        const struct tpl_list *l = v.u.l;
        if (l->n == 0)
            return inf__tpl_buf_add(r, b, "[]", 2);
        TPL_TRY(inf__tpl_buf_addc(r, b, '['));
        for (size_t i = 0; i < l->n; i++) {
            if (i)
                TPL_TRY(inf__tpl_buf_add(r, b, o->item_sep, strlen(o->item_sep)));
            if (o->indent)
                TPL_TRY(json_newline(r, b, o, level + 1));
            TPL_TRY(json_value(r, b, l->v[i], o, level + 1));
        }
        if (o->indent)
            TPL_TRY(json_newline(r, b, o, level));
        return inf__tpl_buf_addc(r, b, ']');
    }
    case TPL_DICT: {
        const struct tpl_dict *d = v.u.d;
        if (d->n == 0)
            return inf__tpl_buf_add(r, b, "{}", 2);
        size_t *order = inf__tpl_ralloc(r, d->n * sizeof(size_t));
        if (!order)
            return -1;
        for (size_t i = 0; i < d->n; i++)
            order[i] = i;
        if (o->sort_keys) {
            /* insertion sort: stable, dicts are small */
            for (size_t i = 1; i < d->n; i++) {
                size_t cur = order[i], j = i;
                while (j > 0) {
                    int c;
                    TPL_TRY(inf__tpl_compare(r, d->k[order[j - 1]], d->k[cur], "<", &c));
                    if (c <= 0)
                        break;
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = cur;
            }
        }
        TPL_TRY(inf__tpl_buf_addc(r, b, '{'));
        for (size_t i = 0; i < d->n; i++) {
            if (i)
                TPL_TRY(inf__tpl_buf_add(r, b, o->item_sep, strlen(o->item_sep)));
            if (o->indent)
                TPL_TRY(json_newline(r, b, o, level + 1));
            TPL_TRY(json_key(r, b, d->k[order[i]], o));
            TPL_TRY(inf__tpl_buf_add(r, b, o->key_sep, strlen(o->key_sep)));
            TPL_TRY(json_value(r, b, d->v[order[i]], o, level + 1));
        }
        if (o->indent)
            TPL_TRY(json_newline(r, b, o, level));
        return inf__tpl_buf_addc(r, b, '}');
    }
    default:
        return inf__tpl_fail(r, INF_ETYPE, "object of type %s is not JSON serializable",
                             inf__tpl_type_name(v));
    }
}

int inf__tpl_write_json(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v,
                        const struct tpl_json_opts *o)
{
    return json_value(r, b, v, o, 0);
}

/* ---- from jansson ----------------------------------------------------------------------- */

static int from_json(struct tpl_render *r, const json_t *j, struct tpl_val *out, int depth)
{
    if (depth > 1000)
        return inf__tpl_fail(r, INF_ELIMIT, "input JSON nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        struct tpl_dict *d = inf__tpl_dict_new(r, json_object_size(j));
        const char *key;
        json_t *val;
        if (!d)
            return -1;
        json_object_foreach((json_t *)j, key, val)
        {
            struct tpl_val k, v;
            TPL_TRY(str_alloc(r, key, strlen(key), false, &k));
            TPL_TRY(from_json(r, val, &v, depth + 1));
            TPL_TRY(inf__tpl_dict_set(r, d, k, v));
        }
        out->type = TPL_DICT;
        out->u.d = d;
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        struct tpl_list *l = inf__tpl_list_new(r, n);
        if (!l)
            return -1;
        for (size_t i = 0; i < n; i++) {
            struct tpl_val v;
            TPL_TRY(from_json(r, json_array_get(j, i), &v, depth + 1));
            l->v[l->n++] = v;
        }
        out->type = TPL_LIST;
        out->u.l = l;
        return 0;
    }
    case JSON_STRING:
        return str_alloc(r, json_string_value(j), json_string_length(j), false, out);
    case JSON_INTEGER:
        *out = tpl_int((int64_t)json_integer_value(j));
        return 0;
    case JSON_REAL:
        *out = tpl_float(json_real_value(j));
        return 0;
    case JSON_TRUE:
        *out = tpl_bool(true);
        return 0;
    case JSON_FALSE:
        *out = tpl_bool(false);
        return 0;
    case JSON_NULL:
    default:
        *out = tpl_none();
        return 0;
    }
}

int inf__tpl_from_json(struct tpl_render *r, const struct json_t *j, bool untrusted,
                       struct tpl_val *out)
{
    if (untrusted)
        r->taint_scope++; /* every string made from it is untrusted */
    int rc = from_json(r, j, out, 0);
    if (untrusted)
        r->taint_scope--;
    return rc;
}
