/*
 * load.c - ModelProto to a planned graph: decoding (through pb.c), the operator check for the
 * model's opset, topological order, constant folding, the Conv+BatchNormalization(+Relu)
 * fusion, and each value's last use. Everything that can be refused is refused here, so that a
 * run fails only on shapes that arrive with its inputs.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/files.h"
#include "onnx/onnx_internal.h"

#define MAX_NAME 4096

/* ---- names to value ids: open addressing over the values array ---- */

struct names {
    int *slot; /* value id + 1, 0 = empty */
    size_t cap;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static int names_find(const struct names *t, const struct inf_onnx_model *m, const char *s)
{
    if (!t->cap)
        return -1;
    for (size_t i = hash_str(s) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slot[i])
            return -1;
        if (!strcmp(m->values[t->slot[i] - 1].name, s))
            return t->slot[i] - 1;
    }
}

static bool names_add(struct names *t, const struct inf_onnx_model *m, int id)
{
    if ((size_t)(m->n_values + 1) * 2 > t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        int *ns = calloc(nc, sizeof(int));
        if (!ns)
            return false;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i]) {
                size_t j = hash_str(m->values[t->slot[i] - 1].name) & (nc - 1);
                while (ns[j])
                    j = (j + 1) & (nc - 1);
                ns[j] = t->slot[i];
            }
        free(t->slot);
        t->slot = ns;
        t->cap = nc;
    }
    size_t j = hash_str(m->values[id].name) & (t->cap - 1);
    while (t->slot[j])
        j = (j + 1) & (t->cap - 1);
    t->slot[j] = id + 1;
    return true;
}

struct loader {
    struct inf_onnx_model *m;
    struct names names;
    const char *dir;
    struct inf_error *err;
    size_t max_bytes;
};

/* The id of value name, created (no type yet) when create. -1: not found / out of memory. */
static int value_id(struct loader *L, const char *name, bool create, bool *oom)
{
    struct inf_onnx_model *m = L->m;
    int id = names_find(&L->names, m, name);
    if (id >= 0 || !create)
        return id;
    if (m->n_values == m->cap_values) {
        int nc = m->cap_values ? m->cap_values * 2 : 64;
        void *p = realloc(m->values, (size_t)nc * sizeof(*m->values));
        if (!p)
            goto fail;
        m->values = p;
        m->cap_values = nc;
    }
    struct inf__onnx_value *v = &m->values[m->n_values];
    memset(v, 0, sizeof(*v));
    v->producer = -1;
    v->info.ndim = -1;
    if (!(v->name = strdup(name)))
        goto fail;
    v->info.name = v->name;
    m->n_values++;
    if (!names_add(&L->names, m, m->n_values - 1)) {
        free(v->name);
        m->n_values--;
        goto fail;
    }
    return m->n_values - 1;
fail:
    *oom = true;
    return -1;
}

static inf_status malformed(struct loader *L, const char *what)
{
    return inf_error_set(L->err, INF_EFORMAT, "malformed %s (truncated or bad field)", what);
}

static inf_status oom(struct loader *L)
{
    return inf_error_set(L->err, INF_ENOMEM, "out of memory loading the model");
}

/* ---- ValueInfoProto ---- */

static inf_status parse_value_info(struct loader *L, const uint8_t *p, size_t n, int *out_id)
{
    struct inf__pb b = {p, p + n}, tb, sb, db;
    struct inf__pb_field f, g, h;
    bool bad;
    char *name = NULL;
    struct inf__pb_field type = {0};
    bool has_type = false;
    while (inf__pb_next(&b, &f, &bad)) {
        if (f.number == 1 && f.wt == INF__PB_LEN) {
            free(name);
            if (!(name = inf__pb_strdup(&f)))
                return oom(L);
        } else if (f.number == 2 && f.wt == INF__PB_LEN) {
            type = f;
            has_type = true;
        }
    }
    if (bad || !name) {
        free(name);
        return malformed(L, "ValueInfoProto");
    }
    bool o = false;
    int id = value_id(L, name, true, &o);
    free(name);
    if (id < 0)
        return oom(L);
    *out_id = id;
    struct inf__onnx_value *v = &L->m->values[id];
    if (!has_type)
        return INF_OK;
    /* TypeProto: tensor_type = 1 {elem_type = 1, shape = 2 {dim = 1 {value 1 | param 2}}} */
    tb = (struct inf__pb){type.data, type.data + type.len};
    while (inf__pb_next(&tb, &f, &bad)) {
        if (f.number != 1 || f.wt != INF__PB_LEN)
            continue;
        sb = (struct inf__pb){f.data, f.data + f.len};
        v->has_info = true;
        while (inf__pb_next(&sb, &g, &bad)) {
            if (g.number == 1 && g.wt == INF__PB_VARINT)
                v->info.dtype = (int)g.v;
            else if (g.number == 2 && g.wt == INF__PB_LEN) {
                db = (struct inf__pb){g.data, g.data + g.len};
                v->info.ndim = 0;
                while (inf__pb_next(&db, &h, &bad)) {
                    if (h.number != 1 || h.wt != INF__PB_LEN)
                        continue;
                    if (v->info.ndim == INF_ONNX_MAX_DIMS)
                        return inf_error_set(L->err, INF_ELIMIT, "value '%s' has more than %d dims",
                                             v->name, INF_ONNX_MAX_DIMS);
                    int k = v->info.ndim++;
                    v->info.dims[k] = -1;
                    struct inf__pb d = {h.data, h.data + h.len};
                    struct inf__pb_field e;
                    while (inf__pb_next(&d, &e, &bad)) {
                        if (e.number == 1 && e.wt == INF__PB_VARINT)
                            v->info.dims[k] = (int64_t)e.v;
                        else if (e.number == 2 && e.wt == INF__PB_LEN && !v->dim_param_store[k]) {
                            if (!(v->dim_param_store[k] = inf__pb_strdup(&e)))
                                return oom(L);
                            v->info.dim_param[k] = v->dim_param_store[k];
                        }
                    }
                    if (bad)
                        return malformed(L, "TensorShapeProto");
                    if (v->info.dims[k] < -1)
                        return inf_error_set(L->err, INF_EFORMAT,
                                             "value '%s': negative dim %" PRId64, v->name,
                                             v->info.dims[k]);
                }
                if (bad)
                    return malformed(L, "TensorShapeProto");
            }
        }
        if (bad)
            return malformed(L, "TypeProto");
    }
    if (bad)
        return malformed(L, "TypeProto");
    return INF_OK;
}

/* ---- NodeProto / AttributeProto ---- */

static inf_status parse_attr(struct loader *L, const uint8_t *p, size_t n, struct inf__onnx_attr *a)
{
    struct inf__pb b = {p, p + n};
    struct inf__pb_field f;
    bool bad;
    size_t c_f = 0, c_i = 0, n_f = 0, n_i = 0;
    memset(a, 0, sizeof(*a));
    while (inf__pb_next(&b, &f, &bad)) {
        bool ok = true;
        switch (f.number) {
        case 1:
            ok = f.wt == INF__PB_LEN;
            if (ok) {
                free(a->name);
                if (!(a->name = inf__pb_strdup(&f)))
                    return oom(L);
            }
            break;
        case 2:
            ok = f.wt == INF__PB_I32;
            if (ok) {
                uint32_t u = (uint32_t)f.v;
                memcpy(&a->f, &u, 4);
            }
            break;
        case 3:
            ok = f.wt == INF__PB_VARINT;
            a->i = (int64_t)f.v;
            break;
        case 4:
            ok = f.wt == INF__PB_LEN;
            if (ok) {
                free(a->s);
                if (!(a->s = inf__pb_strdup(&f)))
                    return oom(L);
            }
            break;
        case 5:
            ok = f.wt == INF__PB_LEN;
            if (ok) {
                inf_onnx_tensor_release(&a->t);
                inf_status rc =
                    inf__onnx_tensor_decode_ext(f.data, f.len, L->dir, L->max_bytes, &a->t, L->err);
                if (rc)
                    return rc;
                a->has_t = true;
            }
            break;
        case 7:
            ok = inf__pb_append_f32(&f, &a->floats, &n_f, &c_f, n + 1);
            break;
        case 8:
            ok = inf__pb_append_i64(&f, &a->ints, &n_i, &c_i, n + 1);
            break;
        case 20:
            ok = f.wt == INF__PB_VARINT;
            a->type = (int)f.v;
            break;
        case 21:
            return inf_error_set(L->err, INF_EUNSUPPORTED,
                                 "attribute references (ref_attr_name) are not supported");
        default:
            break;
        }
        if (!ok)
            return malformed(L, "AttributeProto");
    }
    if (bad || !a->name)
        return malformed(L, "AttributeProto");
    a->n = a->type == INF__ATTR_FLOATS ? n_f : n_i;
    if (!a->type) /* IR < 3 had no type: infer it from what is set */
        a->type = a->has_t    ? INF__ATTR_TENSOR
                  : n_f       ? INF__ATTR_FLOATS
                  : n_i       ? INF__ATTR_INTS
                  : a->s      ? INF__ATTR_STRING
                  : a->f != 0 ? INF__ATTR_FLOAT
                              : INF__ATTR_INT;
    if (a->type == INF__ATTR_FLOATS)
        a->n = n_f;
    return INF_OK;
}

static void attr_release(struct inf__onnx_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    inf_onnx_tensor_release(&a->t);
}

static bool push_int(int **arr, int *n, int v)
{
    int *p = realloc(*arr, (size_t)(*n + 1) * sizeof(int));
    if (!p)
        return false;
    *arr = p;
    p[(*n)++] = v;
    return true;
}

static inf_status parse_node(struct loader *L, const uint8_t *p, size_t n)
{
    struct inf_onnx_model *m = L->m;
    struct inf__pb b = {p, p + n};
    struct inf__pb_field f;
    bool bad, o = false;
    if (m->n_nodes == m->cap_nodes) {
        int nc = m->cap_nodes ? m->cap_nodes * 2 : 64;
        void *q = realloc(m->nodes, (size_t)nc * sizeof(*m->nodes));
        if (!q)
            return oom(L);
        m->nodes = q;
        m->cap_nodes = nc;
    }
    struct inf__onnx_node *nd = &m->nodes[m->n_nodes++];
    memset(nd, 0, sizeof(*nd));
    nd->fuse_bias = -1;
    /* outputs are created after inputs are resolved (see resolve_node) */
    while (inf__pb_next(&b, &f, &bad)) {
        if (f.wt != INF__PB_LEN)
            continue;
        switch (f.number) {
        case 1:
        case 2: {
            if (f.len >= MAX_NAME)
                return inf_error_set(L->err, INF_ELIMIT, "value name over %d bytes", MAX_NAME);
            char *s = inf__pb_strdup(&f);
            if (!s)
                return oom(L);
            int id = -1;
            if (*s)
                id = value_id(L, s, true, &o);
            free(s);
            if (o)
                return oom(L);
            if (!push_int(f.number == 1 ? &nd->in : &nd->out,
                          f.number == 1 ? &nd->n_in : &nd->n_out, id))
                return oom(L);
            break;
        }
        case 3:
            free(nd->name);
            if (!(nd->name = inf__pb_strdup(&f)))
                return oom(L);
            break;
        case 4:
            free(nd->op_type);
            if (!(nd->op_type = inf__pb_strdup(&f)))
                return oom(L);
            break;
        case 5: {
            void *q = realloc(nd->attrs, (size_t)(nd->n_attrs + 1) * sizeof(*nd->attrs));
            if (!q)
                return oom(L);
            nd->attrs = q;
            inf_status rc = parse_attr(L, f.data, f.len, &nd->attrs[nd->n_attrs]);
            nd->n_attrs++;
            if (rc)
                return rc;
            break;
        }
        case 7:
            free(nd->domain);
            if (!(nd->domain = inf__pb_strdup(&f)))
                return oom(L);
            break;
        default:
            break;
        }
    }
    if (bad)
        return malformed(L, "NodeProto");
    if (!nd->op_type)
        return inf_error_set(L->err, INF_EFORMAT, "node %d has no op_type", m->n_nodes - 1);
    if (!nd->name) {
        char buf[32];
        snprintf(buf, sizeof(buf), "#%d", m->n_nodes - 1);
        if (!(nd->name = strdup(buf)))
            return oom(L);
    }
    return INF_OK;
}

/* ---- the graph ---- */

struct graph_fields {
    const struct inf__pb_field *list;
    size_t n;
};

static inf_status parse_graph(struct loader *L, const uint8_t *p, size_t n)
{
    struct inf_onnx_model *m = L->m;
    struct inf__pb b = {p, p + n};
    struct inf__pb_field f;
    bool bad, o = false;
    struct inf__pb_field *fs = NULL;
    size_t n_fs = 0, c_fs = 0;
    inf_status rc = INF_OK;

    while (inf__pb_next(&b, &f, &bad)) {
        if (f.number == 2 && f.wt == INF__PB_LEN) {
            free(m->graph_name);
            if (!(m->graph_name = inf__pb_strdup(&f))) {
                free(fs);
                return oom(L);
            }
            continue;
        }
        if (f.number == 15) {
            free(fs);
            return inf_error_set(L->err, INF_EUNSUPPORTED, "sparse initializers are not supported");
        }
        if ((f.number == 1 || f.number == 5 || f.number == 11 || f.number == 12 ||
             f.number == 13) &&
            f.wt != INF__PB_LEN) {
            free(fs);
            return malformed(L, "GraphProto");
        }
        if (f.number == 1 || f.number == 5 || f.number == 11 || f.number == 12 || f.number == 13) {
            if (n_fs == c_fs) {
                size_t nc = c_fs ? 2 * c_fs : 64;
                void *q = realloc(fs, nc * sizeof(*fs));
                if (!q) {
                    free(fs);
                    return oom(L);
                }
                fs = q;
                c_fs = nc;
            }
            fs[n_fs++] = f;
        }
    }
    if (bad) {
        free(fs);
        return malformed(L, "GraphProto");
    }
    /* initializers first, then declared types, then nodes */
    for (size_t i = 0; i < n_fs && !rc; i++) {
        if (fs[i].number != 5)
            continue;
        struct inf_onnx_tensor t;
        rc = inf__onnx_tensor_decode_ext(fs[i].data, fs[i].len, L->dir, L->max_bytes, &t, L->err);
        if (rc)
            break;
        if (!t.name || !*t.name) {
            inf_onnx_tensor_release(&t);
            rc = inf_error_set(L->err, INF_EFORMAT, "an initializer has no name");
            break;
        }
        int id = value_id(L, t.name, true, &o);
        if (id < 0) {
            inf_onnx_tensor_release(&t);
            rc = oom(L);
            break;
        }
        struct inf__onnx_value *v = &m->values[id];
        if (v->is_const) {
            rc = inf_error_set(L->err, INF_EFORMAT, "initializer '%s' appears twice", t.name);
            inf_onnx_tensor_release(&t);
            break;
        }
        v->is_const = true;
        v->konst = t;
        m->n_initializers++;
        m->n_parameters += t.n;
    }
    for (size_t i = 0; i < n_fs && !rc; i++) {
        int id;
        if (fs[i].number != 11 && fs[i].number != 12 && fs[i].number != 13)
            continue;
        rc = parse_value_info(L, fs[i].data, fs[i].len, &id);
        if (rc)
            break;
        if (fs[i].number == 11 && !m->values[id].is_const)
            rc = push_int(&m->inputs, &m->n_inputs, id) ? INF_OK : oom(L);
        else if (fs[i].number == 12)
            rc = push_int(&m->outputs, &m->n_outputs, id) ? INF_OK : oom(L);
    }
    for (size_t i = 0; i < n_fs && !rc; i++)
        if (fs[i].number == 1)
            rc = parse_node(L, fs[i].data, fs[i].len);
    free(fs);
    return rc;
}

static inf_status parse_model(struct loader *L, const uint8_t *p, size_t n)
{
    struct inf_onnx_model *m = L->m;
    struct inf__pb b = {p, p + n};
    struct inf__pb_field f, graph = {0};
    bool bad, has_graph = false, has_ir = false;
    m->opset = -1;
    while (inf__pb_next(&b, &f, &bad)) {
        switch (f.number) {
        case 1:
            if (f.wt != INF__PB_VARINT)
                return malformed(L, "ModelProto");
            m->ir_version = (int64_t)f.v;
            has_ir = true;
            break;
        case 2:
        case 3:
            if (f.wt != INF__PB_LEN)
                return malformed(L, "ModelProto");
            char **dst = f.number == 2 ? &m->producer_name : &m->producer_version;
            free(*dst);
            if (!(*dst = inf__pb_strdup(&f)))
                return oom(L);
            break;
        case 7:
            if (f.wt != INF__PB_LEN)
                return malformed(L, "ModelProto");
            graph = f;
            has_graph = true;
            break;
        case 8: {
            if (f.wt != INF__PB_LEN)
                return malformed(L, "ModelProto");
            struct inf__pb o = {f.data, f.data + f.len};
            struct inf__pb_field g;
            bool dflt = true;
            int64_t version = -1;
            while (inf__pb_next(&o, &g, &bad)) {
                if (g.number == 1 && g.wt == INF__PB_LEN)
                    dflt = g.len == 0 || (g.len == 7 && !memcmp(g.data, "ai.onnx", 7));
                else if (g.number == 2 && g.wt == INF__PB_VARINT)
                    version = (int64_t)g.v;
            }
            if (bad)
                return malformed(L, "OperatorSetIdProto");
            if (dflt)
                m->opset = version;
            break;
        }
        case 25:
            /* model-local functions: used only when a node names one, refused then */
            break;
        default:
            break;
        }
    }
    if (bad)
        return malformed(L, "ModelProto");
    if (!has_ir || !has_graph)
        return inf_error_set(L->err, INF_EFORMAT, "not an ONNX model: no %s",
                             has_ir ? "graph" : "ir_version");
    if (m->ir_version < 3 || m->ir_version > 13)
        return inf_error_set(L->err, INF_EUNSUPPORTED,
                             "ONNX IR version %" PRId64 " is not supported (3 to 13 are)",
                             m->ir_version);
    if (m->opset < 0)
        return inf_error_set(L->err, INF_EUNSUPPORTED,
                             "the model imports no opset of the default domain");
    if (m->opset < 7 || m->opset > 25)
        return inf_error_set(L->err, INF_EUNSUPPORTED,
                             "opset %" PRId64 " is not supported (7 to 25 are)", m->opset);
    return parse_graph(L, graph.data, graph.len);
}

/* ---- checks, order, folding, fusion ---- */

static inf_status check_nodes(struct loader *L)
{
    struct inf_onnx_model *m = L->m;
    for (int i = 0; i < m->n_nodes; i++) {
        struct inf__onnx_node *nd = &m->nodes[i];
        if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx"))
            return inf_error_set(L->err, INF_EUNSUPPORTED,
                                 "operator '%s' of domain '%s' (node '%s') is not supported",
                                 nd->op_type, nd->domain, nd->name);
        nd->op = inf__onnx_op_find(nd->op_type);
        if (!nd->op)
            return inf_error_set(L->err, INF_EUNSUPPORTED,
                                 "operator '%s' (node '%s') is not supported", nd->op_type,
                                 nd->name);
        if (m->opset < nd->op->since)
            return inf_error_set(L->err, INF_EUNSUPPORTED,
                                 "operator '%s' (node '%s') does not exist in opset %" PRId64,
                                 nd->op_type, nd->name, m->opset);
        if (nd->n_in < nd->op->min_in || nd->n_in > nd->op->max_in || nd->n_out < nd->op->min_out ||
            nd->n_out > nd->op->max_out)
            return inf_error_set(L->err, INF_EFORMAT,
                                 "node '%s' (%s) has %d inputs and %d outputs; the operator "
                                 "takes %d-%d and gives %d-%d",
                                 nd->name, nd->op_type, nd->n_in, nd->n_out, nd->op->min_in,
                                 nd->op->max_in, nd->op->min_out, nd->op->max_out);
        /* inputs an operator needs may not be "" (variadic ones need them all) */
        int required = nd->op->max_in >= 64 ? nd->n_in : nd->op->min_in;
        for (int k = 0; k < required && k < nd->n_in; k++)
            if (nd->in[k] < 0)
                return inf_error_set(L->err, INF_EFORMAT,
                                     "node '%s' (%s): required input %d is empty", nd->name,
                                     nd->op_type, k);
        for (int k = 0; k < nd->n_out; k++) {
            int id = nd->out[k];
            if (id < 0)
                continue;
            struct inf__onnx_value *v = &m->values[id];
            if (v->producer >= 0 || v->is_const)
                return inf_error_set(L->err, INF_EFORMAT,
                                     "value '%s' is produced twice (node '%s')", v->name, nd->name);
            for (int j = 0; j < m->n_inputs; j++)
                if (m->inputs[j] == id)
                    return inf_error_set(L->err, INF_EFORMAT, "node '%s' writes graph input '%s'",
                                         nd->name, v->name);
            v->producer = i;
        }
    }
    for (int i = 0; i < m->n_nodes; i++) {
        struct inf__onnx_node *nd = &m->nodes[i];
        for (int k = 0; k < nd->n_in; k++) {
            int id = nd->in[k];
            if (id < 0)
                continue;
            struct inf__onnx_value *v = &m->values[id];
            bool is_input = false;
            for (int j = 0; j < m->n_inputs && !is_input; j++)
                is_input = m->inputs[j] == id;
            if (v->producer < 0 && !v->is_const && !is_input)
                return inf_error_set(L->err, INF_EFORMAT,
                                     "node '%s' (%s) reads '%s', which nothing produces", nd->name,
                                     nd->op_type, v->name);
        }
    }
    for (int j = 0; j < m->n_outputs; j++) {
        struct inf__onnx_value *v = &m->values[m->outputs[j]];
        bool is_input = false;
        for (int k = 0; k < m->n_inputs && !is_input; k++)
            is_input = m->inputs[k] == m->outputs[j];
        if (v->producer < 0 && !v->is_const && !is_input)
            return inf_error_set(L->err, INF_EFORMAT, "graph output '%s' is never produced",
                                 v->name);
    }
    return INF_OK;
}

static inf_status topo_sort(struct loader *L)
{
    struct inf_onnx_model *m = L->m;
    int *indeg = calloc((size_t)m->n_nodes + 1, sizeof(int));
    int *queue = malloc(((size_t)m->n_nodes + 1) * sizeof(int));
    /* consumers of each node: CSR over (producer node -> consumer node) edges */
    int *cnt = calloc((size_t)m->n_nodes + 1, sizeof(int)), *edges = NULL;
    int n_edges = 0;
    inf_status rc = INF_OK;
    if (!indeg || !queue || !cnt)
        goto nomem;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++) {
            int id = m->nodes[i].in[k];
            if (id >= 0 && m->values[id].producer >= 0) {
                cnt[m->values[id].producer + 1]++;
                indeg[i]++;
                n_edges++;
            }
        }
    for (int i = 0; i < m->n_nodes; i++)
        cnt[i + 1] += cnt[i];
    edges = malloc(((size_t)n_edges + 1) * sizeof(int));
    int *fill = calloc((size_t)m->n_nodes + 1, sizeof(int));
    if (!edges || !fill) {
        free(fill);
        goto nomem;
    }
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++) {
            int id = m->nodes[i].in[k];
            if (id >= 0 && m->values[id].producer >= 0) {
                int pnode = m->values[id].producer;
                edges[cnt[pnode] + fill[pnode]++] = i;
            }
        }
    free(fill);
    int head = 0, tail = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (!indeg[i])
            queue[tail++] = i;
    m->plan = malloc(((size_t)m->n_nodes + 1) * sizeof(int));
    if (!m->plan)
        goto nomem;
    while (head < tail) {
        int u = queue[head++];
        m->plan[m->n_plan++] = u;
        for (int e = cnt[u]; e < cnt[u + 1]; e++)
            if (--indeg[edges[e]] == 0)
                queue[tail++] = edges[e];
    }
    if (m->n_plan != m->n_nodes) {
        for (int i = 0; i < m->n_nodes; i++)
            if (indeg[i]) {
                rc = inf_error_set(L->err, INF_EFORMAT,
                                   "the graph has a cycle through node "
                                   "'%s' (%s)",
                                   m->nodes[i].name, m->nodes[i].op_type);
                break;
            }
    }
    goto out;
nomem:
    rc = oom(L);
out:
    free(indeg);
    free(queue);
    free(cnt);
    free(edges);
    return rc;
}

static int n_consumers(const struct inf_onnx_model *m, int id, int *only)
{
    int c = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].dead)
            continue;
        for (int k = 0; k < m->nodes[i].n_in; k++)
            if (m->nodes[i].in[k] == id) {
                c++;
                *only = i;
            }
    }
    for (int j = 0; j < m->n_outputs; j++)
        if (m->outputs[j] == id)
            c += 2; /* a graph output cannot be fused away */
    return c;
}

static void drop_node(struct inf__onnx_node *nd)
{
    nd->dead = true;
}

/* Run every node whose inputs are all constants, once, at load time. */
static inf_status fold_constants(struct loader *L)
{
    struct inf_onnx_model *m = L->m;
    for (int p = 0; p < m->n_plan; p++) {
        struct inf__onnx_node *nd = &m->nodes[m->plan[p]];
        bool all_const = true;
        for (int k = 0; k < nd->n_in && all_const; k++)
            all_const = nd->in[k] < 0 || m->values[nd->in[k]].is_const;
        if (!all_const)
            continue;
        struct inf_onnx_tensor *ins[64] = {0}, outs[INF__ONNX_MAX_OUTS];
        if (nd->n_in > 64 || nd->n_out > INF__ONNX_MAX_OUTS)
            continue;
        for (int k = 0; k < nd->n_in; k++)
            ins[k] = nd->in[k] >= 0 ? &m->values[nd->in[k]].konst : NULL;
        memset(outs, 0, sizeof(outs));
        struct inf__onnx_exec x = {
            .m = m, .err = L->err, .opset = m->opset, .max_bytes = L->max_bytes};
        inf_status rc = inf__onnx_run_node(&x, nd, ins, outs);
        if (rc)
            return rc; /* a constant subgraph that cannot run would fail every run */
        for (int k = 0; k < nd->n_out; k++) {
            if (nd->out[k] < 0) {
                inf_onnx_tensor_release(&outs[k]);
                continue;
            }
            struct inf__onnx_value *v = &m->values[nd->out[k]];
            v->is_const = true;
            v->konst = outs[k];
            v->producer = -1;
        }
        drop_node(nd);
    }
    return INF_OK;
}

/* A new constant value named after a node; -1 when out of memory (t is released then). */
static int new_const(struct loader *L, const char *node, const char *what,
                     struct inf_onnx_tensor *t)
{
    char name[MAX_NAME + 64];
    bool o = false;
    for (int k = 0;; k++) {
        snprintf(name, sizeof(name), "%s/fused_%s_%d", node, what, k);
        if (names_find(&L->names, L->m, name) < 0)
            break;
    }
    int id = value_id(L, name, true, &o);
    if (id < 0) {
        inf_onnx_tensor_release(t);
        return -1;
    }
    free(t->name);
    t->name = NULL;
    L->m->values[id].is_const = true;
    L->m->values[id].konst = *t;
    return id;
}

/* A float constant holding C per-channel values for an input of rank R (channel axis 1):
   shape [C, 1, ...] of rank R - 1, or [1, C, 1, ...] of rank R. */
static const float *channel_const(const struct inf_onnx_model *m, int id, int64_t C, int R)
{
    if (id < 0 || !m->values[id].is_const)
        return NULL;
    const struct inf_onnx_tensor *t = &m->values[id].konst;
    if (t->dtype != INF_ONNX_FLOAT || t->n != C)
        return NULL;
    if (C == 1 && t->ndim <= R)
        return t->data;
    int ax = t->ndim == R ? 1 : t->ndim == R - 1 ? 0 : -1;
    if (ax < 0)
        return NULL;
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] != (d == ax ? C : 1))
            return NULL;
    return t->data;
}

/* An inference BatchNormalization whose scale, bias, mean and variance are constant float
   vectors (the fusions below fold them at load time). */
static bool bn_const_inference(const struct inf_onnx_model *m, const struct inf__onnx_node *bn)
{
    if (bn->n_in != 5 || inf__onnx_attr_i(bn, "training_mode", 0))
        return false;
    for (int k = 1; k < 5; k++)
        if (bn->in[k] < 0 || !m->values[bn->in[k]].is_const ||
            m->values[bn->in[k]].konst.dtype != INF_ONNX_FLOAT ||
            m->values[bn->in[k]].konst.ndim != 1)
            return false;
    return true;
}

/*
 * Per-channel affine ops after a Conv or an inference BatchNormalization: following
 * BatchNormalization, Mul and Add by per-channel constants, then Relu, are absorbed:
 * y = relu(x * s + t) with s, t folded into the Conv's weights and bias, or into the
 * BatchNormalization's parameters (rewritten as scale s, bias t, mean 0, var 1 - eps).
 */
static inf_status fuse(struct loader *L)
{
    struct inf_onnx_model *m = L->m;
    for (int p = 0; p < m->n_plan; p++) {
        struct inf__onnx_node *c = &m->nodes[m->plan[p]];
        bool conv = !strcmp(c->op_type, "Conv"), bn = !strcmp(c->op_type, "BatchNormalization");
        if (c->dead || (!conv && !bn) || c->n_out != 1)
            continue;
        int64_t C;
        int R;
        if (conv) {
            int w_id = c->in[1], b_id = c->n_in > 2 ? c->in[2] : -1;
            if (w_id < 0 || !m->values[w_id].is_const ||
                m->values[w_id].konst.dtype != INF_ONNX_FLOAT || m->values[w_id].konst.ndim < 3)
                continue;
            if (b_id >= 0 &&
                (!m->values[b_id].is_const || m->values[b_id].konst.dtype != INF_ONNX_FLOAT ||
                 m->values[b_id].konst.n != m->values[w_id].konst.dims[0]))
                continue;
            C = m->values[w_id].konst.dims[0];
            R = m->values[w_id].konst.ndim;
        } else {
            if (!bn_const_inference(m, c))
                continue;
            C = m->values[c->in[1]].konst.n;
            R = 4; /* checked at run time (fuse_rank) */
        }
        float *s = malloc(sizeof(float) * (size_t)C), *t = malloc(sizeof(float) * (size_t)C);
        if (!s || !t) {
            free(s);
            free(t);
            return oom(L);
        }
        for (int64_t i = 0; i < C; i++)
            s[i] = 1.f, t[i] = 0.f;
        int absorbed = 0, only = -1;
        bool relu = false;
        while (!relu && n_consumers(m, c->out[0], &only) == 1) {
            struct inf__onnx_node *f = &m->nodes[only];
            const float *v = NULL;
            if (f->n_out < 1 || f->out[0] < 0) /* its output unnamed: nothing to take over */
                break;
            if (!strcmp(f->op_type, "BatchNormalization") && f->n_in == 5 && f->n_out == 1 &&
                f->in[0] == c->out[0] && !inf__onnx_attr_i(f, "training_mode", 0)) {
                const float *sc = channel_const(m, f->in[1], C, 2),
                            *sh = channel_const(m, f->in[2], C, 2),
                            *mu = channel_const(m, f->in[3], C, 2),
                            *var = channel_const(m, f->in[4], C, 2);
                if (!sc || !sh || !mu || !var)
                    break;
                float eps = inf__onnx_attr_f(f, "epsilon", 1e-5f);
                for (int64_t i = 0; i < C; i++) {
                    float k = sc[i] / sqrtf(var[i] + eps);
                    s[i] *= k;
                    t[i] = (t[i] - mu[i]) * k + sh[i];
                }
            } else if ((!strcmp(f->op_type, "Mul") || !strcmp(f->op_type, "Add")) && f->n_in == 2 &&
                       f->n_out == 1 &&
                       (v = channel_const(m, f->in[f->in[0] == c->out[0] ? 1 : 0], C, R))) {
                bool mul = f->op_type[0] == 'M';
                for (int64_t i = 0; i < C; i++) {
                    if (mul) {
                        s[i] *= v[i];
                        t[i] *= v[i];
                    } else {
                        t[i] += v[i];
                    }
                }
            } else if (!strcmp(f->op_type, "Relu") && f->n_out == 1) {
                relu = true;
            } else {
                break;
            }
            /* c now writes f's output */
            m->values[c->out[0]].producer = -1;
            c->out[0] = f->out[0];
            m->values[f->out[0]].producer = m->plan[p];
            drop_node(f);
            absorbed++;
        }
        c->fuse_relu = relu;
        if (bn && absorbed)
            c->fuse_rank = R;
        bool affine = false;
        for (int64_t i = 0; i < C && !affine; i++)
            affine = s[i] != 1.f || t[i] != 0.f;
        inf_status rc = INF_OK;
        if (affine && conv) {
            const struct inf_onnx_tensor *w = &m->values[c->in[1]].konst;
            int b_id = c->n_in > 2 ? c->in[2] : -1;
            struct inf_onnx_tensor nw, nb;
            rc = inf_onnx_tensor_copy(&nw, w, L->err);
            if (!rc && (rc = inf_onnx_tensor_alloc(&nb, INF_ONNX_FLOAT, 1, &C, 0, L->err)))
                inf_onnx_tensor_release(&nw);
            if (!rc) {
                int64_t per = w->n / C;
                for (int64_t o = 0; o < C; o++) {
                    float b0 = b_id >= 0 ? ((float *)m->values[b_id].konst.data)[o] : 0.f;
                    for (int64_t j = 0; j < per; j++)
                        ((float *)nw.data)[o * per + j] *= s[o];
                    ((float *)nb.data)[o] = b0 * s[o] + t[o];
                }
                int nwid = new_const(L, c->name, "W", &nw);
                int nbid = nwid < 0 ? -1 : new_const(L, c->name, "B", &nb);
                if (nbid < 0)
                    rc = oom(L);
                else if (c->n_in < 3 && !push_int(&c->in, &c->n_in, nbid))
                    rc = oom(L);
                else {
                    c->in[1] = nwid;
                    c->in[2] = nbid;
                }
            }
        } else if (affine && bn) {
            /* BN(x) = x * k + (sh - mu * k); then * s + t */
            const float *sc = m->values[c->in[1]].konst.data, *sh = m->values[c->in[2]].konst.data,
                        *mu = m->values[c->in[3]].konst.data, *var = m->values[c->in[4]].konst.data;
            float eps = inf__onnx_attr_f(c, "epsilon", 1e-5f);
            struct inf_onnx_tensor q[4];
            int ids[4];
            for (int k = 0; k < 4 && !rc; k++)
                rc = inf_onnx_tensor_alloc(&q[k], INF_ONNX_FLOAT, 1, &C, 0, L->err);
            if (!rc) {
                for (int64_t i = 0; i < C; i++) {
                    float k = sc[i] / sqrtf(var[i] + eps);
                    ((float *)q[0].data)[i] = k * s[i];
                    ((float *)q[1].data)[i] = (sh[i] - mu[i] * k) * s[i] + t[i];
                    ((float *)q[2].data)[i] = 0.f;
                    ((float *)q[3].data)[i] = 1.f - eps;
                }
                for (int k = 0; k < 4; k++) {
                    ids[k] = rc ? -1 : new_const(L, c->name, "bn", &q[k]);
                    if (ids[k] < 0) {
                        if (!rc)
                            rc = oom(L);
                        for (int j = k + 1; j < 4; j++)
                            inf_onnx_tensor_release(&q[j]);
                        break;
                    }
                }
                if (!rc)
                    for (int k = 0; k < 4; k++)
                        c->in[1 + k] = ids[k];
            }
        }
        free(s);
        free(t);
        if (rc)
            return rc;
    }
    return INF_OK;
}

/* MatMul (constant float 2-D B [K, N]) -> Add of a constant float [N] (or [1, N]) row, the
   MatMul's only consumer: the bias is added in the GEMM's pass over its output. */
static void fuse_matmul_add(struct inf_onnx_model *m)
{
    for (int p = 0; p < m->n_plan; p++) {
        struct inf__onnx_node *mm = &m->nodes[m->plan[p]];
        int only = -1;
        if (mm->dead || strcmp(mm->op_type, "MatMul") || mm->n_in != 2 || mm->n_out != 1 ||
            mm->in[1] < 0 || !m->values[mm->in[1]].is_const)
            continue;
        const struct inf_onnx_tensor *b = &m->values[mm->in[1]].konst;
        if (b->dtype != INF_ONNX_FLOAT || b->ndim != 2 || n_consumers(m, mm->out[0], &only) != 1)
            continue;
        struct inf__onnx_node *ad = &m->nodes[only];
        if (strcmp(ad->op_type, "Add") || ad->n_in != 2 || ad->n_out != 1)
            continue;
        int other = ad->in[0] == mm->out[0] ? ad->in[1] : ad->in[0];
        if (other < 0 || !m->values[other].is_const)
            continue;
        const struct inf_onnx_tensor *c = &m->values[other].konst;
        if (c->dtype != INF_ONNX_FLOAT || c->n != b->dims[1] || c->ndim < 1 || c->ndim > 2 ||
            c->dims[c->ndim - 1] != b->dims[1])
            continue;
        mm->fuse_bias = other;
        m->values[mm->out[0]].producer = -1;
        mm->out[0] = ad->out[0];
        m->values[ad->out[0]].producer = m->plan[p];
        drop_node(ad);
    }
}

/* true when every value of the ints attribute is v (or it is absent) */
static bool attr_all(const struct inf__onnx_node *n, const char *name, int64_t v)
{
    const int64_t *a;
    int c = inf__onnx_attr_ints(n, name, &a);
    for (int i = 0; i < c; i++)
        if (a[i] != v)
            return false;
    return true;
}

/* A Conv with constant 1x1 weights, stride 1 and no padding: per pixel, a product over the
   channels (its weights in *w). */
static bool pointwise_conv(const struct inf_onnx_model *m, const struct inf__onnx_node *cv,
                           const struct inf_onnx_tensor **w)
{
    if (cv->n_in < 2 || cv->in[1] < 0 || !m->values[cv->in[1]].is_const)
        return false;
    *w = &m->values[cv->in[1]].konst;
    if ((*w)->ndim < 3)
        return false;
    for (int d = 2; d < (*w)->ndim; d++)
        if ((*w)->dims[d] != 1)
            return false;
    const char *ap = inf__onnx_attr_s(cv, "auto_pad", "NOTSET");
    return attr_all(cv, "strides", 1) && attr_all(cv, "pads", 0) &&
           (!strcmp(ap, "NOTSET") || !strcmp(ap, "VALID"));
}

/*
 * A pointwise Conv (1x1, stride 1, no padding, no ReLU absorbed) whose only reader is an
 * AveragePool with non-overlapping windows (kernel = strides, no padding, floor, no dilation):
 * both are linear per pixel and per channel, so the pool runs first, on the Conv's input, and
 * the Conv on the pooled plane, a quarter of the pixels for 2x2 (DenseNet's transitions: their
 * convolutions 5.8 -> about 1.5 ms). The Conv's old output value becomes the pool's.
 */
static void swap_conv_avgpool(struct inf_onnx_model *m)
{
    for (int p = 0; p < m->n_plan; p++) {
        struct inf__onnx_node *cv = &m->nodes[m->plan[p]];
        int only = -1;
        const struct inf_onnx_tensor *w;
        if (cv->dead || strcmp(cv->op_type, "Conv") || cv->n_out != 1 || cv->out[0] < 0 ||
            cv->in[0] < 0 || cv->fuse_relu || !pointwise_conv(m, cv, &w) ||
            n_consumers(m, cv->out[0], &only) != 1)
            continue;
        bool ok = true;
        struct inf__onnx_node *pl = &m->nodes[only];
        const int64_t *ks, *st;
        int nk, ns;
        if (pl->dead || strcmp(pl->op_type, "AveragePool") || pl->n_in != 1 || pl->n_out != 1 ||
            pl->out[0] < 0 || pl->in[0] != cv->out[0] ||
            (nk = inf__onnx_attr_ints(pl, "kernel_shape", &ks)) != w->ndim - 2 ||
            (ns = inf__onnx_attr_ints(pl, "strides", &st)) != nk ||
            inf__onnx_attr_i(pl, "ceil_mode", 0) || !attr_all(pl, "pads", 0) ||
            !attr_all(pl, "dilations", 1) ||
            strcmp(inf__onnx_attr_s(pl, "auto_pad", "NOTSET"), "NOTSET"))
            continue;
        for (int d = 0; ok && d < nk; d++)
            ok = ks[d] == st[d] && ks[d] >= 1;
        int q = -1;
        for (int i = p + 1; i < m->n_plan && q < 0; i++)
            if (m->plan[i] == only)
                q = i;
        if (!ok || q < 0)
            continue;
        /* the pool at p (its input is produced before p), the Conv at q (reads the pool's) */
        int x = cv->in[0], mid = cv->out[0], y = pl->out[0];
        pl->in[0] = x;
        pl->out[0] = mid;
        cv->in[0] = mid;
        cv->out[0] = y;
        m->values[mid].producer = only;
        m->values[mid].has_info = false; /* its declared shape was the Conv's output's */
        m->values[y].producer = m->plan[p];
        m->plan[q] = m->plan[p];
        m->plan[p] = only;
    }
}

/*
 * An inference BatchNormalization (+ Relu, from fuse) whose only reader is a 1x1 Conv (stride 1,
 * no padding, one group, constant weights) as its data input: the Conv reads the
 * BatchNormalization's input and applies the per-channel affine (+ ReLU) while it packs its B
 * panels, instead of a separate pass that writes a whole tensor (DenseNet: every 1x1
 * convolution follows BN + Relu on a Concat).
 */
static inf_status fuse_bn_conv(struct loader *L)
{
    struct inf_onnx_model *m = L->m;
    for (int p = 0; p < m->n_plan; p++) {
        struct inf__onnx_node *bn = &m->nodes[m->plan[p]];
        int only = -1;
        if (bn->dead || strcmp(bn->op_type, "BatchNormalization") || bn->n_out != 1 ||
            bn->out[0] < 0 || bn->in[0] < 0 || !bn_const_inference(m, bn) ||
            n_consumers(m, bn->out[0], &only) != 1)
            continue;
        int64_t C = m->values[bn->in[1]].konst.n;
        bool ok = true;
        for (int k = 2; ok && k < 5; k++)
            ok = m->values[bn->in[k]].konst.n == C;
        struct inf__onnx_node *cv = &m->nodes[only];
        const struct inf_onnx_tensor *w;
        if (!ok || cv->dead || strcmp(cv->op_type, "Conv") || cv->in[0] != bn->out[0] ||
            cv->pre_ss || !pointwise_conv(m, cv, &w) || inf__onnx_attr_i(cv, "group", 1) != 1)
            continue;
        if (w->dtype != INF_ONNX_FLOAT || w->dims[1] != C ||
            (bn->fuse_rank && bn->fuse_rank != w->ndim))
            continue;
        float *ss = malloc(sizeof(float) * (size_t)(2 * C + 1));
        if (!ss)
            return oom(L);
        /* as op_batchnorm computes them */
        double eps = inf__onnx_attr_f(bn, "epsilon", 1e-5f);
        const float *sc = m->values[bn->in[1]].konst.data, *sh = m->values[bn->in[2]].konst.data,
                    *mu = m->values[bn->in[3]].konst.data, *var = m->values[bn->in[4]].konst.data;
        for (int64_t c = 0; c < C; c++) {
            double k = (double)sc[c] / sqrt((double)var[c] + eps);
            ss[c] = (float)k;
            ss[C + c] = (float)((double)sh[c] - (double)mu[c] * k);
        }
        cv->pre_ss = ss;
        cv->pre_c = C;
        cv->pre_relu = bn->fuse_relu;
        cv->in[0] = bn->in[0];
        drop_node(bn);
    }
    return INF_OK;
}

/* The 16 Winograd F(2x2, 3x3) weight transforms of each group (U = G g G^T per output and input
   channel, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double then rounded), packed as
   ops_nn.c's conv_winograd reads them (onnx_internal.h, wino_w). False when out of memory. */
static bool wino_weights(struct inf__onnx_node *c, const float *w, int64_t group, int64_t Mg,
                         int64_t Cg)
{
    size_t per = inf__sgemm_packed_a_size(Mg, Cg);
    float *u = malloc(sizeof(float) * 16 * (size_t)(Mg * Cg) + 1);
    c->wino_w = malloc(sizeof(float) * (16 * per * (size_t)group + 1));
    if (!u || !c->wino_w) {
        free(u);
        free(c->wino_w);
        c->wino_w = NULL;
        return false;
    }
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    for (int64_t g = 0; g < group; g++) {
        for (int64_t m = 0; m < Mg; m++)
            for (int64_t ch = 0; ch < Cg; ch++) {
                const float *k = w + ((g * Mg + m) * Cg + ch) * 9;
                double gk[4][3]; /* G k */
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 3; j++)
                        gk[i][j] = G[i][0] * k[j] + G[i][1] * k[3 + j] + G[i][2] * k[6 + j];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        u[((size_t)(4 * i + j) * (size_t)Mg + (size_t)m) * (size_t)Cg +
                          (size_t)ch] =
                            (float)(gk[i][0] * G[j][0] + gk[i][1] * G[j][1] + gk[i][2] * G[j][2]);
            }
        for (int xi = 0; xi < 16; xi++)
            inf__sgemm_pack_a(u + (size_t)xi * (size_t)(Mg * Cg), Cg, false, Mg, Cg, 1.f,
                              c->wino_w + ((size_t)g * 16 + (size_t)xi) * per);
    }
    free(u);
    return true;
}

/* Pack each Conv's constant weights once (the GEMM's A operand), and the Winograd transforms of
   3x3 / stride 1 ones (INFERNO_ONNX_WINOGRAD=0: none, so ops_nn.c convolves them directly). */
static inf_status prepack(struct loader *L)
{
    struct inf_onnx_model *m = L->m;
    const char *wenv = getenv("INFERNO_ONNX_WINOGRAD");
    const bool wino = !(wenv && !strcmp(wenv, "0"));
    for (int p = 0; p < m->n_plan; p++) {
        struct inf__onnx_node *c = &m->nodes[m->plan[p]];
        if (c->dead || strcmp(c->op_type, "Conv") || c->n_in < 2 || c->in[1] < 0 ||
            !m->values[c->in[1]].is_const)
            continue;
        const struct inf_onnx_tensor *w = &m->values[c->in[1]].konst;
        int64_t group = inf__onnx_attr_i(c, "group", 1);
        if (w->dtype != INF_ONNX_FLOAT || w->ndim < 3 || group < 1 || w->dims[0] % group || !w->n)
            continue;
        int64_t Mg = w->dims[0] / group, K = w->n / w->dims[0];
        size_t per = inf__sgemm_packed_a_size(Mg, K);
        c->packed_w = malloc(sizeof(float) * (per * (size_t)group + 1));
        if (!c->packed_w)
            return oom(L);
        for (int64_t g = 0; g < group; g++)
            inf__sgemm_pack_a((const float *)w->data + g * Mg * K, K, false, Mg, K, 1.f,
                              c->packed_w + (size_t)g * per);
        if (wino && w->ndim == 4 && w->dims[2] == 3 && w->dims[3] == 3 &&
            attr_all(c, "strides", 1) && attr_all(c, "dilations", 1) &&
            !wino_weights(c, (const float *)w->data, group, Mg, K / 9))
            return oom(L);
    }
    return INF_OK;
}

static void finish_plan(struct inf_onnx_model *m)
{
    int k = 0;
    for (int p = 0; p < m->n_plan; p++)
        if (!m->nodes[m->plan[p]].dead)
            m->plan[k++] = m->plan[p];
    m->n_plan = k;
    for (int i = 0; i < m->n_values; i++)
        m->values[i].last_use = -1;
    for (int p = 0; p < m->n_plan; p++) {
        const struct inf__onnx_node *nd = &m->nodes[m->plan[p]];
        for (int j = 0; j < nd->n_in; j++)
            if (nd->in[j] >= 0)
                m->values[nd->in[j]].last_use = p;
        if (nd->fuse_bias >= 0) /* a constant the node reads without an input for it */
            m->values[nd->fuse_bias].last_use = p;
    }
    for (int j = 0; j < m->n_outputs; j++)
        m->values[m->outputs[j]].last_use = INT_MAX;
}

/* Drop constants nothing reads any more (folded inputs, fused BN parameters). */
static void drop_unused_consts(struct inf_onnx_model *m)
{
    for (int i = 0; i < m->n_values; i++) {
        struct inf__onnx_value *v = &m->values[i];
        if (v->is_const && v->last_use < 0)
            inf_onnx_tensor_release(&v->konst);
    }
}

static inf_status fill_io(struct loader *L)
{
    struct inf_onnx_model *m = L->m;
    m->input_info = calloc((size_t)m->n_inputs + 1, sizeof(*m->input_info));
    m->output_info = calloc((size_t)m->n_outputs + 1, sizeof(*m->output_info));
    if (!m->input_info || !m->output_info)
        return oom(L);
    for (int i = 0; i < m->n_inputs; i++) {
        struct inf__onnx_value *v = &m->values[m->inputs[i]];
        m->input_info[i] = v->info;
        if (!v->has_info || !v->info.dtype)
            return inf_error_set(L->err, INF_EFORMAT, "graph input '%s' has no tensor type",
                                 v->name);
    }
    for (int i = 0; i < m->n_outputs; i++)
        m->output_info[i] = m->values[m->outputs[i]].info;
    return INF_OK;
}

void inf_onnx_free(struct inf_onnx_model *m)
{
    if (!m)
        return;
    inf__onnx_cache_clear(m);
    pthread_mutex_destroy(&m->cache.mu);
    for (int i = 0; i < m->n_values; i++) {
        free(m->values[i].name);
        for (int k = 0; k < INF_ONNX_MAX_DIMS; k++)
            free(m->values[i].dim_param_store[k]);
        inf_onnx_tensor_release(&m->values[i].konst);
    }
    for (int i = 0; i < m->n_nodes; i++) {
        struct inf__onnx_node *nd = &m->nodes[i];
        free(nd->name);
        free(nd->op_type);
        free(nd->domain);
        free(nd->in);
        free(nd->out);
        for (int k = 0; k < nd->n_attrs; k++)
            attr_release(&nd->attrs[k]);
        free(nd->attrs);
        free(nd->packed_w);
        free(nd->wino_w);
        free(nd->pre_ss);
    }
    free(m->values);
    free(m->nodes);
    free(m->plan);
    free(m->inputs);
    free(m->outputs);
    free(m->input_info);
    free(m->output_info);
    free(m->producer_name);
    free(m->producer_version);
    free(m->graph_name);
    free(m);
}

inf_status inf_onnx_load_memory(const void *data, size_t n, const char *base_dir,
                                const struct inf_onnx_params *p, struct inf_onnx_model **out,
                                struct inf_error *err)
{
    struct inf_onnx_model *m = calloc(1, sizeof(*m));
    *out = NULL;
    if (!m)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    pthread_mutex_init(&m->cache.mu, NULL);
    m->cache.max_bytes = p && p->cache_bytes ? p->cache_bytes : (size_t)256 << 20;
    struct loader L = {.m = m, .dir = base_dir, .err = err};
    L.max_bytes = p && p->max_tensor_bytes ? p->max_tensor_bytes : INF__ONNX_DEFAULT_MAX_BYTES;
    m->max_bytes = L.max_bytes;
    inf_status rc = parse_model(&L, data, n);
    if (!rc)
        rc = check_nodes(&L);
    if (!rc)
        rc = topo_sort(&L);
    if (!rc)
        rc = fill_io(&L);
    if (!rc && !(p && p->no_fold))
        rc = fold_constants(&L);
    if (!rc && !(p && p->no_fuse))
        rc = fuse(&L);
    if (!rc && !(p && p->no_fuse))
        fuse_matmul_add(m);
    if (!rc && !(p && p->no_fuse))
        swap_conv_avgpool(m);
    if (!rc && !(p && p->no_fuse))
        rc = fuse_bn_conv(&L);
    if (!rc)
        rc = inf__onnx_infer_shapes(m, err);
    if (!rc)
        rc = prepack(&L);
    if (!rc) {
        finish_plan(m);
        drop_unused_consts(m);
    }
    free(L.names.slot);
    if (rc) {
        inf_onnx_free(m);
        return rc;
    }
    *out = m;
    return INF_OK;
}

inf_status inf_onnx_load_file(const char *path, const struct inf_onnx_params *p,
                              struct inf_onnx_model **out, struct inf_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
    size_t len;
    char *buf = inf__read_stream(f, (size_t)8 << 30, &len);
    fclose(f);
    if (!buf)
        return inf_error_set(err, INF_EIO, "cannot read '%s': %s", path, strerror(errno));
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    inf_status rc = inf_onnx_load_memory(buf, len, dir, p, out, err);
    free(buf);
    if (rc)
        inf_error_prefix(err, "%s", path);
    return rc;
}

/* ---- accessors ---- */

int inf_onnx_n_inputs(const struct inf_onnx_model *m)
{
    return m->n_inputs;
}

int inf_onnx_n_outputs(const struct inf_onnx_model *m)
{
    return m->n_outputs;
}

const struct inf_onnx_value_info *inf_onnx_input(const struct inf_onnx_model *m, int i)
{
    return i >= 0 && i < m->n_inputs ? &m->input_info[i] : NULL;
}

const struct inf_onnx_value_info *inf_onnx_output(const struct inf_onnx_model *m, int i)
{
    return i >= 0 && i < m->n_outputs ? &m->output_info[i] : NULL;
}

void inf_onnx_get_info(const struct inf_onnx_model *m, struct inf_onnx_model_info *out)
{
    out->ir_version = m->ir_version;
    out->opset = m->opset;
    out->producer_name = m->producer_name ? m->producer_name : "";
    out->producer_version = m->producer_version ? m->producer_version : "";
    out->graph_name = m->graph_name ? m->graph_name : "";
    out->n_nodes = m->n_nodes;
    out->n_nodes_planned = m->n_plan;
    out->n_parameters = m->n_parameters;
    out->n_initializers = m->n_initializers;
}

void inf_onnx_op_histogram(const struct inf_onnx_model *m,
                           void (*fn)(void *ctx, const char *op, int count), void *ctx)
{
    for (int i = 0; i < m->n_nodes; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(m->nodes[j].op_type, m->nodes[i].op_type);
        if (seen)
            continue;
        int c = 0;
        for (int j = i; j < m->n_nodes; j++)
            c += !strcmp(m->nodes[j].op_type, m->nodes[i].op_type);
        fn(ctx, m->nodes[i].op_type, c);
    }
}

const struct inf__onnx_attr *inf__onnx_attr(const struct inf__onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

int64_t inf__onnx_attr_i(const struct inf__onnx_node *n, const char *name, int64_t dflt)
{
    const struct inf__onnx_attr *a = inf__onnx_attr(n, name);
    return a ? a->i : dflt;
}

float inf__onnx_attr_f(const struct inf__onnx_node *n, const char *name, float dflt)
{
    const struct inf__onnx_attr *a = inf__onnx_attr(n, name);
    return a ? a->f : dflt;
}

const char *inf__onnx_attr_s(const struct inf__onnx_node *n, const char *name, const char *dflt)
{
    const struct inf__onnx_attr *a = inf__onnx_attr(n, name);
    return a && a->s ? a->s : dflt;
}

int inf__onnx_attr_ints(const struct inf__onnx_node *n, const char *name, const int64_t **v)
{
    const struct inf__onnx_attr *a = inf__onnx_attr(n, name);
    if (!a) {
        *v = NULL;
        return -1;
    }
    *v = a->ints;
    return (int)a->n;
}
