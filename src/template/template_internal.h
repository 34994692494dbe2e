/*
 * template_internal.h - what the parts of the chat-template engine share: the arena, the value
 * model, the syntax tree and the render state.
 *
 *   template_parse.c     lexer (whitespace control) and parser -> syntax tree
 *   template_value.c     arena, values, Python str()/repr(), json.dumps, equality, ordering
 *   template_eval.c      statements and expressions
 *   template_builtins.c  filters, tests, methods of str/list/dict, global functions
 *   template.c           the public API (inferno/template.h)
 *
 * Memory: a parsed template owns one arena (tree, names, literal strings). A render owns another
 * arena for every value it creates; nothing is freed before the render ends, which keeps
 * aliasing (namespaces, list.append) simple and makes cycles harmless. The arena has a byte
 * limit, so a template cannot exhaust memory either.
 */
#ifndef INFERNO_TOKENIZER_TEMPLATE_INTERNAL_H
#define INFERNO_TOKENIZER_TEMPLATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/utf8.h" /* inf__utf8_encode, inf__utf8_len */
#include "inferno/status.h"
#include "inferno/template.h"

/* ---- arena ------------------------------------------------------------------------------ */

/* struct inf__arena (core/arena.h): zeroed, 16-byte aligned memory with an optional limit. */

/* ---- values ----------------------------------------------------------------------------- */

enum tpl_type {
    TPL_UNDEF,
    TPL_NONE,
    TPL_BOOL,
    TPL_INT,
    TPL_FLOAT,
    TPL_STR,
    TPL_LIST,
    TPL_TUPLE, /* struct tpl_list, immutable by convention */
    TPL_DICT,
    TPL_NS,   /* namespace(): struct tpl_dict whose entries are attributes */
    TPL_FUNC, /* macro, builtin or bound method */
    TPL_LOOP, /* the `loop` variable of a for loop */
};

/*
 * Untrusted text (taint tracking). Strings that come from untrusted context variables (a chat's
 * messages and tools) carry the byte ranges of their data that are untrusted; the ranges follow
 * the bytes through concatenation, output, captures, join and substrings exactly. Any other
 * string a builtin or an operator makes from an untrusted input is untrusted as a whole (secure
 * by default: see r->taint_scope). The render's output keeps the ranges, so that the tokenizer
 * never reads a control token out of untrusted bytes.
 */
struct tpl_span {
    size_t off, len;
};

struct tpl_taint {
    size_t n;
    struct tpl_span v[]; /* sorted, disjoint, non-adjacent, non-empty */
};

struct tpl_str {
    size_t len;                    /* bytes, without the terminating NUL */
    size_t nchars;                 /* code points; == len when ASCII */
    const struct tpl_taint *taint; /* untrusted byte ranges; NULL: all trusted */
    char data[];                   /* valid UTF-8, NUL-terminated (may also contain NUL) */
};

struct tpl_list {
    size_t n, cap;
    struct tpl_val *v; /* [cap] */
};

struct tpl_dict {
    size_t n, cap;
    struct tpl_val *k, *v; /* [cap] keys and values in insertion order */
    uint32_t *idx;         /* [idx_cap] open-addressing index (entry + 1; 0 = empty), n > 8 */
    size_t idx_cap;
};

struct tpl_func;
struct tpl_loop;

struct tpl_val {
    uint8_t type; /* enum tpl_type */
    union {
        bool b;
        int64_t i;
        double f;
        struct tpl_str *s;
        struct tpl_list *l;
        struct tpl_dict *d;
        struct tpl_func *fn;
        struct tpl_loop *loop;
        const char *undef_name; /* what was undefined (for messages); may be NULL */
    } u;
};

/* ---- syntax tree ------------------------------------------------------------------------ */

enum tpl_kind {
    /* expressions */
    N_LIT,     /* lit */
    N_NAME,    /* sym, name */
    N_LIST,    /* list */
    N_TUPLE,   /* list */
    N_DICT,    /* list: keys, list2: values */
    N_GETATTR, /* a . name */
    N_GETITEM, /* a [ b ]  (b may be an N_SLICE) */
    N_SLICE,   /* a : b : c, each may be NULL */
    N_UNARY,   /* op a */
    N_BINARY,  /* a op b (and/or short-circuit) */
    N_COMPARE, /* a (syms[i] list[i])... */
    N_COND,    /* a if b else c (c may be NULL) */
    N_CALL,    /* a ( list, kw=list2 ) */
    N_FILTER,  /* a | name ( list, kw=list2 ); a NULL inside a filter block or block set */
    N_TEST,    /* a is name ( list, kw=list2 ) */
    /* statements */
    N_TEXT,         /* lit */
    N_OUTPUT,       /* {{ a }} */
    N_IF,           /* if a: list else list2 */
    N_FOR,          /* for syms in a [if b]: list else list2 */
    N_SET,          /* syms = b */
    N_SET_ATTR,     /* a.name = b */
    N_SET_BLOCK,    /* syms (or a.name) = body list, filtered by c */
    N_MACRO,        /* macro name(sym) (syms = list2 defaults): list */
    N_CALL_BLOCK,   /* call(syms = list2) a: list */
    N_FILTER_BLOCK, /* filter c: list */
    N_WITH,         /* with syms = list2: list */
    N_DO,           /* do a */
    N_BREAK,
    N_CONTINUE,
    N_BLOCK, /* a plain body (generation … endgeneration) */
};

enum tpl_op {
    OP_NONE,
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_CONCAT, /* ~ */
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_NOTIN,
    OP_AND,
    OP_OR,
    OP_NOT,
    OP_NEG,
    OP_POS,
};

#define TPL_FLAG_UNPACK 1u /* N_FOR / N_SET / N_WITH: the targets are a tuple */
#define TPL_FLAG_ATTR   2u /* N_SET_BLOCK: the target is a.name */
#define TPL_FLAG_ELIF   4u /* N_IF: an elif branch, the only item of its parent's list2 */

struct tpl_node {
    uint8_t kind; /* enum tpl_kind */
    uint8_t op;   /* enum tpl_op */
    uint16_t flags;
    int32_t sym; /* N_NAME, N_MACRO name; -1 */
    int32_t fid; /* N_FILTER / N_TEST: index in the builtin table, -1 when unknown */
    uint32_t line, col;
    const char *name; /* attribute, filter, test or macro name */
    struct tpl_node *a, *b, *c;
    struct tpl_node **list; /* items, positional arguments or body */
    size_t n;
    struct tpl_node **list2; /* values, keyword argument values, defaults or else-body */
    size_t n2;
    const char **kw; /* [n2] keyword names of N_CALL / N_FILTER / N_TEST */
    int32_t *syms;   /* targets, parameters, or comparison operators of N_COMPARE */
    size_t n_syms;
    struct tpl_val lit;
};

struct inf_template {
    struct inf__arena arena; /* everything below lives here */
    struct tpl_node *root;   /* an N_BLOCK */
    const char **sym_names;  /* [n_syms] every identifier of the template */
    size_t n_syms;
    int32_t sym_loop, sym_caller, sym_varargs, sym_kwargs; /* -1 when unused */
};

/* Parse (template_parse.c). */
inf_status inf__tpl_parse(const char *src, size_t len, struct inf_template **out,
                          struct inf_error *err);

/* ---- render state ----------------------------------------------------------------------- */

struct tpl_buf {
    char *p; /* malloc'd */
    size_t len, cap;
    struct tpl_span *taint; /* malloc'd: untrusted ranges of p, in order */
    size_t n_taint, cap_taint;
};

struct tpl_var {
    int32_t sym;
    struct tpl_val val;
};

/* A local scope (for-loop body, macro call, with block). The global scope is r->globals. */
struct tpl_scope {
    struct tpl_scope *parent; /* NULL: the next one out is the global scope */
    struct tpl_var *vars;
    size_t n, cap;
};

enum tpl_func_kind {
    FN_MACRO,   /* node: N_MACRO or N_CALL_BLOCK (caller); closure */
    FN_BUILTIN, /* fn, self bound for methods */
};

struct tpl_render;
struct tpl_args {
    const struct tpl_val *pos;
    size_t n_pos;
    const char *const *kw_names;
    const struct tpl_val *kw;
    size_t n_kw;
};

typedef int (*tpl_builtin_fn)(struct tpl_render *r, struct tpl_val self, const struct tpl_args *a,
                              struct tpl_val *out);

struct tpl_func {
    uint8_t kind;
    const char *name;
    const struct tpl_node *node;
    struct tpl_scope *closure;
    struct tpl_func *caller; /* the caller() a macro receives from a call block */
    tpl_builtin_fn fn;
    struct tpl_val self;
};

struct tpl_loop {
    const struct tpl_val *items; /* [length] */
    int64_t index0, length;
    unsigned depth0;
};

struct tpl_render {
    const struct inf_template *t;
    struct inf__arena arena;
    struct tpl_val *globals;    /* [t->n_syms] */
    struct tpl_buf *out;        /* where output goes now (the result or a capture) */
    const struct tpl_node *cur; /* the node being evaluated, for error positions */
    struct inf_error *err;
    inf_status status; /* first error */
    /* limits and counters */
    size_t max_output;
    uint64_t max_steps, max_iterations;
    unsigned max_depth;
    uint64_t steps, iterations;
    unsigned depth, loop_depth;
    size_t buf_bytes;     /* output-buffer memory grown so far (counts against the memory
                             limit together with the arena) */
    uintptr_t stack_base; /* frame address where the render started */
    size_t max_stack;     /* bytes of C stack the render may use below stack_base */
    bool fixed_now;
    int64_t now;
    /* taint tracking: while taint_scope > 0 every string made is untrusted as a whole (a
       builtin or operator working on untrusted input); any_taint once one exists */
    unsigned taint_scope;
    bool any_taint;
};

#define TPL_TRY(expr)                                                                              \
    do {                                                                                           \
        if ((expr) != 0)                                                                           \
            return -1;                                                                             \
    } while (0)

/* Record an error at r->cur ("line L, column C: " + message); returns -1. */
int inf__tpl_fail(struct tpl_render *r, inf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record raise_exception(): the message as is. Returns -1. */
int inf__tpl_raise(struct tpl_render *r, const char *msg, size_t len);
/* Count n steps of work; fails past the limit. */
int inf__tpl_work(struct tpl_render *r, uint64_t n);
/* Arena allocation for a render; fails with a limit or memory error. */
void *inf__tpl_ralloc(struct tpl_render *r, size_t size);
/*
 * Make the render-arena array *pv (n items of elem bytes, room for *cap) hold one more item:
 * when full, a copy with twice the room (min_cap at first) replaces it, the old one abandoned
 * to the arena. More than max_cap items fails with "<what> is too large". Returns 0 or -1 (the
 * array unchanged).
 */
int inf__tpl_rgrow(struct tpl_render *r, void *pv, size_t n, size_t *cap, size_t elem,
                   size_t min_cap, size_t max_cap, const char *what);

/* values (template_value.c) */
static inline struct tpl_val tpl_undef(const char *name)
{
    struct tpl_val v = {.type = TPL_UNDEF};
    v.u.undef_name = name;
    return v;
}
static inline struct tpl_val tpl_none(void)
{
    struct tpl_val v = {.type = TPL_NONE};
    return v;
}
static inline struct tpl_val tpl_bool(bool b)
{
    struct tpl_val v = {.type = TPL_BOOL};
    v.u.b = b;
    return v;
}
static inline struct tpl_val tpl_int(int64_t i)
{
    struct tpl_val v = {.type = TPL_INT};
    v.u.i = i;
    return v;
}
static inline struct tpl_val tpl_float(double f)
{
    struct tpl_val v = {.type = TPL_FLOAT};
    v.u.f = f;
    return v;
}

const char *inf__tpl_type_name(struct tpl_val v);
bool inf__tpl_truthy(struct tpl_val v);
bool inf__tpl_is_seq(struct tpl_val v); /* list or tuple */

/* Strings. Data must be valid UTF-8. */
struct tpl_str *inf__tpl_str_arena(struct inf__arena *a, const char *s, size_t len);
int inf__tpl_str_new(struct tpl_render *r, const char *s, size_t len, struct tpl_val *out);
int inf__tpl_str_cstr(struct tpl_render *r, const char *s, struct tpl_val *out);
/* s[off, off + len) as a new string with the untrusted ranges it covers (exact). */
int inf__tpl_str_sub(struct tpl_render *r, const struct tpl_str *s, size_t off, size_t len,
                     struct tpl_val *out);
/* The buffer's text as a string, with its untrusted ranges. Does not free b. */
int inf__tpl_str_buf(struct tpl_render *r, const struct tpl_buf *b, struct tpl_val *out);
/* Give dst (a + b, just built) the untrusted ranges of a and b. */
int inf__tpl_str_concat_taint(struct tpl_render *r, struct tpl_str *dst, const struct tpl_str *a,
                              const struct tpl_str *b);
/* Mark all of s untrusted (s is new and not yet shared). */
int inf__tpl_str_taint_all(struct tpl_render *r, struct tpl_str *s);
/* Whether v holds untrusted text anywhere (strings, items, keys); true past a walk budget. */
bool inf__tpl_tainted(struct tpl_render *r, struct tpl_val v);
/* Byte offsets of every code point of s, plus s->len at [nchars]; NULL on failure. */
size_t *inf__tpl_str_offsets(struct tpl_render *r, const struct tpl_str *s);

/* Lists and dicts */
struct tpl_list *inf__tpl_list_new(struct tpl_render *r, size_t cap);
int inf__tpl_list_push(struct tpl_render *r, struct tpl_list *l, struct tpl_val v);
int inf__tpl_list_val(struct tpl_render *r, size_t cap, bool tuple, struct tpl_val *out);
struct tpl_dict *inf__tpl_dict_new(struct tpl_render *r, size_t cap);
struct tpl_val *inf__tpl_dict_get(const struct tpl_dict *d, struct tpl_val key);
struct tpl_val *inf__tpl_dict_get_str(const struct tpl_dict *d, const char *key, size_t len);
int inf__tpl_dict_set(struct tpl_render *r, struct tpl_dict *d, struct tpl_val key,
                      struct tpl_val v);
bool inf__tpl_dict_del(struct tpl_dict *d, struct tpl_val key);
bool inf__tpl_hashable(struct tpl_val v);

/*
 * Comparison (Python semantics). Equality walks at most a fixed number of nodes (shared
 * sub-structures could otherwise make it exponential) and calls values unequal past that;
 * inf__tpl_eq allows more and charges the walk to the render's step budget. compare fails for
 * values Python cannot order; *res is 2 when they are unordered (NaN).
 */
bool inf__tpl_equal(struct tpl_val a, struct tpl_val b);
int inf__tpl_eq(struct tpl_render *r, struct tpl_val a, struct tpl_val b, bool *out);
int inf__tpl_compare(struct tpl_render *r, struct tpl_val a, struct tpl_val b, const char *op,
                     int *res);

/* Output buffers */
int inf__tpl_buf_add(struct tpl_render *r, struct tpl_buf *b, const char *s, size_t n);
int inf__tpl_buf_addc(struct tpl_render *r, struct tpl_buf *b, char c);
/* Append a string's bytes with its untrusted ranges. */
int inf__tpl_buf_add_str(struct tpl_render *r, struct tpl_buf *b, const struct tpl_str *s);
/* Mark b[start, b->len) untrusted. */
int inf__tpl_buf_taint_from(struct tpl_render *r, struct tpl_buf *b, size_t start);
void inf__tpl_buf_free(struct tpl_buf *b);

/* Python str() and repr() appended to b. */
int inf__tpl_write_str(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v);
int inf__tpl_write_repr(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v);
/* str(v) as a string value (strings are returned as they are). */
int inf__tpl_to_str(struct tpl_render *r, struct tpl_val v, struct tpl_val *out);

struct tpl_json_opts {
    const char *indent; /* NULL: one line */
    size_t indent_len;
    const char *item_sep, *key_sep;
    bool ensure_ascii, sort_keys;
};
int inf__tpl_write_json(struct tpl_render *r, struct tpl_buf *b, struct tpl_val v,
                        const struct tpl_json_opts *o);

/* Python repr() of a float into buf (at least 32 bytes). */
void inf__tpl_fmt_float(double f, char *buf, size_t size);

/* jansson value -> template value (in the render arena); untrusted: every string in it (keys
 * too) is untrusted text. */
int inf__tpl_from_json(struct tpl_render *r, const struct json_t *j, bool untrusted,
                       struct tpl_val *out);

/* UTF-8 helpers */
size_t inf__tpl_utf8_decode(const char *s, size_t len, uint32_t *cp); /* bytes used, >= 1 */
bool inf__tpl_is_space(uint32_t cp);                                  /* str.isspace() */

/* ---- builtins (template_builtins.c) ----------------------------------------------------- */

/* Index of a filter / test by name, -1 when unknown. */
int inf__tpl_filter_find(const char *name);
int inf__tpl_test_find(const char *name);
int inf__tpl_filter_call(struct tpl_render *r, int fid, const char *name, struct tpl_val v,
                         const struct tpl_args *a, struct tpl_val *out);
int inf__tpl_test_call(struct tpl_render *r, int fid, const char *name, struct tpl_val v,
                       const struct tpl_args *a, bool *out);
/* Attribute lookup (Jinja2 getattr: methods of str/list/dict first, then items). */
int inf__tpl_getattr(struct tpl_render *r, struct tpl_val obj, const char *name, size_t len,
                     struct tpl_val *out);
/* Subscription (Jinja2 getitem: items first, then attributes for string keys). */
int inf__tpl_getitem(struct tpl_render *r, struct tpl_val obj, struct tpl_val key,
                     struct tpl_val *out);
/*
 * Call a builtin (filter, method or global). When self or an argument holds untrusted text,
 * every string the builtin makes is untrusted as a whole, except for the builtins that track
 * the ranges exactly (join, strip and trim).
 */
int inf__tpl_builtin_call(struct tpl_render *r, tpl_builtin_fn fn, struct tpl_val self,
                          const struct tpl_args *a, struct tpl_val *out);
/* A global function by name (range, namespace, dict, raise_exception, strftime_now…). */
tpl_builtin_fn inf__tpl_global_find(const char *name);

/* ---- evaluation (template_eval.c) ------------------------------------------------------ */

/* Call any callable value. */
int inf__tpl_call(struct tpl_render *r, struct tpl_val fn, const struct tpl_args *a,
                  struct tpl_val *out);
/*
 * The items iteration yields: a list's items (a snapshot), a dict's keys, a string's characters;
 * none for undefined. Other values are an error.
 */
int inf__tpl_iter(struct tpl_render *r, struct tpl_val v, const struct tpl_val **items,
                  size_t *count);
/* Python's `fmt % args` for a string fmt. */
int inf__tpl_percent(struct tpl_render *r, struct tpl_val fmt, struct tpl_val args,
                     struct tpl_val *out);
/* Run the whole template (r prepared by template.c), output into out. 0 or -1. */
int inf__tpl_exec(struct tpl_render *r, struct tpl_buf *out);

#endif
