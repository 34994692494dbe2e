/*
 * template_builtins.c - what chat templates call: Jinja2 filters and tests, the methods of
 * Python's str, list and dict, the loop object, and the global functions (range, namespace,
 * dict, raise_exception, strftime_now).
 *
 * Semantics follow Python Jinja2 3.1 (jinja2/filters.py, jinja2/tests.py) and CPython's str
 * methods. Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template/template_internal.h"

/* ---- argument helpers ------------------------------------------------------------------- */

/* Positional argument i, or the keyword argument name; NULL when not given. */
static const struct tpl_val *arg(const struct tpl_args *a, size_t i, const char *name)
{
    if (i < a->n_pos)
        return &a->pos[i];
    for (size_t k = 0; name && k < a->n_kw; k++)
        if (strcmp(a->kw_names[k], name) == 0)
            return &a->kw[k];
    return NULL;
}

static bool arg_bool(const struct tpl_args *a, size_t i, const char *name, bool def)
{
    const struct tpl_val *v = arg(a, i, name);
    return v && v->type != TPL_UNDEF ? inf__tpl_truthy(*v) : def;
}

static bool is_intv(struct tpl_val v)
{
    return v.type == TPL_INT || v.type == TPL_BOOL;
}

static int64_t ival(struct tpl_val v)
{
    return v.type == TPL_BOOL ? (int64_t)v.u.b : v.u.i;
}

static int arg_int(struct tpl_render *r, const struct tpl_args *a, size_t i, const char *name,
                   int64_t def, int64_t *out)
{
    const struct tpl_val *v = arg(a, i, name);
    *out = def;
    if (!v || v->type == TPL_NONE || v->type == TPL_UNDEF) {
        *out = def;
        return 0;
    }
    if (is_intv(*v)) {
        *out = ival(*v);
        return 0;
    }
    if (v->type == TPL_FLOAT && v->u.f == floor(v->u.f) && fabs(v->u.f) < 9e18) {
        *out = (int64_t)v->u.f;
        return 0;
    }
    return inf__tpl_fail(r, INF_ETYPE, "argument '%s' must be an integer, not %s",
                         name ? name : "?", inf__tpl_type_name(*v));
}

/* A string argument (str() of other values); def when absent. */
static int arg_str(struct tpl_render *r, const struct tpl_args *a, size_t i, const char *name,
                   const char *def, struct tpl_val *out)
{
    const struct tpl_val *v = arg(a, i, name);
    if (!v || (v->type == TPL_UNDEF && def))
        return def ? inf__tpl_str_cstr(r, def, out) : (*out = tpl_undef(NULL), 0);
    return inf__tpl_to_str(r, *v, out);
}

static int need_str(struct tpl_render *r, struct tpl_val v, const char *what)
{
    if (v.type == TPL_STR)
        return 0;
    if (v.type == TPL_UNDEF)
        return inf__tpl_fail(r, INF_ETYPE, "'%s' is undefined",
                             v.u.undef_name ? v.u.undef_name : "value");
    return inf__tpl_fail(r, INF_ETYPE, "%s expects a string, got %s", what, inf__tpl_type_name(v));
}

static int str_val(struct tpl_render *r, const char *s, size_t n, struct tpl_val *out)
{
    return inf__tpl_str_new(r, s, n, out);
}

static int buf_to_str(struct tpl_render *r, struct tpl_buf *b, struct tpl_val *out)
{
    int rc = inf__tpl_str_buf(r, b, out);
    inf__tpl_buf_free(b);
    return rc;
}

static int make_method(struct tpl_render *r, const char *name, tpl_builtin_fn fn,
                       struct tpl_val self, struct tpl_val *out)
{
    struct tpl_func *f = inf__tpl_ralloc(r, sizeof(*f));
    if (!f)
        return -1;
    f->kind = FN_BUILTIN;
    f->name = name;
    f->fn = fn;
    f->self = self;
    out->type = TPL_FUNC;
    out->u.fn = f;
    return 0;
}

/* ---- case mapping ----------------------------------------------------------------------- */

static uint32_t cp_upper(uint32_t c)
{
    if (c < 0x80)
        return c >= 'a' && c <= 'z' ? c - 32 : c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
        return c - 32;
    if (c == 0xFF)
        return 0x178;
    if (c == 0xB5)
        return 0x39C;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x131)
            return 'I';
        if (c == 0x17F)
            return 'S';
        if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return c & 1 ? c - 1 : c;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return c & 1 ? c : c - 1;
        return c;
    }
    if (c >= 0x3B1 && c <= 0x3C9)
        return c == 0x3C2 ? 0x3A3 : c - 32;
    if (c == 0x3AC)
        return 0x386;
    if (c >= 0x3AD && c <= 0x3AF)
        return c - 37;
    if (c == 0x3CC)
        return 0x38C;
    if (c == 0x3CD || c == 0x3CE)
        return c - 63;
    if (c >= 0x430 && c <= 0x44F)
        return c - 32;
    if (c >= 0x450 && c <= 0x45F)
        return c - 80;
    if (c >= 0xFF41 && c <= 0xFF5A)
        return c - 32;
    return c;
}

static uint32_t cp_lower(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x130)
            return 'i';
        if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return c & 1 ? c : c + 1;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return c & 1 ? c + 1 : c;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c == 0x386)
        return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
        return c + 37;
    if (c == 0x38C)
        return 0x3CC;
    if (c == 0x38E || c == 0x38F)
        return c + 63;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    if (c >= 0xFF21 && c <= 0xFF3A)
        return c + 32;
    return c;
}

static bool cp_cased(uint32_t c)
{
    return cp_upper(c) != c || cp_lower(c) != c || c == 0xDF;
}

static bool cp_alpha(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    /* beyond ASCII: letters of the scripts we case-map, and CJK / other scripts broadly */
    if (cp_cased(c) || c == 0xAA || c == 0xBA)
        return true;
    if (inf__tpl_is_space(c) || (c >= 0x80 && c <= 0xBF) || c == 0xD7 || c == 0xF7)
        return false;
    if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) ||
        (c >= 0xFF00 && c <= 0xFF20) || (c >= 0x1F000 && c <= 0x1FAFF))
        return false;
    return true;
}

static bool cp_digit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE, CASE_SWAP, CASE_JTITLE };

static int append_cp(struct tpl_render *r, struct tpl_buf *b, uint32_t cp)
{
    char enc[4];
    return inf__tpl_buf_add(r, b, enc, inf__utf8_encode(cp, enc));
}

/* Case conversions; CASE_JTITLE is Jinja2's title filter (words start after -, space, ([{<). */
static int convert_case(struct tpl_render *r, const struct tpl_str *s, int mode,
                        struct tpl_val *out)
{
    struct tpl_buf b = {0};
    bool prev_cased = false, first = true, word_start = true;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp, o;
        size_t n = inf__tpl_utf8_decode(s->data + i, s->len - i, &cp);
        i += n;
        switch (mode) {
        case CASE_UPPER:
            o = cp_upper(cp);
            break;
        case CASE_LOWER:
            o = cp_lower(cp);
            break;
        case CASE_TITLE:
            if (cp_cased(cp)) {
                o = prev_cased ? cp_lower(cp) : cp_upper(cp);
                prev_cased = true;
            } else {
                o = cp;
                prev_cased = false;
            }
            break;
        case CASE_CAPITALIZE:
            o = first ? cp_upper(cp) : cp_lower(cp);
            break;
        case CASE_SWAP:
            o = cp_upper(cp) != cp ? cp_upper(cp) : cp_lower(cp);
            break;
        default: {
            bool sep = cp == '-' || inf__tpl_is_space(cp) || cp == '(' || cp == '{' || cp == '[' ||
                       cp == '<';
            if (sep) {
                o = cp;
                word_start = true;
            } else {
                o = word_start ? cp_upper(cp) : cp_lower(cp);
                word_start = false;
            }
        }
        }
        first = false;
        if (o == 0xDF && cp == 0xDF && (mode == CASE_UPPER || mode == CASE_SWAP)) {
            if (inf__tpl_buf_add(r, &b, "SS", 2))
                goto fail;
            continue;
        }
        if (append_cp(r, &b, o))
            goto fail;
    }
    return buf_to_str(r, &b, out);
fail:
    inf__tpl_buf_free(&b);
    return -1;
}

/* ---- string helpers --------------------------------------------------------------------- */

/* Python str.strip family. chars NULL: whitespace. which: 1 left, 2 right, 3 both. */
static int do_strip(struct tpl_render *r, const struct tpl_str *s, const struct tpl_str *chars,
                    int which, struct tpl_val *out)
{
    size_t start = 0, end = s->len;
    if (which & 1) {
        while (start < end) {
            uint32_t cp;
            size_t n = inf__tpl_utf8_decode(s->data + start, end - start, &cp);
            bool hit = false;
            if (chars) {
                for (size_t k = 0; k < chars->len && !hit;) {
                    uint32_t c2;
                    k += inf__tpl_utf8_decode(chars->data + k, chars->len - k, &c2);
                    hit = c2 == cp;
                }
            } else {
                hit = inf__tpl_is_space(cp);
            }
            if (!hit)
                break;
            start += n;
        }
    }
    if (which & 2) {
        while (end > start) {
            size_t b = end - 1;
            while (b > start && ((unsigned char)s->data[b] & 0xC0) == 0x80)
                b--;
            uint32_t cp;
            inf__tpl_utf8_decode(s->data + b, end - b, &cp);
            bool hit = false;
            if (chars) {
                for (size_t k = 0; k < chars->len && !hit;) {
                    uint32_t c2;
                    k += inf__tpl_utf8_decode(chars->data + k, chars->len - k, &c2);
                    hit = c2 == cp;
                }
            } else {
                hit = inf__tpl_is_space(cp);
            }
            if (!hit)
                break;
            end = b;
        }
    }
    if (start == 0 && end == s->len) {
        out->type = TPL_STR;
        out->u.s = (struct tpl_str *)s;
        return 0;
    }
    return inf__tpl_str_sub(r, s, start, end - start, out);
}

static const char *find_bytes(const char *h, size_t hl, const char *n, size_t nl)
{
    if (nl == 0)
        return h;
    return memmem(h, hl, n, nl);
}

static const char *rfind_bytes(const char *h, size_t hl, const char *n, size_t nl)
{
    if (nl > hl)
        return NULL;
    for (size_t i = hl - nl + 1; i-- > 0;)
        if (memcmp(h + i, n, nl) == 0)
            return h + i;
    return NULL;
}

/* Python str.replace(old, new, count). */
static int do_replace(struct tpl_render *r, const struct tpl_str *s, const struct tpl_str *old,
                      const struct tpl_str *new_, int64_t count, struct tpl_val *out)
{
    struct tpl_buf b = {0};
    int64_t done = 0;
    TPL_TRY(inf__tpl_work(r, s->len / 32));
    if (old->len == 0) {
        /* insert between every character (and at both ends) */
        for (size_t i = 0; i <= s->len;) {
            if (count < 0 || done < count) {
                if (inf__tpl_buf_add(r, &b, new_->data, new_->len))
                    goto fail;
                done++;
            }
            if (i == s->len)
                break;
            uint32_t cp;
            size_t n = inf__tpl_utf8_decode(s->data + i, s->len - i, &cp);
            if (inf__tpl_buf_add(r, &b, s->data + i, n))
                goto fail;
            i += n;
        }
        return buf_to_str(r, &b, out);
    }
    size_t pos = 0;
    while (pos <= s->len && (count < 0 || done < count)) {
        const char *hit = find_bytes(s->data + pos, s->len - pos, old->data, old->len);
        if (!hit)
            break;
        size_t at = (size_t)(hit - s->data);
        if (inf__tpl_buf_add(r, &b, s->data + pos, at - pos) ||
            inf__tpl_buf_add(r, &b, new_->data, new_->len))
            goto fail;
        pos = at + old->len;
        done++;
    }
    if (done == 0) {
        inf__tpl_buf_free(&b);
        out->type = TPL_STR;
        out->u.s = (struct tpl_str *)s;
        return 0;
    }
    if (inf__tpl_buf_add(r, &b, s->data + pos, s->len - pos))
        goto fail;
    return buf_to_str(r, &b, out);
fail:
    inf__tpl_buf_free(&b);
    return -1;
}

/* Python str.split / rsplit. sep NULL: runs of whitespace. */
static int do_split(struct tpl_render *r, const struct tpl_str *s, const struct tpl_str *sep,
                    int64_t maxsplit, bool right, struct tpl_val *out)
{
    struct tpl_val part;
    TPL_TRY(inf__tpl_list_val(r, 0, false, out));
    struct tpl_list *l = out->u.l;
    TPL_TRY(inf__tpl_work(r, s->len / 32));
    if (sep && sep->len == 0)
        return inf__tpl_fail(r, INF_ETYPE, "empty separator");
    if (!right) {
        size_t pos = 0;
        int64_t splits = 0;
        if (!sep) {
            for (;;) {
                while (pos < s->len) {
                    uint32_t cp;
                    size_t n = inf__tpl_utf8_decode(s->data + pos, s->len - pos, &cp);
                    if (!inf__tpl_is_space(cp))
                        break;
                    pos += n;
                }
                if (pos >= s->len)
                    break;
                size_t end = pos;
                if (maxsplit >= 0 && splits >= maxsplit) {
                    /* the rest as it is (trailing whitespace kept, like CPython) */
                    TPL_TRY(str_val(r, s->data + pos, s->len - pos, &part));
                    return inf__tpl_list_push(r, l, part);
                }
                while (end < s->len) {
                    uint32_t cp;
                    size_t n = inf__tpl_utf8_decode(s->data + end, s->len - end, &cp);
                    if (inf__tpl_is_space(cp))
                        break;
                    end += n;
                }
                TPL_TRY(str_val(r, s->data + pos, end - pos, &part));
                TPL_TRY(inf__tpl_list_push(r, l, part));
                splits++;
                pos = end;
            }
            return 0;
        }
        for (;;) {
            const char *hit = maxsplit >= 0 && splits >= maxsplit
                                  ? NULL
                                  : find_bytes(s->data + pos, s->len - pos, sep->data, sep->len);
            size_t end = hit ? (size_t)(hit - s->data) : s->len;
            TPL_TRY(str_val(r, s->data + pos, end - pos, &part));
            TPL_TRY(inf__tpl_list_push(r, l, part));
            if (!hit)
                return 0;
            pos = end + sep->len;
            splits++;
        }
    }
    /* rsplit: collect from the right, then reverse */
    size_t end = s->len;
    int64_t splits = 0;
    if (!sep) {
        for (;;) {
            while (end > 0) {
                size_t b = end - 1;
                while (b > 0 && ((unsigned char)s->data[b] & 0xC0) == 0x80)
                    b--;
                uint32_t cp;
                inf__tpl_utf8_decode(s->data + b, end - b, &cp);
                if (!inf__tpl_is_space(cp))
                    break;
                end = b;
            }
            if (end == 0)
                break;
            size_t start = end;
            if (maxsplit >= 0 && splits >= maxsplit) {
                TPL_TRY(str_val(r, s->data, end, &part));
                TPL_TRY(inf__tpl_list_push(r, l, part));
                break;
            }
            while (start > 0) {
                size_t b = start - 1;
                while (b > 0 && ((unsigned char)s->data[b] & 0xC0) == 0x80)
                    b--;
                uint32_t cp;
                inf__tpl_utf8_decode(s->data + b, start - b, &cp);
                if (inf__tpl_is_space(cp))
                    break;
                start = b;
            }
            TPL_TRY(str_val(r, s->data + start, end - start, &part));
            TPL_TRY(inf__tpl_list_push(r, l, part));
            splits++;
            end = start;
        }
    } else {
        for (;;) {
            const char *hit = maxsplit >= 0 && splits >= maxsplit
                                  ? NULL
                                  : rfind_bytes(s->data, end, sep->data, sep->len);
            size_t start = hit ? (size_t)(hit - s->data) + sep->len : 0;
            TPL_TRY(str_val(r, s->data + start, end - start, &part));
            TPL_TRY(inf__tpl_list_push(r, l, part));
            if (!hit)
                break;
            end = (size_t)(hit - s->data);
            splits++;
        }
    }
    for (size_t i = 0, j = l->n ? l->n - 1 : 0; i < j; i++, j--) {
        struct tpl_val t = l->v[i];
        l->v[i] = l->v[j];
        l->v[j] = t;
    }
    return 0;
}

/* Python str.splitlines(keepends). */
static int do_splitlines(struct tpl_render *r, const struct tpl_str *s, bool keepends,
                         struct tpl_val *out)
{
    struct tpl_val part;
    TPL_TRY(inf__tpl_list_val(r, 0, false, out));
    size_t start = 0, i = 0;
    while (i < s->len) {
        uint32_t cp;
        size_t n = inf__tpl_utf8_decode(s->data + i, s->len - i, &cp);
        bool brk = cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || cp == 0x1C ||
                   cp == 0x1D || cp == 0x1E || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (!brk) {
            i += n;
            continue;
        }
        size_t eol = i;
        i += n;
        if (cp == '\r' && i < s->len && s->data[i] == '\n')
            i++;
        TPL_TRY(str_val(r, s->data + start, (keepends ? i : eol) - start, &part));
        TPL_TRY(inf__tpl_list_push(r, out->u.l, part));
        start = i;
    }
    if (start < s->len) {
        TPL_TRY(str_val(r, s->data + start, s->len - start, &part));
        TPL_TRY(inf__tpl_list_push(r, out->u.l, part));
    }
    return 0;
}

static size_t char_index(const struct tpl_str *s, size_t byte_off)
{
    size_t n = 0;
    for (size_t i = 0; i < byte_off; i++)
        n += ((unsigned char)s->data[i] & 0xC0) != 0x80;
    return n;
}

static bool has_prefix(const struct tpl_str *s, const struct tpl_str *p, bool suffix)
{
    if (p->len > s->len)
        return false;
    return memcmp(suffix ? s->data + s->len - p->len : s->data, p->data, p->len) == 0;
}

/* ---- iteration and attribute paths ------------------------------------------------------ */

/* An attribute path "a.b.0" applied with getitem semantics (Jinja2's make_attrgetter). */
static int attr_path(struct tpl_render *r, struct tpl_val item, struct tpl_val path,
                     struct tpl_val *out)
{
    if (path.type != TPL_STR) {
        if (is_intv(path))
            return inf__tpl_getitem(r, item, path, out);
        return inf__tpl_fail(r, INF_ETYPE, "attribute must be a string");
    }
    const char *s = path.u.s->data;
    size_t len = path.u.s->len, start = 0;
    struct tpl_val cur = item;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        struct tpl_val key;
        bool digits = i > start;
        for (size_t k = start; k < i; k++)
            digits = digits && s[k] >= '0' && s[k] <= '9';
        if (digits && i - start < 18) {
            int64_t v = 0;
            for (size_t k = start; k < i; k++)
                v = v * 10 + (s[k] - '0');
            key = tpl_int(v);
        } else {
            TPL_TRY(str_val(r, s + start, i - start, &key));
        }
        TPL_TRY(inf__tpl_getitem(r, cur, key, &cur));
        start = i + 1;
    }
    *out = cur;
    return 0;
}

/* A fresh list of the items iteration yields. */
static int to_list(struct tpl_render *r, struct tpl_val v, struct tpl_val *out)
{
    const struct tpl_val *items;
    size_t n;
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    TPL_TRY(inf__tpl_list_val(r, n, false, out));
    if (n)
        memcpy(out->u.l->v, items, n * sizeof(*items));
    out->u.l->n = n;
    return 0;
}

/* Sort key: attribute lookup, then lower-casing strings unless case_sensitive. */
static int sort_key(struct tpl_render *r, struct tpl_val v, const struct tpl_val *attr,
                    bool case_sensitive, struct tpl_val *out)
{
    if (attr && attr->type != TPL_NONE && attr->type != TPL_UNDEF)
        TPL_TRY(attr_path(r, v, *attr, &v));
    if (!case_sensitive && v.type == TPL_STR)
        return convert_case(r, v.u.s, CASE_LOWER, out);
    *out = v;
    return 0;
}

struct sort_ctx {
    struct tpl_render *r;
    const struct tpl_val *keys;
    bool failed;
};

static int cmp_keys(struct sort_ctx *c, size_t a, size_t b)
{
    int res;
    if (c->failed)
        return 0;
    if (inf__tpl_compare(c->r, c->keys[a], c->keys[b], "<", &res)) {
        c->failed = true;
        return 0;
    }
    return res == 2 ? 0 : res;
}

/* Stable merge sort of idx[0..n) by keys. */
static void merge_sort(struct sort_ctx *c, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(c, idx, tmp, h);
    merge_sort(c, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp_keys(c, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof(*idx));
}

/* The permutation that sorts keys[0..n) (stable). NULL on failure. */
static size_t *sorted_order(struct tpl_render *r, const struct tpl_val *keys, size_t n,
                            bool reverse)
{
    size_t *idx = inf__tpl_ralloc(r, (n + 1) * sizeof(*idx));
    size_t *tmp = inf__tpl_ralloc(r, (n + 1) * sizeof(*tmp));
    if (!idx || !tmp)
        return NULL;
    /* descending keeps equal keys in their original order, like Python's sorted(reverse=True):
     * sort the reversed sequence ascending, then reverse the result */
    for (size_t i = 0; i < n; i++)
        idx[i] = reverse ? n - 1 - i : i;
    struct sort_ctx c = {r, keys, false};
    if (inf__tpl_work(r, n * 4))
        return NULL;
    merge_sort(&c, idx, tmp, n);
    if (c.failed)
        return NULL;
    if (reverse) {
        for (size_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
            size_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    }
    return idx;
}

/* ---- methods ---------------------------------------------------------------------------- */

#define METHOD(name)                                                                               \
    static int name(struct tpl_render *r, struct tpl_val self, const struct tpl_args *a,           \
                    struct tpl_val *out)
/* a method that is one call of a shared body */
#define METHOD_VIA(name, call)                                                                     \
    METHOD(name)                                                                                   \
    {                                                                                              \
        return call;                                                                               \
    }

static int opt_str_arg(struct tpl_render *r, const struct tpl_args *a, size_t i, const char *name,
                       const struct tpl_str **out)
{
    const struct tpl_val *v = arg(a, i, name);
    *out = NULL;
    if (!v || v->type == TPL_NONE || v->type == TPL_UNDEF)
        return 0;
    if (v->type != TPL_STR)
        return inf__tpl_fail(r, INF_ETYPE, "argument must be str or None, not %s",
                             inf__tpl_type_name(*v));
    *out = v->u.s;
    return 0;
}

static int req_str_arg(struct tpl_render *r, const struct tpl_args *a, size_t i, const char *name,
                       const struct tpl_str **out)
{
    const struct tpl_val *v = arg(a, i, name);
    *out = NULL;
    if (!v)
        return inf__tpl_fail(r, INF_ETYPE, "missing argument '%s'", name);
    if (v->type != TPL_STR)
        return inf__tpl_fail(r, INF_ETYPE, "argument '%s' must be str, not %s", name,
                             inf__tpl_type_name(*v));
    *out = v->u.s;
    return 0;
}

METHOD(m_strip)
{
    const struct tpl_str *chars;
    TPL_TRY(opt_str_arg(r, a, 0, "chars", &chars));
    return do_strip(r, self.u.s, chars, 3, out);
}

METHOD(m_lstrip)
{
    const struct tpl_str *chars;
    TPL_TRY(opt_str_arg(r, a, 0, "chars", &chars));
    return do_strip(r, self.u.s, chars, 1, out);
}

METHOD(m_rstrip)
{
    const struct tpl_str *chars;
    TPL_TRY(opt_str_arg(r, a, 0, "chars", &chars));
    return do_strip(r, self.u.s, chars, 2, out);
}

METHOD(m_split)
{
    const struct tpl_str *sep;
    int64_t maxsplit;
    TPL_TRY(opt_str_arg(r, a, 0, "sep", &sep));
    TPL_TRY(arg_int(r, a, 1, "maxsplit", -1, &maxsplit));
    return do_split(r, self.u.s, sep, maxsplit, false, out);
}

METHOD(m_rsplit)
{
    const struct tpl_str *sep;
    int64_t maxsplit;
    TPL_TRY(opt_str_arg(r, a, 0, "sep", &sep));
    TPL_TRY(arg_int(r, a, 1, "maxsplit", -1, &maxsplit));
    return do_split(r, self.u.s, sep, maxsplit, true, out);
}

METHOD_VIA(m_splitlines, do_splitlines(r, self.u.s, arg_bool(a, 0, "keepends", false), out))

static int starts_ends(struct tpl_render *r, struct tpl_val self, const struct tpl_args *a,
                       bool suffix, struct tpl_val *out)
{
    const struct tpl_val *p = arg(a, 0, suffix ? "suffix" : "prefix");
    if (!p)
        return inf__tpl_fail(r, INF_ETYPE, "%s() takes at least 1 argument",
                             suffix ? "endswith" : "startswith");
    if (p->type == TPL_STR) {
        *out = tpl_bool(has_prefix(self.u.s, p->u.s, suffix));
        return 0;
    }
    if (p->type == TPL_TUPLE) {
        for (size_t i = 0; i < p->u.l->n; i++) {
            if (p->u.l->v[i].type != TPL_STR)
                return inf__tpl_fail(r, INF_ETYPE, "tuple for %s must only contain str",
                                     suffix ? "endswith" : "startswith");
            if (has_prefix(self.u.s, p->u.l->v[i].u.s, suffix)) {
                *out = tpl_bool(true);
                return 0;
            }
        }
        *out = tpl_bool(false);
        return 0;
    }
    return inf__tpl_fail(r, INF_ETYPE, "%s first arg must be str or a tuple of str, not %s",
                         suffix ? "endswith" : "startswith", inf__tpl_type_name(*p));
}

METHOD_VIA(m_startswith, starts_ends(r, self, a, false, out))

METHOD_VIA(m_endswith, starts_ends(r, self, a, true, out))

METHOD(m_str_replace)
{
    const struct tpl_str *old, *new_;
    int64_t count;
    TPL_TRY(req_str_arg(r, a, 0, "old", &old));
    TPL_TRY(req_str_arg(r, a, 1, "new", &new_));
    TPL_TRY(arg_int(r, a, 2, "count", -1, &count));
    return do_replace(r, self.u.s, old, new_, count, out);
}

METHOD_VIA(m_upper, convert_case(r, self.u.s, CASE_UPPER, out))

METHOD_VIA(m_lower, convert_case(r, self.u.s, CASE_LOWER, out))

METHOD_VIA(m_title, convert_case(r, self.u.s, CASE_TITLE, out))

METHOD_VIA(m_capitalize, convert_case(r, self.u.s, CASE_CAPITALIZE, out))

METHOD_VIA(m_swapcase, convert_case(r, self.u.s, CASE_SWAP, out))

static int find_common(struct tpl_render *r, struct tpl_val self, const struct tpl_args *a,
                       bool right, bool raise, struct tpl_val *out)
{
    const struct tpl_str *sub;
    TPL_TRY(req_str_arg(r, a, 0, "sub", &sub));
    const struct tpl_str *s = self.u.s;
    const char *hit = right ? rfind_bytes(s->data, s->len, sub->data, sub->len)
                            : find_bytes(s->data, s->len, sub->data, sub->len);
    if (!hit) {
        if (raise)
            return inf__tpl_fail(r, INF_ETYPE, "substring not found");
        *out = tpl_int(-1);
        return 0;
    }
    *out = tpl_int((int64_t)char_index(s, (size_t)(hit - s->data)));
    return 0;
}

METHOD_VIA(m_find, find_common(r, self, a, false, false, out))

METHOD_VIA(m_rfind, find_common(r, self, a, true, false, out))

METHOD_VIA(m_str_index, find_common(r, self, a, false, true, out))

METHOD(m_str_count)
{
    const struct tpl_str *sub;
    TPL_TRY(req_str_arg(r, a, 0, "sub", &sub));
    const struct tpl_str *s = self.u.s;
    if (sub->len == 0) {
        *out = tpl_int((int64_t)s->nchars + 1);
        return 0;
    }
    int64_t n = 0;
    size_t pos = 0;
    const char *hit;
    while ((hit = find_bytes(s->data + pos, s->len - pos, sub->data, sub->len))) {
        n++;
        pos = (size_t)(hit - s->data) + sub->len;
    }
    *out = tpl_int(n);
    return 0;
}

METHOD(m_join)
{
    const struct tpl_val *seq = arg(a, 0, "iterable");
    const struct tpl_val *items;
    size_t n;
    struct tpl_buf b = {0};
    if (!seq)
        return inf__tpl_fail(r, INF_ETYPE, "join() takes exactly one argument");
    TPL_TRY(inf__tpl_iter(r, *seq, &items, &n));
    for (size_t i = 0; i < n; i++) {
        if (items[i].type != TPL_STR) {
            inf__tpl_buf_free(&b);
            return inf__tpl_fail(r, INF_ETYPE,
                                 "sequence item %zu: expected str instance, %s "
                                 "found",
                                 i, inf__tpl_type_name(items[i]));
        }
        if ((i && inf__tpl_buf_add_str(r, &b, self.u.s)) ||
            inf__tpl_buf_add_str(r, &b, items[i].u.s)) {
            inf__tpl_buf_free(&b);
            return -1;
        }
    }
    return buf_to_str(r, &b, out);
}

static int str_pred(struct tpl_val self, int kind)
{
    const struct tpl_str *s = self.u.s;
    bool any = false, cased_upper = false, cased_lower = false;
    if (s->len == 0)
        return false;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        i += inf__tpl_utf8_decode(s->data + i, s->len - i, &cp);
        switch (kind) {
        case 0: /* isdigit */
            if (!cp_digit(cp))
                return false;
            break;
        case 1: /* isalpha */
            if (!cp_alpha(cp))
                return false;
            break;
        case 2: /* isalnum */
            if (!cp_alpha(cp) && !cp_digit(cp))
                return false;
            break;
        case 3: /* isspace */
            if (!inf__tpl_is_space(cp))
                return false;
            break;
        default:
            if (cp_cased(cp)) {
                any = true;
                if (cp_lower(cp) != cp)
                    cased_upper = true;
                if (cp_upper(cp) != cp || cp == 0xDF)
                    cased_lower = true;
            }
        }
    }
    if (kind == 4)
        return any && !cased_upper; /* islower */
    if (kind == 5)
        return any && !cased_lower; /* isupper */
    return true;
}

METHOD(m_isdigit)
{
    *out = tpl_bool(str_pred(self, 0));
    return 0;
}

METHOD(m_isalpha)
{
    *out = tpl_bool(str_pred(self, 1));
    return 0;
}

METHOD(m_isalnum)
{
    *out = tpl_bool(str_pred(self, 2));
    return 0;
}

METHOD(m_isspace)
{
    *out = tpl_bool(str_pred(self, 3));
    return 0;
}

METHOD(m_islower)
{
    *out = tpl_bool(str_pred(self, 4));
    return 0;
}

METHOD(m_isupper)
{
    *out = tpl_bool(str_pred(self, 5));
    return 0;
}

static int pad(struct tpl_render *r, struct tpl_val self, const struct tpl_args *a, int how,
               struct tpl_val *out)
{
    int64_t width;
    const struct tpl_str *fill = NULL;
    TPL_TRY(arg_int(r, a, 0, "width", 0, &width));
    TPL_TRY(opt_str_arg(r, a, 1, "fillchar", &fill));
    if (fill && fill->nchars != 1)
        return inf__tpl_fail(r, INF_ETYPE, "the fill character must be exactly one character");
    const struct tpl_str *s = self.u.s;
    if (width <= (int64_t)s->nchars) {
        *out = self;
        return 0;
    }
    if ((uint64_t)width > r->max_output)
        return inf__tpl_fail(r, INF_ELIMIT, "width is larger than the output limit");
    size_t total = (size_t)width - s->nchars, left;
    if (how == 0)
        left = total / 2 + (total & (size_t)width & 1); /* CPython's center() */
    else if (how == 1)
        left = 0; /* ljust */
    else
        left = total; /* rjust / zfill */
    struct tpl_buf b = {0};
    const char *f = fill ? fill->data : " ";
    size_t fl = fill ? fill->len : 1;
    for (size_t i = 0; i < left; i++)
        if (inf__tpl_buf_add(r, &b, f, fl))
            goto fail;
    if (inf__tpl_buf_add(r, &b, s->data, s->len))
        goto fail;
    for (size_t i = left; i < total; i++)
        if (inf__tpl_buf_add(r, &b, f, fl))
            goto fail;
    return buf_to_str(r, &b, out);
fail:
    inf__tpl_buf_free(&b);
    return -1;
}

METHOD_VIA(m_center, pad(r, self, a, 0, out))

METHOD_VIA(m_ljust, pad(r, self, a, 1, out))

METHOD_VIA(m_rjust, pad(r, self, a, 2, out))

METHOD(m_removeprefix)
{
    const struct tpl_str *p;
    TPL_TRY(req_str_arg(r, a, 0, "prefix", &p));
    if (!has_prefix(self.u.s, p, false)) {
        *out = self;
        return 0;
    }
    return str_val(r, self.u.s->data + p->len, self.u.s->len - p->len, out);
}

METHOD(m_removesuffix)
{
    const struct tpl_str *p;
    TPL_TRY(req_str_arg(r, a, 0, "suffix", &p));
    if (!has_prefix(self.u.s, p, true) || p->len == 0) {
        *out = self;
        return 0;
    }
    return str_val(r, self.u.s->data, self.u.s->len - p->len, out);
}

static int partition(struct tpl_render *r, struct tpl_val self, const struct tpl_args *a,
                     bool right, struct tpl_val *out)
{
    const struct tpl_str *sep;
    TPL_TRY(req_str_arg(r, a, 0, "sep", &sep));
    if (sep->len == 0)
        return inf__tpl_fail(r, INF_ETYPE, "empty separator");
    const struct tpl_str *s = self.u.s;
    const char *hit = right ? rfind_bytes(s->data, s->len, sep->data, sep->len)
                            : find_bytes(s->data, s->len, sep->data, sep->len);
    struct tpl_val parts[3];
    if (!hit) {
        TPL_TRY(str_val(r, "", 0, &parts[0]));
        parts[1] = parts[0];
        parts[2] = parts[0];
        if (right)
            parts[2] = self;
        else
            parts[0] = self;
    } else {
        size_t at = (size_t)(hit - s->data);
        TPL_TRY(str_val(r, s->data, at, &parts[0]));
        parts[1].type = TPL_STR;
        parts[1].u.s = (struct tpl_str *)sep;
        TPL_TRY(str_val(r, s->data + at + sep->len, s->len - at - sep->len, &parts[2]));
    }
    TPL_TRY(inf__tpl_list_val(r, 3, true, out));
    memcpy(out->u.l->v, parts, sizeof(parts));
    out->u.l->n = 3;
    return 0;
}

METHOD_VIA(m_partition, partition(r, self, a, false, out))

METHOD_VIA(m_rpartition, partition(r, self, a, true, out))

/* str.format: {} {0} {name} {name.attr} {0[key]}, {{ }}; !r / !s; format specs ignored beyond
 * a plain width. */
METHOD(m_format)
{
    const struct tpl_str *s = self.u.s;
    struct tpl_buf b = {0};
    size_t auto_idx = 0;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->data[i];
        if (c == '}' && i + 1 < s->len && s->data[i + 1] == '}') {
            if (inf__tpl_buf_addc(r, &b, '}'))
                goto fail;
            i++;
            continue;
        }
        if (c != '{') {
            if (inf__tpl_buf_addc(r, &b, c))
                goto fail;
            continue;
        }
        if (i + 1 < s->len && s->data[i + 1] == '{') {
            if (inf__tpl_buf_addc(r, &b, '{'))
                goto fail;
            i++;
            continue;
        }
        size_t k = i + 1;
        while (k < s->len && s->data[k] != '}')
            k++;
        if (k >= s->len) {
            inf__tpl_fail(r, INF_ETYPE, "single '{' encountered in format string");
            goto fail;
        }
        const char *field = s->data + i + 1;
        size_t fl = k - i - 1, name_len = 0;
        while (name_len < fl && field[name_len] != '!' && field[name_len] != ':' &&
               field[name_len] != '.' && field[name_len] != '[')
            name_len++;
        struct tpl_val v;
        if (name_len == 0) {
            if (auto_idx >= a->n_pos) {
                inf__tpl_fail(r, INF_ETYPE, "replacement index %zu out of range", auto_idx);
                goto fail;
            }
            v = a->pos[auto_idx++];
        } else if (field[0] >= '0' && field[0] <= '9') {
            size_t idx = (size_t)strtoul(field, NULL, 10);
            if (idx >= a->n_pos) {
                inf__tpl_fail(r, INF_ETYPE, "replacement index %zu out of range", idx);
                goto fail;
            }
            v = a->pos[idx];
        } else {
            bool found = false;
            for (size_t q = 0; q < a->n_kw; q++) {
                if (strlen(a->kw_names[q]) == name_len &&
                    memcmp(a->kw_names[q], field, name_len) == 0) {
                    v = a->kw[q];
                    found = true;
                }
            }
            if (!found) {
                inf__tpl_fail(r, INF_ETYPE, "format key '%.*s' not given", (int)name_len, field);
                goto fail;
            }
        }
        size_t p = name_len;
        while (p < fl && (field[p] == '.' || field[p] == '[')) {
            char open = field[p++];
            size_t e = p;
            while (e < fl && field[e] != '.' && field[e] != '[' && field[e] != ']' &&
                   field[e] != '!' && field[e] != ':')
                e++;
            struct tpl_val key;
            bool digits = e > p;
            for (size_t q = p; q < e; q++)
                digits = digits && field[q] >= '0' && field[q] <= '9';
            if (open == '[' && digits)
                key = tpl_int(strtoll(field + p, NULL, 10));
            else if (str_val(r, field + p, e - p, &key))
                goto fail;
            if ((open == '.' ? inf__tpl_getattr(r, v, field + p, e - p, &v)
                             : inf__tpl_getitem(r, v, key, &v)))
                goto fail;
            p = e;
            if (open == '[' && p < fl && field[p] == ']')
                p++;
        }
        bool repr = p + 1 < fl && field[p] == '!' && field[p + 1] == 'r';
        if ((repr ? inf__tpl_write_repr(r, &b, v) : inf__tpl_write_str(r, &b, v)))
            goto fail;
        i = k;
    }
    return buf_to_str(r, &b, out);
fail:
    inf__tpl_buf_free(&b);
    return -1;
}

METHOD(m_zfill)
{
    int64_t width;
    TPL_TRY(arg_int(r, a, 0, "width", 0, &width));
    const struct tpl_str *s = self.u.s;
    if (width <= (int64_t)s->nchars) {
        *out = self;
        return 0;
    }
    if ((uint64_t)width > r->max_output)
        return inf__tpl_fail(r, INF_ELIMIT, "width is larger than the output limit");
    struct tpl_buf b = {0};
    size_t fill = (size_t)width - s->nchars, start = 0;
    if (s->len && (s->data[0] == '-' || s->data[0] == '+')) {
        if (inf__tpl_buf_addc(r, &b, s->data[0]))
            goto fail;
        start = 1;
    }
    for (size_t i = 0; i < fill; i++)
        if (inf__tpl_buf_addc(r, &b, '0'))
            goto fail;
    if (inf__tpl_buf_add(r, &b, s->data + start, s->len - start))
        goto fail;
    return buf_to_str(r, &b, out);
fail:
    inf__tpl_buf_free(&b);
    return -1;
}

/* list methods */

METHOD(m_append)
{
    const struct tpl_val *v = arg(a, 0, "object");
    if (!v)
        return inf__tpl_fail(r, INF_ETYPE, "append() takes exactly one argument");
    TPL_TRY(inf__tpl_list_push(r, self.u.l, *v));
    *out = tpl_none();
    return 0;
}

METHOD(m_extend)
{
    const struct tpl_val *v = arg(a, 0, "iterable");
    const struct tpl_val *items;
    size_t n;
    if (!v)
        return inf__tpl_fail(r, INF_ETYPE, "extend() takes exactly one argument");
    TPL_TRY(inf__tpl_iter(r, *v, &items, &n));
    for (size_t i = 0; i < n; i++)
        TPL_TRY(inf__tpl_list_push(r, self.u.l, items[i]));
    *out = tpl_none();
    return 0;
}

METHOD(m_insert)
{
    int64_t idx;
    const struct tpl_val *v = arg(a, 1, "object");
    TPL_TRY(arg_int(r, a, 0, "index", 0, &idx));
    if (!v)
        return inf__tpl_fail(r, INF_ETYPE, "insert() takes exactly 2 arguments");
    struct tpl_list *l = self.u.l;
    int64_t n = (int64_t)l->n;
    if (idx < 0)
        idx = idx + n < 0 ? 0 : idx + n;
    if (idx > n)
        idx = n;
    TPL_TRY(inf__tpl_list_push(r, l, *v));
    memmove(l->v + idx + 1, l->v + idx, (size_t)(n - idx) * sizeof(*l->v));
    l->v[idx] = *v;
    *out = tpl_none();
    return 0;
}

METHOD(m_pop)
{
    if (self.type == TPL_DICT) {
        const struct tpl_val *k = arg(a, 0, "key");
        if (!k)
            return inf__tpl_fail(r, INF_ETYPE, "pop expected at least 1 argument");
        const struct tpl_val *v = inf__tpl_hashable(*k) ? inf__tpl_dict_get(self.u.d, *k) : NULL;
        if (!v) {
            const struct tpl_val *def = arg(a, 1, "default");
            if (!def)
                return inf__tpl_fail(r, INF_ETYPE, "key not found in pop()");
            *out = *def;
            return 0;
        }
        *out = *v;
        inf__tpl_dict_del(self.u.d, *k);
        return 0;
    }
    struct tpl_list *l = self.u.l;
    int64_t idx;
    TPL_TRY(arg_int(r, a, 0, "index", -1, &idx));
    int64_t n = (int64_t)l->n;
    if (idx < 0)
        idx += n;
    if (idx < 0 || idx >= n)
        return inf__tpl_fail(r, INF_ETYPE, n ? "pop index out of range" : "pop from empty list");
    *out = l->v[idx];
    memmove(l->v + idx, l->v + idx + 1, (size_t)(n - idx - 1) * sizeof(*l->v));
    l->n--;
    return 0;
}

METHOD(m_remove)
{
    const struct tpl_val *v = arg(a, 0, "value");
    struct tpl_list *l = self.u.l;
    if (!v)
        return inf__tpl_fail(r, INF_ETYPE, "remove() takes exactly one argument");
    for (size_t i = 0; i < l->n; i++) {
        bool same;
        TPL_TRY(inf__tpl_eq(r, l->v[i], *v, &same));
        if (same) {
            memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof(*l->v));
            l->n--;
            *out = tpl_none();
            return 0;
        }
    }
    return inf__tpl_fail(r, INF_ETYPE, "list.remove(x): x not in list");
}

METHOD(m_list_index)
{
    const struct tpl_val *v = arg(a, 0, "value");
    if (!v)
        return inf__tpl_fail(r, INF_ETYPE, "index() takes at least 1 argument");
    for (size_t i = 0; i < self.u.l->n; i++) {
        bool same;
        TPL_TRY(inf__tpl_eq(r, self.u.l->v[i], *v, &same));
        if (same) {
            *out = tpl_int((int64_t)i);
            return 0;
        }
    }
    return inf__tpl_fail(r, INF_ETYPE, "value is not in list");
}

METHOD(m_list_count)
{
    const struct tpl_val *v = arg(a, 0, "value");
    int64_t n = 0;
    if (!v)
        return inf__tpl_fail(r, INF_ETYPE, "count() takes exactly one argument");
    for (size_t i = 0; i < self.u.l->n; i++) {
        bool same;
        TPL_TRY(inf__tpl_eq(r, self.u.l->v[i], *v, &same));
        n += same;
    }
    *out = tpl_int(n);
    return 0;
}

METHOD(m_list_reverse)
{
    struct tpl_list *l = self.u.l;
    for (size_t i = 0, j = l->n ? l->n - 1 : 0; i < j; i++, j--) {
        struct tpl_val t = l->v[i];
        l->v[i] = l->v[j];
        l->v[j] = t;
    }
    *out = tpl_none();
    return 0;
}

METHOD(m_copy)
{
    if (self.type == TPL_DICT) {
        struct tpl_dict *d = inf__tpl_dict_new(r, self.u.d->n);
        if (!d)
            return -1;
        for (size_t i = 0; i < self.u.d->n; i++)
            TPL_TRY(inf__tpl_dict_set(r, d, self.u.d->k[i], self.u.d->v[i]));
        out->type = TPL_DICT;
        out->u.d = d;
        return 0;
    }
    return to_list(r, self, out);
}

METHOD(m_clear)
{
    if (self.type == TPL_DICT) {
        self.u.d->n = 0;
        self.u.d->idx = NULL;
        self.u.d->idx_cap = 0;
    } else {
        self.u.l->n = 0;
    }
    *out = tpl_none();
    return 0;
}

/* dict methods */

METHOD(m_get)
{
    const struct tpl_val *k = arg(a, 0, "key");
    const struct tpl_val *def = arg(a, 1, "default");
    if (!k)
        return inf__tpl_fail(r, INF_ETYPE, "get expected at least 1 argument, got 0");
    if (!inf__tpl_hashable(*k))
        return inf__tpl_fail(r, INF_ETYPE, "unhashable type: '%s'", inf__tpl_type_name(*k));
    const struct tpl_val *v = inf__tpl_dict_get(self.u.d, *k);
    *out = v ? *v : def ? *def : tpl_none();
    return 0;
}

static int dict_view(struct tpl_render *r, const struct tpl_dict *d, int which, struct tpl_val *out)
{
    TPL_TRY(inf__tpl_list_val(r, d->n, false, out));
    for (size_t i = 0; i < d->n; i++) {
        struct tpl_val v;
        if (which == 0) {
            v = d->k[i];
        } else if (which == 1) {
            v = d->v[i];
        } else {
            TPL_TRY(inf__tpl_list_val(r, 2, true, &v));
            v.u.l->v[0] = d->k[i];
            v.u.l->v[1] = d->v[i];
            v.u.l->n = 2;
        }
        out->u.l->v[out->u.l->n++] = v;
    }
    return 0;
}

METHOD_VIA(m_keys, dict_view(r, self.u.d, 0, out))

METHOD_VIA(m_values, dict_view(r, self.u.d, 1, out))

METHOD_VIA(m_items, dict_view(r, self.u.d, 2, out))

METHOD(m_setdefault)
{
    const struct tpl_val *k = arg(a, 0, "key");
    const struct tpl_val *def = arg(a, 1, "default");
    if (!k)
        return inf__tpl_fail(r, INF_ETYPE, "setdefault expected at least 1 argument");
    if (!inf__tpl_hashable(*k))
        return inf__tpl_fail(r, INF_ETYPE, "unhashable type: '%s'", inf__tpl_type_name(*k));
    const struct tpl_val *v = inf__tpl_dict_get(self.u.d, *k);
    if (v) {
        *out = *v;
        return 0;
    }
    *out = def ? *def : tpl_none();
    return inf__tpl_dict_set(r, self.u.d, *k, *out);
}

METHOD(m_update)
{
    if (a->n_pos > 0) {
        struct tpl_val o = a->pos[0];
        if (o.type == TPL_DICT || o.type == TPL_NS) {
            for (size_t i = 0; i < o.u.d->n; i++)
                TPL_TRY(inf__tpl_dict_set(r, self.u.d, o.u.d->k[i], o.u.d->v[i]));
        } else {
            const struct tpl_val *items;
            size_t n;
            TPL_TRY(inf__tpl_iter(r, o, &items, &n));
            for (size_t i = 0; i < n; i++) {
                if (!inf__tpl_is_seq(items[i]) || items[i].u.l->n != 2)
                    return inf__tpl_fail(r, INF_ETYPE,
                                         "dictionary update sequence element "
                                         "has the wrong length");
                TPL_TRY(inf__tpl_dict_set(r, self.u.d, items[i].u.l->v[0], items[i].u.l->v[1]));
            }
        }
    }
    for (size_t k = 0; k < a->n_kw; k++) {
        struct tpl_val key;
        TPL_TRY(inf__tpl_str_cstr(r, a->kw_names[k], &key));
        TPL_TRY(inf__tpl_dict_set(r, self.u.d, key, a->kw[k]));
    }
    *out = tpl_none();
    return 0;
}

/* loop.cycle */
METHOD(m_cycle)
{
    if (a->n_pos == 0)
        return inf__tpl_fail(r, INF_ETYPE, "no items for cycling given");
    *out = a->pos[(size_t)self.u.loop->index0 % a->n_pos];
    return 0;
}

struct method {
    const char *name;
    tpl_builtin_fn fn;
};

static const struct method STR_METHODS[] = {
    {"strip", m_strip},
    {"lstrip", m_lstrip},
    {"rstrip", m_rstrip},
    {"split", m_split},
    {"rsplit", m_rsplit},
    {"splitlines", m_splitlines},
    {"startswith", m_startswith},
    {"endswith", m_endswith},
    {"replace", m_str_replace},
    {"upper", m_upper},
    {"lower", m_lower},
    {"title", m_title},
    {"capitalize", m_capitalize},
    {"swapcase", m_swapcase},
    {"find", m_find},
    {"rfind", m_rfind},
    {"index", m_str_index},
    {"count", m_str_count},
    {"join", m_join},
    {"isdigit", m_isdigit},
    {"isdecimal", m_isdigit},
    {"isnumeric", m_isdigit},
    {"isalpha", m_isalpha},
    {"isalnum", m_isalnum},
    {"isspace", m_isspace},
    {"islower", m_islower},
    {"isupper", m_isupper},
    {"center", m_center},
    {"ljust", m_ljust},
    {"rjust", m_rjust},
    {"zfill", m_zfill},
    {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix},
    {"partition", m_partition},
    {"rpartition", m_rpartition},
    {"format", m_format},
    {NULL, NULL},
};

static const struct method LIST_METHODS[] = {
    {"append", m_append},
    {"extend", m_extend},
    {"insert", m_insert},
    {"pop", m_pop},
    {"remove", m_remove},
    {"index", m_list_index},
    {"count", m_list_count},
    {"reverse", m_list_reverse},
    {"copy", m_copy},
    {"clear", m_clear},
    {NULL, NULL},
};

static const struct method TUPLE_METHODS[] = {
    {"index", m_list_index},
    {"count", m_list_count},
    {NULL, NULL},
};

static const struct method DICT_METHODS[] = {
    {"get", m_get},       {"items", m_items}, {"keys", m_keys},
    {"values", m_values}, {"pop", m_pop},     {"setdefault", m_setdefault},
    {"update", m_update}, {"copy", m_copy},   {"clear", m_clear},
    {NULL, NULL},
};

static const struct method *method_find(const struct method *tab, const char *name, size_t len)
{
    for (size_t i = 0; tab[i].name; i++)
        if (strlen(tab[i].name) == len && memcmp(tab[i].name, name, len) == 0)
            return &tab[i];
    return NULL;
}

/* ---- attribute and item access ---------------------------------------------------------- */

static int loop_attr(struct tpl_render *r, struct tpl_val self, const char *name, size_t len,
                     struct tpl_val *out)
{
    const struct tpl_loop *l = self.u.loop;
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("index"))
        *out = tpl_int(l->index0 + 1);
    else if (IS("index0"))
        *out = tpl_int(l->index0);
    else if (IS("revindex"))
        *out = tpl_int(l->length - l->index0);
    else if (IS("revindex0"))
        *out = tpl_int(l->length - l->index0 - 1);
    else if (IS("first"))
        *out = tpl_bool(l->index0 == 0);
    else if (IS("last"))
        *out = tpl_bool(l->index0 == l->length - 1);
    else if (IS("length"))
        *out = tpl_int(l->length);
    else if (IS("depth"))
        *out = tpl_int((int64_t)l->depth0 + 1);
    else if (IS("depth0"))
        *out = tpl_int((int64_t)l->depth0);
    else if (IS("previtem"))
        *out = l->index0 > 0 ? l->items[l->index0 - 1] : tpl_undef("previtem");
    else if (IS("nextitem"))
        *out = l->index0 + 1 < l->length ? l->items[l->index0 + 1] : tpl_undef("nextitem");
    else if (IS("cycle"))
        return make_method(r, "cycle", m_cycle, self, out);
    else
        *out = tpl_undef(NULL);
#undef IS
    return 0;
}

int inf__tpl_getattr(struct tpl_render *r, struct tpl_val obj, const char *name, size_t len,
                     struct tpl_val *out)
{
    const struct method *m = NULL;
    switch (obj.type) {
    case TPL_UNDEF:
        return inf__tpl_fail(r, INF_ETYPE, "'%s' is undefined (reading attribute '%.*s')",
                             obj.u.undef_name ? obj.u.undef_name : "value", (int)len, name);
    case TPL_STR:
        m = method_find(STR_METHODS, name, len);
        break;
    case TPL_LIST:
        m = method_find(LIST_METHODS, name, len);
        break;
    case TPL_TUPLE:
        m = method_find(TUPLE_METHODS, name, len);
        break;
    case TPL_DICT:
        m = method_find(DICT_METHODS, name, len);
        if (!m) {
            const struct tpl_val *v = inf__tpl_dict_get_str(obj.u.d, name, len);
            if (v) {
                *out = *v;
                return 0;
            }
        }
        break;
    case TPL_NS: {
        const struct tpl_val *v = inf__tpl_dict_get_str(obj.u.d, name, len);
        if (v) {
            *out = *v;
            return 0;
        }
        break;
    }
    case TPL_LOOP:
        return loop_attr(r, obj, name, len, out);
    default:
        break;
    }
    if (m)
        return make_method(r, m->name, m->fn, obj, out);
    /* a missing attribute is undefined; keep its name for messages */
    char *nm = inf__tpl_ralloc(r, len + 1);
    if (!nm)
        return -1;
    memcpy(nm, name, len);
    *out = tpl_undef(nm);
    return 0;
}

int inf__tpl_getitem(struct tpl_render *r, struct tpl_val obj, struct tpl_val key,
                     struct tpl_val *out)
{
    switch (obj.type) {
    case TPL_UNDEF:
        return inf__tpl_fail(r, INF_ETYPE, "'%s' is undefined",
                             obj.u.undef_name ? obj.u.undef_name : "value");
    case TPL_DICT:
        if (inf__tpl_hashable(key)) {
            const struct tpl_val *v = inf__tpl_dict_get(obj.u.d, key);
            if (v) {
                *out = *v;
                return 0;
            }
        }
        break;
    case TPL_LIST:
    case TPL_TUPLE:
        if (is_intv(key)) {
            int64_t i = ival(key), n = (int64_t)obj.u.l->n;
            if (i < 0)
                i += n;
            *out = i >= 0 && i < n ? obj.u.l->v[i] : tpl_undef(NULL);
            return 0;
        }
        break;
    case TPL_STR:
        if (is_intv(key)) {
            const struct tpl_str *s = obj.u.s;
            int64_t i = ival(key), n = (int64_t)s->nchars;
            if (i < 0)
                i += n;
            if (i < 0 || i >= n) {
                *out = tpl_undef(NULL);
                return 0;
            }
            if (s->nchars == s->len)
                return inf__tpl_str_sub(r, s, (size_t)i, 1, out);
            size_t *off = inf__tpl_str_offsets(r, s);
            if (!off)
                return -1;
            return inf__tpl_str_sub(r, s, off[i], off[i + 1] - off[i], out);
        }
        break;
    default:
        break;
    }
    if (key.type == TPL_STR)
        return inf__tpl_getattr(r, obj, key.u.s->data, key.u.s->len, out);
    *out = tpl_undef(NULL);
    return 0;
}

/* ---- filters ---------------------------------------------------------------------------- */

#define FILTER(name)                                                                               \
    static int name(struct tpl_render *r, struct tpl_val v, const struct tpl_args *a,              \
                    struct tpl_val *out)
/* a filter that is one call of a shared body */
#define FILTER_VIA(name, call)                                                                     \
    FILTER(name)                                                                                   \
    {                                                                                              \
        return call;                                                                               \
    }

FILTER(f_safe)
{
    *out = v;
    return 0;
}

FILTER_VIA(f_string, inf__tpl_to_str(r, v, out))

FILTER(f_trim)
{
    const struct tpl_str *chars;
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    TPL_TRY(opt_str_arg(r, a, 0, "chars", &chars));
    return do_strip(r, v.u.s, chars, 3, out);
}

FILTER(f_upper)
{
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    return convert_case(r, v.u.s, CASE_UPPER, out);
}

FILTER(f_lower)
{
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    return convert_case(r, v.u.s, CASE_LOWER, out);
}

FILTER(f_title)
{
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    return convert_case(r, v.u.s, CASE_JTITLE, out);
}

FILTER(f_capitalize)
{
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    return convert_case(r, v.u.s, CASE_CAPITALIZE, out);
}

FILTER(f_length)
{
    switch (v.type) {
    case TPL_UNDEF:
        *out = tpl_int(0);
        return 0;
    case TPL_STR:
        *out = tpl_int((int64_t)v.u.s->nchars);
        return 0;
    case TPL_LIST:
    case TPL_TUPLE:
        *out = tpl_int((int64_t)v.u.l->n);
        return 0;
    case TPL_DICT:
        *out = tpl_int((int64_t)v.u.d->n);
        return 0;
    case TPL_LOOP:
        *out = tpl_int(v.u.loop->length);
        return 0;
    default:
        return inf__tpl_fail(r, INF_ETYPE, "object of type '%s' has no len()",
                             inf__tpl_type_name(v));
    }
}

FILTER(f_default)
{
    const struct tpl_val *def = arg(a, 0, "default_value");
    bool boolean = arg_bool(a, 1, "boolean", false);
    if (v.type == TPL_UNDEF || (boolean && !inf__tpl_truthy(v))) {
        if (def)
            *out = *def;
        else
            return str_val(r, "", 0, out);
        return 0;
    }
    *out = v;
    return 0;
}

FILTER(f_join)
{
    const struct tpl_val *items;
    size_t n;
    struct tpl_val sep;
    const struct tpl_val *attr = arg(a, 1, "attribute");
    struct tpl_buf b = {0};
    TPL_TRY(arg_str(r, a, 0, "d", "", &sep));
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    for (size_t i = 0; i < n; i++) {
        struct tpl_val it = items[i];
        if (attr && attr->type != TPL_NONE && attr_path(r, it, *attr, &it))
            goto fail;
        if ((i && inf__tpl_buf_add_str(r, &b, sep.u.s)) || inf__tpl_write_str(r, &b, it))
            goto fail;
    }
    return buf_to_str(r, &b, out);
fail:
    inf__tpl_buf_free(&b);
    return -1;
}

FILTER_VIA(f_list, to_list(r, v, out))

FILTER(f_items)
{
    if (v.type == TPL_UNDEF)
        return inf__tpl_list_val(r, 0, false, out);
    if (v.type != TPL_DICT)
        return inf__tpl_fail(r, INF_ETYPE, "can only get item pairs from a mapping");
    return dict_view(r, v.u.d, 2, out);
}

FILTER(f_first)
{
    const struct tpl_val *items;
    size_t n;
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    *out = n ? items[0] : tpl_undef("first");
    return 0;
}

FILTER(f_last)
{
    const struct tpl_val *items;
    size_t n;
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    *out = n ? items[n - 1] : tpl_undef("last");
    return 0;
}

FILTER(f_reverse)
{
    if (v.type == TPL_STR) {
        const struct tpl_str *s = v.u.s;
        char *buf = malloc(s->len + 1);
        if (!buf)
            return inf__tpl_fail(r, INF_ENOMEM, "out of memory");
        size_t o = s->len;
        for (size_t i = 0; i < s->len;) {
            uint32_t cp;
            size_t n = inf__tpl_utf8_decode(s->data + i, s->len - i, &cp);
            o -= n;
            memcpy(buf + o, s->data + i, n);
            i += n;
        }
        int rc = str_val(r, buf, s->len, out);
        free(buf);
        return rc;
    }
    TPL_TRY(to_list(r, v, out));
    struct tpl_val ignored;
    return m_list_reverse(r, *out, a, &ignored);
}

/* Python's float(str): decimal or inf/nan, surrounding whitespace allowed, no hex. */
static bool py_parse_float(const char *s, size_t len, double *out)
{
    char buf[128];
    size_t n = 0;
    if (len >= sizeof(buf))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == 'x' || s[i] == 'X' || s[i] == 'p' || s[i] == 'P' || s[i] == '\0')
            return false;
        if (s[i] != '_')
            buf[n++] = s[i];
    }
    buf[n] = '\0';
    char *end;
    double f = strtod(buf, &end);
    if (end == buf)
        return false;
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r' || *end == '\f' ||
           *end == '\v')
        end++;
    if (*end)
        return false;
    *out = f;
    return true;
}

FILTER(f_int)
{
    int64_t def;
    TPL_TRY(arg_int(r, a, 0, "default", 0, &def));
    switch (v.type) {
    case TPL_INT:
        *out = v;
        return 0;
    case TPL_BOOL:
        *out = tpl_int(v.u.b);
        return 0;
    case TPL_FLOAT:
        if (v.u.f != v.u.f || fabs(v.u.f) >= 9.2e18)
            *out = tpl_int(def);
        else
            *out = tpl_int((int64_t)v.u.f);
        return 0;
    case TPL_STR: {
        int64_t base;
        TPL_TRY(arg_int(r, a, 1, "base", 10, &base));
        const struct tpl_str *s = v.u.s;
        char buf[128];
        size_t n = 0;
        bool ok = s->len < sizeof(buf) && base >= 2 && base <= 36;
        for (size_t i = 0; ok && i < s->len; i++) {
            if (s->data[i] == '\0')
                ok = false;
            else if (s->data[i] != '_')
                buf[n++] = s->data[i];
        }
        buf[n] = '\0';
        if (ok) {
            char *end;
            errno = 0;
            long long x = strtoll(buf, &end, (int)base);
            while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
                end++;
            if (end != buf && *end == '\0' && errno == 0) {
                *out = tpl_int(x);
                return 0;
            }
        }
        double f;
        if (py_parse_float(s->data, s->len, &f) && f == f && fabs(f) < 9.2e18) {
            *out = tpl_int((int64_t)f);
            return 0;
        }
        *out = tpl_int(def);
        return 0;
    }
    default:
        *out = tpl_int(def);
        return 0;
    }
}

FILTER(f_float)
{
    const struct tpl_val *defv = arg(a, 0, "default");
    struct tpl_val def = defv ? *defv : tpl_float(0.0);
    switch (v.type) {
    case TPL_INT:
    case TPL_BOOL:
        *out = tpl_float((double)ival(v));
        return 0;
    case TPL_FLOAT:
        *out = v;
        return 0;
    case TPL_STR: {
        double f;
        *out = py_parse_float(v.u.s->data, v.u.s->len, &f) ? tpl_float(f) : def;
        return 0;
    }
    default:
        *out = def;
        return 0;
    }
}

FILTER(f_abs)
{
    if (v.type == TPL_FLOAT) {
        *out = tpl_float(fabs(v.u.f));
        return 0;
    }
    if (is_intv(v)) {
        if (ival(v) == INT64_MIN)
            return inf__tpl_fail(r, INF_ERANGE, "integer overflow in abs");
        *out = tpl_int(ival(v) < 0 ? -ival(v) : ival(v));
        return 0;
    }
    return inf__tpl_fail(r, INF_ETYPE, "bad operand type for abs(): '%s'", inf__tpl_type_name(v));
}

FILTER(f_round)
{
    int64_t prec;
    struct tpl_val method;
    TPL_TRY(arg_int(r, a, 0, "precision", 0, &prec));
    TPL_TRY(arg_str(r, a, 1, "method", "common", &method));
    if (!is_intv(v) && v.type != TPL_FLOAT)
        return inf__tpl_fail(r, INF_ETYPE, "round expects a number, got %s", inf__tpl_type_name(v));
    if (is_intv(v) && strcmp(method.u.s->data, "common") == 0 && prec >= 0) {
        *out = tpl_int(ival(v)); /* Python's round(int, n) is the int itself */
        return 0;
    }
    double x = v.type == TPL_FLOAT ? v.u.f : (double)ival(v);
    if (prec < -300 || prec > 300)
        prec = prec < 0 ? -300 : 300;
    const char *m = method.u.s->data;
    if (strcmp(m, "common") == 0) {
        if (prec >= 0) {
            char buf[512];
            snprintf(buf, sizeof(buf), "%.*f", (int)(prec > 100 ? 100 : prec), x);
            *out = tpl_float(strtod(buf, NULL));
        } else {
            double p = pow(10, (double)-prec);
            *out = tpl_float(nearbyint(x / p) * p);
        }
        return 0;
    }
    double p = pow(10, (double)prec);
    if (strcmp(m, "ceil") == 0)
        *out = tpl_float(ceil(x * p) / p);
    else if (strcmp(m, "floor") == 0)
        *out = tpl_float(floor(x * p) / p);
    else
        return inf__tpl_fail(r, INF_ETYPE, "method must be common, ceil or floor");
    return 0;
}

FILTER(f_replace)
{
    struct tpl_val old, new_;
    int64_t count;
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    if (!arg(a, 0, "old") || !arg(a, 1, "new"))
        return inf__tpl_fail(r, INF_ETYPE, "replace needs two arguments");
    TPL_TRY(arg_str(r, a, 0, "old", NULL, &old));
    TPL_TRY(arg_str(r, a, 1, "new", NULL, &new_));
    TPL_TRY(arg_int(r, a, 2, "count", -1, &count));
    return do_replace(r, v.u.s, old.u.s, new_.u.s, count, out);
}

FILTER(f_tojson)
{
    struct tpl_json_opts o = {.item_sep = ", ", .key_sep = ": "};
    const struct tpl_val *indent = arg(a, 0, "indent");
    const struct tpl_val *ea = arg(a, 99, "ensure_ascii");
    const struct tpl_val *sepv = arg(a, 99, "separators");
    char spaces[64];
    o.ensure_ascii = ea && inf__tpl_truthy(*ea);
    o.sort_keys = arg_bool(a, 99, "sort_keys", false);
    if (indent && indent->type != TPL_NONE && indent->type != TPL_UNDEF) {
        if (indent->type == TPL_STR) {
            o.indent = indent->u.s->data;
            o.indent_len = indent->u.s->len;
        } else if (is_intv(*indent)) {
            int64_t n = ival(*indent);
            if (n < 0)
                n = 0;
            if (n >= (int64_t)sizeof(spaces))
                return inf__tpl_fail(r, INF_ERANGE, "indent is too large");
            memset(spaces, ' ', (size_t)n);
            spaces[n] = '\0';
            o.indent = spaces;
            o.indent_len = (size_t)n;
        } else {
            return inf__tpl_fail(r, INF_ETYPE, "indent must be an integer or a string");
        }
        o.item_sep = ",";
    }
    if (sepv && sepv->type != TPL_NONE && sepv->type != TPL_UNDEF) {
        if (!inf__tpl_is_seq(*sepv) || sepv->u.l->n != 2 || sepv->u.l->v[0].type != TPL_STR ||
            sepv->u.l->v[1].type != TPL_STR)
            return inf__tpl_fail(r, INF_ETYPE, "separators must be a pair of strings");
        o.item_sep = sepv->u.l->v[0].u.s->data;
        o.key_sep = sepv->u.l->v[1].u.s->data;
    }
    struct tpl_buf b = {0};
    if (inf__tpl_write_json(r, &b, v, &o)) {
        inf__tpl_buf_free(&b);
        return -1;
    }
    return buf_to_str(r, &b, out);
}

FILTER(f_from_json)
{
    json_error_t je;
    TPL_TRY(need_str(r, v, "from_json"));
    json_t *j = json_loadb(v.u.s->data, v.u.s->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        return inf__tpl_fail(r, INF_ETYPE, "from_json: invalid JSON: %s", je.text);
    int rc = inf__tpl_from_json(r, j, false, out);
    json_decref(j);
    return rc;
}

/* select / reject / selectattr / rejectattr */
static int select_common(struct tpl_render *r, struct tpl_val v, const struct tpl_args *a,
                         bool attr, bool keep, struct tpl_val *out)
{
    const struct tpl_val *items;
    size_t n, first = attr ? 1 : 0;
    if (!inf__tpl_truthy(v)) /* Jinja2: `if value:` - none, '' and [] give nothing */
        return inf__tpl_list_val(r, 0, false, out);
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    if (attr && a->n_pos < 1)
        return inf__tpl_fail(r, INF_ETYPE, "missing attribute argument");
    const char *test = NULL;
    int tid = -1;
    if (a->n_pos > first) {
        if (a->pos[first].type != TPL_STR)
            return inf__tpl_fail(r, INF_ETYPE, "test name must be a string");
        test = a->pos[first].u.s->data;
        tid = inf__tpl_test_find(test);
        if (tid < 0)
            return inf__tpl_fail(r, INF_ETYPE, "no test named '%s'", test);
    }
    struct tpl_args ta = {0};
    if (test) {
        ta.pos = a->pos + first + 1;
        ta.n_pos = a->n_pos - first - 1;
        ta.kw = a->kw;
        ta.kw_names = a->kw_names;
        ta.n_kw = a->n_kw;
    }
    TPL_TRY(inf__tpl_list_val(r, 0, false, out));
    for (size_t i = 0; i < n; i++) {
        struct tpl_val it = items[i];
        bool res;
        if (attr)
            TPL_TRY(attr_path(r, it, a->pos[0], &it));
        if (test)
            TPL_TRY(inf__tpl_test_call(r, tid, test, it, &ta, &res));
        else
            res = inf__tpl_truthy(it);
        if (res == keep)
            TPL_TRY(inf__tpl_list_push(r, out->u.l, items[i]));
    }
    return 0;
}

FILTER_VIA(f_select, select_common(r, v, a, false, true, out))

FILTER_VIA(f_reject, select_common(r, v, a, false, false, out))

FILTER_VIA(f_selectattr, select_common(r, v, a, true, true, out))

FILTER_VIA(f_rejectattr, select_common(r, v, a, true, false, out))

FILTER(f_map)
{
    const struct tpl_val *items;
    size_t n;
    if (!inf__tpl_truthy(v)) /* Jinja2: `if value:` */
        return inf__tpl_list_val(r, 0, false, out);
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    TPL_TRY(inf__tpl_list_val(r, n, false, out));
    const struct tpl_val *attr = NULL, *def = NULL;
    for (size_t k = 0; k < a->n_kw; k++) {
        if (strcmp(a->kw_names[k], "attribute") == 0)
            attr = &a->kw[k];
        else if (strcmp(a->kw_names[k], "default") == 0)
            def = &a->kw[k];
    }
    if (attr) {
        for (size_t i = 0; i < n; i++) {
            struct tpl_val it;
            TPL_TRY(attr_path(r, items[i], *attr, &it));
            if (it.type == TPL_UNDEF && def)
                it = *def;
            out->u.l->v[out->u.l->n++] = it;
        }
        return 0;
    }
    if (a->n_pos < 1 || a->pos[0].type != TPL_STR)
        return inf__tpl_fail(r, INF_ETYPE, "map needs a filter name or attribute=");
    const char *fname = a->pos[0].u.s->data;
    int fid = inf__tpl_filter_find(fname);
    if (fid < 0)
        return inf__tpl_fail(r, INF_ETYPE, "no filter named '%s'", fname);
    struct tpl_args fa = {a->pos + 1, a->n_pos - 1, a->kw_names, a->kw, a->n_kw};
    for (size_t i = 0; i < n; i++) {
        struct tpl_val it;
        TPL_TRY(inf__tpl_filter_call(r, fid, fname, items[i], &fa, &it));
        out->u.l->v[out->u.l->n++] = it;
    }
    return 0;
}

FILTER(f_attr)
{
    struct tpl_val name;
    TPL_TRY(arg_str(r, a, 0, "name", NULL, &name));
    if (v.type == TPL_DICT) {
        /* attr() is getattr only: dict items are not attributes */
        const struct method *m = method_find(DICT_METHODS, name.u.s->data, name.u.s->len);
        if (m)
            return make_method(r, m->name, m->fn, v, out);
        *out = tpl_undef(NULL);
        return 0;
    }
    return inf__tpl_getattr(r, v, name.u.s->data, name.u.s->len, out);
}

FILTER(f_unique)
{
    const struct tpl_val *items;
    size_t n;
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const struct tpl_val *attr = arg(a, 1, "attribute");
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    struct tpl_val seen, key;
    TPL_TRY(inf__tpl_list_val(r, 0, false, &seen));
    TPL_TRY(inf__tpl_list_val(r, 0, false, out));
    TPL_TRY(inf__tpl_work(r, n * n / 16));
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        TPL_TRY(sort_key(r, items[i], attr, cs, &key));
        for (size_t k = 0; k < seen.u.l->n && !dup; k++)
            TPL_TRY(inf__tpl_eq(r, seen.u.l->v[k], key, &dup));
        if (!dup) {
            TPL_TRY(inf__tpl_list_push(r, seen.u.l, key));
            TPL_TRY(inf__tpl_list_push(r, out->u.l, items[i]));
        }
    }
    return 0;
}

static int min_max(struct tpl_render *r, struct tpl_val v, const struct tpl_args *a, bool max,
                   struct tpl_val *out)
{
    const struct tpl_val *items;
    size_t n;
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const struct tpl_val *attr = arg(a, 1, "attribute");
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    if (n == 0) {
        *out = tpl_undef(max ? "max" : "min");
        return 0;
    }
    struct tpl_val best, bkey;
    best = items[0];
    TPL_TRY(sort_key(r, best, attr, cs, &bkey));
    for (size_t i = 1; i < n; i++) {
        struct tpl_val k;
        int c;
        TPL_TRY(sort_key(r, items[i], attr, cs, &k));
        TPL_TRY(inf__tpl_compare(r, k, bkey, max ? ">" : "<", &c));
        if (c != 2 && (max ? c > 0 : c < 0)) {
            best = items[i];
            bkey = k;
        }
    }
    *out = best;
    return 0;
}

FILTER_VIA(f_min, min_max(r, v, a, false, out))

FILTER_VIA(f_max, min_max(r, v, a, true, out))

FILTER(f_sort)
{
    const struct tpl_val *items;
    size_t n;
    bool reverse = arg_bool(a, 0, "reverse", false);
    bool cs = arg_bool(a, 1, "case_sensitive", false);
    const struct tpl_val *attr = arg(a, 2, "attribute");
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    struct tpl_val *keys = inf__tpl_ralloc(r, (n + 1) * sizeof(*keys));
    if (!keys)
        return -1;
    for (size_t i = 0; i < n; i++)
        TPL_TRY(sort_key(r, items[i], attr, cs, &keys[i]));
    size_t *order = sorted_order(r, keys, n, reverse);
    if (!order)
        return -1;
    TPL_TRY(inf__tpl_list_val(r, n, false, out));
    for (size_t i = 0; i < n; i++)
        out->u.l->v[out->u.l->n++] = items[order[i]];
    return 0;
}

FILTER(f_dictsort)
{
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    struct tpl_val by;
    TPL_TRY(arg_str(r, a, 1, "by", "key", &by));
    bool reverse = arg_bool(a, 2, "reverse", false);
    if (v.type != TPL_DICT)
        return inf__tpl_fail(r, INF_ETYPE, "dictsort expects a mapping, got %s",
                             inf__tpl_type_name(v));
    int pos;
    if (strcmp(by.u.s->data, "key") == 0)
        pos = 0;
    else if (strcmp(by.u.s->data, "value") == 0)
        pos = 1;
    else
        return inf__tpl_fail(r, INF_ETYPE, "you can only sort by either \"key\" or \"value\"");
    const struct tpl_dict *d = v.u.d;
    struct tpl_val *keys = inf__tpl_ralloc(r, (d->n + 1) * sizeof(*keys));
    if (!keys)
        return -1;
    for (size_t i = 0; i < d->n; i++)
        TPL_TRY(sort_key(r, pos ? d->v[i] : d->k[i], NULL, cs, &keys[i]));
    size_t *order = sorted_order(r, keys, d->n, reverse);
    if (!order)
        return -1;
    TPL_TRY(inf__tpl_list_val(r, d->n, false, out));
    for (size_t i = 0; i < d->n; i++) {
        struct tpl_val pair;
        TPL_TRY(inf__tpl_list_val(r, 2, true, &pair));
        pair.u.l->v[0] = d->k[order[i]];
        pair.u.l->v[1] = d->v[order[i]];
        pair.u.l->n = 2;
        out->u.l->v[out->u.l->n++] = pair;
    }
    return 0;
}

FILTER(f_sum)
{
    const struct tpl_val *items;
    size_t n;
    const struct tpl_val *attr = arg(a, 0, "attribute");
    const struct tpl_val *start = arg(a, 1, "start");
    struct tpl_val acc = start ? *start : tpl_int(0);
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    for (size_t i = 0; i < n; i++) {
        struct tpl_val it = items[i];
        if (attr && attr->type != TPL_NONE)
            TPL_TRY(attr_path(r, it, *attr, &it));
        bool fl = acc.type == TPL_FLOAT || it.type == TPL_FLOAT;
        if ((!is_intv(acc) && acc.type != TPL_FLOAT) || (!is_intv(it) && it.type != TPL_FLOAT))
            return inf__tpl_fail(r, INF_ETYPE, "sum expects numbers");
        if (fl) {
            double x = acc.type == TPL_FLOAT ? acc.u.f : (double)ival(acc);
            double y = it.type == TPL_FLOAT ? it.u.f : (double)ival(it);
            acc = tpl_float(x + y);
        } else {
            int64_t z;
            if (__builtin_add_overflow(ival(acc), ival(it), &z))
                return inf__tpl_fail(r, INF_ERANGE, "integer overflow in sum");
            acc = tpl_int(z);
        }
    }
    *out = acc;
    return 0;
}

FILTER(f_batch)
{
    int64_t count;
    const struct tpl_val *fill = arg(a, 1, "fill_with");
    const struct tpl_val *items;
    size_t n;
    TPL_TRY(arg_int(r, a, 0, "linecount", 1, &count));
    if (count <= 0)
        return inf__tpl_fail(r, INF_ETYPE, "batch size must be positive");
    TPL_TRY(inf__tpl_iter(r, v, &items, &n));
    TPL_TRY(inf__tpl_list_val(r, 0, false, out));
    struct tpl_val cur = {.type = TPL_UNDEF};
    for (size_t i = 0; i < n; i++) {
        if (cur.type == TPL_UNDEF)
            TPL_TRY(inf__tpl_list_val(r, 0, false, &cur));
        TPL_TRY(inf__tpl_list_push(r, cur.u.l, items[i]));
        if ((int64_t)cur.u.l->n == count) {
            TPL_TRY(inf__tpl_list_push(r, out->u.l, cur));
            cur.type = TPL_UNDEF;
        }
    }
    if (cur.type != TPL_UNDEF) {
        while (fill && fill->type != TPL_NONE && (int64_t)cur.u.l->n < count)
            TPL_TRY(inf__tpl_list_push(r, cur.u.l, *fill));
        TPL_TRY(inf__tpl_list_push(r, out->u.l, cur));
    }
    return 0;
}

FILTER(f_indent)
{
    const struct tpl_val *w = arg(a, 0, "width");
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    char spaces[256];
    const char *ind = spaces;
    size_t il;
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    if (w && w->type == TPL_STR) {
        ind = w->u.s->data;
        il = w->u.s->len;
    } else {
        int64_t n;
        TPL_TRY(arg_int(r, a, 0, "width", 4, &n));
        if (n < 0)
            n = 0;
        if (n >= (int64_t)sizeof(spaces))
            return inf__tpl_fail(r, INF_ERANGE, "indent width is too large");
        memset(spaces, ' ', (size_t)n);
        il = (size_t)n;
    }
    /* Jinja2: s += "\n"; then split into lines, indent all but the first (blank ones too
     * with blank=True) and join with "\n" */
    struct tpl_val s2, lines;
    struct tpl_buf b = {0};
    if (inf__tpl_buf_add(r, &b, v.u.s->data, v.u.s->len) || inf__tpl_buf_addc(r, &b, '\n') ||
        buf_to_str(r, &b, &s2))
        goto fail;
    TPL_TRY(do_splitlines(r, s2.u.s, false, &lines));
    if (first && inf__tpl_buf_add(r, &b, ind, il))
        goto fail;
    for (size_t i = 0; i < lines.u.l->n; i++) {
        const struct tpl_str *ln = lines.u.l->v[i].u.s;
        if (i) {
            if (inf__tpl_buf_addc(r, &b, '\n'))
                goto fail;
            if ((blank || ln->len) && inf__tpl_buf_add(r, &b, ind, il))
                goto fail;
        }
        if (inf__tpl_buf_add(r, &b, ln->data, ln->len))
            goto fail;
    }
    return buf_to_str(r, &b, out);
fail:
    inf__tpl_buf_free(&b);
    return -1;
}

FILTER(f_center)
{
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    struct tpl_val w = tpl_int(80);
    const struct tpl_val *wp = arg(a, 0, "width");
    struct tpl_args pa = {wp ? wp : &w, 1, NULL, NULL, 0};
    return m_center(r, v, &pa, out);
}

FILTER(f_escape)
{
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    const struct tpl_str *s = v.u.s;
    struct tpl_buf b = {0};
    for (size_t i = 0; i < s->len; i++) {
        const char *e = NULL;
        switch (s->data[i]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&#34;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            break;
        }
        if (e ? inf__tpl_buf_add(r, &b, e, strlen(e)) : inf__tpl_buf_addc(r, &b, s->data[i])) {
            inf__tpl_buf_free(&b);
            return -1;
        }
    }
    return buf_to_str(r, &b, out);
}

FILTER(f_wordcount)
{
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    const struct tpl_str *s = v.u.s;
    int64_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp;
        i += inf__tpl_utf8_decode(s->data + i, s->len - i, &cp);
        bool w = cp_alpha(cp) || cp_digit(cp) || cp == '_';
        if (w && !in_word)
            n++;
        in_word = w;
    }
    *out = tpl_int(n);
    return 0;
}

FILTER(f_truncate)
{
    int64_t length, leeway;
    struct tpl_val end;
    bool killwords = arg_bool(a, 1, "killwords", false);
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    TPL_TRY(arg_int(r, a, 0, "length", 255, &length));
    TPL_TRY(arg_str(r, a, 2, "end", "...", &end));
    TPL_TRY(arg_int(r, a, 3, "leeway", 5, &leeway));
    const struct tpl_str *s = v.u.s;
    if (length < (int64_t)end.u.s->nchars)
        return inf__tpl_fail(r, INF_ETYPE, "expected length >= %zu, got %lld", end.u.s->nchars,
                             (long long)length);
    if ((int64_t)s->nchars <= length + leeway) {
        *out = v;
        return 0;
    }
    size_t keep = (size_t)(length - (int64_t)end.u.s->nchars);
    size_t *off = inf__tpl_str_offsets(r, s);
    if (!off)
        return -1;
    size_t bytes = off[keep];
    if (!killwords) {
        const char *sp = rfind_bytes(s->data, bytes, " ", 1);
        if (sp)
            bytes = (size_t)(sp - s->data);
    }
    struct tpl_buf b = {0};
    if (inf__tpl_buf_add(r, &b, s->data, bytes) ||
        inf__tpl_buf_add(r, &b, end.u.s->data, end.u.s->len)) {
        inf__tpl_buf_free(&b);
        return -1;
    }
    return buf_to_str(r, &b, out);
}

FILTER(f_format)
{
    struct tpl_val args;
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    if (a->n_kw) {
        struct tpl_dict *d = inf__tpl_dict_new(r, a->n_kw);
        if (!d)
            return -1;
        for (size_t k = 0; k < a->n_kw; k++) {
            struct tpl_val key;
            TPL_TRY(inf__tpl_str_cstr(r, a->kw_names[k], &key));
            TPL_TRY(inf__tpl_dict_set(r, d, key, a->kw[k]));
        }
        args.type = TPL_DICT;
        args.u.d = d;
    } else {
        TPL_TRY(inf__tpl_list_val(r, a->n_pos, true, &args));
        for (size_t i = 0; i < a->n_pos; i++)
            args.u.l->v[args.u.l->n++] = a->pos[i];
    }
    return inf__tpl_percent(r, v, args, out);
}

FILTER(f_striptags)
{
    TPL_TRY(inf__tpl_to_str(r, v, &v));
    const struct tpl_str *s = v.u.s;
    struct tpl_buf b = {0};
    bool in_tag = false, space = false, any = false;
    for (size_t i = 0; i < s->len; i++) {
        char c = s->data[i];
        if (in_tag) {
            if (c == '>')
                in_tag = false;
            continue;
        }
        if (c == '<') {
            in_tag = true;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = any;
            continue;
        }
        if ((space && inf__tpl_buf_addc(r, &b, ' ')) || inf__tpl_buf_addc(r, &b, c)) {
            inf__tpl_buf_free(&b);
            return -1;
        }
        space = false;
        any = true;
    }
    return buf_to_str(r, &b, out);
}

struct filter {
    const char *name;
    tpl_builtin_fn fn;
};

static const struct filter FILTERS[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_escape},
    {"format", f_format},
    {"from_json", f_from_json},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"striptags", f_striptags},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"truncate", f_truncate},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

#define N_FILTERS (sizeof(FILTERS) / sizeof(FILTERS[0]))

/* The index of name in a table of n rows of stride bytes, each starting with its name; -1. */
static int table_find(const void *table, size_t n, size_t stride, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(*(const char *const *)((const char *)table + i * stride), name) == 0)
            return (int)i;
    return -1;
}

int inf__tpl_filter_find(const char *name)
{
    return table_find(FILTERS, N_FILTERS, sizeof(FILTERS[0]), name);
}

int inf__tpl_filter_call(struct tpl_render *r, int fid, const char *name, struct tpl_val v,
                         const struct tpl_args *a, struct tpl_val *out)
{
    if (fid < 0 || (size_t)fid >= N_FILTERS)
        return inf__tpl_fail(r, INF_ETYPE, "no filter named '%s'", name);
    TPL_TRY(inf__tpl_work(r, 1));
    return inf__tpl_builtin_call(r, FILTERS[fid].fn, v, a, out);
}

int inf__tpl_builtin_call(struct tpl_render *r, tpl_builtin_fn fn, struct tpl_val self,
                          const struct tpl_args *a, struct tpl_val *out)
{
    /* these keep the untrusted ranges exactly (a substring, or strings put end to end) */
    static const tpl_builtin_fn exact[] = {f_join, m_join, f_trim, m_strip, m_lstrip, m_rstrip};
    bool untrusted = false;
    if (r->any_taint) {
        bool is_exact = false;
        for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]) && !is_exact; i++)
            is_exact = fn == exact[i];
        untrusted = !is_exact && inf__tpl_tainted(r, self);
        for (size_t i = 0; !is_exact && !untrusted && i < a->n_pos; i++)
            untrusted = inf__tpl_tainted(r, a->pos[i]);
        for (size_t i = 0; !is_exact && !untrusted && i < a->n_kw; i++)
            untrusted = inf__tpl_tainted(r, a->kw[i]);
    }
    r->taint_scope += untrusted;
    int rc = fn(r, self, a, out);
    r->taint_scope -= untrusted;
    return rc;
}

/* ---- tests ------------------------------------------------------------------------------ */

typedef int (*tpl_test_fn)(struct tpl_render *r, struct tpl_val v, const struct tpl_args *a,
                           bool *out);

#define TEST(name)                                                                                 \
    static int name(struct tpl_render *r, struct tpl_val v, const struct tpl_args *a, bool *out)
/* a test that is one call of a shared body */
#define TEST_VIA(name, call)                                                                       \
    TEST(name)                                                                                     \
    {                                                                                              \
        return call;                                                                               \
    }

TEST(t_defined)
{
    *out = v.type != TPL_UNDEF;
    return 0;
}

TEST(t_undefined)
{
    *out = v.type == TPL_UNDEF;
    return 0;
}

TEST(t_none)
{
    *out = v.type == TPL_NONE;
    return 0;
}

TEST(t_boolean)
{
    *out = v.type == TPL_BOOL;
    return 0;
}

TEST(t_true)
{
    *out = v.type == TPL_BOOL && v.u.b;
    return 0;
}

TEST(t_false)
{
    *out = v.type == TPL_BOOL && !v.u.b;
    return 0;
}

TEST(t_integer)
{
    *out = v.type == TPL_INT;
    return 0;
}

TEST(t_float)
{
    *out = v.type == TPL_FLOAT;
    return 0;
}

TEST(t_number)
{
    *out = v.type == TPL_INT || v.type == TPL_FLOAT || v.type == TPL_BOOL;
    return 0;
}

TEST(t_string)
{
    *out = v.type == TPL_STR;
    return 0;
}

TEST(t_mapping)
{
    *out = v.type == TPL_DICT;
    return 0;
}

TEST(t_iterable)
{
    *out = v.type == TPL_STR || v.type == TPL_LIST || v.type == TPL_TUPLE || v.type == TPL_DICT ||
           v.type == TPL_UNDEF;
    return 0;
}

TEST(t_sequence)
{
    *out = v.type == TPL_STR || v.type == TPL_LIST || v.type == TPL_TUPLE || v.type == TPL_DICT ||
           v.type == TPL_UNDEF;
    return 0;
}

TEST(t_callable)
{
    *out = v.type == TPL_FUNC;
    return 0;
}

static int test_other(struct tpl_render *r, const struct tpl_args *a, struct tpl_val *o)
{
    const struct tpl_val *p = arg(a, 0, "other");
    *o = tpl_none();
    if (!p)
        return inf__tpl_fail(r, INF_ETYPE, "the test needs an argument");
    *o = *p;
    return 0;
}

TEST(t_eq)
{
    struct tpl_val o;
    TPL_TRY(test_other(r, a, &o));
    return inf__tpl_eq(r, v, o, out);
}

TEST(t_ne)
{
    struct tpl_val o;
    TPL_TRY(test_other(r, a, &o));
    TPL_TRY(inf__tpl_eq(r, v, o, out));
    *out = !*out;
    return 0;
}

static int test_order(struct tpl_render *r, struct tpl_val v, const struct tpl_args *a,
                      const char *op, bool *out)
{
    struct tpl_val o;
    int c;
    TPL_TRY(test_other(r, a, &o));
    TPL_TRY(inf__tpl_compare(r, v, o, op, &c));
    if (c == 2)
        *out = false;
    else if (op[0] == '<')
        *out = op[1] ? c <= 0 : c < 0;
    else
        *out = op[1] ? c >= 0 : c > 0;
    return 0;
}

TEST_VIA(t_lt, test_order(r, v, a, "<", out))

TEST_VIA(t_le, test_order(r, v, a, "<=", out))

TEST_VIA(t_gt, test_order(r, v, a, ">", out))

TEST_VIA(t_ge, test_order(r, v, a, ">=", out))

TEST(t_sameas)
{
    struct tpl_val o;
    TPL_TRY(test_other(r, a, &o));
    if (v.type != o.type) {
        *out = false;
        return 0;
    }
    switch (v.type) {
    case TPL_NONE:
    case TPL_UNDEF:
        *out = true;
        break;
    case TPL_BOOL:
        *out = v.u.b == o.u.b;
        break;
    case TPL_INT:
        *out = v.u.i == o.u.i;
        break;
    case TPL_FLOAT:
        *out = v.u.f == o.u.f;
        break;
    default:
        *out = v.u.s == o.u.s; /* same object */
    }
    return 0;
}

TEST(t_in)
{
    struct tpl_val o;
    TPL_TRY(test_other(r, a, &o));
    switch (o.type) {
    case TPL_STR:
        if (v.type != TPL_STR)
            return inf__tpl_fail(r, INF_ETYPE, "'in <string>' requires string as left operand");
        *out = memmem(o.u.s->data, o.u.s->len, v.u.s->data, v.u.s->len) != NULL || v.u.s->len == 0;
        return 0;
    case TPL_LIST:
    case TPL_TUPLE:
        *out = false;
        for (size_t i = 0; i < o.u.l->n && !*out; i++)
            TPL_TRY(inf__tpl_eq(r, o.u.l->v[i], v, out));
        return 0;
    case TPL_DICT:
        *out = inf__tpl_hashable(v) && inf__tpl_dict_get(o.u.d, v) != NULL;
        return 0;
    case TPL_UNDEF:
        *out = false;
        return 0;
    default:
        return inf__tpl_fail(r, INF_ETYPE, "argument of type '%s' is not iterable",
                             inf__tpl_type_name(o));
    }
}

TEST(t_odd)
{
    if (!is_intv(v))
        return inf__tpl_fail(r, INF_ETYPE, "odd expects an integer");
    *out = ival(v) % 2 != 0;
    return 0;
}

TEST(t_even)
{
    if (!is_intv(v))
        return inf__tpl_fail(r, INF_ETYPE, "even expects an integer");
    *out = ival(v) % 2 == 0;
    return 0;
}

TEST(t_divisibleby)
{
    int64_t n;
    TPL_TRY(arg_int(r, a, 0, "num", 1, &n));
    if (!is_intv(v))
        return inf__tpl_fail(r, INF_ETYPE, "divisibleby expects an integer");
    if (n == 0)
        return inf__tpl_fail(r, INF_ETYPE, "integer division or modulo by zero");
    *out = n == -1 || ival(v) % n == 0;
    return 0;
}

TEST(t_lower)
{
    *out = v.type == TPL_STR && str_pred(v, 4);
    return 0;
}

TEST(t_upper)
{
    *out = v.type == TPL_STR && str_pred(v, 5);
    return 0;
}

TEST(t_escaped)
{
    *out = false;
    return 0;
}

TEST(t_filter)
{
    *out = v.type == TPL_STR && inf__tpl_filter_find(v.u.s->data) >= 0;
    return 0;
}

TEST(t_test)
{
    *out = v.type == TPL_STR && inf__tpl_test_find(v.u.s->data) >= 0;
    return 0;
}

struct test {
    const char *name;
    tpl_test_fn fn;
};

static const struct test TESTS[] = {
    {"!=", t_ne},
    {"<", t_lt},
    {"<=", t_le},
    {"==", t_eq},
    {">", t_gt},
    {">=", t_ge},
    {"boolean", t_boolean},
    {"callable", t_callable},
    {"defined", t_defined},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"escaped", t_escaped},
    {"even", t_even},
    {"false", t_false},
    {"filter", t_filter},
    {"float", t_float},
    {"ge", t_ge},
    {"greaterthan", t_gt},
    {"gt", t_gt},
    {"in", t_in},
    {"integer", t_integer},
    {"iterable", t_iterable},
    {"le", t_le},
    {"lessthan", t_lt},
    {"lower", t_lower},
    {"lt", t_lt},
    {"mapping", t_mapping},
    {"ne", t_ne},
    {"none", t_none},
    {"number", t_number},
    {"odd", t_odd},
    {"sameas", t_sameas},
    {"sequence", t_sequence},
    {"string", t_string},
    {"test", t_test},
    {"true", t_true},
    {"undefined", t_undefined},
    {"upper", t_upper},
};

#define N_TESTS (sizeof(TESTS) / sizeof(TESTS[0]))

int inf__tpl_test_find(const char *name)
{
    return table_find(TESTS, N_TESTS, sizeof(TESTS[0]), name);
}

int inf__tpl_test_call(struct tpl_render *r, int fid, const char *name, struct tpl_val v,
                       const struct tpl_args *a, bool *out)
{
    if (fid < 0 || (size_t)fid >= N_TESTS)
        return inf__tpl_fail(r, INF_ETYPE, "no test named '%s'", name);
    TPL_TRY(inf__tpl_work(r, 1));
    return TESTS[fid].fn(r, v, a, out);
}

/* ---- global functions ------------------------------------------------------------------- */

METHOD(g_range)
{
    int64_t start = 0, stop, step = 1;
    if (a->n_pos == 0)
        return inf__tpl_fail(r, INF_ETYPE, "range expected at least 1 argument, got 0");
    for (size_t i = 0; i < a->n_pos && i < 3; i++)
        if (!is_intv(a->pos[i]))
            return inf__tpl_fail(r, INF_ETYPE, "range() needs integers, got %s",
                                 inf__tpl_type_name(a->pos[i]));
    if (a->n_pos == 1) {
        stop = ival(a->pos[0]);
    } else {
        start = ival(a->pos[0]);
        stop = ival(a->pos[1]);
        if (a->n_pos > 2)
            step = ival(a->pos[2]);
    }
    if (step == 0)
        return inf__tpl_fail(r, INF_ETYPE, "range() arg 3 must not be zero");
    uint64_t count = 0;
    if (step > 0 && start < stop) {
        uint64_t d = (uint64_t)stop - (uint64_t)start, s = (uint64_t)step;
        count = d / s + (d % s != 0);
    } else if (step < 0 && start > stop) {
        uint64_t d = (uint64_t)start - (uint64_t)stop, s = (uint64_t)(-(step + 1)) + 1;
        count = d / s + (d % s != 0);
    }
    if (count > r->max_iterations)
        return inf__tpl_fail(r, INF_ELIMIT, "range() of %llu items is over the loop limit",
                             (unsigned long long)count);
    TPL_TRY(inf__tpl_list_val(r, (size_t)count, false, out));
    for (uint64_t i = 0; i < count; i++)
        out->u.l->v[out->u.l->n++] = tpl_int(start + (int64_t)i * step);
    return 0;
}

static int kwargs_dict(struct tpl_render *r, const struct tpl_args *a, uint8_t type,
                       struct tpl_val *out)
{
    struct tpl_dict *d = inf__tpl_dict_new(r, a->n_kw);
    if (!d)
        return -1;
    if (a->n_pos > 0) {
        struct tpl_val src = a->pos[0];
        if (src.type != TPL_DICT && src.type != TPL_NS)
            return inf__tpl_fail(r, INF_ETYPE, "expected a mapping, got %s",
                                 inf__tpl_type_name(src));
        for (size_t i = 0; i < src.u.d->n; i++)
            TPL_TRY(inf__tpl_dict_set(r, d, src.u.d->k[i], src.u.d->v[i]));
    }
    for (size_t k = 0; k < a->n_kw; k++) {
        struct tpl_val key;
        TPL_TRY(inf__tpl_str_cstr(r, a->kw_names[k], &key));
        TPL_TRY(inf__tpl_dict_set(r, d, key, a->kw[k]));
    }
    out->type = type;
    out->u.d = d;
    return 0;
}

METHOD_VIA(g_namespace, kwargs_dict(r, a, TPL_NS, out))

METHOD_VIA(g_dict, kwargs_dict(r, a, TPL_DICT, out))

METHOD(g_raise_exception)
{
    struct tpl_val msg;
    if (a->n_pos == 0)
        return inf__tpl_raise(r, "raise_exception() called", 24);
    TPL_TRY(inf__tpl_to_str(r, a->pos[0], &msg));
    return inf__tpl_raise(r, msg.u.s->data, msg.u.s->len);
}

static const char *const WDAY[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                   "Thursday", "Friday", "Saturday"};
static const char *const MONTH[] = {"January",   "February", "March",    "April",
                                    "May",       "June",     "July",     "August",
                                    "September", "October",  "November", "December"};

/* strftime for the C locale, with glibc's '-', '_' and '0' flags. */
static int format_time(struct tpl_render *r, const struct tpl_str *fmt, const struct tm *tm,
                       bool utc, struct tpl_buf *b)
{
    for (size_t i = 0; i < fmt->len; i++) {
        char c = fmt->data[i];
        if (c != '%' || i + 1 >= fmt->len) {
            TPL_TRY(inf__tpl_buf_addc(r, b, c));
            continue;
        }
        size_t start = i;
        char flag = 0;
        c = fmt->data[++i];
        if ((c == '-' || c == '_' || c == '0' || c == '^') && i + 1 < fmt->len) {
            flag = c;
            c = fmt->data[++i];
        }
        char tmp[64];
        int num = -1, width = 2;
        const char *str = NULL;
        switch (c) {
        case 'a':
            snprintf(tmp, sizeof(tmp), "%.3s", WDAY[tm->tm_wday % 7]);
            str = tmp;
            break;
        case 'A':
            str = WDAY[tm->tm_wday % 7];
            break;
        case 'b':
        case 'h':
            snprintf(tmp, sizeof(tmp), "%.3s", MONTH[tm->tm_mon % 12]);
            str = tmp;
            break;
        case 'B':
            str = MONTH[tm->tm_mon % 12];
            break;
        case 'd':
            num = tm->tm_mday;
            break;
        case 'e':
            num = tm->tm_mday;
            if (!flag)
                flag = '_';
            break;
        case 'H':
            num = tm->tm_hour;
            break;
        case 'I':
            num = tm->tm_hour % 12 ? tm->tm_hour % 12 : 12;
            break;
        case 'j':
            num = tm->tm_yday + 1;
            width = 3;
            break;
        case 'm':
            num = tm->tm_mon + 1;
            break;
        case 'M':
            num = tm->tm_min;
            break;
        case 'S':
            num = tm->tm_sec;
            break;
        case 'p':
            str = tm->tm_hour < 12 ? "AM" : "PM";
            break;
        case 'y':
            num = (tm->tm_year + 1900) % 100;
            break;
        case 'Y':
            num = tm->tm_year + 1900;
            width = 1;
            break;
        case 'w':
            num = tm->tm_wday;
            width = 1;
            break;
        case 'u':
            num = tm->tm_wday ? tm->tm_wday : 7;
            width = 1;
            break;
        case 'Z':
            str = utc ? "UTC" : (tm->tm_zone ? tm->tm_zone : "");
            break;
        case 'z': {
            long off = utc ? 0 : tm->tm_gmtoff;
            snprintf(tmp, sizeof(tmp), "%c%02ld%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
                     (labs(off) % 3600) / 60);
            str = tmp;
            break;
        }
        case 'D':
            snprintf(tmp, sizeof(tmp), "%02d/%02d/%02d", tm->tm_mon + 1, tm->tm_mday,
                     (tm->tm_year + 1900) % 100);
            str = tmp;
            break;
        case 'F':
            snprintf(tmp, sizeof(tmp), "%d-%02d-%02d", tm->tm_year + 1900, tm->tm_mon + 1,
                     tm->tm_mday);
            str = tmp;
            break;
        case 'T':
            snprintf(tmp, sizeof(tmp), "%02d:%02d:%02d", tm->tm_hour, tm->tm_min, tm->tm_sec);
            str = tmp;
            break;
        case 'R':
            snprintf(tmp, sizeof(tmp), "%02d:%02d", tm->tm_hour, tm->tm_min);
            str = tmp;
            break;
        case 'c':
            snprintf(tmp, sizeof(tmp), "%.3s %.3s %2d %02d:%02d:%02d %d", WDAY[tm->tm_wday % 7],
                     MONTH[tm->tm_mon % 12], tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
                     tm->tm_year + 1900);
            str = tmp;
            break;
        case 'x':
            snprintf(tmp, sizeof(tmp), "%02d/%02d/%02d", tm->tm_mon + 1, tm->tm_mday,
                     (tm->tm_year + 1900) % 100);
            str = tmp;
            break;
        case 'X':
            snprintf(tmp, sizeof(tmp), "%02d:%02d:%02d", tm->tm_hour, tm->tm_min, tm->tm_sec);
            str = tmp;
            break;
        case 'n':
            str = "\n";
            break;
        case 't':
            str = "\t";
            break;
        case '%':
            str = "%";
            break;
        default:
            /* unknown conversions are copied as written */
            TPL_TRY(inf__tpl_buf_add(r, b, fmt->data + start, i - start + 1));
            continue;
        }
        if (num >= 0) {
            if (flag == '-')
                snprintf(tmp, sizeof(tmp), "%d", num);
            else if (flag == '_')
                snprintf(tmp, sizeof(tmp), "%*d", width, num);
            else
                snprintf(tmp, sizeof(tmp), "%0*d", width, num);
            str = tmp;
        }
        if (flag == '^' && str != tmp) {
            snprintf(tmp, sizeof(tmp), "%s", str);
            str = tmp;
        }
        if (flag == '^')
            for (char *q = tmp; *q; q++)
                if (*q >= 'a' && *q <= 'z')
                    *q = (char)(*q - 32);
        TPL_TRY(inf__tpl_buf_add(r, b, str, strlen(str)));
    }
    return 0;
}

METHOD(g_strftime_now)
{
    struct tpl_val fmt;
    struct tm tm;
    TPL_TRY(arg_str(r, a, 0, "format", NULL, &fmt));
    if (fmt.type != TPL_STR)
        return inf__tpl_fail(r, INF_ETYPE, "strftime_now needs a format string");
    time_t now = r->fixed_now ? (time_t)r->now : time(NULL);
    bool ok = r->fixed_now ? gmtime_r(&now, &tm) != NULL : localtime_r(&now, &tm) != NULL;
    if (!ok)
        return inf__tpl_fail(r, INF_EINVAL, "cannot read the clock");
    struct tpl_buf b = {0};
    if (format_time(r, fmt.u.s, &tm, r->fixed_now, &b)) {
        inf__tpl_buf_free(&b);
        return -1;
    }
    return buf_to_str(r, &b, out);
}

static const struct method GLOBALS[] = {
    {"range", g_range},
    {"namespace", g_namespace},
    {"dict", g_dict},
    {"raise_exception", g_raise_exception},
    {"strftime_now", g_strftime_now},
    {NULL, NULL},
};

tpl_builtin_fn inf__tpl_global_find(const char *name)
{
    const struct method *m = method_find(GLOBALS, name, strlen(name));
    return m ? m->fn : NULL;
}
