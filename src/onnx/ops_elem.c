/*
 * ops_elem.c - element-wise operators (broadcasting arithmetic, comparisons, Where, the unary
 * math functions, Gelu), Cast, and the normalisations and reductions over an axis (Softmax,
 * LayerNormalization, ReduceMean/Sum/Max).
 *
 * float32 takes tight loops the compiler vectorises; every other type goes through double (or
 * int64 for integers, so that int64 and uint64 keep all their bits).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

/* ---- broadcasting ---- */

bool inf__onnx_broadcast(int na, const int64_t *da, int nb, const int64_t *db, int *nout,
                         int64_t *dout)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t a = i < n - na ? 1 : da[i - (n - na)], b = i < n - nb ? 1 : db[i - (n - nb)];
        if (a != b && a != 1 && b != 1)
            return false;
        dout[i] = a == 1 ? b : a;
    }
    *nout = n;
    return true;
}

/* Per-operand element strides over the output's dims (0 where the operand is broadcast). */
struct bc {
    int nd;
    int64_t dims[INF_ONNX_MAX_DIMS];
    int64_t st[3][INF_ONNX_MAX_DIMS];
    int64_t rows, len;
};

static void bc_init(struct bc *b, int nd, const int64_t *dims, int nops,
                    const struct inf_onnx_tensor *const *ts)
{
    b->nd = nd;
    memcpy(b->dims, dims, sizeof(int64_t) * (size_t)nd);
    for (int k = 0; k < nops; k++) {
        const struct inf_onnx_tensor *t = ts[k];
        int64_t s = 1;
        for (int d = nd - 1; d >= 0; d--) {
            int td = d - (nd - t->ndim);
            int64_t dim = td >= 0 ? t->dims[td] : 1;
            b->st[k][d] = dim == 1 ? 0 : s;
            s *= dim;
        }
    }
    b->len = nd ? dims[nd - 1] : 1;
    int64_t n = inf__onnx_numel(nd, dims);
    b->rows = b->len ? n / b->len : 0;
}

static void bc_row(const struct bc *b, int64_t row, int nops, int64_t *off)
{
    for (int k = 0; k < nops; k++)
        off[k] = 0;
    for (int d = b->nd - 2; d >= 0; d--) {
        int64_t i = row % b->dims[d];
        row /= b->dims[d];
        for (int k = 0; k < nops; k++)
            off[k] += i * b->st[k][d];
    }
}

static int64_t inner(const struct bc *b, int k)
{
    return b->nd ? b->st[k][b->nd - 1] : 0;
}

/* ---- binary arithmetic ---- */

enum binop { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_EQUAL, B_LESS, B_GREATER, B_AND, B_OR };

#define F32_LOOP(EXPR)                                                                             \
    do {                                                                                           \
        if (sa && sb)                                                                              \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float x = a[i], y = b[i];                                                          \
                c[i] = (EXPR);                                                                     \
            }                                                                                      \
        else if (sa) {                                                                             \
            float y = b[0];                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float x = a[i];                                                                    \
                c[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else if (sb) {                                                                           \
            float x = a[0];                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float y = b[i];                                                                    \
                c[i] = (EXPR);                                                                     \
            }                                                                                      \
        } else {                                                                                   \
            float x = a[0], y = b[0], v = (EXPR);                                                  \
            for (int64_t i = 0; i < n; i++)                                                        \
                c[i] = v;                                                                          \
        }                                                                                          \
    } while (0)

static void f32_row(enum binop op, float *c, const float *a, int64_t sa, const float *b, int64_t sb,
                    int64_t n)
{
    switch (op) {
    case B_ADD:
        F32_LOOP(x + y);
        break;
    case B_SUB:
        F32_LOOP(x - y);
        break;
    case B_MUL:
        F32_LOOP(x * y);
        break;
    case B_DIV:
        F32_LOOP(x / y);
        break;
    case B_POW:
        F32_LOOP(y == 2.f ? x * x : y == 0.5f ? sqrtf(x) : powf(x, y));
        break;
    default:
        break;
    }
}

static double f64_op(enum binop op, double x, double y)
{
    switch (op) {
    case B_ADD:
        return x + y;
    case B_SUB:
        return x - y;
    case B_MUL:
        return x * y;
    case B_DIV:
        return x / y;
    case B_POW:
        return pow(x, y);
    case B_EQUAL:
        return x == y;
    case B_LESS:
        return x < y;
    case B_GREATER:
        return x > y;
    case B_AND:
        return x != 0 && y != 0;
    case B_OR:
        return x != 0 || y != 0;
    }
    return 0;
}

static int64_t i64_op(enum binop op, int64_t x, int64_t y, bool is_unsigned)
{
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    switch (op) {
    case B_ADD:
        return (int64_t)(ux + uy);
    case B_SUB:
        return (int64_t)(ux - uy);
    case B_MUL:
        return (int64_t)(ux * uy);
    case B_DIV:
        if (!y)
            return 0;
        if (is_unsigned)
            return (int64_t)(ux / uy);
        if (x == INT64_MIN && y == -1)
            return INT64_MIN;
        return x / y;
    case B_EQUAL:
        return x == y;
    case B_LESS:
        return is_unsigned ? ux < uy : x < y;
    case B_GREATER:
        return is_unsigned ? ux > uy : x > y;
    case B_AND:
        return x && y;
    case B_OR:
        return x || y;
    case B_POW: {
        double r = pow((double)x, (double)y);
        return isnan(r) ? 0 : r > 9.2e18 ? INT64_MAX : r < -9.2e18 ? INT64_MIN : (int64_t)r;
    }
    }
    return 0;
}

static inf_status binary(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                         const struct inf_onnx_tensor *A, const struct inf_onnx_tensor *B,
                         enum binop op, struct inf_onnx_tensor *out)
{
    int nd;
    int64_t dims[INF_ONNX_MAX_DIMS];
    bool cmp = op == B_EQUAL || op == B_LESS || op == B_GREATER || op == B_AND || op == B_OR;
    if (!inf__onnx_broadcast(A->ndim, A->dims, B->ndim, B->dims, &nd, dims))
        return inf__onnx_fail(x, n, INF_EINVAL, "shapes do not broadcast");
    if (op != B_POW && A->dtype != B->dtype)
        return inf__onnx_fail(x, n, INF_ETYPE, "operand types %s and %s differ",
                              inf_onnx_dtype_name(A->dtype), inf_onnx_dtype_name(B->dtype));
    inf_status rc = inf__onnx_out(x, out, cmp ? INF_ONNX_BOOL : A->dtype, nd, dims);
    if (rc)
        return rc;
    const struct inf_onnx_tensor *ts[2] = {A, B};
    struct bc b;
    bc_init(&b, nd, dims, 2, ts);
    int64_t sa = inner(&b, 0), sb = inner(&b, 1), off[2];
    bool f32 = A->dtype == INF_ONNX_FLOAT && B->dtype == INF_ONNX_FLOAT && !cmp;
    bool isint = !inf__onnx_is_float(A->dtype) && (op != B_POW || !inf__onnx_is_float(B->dtype));
    bool uns = A->dtype == INF_ONNX_UINT64;
    for (int64_t r = 0; r < b.rows; r++) {
        bc_row(&b, r, 2, off);
        int64_t o = r * b.len;
        if (f32) {
            f32_row(op, (float *)out->data + o, (const float *)A->data + off[0], sa,
                    (const float *)B->data + off[1], sb, b.len);
            continue;
        }
        for (int64_t i = 0; i < b.len; i++) {
            int64_t ia = off[0] + i * sa, ib = off[1] + i * sb;
            if (A->dtype == INF_ONNX_STRING) {
                ((uint8_t *)out->data)[o + i] =
                    !strcmp(((char **)A->data)[ia], ((char **)B->data)[ib]);
            } else if (isint) {
                int64_t v = i64_op(op, inf__onnx_get_i64(A, ia), inf__onnx_get_i64(B, ib), uns);
                inf__onnx_set_i64(out, o + i, v);
            } else {
                double v = f64_op(op, inf__onnx_get_f64(A, ia), inf__onnx_get_f64(B, ib));
                if (cmp)
                    ((uint8_t *)out->data)[o + i] = v != 0;
                else
                    inf__onnx_set_f64(out, o + i, v, true);
            }
        }
    }
    return INF_OK;
}

#define BINARY_OP(NAME, OP)                                                                        \
    static inf_status op_##NAME(struct inf__onnx_exec *x, const struct inf__onnx_node *n,          \
                                struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)    \
    {                                                                                              \
        return binary(x, n, in[0], in[1], OP, out);                                                \
    }
BINARY_OP(add, B_ADD)
BINARY_OP(sub, B_SUB)
BINARY_OP(mul, B_MUL)
BINARY_OP(div, B_DIV)
BINARY_OP(pow, B_POW)
BINARY_OP(equal, B_EQUAL)
BINARY_OP(less, B_LESS)
BINARY_OP(greater, B_GREATER)
BINARY_OP(and, B_AND)
BINARY_OP(or, B_OR)

static inf_status op_sum(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                         struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    inf_status rc = inf_onnx_tensor_copy(out, in[0], x->err);
    for (int k = 1; !rc && k < n->n_in; k++) {
        struct inf_onnx_tensor t;
        rc = binary(x, n, out, in[k], B_ADD, &t);
        inf_onnx_tensor_release(out);
        if (!rc)
            *out = t;
    }
    return rc;
}

/* Max, Min, Mean: variadic with broadcasting */
static inf_status variadic(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                           struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out, int kind)
{
    int nd = in[0]->ndim;
    int64_t dims[INF_ONNX_MAX_DIMS];
    memcpy(dims, in[0]->dims, sizeof(dims));
    for (int k = 1; k < n->n_in; k++) {
        if (!in[k] || in[k]->dtype != in[0]->dtype)
            return inf__onnx_fail(x, n, INF_ETYPE, "inputs differ in type");
        if (!inf__onnx_broadcast(nd, dims, in[k]->ndim, in[k]->dims, &nd, dims))
            return inf__onnx_fail(x, n, INF_EINVAL, "shapes do not broadcast");
    }
    inf_status rc = inf__onnx_out(x, out, in[0]->dtype, nd, dims);
    if (rc)
        return rc;
    bool isint = !inf__onnx_is_float(out->dtype);
    for (int k = 0; k < n->n_in; k++) {
        const struct inf_onnx_tensor *ts[2] = {in[k], in[k]};
        struct bc b;
        bc_init(&b, nd, dims, 1, ts);
        int64_t off[1], s = inner(&b, 0);
        for (int64_t r = 0; r < b.rows; r++) {
            bc_row(&b, r, 1, off);
            for (int64_t i = 0; i < b.len; i++) {
                int64_t o = r * b.len + i, si = off[0] + i * s;
                if (isint) {
                    int64_t v = inf__onnx_get_i64(in[k], si), c = inf__onnx_get_i64(out, o);
                    inf__onnx_set_i64(out, o,
                                      k == 0      ? v
                                      : kind == 0 ? (v > c ? v : c)
                                                  : (v < c ? v : c));
                } else {
                    double v = inf__onnx_get_f64(in[k], si), c = inf__onnx_get_f64(out, o);
                    if (k && kind == 0)
                        v = isnan(v) || isnan(c) ? NAN : v > c ? v : c;
                    else if (k && kind == 1)
                        v = isnan(v) || isnan(c) ? NAN : v < c ? v : c;
                    else if (k)
                        v += c;
                    if (kind == 2 && k == n->n_in - 1)
                        v /= n->n_in;
                    inf__onnx_set_f64(out, o, v, true);
                }
            }
        }
    }
    return INF_OK;
}

static inf_status op_max(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                         struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    return variadic(x, n, in, out, 0);
}

static inf_status op_min(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                         struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    return variadic(x, n, in, out, 1);
}

static inf_status op_mean(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    return variadic(x, n, in, out, 2);
}

static inf_status op_where(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                           struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    int nd, nd2;
    int64_t d1[INF_ONNX_MAX_DIMS], dims[INF_ONNX_MAX_DIMS];
    if (in[0]->dtype != INF_ONNX_BOOL || in[1]->dtype != in[2]->dtype)
        return inf__onnx_fail(x, n, INF_ETYPE, "wants a bool condition and two same-typed values");
    if (!inf__onnx_broadcast(in[0]->ndim, in[0]->dims, in[1]->ndim, in[1]->dims, &nd, d1) ||
        !inf__onnx_broadcast(nd, d1, in[2]->ndim, in[2]->dims, &nd2, dims))
        return inf__onnx_fail(x, n, INF_EINVAL, "shapes do not broadcast");
    inf_status rc = inf__onnx_out(x, out, in[1]->dtype, nd2, dims);
    if (rc)
        return rc;
    const struct inf_onnx_tensor *ts[3] = {in[0], in[1], in[2]};
    struct bc b;
    bc_init(&b, nd2, dims, 3, ts);
    size_t es = inf_onnx_dtype_size(out->dtype);
    int64_t off[3];
    for (int64_t r = 0; r < b.rows; r++) {
        bc_row(&b, r, 3, off);
        for (int64_t i = 0; i < b.len; i++) {
            int64_t o = r * b.len + i;
            bool c = ((uint8_t *)in[0]->data)[off[0] + i * inner(&b, 0)];
            const struct inf_onnx_tensor *src = c ? in[1] : in[2];
            int64_t si = c ? off[1] + i * inner(&b, 1) : off[2] + i * inner(&b, 2);
            if (out->dtype == INF_ONNX_STRING)
                ((char **)out->data)[o] = strdup(((char **)src->data)[si]);
            else
                memcpy((char *)out->data + (size_t)o * es, (char *)src->data + (size_t)si * es, es);
        }
    }
    return INF_OK;
}

/* ---- unary ---- */

enum unop {
    U_RELU,
    U_SIGMOID,
    U_TANH,
    U_ERF,
    U_SQRT,
    U_NEG,
    U_EXP,
    U_RECIP,
    U_ABS,
    U_GELU,
    U_GELU_TANH,
    U_LOG,
    U_NOT,
    U_FLOOR,
    U_CEIL
};

static double un_f64(enum unop op, double v)
{
    switch (op) {
    case U_RELU:
        return v > 0 ? v : 0;
    case U_SIGMOID:
        return 1 / (1 + exp(-v));
    case U_TANH:
        return tanh(v);
    case U_ERF:
        return erf(v);
    case U_SQRT:
        return sqrt(v);
    case U_NEG:
        return -v;
    case U_EXP:
        return exp(v);
    case U_RECIP:
        return 1 / v;
    case U_ABS:
        return fabs(v);
    case U_GELU:
        return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    case U_GELU_TANH:
        return 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    case U_LOG:
        return log(v);
    case U_NOT:
        return v == 0;
    case U_FLOOR:
        return floor(v);
    case U_CEIL:
        return ceil(v);
    }
    return v;
}

static inf_status unary(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                        const struct inf_onnx_tensor *A, enum unop op, struct inf_onnx_tensor *out)
{
    if (A->dtype == INF_ONNX_STRING)
        return inf__onnx_fail(x, n, INF_ETYPE, "string input");
    inf_status rc = inf__onnx_out(x, out, A->dtype, A->ndim, A->dims);
    if (rc)
        return rc;
    if (A->dtype == INF_ONNX_FLOAT) {
        const float *a = A->data;
        float *c = out->data;
        switch (op) {
        case U_RELU:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = a[i] > 0 ? a[i] : 0;
            return INF_OK;
        case U_NEG:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = -a[i];
            return INF_OK;
        case U_SQRT:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = sqrtf(a[i]);
            return INF_OK;
        case U_RECIP:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = 1.f / a[i];
            return INF_OK;
        case U_ERF:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = erff(a[i]);
            return INF_OK;
        case U_TANH:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = tanhf(a[i]);
            return INF_OK;
        case U_EXP:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = expf(a[i]);
            return INF_OK;
        case U_SIGMOID:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = 1.f / (1.f + expf(-a[i]));
            return INF_OK;
        default:
            for (int64_t i = 0; i < A->n; i++)
                c[i] = (float)un_f64(op, a[i]);
            return INF_OK;
        }
    }
    bool isint = !inf__onnx_is_float(A->dtype);
    for (int64_t i = 0; i < A->n; i++) {
        if (isint && (op == U_NEG || op == U_RELU || op == U_ABS)) {
            int64_t v = inf__onnx_get_i64(A, i);
            v = op == U_NEG    ? (int64_t)(0 - (uint64_t)v)
                : op == U_RELU ? (v > 0 ? v : 0)
                               : (v < 0 ? -v : v);
            inf__onnx_set_i64(out, i, v);
        } else {
            inf__onnx_set_f64(out, i, un_f64(op, inf__onnx_get_f64(A, i)), true);
        }
    }
    return INF_OK;
}

#define UNARY_OP(NAME, OP)                                                                         \
    static inf_status op_##NAME(struct inf__onnx_exec *x, const struct inf__onnx_node *n,          \
                                struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)    \
    {                                                                                              \
        return unary(x, n, in[0], OP, out);                                                        \
    }
UNARY_OP(relu, U_RELU)
UNARY_OP(sigmoid, U_SIGMOID)
UNARY_OP(tanh, U_TANH)
UNARY_OP(erf, U_ERF)
UNARY_OP(sqrt, U_SQRT)
UNARY_OP(neg, U_NEG)
UNARY_OP(exp, U_EXP)
UNARY_OP(reciprocal, U_RECIP)
UNARY_OP(abs, U_ABS)
UNARY_OP(log, U_LOG)
UNARY_OP(not, U_NOT)
UNARY_OP(floor, U_FLOOR)
UNARY_OP(ceil, U_CEIL)

static inf_status op_gelu(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const char *ap = inf__onnx_attr_s(n, "approximate", "none");
    if (strcmp(ap, "none") && strcmp(ap, "tanh"))
        return inf__onnx_fail(x, n, INF_EUNSUPPORTED, "approximate '%s'", ap);
    return unary(x, n, in[0], strcmp(ap, "tanh") ? U_GELU : U_GELU_TANH, out);
}

static inf_status op_clip(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    double lo = -INFINITY, hi = INFINITY;
    if (x->opset < 11) {
        lo = inf__onnx_attr_f(n, "min", -INFINITY);
        hi = inf__onnx_attr_f(n, "max", INFINITY);
    } else {
        if (n->n_in > 1 && in[1] && in[1]->n)
            lo = inf__onnx_get_f64(in[1], 0);
        if (n->n_in > 2 && in[2] && in[2]->n)
            hi = inf__onnx_get_f64(in[2], 0);
    }
    inf_status rc = inf__onnx_out(x, out, in[0]->dtype, in[0]->ndim, in[0]->dims);
    for (int64_t i = 0; !rc && i < in[0]->n; i++) {
        double v = inf__onnx_get_f64(in[0], i);
        inf__onnx_set_f64(out, i, v < lo ? lo : v > hi ? hi : v, true);
    }
    return rc;
}

/* ---- Cast ---- */

static inf_status cast_to(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          const struct inf_onnx_tensor *A, int to, bool sat,
                          struct inf_onnx_tensor *out)
{
    if (to <= 0 || to >= INF_ONNX_DTYPE_COUNT || !inf_onnx_dtype_size(to))
        return inf__onnx_fail(x, n, INF_EUNSUPPORTED, "cast to type %d", to);
    inf_status rc = inf__onnx_out(x, out, to, A->ndim, A->dims);
    if (rc)
        return rc;
    if (A->dtype == to) {
        inf_onnx_tensor_release(out);
        return inf_onnx_tensor_copy(out, A, x->err);
    }
    bool from_int = inf__onnx_is_integer(A->dtype) || A->dtype == INF_ONNX_BOOL;
    bool to_int = inf__onnx_is_integer(to) || to == INF_ONNX_BOOL;
    for (int64_t i = 0; i < A->n; i++) {
        if (A->dtype == INF_ONNX_STRING && to_int)
            inf__onnx_set_i64(out, i, inf__onnx_get_i64(A, i));
        else if (to == INF_ONNX_STRING && from_int) {
            char buf[32];
            snprintf(buf, sizeof(buf), "%lld", (long long)inf__onnx_get_i64(A, i));
            if (!(((char **)out->data)[i] = strdup(buf)))
                return inf_error_set(x->err, INF_ENOMEM, "out of memory");
        } else if (from_int && (to_int || A->dtype == INF_ONNX_UINT64))
            inf__onnx_set_i64(out, i, inf__onnx_get_i64(A, i));
        else if (from_int)
            inf__onnx_set_f64(out, i, (double)inf__onnx_get_i64(A, i), sat);
        else if (to == INF_ONNX_FLOAT16 && A->dtype == INF_ONNX_DOUBLE)
            ((uint16_t *)out->data)[i] = inf__onnx_f2h((float)inf__onnx_get_f64(A, i));
        else
            inf__onnx_set_f64(out, i, inf__onnx_get_f64(A, i), sat);
    }
    return INF_OK;
}

static inf_status op_cast(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf__onnx_attr *to = inf__onnx_attr(n, "to");
    if (!to)
        return inf__onnx_fail(x, n, INF_EFORMAT, "no 'to' attribute");
    return cast_to(x, n, in[0], (int)to->i, inf__onnx_attr_i(n, "saturate", 1) != 0, out);
}

static inf_status op_castlike(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                              struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    return cast_to(x, n, in[0], in[1]->dtype, inf__onnx_attr_i(n, "saturate", 1) != 0, out);
}

/* ---- along an axis ---- */

static int norm_axis(int64_t axis, int ndim)
{
    if (axis < 0)
        axis += ndim;
    return axis < 0 || axis > ndim ? -1 : (int)axis;
}

static inf_status op_softmax(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                             struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    bool old = x->opset < 13;
    int axis = norm_axis(inf__onnx_attr_i(n, "axis", old ? 1 : -1), A->ndim);
    if (axis < 0 || (axis == A->ndim && A->ndim > 0))
        return inf__onnx_fail(x, n, INF_EINVAL, "axis out of range");
    if (!inf__onnx_is_float(A->dtype))
        return inf__onnx_fail(x, n, INF_ETYPE, "input must be a float type");
    int64_t outer = 1, len = 1, in_sz = 1;
    for (int d = 0; d < axis; d++)
        outer *= A->dims[d];
    if (old)
        for (int d = axis; d < A->ndim; d++)
            len *= A->dims[d];
    else {
        len = A->ndim ? A->dims[axis] : 1;
        for (int d = axis + 1; d < A->ndim; d++)
            in_sz *= A->dims[d];
    }
    inf_status rc = inf__onnx_out(x, out, A->dtype, A->ndim, A->dims);
    if (rc || !out->n) /* an empty input: nothing to normalise (and no buffer to index) */
        return rc;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < in_sz; j++) {
            int64_t base = o * len * in_sz + j;
            if (A->dtype == INF_ONNX_FLOAT && in_sz == 1) {
                const float *a = (const float *)A->data + base;
                float *c = (float *)out->data + base, mx = -INFINITY, s = 0;
                for (int64_t k = 0; k < len; k++)
                    mx = a[k] > mx ? a[k] : mx;
                for (int64_t k = 0; k < len; k++)
                    s += (c[k] = expf(a[k] - mx));
                for (int64_t k = 0; k < len; k++)
                    c[k] /= s;
                continue;
            }
            double mx = -INFINITY, s = 0;
            for (int64_t k = 0; k < len; k++) {
                double v = inf__onnx_get_f64(A, base + k * in_sz);
                mx = v > mx ? v : mx;
            }
            for (int64_t k = 0; k < len; k++)
                s += exp(inf__onnx_get_f64(A, base + k * in_sz) - mx);
            for (int64_t k = 0; k < len; k++)
                inf__onnx_set_f64(out, base + k * in_sz,
                                  exp(inf__onnx_get_f64(A, base + k * in_sz) - mx) / s, true);
        }
    return INF_OK;
}

/* index into t for element i of a [rows x len] block when t broadcasts to dims[axis:] */
static int64_t tail_index(const struct inf_onnx_tensor *t, const int64_t *dims, int nd, int axis,
                          int64_t i)
{
    if (t->n == 1)
        return 0;
    int64_t idx = 0, s = 1;
    for (int d = nd - 1; d >= axis; d--) {
        int64_t c = i % dims[d];
        i /= dims[d];
        int td = d - (nd - t->ndim);
        if (td >= 0 && t->dims[td] != 1)
            idx += c * s;
        if (td >= 0)
            s *= t->dims[td];
    }
    return idx;
}

static inf_status op_layernorm(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                               struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *X = in[0], *S = in[1], *B = n->n_in > 2 ? in[2] : NULL;
    int axis = norm_axis(inf__onnx_attr_i(n, "axis", -1), X->ndim);
    double eps = inf__onnx_attr_f(n, "epsilon", 1e-5f);
    if (axis < 0 || axis >= X->ndim)
        return inf__onnx_fail(x, n, INF_EINVAL, "axis out of range");
    if (!inf__onnx_is_float(X->dtype))
        return inf__onnx_fail(x, n, INF_ETYPE, "input must be a float type");
    int64_t rows = 1, len = 1;
    for (int d = 0; d < axis; d++)
        rows *= X->dims[d];
    for (int d = axis; d < X->ndim; d++)
        len *= X->dims[d];
    int64_t sdims[INF_ONNX_MAX_DIMS];
    for (int d = 0; d < X->ndim; d++)
        sdims[d] = d < axis ? X->dims[d] : 1;
    if (S->n != 1 && S->n != len)
        return inf__onnx_fail(x, n, INF_EINVAL, "scale does not match the normalized shape");
    if (B && B->n != 1 && B->n != len)
        return inf__onnx_fail(x, n, INF_EINVAL, "bias does not match the normalized shape");
    int stash = (int)inf__onnx_attr_i(n, "stash_type", 1);
    inf_status rc = inf__onnx_out(x, &out[0], X->dtype, X->ndim, X->dims);
    if (!rc && n->n_out > 1 && n->out[1] >= 0)
        rc = inf__onnx_out(x, &out[1], stash == 1 ? INF_ONNX_FLOAT : X->dtype, X->ndim, sdims);
    if (!rc && n->n_out > 2 && n->out[2] >= 0)
        rc = inf__onnx_out(x, &out[2], stash == 1 ? INF_ONNX_FLOAT : X->dtype, X->ndim, sdims);
    if (rc)
        return rc;
    bool fast = X->dtype == INF_ONNX_FLOAT && S->dtype == INF_ONNX_FLOAT && S->n == len &&
                (!B || (B->dtype == INF_ONNX_FLOAT && B->n == len));
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        if (fast) {
            const float *a = (const float *)X->data + r * len;
            float *c = (float *)out[0].data + r * len;
            for (int64_t k = 0; k < len; k++)
                mean += a[k];
            mean /= (double)len;
            for (int64_t k = 0; k < len; k++)
                var += (a[k] - mean) * (a[k] - mean);
            var /= (double)len;
            float inv = (float)(1 / sqrt(var + eps)), m = (float)mean;
            const float *s = S->data, *b = B ? B->data : NULL;
            for (int64_t k = 0; k < len; k++)
                c[k] = (a[k] - m) * inv * s[k] + (b ? b[k] : 0.f);
        } else {
            for (int64_t k = 0; k < len; k++)
                mean += inf__onnx_get_f64(X, r * len + k);
            mean /= (double)len;
            for (int64_t k = 0; k < len; k++) {
                double d = inf__onnx_get_f64(X, r * len + k) - mean;
                var += d * d;
            }
            var /= (double)len;
            double inv = 1 / sqrt(var + eps);
            for (int64_t k = 0; k < len; k++) {
                double v = (inf__onnx_get_f64(X, r * len + k) - mean) * inv *
                           inf__onnx_get_f64(S, tail_index(S, X->dims, X->ndim, axis, k));
                if (B)
                    v += inf__onnx_get_f64(B, tail_index(B, X->dims, X->ndim, axis, k));
                inf__onnx_set_f64(&out[0], r * len + k, v, true);
            }
        }
        if (out[1].data)
            inf__onnx_set_f64(&out[1], r, mean, true);
        if (out[2].data)
            inf__onnx_set_f64(&out[2], r, 1 / sqrt(var + eps), true);
    }
    return INF_OK;
}

enum redop { R_MEAN, R_SUM, R_MAX, R_MIN, R_PROD, R_SUMSQ, R_L2 };

static inf_status reduce(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                         struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out,
                         enum redop op, int axes_input_since)
{
    const struct inf_onnx_tensor *A = in[0];
    bool red[INF_ONNX_MAX_DIMS] = {0};
    int n_axes = 0;
    int64_t keep = inf__onnx_attr_i(n, "keepdims", 1);
    if (x->opset < axes_input_since) {
        const int64_t *ax;
        int k = inf__onnx_attr_ints(n, "axes", &ax);
        for (int i = 0; i < k; i++) {
            int a = norm_axis(ax[i], A->ndim);
            if (a < 0 || a >= A->ndim)
                return inf__onnx_fail(x, n, INF_EINVAL, "axis %lld out of range", (long long)ax[i]);
            red[a] = true;
            n_axes++;
        }
    } else if (n->n_in > 1 && in[1]) {
        for (int64_t i = 0; i < in[1]->n; i++) {
            int64_t v = inf__onnx_get_i64(in[1], i);
            int a = norm_axis(v, A->ndim);
            if (a < 0 || a >= A->ndim)
                return inf__onnx_fail(x, n, INF_EINVAL, "axis %lld out of range", (long long)v);
            red[a] = true;
            n_axes++;
        }
    }
    if (!n_axes) {
        if (inf__onnx_attr_i(n, "noop_with_empty_axes", 0))
            return inf_onnx_tensor_copy(out, A, x->err);
        for (int d = 0; d < A->ndim; d++)
            red[d] = true;
    }
    int64_t odims[INF_ONNX_MAX_DIMS];
    int ond = 0;
    for (int d = 0; d < A->ndim; d++) {
        if (!red[d])
            odims[ond++] = A->dims[d];
        else if (keep)
            odims[ond++] = 1;
    }
    inf_status rc = inf__onnx_out(x, out, A->dtype, ond, odims);
    if (rc)
        return rc;
    double *acc = malloc(sizeof(double) * (size_t)(out->n ? out->n : 1));
    if (!acc)
        return inf_error_set(x->err, INF_ENOMEM, "out of memory");
    double init = op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1 : 0;
    for (int64_t i = 0; i < out->n; i++)
        acc[i] = init;
    /* output strides over the input's dims (0 on reduced dims) */
    int64_t ost[INF_ONNX_MAX_DIMS], s = 1;
    for (int d = A->ndim - 1; d >= 0; d--) {
        ost[d] = red[d] ? 0 : s;
        s *= red[d] ? 1 : A->dims[d];
    }
    int64_t cnt = 1;
    for (int d = 0; d < A->ndim; d++)
        if (red[d])
            cnt *= A->dims[d];
    int64_t idx[INF_ONNX_MAX_DIMS] = {0}, o = 0;
    for (int64_t i = 0; i < A->n; i++) {
        double v =
            A->dtype == INF_ONNX_FLOAT ? ((const float *)A->data)[i] : inf__onnx_get_f64(A, i);
        switch (op) {
        case R_MAX:
            acc[o] = v > acc[o] ? v : acc[o];
            break;
        case R_MIN:
            acc[o] = v < acc[o] ? v : acc[o];
            break;
        case R_PROD:
            acc[o] *= v;
            break;
        case R_SUMSQ:
        case R_L2:
            acc[o] += v * v;
            break;
        default:
            acc[o] += v;
        }
        for (int d = A->ndim - 1; d >= 0; d--) {
            o += ost[d];
            if (++idx[d] < A->dims[d])
                break;
            o -= ost[d] * A->dims[d];
            idx[d] = 0;
        }
    }
    for (int64_t i = 0; i < out->n; i++) {
        double v = acc[i];
        if (op == R_MEAN)
            v = cnt ? v / (double)cnt : NAN;
        else if (op == R_L2)
            v = sqrt(v);
        if (inf__onnx_is_float(out->dtype))
            inf__onnx_set_f64(out, i, v, true);
        else
            inf__onnx_set_i64(out, i, isinf(v) ? (v > 0 ? INT64_MAX : INT64_MIN) : (int64_t)v);
    }
    free(acc);
    return INF_OK;
}

#define REDUCE_OP(NAME, OP, SINCE)                                                                 \
    static inf_status op_##NAME(struct inf__onnx_exec *x, const struct inf__onnx_node *n,          \
                                struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)    \
    {                                                                                              \
        return reduce(x, n, in, out, OP, SINCE);                                                   \
    }
REDUCE_OP(reduce_mean, R_MEAN, 18)
REDUCE_OP(reduce_sum, R_SUM, 13)
REDUCE_OP(reduce_max, R_MAX, 18)
REDUCE_OP(reduce_min, R_MIN, 18)
REDUCE_OP(reduce_prod, R_PROD, 18)
REDUCE_OP(reduce_sumsq, R_SUMSQ, 18)
REDUCE_OP(reduce_l2, R_L2, 18)

/* name, since, inputs min-max, outputs min-max, fn */
const struct inf__onnx_op inf__onnx_ops_elem[] = {
    {"Add", 7, 2, 2, 1, 1, op_add},
    {"Sub", 7, 2, 2, 1, 1, op_sub},
    {"Mul", 7, 2, 2, 1, 1, op_mul},
    {"Div", 7, 2, 2, 1, 1, op_div},
    {"Pow", 7, 2, 2, 1, 1, op_pow},
    {"Equal", 7, 2, 2, 1, 1, op_equal},
    {"Less", 7, 2, 2, 1, 1, op_less},
    {"Greater", 7, 2, 2, 1, 1, op_greater},
    {"And", 7, 2, 2, 1, 1, op_and},
    {"Or", 7, 2, 2, 1, 1, op_or},
    {"Sum", 7, 1, 64, 1, 1, op_sum},
    {"Where", 9, 3, 3, 1, 1, op_where},
    {"Max", 6, 1, 64, 1, 1, op_max},
    {"Min", 6, 1, 64, 1, 1, op_min},
    {"Mean", 6, 1, 64, 1, 1, op_mean},
    {"Relu", 6, 1, 1, 1, 1, op_relu},
    {"Sigmoid", 6, 1, 1, 1, 1, op_sigmoid},
    {"Tanh", 6, 1, 1, 1, 1, op_tanh},
    {"Erf", 9, 1, 1, 1, 1, op_erf},
    {"Sqrt", 6, 1, 1, 1, 1, op_sqrt},
    {"Neg", 6, 1, 1, 1, 1, op_neg},
    {"Exp", 6, 1, 1, 1, 1, op_exp},
    {"Log", 6, 1, 1, 1, 1, op_log},
    {"Abs", 6, 1, 1, 1, 1, op_abs},
    {"Not", 1, 1, 1, 1, 1, op_not},
    {"Floor", 6, 1, 1, 1, 1, op_floor},
    {"Ceil", 6, 1, 1, 1, 1, op_ceil},
    {"Reciprocal", 6, 1, 1, 1, 1, op_reciprocal},
    {"Gelu", 20, 1, 1, 1, 1, op_gelu},
    {"Clip", 6, 1, 3, 1, 1, op_clip},
    {"Cast", 6, 1, 1, 1, 1, op_cast},
    {"CastLike", 15, 2, 2, 1, 1, op_castlike},
    {"Softmax", 1, 1, 1, 1, 1, op_softmax},
    {"LayerNormalization", 17, 2, 3, 1, 3, op_layernorm},
    {"ReduceMean", 1, 1, 2, 1, 1, op_reduce_mean},
    {"ReduceSum", 1, 1, 2, 1, 1, op_reduce_sum},
    {"ReduceMax", 1, 1, 2, 1, 1, op_reduce_max},
    {"ReduceMin", 1, 1, 2, 1, 1, op_reduce_min},
    {"ReduceProd", 1, 1, 2, 1, 1, op_reduce_prod},
    {"ReduceSumSquare", 1, 1, 2, 1, 1, op_reduce_sumsq},
    {"ReduceL2", 1, 1, 2, 1, 1, op_reduce_l2},
    {NULL, 0, 0, 0, 0, 0, NULL},
};
