/*
 * run.c - the executor: the plan made by load.c run node after node. Each run has its own
 * value slots, so a model may run on several threads at once; an intermediate tensor is freed
 * right after the last node that reads it (load.c recorded that position), so peak memory is
 * what is live at once, not the sum of all values.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnx/onnx_internal.h"

const struct inf__onnx_op *inf__onnx_op_find(const char *op_type)
{
    const struct inf__onnx_op *tables[] = {inf__onnx_ops_elem, inf__onnx_ops_shape,
                                           inf__onnx_ops_nn};
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
        for (const struct inf__onnx_op *o = tables[t]; o->name; o++)
            if (!strcmp(o->name, op_type))
                return o;
    return NULL;
}

inf_status inf__onnx_fail(struct inf__onnx_exec *x, const struct inf__onnx_node *n, inf_status code,
                          const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return inf_error_set(x->err, code, "node '%s' (%s): %s", n->name, n->op_type, msg);
}

/* A cached buffer of at least need bytes and at most twice that, or NULL. */
static void *cache_take(const struct inf_onnx_model *cm, size_t need)
{
    struct inf__onnx_bufcache *c = (struct inf__onnx_bufcache *)&cm->cache;
    void *p = NULL;
    if (need < 4096)
        return NULL;
    pthread_mutex_lock(&c->mu);
    int best = -1;
    for (int i = 0; i < c->n; i++)
        if (c->slot[i].cap >= need && c->slot[i].cap / 2 <= need &&
            (best < 0 || c->slot[i].cap < c->slot[best].cap))
            best = i;
    if (best >= 0) {
        p = c->slot[best].p;
        c->bytes -= c->slot[best].cap;
        c->slot[best] = c->slot[--c->n];
    }
    pthread_mutex_unlock(&c->mu);
    return p;
}

/* Keep p (cap bytes) in the cache when there is room; false when the caller still owns it. */
static bool cache_give(const struct inf_onnx_model *cm, void *p, size_t cap)
{
    struct inf__onnx_bufcache *c = (struct inf__onnx_bufcache *)&cm->cache;
    bool kept = false;
    if (cap < 4096)
        return false;
    pthread_mutex_lock(&c->mu);
    if (c->n < INF__ONNX_CACHE_SLOTS && c->bytes + cap <= c->max_bytes) {
        c->slot[c->n].p = p;
        c->slot[c->n++].cap = cap;
        c->bytes += cap;
        kept = true;
    }
    pthread_mutex_unlock(&c->mu);
    return kept;
}

void inf__onnx_recycle(const struct inf_onnx_model *cm, struct inf_onnx_tensor *t)
{
    size_t bytes = (size_t)t->n * inf_onnx_dtype_size(t->dtype);
    if (!t->borrowed && t->dtype != INF_ONNX_STRING && t->data && cache_give(cm, t->data, bytes))
        t->data = NULL;
    inf_onnx_tensor_release(t);
}

void *inf__onnx_scratch(struct inf__onnx_exec *x, size_t bytes)
{
    void *p = cache_take(x->m, bytes);
    return p ? p : malloc(bytes ? bytes : 1);
}

void inf__onnx_scratch_free(struct inf__onnx_exec *x, void *p, size_t bytes)
{
    if (p && !cache_give(x->m, p, bytes))
        free(p);
}

void inf__onnx_cache_clear(struct inf_onnx_model *m)
{
    for (int i = 0; i < m->cache.n; i++)
        free(m->cache.slot[i].p);
    m->cache.n = 0;
    m->cache.bytes = 0;
}

inf_status inf__onnx_out(struct inf__onnx_exec *x, struct inf_onnx_tensor *t, int dtype, int ndim,
                         const int64_t *dims)
{
    int64_t n = inf__onnx_numel(ndim, dims);
    size_t es = inf_onnx_dtype_size(dtype);
    void *p = dtype != INF_ONNX_STRING && n > 0 && es && (uint64_t)n <= x->max_bytes / es
                  ? cache_take(x->m, (size_t)n * es)
                  : NULL;
    if (p) {
        memset(t, 0, sizeof(*t));
        t->dtype = dtype;
        t->ndim = ndim;
        memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndim);
        t->n = n;
        t->data = p;
        return INF_OK;
    }
    return inf__onnx_tensor_alloc_uninit(t, dtype, ndim, dims, x->max_bytes, x->err);
}

inf_status inf__onnx_run_node(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                              struct inf_onnx_tensor *const *ins, struct inf_onnx_tensor *outs)
{
    /* outs has room for INF__ONNX_MAX_OUTS: ops test outs[k].data for optional outputs */
    memset(outs, 0, sizeof(*outs) * INF__ONNX_MAX_OUTS);
    int required = n->op->max_in >= 64 ? n->n_in : n->op->min_in;
    for (int k = 0; k < required && k < n->n_in; k++)
        if (!ins[k])
            return inf__onnx_fail(x, n, INF_EFORMAT, "required input %d is missing", k);
    inf_status rc = n->op->fn(x, n, ins, outs);
    if (rc) {
        for (int k = 0; k < n->n_out; k++)
            inf_onnx_tensor_release(&outs[k]);
        if (x->err && !strstr(x->err->msg, "node '"))
            inf_error_prefix(x->err, "node '%s' (%s)", n->name, n->op_type);
    }
    return rc;
}

static inf_status check_input(const struct inf_onnx_value_info *vi, const struct inf_onnx_tensor *t,
                              struct inf_error *err)
{
    if (t->dtype != vi->dtype)
        return inf_error_set(err, INF_ETYPE, "input '%s' is %s, the model wants %s", vi->name,
                             inf_onnx_dtype_name(t->dtype), inf_onnx_dtype_name(vi->dtype));
    if (vi->ndim < 0)
        return INF_OK;
    if (t->ndim != vi->ndim)
        return inf_error_set(err, INF_EINVAL, "input '%s' has %d dims, the model wants %d",
                             vi->name, t->ndim, vi->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (vi->dims[i] >= 0 && !vi->dim_param[i] && t->dims[i] != vi->dims[i])
            return inf_error_set(err, INF_EINVAL,
                                 "input '%s' dim %d is %" PRId64 ", the model wants %" PRId64,
                                 vi->name, i, t->dims[i], vi->dims[i]);
    if (inf__onnx_numel(t->ndim, t->dims) != t->n)
        return inf_error_set(err, INF_EINVAL,
                             "input '%s': element count does not match its "
                             "dims",
                             vi->name);
    return INF_OK;
}

/* CPU time of the calling thread (the profile's clock: a busy machine does not inflate it) */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

inf_status inf_onnx_run(const struct inf_onnx_model *m, struct inf_threadpool *pool,
                        const struct inf_onnx_tensor *inputs, struct inf_onnx_tensor *outputs,
                        struct inf_error *err)
{
    struct inf_onnx_tensor *slots = calloc((size_t)m->n_values + 1, sizeof(*slots));
    struct inf_onnx_tensor **cur = calloc((size_t)m->n_values + 1, sizeof(*cur));
    inf_status rc = INF_OK;
    for (int j = 0; j < m->n_outputs; j++)
        memset(&outputs[j], 0, sizeof(outputs[j]));
    if (!slots || !cur) {
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->n_values; i++)
        if (m->values[i].is_const)
            cur[i] = (struct inf_onnx_tensor *)&m->values[i].konst;
    for (int i = 0; i < m->n_inputs; i++) {
        rc = check_input(&m->input_info[i], &inputs[i], err);
        if (rc)
            goto out;
        slots[m->inputs[i]] = inputs[i];
        slots[m->inputs[i]].borrowed = true;
        cur[m->inputs[i]] = &slots[m->inputs[i]];
    }
    /* INFERNO_ONNX_PROFILE=1: one line per node on stderr (op, node, CPU ms of the calling
       thread, output shape) */
    static int prof = -1;
    if (prof < 0)
        prof = getenv("INFERNO_ONNX_PROFILE") != NULL;
    struct inf__onnx_exec x = {.m = m,
                               .pool = pool,
                               .err = err,
                               .opset = m->opset,
                               .max_bytes = m->max_bytes,
                               .in_run = true};
    for (int p = 0; p < m->n_plan; p++) {
        const struct inf__onnx_node *n = &m->nodes[m->plan[p]];
        struct inf_onnx_tensor *ins[64] = {0}, outs[INF__ONNX_MAX_OUTS];
        if (n->n_in > 64 || n->n_out > INF__ONNX_MAX_OUTS) {
            rc = inf__onnx_fail(&x, n, INF_ELIMIT, "too many inputs or outputs");
            goto out;
        }
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0)
                continue;
            ins[k] = cur[n->in[k]];
            if (!ins[k]) {
                rc = inf__onnx_fail(&x, n, INF_EINTERNAL, "input '%s' is not computed",
                                    m->values[n->in[k]].name);
                goto out;
            }
        }
        double t0 = prof ? cpu_ms() : 0;
        x.pos = p;
        rc = inf__onnx_run_node(&x, n, ins, outs);
        if (rc)
            goto out;
        if (prof) {
            fprintf(stderr, "onnx-profile\t%s\t%s\t%.3f\t[", n->op_type, n->name, cpu_ms() - t0);
            for (int d = 0; n->n_out && d < outs[0].ndim; d++)
                fprintf(stderr, "%s%lld", d ? "," : "", (long long)outs[0].dims[d]);
            fprintf(stderr, "]\n");
        }
        for (int k = 0; k < n->n_out; k++) {
            if (n->out[k] < 0) {
                inf_onnx_tensor_release(&outs[k]);
                continue;
            }
            inf_onnx_tensor_release(&slots[n->out[k]]);
            slots[n->out[k]] = outs[k];
            cur[n->out[k]] = &slots[n->out[k]];
        }
        /* free what no later node reads */
        for (int k = 0; k < n->n_in; k++) {
            int id = n->in[k];
            if (id >= 0 && m->values[id].last_use == p && !m->values[id].is_const &&
                cur[id] == &slots[id]) {
                inf__onnx_recycle(m, &slots[id]);
                cur[id] = NULL;
            }
        }
    }
    for (int j = 0; j < m->n_outputs; j++) {
        int id = m->outputs[j];
        if (!cur[id]) {
            rc = inf_error_set(err, INF_EINTERNAL, "output '%s' was not computed",
                               m->values[id].name);
            goto out;
        }
        if (cur[id] == &slots[id] && !slots[id].borrowed) {
            outputs[j] = slots[id];
            memset(&slots[id], 0, sizeof(slots[id]));
            cur[id] = NULL;
        } else {
            rc = inf_onnx_tensor_copy(&outputs[j], cur[id], err);
            if (rc)
                goto out;
        }
        free(outputs[j].name);
        outputs[j].name = strdup(m->values[id].name);
    }
out:
    if (slots)
        for (int i = 0; i < m->n_values; i++)
            inf_onnx_tensor_release(&slots[i]);
    if (rc)
        for (int j = 0; j < m->n_outputs; j++)
            inf_onnx_tensor_release(&outputs[j]);
    free(slots);
    free(cur);
    return rc;
}
