/*
 * infer.c - static shape inference at load time: the shapes the planned graph's values will
 * have, from the constants and the declared input shapes, as far as they are known without
 * running anything. A dim that depends on a symbolic input dim (a batch size) or on computed
 * data stays unknown (-1), and a value whose rank is not known stays unknown; checks skip what
 * is unknown, so every model that can run still loads. What is known and cannot work (operands
 * that do not broadcast, MatMul/Gemm inner dims, Conv channels, Concat dims, a Reshape of the
 * wrong element count, a kernel larger than its padded input) is refused here, naming the node,
 * instead of at the first run. Graph outputs declared without a shape get the inferred one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

struct shp {
    int nd; /* -1: rank unknown */
    int64_t d[INF_ONNX_MAX_DIMS];
};

static const char *const unary_ops[] = {"Relu",
                                        "Sigmoid",
                                        "Tanh",
                                        "Erf",
                                        "Sqrt",
                                        "Neg",
                                        "Exp",
                                        "Log",
                                        "Abs",
                                        "Not",
                                        "Floor",
                                        "Ceil",
                                        "Reciprocal",
                                        "Gelu",
                                        "Clip",
                                        "Cast",
                                        "CastLike",
                                        "Identity",
                                        "Dropout",
                                        "Softmax",
                                        "LayerNormalization",
                                        "BatchNormalization",
                                        NULL};
static const char *const bcast_ops[] = {"Add",  "Sub",     "Mul",   "Div", "Pow", "Equal",
                                        "Less", "Greater", "And",   "Or",  "Sum", "Max",
                                        "Min",  "Mean",    "Where", NULL};

static bool in_list(const char *const *l, const char *s)
{
    for (; *l; l++)
        if (!strcmp(*l, s))
            return true;
    return false;
}

static void fmt(const struct shp *s, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < s->nd && k < n; i++)
        k += s->d[i] < 0 ? (size_t)snprintf(buf + k, n - k, "%s?", i ? "," : "")
                         : (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? "," : "", s->d[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

static inf_status fail(struct inf_error *err, const struct inf__onnx_node *n, const char *what,
                       const struct shp *a, const struct shp *b)
{
    char sa[128] = "", sb[128] = "";
    fmt(a, sa, sizeof(sa));
    if (b)
        fmt(b, sb, sizeof(sb));
    return inf_error_set(err, INF_EINVAL, "node '%s' (%s): %s %s%s%s", n->name, n->op_type, what,
                         sa, b ? " and " : "", sb);
}

static bool bcast(const struct shp *a, const struct shp *b, struct shp *o)
{
    if (a->nd < 0 || b->nd < 0) {
        o->nd = -1;
        return true;
    }
    int nd = a->nd > b->nd ? a->nd : b->nd;
    o->nd = nd;
    for (int i = 0; i < nd; i++) {
        int64_t x = i < nd - a->nd ? 1 : a->d[i - (nd - a->nd)];
        int64_t y = i < nd - b->nd ? 1 : b->d[i - (nd - b->nd)];
        if (x >= 0 && y >= 0 && x != y && x != 1 && y != 1)
            return false;
        o->d[i] = x == 1 ? y : y == 1 ? x : x >= 0 ? x : y;
    }
    return true;
}

/* The constant int list of value id (axes, shapes), or false. */
static bool const_ints(const struct inf_onnx_model *m, int id, int64_t *v, int *n)
{
    if (id < 0 || !m->values[id].is_const)
        return false;
    const struct inf_onnx_tensor *t = &m->values[id].konst;
    if ((t->dtype != INF_ONNX_INT64 && t->dtype != INF_ONNX_INT32) || t->ndim > 1 ||
        t->n > INF_ONNX_MAX_DIMS)
        return false;
    for (int64_t i = 0; i < t->n; i++)
        v[i] = inf__onnx_get_i64(t, i);
    *n = (int)t->n;
    return true;
}

static int64_t numel(const struct shp *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->nd; i++) {
        if (s->d[i] < 0)
            return -1;
        n *= s->d[i];
    }
    return s->nd < 0 ? -1 : n;
}

/* Spatial output dims of Conv and the pools (kernel k[] known). */
static inf_status spatial(const struct inf_onnx_model *m, const struct inf__onnx_node *n,
                          const struct shp *x, const int64_t *k, bool ceil, struct shp *o,
                          struct inf_error *err)
{
    (void)m;
    int nd = x->nd - 2;
    const int64_t *s = NULL, *dl = NULL, *pads = NULL;
    int ns = inf__onnx_attr_ints(n, "strides", &s), nl = inf__onnx_attr_ints(n, "dilations", &dl);
    int np = inf__onnx_attr_ints(n, "pads", &pads);
    const char *ap = inf__onnx_attr_s(n, "auto_pad", "NOTSET");
    for (int i = 0; i < nd; i++) {
        int64_t in = x->d[2 + i], st = ns == nd ? s[i] : 1, d = nl == nd ? dl[i] : 1;
        int64_t pb = np == 2 * nd ? pads[i] : 0, pe = np == 2 * nd ? pads[nd + i] : 0;
        if (in < 0 || st < 1 || d < 1 || k[i] < 1) {
            o->d[2 + i] = -1;
            continue;
        }
        if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
            o->d[2 + i] = (in + st - 1) / st;
            continue;
        }
        if (!strcmp(ap, "VALID"))
            pb = pe = 0;
        int64_t span = in + pb + pe - ((k[i] - 1) * d + 1);
        if (span < 0)
            return fail(err, n, "kernel larger than the padded input", x, NULL);
        int64_t out = ceil ? (span + st - 1) / st + 1 : span / st + 1;
        if (ceil && (out - 1) * st >= in + pb)
            out--;
        o->d[2 + i] = out;
    }
    return INF_OK;
}

static inf_status infer_node(const struct inf_onnx_model *m, const struct inf__onnx_node *n,
                             struct shp *sh, struct inf_error *err)
{
    const char *op = n->op_type;
    struct shp none = {.nd = -1}, *in[8];
    for (int k = 0; k < 8; k++)
        in[k] = k < n->n_in && n->in[k] >= 0 ? &sh[n->in[k]] : &none;
    struct shp o = {.nd = -1};
    if (in_list(unary_ops, op)) {
        o = *in[0];
    } else if (in_list(bcast_ops, op)) {
        o = *in[0];
        for (int k = 1; k < n->n_in && k < 8; k++) {
            struct shp r;
            if (!bcast(&o, in[k], &r))
                return fail(err, n, "shapes do not broadcast:", &o, in[k]);
            o = r;
        }
    } else if (!strcmp(op, "MatMul")) {
        const struct shp *a = in[0], *b = in[1];
        if (a->nd >= 1 && b->nd >= 1) {
            int64_t ka = a->d[a->nd - 1], kb = b->nd == 1 ? b->d[0] : b->d[b->nd - 2];
            if (ka >= 0 && kb >= 0 && ka != kb)
                return fail(err, n, "inner dims differ:", a, b);
            struct shp ab = {.nd = a->nd >= 2 ? a->nd - 2 : 0},
                       bb = {.nd = b->nd >= 2 ? b->nd - 2 : 0}, r;
            memcpy(ab.d, a->d, sizeof(int64_t) * (size_t)ab.nd);
            memcpy(bb.d, b->d, sizeof(int64_t) * (size_t)bb.nd);
            if (!bcast(&ab, &bb, &r))
                return fail(err, n, "batch dims do not broadcast:", a, b);
            o = r;
            if (a->nd >= 2)
                o.d[o.nd++] = a->d[a->nd - 2];
            if (b->nd >= 2)
                o.d[o.nd++] = b->d[b->nd - 1];
            if (o.nd > INF_ONNX_MAX_DIMS)
                o.nd = -1;
        }
    } else if (!strcmp(op, "Gemm")) {
        const struct shp *a = in[0], *b = in[1];
        if (a->nd == 2 && b->nd == 2) {
            bool ta = inf__onnx_attr_i(n, "transA", 0), tb = inf__onnx_attr_i(n, "transB", 0);
            int64_t ka = a->d[ta ? 0 : 1], kb = b->d[tb ? 1 : 0];
            if (ka >= 0 && kb >= 0 && ka != kb)
                return fail(err, n, "inner dims differ:", a, b);
            o.nd = 2;
            o.d[0] = a->d[ta ? 1 : 0];
            o.d[1] = b->d[tb ? 0 : 1];
        } else if (a->nd > 2 || b->nd > 2 || (a->nd >= 0 && a->nd < 2) ||
                   (b->nd >= 0 && b->nd < 2)) {
            return fail(err, n, "A and B must be 2-D:", a, b);
        }
    } else if (!strcmp(op, "Conv") || !strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        const struct shp *x = in[0];
        bool conv = op[0] == 'C';
        int64_t k[3];
        if (x->nd >= 3 && x->nd <= 5) {
            o = *x;
            bool known = true;
            if (conv) {
                const struct shp *w = in[1];
                int64_t g = inf__onnx_attr_i(n, "group", 1);
                if (w->nd != x->nd)
                    known = false;
                else {
                    if (x->d[1] >= 0 && w->d[1] >= 0 && x->d[1] != w->d[1] * g)
                        return fail(err, n, "input channels do not match the weights:", x, w);
                    o.d[1] = w->d[0];
                    for (int i = 0; i < x->nd - 2; i++)
                        k[i] = w->d[2 + i];
                }
            } else {
                const int64_t *ks;
                if (inf__onnx_attr_ints(n, "kernel_shape", &ks) != x->nd - 2)
                    known = false;
                else
                    memcpy(k, ks, sizeof(int64_t) * (size_t)(x->nd - 2));
            }
            if (known) {
                inf_status rc =
                    spatial(m, n, x, k, !conv && inf__onnx_attr_i(n, "ceil_mode", 0), &o, err);
                if (rc)
                    return rc;
            } else {
                o.nd = -1;
            }
        }
    } else if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool")) {
        o = *in[0];
        for (int i = 2; i < o.nd; i++)
            o.d[i] = 1;
    } else if (!strcmp(op, "Flatten")) {
        const struct shp *x = in[0];
        int64_t ax = inf__onnx_attr_i(n, "axis", 1);
        if (x->nd >= 0) {
            if (ax < 0)
                ax += x->nd;
            o.nd = 2;
            o.d[0] = o.d[1] = 1;
            for (int i = 0; i < x->nd; i++) {
                int64_t *t = &o.d[i >= ax];
                *t = *t < 0 || x->d[i] < 0 ? -1 : *t * x->d[i];
            }
        }
    } else if (!strcmp(op, "Transpose")) {
        const struct shp *x = in[0];
        const int64_t *p;
        int np = inf__onnx_attr_ints(n, "perm", &p);
        if (x->nd >= 0 && (np < 0 || np == x->nd)) {
            o.nd = x->nd;
            for (int i = 0; i < x->nd; i++) {
                int64_t v = np < 0 ? x->nd - 1 - i : p[i] < 0 ? p[i] + x->nd : p[i];
                o.d[i] = v >= 0 && v < x->nd ? x->d[v] : -1;
            }
        }
    } else if (!strcmp(op, "Concat")) {
        const struct shp *x = in[0];
        int64_t ax = inf__onnx_attr_i(n, "axis", 0);
        if (x->nd >= 1) {
            if (ax < 0)
                ax += x->nd;
            o = *x;
            for (int k = 1; k < n->n_in && o.nd >= 0; k++) {
                const struct shp *y = n->in[k] >= 0 ? &sh[n->in[k]] : &none;
                if (y->nd < 0) {
                    o.nd = -1;
                    break;
                }
                if (y->nd != x->nd)
                    return fail(err, n, "inputs differ in rank:", x, y);
                for (int i = 0; i < x->nd; i++) {
                    if (i == ax)
                        o.d[i] = o.d[i] < 0 || y->d[i] < 0 ? -1 : o.d[i] + y->d[i];
                    else if (o.d[i] >= 0 && y->d[i] >= 0 && o.d[i] != y->d[i])
                        return fail(err, n, "inputs differ off the axis:", x, y);
                }
            }
        }
    } else if (!strcmp(op, "Reshape")) {
        int64_t v[INF_ONNX_MAX_DIMS];
        int nv;
        if (const_ints(m, n->in[1], v, &nv) && !inf__onnx_attr_i(n, "allowzero", 0)) {
            const struct shp *x = in[0];
            int64_t total = numel(x), known = 1;
            int neg = -1;
            o.nd = nv;
            for (int i = 0; i < nv; i++) {
                o.d[i] = v[i] == 0 ? (x->nd > i ? x->d[i] : -1) : v[i];
                if (v[i] == -1)
                    neg = i;
                else if (o.d[i] < 0)
                    known = -1;
                else if (known >= 0)
                    known *= o.d[i];
            }
            if (neg >= 0)
                o.d[neg] = total >= 0 && known > 0 && total % known == 0 ? total / known : -1;
            if (total >= 0 && known >= 0 && neg < 0 && known != total)
                return fail(err, n, "cannot reshape", x, &o);
            if (total >= 0 && known > 0 && neg >= 0 && total % known)
                return fail(err, n, "cannot reshape", x, &o);
        }
    } else if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        int64_t ax[INF_ONNX_MAX_DIMS];
        int na = -1;
        const int64_t *p;
        if (m->opset < 13) {
            na = inf__onnx_attr_ints(n, "axes", &p);
            if (na > INF_ONNX_MAX_DIMS)
                na = -1;
            if (na > 0)
                memcpy(ax, p, sizeof(int64_t) * (size_t)na);
        } else if (n->n_in > 1 && !const_ints(m, n->in[1], ax, &na)) {
            na = -1;
        }
        const struct shp *x = in[0];
        if (x->nd >= 0 && na >= 0 && op[0] == 'U' && x->nd + na <= INF_ONNX_MAX_DIMS) {
            bool ins[INF_ONNX_MAX_DIMS] = {0};
            o.nd = x->nd + na;
            for (int i = 0; i < na; i++) {
                int64_t a = ax[i] < 0 ? ax[i] + o.nd : ax[i];
                if (a >= 0 && a < o.nd)
                    ins[a] = true;
            }
            for (int i = 0, k = 0; i < o.nd; i++)
                o.d[i] = ins[i] ? 1 : k < x->nd ? x->d[k++] : -1;
        } else if (x->nd >= 0 && na > 0 && op[0] == 'S') {
            bool drop[INF_ONNX_MAX_DIMS] = {0};
            for (int i = 0; i < na; i++) {
                int64_t a = ax[i] < 0 ? ax[i] + x->nd : ax[i];
                if (a >= 0 && a < x->nd)
                    drop[a] = true;
            }
            o.nd = 0;
            for (int i = 0; i < x->nd; i++)
                if (!drop[i])
                    o.d[o.nd++] = x->d[i];
        }
    } else if (!strcmp(op, "Shape")) {
        if (in[0]->nd >= 0) {
            int64_t r = in[0]->nd, s = inf__onnx_attr_i(n, "start", 0),
                    e = inf__onnx_attr_i(n, "end", r);
            s = s < 0 ? s + r : s;
            e = e < 0 ? e + r : e;
            s = s < 0 ? 0 : s > r ? r : s;
            e = e < 0 ? 0 : e > r ? r : e;
            o.nd = 1;
            o.d[0] = e > s ? e - s : 0;
        }
    } else if (!strcmp(op, "Size")) {
        o.nd = 0;
    }
    if (n->n_out > 0 && n->out[0] >= 0)
        sh[n->out[0]] = o;
    return INF_OK;
}

inf_status inf__onnx_infer_shapes(struct inf_onnx_model *m, struct inf_error *err)
{
    struct shp *sh = calloc((size_t)m->n_values + 1, sizeof(*sh));
    if (!sh)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_values; i++) {
        struct inf__onnx_value *v = &m->values[i];
        sh[i].nd = -1;
        if (v->is_const) {
            sh[i].nd = v->konst.ndim;
            memcpy(sh[i].d, v->konst.dims, sizeof(sh[i].d));
        }
    }
    for (int i = 0; i < m->n_inputs; i++) {
        const struct inf_onnx_value_info *vi = &m->input_info[i];
        struct shp *s = &sh[m->inputs[i]];
        s->nd = vi->ndim;
        for (int d = 0; d < vi->ndim; d++)
            s->d[d] = vi->dim_param[d] ? -1 : vi->dims[d];
    }
    inf_status rc = INF_OK;
    for (int p = 0; p < m->n_plan && !rc; p++)
        rc = infer_node(m, &m->nodes[m->plan[p]], sh, err);
    /* graph outputs declared without a shape: the inferred one (fully known only) */
    for (int j = 0; !rc && j < m->n_outputs; j++) {
        struct inf_onnx_value_info *oi = &m->output_info[j];
        const struct shp *s = &sh[m->outputs[j]];
        if (oi->ndim < 0 && s->nd >= 0 && numel(s) >= 0) {
            oi->ndim = s->nd;
            memcpy(oi->dims, s->d, sizeof(oi->dims));
        }
    }
    free(sh);
    return rc;
}
