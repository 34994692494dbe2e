/*
 * kserve.c - the Open Inference Protocol (KServe v2) for ONNX models: the registry of loaded
 * models and the /v2 handlers (the endpoints are listed in kserve.h).
 *
 * A request's tensors are checked against the model before anything runs: every input named
 * once, its datatype the model's, its shape of the model's rank with the fixed dims equal, the
 * element count (of flat or nested data) equal to the shape's, each element of the right JSON
 * kind and in range. Sizes are capped by the body limit the router already applied.
 */
#include "server/kserve.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_info.h"
#include "inferno/kernels.h"
#include "inferno/onnx.h"
#include "inferno/threadpool.h"

/* A request waiting for (or taken into) a run. */
struct pending {
    struct inf_onnx_tensor *ins, *outs;
    int64_t batch; /* dim 0 of its inputs; -1 when they disagree (never batched) */
    inf_status rc;
    char err[INF_ERROR_MSG_MAX];
    int batched; /* requests in the run that answered it */
    bool done;
    struct pending *next;
};

struct onnx_entry {
    char *name, *path;
    struct inf_onnx_model *model;
    struct inf_threadpool *pool;
    /* one run at a time on the pool; requests arriving meanwhile queue and the thread that
       holds the pool runs them together, concatenated along the batch dimension when every
       input and output has the same symbolic dim 0 (batchable), else one after another */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool busy, batchable;
    struct pending *head, *tail;
};

#define MAX_BATCH_REQUESTS 32

struct srv_onnx {
    struct onnx_entry *e;
    size_t n;
};

void srv_onnx_free(struct srv_onnx *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        inf_onnx_free(o->e[i].model);
        inf_threadpool_free(o->e[i].pool);
        pthread_mutex_destroy(&o->e[i].mu);
        pthread_cond_destroy(&o->e[i].cv);
        free(o->e[i].name);
        free(o->e[i].path);
    }
    free(o->e);
    free(o);
}

inf_status srv_onnx_new(const char *const *names, const char *const *paths, size_t n, int n_threads,
                        struct srv_onnx **out, struct inf_error *err)
{
    *out = NULL;
    struct srv_onnx *o = calloc(1, sizeof(*o));
    if (!o || !(o->e = calloc(n + 1, sizeof(*o->e)))) {
        free(o);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        struct onnx_entry *e = &o->e[i];
        for (size_t j = 0; j < i; j++)
            if (!strcmp(names[j], names[i])) {
                srv_onnx_free(o);
                return inf_error_set(err, INF_EEXIST, "two ONNX models are named '%s'", names[i]);
            }
        pthread_mutex_init(&e->mu, NULL);
        pthread_cond_init(&e->cv, NULL);
        o->n++;
        if (!(e->name = strdup(names[i])) || !(e->path = strdup(paths[i]))) {
            srv_onnx_free(o);
            return inf_error_set(err, INF_ENOMEM, "out of memory");
        }
        inf_status rc = inf_onnx_load_file(paths[i], NULL, &e->model, err);
        struct inf_threadpool_params tp;
        inf_threadpool_params_init(&tp);
        tp.n_threads = n_threads;
        if (!rc && n_threads != 1)
            rc = inf_threadpool_new(&tp, &e->pool, err);
        if (rc) {
            srv_onnx_free(o);
            return rc;
        }
        /* batchable: every input and output has the same symbolic first dim, no strings */
        const char *param = NULL;
        bool ok = inf_onnx_n_inputs(e->model) > 0 && inf_onnx_n_outputs(e->model) > 0;
        for (int io = 0; io < 2 && ok; io++) {
            int cnt = io ? inf_onnx_n_outputs(e->model) : inf_onnx_n_inputs(e->model);
            for (int k = 0; k < cnt && ok; k++) {
                const struct inf_onnx_value_info *v =
                    io ? inf_onnx_output(e->model, k) : inf_onnx_input(e->model, k);
                ok = v->ndim >= 1 && v->dim_param[0] && v->dtype != INF_ONNX_STRING &&
                     (!param || !strcmp(param, v->dim_param[0]));
                if (ok)
                    param = v->dim_param[0];
            }
        }
        e->batchable = ok;
    }
    *out = o;
    return INF_OK;
}

size_t srv_onnx_count(const struct srv_onnx *o)
{
    return o ? o->n : 0;
}

const char *srv_onnx_name(const struct srv_onnx *o, size_t i)
{
    return o && i < o->n ? o->e[i].name : NULL;
}

/* ---- datatypes ---- */

static const struct {
    const char *name;
    int dtype;
} dtypes[] = {
    {"BOOL", INF_ONNX_BOOL},     {"UINT8", INF_ONNX_UINT8},   {"UINT16", INF_ONNX_UINT16},
    {"UINT32", INF_ONNX_UINT32}, {"UINT64", INF_ONNX_UINT64}, {"INT8", INF_ONNX_INT8},
    {"INT16", INF_ONNX_INT16},   {"INT32", INF_ONNX_INT32},   {"INT64", INF_ONNX_INT64},
    {"FP16", INF_ONNX_FLOAT16},  {"FP32", INF_ONNX_FLOAT},    {"FP64", INF_ONNX_DOUBLE},
    {"BF16", INF_ONNX_BFLOAT16}, {"BYTES", INF_ONNX_STRING},
};

static const char *dtype_name(int dtype)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].name;
    return NULL;
}

static int dtype_of(const char *name)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (!strcmp(dtypes[i].name, name))
            return dtypes[i].dtype;
    return 0;
}

static void reply_error(struct http_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(struct http_req *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    http_reply_json(r, status, json_pack("{s:s}", "error", msg));
}

/* ---- URL: /v2/models/{name}[/versions/{v}][/tail] ---- */

struct model_url {
    struct onnx_entry *e;
    char name[256], version[64], tail[32];
};

static bool parse_url(struct http_req *r, struct model_url *u)
{
    const char *p = r->url + strlen("/v2/models/");
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    memset(u, 0, sizeof(*u));
    if (!n || n >= sizeof(u->name)) {
        reply_error(r, 404, "no model named in the path");
        return false;
    }
    memcpy(u->name, p, n);
    p += n;
    if (!strncmp(p, "/versions/", 10)) {
        p += 10;
        slash = strchr(p, '/');
        n = slash ? (size_t)(slash - p) : strlen(p);
        if (!n || n >= sizeof(u->version)) {
            reply_error(r, 404, "bad model version in the path");
            return false;
        }
        memcpy(u->version, p, n);
        p += n;
    }
    if (*p == '/') {
        if (strlen(p + 1) >= sizeof(u->tail)) {
            reply_error(r, 404, "unknown endpoint");
            return false;
        }
        snprintf(u->tail, sizeof(u->tail), "%s", p + 1);
    }
    const struct srv_onnx *o = r->params->onnx;
    for (size_t i = 0; o && i < o->n; i++)
        if (!strcmp(o->e[i].name, u->name))
            u->e = &o->e[i];
    if (!u->e) {
        reply_error(r, 404, "model '%.200s' is not served", u->name);
        return false;
    }
    if (u->version[0] && strcmp(u->version, "1")) {
        reply_error(r, 404, "model '%.200s' has no version '%.60s' (only 1)", u->name, u->version);
        return false;
    }
    return true;
}

/* ---- handlers ---- */

void kserve_server(struct http_req *r)
{
    http_reply_json(
        r, 200,
        json_pack("{s:s,s:s,s:[]}", "name", "inferno", "version", INFERNO_VERSION, "extensions"));
}

void kserve_health(struct http_req *r)
{
    const char *what = r->url + strlen("/v2/health/");
    if (!strcmp(what, "live"))
        http_reply_json(r, 200, json_pack("{s:b}", "live", 1));
    else if (!strcmp(what, "ready"))
        /* models are loaded before the server listens */
        http_reply_json(r, 200, json_pack("{s:b}", "ready", srv_onnx_count(r->params->onnx) > 0));
    else
        reply_error(r, 404, "unknown health endpoint '%.100s'", what);
}

static json_t *tensor_meta(const struct inf_onnx_value_info *v)
{
    json_t *shape = json_array();
    for (int d = 0; d < (v->ndim < 0 ? 0 : v->ndim); d++)
        json_array_append_new(shape,
                              json_integer(v->dim_param[d] || v->dims[d] < 0 ? -1 : v->dims[d]));
    const char *dt = dtype_name(v->dtype);
    return json_pack("{s:s,s:s,s:o}", "name", v->name, "datatype", dt ? dt : "UNSUPPORTED", "shape",
                     shape);
}

void kserve_model_get(struct http_req *r)
{
    struct model_url u;
    if (!parse_url(r, &u))
        return;
    snprintf(r->model, sizeof(r->model), "%s", u.name);
    if (!strcmp(u.tail, "ready")) {
        http_reply_json(r, 200, json_pack("{s:s,s:b}", "name", u.name, "ready", 1));
        return;
    }
    if (u.tail[0]) {
        reply_error(r, 404, "unknown endpoint '%.30s'", u.tail);
        return;
    }
    json_t *ins = json_array(), *outs = json_array();
    for (int i = 0; i < inf_onnx_n_inputs(u.e->model); i++)
        json_array_append_new(ins, tensor_meta(inf_onnx_input(u.e->model, i)));
    for (int i = 0; i < inf_onnx_n_outputs(u.e->model); i++)
        json_array_append_new(outs, tensor_meta(inf_onnx_output(u.e->model, i)));
    http_reply_json(r, 200,
                    json_pack("{s:s,s:[s],s:s,s:o,s:o}", "name", u.name, "versions", "1",
                              "platform", "inferno_onnx", "inputs", ins, "outputs", outs));
}

/* Flatten data (nested arrays) into t's elements; *k counts elements written. */
static bool fill(struct http_req *r, const char *name, json_t *data, struct inf_onnx_tensor *t,
                 int64_t *k, int depth)
{
    if (json_is_array(data)) {
        if (depth > INF_ONNX_MAX_DIMS + 1) {
            reply_error(r, 400, "input '%.100s': data nested too deep", name);
            return false;
        }
        size_t i;
        json_t *v;
        json_array_foreach(data, i, v) if (!fill(r, name, v, t, k, depth + 1)) return false;
        return true;
    }
    if (*k >= t->n) {
        reply_error(r, 400, "input '%.100s': more data elements than its shape holds", name);
        return false;
    }
    int64_t i = (*k)++;
    if (t->dtype == INF_ONNX_STRING) {
        if (!json_is_string(data) || !(((char **)t->data)[i] = strdup(json_string_value(data)))) {
            reply_error(r, 400, "input '%.100s': BYTES elements must be strings", name);
            return false;
        }
        return true;
    }
    if (t->dtype == INF_ONNX_BOOL) {
        if (!json_is_boolean(data)) {
            reply_error(r, 400, "input '%.100s': BOOL elements must be true or false", name);
            return false;
        }
        ((uint8_t *)t->data)[i] = json_is_true(data);
        return true;
    }
    if (!json_is_number(data)) {
        reply_error(r, 400, "input '%.100s': element %" PRId64 " is not a number", name, i);
        return false;
    }
    bool is_float = t->dtype == INF_ONNX_FLOAT || t->dtype == INF_ONNX_DOUBLE ||
                    t->dtype == INF_ONNX_FLOAT16 || t->dtype == INF_ONNX_BFLOAT16;
    if (!is_float) {
        if (!json_is_integer(data)) {
            reply_error(r, 400, "input '%.100s': element %" PRId64 " is not an integer", name, i);
            return false;
        }
        json_int_t v = json_integer_value(data);
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        switch (t->dtype) {
        case INF_ONNX_UINT8:
            lo = 0, hi = UINT8_MAX;
            break;
        case INF_ONNX_INT8:
            lo = INT8_MIN, hi = INT8_MAX;
            break;
        case INF_ONNX_UINT16:
            lo = 0, hi = UINT16_MAX;
            break;
        case INF_ONNX_INT16:
            lo = INT16_MIN, hi = INT16_MAX;
            break;
        case INF_ONNX_UINT32:
            lo = 0, hi = UINT32_MAX;
            break;
        case INF_ONNX_INT32:
            lo = INT32_MIN, hi = INT32_MAX;
            break;
        case INF_ONNX_UINT64:
            lo = 0;
            break;
        default:
            break;
        }
        if (v < lo || v > hi) {
            reply_error(r, 400, "input '%.100s': element %" PRId64 " is out of range for %s", name,
                        i, dtype_name(t->dtype));
            return false;
        }
        switch (t->dtype) {
        case INF_ONNX_UINT8:
            ((uint8_t *)t->data)[i] = (uint8_t)v;
            break;
        case INF_ONNX_INT8:
            ((int8_t *)t->data)[i] = (int8_t)v;
            break;
        case INF_ONNX_UINT16:
            ((uint16_t *)t->data)[i] = (uint16_t)v;
            break;
        case INF_ONNX_INT16:
            ((int16_t *)t->data)[i] = (int16_t)v;
            break;
        case INF_ONNX_UINT32:
            ((uint32_t *)t->data)[i] = (uint32_t)v;
            break;
        case INF_ONNX_INT32:
            ((int32_t *)t->data)[i] = (int32_t)v;
            break;
        case INF_ONNX_UINT64:
            ((uint64_t *)t->data)[i] = (uint64_t)v;
            break;
        default:
            ((int64_t *)t->data)[i] = (int64_t)v;
        }
        return true;
    }
    double v = json_number_value(data);
    switch (t->dtype) {
    case INF_ONNX_FLOAT:
        ((float *)t->data)[i] = (float)v;
        break;
    case INF_ONNX_DOUBLE:
        ((double *)t->data)[i] = v;
        break;
    default: { /* FP16 / BF16 */
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        if (t->dtype == INF_ONNX_BFLOAT16)
            ((uint16_t *)t->data)[i] = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
        else
            inf_f32_to_f16_row(&f, (uint16_t *)t->data + i, 1);
    }
    }
    return true;
}

static json_t *tensor_data(const struct inf_onnx_tensor *t)
{
    json_t *a = json_array();
    for (int64_t i = 0; i < t->n; i++) {
        json_t *v;
        switch (t->dtype) {
        case INF_ONNX_FLOAT:
            v = json_real(((const float *)t->data)[i]);
            break;
        case INF_ONNX_DOUBLE:
            v = json_real(((const double *)t->data)[i]);
            break;
        case INF_ONNX_BOOL:
            v = json_boolean(((const uint8_t *)t->data)[i]);
            break;
        case INF_ONNX_STRING:
            v = json_string(((char *const *)t->data)[i]);
            break;
        case INF_ONNX_INT64:
            v = json_integer(((const int64_t *)t->data)[i]);
            break;
        case INF_ONNX_INT32:
            v = json_integer(((const int32_t *)t->data)[i]);
            break;
        case INF_ONNX_UINT8:
            v = json_integer(((const uint8_t *)t->data)[i]);
            break;
        case INF_ONNX_INT8:
            v = json_integer(((const int8_t *)t->data)[i]);
            break;
        case INF_ONNX_UINT16:
            v = json_integer(((const uint16_t *)t->data)[i]);
            break;
        case INF_ONNX_INT16:
            v = json_integer(((const int16_t *)t->data)[i]);
            break;
        case INF_ONNX_UINT32:
            v = json_integer(((const uint32_t *)t->data)[i]);
            break;
        case INF_ONNX_UINT64:
            v = json_integer((json_int_t)((const uint64_t *)t->data)[i]);
            break;
        default: {
            /* FP16 / BF16 */
            uint16_t h = ((const uint16_t *)t->data)[i];
            float f;
            if (t->dtype == INF_ONNX_BFLOAT16) {
                uint32_t u = (uint32_t)h << 16;
                memcpy(&f, &u, 4);
            } else {
                inf_f16_to_f32_row(&h, &f, 1);
            }
            v = json_real(f);
        }
        }
        /* JSON has no NaN or Infinity: jansson refuses them, so they become null */
        json_array_append_new(a, v ? v : json_null());
    }
    return a;
}

/* Run one request alone. */
static void run_one(struct onnx_entry *e, struct pending *p)
{
    struct inf_error err = {0};
    p->rc = inf_onnx_run(e->model, e->pool, p->ins, p->outs, &err);
    snprintf(p->err, sizeof(p->err), "%s", err.msg);
    p->batched = 1;
}

/* Both batchable, with the same shape after dim 0, input by input. */
static bool same_rows(const struct onnx_entry *e, const struct pending *a, const struct pending *b)
{
    if (a->batch < 0 || b->batch < 0)
        return false;
    for (int i = 0; i < inf_onnx_n_inputs(e->model); i++) {
        if (a->ins[i].ndim != b->ins[i].ndim)
            return false;
        for (int d = 1; d < a->ins[i].ndim; d++)
            if (a->ins[i].dims[d] != b->ins[i].dims[d])
                return false;
    }
    return true;
}

/* Run ps[0..n) as one batch (concatenated along dim 0), or one by one when the outputs do not
   keep the batch in dim 0. */
static void run_batch(struct onnx_entry *e, struct pending **ps, int n)
{
    if (n == 1) {
        run_one(e, ps[0]);
        return;
    }
    const struct inf_onnx_model *m = e->model;
    int ni = inf_onnx_n_inputs(m), no = inf_onnx_n_outputs(m);
    struct inf_onnx_tensor *ins = calloc((size_t)ni, sizeof(*ins)),
                           *outs = calloc((size_t)no, sizeof(*outs));
    struct inf_error err = {0};
    int64_t total = 0;
    bool ok = ins && outs;
    for (int k = 0; k < n; k++)
        total += ps[k]->batch;
    for (int i = 0; ok && i < ni; i++) {
        int64_t dims[INF_ONNX_MAX_DIMS];
        memcpy(dims, ps[0]->ins[i].dims, sizeof(dims));
        dims[0] = total;
        ok = inf_onnx_tensor_alloc(&ins[i], ps[0]->ins[i].dtype, ps[0]->ins[i].ndim, dims, 0,
                                   &err) == INF_OK;
        size_t es = inf_onnx_dtype_size(ps[0]->ins[i].dtype), off = 0;
        for (int k = 0; ok && k < n; k++) {
            size_t bytes = (size_t)ps[k]->ins[i].n * es;
            if (bytes)
                memcpy((char *)ins[i].data + off, ps[k]->ins[i].data, bytes);
            off += bytes;
        }
    }
    inf_status rc = ok ? inf_onnx_run(m, e->pool, ins, outs, &err) : INF_ENOMEM;
    for (int j = 0; ok && !rc && j < no; j++)
        ok = outs[j].ndim >= 1 && outs[j].dims[0] == total;
    if (ok && !rc) {
        for (int j = 0; j < no; j++) {
            size_t es = inf_onnx_dtype_size(outs[j].dtype), off = 0;
            size_t row = total ? (size_t)(outs[j].n / total) : 0;
            for (int k = 0; k < n; k++) {
                int64_t dims[INF_ONNX_MAX_DIMS];
                memcpy(dims, outs[j].dims, sizeof(dims));
                dims[0] = ps[k]->batch;
                struct inf_error e2 = {0};
                size_t bytes = row * (size_t)ps[k]->batch * es;
                if (inf_onnx_tensor_alloc(&ps[k]->outs[j], outs[j].dtype, outs[j].ndim, dims, 0,
                                          &e2) == INF_OK) {
                    if (bytes)
                        memcpy(ps[k]->outs[j].data, (char *)outs[j].data + off, bytes);
                } else {
                    ps[k]->rc = e2.code;
                    snprintf(ps[k]->err, sizeof(ps[k]->err), "%s", e2.msg);
                }
                off += bytes;
            }
        }
        for (int k = 0; k < n; k++)
            ps[k]->batched = n;
    } else {
        for (int k = 0; k < n; k++)
            run_one(e, ps[k]);
    }
    for (int i = 0; ins && i < ni; i++)
        inf_onnx_tensor_release(&ins[i]);
    for (int j = 0; outs && j < no; j++)
        inf_onnx_tensor_release(&outs[j]);
    free(ins);
    free(outs);
}

/*
 * Run p on e's pool. The first request to find the pool idle runs it and then every request
 * that queued meanwhile, in batches of same-shaped requests; the others wait until it has
 * done theirs.
 */
static void submit(struct onnx_entry *e, struct pending *p)
{
    pthread_mutex_lock(&e->mu);
    p->next = NULL;
    if (e->tail)
        e->tail->next = p;
    else
        e->head = p;
    e->tail = p;
    if (e->busy) {
        while (!p->done)
            pthread_cond_wait(&e->cv, &e->mu);
        pthread_mutex_unlock(&e->mu);
        return;
    }
    e->busy = true;
    while (e->head) {
        /* the head and the queued requests that batch with it */
        struct pending *ps[MAX_BATCH_REQUESTS], **link;
        int n = 0;
        ps[n++] = e->head;
        e->head = e->head->next;
        for (link = &e->head; e->batchable && *link && n < MAX_BATCH_REQUESTS;) {
            if (same_rows(e, ps[0], *link)) {
                ps[n++] = *link;
                *link = (*link)->next;
            } else {
                link = &(*link)->next;
            }
        }
        e->tail = NULL;
        for (struct pending *q = e->head; q; q = q->next)
            e->tail = q;
        pthread_mutex_unlock(&e->mu);
        run_batch(e, ps, n);
        pthread_mutex_lock(&e->mu);
        for (int k = 0; k < n; k++)
            ps[k]->done = true;
        pthread_cond_broadcast(&e->cv);
    }
    e->busy = false;
    pthread_mutex_unlock(&e->mu);
}

void kserve_model_post(struct http_req *r)
{
    struct model_url u;
    if (!parse_url(r, &u))
        return;
    snprintf(r->model, sizeof(r->model), "%s", u.name);
    if (strcmp(u.tail, "infer")) {
        reply_error(r, 404, "unknown endpoint '%.30s' (POST .../infer)", u.tail);
        return;
    }
    const struct inf_onnx_model *m = u.e->model;
    int ni = inf_onnx_n_inputs(m), no = inf_onnx_n_outputs(m);
    json_error_t jerr;
    json_t *req = json_loadb(r->body ? r->body : "", r->len, 0, &jerr);
    json_t *inputs = json_object_get(req, "inputs"), *want = json_object_get(req, "outputs");
    json_t *id = json_object_get(req, "id");
    struct inf_onnx_tensor *ins = calloc((size_t)ni + 1, sizeof(*ins)),
                           *outs = calloc((size_t)no + 1, sizeof(*outs));
    bool *given = calloc((size_t)ni + 1, sizeof(bool));
    bool *keep = calloc((size_t)no + 1, sizeof(bool));
    if (!ins || !outs || !given || !keep) {
        reply_error(r, 500, "out of memory");
        goto out;
    }
    if (!json_is_object(req)) {
        reply_error(r, 400, "the body is not a JSON object: %s", jerr.text);
        goto out;
    }
    if (id && !json_is_string(id)) {
        reply_error(r, 400, "'id' must be a string");
        goto out;
    }
    if (!json_is_array(inputs)) {
        reply_error(r, 400, "'inputs' must be an array");
        goto out;
    }
    size_t k;
    json_t *in;
    json_array_foreach(inputs, k, in)
    {
        const char *name = json_string_value(json_object_get(in, "name"));
        const char *dt = json_string_value(json_object_get(in, "datatype"));
        json_t *shape = json_object_get(in, "shape"), *data = json_object_get(in, "data");
        if (!name || !dt || !json_is_array(shape) || !data) {
            reply_error(r, 400, "inputs[%zu] needs name, shape, datatype and data", k);
            goto out;
        }
        int slot = -1;
        for (int i = 0; i < ni; i++)
            if (!strcmp(inf_onnx_input(m, i)->name, name))
                slot = i;
        if (slot < 0) {
            reply_error(r, 400, "model '%.100s' has no input '%.100s'", u.name, name);
            goto out;
        }
        if (given[slot]) {
            reply_error(r, 400, "input '%.100s' is given twice", name);
            goto out;
        }
        given[slot] = true;
        const struct inf_onnx_value_info *vi = inf_onnx_input(m, slot);
        int dtype = dtype_of(dt);
        if (dtype != vi->dtype) {
            reply_error(r, 400, "input '%.100s' is %s, the model wants %s", name, dt,
                        dtype_name(vi->dtype) ? dtype_name(vi->dtype) : "an unsupported type");
            goto out;
        }
        int64_t dims[INF_ONNX_MAX_DIMS];
        size_t nd = json_array_size(shape);
        if (nd > INF_ONNX_MAX_DIMS || (vi->ndim >= 0 && nd != (size_t)vi->ndim)) {
            reply_error(r, 400, "input '%.100s' has %zu dims, the model wants %d", name, nd,
                        vi->ndim);
            goto out;
        }
        for (size_t d = 0; d < nd; d++) {
            json_t *v = json_array_get(shape, d);
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > (INT64_C(1) << 40)) {
                reply_error(r, 400, "input '%.100s': shape[%zu] is not a size", name, d);
                goto out;
            }
            dims[d] = json_integer_value(v);
            if (vi->ndim >= 0 && vi->dims[d] >= 0 && !vi->dim_param[d] && dims[d] != vi->dims[d]) {
                reply_error(r, 400,
                            "input '%.100s' dim %zu is %" PRId64 ", the model wants %" PRId64, name,
                            d, dims[d], vi->dims[d]);
                goto out;
            }
        }
        /* the data cannot hold more elements than the body has bytes: cap before allocating */
        int64_t count = 1;
        for (size_t d = 0; d < nd; d++)
            count = dims[d] && count > INT64_MAX / dims[d] ? INT64_MAX : count * dims[d];
        if (count > (int64_t)r->len) {
            reply_error(r, 400,
                        "input '%.100s': the shape holds more elements than the body "
                        "could carry",
                        name);
            goto out;
        }
        struct inf_error err = {0};
        if (inf_onnx_tensor_alloc(&ins[slot], dtype, (int)nd, dims, 0, &err)) {
            reply_error(r, 400, "input '%.100s': %s", name, err.msg);
            goto out;
        }
        int64_t filled = 0;
        if (!fill(r, name, data, &ins[slot], &filled, 0))
            goto out;
        if (filled != ins[slot].n) {
            reply_error(r, 400, "input '%.100s': %" PRId64 " data elements for a shape of %" PRId64,
                        name, filled, ins[slot].n);
            goto out;
        }
    }
    for (int i = 0; i < ni; i++)
        if (!given[i]) {
            reply_error(r, 400, "input '%.100s' is missing", inf_onnx_input(m, i)->name);
            goto out;
        }
    if (want && !json_is_array(want)) {
        reply_error(r, 400, "'outputs' must be an array");
        goto out;
    }
    for (int j = 0; j < no; j++)
        keep[j] = !want || !json_array_size(want);
    json_array_foreach(want, k, in)
    {
        const char *name = json_string_value(json_object_get(in, "name"));
        int slot = -1;
        for (int j = 0; name && j < no; j++)
            if (!strcmp(inf_onnx_output(m, j)->name, name))
                slot = j;
        if (slot < 0) {
            reply_error(r, 400, "model '%.100s' has no output '%.100s'", u.name, name ? name : "");
            goto out;
        }
        keep[slot] = true;
    }
    struct pending pd = {.ins = ins, .outs = outs, .batch = -1};
    if (ni && ins[0].ndim)
        pd.batch = ins[0].dims[0];
    for (int i = 0; i < ni; i++)
        if (!ins[i].ndim || ins[i].dims[0] != pd.batch)
            pd.batch = -1;
    submit(u.e, &pd);
    if (pd.rc) {
        reply_error(r, pd.rc == INF_ENOMEM || pd.rc == INF_EINTERNAL ? 500 : 400, "%s", pd.err);
        goto out;
    }
    json_t *res = json_array();
    for (int j = 0; j < no; j++) {
        if (!keep[j])
            continue;
        const char *dt = dtype_name(outs[j].dtype);
        json_t *shape = json_array();
        for (int d = 0; d < outs[j].ndim; d++)
            json_array_append_new(shape, json_integer(outs[j].dims[d]));
        json_array_append_new(res,
                              json_pack("{s:s,s:s,s:o,s:o}", "name", inf_onnx_output(m, j)->name,
                                        "datatype", dt ? dt : "UNSUPPORTED", "shape", shape, "data",
                                        dt ? tensor_data(&outs[j]) : json_array()));
    }
    json_t *body = json_pack("{s:s,s:s,s:o,s:{s:i}}", "model_name", u.name, "model_version", "1",
                             "outputs", res, "parameters", "batched_requests", pd.batched);
    if (id)
        json_object_set(body, "id", id);
    http_reply_json(r, 200, body);
out:
    for (int i = 0; ins && i < ni; i++)
        inf_onnx_tensor_release(&ins[i]);
    for (int j = 0; outs && j < no; j++)
        inf_onnx_tensor_release(&outs[j]);
    free(ins);
    free(outs);
    free(given);
    free(keep);
    json_decref(req);
}
