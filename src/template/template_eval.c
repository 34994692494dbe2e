/*
 * template_eval.c - executing a parsed chat template: statements, expressions, scopes, macros
 * and loops, with Jinja2's semantics.
 *
 * Scopes: the global scope is an array indexed by symbol; a for-loop body, a macro call and a
 * with block each get a local scope whose parent is the scope they were written in (a macro's
 * parent is the scope it was defined in, so top-level variables are looked up when it runs).
 * `set` writes to the innermost scope, so a `set` inside a loop does not leak out of it (use a
 * namespace), and `if` opens no scope.
 *
 * Errors propagate as -1 with the message recorded once in the render state; break and
 * continue propagate as EX_BREAK / EX_CONTINUE up to their loop.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/template_internal.h"

enum { EX_OK = 0, EX_BREAK = 1, EX_CONTINUE = 2 };

/* ---- errors and accounting -------------------------------------------------------------- */

int inf__tpl_fail(struct tpl_render *r, inf_status code, const char *fmt, ...)
{
    char msg[INF_ERROR_MSG_MAX];
    va_list ap;

    if (r->status != INF_OK)
        return -1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->status = code;
    if (r->cur)
        inf_error_set(r->err, code, "line %u, column %u: %s", r->cur->line, r->cur->col, msg);
    else
        inf_error_set(r->err, code, "%s", msg);
    return -1;
}

int inf__tpl_raise(struct tpl_render *r, const char *msg, size_t len)
{
    if (r->status != INF_OK)
        return -1;
    r->status = INF_EINVAL;
    if (len > INF_ERROR_MSG_MAX - 1)
        len = INF_ERROR_MSG_MAX - 1;
    inf_error_set(r->err, INF_EINVAL, "%.*s", (int)len, msg);
    return -1;
}

/* Fail when the render has used more than its share of the C stack. */
static int check_stack(struct tpl_render *r)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    uintptr_t used = here < r->stack_base ? r->stack_base - here : here - r->stack_base;
    if (used > r->max_stack)
        return inf__tpl_fail(r, INF_ELIMIT, "the template is nested too deeply");
    return 0;
}

int inf__tpl_work(struct tpl_render *r, uint64_t n)
{
    r->steps += n;
    if (r->steps > r->max_steps)
        return inf__tpl_fail(r, INF_ELIMIT,
                             "the template took more than %llu steps (it may never end)",
                             (unsigned long long)r->max_steps);
    return 0;
}

/* ---- scopes ----------------------------------------------------------------------------- */

static struct tpl_val *lookup(struct tpl_render *r, struct tpl_scope *sc, int32_t sym)
{
    for (; sc; sc = sc->parent) {
        r->steps += sc->n / 32; /* checked by the next inf__tpl_work() */
        for (size_t i = sc->n; i-- > 0;)
            if (sc->vars[i].sym == sym)
                return &sc->vars[i].val;
    }
    return &r->globals[sym];
}

static int assign(struct tpl_render *r, struct tpl_scope *sc, int32_t sym, struct tpl_val v)
{
    if (!sc) {
        r->globals[sym] = v;
        return 0;
    }
    TPL_TRY(inf__tpl_work(r, sc->n / 32));
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->vars[i].sym == sym) {
            sc->vars[i].val = v;
            return 0;
        }
    }
    TPL_TRY(inf__tpl_rgrow(r, &sc->vars, sc->n, &sc->cap, sizeof(*sc->vars), 8, SIZE_MAX, "scope"));
    sc->vars[sc->n].sym = sym;
    sc->vars[sc->n].val = v;
    sc->n++;
    return 0;
}

static struct tpl_scope *scope_new(struct tpl_render *r, struct tpl_scope *parent)
{
    struct tpl_scope *s = inf__tpl_ralloc(r, sizeof(*s));
    if (s)
        s->parent = parent;
    return s;
}

/* Bind targets (one name, or unpack v into several). */
static int bind_targets(struct tpl_render *r, struct tpl_scope *sc, const struct tpl_node *n,
                        struct tpl_val v)
{
    if (!(n->flags & TPL_FLAG_UNPACK))
        return assign(r, sc, n->syms[0], v);
    const struct tpl_val *items;
    size_t count;
    struct tpl_val tmp;
    if (inf__tpl_is_seq(v)) {
        items = v.u.l->v;
        count = v.u.l->n;
    } else if (v.type == TPL_DICT) {
        items = v.u.d->k;
        count = v.u.d->n;
    } else if (v.type == TPL_STR) {
        /* unpacking a string yields its characters */
        size_t *off = inf__tpl_str_offsets(r, v.u.s);
        if (!off)
            return -1;
        if (v.u.s->nchars != n->n_syms)
            return inf__tpl_fail(r, INF_ETYPE, "cannot unpack %zu values into %zu names",
                                 v.u.s->nchars, n->n_syms);
        for (size_t i = 0; i < n->n_syms; i++) {
            TPL_TRY(inf__tpl_str_sub(r, v.u.s, off[i], off[i + 1] - off[i], &tmp));
            TPL_TRY(assign(r, sc, n->syms[i], tmp));
        }
        return 0;
    } else {
        return inf__tpl_fail(r, INF_ETYPE, "cannot unpack non-iterable %s object",
                             inf__tpl_type_name(v));
    }
    if (count < n->n_syms)
        return inf__tpl_fail(r, INF_ETYPE, "not enough values to unpack (expected %zu, got %zu)",
                             n->n_syms, count);
    if (count > n->n_syms)
        return inf__tpl_fail(r, INF_ETYPE, "too many values to unpack (expected %zu)", n->n_syms);
    for (size_t i = 0; i < count; i++)
        TPL_TRY(assign(r, sc, n->syms[i], items[i]));
    return 0;
}

/* ---- expressions ------------------------------------------------------------------------ */

static int eval(struct tpl_render *r, struct tpl_scope *sc, const struct tpl_node *n,
                struct tpl_val *out);
static int exec_body(struct tpl_render *r, struct tpl_scope *sc, struct tpl_node *const *body,
                     size_t count);

static int undefined_error(struct tpl_render *r, struct tpl_val v)
{
    return inf__tpl_fail(r, INF_ETYPE, "'%s' is undefined",
                         v.u.undef_name ? v.u.undef_name : "value");
}

static bool is_int(struct tpl_val v)
{
    return v.type == TPL_INT || v.type == TPL_BOOL;
}

static int64_t ival(struct tpl_val v)
{
    return v.type == TPL_BOOL ? (int64_t)v.u.b : v.u.i;
}

static double fval(struct tpl_val v)
{
    return v.type == TPL_FLOAT ? v.u.f : (double)ival(v);
}

static bool is_number(struct tpl_val v)
{
    return is_int(v) || v.type == TPL_FLOAT;
}

static int type_error(struct tpl_render *r, const char *op, struct tpl_val a, struct tpl_val b)
{
    if (a.type == TPL_UNDEF)
        return undefined_error(r, a);
    if (b.type == TPL_UNDEF)
        return undefined_error(r, b);
    return inf__tpl_fail(r, INF_ETYPE, "unsupported operand type(s) for %s: '%s' and '%s'", op,
                         inf__tpl_type_name(a), inf__tpl_type_name(b));
}

static int concat_lists(struct tpl_render *r, struct tpl_val a, struct tpl_val b,
                        struct tpl_val *out)
{
    size_t n = a.u.l->n + b.u.l->n;
    TPL_TRY(inf__tpl_list_val(r, n, a.type == TPL_TUPLE, out));
    if (a.u.l->n)
        memcpy(out->u.l->v, a.u.l->v, a.u.l->n * sizeof(struct tpl_val));
    if (b.u.l->n)
        memcpy(out->u.l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(struct tpl_val));
    out->u.l->n = n;
    return 0;
}

static int repeat(struct tpl_render *r, struct tpl_val seq, int64_t times, struct tpl_val *out)
{
    if (times < 0)
        times = 0;
    if (seq.type == TPL_STR) {
        size_t len = seq.u.s->len;
        if (len && (uint64_t)times > r->max_output / len)
            return inf__tpl_fail(r, INF_ELIMIT,
                                 "repeated string is larger than the output "
                                 "limit");
        size_t total = len * (size_t)times;
        char *buf = malloc(total + 1);
        if (!buf)
            return inf__tpl_fail(r, INF_ENOMEM, "out of memory");
        for (int64_t i = 0; i < times; i++)
            memcpy(buf + (size_t)i * len, seq.u.s->data, len);
        int rc = inf__tpl_str_new(r, buf, total, out);
        free(buf);
        if (rc == 0 && seq.u.s->taint)
            rc = inf__tpl_str_taint_all(r, out->u.s);
        return rc;
    }
    size_t n = seq.u.l->n;
    if (n && (uint64_t)times > (r->max_output / 8) / n)
        return inf__tpl_fail(r, INF_ELIMIT, "repeated list is too large");
    TPL_TRY(inf__tpl_list_val(r, n * (size_t)times, seq.type == TPL_TUPLE, out));
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < n; k++)
            out->u.l->v[out->u.l->n++] = seq.u.l->v[k];
    return 0;
}

/* Python's '%' string formatting (the common conversions). */
static int percent(struct tpl_render *r, struct tpl_val fmt, struct tpl_val args,
                   struct tpl_val *out)
{
    const char *s = fmt.u.s->data;
    size_t len = fmt.u.s->len, argi = 0;
    const struct tpl_val *argv = &args;
    size_t argc = 1;
    struct tpl_buf b = {0};
    int rc = -1;

    if (args.type == TPL_TUPLE) {
        argv = args.u.l->v;
        argc = args.u.l->n;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            if (inf__tpl_buf_addc(r, &b, s[i]))
                goto out;
            continue;
        }
        if (++i >= len) {
            inf__tpl_fail(r, INF_ETYPE, "incomplete format");
            goto out;
        }
        if (s[i] == '%') {
            if (inf__tpl_buf_addc(r, &b, '%'))
                goto out;
            continue;
        }
        struct tpl_val arg;
        bool have_arg = false;
        if (s[i] == '(') {
            size_t k = i + 1;
            while (k < len && s[k] != ')')
                k++;
            if (k >= len || args.type != TPL_DICT) {
                inf__tpl_fail(r, INF_ETYPE, "format requires a mapping");
                goto out;
            }
            const struct tpl_val *v = inf__tpl_dict_get_str(args.u.d, s + i + 1, k - i - 1);
            if (!v) {
                inf__tpl_fail(r, INF_ETYPE, "key '%.*s' not found for format", (int)(k - i - 1),
                              s + i + 1);
                goto out;
            }
            arg = *v;
            have_arg = true;
            i = k + 1;
        }
        bool left = false, plus = false, space = false, alt = false, zero = false;
        int width = 0, prec = -1;
        while (i < len && strchr("-+ #0", s[i])) {
            left |= s[i] == '-';
            plus |= s[i] == '+';
            space |= s[i] == ' ';
            alt |= s[i] == '#';
            zero |= s[i] == '0';
            i++;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9' && width < 100000)
            width = width * 10 + (s[i++] - '0');
        if (i < len && s[i] == '.') {
            i++;
            prec = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9' && prec < 1000)
                prec = prec * 10 + (s[i++] - '0');
        }
        if (i >= len) {
            inf__tpl_fail(r, INF_ETYPE, "incomplete format");
            goto out;
        }
        char conv = s[i];
        if (!have_arg) {
            if (argi >= argc) {
                inf__tpl_fail(r, INF_ETYPE, "not enough arguments for format string");
                goto out;
            }
            arg = argv[argi++];
        }
        struct tpl_buf body = {0};
        const char *sign = "";
        int wrc = 0;
        if (conv == 's' || conv == 'r' || conv == 'a') {
            wrc = conv == 's' ? inf__tpl_write_str(r, &body, arg)
                              : inf__tpl_write_repr(r, &body, arg);
            if (wrc == 0 && prec >= 0 && body.p) {
                /* precision: at most prec characters */
                size_t k = 0, chars = 0;
                while (k < body.len && chars < (size_t)prec) {
                    uint32_t cp;
                    k += inf__tpl_utf8_decode(body.p + k, body.len - k, &cp);
                    chars++;
                }
                body.len = k;
            }
            zero = false;
        } else if (is_number(arg) && strchr("diuxXoeEfFgG", conv)) {
            char tmp[1100];
            int n;
            if (strchr("diuxXo", conv)) {
                if (arg.type == TPL_FLOAT && conv != 'd' && conv != 'i' && conv != 'u') {
                    inf__tpl_fail(r, INF_ETYPE, "%%%c format: an integer is required", conv);
                    goto out;
                }
                int64_t v = arg.type == TPL_FLOAT ? (int64_t)arg.u.f : ival(arg);
                uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
                if (conv == 'x')
                    n = snprintf(tmp, sizeof(tmp), alt ? "0x%llx" : "%llx",
                                 (unsigned long long)mag);
                else if (conv == 'X')
                    n = snprintf(tmp, sizeof(tmp), alt ? "0X%llX" : "%llX",
                                 (unsigned long long)mag);
                else if (conv == 'o')
                    n = snprintf(tmp, sizeof(tmp), alt ? "0o%llo" : "%llo",
                                 (unsigned long long)mag);
                else
                    n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)mag);
                sign = v < 0 ? "-" : plus ? "+" : space ? " " : "";
            } else {
                double v = fval(arg);
                int p = prec < 0 ? 6 : prec;
                double mag = v < 0 ? -v : v;
                n = snprintf(tmp, sizeof(tmp),
                             conv == 'e'   ? "%.*e"
                             : conv == 'E' ? "%.*E"
                             : conv == 'g' ? "%.*g"
                             : conv == 'G' ? "%.*G"
                                           : "%.*f",
                             p, mag);
                sign = signbit(v) ? "-" : plus ? "+" : space ? " " : "";
            }
            if (n < 0 || (size_t)n >= sizeof(tmp)) {
                inf__tpl_fail(r, INF_ETYPE, "format result too long");
                goto out;
            }
            wrc = inf__tpl_buf_add(r, &body, tmp, (size_t)n);
        } else if (strchr("diuxXoeEfFgG", conv)) {
            inf__tpl_fail(r, INF_ETYPE, "%%%c format: a number is required, not %s", conv,
                          inf__tpl_type_name(arg));
            goto out;
        } else {
            inf__tpl_fail(r, INF_ETYPE, "unsupported format character '%c'", conv);
            goto out;
        }
        if (wrc == 0) {
            size_t chars = strlen(sign);
            for (size_t k = 0; k < body.len; k++)
                chars += ((unsigned char)body.p[k] & 0xC0) != 0x80;
            size_t padn = (size_t)width > chars ? (size_t)width - chars : 0;
            if (!left && !zero)
                for (size_t k = 0; k < padn && wrc == 0; k++)
                    wrc = inf__tpl_buf_addc(r, &b, ' ');
            if (wrc == 0)
                wrc = inf__tpl_buf_add(r, &b, sign, strlen(sign));
            if (!left && zero)
                for (size_t k = 0; k < padn && wrc == 0; k++)
                    wrc = inf__tpl_buf_addc(r, &b, '0');
            if (wrc == 0 && body.p)
                wrc = inf__tpl_buf_add(r, &b, body.p, body.len);
            if (left)
                for (size_t k = 0; k < padn && wrc == 0; k++)
                    wrc = inf__tpl_buf_addc(r, &b, ' ');
        }
        inf__tpl_buf_free(&body);
        if (wrc)
            goto out;
    }
    if (args.type == TPL_TUPLE && argi < argc) {
        inf__tpl_fail(r, INF_ETYPE, "not all arguments converted during string formatting");
        goto out;
    }
    rc = inf__tpl_str_new(r, b.p ? b.p : "", b.len, out);
out:
    inf__tpl_buf_free(&b);
    return rc;
}

int inf__tpl_percent(struct tpl_render *r, struct tpl_val fmt, struct tpl_val args,
                     struct tpl_val *out)
{
    /* the result is untrusted as a whole when the format or an argument is */
    bool untrusted = inf__tpl_tainted(r, fmt) || inf__tpl_tainted(r, args);
    r->taint_scope += untrusted;
    int rc = percent(r, fmt, args, out);
    r->taint_scope -= untrusted;
    return rc;
}

static int arith(struct tpl_render *r, uint8_t op, struct tpl_val a, struct tpl_val b,
                 struct tpl_val *out)
{
    static const char *const names[] = {
        [OP_ADD] = "+",       [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/",
        [OP_FLOORDIV] = "//", [OP_MOD] = "%", [OP_POW] = "**"};
    const char *name = names[op];

    if (op == OP_ADD) {
        if (a.type == TPL_STR && b.type == TPL_STR) {
            size_t n = a.u.s->len + b.u.s->len;
            if (n > r->max_output)
                return inf__tpl_fail(r, INF_ELIMIT, "string is larger than the output limit");
            struct tpl_str *s = inf__tpl_ralloc(r, sizeof(*s) + n + 1);
            if (!s)
                return -1;
            memcpy(s->data, a.u.s->data, a.u.s->len);
            memcpy(s->data + a.u.s->len, b.u.s->data, b.u.s->len);
            s->data[n] = '\0';
            s->len = n;
            s->nchars = a.u.s->nchars + b.u.s->nchars;
            out->type = TPL_STR;
            out->u.s = s;
            return inf__tpl_str_concat_taint(r, s, a.u.s, b.u.s);
        }
        if ((a.type == TPL_LIST && b.type == TPL_LIST) ||
            (a.type == TPL_TUPLE && b.type == TPL_TUPLE))
            return concat_lists(r, a, b, out);
    }
    if (op == OP_MUL) {
        if ((a.type == TPL_STR || inf__tpl_is_seq(a)) && is_int(b))
            return repeat(r, a, ival(b), out);
        if ((b.type == TPL_STR || inf__tpl_is_seq(b)) && is_int(a))
            return repeat(r, b, ival(a), out);
    }
    if (op == OP_MOD && a.type == TPL_STR)
        return inf__tpl_percent(r, a, b, out);
    if (!is_number(a) || !is_number(b))
        return type_error(r, name, a, b);

    if (is_int(a) && is_int(b) && op != OP_DIV) {
        int64_t x = ival(a), y = ival(b), z = 0;
        bool overflow = false;
        switch (op) {
        case OP_ADD:
            overflow = __builtin_add_overflow(x, y, &z);
            break;
        case OP_SUB:
            overflow = __builtin_sub_overflow(x, y, &z);
            break;
        case OP_MUL:
            overflow = __builtin_mul_overflow(x, y, &z);
            break;
        case OP_FLOORDIV:
        case OP_MOD:
            if (y == 0)
                return inf__tpl_fail(r, INF_ETYPE, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) {
                overflow = op == OP_FLOORDIV;
                z = 0;
                break;
            }
            if (op == OP_FLOORDIV) {
                z = x / y;
                if ((x % y != 0) && ((x < 0) != (y < 0)))
                    z--;
            } else {
                z = x % y;
                if (z != 0 && ((z < 0) != (y < 0)))
                    z += y;
            }
            break;
        case OP_POW:
            if (y < 0) {
                *out = tpl_float(pow((double)x, (double)y));
                return 0;
            }
            z = 1;
            for (int64_t k = 0; k < y && !overflow; k++) {
                overflow = __builtin_mul_overflow(z, x, &z);
                if (z == 0 || z == 1 || (z == -1 && x == -1)) {
                    /* 0, 1 and -1 stay put: finish without looping */
                    if (x == -1)
                        z = ((y - k - 1) % 2 == 0) ? z : -z;
                    break;
                }
            }
            break;
        default:
            break;
        }
        if (overflow)
            return inf__tpl_fail(r, INF_ERANGE, "integer overflow in '%s'", name);
        *out = tpl_int(z);
        return 0;
    }
    double x = fval(a), y = fval(b), z;
    switch (op) {
    case OP_ADD:
        z = x + y;
        break;
    case OP_SUB:
        z = x - y;
        break;
    case OP_MUL:
        z = x * y;
        break;
    case OP_DIV:
        if (y == 0)
            return inf__tpl_fail(r, INF_ETYPE, "division by zero");
        z = x / y;
        break;
    case OP_FLOORDIV:
        if (y == 0)
            return inf__tpl_fail(r, INF_ETYPE, "float floor division by zero");
        z = floor(x / y);
        break;
    case OP_MOD:
        if (y == 0)
            return inf__tpl_fail(r, INF_ETYPE, "float modulo by zero");
        z = fmod(x, y);
        if (z != 0 && ((z < 0) != (y < 0)))
            z += y;
        break;
    case OP_POW:
        z = pow(x, y);
        break;
    default:
        z = 0;
    }
    *out = tpl_float(z);
    return 0;
}

/* Python's `item in container`. */
static int contains(struct tpl_render *r, struct tpl_val container, struct tpl_val item, bool *out)
{
    *out = false;
    switch (container.type) {
    case TPL_UNDEF:
        return 0;
    case TPL_STR:
        if (item.type != TPL_STR)
            return inf__tpl_fail(r, INF_ETYPE,
                                 "'in <string>' requires string as left operand, not %s",
                                 inf__tpl_type_name(item));
        TPL_TRY(inf__tpl_work(r, container.u.s->len / 64));
        *out = item.u.s->len == 0 || memmem(container.u.s->data, container.u.s->len, item.u.s->data,
                                            item.u.s->len) != NULL;
        return 0;
    case TPL_LIST:
    case TPL_TUPLE:
        TPL_TRY(inf__tpl_work(r, container.u.l->n / 8));
        for (size_t i = 0; i < container.u.l->n && !*out; i++)
            TPL_TRY(inf__tpl_eq(r, container.u.l->v[i], item, out));
        return 0;
    case TPL_DICT:
        if (!inf__tpl_hashable(item))
            return inf__tpl_fail(r, INF_ETYPE, "unhashable type: '%s'", inf__tpl_type_name(item));
        *out = inf__tpl_dict_get(container.u.d, item) != NULL;
        return 0;
    default:
        return inf__tpl_fail(r, INF_ETYPE, "argument of type '%s' is not iterable",
                             inf__tpl_type_name(container));
    }
}

static int compare_op(struct tpl_render *r, int op, struct tpl_val a, struct tpl_val b, bool *out)
{
    static const char *const names[] = {
        [OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">="};
    int c;
    switch (op) {
    case OP_EQ:
        return inf__tpl_eq(r, a, b, out);
    case OP_NE:
        TPL_TRY(inf__tpl_eq(r, a, b, out));
        *out = !*out;
        return 0;
    case OP_IN:
        return contains(r, b, a, out);
    case OP_NOTIN:
        TPL_TRY(contains(r, b, a, out));
        *out = !*out;
        return 0;
    default:
        TPL_TRY(inf__tpl_compare(r, a, b, names[op], &c));
        if (c == 2)
            *out = false;
        else
            *out = op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
        return 0;
    }
}

/* Python slice indices for a sequence of length len. */
static int slice_indices(struct tpl_render *r, int64_t len, const struct tpl_val *sv,
                         int64_t *start, int64_t *stop, int64_t *step)
{
    *start = *stop = 0;
    *step = 1;
    if (sv[2].type != TPL_NONE && sv[2].type != TPL_UNDEF) {
        if (!is_int(sv[2]))
            return inf__tpl_fail(r, INF_ETYPE, "slice indices must be integers or none");
        *step = ival(sv[2]);
        if (*step == 0)
            return inf__tpl_fail(r, INF_ETYPE, "slice step cannot be zero");
    }
    int64_t lower = *step < 0 ? -1 : 0, upper = *step < 0 ? len - 1 : len;
    for (int k = 0; k < 2; k++) {
        int64_t *dst = k == 0 ? start : stop;
        if (sv[k].type == TPL_NONE || sv[k].type == TPL_UNDEF) {
            *dst = (k == 0) == (*step < 0) ? upper : lower;
            continue;
        }
        if (!is_int(sv[k]))
            return inf__tpl_fail(r, INF_ETYPE, "slice indices must be integers or none");
        int64_t v = ival(sv[k]);
        if (v < 0) {
            v = v < -len ? lower : v + len;
            if (v < lower)
                v = lower;
        } else if (v > upper) {
            v = upper;
        }
        *dst = v;
    }
    return 0;
}

static int do_slice(struct tpl_render *r, struct tpl_val obj, const struct tpl_val *sv,
                    struct tpl_val *out)
{
    int64_t start, stop, step, len;
    if (obj.type == TPL_UNDEF)
        return undefined_error(r, obj);
    if (obj.type == TPL_STR)
        len = (int64_t)obj.u.s->nchars;
    else if (inf__tpl_is_seq(obj))
        len = (int64_t)obj.u.l->n;
    else
        return inf__tpl_fail(r, INF_ETYPE, "'%s' object is not subscriptable",
                             inf__tpl_type_name(obj));
    TPL_TRY(slice_indices(r, len, sv, &start, &stop, &step));
    size_t count = 0;
    if (step > 0 && start < stop)
        count = (size_t)((stop - start + step - 1) / step);
    else if (step < 0 && start > stop)
        count = (size_t)((start - stop - step - 1) / -step);
    if (obj.type == TPL_STR) {
        const struct tpl_str *s = obj.u.s;
        if (step == 1 && s->nchars == s->len)
            return inf__tpl_str_sub(r, s, (size_t)start, count, out);
        size_t *off = inf__tpl_str_offsets(r, s);
        if (!off)
            return -1;
        if (step == 1)
            return inf__tpl_str_sub(r, s, off[start], off[start + (int64_t)count] - off[start],
                                    out);
        char *buf = malloc(s->len + 1);
        if (!buf)
            return inf__tpl_fail(r, INF_ENOMEM, "out of memory");
        size_t o = 0;
        int64_t i = start;
        for (size_t k = 0; k < count; k++, i += step) {
            size_t n = off[i + 1] - off[i];
            memcpy(buf + o, s->data + off[i], n);
            o += n;
        }
        int rc = inf__tpl_str_new(r, buf, o, out);
        free(buf);
        if (rc == 0 && s->taint)
            rc = inf__tpl_str_taint_all(r, out->u.s);
        return rc;
    }
    TPL_TRY(inf__tpl_list_val(r, count, obj.type == TPL_TUPLE, out));
    int64_t i = start;
    for (size_t k = 0; k < count; k++, i += step)
        out->u.l->v[out->u.l->n++] = obj.u.l->v[i];
    return 0;
}

/* Evaluate call arguments into a (arena) tpl_args. */
static int eval_args(struct tpl_render *r, struct tpl_scope *sc, const struct tpl_node *n,
                     const struct tpl_val *first, struct tpl_args *a)
{
    size_t extra = first ? 1 : 0;
    struct tpl_val *pos = NULL, *kw = NULL;
    memset(a, 0, sizeof(*a));
    if (n->n + extra) {
        pos = inf__tpl_ralloc(r, (n->n + extra) * sizeof(*pos));
        if (!pos)
            return -1;
        if (first)
            pos[0] = *first;
        for (size_t i = 0; i < n->n; i++)
            TPL_TRY(eval(r, sc, n->list[i], &pos[i + extra]));
    }
    if (n->n2) {
        kw = inf__tpl_ralloc(r, n->n2 * sizeof(*kw));
        if (!kw)
            return -1;
        for (size_t i = 0; i < n->n2; i++)
            TPL_TRY(eval(r, sc, n->list2[i], &kw[i]));
    }
    a->pos = pos;
    a->n_pos = n->n + extra;
    a->kw = kw;
    a->kw_names = n->kw;
    a->n_kw = n->n2;
    return 0;
}

static int call_macro(struct tpl_render *r, const struct tpl_func *fn, const struct tpl_args *a,
                      struct tpl_val *out)
{
    const struct tpl_node *m = fn->node;
    const struct inf_template *t = r->t;
    struct tpl_scope *sc;
    struct tpl_val extra_pos = {.type = TPL_UNDEF}, extra_kw = {.type = TPL_UNDEF};

    if (r->depth >= r->max_depth)
        return inf__tpl_fail(r, INF_ELIMIT, "macro calls nested more than %u deep", r->max_depth);
    sc = scope_new(r, fn->closure);
    if (!sc)
        return -1;
    for (size_t i = 0; i < m->n_syms; i++) {
        const char *pname = t->sym_names[m->syms[i]];
        struct tpl_val v = tpl_undef(pname);
        bool set = false;
        if (i < a->n_pos) {
            v = a->pos[i];
            set = true;
        }
        for (size_t k = 0; k < a->n_kw; k++) {
            if (strcmp(a->kw_names[k], pname) == 0) {
                if (set)
                    return inf__tpl_fail(r, INF_ETYPE,
                                         "macro '%s' got multiple values for argument '%s'",
                                         fn->name ? fn->name : "caller", pname);
                v = a->kw[k];
                set = true;
            }
        }
        if (!set && m->list2 && m->list2[i]) {
            /* defaults see the arguments before them */
            TPL_TRY(assign(r, sc, m->syms[i], tpl_undef(pname)));
            TPL_TRY(eval(r, sc, m->list2[i], &v));
        }
        TPL_TRY(assign(r, sc, m->syms[i], v));
    }
    if (t->sym_varargs >= 0) {
        TPL_TRY(inf__tpl_list_val(r, 0, true, &extra_pos));
        for (size_t i = m->n_syms; i < a->n_pos; i++)
            TPL_TRY(inf__tpl_list_push(r, extra_pos.u.l, a->pos[i]));
        TPL_TRY(assign(r, sc, t->sym_varargs, extra_pos));
    }
    if (t->sym_kwargs >= 0) {
        struct tpl_dict *d = inf__tpl_dict_new(r, 0);
        if (!d)
            return -1;
        for (size_t k = 0; k < a->n_kw; k++) {
            bool known = false;
            for (size_t i = 0; i < m->n_syms && !known; i++)
                known = strcmp(a->kw_names[k], t->sym_names[m->syms[i]]) == 0;
            if (!known) {
                struct tpl_val key;
                TPL_TRY(inf__tpl_str_cstr(r, a->kw_names[k], &key));
                TPL_TRY(inf__tpl_dict_set(r, d, key, a->kw[k]));
            }
        }
        extra_kw.type = TPL_DICT;
        extra_kw.u.d = d;
        TPL_TRY(assign(r, sc, t->sym_kwargs, extra_kw));
    }
    if (t->sym_caller >= 0 && fn->caller) {
        struct tpl_val cv = {.type = TPL_FUNC};
        cv.u.fn = fn->caller;
        TPL_TRY(assign(r, sc, t->sym_caller, cv));
    }

    struct tpl_buf buf = {0}, *saved = r->out;
    unsigned saved_loops = r->loop_depth;
    r->out = &buf;
    r->depth++;
    r->loop_depth = 0;
    int rc = exec_body(r, sc, m->list, m->n);
    r->depth--;
    r->loop_depth = saved_loops;
    r->out = saved;
    if (rc == 0)
        rc = inf__tpl_str_buf(r, &buf, out);
    inf__tpl_buf_free(&buf);
    return rc < 0 ? -1 : 0;
}

int inf__tpl_call(struct tpl_render *r, struct tpl_val fn, const struct tpl_args *a,
                  struct tpl_val *out)
{
    if (fn.type == TPL_UNDEF)
        return undefined_error(r, fn);
    if (fn.type != TPL_FUNC)
        return inf__tpl_fail(r, INF_ETYPE, "'%s' object is not callable", inf__tpl_type_name(fn));
    TPL_TRY(inf__tpl_work(r, 1));
    if (fn.u.fn->kind == FN_MACRO)
        return call_macro(r, fn.u.fn, a, out);
    return inf__tpl_builtin_call(r, fn.u.fn->fn, fn.u.fn->self, a, out);
}

static int eval_filter(struct tpl_render *r, struct tpl_scope *sc, const struct tpl_node *n,
                       const struct tpl_val *inner, struct tpl_val *out)
{
    struct tpl_val v;
    struct tpl_args a;
    if (!n->a) {
        v = inner ? *inner : tpl_undef(NULL);
    } else if (n->a->kind == N_FILTER && inner) {
        TPL_TRY(eval_filter(r, sc, n->a, inner, &v));
    } else {
        TPL_TRY(eval(r, sc, n->a, &v));
    }
    TPL_TRY(eval_args(r, sc, n, NULL, &a));
    r->cur = n;
    return inf__tpl_filter_call(r, n->fid, n->name, v, &a, out);
}

static int eval(struct tpl_render *r, struct tpl_scope *sc, const struct tpl_node *n,
                struct tpl_val *out)
{
    struct tpl_val a, b;

    r->cur = n;
    TPL_TRY(inf__tpl_work(r, 1));
    TPL_TRY(check_stack(r));
    switch (n->kind) {
    case N_LIT:
        *out = n->lit;
        return 0;
    case N_NAME:
        *out = *lookup(r, sc, n->sym);
        if (out->type == TPL_UNDEF && !out->u.undef_name)
            out->u.undef_name = n->name;
        return 0;
    case N_LIST:
    case N_TUPLE:
        TPL_TRY(inf__tpl_list_val(r, n->n, n->kind == N_TUPLE, out));
        for (size_t i = 0; i < n->n; i++) {
            TPL_TRY(eval(r, sc, n->list[i], &a));
            out->u.l->v[out->u.l->n++] = a;
        }
        return 0;
    case N_DICT: {
        struct tpl_dict *d = inf__tpl_dict_new(r, n->n);
        if (!d)
            return -1;
        for (size_t i = 0; i < n->n; i++) {
            TPL_TRY(eval(r, sc, n->list[i], &a));
            TPL_TRY(eval(r, sc, n->list2[i], &b));
            r->cur = n->list[i];
            TPL_TRY(inf__tpl_dict_set(r, d, a, b));
        }
        out->type = TPL_DICT;
        out->u.d = d;
        return 0;
    }
    case N_GETATTR:
        TPL_TRY(eval(r, sc, n->a, &a));
        r->cur = n;
        return inf__tpl_getattr(r, a, n->name, strlen(n->name), out);
    case N_GETITEM:
        TPL_TRY(eval(r, sc, n->a, &a));
        if (n->b->kind == N_SLICE) {
            struct tpl_val sv[3] = {tpl_none(), tpl_none(), tpl_none()};
            const struct tpl_node *parts[3] = {n->b->a, n->b->b, n->b->c};
            for (int k = 0; k < 3; k++)
                if (parts[k])
                    TPL_TRY(eval(r, sc, parts[k], &sv[k]));
            r->cur = n;
            return do_slice(r, a, sv, out);
        }
        TPL_TRY(eval(r, sc, n->b, &b));
        r->cur = n;
        return inf__tpl_getitem(r, a, b, out);
    case N_UNARY:
        TPL_TRY(eval(r, sc, n->a, &a));
        r->cur = n;
        if (n->op == OP_NOT) {
            *out = tpl_bool(!inf__tpl_truthy(a));
            return 0;
        }
        if (a.type == TPL_UNDEF)
            return undefined_error(r, a);
        if (!is_number(a))
            return inf__tpl_fail(r, INF_ETYPE, "bad operand type for unary %s: '%s'",
                                 n->op == OP_NEG ? "-" : "+", inf__tpl_type_name(a));
        if (n->op == OP_POS) {
            *out = a.type == TPL_BOOL ? tpl_int(a.u.b) : a;
        } else if (a.type == TPL_FLOAT) {
            *out = tpl_float(-a.u.f);
        } else {
            if (ival(a) == INT64_MIN)
                return inf__tpl_fail(r, INF_ERANGE, "integer overflow in unary '-'");
            *out = tpl_int(-ival(a));
        }
        return 0;
    case N_BINARY:
        TPL_TRY(eval(r, sc, n->a, &a));
        if (n->op == OP_AND || n->op == OP_OR) {
            bool t = inf__tpl_truthy(a);
            if ((n->op == OP_AND) != t) {
                *out = a;
                return 0;
            }
            return eval(r, sc, n->b, out);
        }
        TPL_TRY(eval(r, sc, n->b, &b));
        r->cur = n;
        if (n->op == OP_CONCAT) {
            struct tpl_val sa, sb;
            TPL_TRY(inf__tpl_to_str(r, a, &sa));
            TPL_TRY(inf__tpl_to_str(r, b, &sb));
            return arith(r, OP_ADD, sa, sb, out);
        }
        return arith(r, n->op, a, b, out);
    case N_COMPARE: {
        TPL_TRY(eval(r, sc, n->a, &a));
        for (size_t i = 0; i < n->n; i++) {
            bool res;
            TPL_TRY(eval(r, sc, n->list[i], &b));
            r->cur = n->list[i];
            TPL_TRY(compare_op(r, n->syms[i], a, b, &res));
            if (!res) {
                *out = tpl_bool(false);
                return 0;
            }
            a = b;
        }
        *out = tpl_bool(true);
        return 0;
    }
    case N_COND:
        TPL_TRY(eval(r, sc, n->b, &a));
        if (inf__tpl_truthy(a))
            return eval(r, sc, n->a, out);
        if (n->c)
            return eval(r, sc, n->c, out);
        *out = tpl_undef(NULL);
        return 0;
    case N_CALL: {
        struct tpl_val fn;
        struct tpl_args args;
        TPL_TRY(eval(r, sc, n->a, &fn));
        TPL_TRY(eval_args(r, sc, n, NULL, &args));
        r->cur = n;
        return inf__tpl_call(r, fn, &args, out);
    }
    case N_FILTER:
        return eval_filter(r, sc, n, NULL, out);
    case N_TEST: {
        struct tpl_args args;
        bool res;
        TPL_TRY(eval(r, sc, n->a, &a));
        TPL_TRY(eval_args(r, sc, n, NULL, &args));
        r->cur = n;
        TPL_TRY(inf__tpl_test_call(r, n->fid, n->name, a, &args, &res));
        *out = tpl_bool(res);
        return 0;
    }
    default:
        return inf__tpl_fail(r, INF_EINTERNAL, "unexpected node %d in an expression", n->kind);
    }
}

/* ---- statements ------------------------------------------------------------------------- */

static int emit_value(struct tpl_render *r, struct tpl_val v)
{
    if (v.type == TPL_STR)
        return inf__tpl_buf_add_str(r, r->out, v.u.s);
    return inf__tpl_write_str(r, r->out, v);
}

/* Run body with output captured into a new string. */
static int capture(struct tpl_render *r, struct tpl_scope *sc, struct tpl_node *const *body,
                   size_t count, struct tpl_val *out)
{
    struct tpl_buf buf = {0}, *saved = r->out;
    r->out = &buf;
    int rc = exec_body(r, sc, body, count);
    r->out = saved;
    if (rc == 0)
        rc = inf__tpl_str_buf(r, &buf, out);
    inf__tpl_buf_free(&buf);
    return rc;
}

/* The items a for loop walks: a snapshot of a list, the keys of a dict, a string's chars. */
int inf__tpl_iter(struct tpl_render *r, struct tpl_val v, const struct tpl_val **items,
                  size_t *count)
{
    switch (v.type) {
    case TPL_UNDEF:
        *items = NULL;
        *count = 0;
        return 0;
    case TPL_LIST:
    case TPL_TUPLE:
        *items = v.u.l->v;
        *count = v.u.l->n;
        return 0;
    case TPL_DICT: {
        struct tpl_val *keys = inf__tpl_ralloc(r, (v.u.d->n + 1) * sizeof(*keys));
        if (!keys)
            return -1;
        if (v.u.d->n)
            memcpy(keys, v.u.d->k, v.u.d->n * sizeof(*keys));
        *items = keys;
        *count = v.u.d->n;
        return 0;
    }
    case TPL_STR: {
        const struct tpl_str *s = v.u.s;
        struct tpl_val *chars = inf__tpl_ralloc(r, (s->nchars + 1) * sizeof(*chars));
        if (!chars)
            return -1;
        size_t k = 0;
        for (size_t i = 0; i < s->len;) {
            uint32_t cp;
            size_t n = inf__tpl_utf8_decode(s->data + i, s->len - i, &cp);
            TPL_TRY(inf__tpl_str_sub(r, s, i, n, &chars[k++]));
            i += n;
        }
        *items = chars;
        *count = k;
        return 0;
    }
    default:
        return inf__tpl_fail(r, INF_ETYPE, "'%s' object is not iterable", inf__tpl_type_name(v));
    }
}

static int exec_for(struct tpl_render *r, struct tpl_scope *sc, const struct tpl_node *n)
{
    struct tpl_val seq;
    const struct tpl_val *items;
    size_t count;

    TPL_TRY(eval(r, sc, n->a, &seq));
    r->cur = n->a;
    TPL_TRY(inf__tpl_iter(r, seq, &items, &count));
    struct tpl_scope *ls = scope_new(r, sc);
    if (!ls)
        return -1;
    if (n->b && count) {
        struct tpl_val *kept = inf__tpl_ralloc(r, count * sizeof(*kept));
        size_t nk = 0;
        if (!kept)
            return -1;
        for (size_t i = 0; i < count; i++) {
            struct tpl_val c;
            if (++r->iterations > r->max_iterations)
                return inf__tpl_fail(r, INF_ELIMIT, "more than %llu loop iterations",
                                     (unsigned long long)r->max_iterations);
            ls->n = 0;
            r->cur = n;
            TPL_TRY(bind_targets(r, ls, n, items[i]));
            TPL_TRY(eval(r, ls, n->b, &c));
            if (inf__tpl_truthy(c))
                kept[nk++] = items[i];
        }
        items = kept;
        count = nk;
    }
    if (count == 0)
        return exec_body(r, sc, n->list2, n->n2);

    struct tpl_loop *loop = inf__tpl_ralloc(r, sizeof(*loop));
    if (!loop)
        return -1;
    loop->items = items;
    loop->length = (int64_t)count;
    loop->depth0 = 0; /* recursive loops are not supported: always the outermost level */
    struct tpl_val lv = {.type = TPL_LOOP};
    lv.u.loop = loop;
    r->loop_depth++;
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        if (++r->iterations > r->max_iterations) {
            r->cur = n;
            rc = inf__tpl_fail(r, INF_ELIMIT, "more than %llu loop iterations",
                               (unsigned long long)r->max_iterations);
            break;
        }
        loop->index0 = (int64_t)i;
        ls->n = 0;
        r->cur = n;
        if (bind_targets(r, ls, n, items[i]) ||
            (r->t->sym_loop >= 0 && assign(r, ls, r->t->sym_loop, lv))) {
            rc = -1;
            break;
        }
        rc = exec_body(r, ls, n->list, n->n);
        if (rc == EX_BREAK) {
            rc = 0;
            break;
        }
        if (rc == EX_CONTINUE)
            rc = 0;
        if (rc < 0)
            break;
    }
    r->loop_depth--;
    return rc;
}

static int exec(struct tpl_render *r, struct tpl_scope *sc, const struct tpl_node *n)
{
    struct tpl_val v;

    r->cur = n;
    TPL_TRY(inf__tpl_work(r, 1));
    TPL_TRY(check_stack(r));
    switch (n->kind) {
    case N_TEXT:
        return inf__tpl_buf_add(r, r->out, n->lit.u.s->data, n->lit.u.s->len);
    case N_OUTPUT:
        TPL_TRY(eval(r, sc, n->a, &v));
        r->cur = n;
        return emit_value(r, v);
    case N_IF:
        for (;;) {
            TPL_TRY(eval(r, sc, n->a, &v));
            if (inf__tpl_truthy(v))
                return exec_body(r, sc, n->list, n->n);
            if (n->n2 == 1 && n->list2[0]->kind == N_IF && (n->list2[0]->flags & TPL_FLAG_ELIF)) {
                n = n->list2[0];
                r->cur = n;
                TPL_TRY(inf__tpl_work(r, 1));
                continue;
            }
            return exec_body(r, sc, n->list2, n->n2);
        }
    case N_FOR:
        return exec_for(r, sc, n);
    case N_SET:
        TPL_TRY(eval(r, sc, n->b, &v));
        r->cur = n;
        return bind_targets(r, sc, n, v);
    case N_SET_ATTR: {
        struct tpl_val ns;
        TPL_TRY(eval(r, sc, n->a, &ns));
        TPL_TRY(eval(r, sc, n->b, &v));
        r->cur = n;
        if (ns.type != TPL_NS)
            return inf__tpl_fail(r, INF_ETYPE, "cannot assign attribute on non-namespace object");
        struct tpl_val key;
        TPL_TRY(inf__tpl_str_cstr(r, n->name, &key));
        return inf__tpl_dict_set(r, ns.u.d, key, v);
    }
    case N_SET_BLOCK: {
        TPL_TRY(capture(r, sc, n->list, n->n, &v));
        if (n->c) {
            struct tpl_val f;
            TPL_TRY(eval_filter(r, sc, n->c, &v, &f));
            v = f;
        }
        r->cur = n;
        if (n->flags & TPL_FLAG_ATTR) {
            struct tpl_val ns, key;
            TPL_TRY(eval(r, sc, n->a, &ns));
            if (ns.type != TPL_NS)
                return inf__tpl_fail(r, INF_ETYPE,
                                     "cannot assign attribute on non-namespace object");
            TPL_TRY(inf__tpl_str_cstr(r, n->name, &key));
            return inf__tpl_dict_set(r, ns.u.d, key, v);
        }
        return bind_targets(r, sc, n, v);
    }
    case N_MACRO: {
        struct tpl_func *fn = inf__tpl_ralloc(r, sizeof(*fn));
        if (!fn)
            return -1;
        fn->kind = FN_MACRO;
        fn->name = n->name;
        fn->node = n;
        fn->closure = sc;
        v.type = TPL_FUNC;
        v.u.fn = fn;
        return assign(r, sc, n->sym, v);
    }
    case N_CALL_BLOCK: {
        const struct tpl_node *call = n->a;
        struct tpl_val callee, res;
        struct tpl_args args;
        TPL_TRY(eval(r, sc, call->a, &callee));
        TPL_TRY(eval_args(r, sc, call, NULL, &args));
        r->cur = n;
        if (callee.type != TPL_FUNC || callee.u.fn->kind != FN_MACRO)
            return inf__tpl_call(r, callee, &args, &res) ? -1 : emit_value(r, res);
        struct tpl_func *caller = inf__tpl_ralloc(r, sizeof(*caller));
        struct tpl_func *copy = inf__tpl_ralloc(r, sizeof(*copy));
        if (!caller || !copy)
            return -1;
        caller->kind = FN_MACRO;
        caller->name = "caller";
        caller->node = n;
        caller->closure = sc;
        *copy = *callee.u.fn;
        copy->caller = caller;
        callee.u.fn = copy;
        TPL_TRY(inf__tpl_call(r, callee, &args, &res));
        return emit_value(r, res);
    }
    case N_FILTER_BLOCK: {
        struct tpl_val f;
        TPL_TRY(capture(r, sc, n->list, n->n, &v));
        TPL_TRY(eval_filter(r, sc, n->c, &v, &f));
        r->cur = n;
        return emit_value(r, f);
    }
    case N_WITH: {
        struct tpl_scope *ws = scope_new(r, sc);
        if (!ws)
            return -1;
        for (size_t i = 0; i < n->n_syms; i++) {
            TPL_TRY(eval(r, sc, n->list2[i], &v));
            TPL_TRY(assign(r, ws, n->syms[i], v));
        }
        return exec_body(r, ws, n->list, n->n);
    }
    case N_DO:
        return eval(r, sc, n->a, &v);
    case N_BREAK:
        return EX_BREAK;
    case N_CONTINUE:
        return EX_CONTINUE;
    case N_BLOCK:
        return exec_body(r, sc, n->list, n->n);
    default:
        return inf__tpl_fail(r, INF_EINTERNAL, "unexpected node %d in a statement", n->kind);
    }
}

static int exec_body(struct tpl_render *r, struct tpl_scope *sc, struct tpl_node *const *body,
                     size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int rc = exec(r, sc, body[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int inf__tpl_exec(struct tpl_render *r, struct tpl_buf *out)
{
    r->out = out;
    r->stack_base = (uintptr_t)__builtin_frame_address(0);
    int rc = exec_body(r, NULL, r->t->root->list, r->t->root->n);
    return rc < 0 ? -1 : 0;
}
