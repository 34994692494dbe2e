/*
 * test_onnx.c - the ONNX backend on models built here byte by byte (a small protobuf writer):
 * loading and running, and bad models refused cleanly (truncated at every length, a cyclic
 * graph, an unknown op, an unsupported opset, absurd dims, external data leaving the model's
 * directory, wrong input shapes), random byte flips, TensorProto and .npy round trips.
 * Expected values are computed independently in the test (max(0, x), x + y, a matrix product
 * written out by hand), never by the code under test.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/onnx.h"
#include "inferno/threadpool.h"
#include "t.h"

/* ---- a protobuf writer ---- */

struct w {
    uint8_t b[65536];
    size_t n;
};

static void w_byte(struct w *w, uint8_t c)
{
    if (w->n < sizeof(w->b))
        w->b[w->n++] = c;
}

static void w_varint(struct w *w, uint64_t v)
{
    do {
        w_byte(w, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
        v >>= 7;
    } while (v);
}

static void w_int(struct w *w, unsigned field, int64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, (uint64_t)v);
}

static void w_bytes(struct w *w, unsigned field, const void *p, size_t n)
{
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    for (size_t i = 0; i < n; i++)
        w_byte(w, ((const uint8_t *)p)[i]);
}

static void w_str(struct w *w, unsigned field, const char *s)
{
    w_bytes(w, field, s, strlen(s));
}

static void w_msg(struct w *w, unsigned field, const struct w *m)
{
    w_bytes(w, field, m->b, m->n);
}

/* ValueInfoProto: name, float tensor of the given dims (ndim < 0: no shape) */
static void w_value_info(struct w *g, unsigned field, const char *name, int ndim,
                         const int64_t *dims)
{
    struct w vi = {0}, type = {0}, tt = {0}, shape = {0};
    for (int i = 0; i < ndim; i++) {
        struct w dim = {0};
        w_int(&dim, 1, dims[i]);
        w_msg(&shape, 1, &dim);
    }
    w_int(&tt, 1, INF_ONNX_FLOAT);
    if (ndim >= 0)
        w_msg(&tt, 2, &shape);
    w_msg(&type, 1, &tt);
    w_str(&vi, 1, name);
    w_msg(&vi, 2, &type);
    w_msg(g, field, &vi);
}

static void w_node(struct w *g, const char *op, const char *name, const char *const *in, int n_in,
                   const char *const *out, int n_out)
{
    struct w nd = {0};
    for (int i = 0; i < n_in; i++)
        w_str(&nd, 1, in[i]);
    for (int i = 0; i < n_out; i++)
        w_str(&nd, 2, out[i]);
    w_str(&nd, 3, name);
    w_str(&nd, 4, op);
    w_msg(g, 1, &nd);
}

static void w_model(struct w *m, const struct w *graph, int64_t opset)
{
    struct w os = {0};
    w_int(m, 1, 8);
    w_str(&os, 1, "");
    w_int(&os, 2, opset);
    w_msg(m, 8, &os);
    w_msg(m, 7, graph);
}

/* y = Relu(x), x float[2, 3] */
static void relu_model(struct w *m, int64_t opset)
{
    struct w g = {0};
    const char *in[] = {"x"}, *out[] = {"y"};
    int64_t dims[] = {2, 3};
    w_node(&g, "Relu", "relu0", in, 1, out, 1);
    w_str(&g, 2, "g");
    w_value_info(&g, 11, "x", 2, dims);
    w_value_info(&g, 12, "y", 2, dims);
    w_model(m, &g, opset);
}

static struct inf_onnx_tensor f32_tensor(int ndim, const int64_t *dims, const float *v)
{
    struct inf_onnx_tensor t;
    inf_onnx_tensor_alloc(&t, INF_ONNX_FLOAT, ndim, dims, 0, NULL);
    memcpy(t.data, v, sizeof(float) * (size_t)t.n);
    return t;
}

/* Load model bytes m (p may be NULL) and run them on one 4-d float input; the outputs in out.
   NULL, with the error printed, when the model does not load. */
static struct inf_onnx_model *load_run4(const struct w *m, const struct inf_onnx_params *p,
                                        const int64_t *xd, const float *xv,
                                        struct inf_onnx_tensor *out)
{
    struct inf_onnx_model *model = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_onnx_load_memory(m->b, m->n, NULL, p, &model, &err), INF_OK);
    if (!model) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    struct inf_onnx_tensor in = f32_tensor(4, xd, xv);
    T_EQ_INT(inf_onnx_run(model, NULL, &in, out, &err), INF_OK);
    inf_onnx_tensor_release(&in);
    return model;
}

static void test_relu_runs(void)
{
    struct w m = {0};
    relu_model(&m, 13);
    struct inf_onnx_model *model = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_OK);
    if (!model)
        return;
    T_EQ_INT(inf_onnx_n_inputs(model), 1);
    T_EQ_INT(inf_onnx_n_outputs(model), 1);
    T_EQ_STR(inf_onnx_input(model, 0)->name, "x");
    T_EQ_INT(inf_onnx_input(model, 0)->dims[1], 3);
    int64_t dims[] = {2, 3};
    float x[] = {-1.5f, 0.f, 2.f, 3.25f, -0.f, -7.f};
    struct inf_onnx_tensor in = f32_tensor(2, dims, x), out = {0};
    T_EQ_INT(inf_onnx_run(model, NULL, &in, &out, &err), INF_OK);
    T_EQ_INT(out.n, 6);
    for (int i = 0; out.data && i < 6; i++)
        T_OK(((float *)out.data)[i] == (x[i] > 0 ? x[i] : 0.f));
    inf_onnx_tensor_release(&out);
    /* wrong shape and type are refused before anything runs */
    int64_t bad[] = {3, 2};
    struct inf_onnx_tensor in2 = f32_tensor(2, bad, x);
    T_EQ_INT(inf_onnx_run(model, NULL, &in2, &out, &err), INF_EINVAL);
    T_OK(strstr(err.msg, "'x'") != NULL);
    in2.dtype = INF_ONNX_INT32;
    T_EQ_INT(inf_onnx_run(model, NULL, &in2, &out, &err), INF_ETYPE);
    inf_onnx_tensor_release(&in);
    inf_onnx_tensor_release(&in2);
    inf_onnx_free(model);
}

static void test_truncated(void)
{
    struct w m = {0};
    relu_model(&m, 13);
    int refused = 0;
    for (size_t len = 0; len < m.n; len++) {
        struct inf_onnx_model *model = NULL;
        struct inf_error err = {0};
        inf_status rc = inf_onnx_load_memory(m.b, len, NULL, NULL, &model, &err);
        if (rc != INF_OK) {
            refused++;
            T_OK(err.msg[0] != 0);
        }
        inf_onnx_free(model);
    }
    /* every proper prefix that cuts a field is refused; the few that end between fields
       lose the graph or a node's output and are refused for that */
    T_EQ_INT(refused, (long long)m.n);
}

static void test_bad_graphs(void)
{
    struct inf_onnx_model *model = NULL;
    struct inf_error err = {0};
    int64_t dims[] = {2};
    /* cyclic: a = Add(x, b); b = Relu(a) */
    {
        struct w g = {0}, m = {0};
        const char *i1[] = {"x", "b"}, *o1[] = {"a"}, *i2[] = {"a"}, *o2[] = {"b"};
        w_node(&g, "Add", "add0", i1, 2, o1, 1);
        w_node(&g, "Relu", "relu0", i2, 1, o2, 1);
        w_value_info(&g, 11, "x", 1, dims);
        w_value_info(&g, 12, "b", 1, dims);
        w_model(&m, &g, 13);
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_EFORMAT);
        T_OK(strstr(err.msg, "cycle") != NULL);
        T_OK(model == NULL);
    }
    /* unknown op: named with its node */
    {
        struct w g = {0}, m = {0};
        const char *i1[] = {"x"}, *o1[] = {"y"};
        w_node(&g, "FrobnicateV7", "weird_node", i1, 1, o1, 1);
        w_value_info(&g, 11, "x", 1, dims);
        w_value_info(&g, 12, "y", 1, dims);
        w_model(&m, &g, 13);
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_EUNSUPPORTED);
        T_OK(strstr(err.msg, "'FrobnicateV7'") && strstr(err.msg, "'weird_node'"));
    }
    /* an input nobody produces */
    {
        struct w g = {0}, m = {0};
        const char *i1[] = {"ghost"}, *o1[] = {"y"};
        w_node(&g, "Relu", "r", i1, 1, o1, 1);
        w_value_info(&g, 11, "x", 1, dims);
        w_value_info(&g, 12, "y", 1, dims);
        w_model(&m, &g, 13);
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_EFORMAT);
        T_OK(strstr(err.msg, "'ghost'") != NULL);
    }
    /* opsets outside 7..25 */
    {
        struct w m = {0};
        relu_model(&m, 99);
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_EUNSUPPORTED);
        T_OK(strstr(err.msg, "opset 99") != NULL);
    }
    /* an op newer than the model's opset: Gelu is opset 20 */
    {
        struct w g = {0}, m = {0};
        const char *i1[] = {"x"}, *o1[] = {"y"};
        w_node(&g, "Gelu", "gelu0", i1, 1, o1, 1);
        w_value_info(&g, 11, "x", 1, dims);
        w_value_info(&g, 12, "y", 1, dims);
        w_model(&m, &g, 13);
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_EUNSUPPORTED);
        T_OK(strstr(err.msg, "'Gelu'") && strstr(err.msg, "opset 13"));
    }
    /* absurd dims: an initializer claiming 2^40 x 2^40 elements with 4 bytes of data */
    {
        struct w g = {0}, m = {0}, t = {0};
        w_int(&t, 1, INT64_C(1) << 40);
        w_int(&t, 1, INT64_C(1) << 40);
        w_int(&t, 2, INF_ONNX_FLOAT);
        w_str(&t, 8, "w");
        w_bytes(&t, 9, "\0\0\0\0", 4);
        w_msg(&g, 5, &t);
        const char *i1[] = {"x", "w"}, *o1[] = {"y"};
        w_node(&g, "Add", "add0", i1, 2, o1, 1);
        w_value_info(&g, 11, "x", 1, dims);
        w_value_info(&g, 12, "y", 1, dims);
        w_model(&m, &g, 13);
        inf_status rc = inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err);
        T_OK(rc == INF_EFORMAT || rc == INF_ELIMIT);
    }
    /* external data that leaves the model's directory */
    {
        struct w g = {0}, m = {0}, t = {0}, kv = {0};
        w_int(&t, 1, 2);
        w_int(&t, 2, INF_ONNX_FLOAT);
        w_str(&t, 8, "w");
        w_str(&kv, 1, "location");
        w_str(&kv, 2, "../../etc/passwd");
        w_msg(&t, 13, &kv);
        w_int(&t, 14, 1);
        w_msg(&g, 5, &t);
        const char *i1[] = {"x", "w"}, *o1[] = {"y"};
        w_node(&g, "Add", "add0", i1, 2, o1, 1);
        w_value_info(&g, 11, "x", 1, dims);
        w_value_info(&g, 12, "y", 1, dims);
        w_model(&m, &g, 13);
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, "/tmp", NULL, &model, &err), INF_EFORMAT);
        T_OK(strstr(err.msg, "leaves the model's directory") != NULL);
    }
    /* wrong shapes known at load: refused then, naming the node and the shapes */
    {
        struct w g = {0}, m = {0};
        int64_t d23[] = {2, 3}, d4[] = {4};
        const char *i1[] = {"a", "b"}, *o1[] = {"c"}, *i2[] = {"c", "d"}, *o2[] = {"e"};
        w_node(&g, "MatMul", "mm0", i1, 2, o1, 1);
        w_node(&g, "Add", "add0", i2, 2, o2, 1);
        w_value_info(&g, 11, "a", 2, d23);
        int64_t d34[] = {3, 4};
        w_value_info(&g, 11, "b", 2, d34);
        w_value_info(&g, 11, "d", 1, d4 + 0);
        w_value_info(&g, 12, "e", -1, NULL);
        w_model(&m, &g, 13);
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_OK);
        inf_onnx_free(model);
        model = NULL;
        struct w g2 = {0}, m2 = {0};
        int64_t d5[] = {5};
        w_node(&g2, "MatMul", "mm0", i1, 2, o1, 1);
        w_node(&g2, "Add", "add0", i2, 2, o2, 1);
        w_value_info(&g2, 11, "a", 2, d23);
        w_value_info(&g2, 11, "b", 2, d34);
        w_value_info(&g2, 11, "d", 1, d5); /* [2,4] + [5] */
        w_value_info(&g2, 12, "e", -1, NULL);
        w_model(&m2, &g2, 13);
        T_EQ_INT(inf_onnx_load_memory(m2.b, m2.n, NULL, NULL, &model, &err), INF_EINVAL);
        T_OK(strstr(err.msg, "'add0'") && strstr(err.msg, "[2,4] and [5]"));
        struct w g3 = {0}, m3 = {0};
        w_node(&g3, "MatMul", "mm0", i1, 2, o1, 1);
        w_value_info(&g3, 11, "a", 2, d23);
        w_value_info(&g3, 11, "b", 2, d23); /* inner dims 3 and 2 */
        w_value_info(&g3, 12, "c", -1, NULL);
        w_model(&m3, &g3, 13);
        T_EQ_INT(inf_onnx_load_memory(m3.b, m3.n, NULL, NULL, &model, &err), INF_EINVAL);
        T_OK(strstr(err.msg, "'mm0'") && strstr(err.msg, "inner dims"));
    }
    /* shapes that only meet at run time (inputs declared without shapes): the run names the
       node */
    {
        struct w g = {0}, m = {0};
        int64_t d23[] = {2, 3};
        const char *i1[] = {"a", "b"}, *o1[] = {"c"};
        w_node(&g, "MatMul", "mm0", i1, 2, o1, 1);
        w_value_info(&g, 11, "a", -1, NULL);
        w_value_info(&g, 11, "b", -1, NULL);
        w_value_info(&g, 12, "c", -1, NULL);
        w_model(&m, &g, 13);
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_OK);
        float v[6] = {0};
        struct inf_onnx_tensor in[2] = {f32_tensor(2, d23, v), f32_tensor(2, d23, v)}, out = {0};
        T_EQ_INT(inf_onnx_run(model, NULL, in, &out, &err), INF_EINVAL);
        T_OK(strstr(err.msg, "'mm0'") != NULL);
        inf_onnx_tensor_release(&in[0]);
        inf_onnx_tensor_release(&in[1]);
        inf_onnx_free(model);
        model = NULL;
    }
    inf_onnx_free(model);
}

/* C = A B for a 7x33 by 33x21 product with 2 threads' worth of tiles, against a plain loop */
static void test_matmul_values(void)
{
    struct w g = {0}, m = {0};
    int64_t da[] = {7, 33}, db[] = {33, 21};
    const char *i1[] = {"a", "b"}, *o1[] = {"c"};
    w_node(&g, "MatMul", "mm0", i1, 2, o1, 1);
    w_value_info(&g, 11, "a", 2, da);
    w_value_info(&g, 11, "b", 2, db);
    w_value_info(&g, 12, "c", -1, NULL);
    w_model(&m, &g, 13);
    struct inf_onnx_model *model = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_OK);
    float a[7 * 33], b[33 * 21];
    for (int i = 0; i < 7 * 33; i++)
        a[i] = (float)((i * 37) % 19) / 7.f - 1.f;
    for (int i = 0; i < 33 * 21; i++)
        b[i] = (float)((i * 11) % 23) / 5.f - 2.f;
    struct inf_onnx_tensor in[2] = {f32_tensor(2, da, a), f32_tensor(2, db, b)}, out = {0};
    T_EQ_INT(inf_onnx_run(model, NULL, in, &out, &err), INF_OK);
    T_EQ_INT(out.n, 7 * 21);
    int bad = 0;
    for (int i = 0; out.data && i < 7; i++)
        for (int j = 0; j < 21; j++) {
            double s = 0;
            for (int k = 0; k < 33; k++)
                s += (double)a[i * 33 + k] * b[k * 21 + j];
            bad += fabs(((float *)out.data)[i * 21 + j] - s) > 1e-4 * (1 + fabs(s));
        }
    T_EQ_INT(bad, 0);
    inf_onnx_tensor_release(&out);
    inf_onnx_tensor_release(&in[0]);
    inf_onnx_tensor_release(&in[1]);
    inf_onnx_free(model);
}

/* ints attribute */
static void w_attr_ints(struct w *nd, const char *name, const int64_t *v, int n)
{
    struct w a = {0};
    w_str(&a, 1, name);
    for (int i = 0; i < n; i++)
        w_int(&a, 8, v[i]);
    w_int(&a, 20, 7);
    w_msg(nd, 5, &a);
}

static void w_f32_init(struct w *g, const char *name, int ndim, const int64_t *dims, const float *v,
                       int64_t n)
{
    struct w t = {0};
    for (int i = 0; i < ndim; i++)
        w_int(&t, 1, dims[i]);
    w_int(&t, 2, INF_ONNX_FLOAT);
    w_str(&t, 8, name);
    w_bytes(&t, 9, v, sizeof(float) * (size_t)n);
    w_msg(g, 5, &t);
}

/*
 * Conv (+ Relu) against the definition computed here with plain loops, over the shapes that take
 * each path of the convolution: the padded grid (stride 1, small planes), row runs (stride 2),
 * 1x1, asymmetric pads, dilations, groups.
 */
static struct inf_threadpool *conv_pool; /* test_conv_paths' 2 threads */

/* A pool of two threads (NULL, with the failure counted, if it cannot start). */
static struct inf_threadpool *two_threads(void)
{
    struct inf_threadpool_params tp;
    inf_threadpool_params_init(&tp);
    tp.n_threads = 2;
    struct inf_threadpool *pool = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_threadpool_new(&tp, &pool, &err), INF_OK);
    return pool;
}

static void conv_case(int64_t C, int64_t H, int64_t W, int64_t M, int64_t kh, int64_t kw,
                      const int64_t pads[4], int64_t s, int64_t dil, int64_t group, bool relu)
{
    static float wv[32768], bv[64], xv[16384];
    int64_t Cg = C / group, Mg = M / group;
    int64_t wd[] = {M, Cg, kh, kw}, bd[] = {M}, xd[] = {1, C, H, W};
    for (int64_t i = 0; i < M * Cg * kh * kw; i++)
        wv[i] = (float)((i * 7) % 13) / 6.f - 1.f;
    for (int64_t i = 0; i < M; i++)
        bv[i] = (float)i / 8.f - 0.5f;
    for (int64_t i = 0; i < C * H * W; i++)
        xv[i] = (float)((i * 5) % 17) / 8.f - 1.f;
    struct w g = {0}, m = {0}, nd = {0};
    w_f32_init(&g, "W", 4, wd, wv, M * Cg * kh * kw);
    w_f32_init(&g, "B", 1, bd, bv, M);
    w_str(&nd, 1, "x");
    w_str(&nd, 1, "W");
    w_str(&nd, 1, "B");
    w_str(&nd, 2, relu ? "c" : "y");
    w_str(&nd, 3, "conv0");
    w_str(&nd, 4, "Conv");
    int64_t st[] = {s, s}, dl[] = {dil, dil};
    w_attr_ints(&nd, "pads", pads, 4);
    w_attr_ints(&nd, "strides", st, 2);
    w_attr_ints(&nd, "dilations", dl, 2);
    struct w ga = {0};
    w_str(&ga, 1, "group");
    w_int(&ga, 3, group);
    w_int(&ga, 20, 2);
    w_msg(&nd, 5, &ga);
    w_msg(&g, 1, &nd);
    if (relu) {
        const char *ri[] = {"c"}, *ro[] = {"y"};
        w_node(&g, "Relu", "relu0", ri, 1, ro, 1);
    }
    w_value_info(&g, 11, "x", 4, xd);
    w_value_info(&g, 12, "y", -1, NULL);
    w_model(&m, &g, 13);
    struct inf_onnx_tensor out = {0};
    struct inf_onnx_model *model = load_run4(&m, NULL, xd, xv, &out);
    if (!model)
        return;
    int64_t OH = (H + pads[0] + pads[2] - ((kh - 1) * dil + 1)) / s + 1;
    int64_t OW = (W + pads[1] + pads[3] - ((kw - 1) * dil + 1)) / s + 1;
    T_EQ_INT(out.ndim, 4);
    T_EQ_INT(out.dims[2], OH);
    T_EQ_INT(out.dims[3], OW);
    int bad = 0;
    for (int64_t o = 0; out.data && o < M; o++)
        for (int64_t y = 0; y < OH; y++)
            for (int64_t xx = 0; xx < OW; xx++) {
                double acc = bv[o];
                int64_t gi = o / Mg;
                for (int64_t c = 0; c < Cg; c++)
                    for (int64_t i = 0; i < kh; i++)
                        for (int64_t j = 0; j < kw; j++) {
                            int64_t iy = y * s - pads[0] + i * dil, ix = xx * s - pads[1] + j * dil;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                acc += (double)wv[((o * Cg + c) * kh + i) * kw + j] *
                                       xv[((gi * Cg + c) * H + iy) * W + ix];
                        }
                if (relu && acc < 0)
                    acc = 0;
                float got = ((float *)out.data)[(o * OH + y) * OW + xx];
                bad += fabs(got - acc) > 1e-4 * (1 + fabs(acc));
            }
    T_EQ_INT(bad, 0);
    if (conv_pool) { /* the work split over two threads: the same bytes */
        struct inf_onnx_tensor in = f32_tensor(4, xd, xv), out2 = {0};
        struct inf_error err = {0};
        T_EQ_INT(inf_onnx_run(model, conv_pool, &in, &out2, &err), INF_OK);
        T_OK(out.data && out2.data && out2.n == out.n &&
             !memcmp(out.data, out2.data, sizeof(float) * (size_t)out.n));
        inf_onnx_tensor_release(&in);
        inf_onnx_tensor_release(&out2);
    }
    inf_onnx_tensor_release(&out);
    inf_onnx_free(model);
}

static void test_conv_paths(void)
{
    const int64_t p1[] = {1, 1, 1, 1}, p0[] = {0, 0, 0, 0}, p2[] = {2, 2, 2, 2},
                  pa[] = {0, 1, 2, 1}, p3[] = {3, 3, 3, 3}, pw[] = {2, 0, 1, 2};
    conv_pool = two_threads();
    /* 3x3, stride 1 (Winograd F(2x2, 3x3) where the padded grid is taken): odd output rows and
       columns (tiles cut off), pads of 0 to 2 on each side, C over one K block (260 channels,
       M = 5: a part panel of rows), tile rows narrower than a panel (tiles of one panel from
       several rows), many items over two threads */
    conv_case(260, 5, 7, 5, 3, 3, p1, 1, 1, 1, true);
    conv_case(6, 13, 15, 10, 3, 3, pw, 1, 1, 1, false);
    conv_case(5, 7, 7, 8, 3, 3, p1, 1, 1, 1, false);
    conv_case(4, 61, 37, 3, 3, 3, p1, 1, 1, 1, true);
    conv_case(3, 10, 12, 8, 3, 3, p1, 1, 1, 1, false); /* padded grid */
    conv_case(4, 14, 14, 20, 5, 5, p2, 1, 1, 1, true); /* padded grid, M not a multiple of 6 */
    conv_case(3, 9, 7, 5, 3, 3, pa, 1, 1, 1, true);    /* asymmetric pads */
    conv_case(3, 11, 13, 7, 3, 3, p1, 2, 1, 1, false); /* stride 2: phase planes */
    conv_case(3, 20, 18, 16, 7, 7, p3, 2, 1, 1, true); /* DenseNet's stem, scaled down */
    conv_case(2, 17, 16, 9, 3, 3, p1, 3, 1, 1, false); /* stride 3: phase planes */
    conv_case(2, 23, 21, 4, 2, 2, p0, 5, 1, 1, false); /* stride 5: row runs */
    conv_case(16, 6, 6, 12, 1, 1, p0, 1, 1, 1, true);  /* pointwise */
    /* pointwise over more rows than one K block, a plane of a whole panel and a narrow one */
    conv_case(160, 4, 5, 20, 1, 1, p0, 1, 1, 1, true);
    conv_case(20, 10, 12, 16, 3, 3, p1, 1, 1, 1, true); /* 3x3 over more than one K block */
    /* output rows written in place (a row's panels no wider than the padded row): two blocks
       of K, two panels a row, stride 2 */
    conv_case(32, 14, 14, 12, 3, 3, p1, 1, 1, 1, true);
    conv_case(3, 9, 32, 10, 3, 3, p1, 1, 1, 1, false);
    conv_case(3, 31, 30, 10, 7, 7, p3, 2, 1, 1, true);
    conv_case(40, 1, 1, 20, 1, 1, p0, 1, 1, 1, true);  /* a 1x1 plane: dot products */
    conv_case(36, 1, 1, 6, 1, 1, p0, 1, 1, 2, false);  /* the same in two groups */
    conv_case(4, 12, 12, 6, 3, 3, p2, 1, 2, 1, false); /* dilation 2: row runs */
    conv_case(4, 8, 8, 8, 3, 3, p1, 1, 1, 2, false);   /* two groups */
    conv_case(2, 40, 40, 3, 3, 3, p1, 1, 1, 1, false); /* a larger plane */
    inf_threadpool_free(conv_pool);
    conv_pool = NULL;
}

/* An int attribute on a node being written. */
static void w_attr_int(struct w *nd, const char *name, int64_t v)
{
    struct w a = {0};
    w_str(&a, 1, name);
    w_int(&a, 3, v);
    w_int(&a, 20, 2);
    w_msg(nd, 5, &a);
}

static void w_concat(struct w *g, const char *name, const char *a, const char *b, const char *out,
                     int64_t axis)
{
    struct w nd = {0};
    w_str(&nd, 1, a);
    w_str(&nd, 1, b);
    w_str(&nd, 2, out);
    w_str(&nd, 3, name);
    w_str(&nd, 4, "Concat");
    w_attr_int(&nd, "axis", axis);
    w_msg(g, 1, &nd);
}

/*
 * Concat whose first input no later node reads takes that input's buffer (ops_shape.c): a chain
 * of two such Concats along the channels, as in DenseNet; the same with the first input read
 * again afterwards (it must stay intact), and along an axis with something outside it (copied).
 * Checked against the values built here.
 */
static void test_concat_in_place(void)
{
    enum { C = 3, HW = 20 };
    static float xv[C * HW];
    for (int i = 0; i < C * HW; i++)
        xv[i] = (float)((i * 7) % 11) / 5.f - 1.f;
    for (int variant = 0; variant < 3; variant++) {
        int64_t axis = variant == 2 ? 2 : 1;
        int64_t xd[] = {1, C, 4, 5};
        struct w g = {0}, m = {0};
        const char *ri[] = {"x"}, *ro[] = {"r"}, *ai[] = {"r", "r"}, *ao[] = {"z"};
        w_node(&g, "Relu", "relu", ri, 1, ro, 1);
        w_concat(&g, "cat1", "r", "x", "c1", axis);
        w_concat(&g, "cat2", "c1", "x", "y", axis);
        if (variant == 1)
            w_node(&g, "Add", "add", ai, 2, ao, 1); /* r read after cat1 */
        w_value_info(&g, 11, "x", 4, xd);
        w_value_info(&g, 12, "y", -1, NULL);
        if (variant == 1)
            w_value_info(&g, 12, "z", -1, NULL);
        w_model(&m, &g, 13);
        struct inf_onnx_model *model = NULL;
        struct inf_error err = {0};
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_OK);
        if (!model)
            return;
        struct inf_onnx_tensor in = f32_tensor(4, xd, xv), out[2] = {{0}};
        for (int run = 0; run < 2; run++) { /* the second run on recycled buffers */
            T_EQ_INT(inf_onnx_run(model, NULL, &in, out, &err), INF_OK);
            T_EQ_INT(out[0].n, 3 * C * HW);
            int bad = 0;
            for (int64_t i = 0; out[0].data && i < 3 * C * HW; i++) {
                /* [1][3C][HW] along the channels; [1][C][3 * 4][5] along the rows */
                int64_t part = axis == 1 ? i / (C * HW) : (i / 5) % 12 / 4;
                int64_t src = axis == 1 ? i % (C * HW) : (i / 60) * HW + (i % 20);
                float want = part == 0 && xv[src] < 0 ? 0.f : xv[src];
                bad += ((float *)out[0].data)[i] != want;
            }
            for (int64_t i = 0; variant == 1 && out[1].data && i < C * HW; i++)
                bad += ((float *)out[1].data)[i] != 2.f * (xv[i] < 0 ? 0.f : xv[i]);
            T_EQ_INT(bad, 0);
            inf_onnx_tensor_release(&out[0]);
            inf_onnx_tensor_release(&out[1]);
        }
        inf_onnx_tensor_release(&in);
        inf_onnx_free(model);
    }
}

/* MatMul by a constant [K, N] then Add of a constant [N] (fused into one pass) and Relu,
   on a batch of rows [2, 5, K], against loops here; and the same graph unfused. */
static void test_matmul_add(void)
{
    enum { K = 37, N = 29 };
    static float wv[K * N], bv[N], xv[2 * 5 * K];
    for (int i = 0; i < K * N; i++)
        wv[i] = (float)((i * 11) % 19) / 9.f - 1.f;
    for (int i = 0; i < N; i++)
        bv[i] = (float)i / 10.f - 1.4f;
    for (int i = 0; i < 2 * 5 * K; i++)
        xv[i] = (float)((i * 3) % 23) / 11.f - 1.f;
    int64_t wd[] = {K, N}, bd[] = {N}, xd[] = {2, 5, K};
    struct w g = {0}, m = {0};
    w_f32_init(&g, "W", 2, wd, wv, K * N);
    w_f32_init(&g, "b", 1, bd, bv, N);
    const char *i1[] = {"x", "W"}, *o1[] = {"h"}, *i2[] = {"h", "b"}, *o2[] = {"s"}, *i3[] = {"s"},
               *o3[] = {"y"};
    w_node(&g, "MatMul", "mm", i1, 2, o1, 1);
    w_node(&g, "Add", "add", i2, 2, o2, 1);
    w_node(&g, "Relu", "relu", i3, 1, o3, 1);
    w_value_info(&g, 11, "x", 3, xd);
    w_value_info(&g, 12, "y", -1, NULL);
    w_model(&m, &g, 13);
    for (int fused = 0; fused < 2; fused++) {
        struct inf_onnx_params p = {.no_fuse = !fused};
        struct inf_onnx_model *model = NULL;
        struct inf_error err = {0};
        T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, &p, &model, &err), INF_OK);
        if (!model)
            return;
        struct inf_onnx_model_info mi;
        inf_onnx_get_info(model, &mi);
        T_EQ_INT(mi.n_nodes_planned, fused ? 2 : 3);
        struct inf_onnx_tensor in = f32_tensor(3, xd, xv), out = {0};
        T_EQ_INT(inf_onnx_run(model, NULL, &in, &out, &err), INF_OK);
        T_EQ_INT(out.n, 2 * 5 * N);
        int bad = 0;
        for (int r = 0; out.data && r < 10; r++)
            for (int j = 0; j < N; j++) {
                double acc = bv[j];
                for (int k = 0; k < K; k++)
                    acc += (double)xv[r * K + k] * wv[k * N + j];
                acc = acc < 0 ? 0 : acc;
                bad += fabs(((float *)out.data)[r * N + j] - acc) > 1e-4 * (1 + fabs(acc));
            }
        T_EQ_INT(bad, 0);
        inf_onnx_tensor_release(&in);
        inf_onnx_tensor_release(&out);
        inf_onnx_free(model);
    }
}

/* A BatchNormalization of C channels reading "x" into bn (its inputs, out, name and op): its
   parameters filled with a fixed pattern (sc, sh, mu, var: C each) and added to g as
   initializers "s", "t", "mu", "var". */
static void bn_node(struct w *g, struct w *bn, int64_t C, float *sc, float *sh, float *mu,
                    float *var, const char *out)
{
    for (int64_t c = 0; c < C; c++) {
        sc[c] = 0.5f + (float)(c % 5) / 4.f;
        sh[c] = (float)(c % 7) / 7.f - 0.4f;
        mu[c] = (float)(c % 3) / 3.f - 0.2f;
        var[c] = 0.3f + (float)(c % 4) / 2.f;
    }
    int64_t cd[] = {C};
    w_f32_init(g, "s", 1, cd, sc, C);
    w_f32_init(g, "t", 1, cd, sh, C);
    w_f32_init(g, "mu", 1, cd, mu, C);
    w_f32_init(g, "var", 1, cd, var, C);
    const char *bi[] = {"x", "s", "t", "mu", "var"};
    for (int i = 0; i < 5; i++)
        w_str(bn, 1, bi[i]);
    w_str(bn, 2, out);
    w_str(bn, 3, "bn");
    w_str(bn, 4, "BatchNormalization");
}

/*
 * BatchNormalization (+ Relu) then a 1x1 Conv, as in DenseNet: the Conv absorbs the
 * normalisation and applies it while packing its input (load.c, fuse_bn_conv), against loops
 * here; the same graph unfused; and shapes it must not absorb (padding, the normalised tensor
 * also a graph output), which still compute the same.
 */
static void bn_conv_case(int64_t C, int64_t H, int64_t W, int64_t M, bool relu, int variant)
{
    static float xv[300 * 195], wv[24 * 300], bv[24], sc[300], sh[300], mu[300], var[300];
    const int64_t HW = H * W, pad = variant == 1 ? 1 : 0, OH = H + 2 * pad, OW = W + 2 * pad;
    for (int64_t i = 0; i < C * HW; i++)
        xv[i] = (float)((i * 5) % 17) / 8.f - 1.f;
    for (int64_t i = 0; i < M * C; i++)
        wv[i] = (float)((i * 7) % 13) / 6.f - 1.f;
    for (int64_t i = 0; i < M; i++)
        bv[i] = (float)i / 8.f - 0.5f;
    int64_t xd[] = {1, C, H, W}, wd[] = {M, C, 1, 1}, bd[] = {M};
    struct w g = {0}, m = {0}, bn = {0}, cv = {0};
    w_f32_init(&g, "W", 4, wd, wv, M * C);
    w_f32_init(&g, "B", 1, bd, bv, M);
    bn_node(&g, &bn, C, sc, sh, mu, var, relu ? "n" : "r");
    struct w ea = {0};
    w_str(&ea, 1, "epsilon");
    float eps = 1e-3f;
    w_byte(&ea, 2 << 3 | 5); /* f: fixed32 */
    for (int i = 0; i < 4; i++)
        w_byte(&ea, ((const uint8_t *)&eps)[i]);
    w_int(&ea, 20, 1);
    w_msg(&bn, 5, &ea);
    w_msg(&g, 1, &bn);
    if (relu) {
        const char *ri[] = {"n"}, *ro[] = {"r"};
        w_node(&g, "Relu", "relu", ri, 1, ro, 1);
    }
    w_str(&cv, 1, "r");
    w_str(&cv, 1, "W");
    w_str(&cv, 1, "B");
    w_str(&cv, 2, "y");
    w_str(&cv, 3, "conv");
    w_str(&cv, 4, "Conv");
    if (pad) {
        const int64_t pads[] = {1, 1, 1, 1};
        w_attr_ints(&cv, "pads", pads, 4);
    }
    w_msg(&g, 1, &cv);
    w_value_info(&g, 11, "x", 4, xd);
    w_value_info(&g, 12, "y", -1, NULL);
    if (variant == 2)
        w_value_info(&g, 12, "r", -1, NULL);
    w_model(&m, &g, 13);
    for (int fused = 0; fused < 2; fused++) {
        struct inf_onnx_params p = {.no_fuse = !fused};
        struct inf_onnx_tensor out[2] = {{0}};
        struct inf_onnx_model *model = load_run4(&m, &p, xd, xv, out);
        if (!model)
            return;
        struct inf_onnx_model_info mi;
        inf_onnx_get_info(model, &mi);
        T_EQ_INT(mi.n_nodes_planned, !fused ? 2 + relu : variant ? 2 : 1);
        T_EQ_INT(out[0].n, M * OH * OW);
        int bad = 0;
        for (int64_t o = 0; out[0].data && o < M; o++)
            for (int64_t y = 0; y < OH; y++)
                for (int64_t xx = 0; xx < OW; xx++) {
                    double acc = bv[o];
                    int64_t iy = y - pad, ix = xx - pad;
                    for (int64_t c = 0; iy >= 0 && iy < H && ix >= 0 && ix < W && c < C; c++) {
                        double k = sc[c] / sqrt((double)var[c] + eps);
                        double v = (xv[c * HW + iy * W + ix] - mu[c]) * k + sh[c];
                        acc += (double)wv[o * C + c] * (relu && v < 0 ? 0 : v);
                    }
                    double got = ((float *)out[0].data)[(o * OH + y) * OW + xx];
                    bad += fabs(got - acc) > 1e-4 * (1 + fabs(acc));
                }
        T_EQ_INT(bad, 0);
        inf_onnx_tensor_release(&out[0]);
        inf_onnx_tensor_release(&out[1]);
        inf_onnx_free(model);
    }
}

static void test_bn_conv(void)
{
    bn_conv_case(300, 7, 7, 24, true, 0); /* three K blocks, a narrow last panel */
    bn_conv_case(5, 13, 15, 9, false, 0); /* 195 columns: two tiles, no Relu */
    bn_conv_case(16, 16, 16, 8, true, 0); /* whole panels */
    bn_conv_case(6, 5, 4, 3, true, 1);    /* padding: not absorbed */
    bn_conv_case(6, 5, 4, 3, false, 2);   /* the normalised tensor is an output: not absorbed */
}

/*
 * A 1x1 Conv then an AveragePool (DenseNet's transitions): with non-overlapping windows the
 * pool runs first (load.c, swap_conv_avgpool); checked against loops here for odd planes
 * (floor drops the last row and column), groups, and shapes that must keep their order
 * (overlapping windows, a Relu between them).
 */
static void conv_pool_case(int64_t C, int64_t H, int64_t W, int64_t M, int64_t group, int64_t k,
                           int64_t st, bool relu)
{
    static float xv[16 * 63], wv[64], bv[8];
    const int64_t HW = H * W, Cg = C / group, Mg = M / group;
    const int64_t OH = (H - k) / st + 1, OW = (W - k) / st + 1;
    for (int64_t i = 0; i < C * HW; i++)
        xv[i] = (float)((i * 5) % 17) / 8.f - 1.f;
    for (int64_t i = 0; i < M * Cg; i++)
        wv[i] = (float)((i * 7) % 13) / 6.f - 1.f;
    for (int64_t i = 0; i < M; i++)
        bv[i] = (float)i / 8.f - 0.5f;
    int64_t xd[] = {1, C, H, W}, wd[] = {M, Cg, 1, 1}, bd[] = {M};
    struct w g = {0}, m = {0}, cv = {0}, pl = {0};
    w_f32_init(&g, "W", 4, wd, wv, M * Cg);
    w_f32_init(&g, "B", 1, bd, bv, M);
    w_str(&cv, 1, "x");
    w_str(&cv, 1, "W");
    w_str(&cv, 1, "B");
    w_str(&cv, 2, relu ? "c0" : "c");
    w_str(&cv, 3, "conv");
    w_str(&cv, 4, "Conv");
    w_attr_int(&cv, "group", group);
    w_msg(&g, 1, &cv);
    if (relu) {
        const char *ri[] = {"c0"}, *ro[] = {"c"};
        w_node(&g, "Relu", "relu", ri, 1, ro, 1);
    }
    const int64_t ks[] = {k, k}, ss[] = {st, st};
    w_str(&pl, 1, "c");
    w_str(&pl, 2, "y");
    w_str(&pl, 3, "pool");
    w_str(&pl, 4, "AveragePool");
    w_attr_ints(&pl, "kernel_shape", ks, 2);
    w_attr_ints(&pl, "strides", ss, 2);
    w_msg(&g, 1, &pl);
    w_value_info(&g, 11, "x", 4, xd);
    w_value_info(&g, 12, "y", -1, NULL);
    w_model(&m, &g, 13);
    struct inf_onnx_tensor out = {0};
    struct inf_onnx_model *model = load_run4(&m, NULL, xd, xv, &out);
    if (!model)
        return;
    T_EQ_INT(out.n, M * OH * OW);
    int bad = 0;
    for (int64_t o = 0; out.data && o < M; o++)
        for (int64_t y = 0; y < OH; y++)
            for (int64_t xx = 0; xx < OW; xx++) {
                double sum = 0;
                for (int64_t i = 0; i < k; i++)
                    for (int64_t j = 0; j < k; j++) {
                        double acc = bv[o];
                        for (int64_t c = 0; c < Cg; c++)
                            acc += (double)wv[o * Cg + c] *
                                   xv[((o / Mg) * Cg + c) * HW + (y * st + i) * W + xx * st + j];
                        sum += relu && acc < 0 ? 0 : acc;
                    }
                double want = sum / (double)(k * k),
                       got = ((float *)out.data)[(o * OH + y) * OW + xx];
                bad += fabs(got - want) > 1e-4 * (1 + fabs(want));
            }
    T_EQ_INT(bad, 0);
    inf_onnx_tensor_release(&out);
    inf_onnx_free(model);
}

static void test_conv_pool(void)
{
    conv_pool_case(6, 7, 9, 4, 1, 2, 2, false);  /* swapped; odd plane */
    conv_pool_case(16, 8, 6, 8, 2, 3, 3, false); /* swapped; two groups, 3x3 windows */
    conv_pool_case(6, 7, 9, 4, 1, 3, 2, false);  /* overlapping windows: kept */
    conv_pool_case(6, 7, 9, 4, 1, 2, 2, true);   /* a Relu between: kept */
}

/*
 * The element-wise and pooling ops split over a pool's threads (BatchNormalization + Relu, then
 * MaxPool and AveragePool 3x3 / stride 2 / pads 1, then a Concat of the two), on a plane large
 * enough that each takes its threaded path: against loops here, and byte-identical without a pool.
 */
static void test_threaded_planes(void)
{
    enum { C = 64, H = 72, W = 72, O = 36 };
    static float xv[C * H * W], r[C * H * W];
    float sc[C], sh[C], mu[C], var[C];
    for (int64_t i = 0; i < C * H * W; i++)
        xv[i] = (float)((i * 7) % 23) / 11.f - 1.f;
    int64_t xd[] = {1, C, H, W};
    struct w g = {0}, m = {0}, bn = {0}, mp = {0}, ap = {0}, cc = {0};
    bn_node(&g, &bn, C, sc, sh, mu, var, "n");
    w_msg(&g, 1, &bn);
    const char *ri[] = {"n"}, *ro[] = {"r"};
    w_node(&g, "Relu", "relu", ri, 1, ro, 1);
    const int64_t ks[] = {3, 3}, ss[] = {2, 2}, pads[] = {1, 1, 1, 1};
    struct w *pools[] = {&mp, &ap};
    const char *pout[] = {"a", "b"}, *pop[] = {"MaxPool", "AveragePool"};
    for (int k = 0; k < 2; k++) {
        w_str(pools[k], 1, "r");
        w_str(pools[k], 2, pout[k]);
        w_str(pools[k], 3, pout[k]);
        w_str(pools[k], 4, pop[k]);
        w_attr_ints(pools[k], "kernel_shape", ks, 2);
        w_attr_ints(pools[k], "strides", ss, 2);
        w_attr_ints(pools[k], "pads", pads, 4);
        w_msg(&g, 1, pools[k]);
    }
    w_str(&cc, 1, "a");
    w_str(&cc, 1, "b");
    w_str(&cc, 2, "y");
    w_str(&cc, 3, "cat");
    w_str(&cc, 4, "Concat");
    w_attr_int(&cc, "axis", 1);
    w_msg(&g, 1, &cc);
    w_value_info(&g, 11, "x", 4, xd);
    w_value_info(&g, 12, "y", -1, NULL);
    w_model(&m, &g, 13);
    struct inf_onnx_model *model = NULL;
    struct inf_error err = {0};
    T_EQ_INT(inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err), INF_OK);
    struct inf_threadpool *pool = two_threads();
    if (!model || !pool) {
        inf_onnx_free(model);
        inf_threadpool_free(pool);
        return;
    }
    struct inf_onnx_tensor in = f32_tensor(4, xd, xv), out[2] = {{0}};
    T_EQ_INT(inf_onnx_run(model, pool, &in, &out[0], &err), INF_OK);
    T_EQ_INT(inf_onnx_run(model, NULL, &in, &out[1], &err), INF_OK);
    T_EQ_INT(out[0].n, 2 * C * O * O);
    T_EQ_INT(out[1].n, 2 * C * O * O);
    for (int c = 0; c < C; c++) {
        double k = sc[c] / sqrt((double)var[c] + 1e-5);
        for (int64_t i = 0; i < H * W; i++) {
            double v = (xv[c * H * W + i] - mu[c]) * k + sh[c];
            r[c * H * W + i] = v > 0 ? (float)v : 0.f;
        }
    }
    int bad = 0;
    for (int c = 0; out[0].n == 2 * C * O * O && c < C; c++)
        for (int y = 0; y < O; y++)
            for (int xx = 0; xx < O; xx++) {
                double best = -INFINITY, sum = 0;
                int cnt = 0;
                for (int i = 2 * y - 1; i <= 2 * y + 1; i++)
                    for (int j = 2 * xx - 1; j <= 2 * xx + 1; j++)
                        if (i >= 0 && i < H && j >= 0 && j < W) {
                            double v = r[(c * H + i) * W + j];
                            best = v > best ? v : best;
                            sum += v;
                            cnt++;
                        }
                const float *got = out[0].data;
                double gm = got[(c * O + y) * O + xx], ga = got[((C + c) * O + y) * O + xx];
                bad += fabs(gm - best) > 1e-5 * (1 + fabs(best));
                bad += fabs(ga - sum / cnt) > 1e-5 * (1 + fabs(sum / cnt));
            }
    T_EQ_INT(bad, 0);
    T_OK(out[0].data && out[1].data &&
         !memcmp(out[0].data, out[1].data, sizeof(float) * (size_t)out[0].n));
    inf_onnx_tensor_release(&in);
    inf_onnx_tensor_release(&out[0]);
    inf_onnx_tensor_release(&out[1]);
    inf_onnx_free(model);
    inf_threadpool_free(pool);
}

static void test_mutations(void)
{
    struct w base = {0};
    relu_model(&base, 13);
    uint64_t s = 12345;
    int loaded = 0;
    for (int it = 0; it < 3000; it++) {
        struct w m = base;
        int flips = 1 + it % 4;
        for (int f = 0; f < flips; f++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            m.b[(s >> 33) % m.n] ^= (uint8_t)(1u << ((s >> 20) & 7));
        }
        struct inf_onnx_model *model = NULL;
        struct inf_error err = {0};
        if (inf_onnx_load_memory(m.b, m.n, NULL, NULL, &model, &err) == INF_OK) {
            loaded++;
            inf_onnx_free(model);
        }
    }
    T_OK(loaded < 3000); /* most mutations are refused; none may crash (ASan build) */
}

static void test_roundtrips(void)
{
    int64_t dims[] = {2, 2};
    float v[] = {1.5f, -2.f, 0.f, 1e30f};
    struct inf_onnx_tensor t = f32_tensor(2, dims, v), back = {0};
    t.name = strdup("t0");
    uint8_t *buf = NULL;
    size_t n = 0;
    struct inf_error err = {0};
    T_EQ_INT(inf_onnx_tensor_encode(&t, &buf, &n, &err), INF_OK);
    T_EQ_INT(inf_onnx_tensor_decode(buf, n, &back, &err), INF_OK);
    char why[128];
    T_OK(inf_onnx_tensor_close(&back, &t, 0, 0, why, sizeof(why)));
    T_EQ_STR(back.name, "t0");
    inf_onnx_tensor_release(&back);
    for (size_t k = 0; k + 1 < n; k++) /* every truncation refused or shorter-shaped */
        if (inf_onnx_tensor_decode(buf, k, &back, &err) == INF_OK) {
            T_OK(back.n <= t.n);
            inf_onnx_tensor_release(&back);
        }
    free(buf);
    T_EQ_INT(inf_onnx_npy_encode(&t, &buf, &n, &err), INF_OK);
    T_EQ_INT(n % 64, 16); /* 64-byte aligned header + 16 data bytes */
    T_EQ_INT(inf_onnx_npy_decode(buf, n, &back, &err), INF_OK);
    T_OK(inf_onnx_tensor_close(&back, &t, 0, 0, why, sizeof(why)));
    inf_onnx_tensor_release(&back);
    T_OK(inf_onnx_npy_decode(buf, n - 1, &back, &err) != INF_OK);
    free(buf);
    inf_onnx_tensor_release(&t);
    /* a STRING tensor whose elements come in raw_data (never valid): refused, not read */
    {
        struct w st = {0};
        w_int(&st, 1, 2);
        w_int(&st, 2, INF_ONNX_STRING);
        w_bytes(&st, 9, "0123456789abcdef", 16);
        T_EQ_INT(inf_onnx_tensor_decode(st.b, st.n, &back, &err), INF_EFORMAT);
    }
    /* typed fields and packed/unpacked dims */
    struct w tp = {0};
    w_int(&tp, 1, 3);
    w_int(&tp, 2, INF_ONNX_INT64);
    uint8_t packed[] = {0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00};
    w_bytes(&tp, 7, packed, sizeof(packed));
    T_EQ_INT(inf_onnx_tensor_decode(tp.b, tp.n, &back, &err), INF_OK);
    T_EQ_INT(back.n, 3);
    if (back.data) {
        T_EQ_INT(((int64_t *)back.data)[0], 5);
        T_EQ_INT(((int64_t *)back.data)[1], -1);
        T_EQ_INT(((int64_t *)back.data)[2], 0);
    }
    inf_onnx_tensor_release(&back);
}

int main(void)
{
    T_RUN(test_relu_runs);
    T_RUN(test_truncated);
    T_RUN(test_bad_graphs);
    T_RUN(test_matmul_values);
    T_RUN(test_conv_paths);
    T_RUN(test_concat_in_place);
    T_RUN(test_matmul_add);
    T_RUN(test_bn_conv);
    T_RUN(test_conv_pool);
    T_RUN(test_threaded_planes);
    T_RUN(test_mutations);
    T_RUN(test_roundtrips);
    T_DONE();
}
