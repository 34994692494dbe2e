/*
 * ops_shape.c - operators that move elements without arithmetic: Reshape, Flatten, Transpose,
 * Gather, Concat, Slice, Squeeze/Unsqueeze, Expand, Split, Shape, Size, Constant,
 * ConstantOfShape, Identity, Dropout (inference).
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx_internal.h"

struct copy_task {
    char *d;
    const char *s;
    size_t bytes;
};

/* thread ith's share of a copy, in 64-byte lines */
static void copy_worker(void *arg, int ith, int nth)
{
    const struct copy_task *t = arg;
    int64_t l0, l1, lines = (int64_t)((t->bytes + 63) / 64);
    inf_split_rows(lines, ith, nth, 1, &l0, &l1);
    size_t b0 = (size_t)l0 * 64, b1 = (size_t)l1 * 64 < t->bytes ? (size_t)l1 * 64 : t->bytes;
    if (b1 > b0)
        memcpy(t->d + b0, t->s + b0, b1 - b0);
}

/* Copy count elements from src[si..] to dst[di..]; strings are duplicated. */
static inf_status copy_elems(struct inf__onnx_exec *x, struct inf_onnx_tensor *dst, int64_t di,
                             const struct inf_onnx_tensor *src, int64_t si, int64_t count)
{
    if (count <= 0)
        return INF_OK;
    if (src->dtype == INF_ONNX_STRING) {
        for (int64_t i = 0; i < count; i++) {
            char **d = &((char **)dst->data)[di + i];
            const char *sv = ((char *const *)src->data)[si + i]; /* NULL: an element not set */
            free(*d);
            if (!(*d = strdup(sv ? sv : "")))
                return inf_error_set(x->err, INF_ENOMEM, "out of memory");
        }
        return INF_OK;
    }
    size_t es = inf_onnx_dtype_size(src->dtype);
    struct copy_task t = {(char *)dst->data + (size_t)di * es,
                          (const char *)src->data + (size_t)si * es, (size_t)count * es};
    /* large copies (a DenseNet layer's new channels into its Concat) split over the pool: the
       source was written by every thread of it */
    if (x->pool && x->in_run && t.bytes >= 262144)
        inf_threadpool_run(x->pool, copy_worker, &t);
    else
        memcpy(t.d, t.s, t.bytes);
    return INF_OK;
}

static inf_status reshaped(struct inf__onnx_exec *x, const struct inf_onnx_tensor *A, int nd,
                           const int64_t *dims, struct inf_onnx_tensor *out)
{
    inf_status rc = inf__onnx_out(x, out, A->dtype, nd, dims);
    if (rc)
        return rc;
    return copy_elems(x, out, 0, A, 0, A->n);
}

static int norm_axis(int64_t axis, int ndim)
{
    if (axis < 0)
        axis += ndim;
    return axis < 0 || axis >= ndim ? -1 : (int)axis;
}

/* An int64/int32 tensor as a list of at most max values. */
static bool int_list(const struct inf_onnx_tensor *t, int64_t *v, int max, int *n)
{
    if (!t || (t->dtype != INF_ONNX_INT64 && t->dtype != INF_ONNX_INT32) || t->n > max ||
        t->ndim > 1)
        return false;
    for (int64_t i = 0; i < t->n; i++)
        v[i] = inf__onnx_get_i64(t, i);
    *n = (int)t->n;
    return true;
}

static inf_status op_reshape(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                             struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int64_t dims[INF_ONNX_MAX_DIMS];
    int nd;
    if (!int_list(in[1], dims, INF_ONNX_MAX_DIMS, &nd))
        return inf__onnx_fail(x, n, INF_EINVAL,
                              "shape must be a 1-D int64 tensor of at most %d "
                              "values",
                              INF_ONNX_MAX_DIMS);
    bool allowzero = inf__onnx_attr_i(n, "allowzero", 0) != 0;
    int neg = -1;
    int64_t known = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] == 0 && !allowzero) {
            if (i >= A->ndim)
                return inf__onnx_fail(x, n, INF_EINVAL, "0 in shape past the input's rank");
            dims[i] = A->dims[i];
        }
        if (dims[i] == -1) {
            if (neg >= 0)
                return inf__onnx_fail(x, n, INF_EINVAL, "more than one -1 in shape");
            neg = i;
            continue;
        }
        if (dims[i] < 0)
            return inf__onnx_fail(x, n, INF_EINVAL, "negative dim %" PRId64, dims[i]);
        if (dims[i] && known > (INT64_C(1) << 62) / dims[i])
            return inf__onnx_fail(x, n, INF_ELIMIT, "shape overflows");
        known *= dims[i];
    }
    if (neg >= 0) {
        if (!known || A->n % known)
            return inf__onnx_fail(x, n, INF_EINVAL, "cannot infer the -1 dim");
        dims[neg] = A->n / known;
        known *= dims[neg];
    }
    if (known != A->n)
        return inf__onnx_fail(x, n, INF_EINVAL, "cannot reshape %" PRId64 " elements into %" PRId64,
                              A->n, known);
    return reshaped(x, A, nd, dims, out);
}

static inf_status op_flatten(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                             struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int64_t axis = inf__onnx_attr_i(n, "axis", 1);
    if (axis < 0)
        axis += A->ndim;
    if (axis < 0 || axis > A->ndim)
        return inf__onnx_fail(x, n, INF_EINVAL, "axis out of range");
    int64_t d[2] = {1, 1};
    for (int i = 0; i < A->ndim; i++)
        d[i >= axis] *= A->dims[i];
    return reshaped(x, A, 2, d, out);
}

static inf_status op_identity(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                              struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    /* Dropout: inference only (training_mode, opset 12+, drops at random) */
    if (n->n_in > 2 && in[2] && in[2]->n && inf__onnx_get_i64(in[2], 0) &&
        !strcmp(n->op_type, "Dropout"))
        return inf__onnx_fail(x, n, INF_EUNSUPPORTED, "training mode is not supported");
    inf_status rc = reshaped(x, in[0], in[0]->ndim, in[0]->dims, &out[0]);
    if (!rc && n->n_out > 1 && n->out[1] >= 0) { /* Dropout's mask: all kept */
        rc = inf__onnx_out(x, &out[1], INF_ONNX_BOOL, in[0]->ndim, in[0]->dims);
        if (!rc && out[1].n)
            memset(out[1].data, 1, (size_t)out[1].n);
    }
    return rc;
}

static inf_status op_transpose(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                               struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int nd = A->ndim, perm[INF_ONNX_MAX_DIMS];
    const int64_t *p;
    int np = inf__onnx_attr_ints(n, "perm", &p);
    bool used[INF_ONNX_MAX_DIMS] = {0};
    if (np >= 0 && np != nd)
        return inf__onnx_fail(x, n, INF_EINVAL, "perm has %d entries for %d dims", np, nd);
    for (int i = 0; i < nd; i++) {
        int64_t v = np >= 0 ? p[i] : nd - 1 - i;
        if (v < 0)
            v += nd;
        if (v < 0 || v >= nd || used[v])
            return inf__onnx_fail(x, n, INF_EINVAL, "perm is not a permutation");
        used[v] = true;
        perm[i] = (int)v;
    }
    int64_t dims[INF_ONNX_MAX_DIMS], ist[INF_ONNX_MAX_DIMS], st[INF_ONNX_MAX_DIMS], s = 1;
    for (int d = nd - 1; d >= 0; d--) {
        ist[d] = s;
        s *= A->dims[d];
    }
    for (int i = 0; i < nd; i++) {
        dims[i] = A->dims[perm[i]];
        st[i] = ist[perm[i]];
    }
    inf_status rc = inf__onnx_out(x, out, A->dtype, nd, dims);
    if (rc || !out->n)
        return rc;
    size_t es = inf_onnx_dtype_size(A->dtype);
    int64_t idx[INF_ONNX_MAX_DIMS] = {0}, off = 0;
    int64_t last = nd ? dims[nd - 1] : 1, lst = nd ? st[nd - 1] : 0;
    for (int64_t o = 0; o < out->n; o += last) {
        if (A->dtype == INF_ONNX_FLOAT) {
            const float *a = (const float *)A->data + off;
            float *c = (float *)out->data + o;
            for (int64_t j = 0; j < last; j++)
                c[j] = a[j * lst];
        } else {
            for (int64_t j = 0; j < last; j++) {
                rc = copy_elems(x, out, o + j, A, off + j * lst, 1);
                if (rc)
                    return rc;
            }
        }
        for (int d = nd - 2; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < dims[d])
                break;
            off -= st[d] * dims[d];
            idx[d] = 0;
        }
    }
    (void)es;
    return INF_OK;
}

static inf_status op_gather(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                            struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0], *I = in[1];
    int axis = norm_axis(inf__onnx_attr_i(n, "axis", 0), A->ndim);
    if (axis < 0)
        return inf__onnx_fail(x, n, INF_EINVAL, "axis out of range");
    if (I->dtype != INF_ONNX_INT64 && I->dtype != INF_ONNX_INT32)
        return inf__onnx_fail(x, n, INF_ETYPE, "indices must be int32 or int64");
    if (A->ndim + I->ndim - 1 > INF_ONNX_MAX_DIMS)
        return inf__onnx_fail(x, n, INF_ELIMIT, "result has too many dims");
    int64_t dims[INF_ONNX_MAX_DIMS];
    int nd = 0;
    for (int d = 0; d < axis; d++)
        dims[nd++] = A->dims[d];
    for (int d = 0; d < I->ndim; d++)
        dims[nd++] = I->dims[d];
    for (int d = axis + 1; d < A->ndim; d++)
        dims[nd++] = A->dims[d];
    inf_status rc = inf__onnx_out(x, out, A->dtype, nd, dims);
    if (rc)
        return rc;
    int64_t outer = 1, inner = 1, len = A->dims[axis];
    for (int d = 0; d < axis; d++)
        outer *= A->dims[d];
    for (int d = axis + 1; d < A->ndim; d++)
        inner *= A->dims[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < I->n; j++) {
            int64_t k = inf__onnx_get_i64(I, j);
            if (k < 0)
                k += len;
            if (k < 0 || k >= len)
                return inf__onnx_fail(x, n, INF_ERANGE,
                                      "index %" PRId64 " out of range [0, %" PRId64 ")",
                                      inf__onnx_get_i64(I, j), len);
            rc = copy_elems(x, out, (o * I->n + j) * inner, A, (o * len + k) * inner, inner);
            if (rc)
                return rc;
        }
    return INF_OK;
}

static inf_status op_concat(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                            struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    if (!inf__onnx_attr(n, "axis"))
        return inf__onnx_fail(x, n, INF_EFORMAT, "no 'axis' attribute");
    int axis = norm_axis(inf__onnx_attr_i(n, "axis", 0), A->ndim);
    if (axis < 0)
        return inf__onnx_fail(x, n, INF_EINVAL, "axis out of range");
    int64_t dims[INF_ONNX_MAX_DIMS];
    memcpy(dims, A->dims, sizeof(dims));
    dims[axis] = 0;
    for (int k = 0; k < n->n_in; k++) {
        const struct inf_onnx_tensor *B = in[k];
        if (!B || B->ndim != A->ndim || B->dtype != A->dtype)
            return inf__onnx_fail(x, n, INF_EINVAL, "inputs differ in rank or type");
        for (int d = 0; d < A->ndim; d++)
            if (d != axis && B->dims[d] != A->dims[d])
                return inf__onnx_fail(x, n, INF_EINVAL, "inputs differ in dim %d", d);
        dims[axis] += B->dims[axis];
    }
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= A->dims[d];
    for (int d = axis + 1; d < A->ndim; d++)
        inner *= A->dims[d];
    int64_t pos = 0;
    int k0 = 0;
    /* The first input is the output's prefix (nothing outside the axis) and no later node reads
       it: its buffer, grown, becomes the output, and only the other inputs are copied. DenseNet
       concatenates its running feature map with 32 new channels in every layer; this keeps it
       from copying the whole map each time. */
    const struct inf__onnx_value *v0 = n->in[0] >= 0 ? &x->m->values[n->in[0]] : NULL;
    bool take = x->in_run && outer == 1 && v0 && !v0->is_const && v0->last_use == x->pos &&
                !A->borrowed && A->data && A->dtype != INF_ONNX_STRING;
    for (int k = 1; take && k < n->n_in; k++)
        take = n->in[k] != n->in[0];
    int64_t total = inf__onnx_numel(A->ndim, dims);
    size_t es = inf_onnx_dtype_size(A->dtype);
    /* grown with room for half as much again when it must move: the next Concat of the chain
       then finds its room (glibc's mremap would map fresh pages, a fault each, every run) */
    void *grown = NULL;
    if (take && es && (uint64_t)total <= x->max_bytes / es) {
        size_t need = (size_t)total * es;
        grown = malloc_usable_size(A->data) >= need ? A->data
                : need <= SIZE_MAX / 3              ? realloc(A->data, need / 2 * 3)
                                                    : NULL;
    }
    if (grown) {
        memset(out, 0, sizeof(*out));
        out->dtype = A->dtype;
        out->ndim = A->ndim;
        memcpy(out->dims, dims, sizeof(int64_t) * (size_t)A->ndim);
        out->n = total;
        out->data = grown;
        pos = A->n;
        in[0]->data = NULL; /* the buffer moved to out: nothing left to free or recycle */
        in[0]->n = 0;
        k0 = 1;
    } else {
        inf_status rc = inf__onnx_out(x, out, A->dtype, A->ndim, dims);
        if (rc)
            return rc;
    }
    for (int k = k0; k < n->n_in; k++) {
        int64_t blk = in[k]->dims[axis] * inner;
        for (int64_t o = 0; o < outer; o++) {
            inf_status rc = copy_elems(x, out, o * dims[axis] * inner + pos, in[k], o * blk, blk);
            if (rc)
                return rc;
        }
        pos += blk;
    }
    return INF_OK;
}

static inf_status op_slice(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                           struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int64_t starts[INF_ONNX_MAX_DIMS], ends[INF_ONNX_MAX_DIMS], axes[INF_ONNX_MAX_DIMS],
        steps[INF_ONNX_MAX_DIMS];
    int ns, ne, na = -1, nst = -1;
    if (x->opset < 10) {
        const int64_t *p;
        ns = inf__onnx_attr_ints(n, "starts", &p);
        if (ns < 0 || ns > INF_ONNX_MAX_DIMS)
            return inf__onnx_fail(x, n, INF_EINVAL, "bad 'starts'");
        memcpy(starts, p, sizeof(int64_t) * (size_t)ns);
        ne = inf__onnx_attr_ints(n, "ends", &p);
        if (ne != ns)
            return inf__onnx_fail(x, n, INF_EINVAL, "bad 'ends'");
        memcpy(ends, p, sizeof(int64_t) * (size_t)ne);
        na = inf__onnx_attr_ints(n, "axes", &p);
        if (na > INF_ONNX_MAX_DIMS)
            return inf__onnx_fail(x, n, INF_EINVAL, "bad 'axes'");
        if (na >= 0)
            memcpy(axes, p, sizeof(int64_t) * (size_t)na);
    } else {
        if (!int_list(in[1], starts, INF_ONNX_MAX_DIMS, &ns) ||
            !int_list(in[2], ends, INF_ONNX_MAX_DIMS, &ne) || ns != ne)
            return inf__onnx_fail(x, n, INF_EINVAL, "bad starts/ends");
        if (n->n_in > 3 && in[3] && !int_list(in[3], axes, INF_ONNX_MAX_DIMS, &na))
            return inf__onnx_fail(x, n, INF_EINVAL, "bad axes");
        if (n->n_in > 4 && in[4] && !int_list(in[4], steps, INF_ONNX_MAX_DIMS, &nst))
            return inf__onnx_fail(x, n, INF_EINVAL, "bad steps");
    }
    if ((na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return inf__onnx_fail(x, n, INF_EINVAL, "starts, ends, axes and steps differ in length");
    int64_t st[INF_ONNX_MAX_DIMS], step[INF_ONNX_MAX_DIMS], dims[INF_ONNX_MAX_DIMS];
    bool seen[INF_ONNX_MAX_DIMS] = {0};
    for (int d = 0; d < A->ndim; d++) {
        st[d] = 0;
        step[d] = 1;
        dims[d] = A->dims[d];
    }
    for (int i = 0; i < ns; i++) {
        int a = norm_axis(na >= 0 ? axes[i] : i, A->ndim);
        if (a < 0 || seen[a])
            return inf__onnx_fail(x, n, INF_EINVAL, "bad or repeated axis");
        seen[a] = true;
        int64_t dim = A->dims[a], s = starts[i], e = ends[i], k = nst >= 0 ? steps[i] : 1;
        if (k == 0)
            return inf__onnx_fail(x, n, INF_EINVAL, "step 0");
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        if (k > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            dims[a] = e > s ? (e - s + k - 1) / k : 0;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            dims[a] = s > e ? (s - e + (-k) - 1) / (-k) : 0;
        }
        st[a] = s;
        step[a] = k;
    }
    inf_status rc = inf__onnx_out(x, out, A->dtype, A->ndim, dims);
    if (rc || !out->n)
        return rc;
    int64_t ist[INF_ONNX_MAX_DIMS], s = 1;
    for (int d = A->ndim - 1; d >= 0; d--) {
        ist[d] = s;
        s *= A->dims[d];
    }
    int64_t idx[INF_ONNX_MAX_DIMS] = {0};
    for (int64_t o = 0; o < out->n; o++) {
        int64_t off = 0;
        for (int d = 0; d < A->ndim; d++)
            off += (st[d] + idx[d] * step[d]) * ist[d];
        rc = copy_elems(x, out, o, A, off, 1);
        if (rc)
            return rc;
        for (int d = A->ndim - 1; d >= 0; d--) {
            if (++idx[d] < dims[d])
                break;
            idx[d] = 0;
        }
    }
    return INF_OK;
}

/* axes from the attribute (opset < since) or the second input; *na = -1 when absent. */
static inf_status axes_of(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          struct inf_onnx_tensor *const *in, int since, int64_t *axes, int *na)
{
    *na = -1;
    if (x->opset < since) {
        const int64_t *p;
        int k = inf__onnx_attr_ints(n, "axes", &p);
        if (k > INF_ONNX_MAX_DIMS)
            return inf__onnx_fail(x, n, INF_EINVAL, "too many axes");
        if (k >= 0)
            memcpy(axes, p, sizeof(int64_t) * (size_t)k);
        *na = k;
    } else if (n->n_in > 1 && in[1]) {
        if (!int_list(in[1], axes, INF_ONNX_MAX_DIMS, na))
            return inf__onnx_fail(x, n, INF_EINVAL, "bad axes");
    }
    return INF_OK;
}

static inf_status op_unsqueeze(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                               struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int64_t axes[INF_ONNX_MAX_DIMS], dims[INF_ONNX_MAX_DIMS];
    int na;
    inf_status rc = axes_of(x, n, in, 13, axes, &na);
    if (rc)
        return rc;
    if (na < 0)
        return inf__onnx_fail(x, n, INF_EINVAL, "no axes");
    int nd = A->ndim + na;
    if (nd > INF_ONNX_MAX_DIMS)
        return inf__onnx_fail(x, n, INF_ELIMIT, "result has too many dims");
    bool ins[INF_ONNX_MAX_DIMS] = {0};
    for (int i = 0; i < na; i++) {
        int a = norm_axis(axes[i], nd);
        if (a < 0 || ins[a])
            return inf__onnx_fail(x, n, INF_EINVAL, "bad or repeated axis");
        ins[a] = true;
    }
    for (int d = 0, k = 0; d < nd; d++)
        dims[d] = ins[d] ? 1 : A->dims[k++];
    return reshaped(x, A, nd, dims, out);
}

static inf_status op_squeeze(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                             struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int64_t axes[INF_ONNX_MAX_DIMS], dims[INF_ONNX_MAX_DIMS];
    int na, nd = 0;
    inf_status rc = axes_of(x, n, in, 13, axes, &na);
    if (rc)
        return rc;
    bool drop[INF_ONNX_MAX_DIMS] = {0};
    if (na < 0) {
        for (int d = 0; d < A->ndim; d++)
            drop[d] = A->dims[d] == 1;
    } else {
        for (int i = 0; i < na; i++) {
            int a = norm_axis(axes[i], A->ndim);
            if (a < 0 || A->dims[a] != 1)
                return inf__onnx_fail(x, n, INF_EINVAL, "axis %" PRId64 " is not a 1", axes[i]);
            drop[a] = true;
        }
    }
    for (int d = 0; d < A->ndim; d++)
        if (!drop[d])
            dims[nd++] = A->dims[d];
    return reshaped(x, A, nd, dims, out);
}

static inf_status op_expand(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                            struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int64_t shape[INF_ONNX_MAX_DIMS], dims[INF_ONNX_MAX_DIMS];
    int ns, nd;
    if (!int_list(in[1], shape, INF_ONNX_MAX_DIMS, &ns))
        return inf__onnx_fail(x, n, INF_EINVAL, "shape must be 1-D int64 of at most %d values",
                              INF_ONNX_MAX_DIMS);
    for (int i = 0; i < ns; i++)
        if (shape[i] < 0)
            return inf__onnx_fail(x, n, INF_EINVAL, "negative dim");
    if (!inf__onnx_broadcast(A->ndim, A->dims, ns, shape, &nd, dims))
        return inf__onnx_fail(x, n, INF_EINVAL, "shape does not broadcast");
    inf_status rc = inf__onnx_out(x, out, A->dtype, nd, dims);
    if (rc || !out->n)
        return rc;
    int64_t st[INF_ONNX_MAX_DIMS], s = 1;
    for (int d = nd - 1; d >= 0; d--) {
        int ad = d - (nd - A->ndim);
        int64_t dim = ad >= 0 ? A->dims[ad] : 1;
        st[d] = dim == 1 ? 0 : s;
        s *= dim;
    }
    int64_t idx[INF_ONNX_MAX_DIMS] = {0}, off = 0;
    for (int64_t o = 0; o < out->n; o++) {
        rc = copy_elems(x, out, o, A, off, 1);
        if (rc)
            return rc;
        for (int d = nd - 1; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < dims[d])
                break;
            off -= st[d] * dims[d];
            idx[d] = 0;
        }
    }
    return INF_OK;
}

static inf_status op_split(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                           struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int axis = norm_axis(inf__onnx_attr_i(n, "axis", 0), A->ndim);
    if (axis < 0)
        return inf__onnx_fail(x, n, INF_EINVAL, "axis out of range");
    int64_t dim = A->dims[axis], sizes[16];
    int k = n->n_out;
    if (k > 16)
        return inf__onnx_fail(x, n, INF_ELIMIT, "more than 16 outputs");
    const int64_t *p;
    int np = x->opset < 13 ? inf__onnx_attr_ints(n, "split", &p) : -1;
    if (np >= 0) {
        if (np != k)
            return inf__onnx_fail(x, n, INF_EINVAL, "split has %d sizes for %d outputs", np, k);
        memcpy(sizes, p, sizeof(int64_t) * (size_t)k);
    } else if (x->opset >= 13 && n->n_in > 1 && in[1]) {
        int ns;
        if (!int_list(in[1], sizes, 16, &ns) || ns != k)
            return inf__onnx_fail(x, n, INF_EINVAL, "split does not match the outputs");
    } else {
        int64_t parts = inf__onnx_attr_i(n, "num_outputs", k);
        if (parts != k)
            return inf__onnx_fail(x, n, INF_EINVAL, "num_outputs %" PRId64 " != %d outputs", parts,
                                  k);
        int64_t each = (dim + k - 1) / k;
        if (!inf__onnx_attr(n, "num_outputs") && dim % k)
            return inf__onnx_fail(x, n, INF_EINVAL, "dim %" PRId64 " does not split into %d", dim,
                                  k);
        for (int i = 0; i < k; i++) {
            int64_t left = dim - each * i;
            sizes[i] = left < 0 ? 0 : left < each ? left : each;
        }
    }
    int64_t total = 0;
    for (int i = 0; i < k; i++) {
        if (sizes[i] < 0)
            return inf__onnx_fail(x, n, INF_EINVAL, "negative split");
        total += sizes[i];
    }
    if (total != dim)
        return inf__onnx_fail(x, n, INF_EINVAL, "splits sum to %" PRId64 ", the dim is %" PRId64,
                              total, dim);
    int64_t outer = 1, inner = 1, pos = 0;
    for (int d = 0; d < axis; d++)
        outer *= A->dims[d];
    for (int d = axis + 1; d < A->ndim; d++)
        inner *= A->dims[d];
    for (int i = 0; i < k; i++) {
        int64_t dims[INF_ONNX_MAX_DIMS];
        memcpy(dims, A->dims, sizeof(dims));
        dims[axis] = sizes[i];
        inf_status rc = inf__onnx_out(x, &out[i], A->dtype, A->ndim, dims);
        for (int64_t o = 0; !rc && o < outer; o++)
            rc = copy_elems(x, &out[i], o * sizes[i] * inner, A, (o * dim + pos) * inner,
                            sizes[i] * inner);
        if (rc)
            return rc;
        pos += sizes[i];
    }
    return INF_OK;
}

static inf_status op_shape(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                           struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    const struct inf_onnx_tensor *A = in[0];
    int64_t r = A->ndim, s = inf__onnx_attr_i(n, "start", 0), e = inf__onnx_attr_i(n, "end", r);
    if (s < 0)
        s += r;
    if (e < 0)
        e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t len = e > s ? e - s : 0;
    inf_status rc = inf__onnx_out(x, out, INF_ONNX_INT64, 1, &len);
    for (int64_t i = 0; !rc && i < len; i++)
        ((int64_t *)out->data)[i] = A->dims[s + i];
    return rc;
}

static inf_status op_size(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                          struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    (void)n;
    inf_status rc = inf__onnx_out(x, out, INF_ONNX_INT64, 0, NULL);
    if (!rc)
        *(int64_t *)out->data = in[0]->n;
    return rc;
}

static inf_status op_constant(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                              struct inf_onnx_tensor *const *in, struct inf_onnx_tensor *out)
{
    (void)in;
    const struct inf__onnx_attr *a;
    inf_status rc;
    if ((a = inf__onnx_attr(n, "value")) && a->has_t)
        return inf_onnx_tensor_copy(out, &a->t, x->err);
    if ((a = inf__onnx_attr(n, "value_float"))) {
        rc = inf__onnx_out(x, out, INF_ONNX_FLOAT, 0, NULL);
        if (!rc)
            *(float *)out->data = a->f;
        return rc;
    }
    if ((a = inf__onnx_attr(n, "value_int"))) {
        rc = inf__onnx_out(x, out, INF_ONNX_INT64, 0, NULL);
        if (!rc)
            *(int64_t *)out->data = a->i;
        return rc;
    }
    if ((a = inf__onnx_attr(n, "value_floats"))) {
        int64_t d = (int64_t)a->n;
        rc = inf__onnx_out(x, out, INF_ONNX_FLOAT, 1, &d);
        if (!rc && d)
            memcpy(out->data, a->floats, sizeof(float) * a->n);
        return rc;
    }
    if ((a = inf__onnx_attr(n, "value_ints"))) {
        int64_t d = (int64_t)a->n;
        rc = inf__onnx_out(x, out, INF_ONNX_INT64, 1, &d);
        if (!rc && d)
            memcpy(out->data, a->ints, sizeof(int64_t) * a->n);
        return rc;
    }
    if ((a = inf__onnx_attr(n, "value_string"))) {
        rc = inf__onnx_out(x, out, INF_ONNX_STRING, 0, NULL);
        if (!rc && !(((char **)out->data)[0] = strdup(a->s ? a->s : "")))
            rc = inf_error_set(x->err, INF_ENOMEM, "out of memory");
        return rc;
    }
    return inf__onnx_fail(x, n, INF_EUNSUPPORTED, "no supported value attribute");
}

static inf_status op_constant_of_shape(struct inf__onnx_exec *x, const struct inf__onnx_node *n,
                                       struct inf_onnx_tensor *const *in,
                                       struct inf_onnx_tensor *out)
{
    int64_t dims[INF_ONNX_MAX_DIMS];
    int nd;
    if (!int_list(in[0], dims, INF_ONNX_MAX_DIMS, &nd))
        return inf__onnx_fail(x, n, INF_EINVAL, "shape must be 1-D int64 of at most %d values",
                              INF_ONNX_MAX_DIMS);
    const struct inf__onnx_attr *a = inf__onnx_attr(n, "value");
    if (a && (!a->has_t || a->t.n != 1))
        return inf__onnx_fail(x, n, INF_EINVAL, "value must be a one-element tensor");
    int dtype = a ? a->t.dtype : INF_ONNX_FLOAT;
    for (int i = 0; i < nd; i++)
        if (dims[i] < 0)
            return inf__onnx_fail(x, n, INF_EINVAL, "negative dim");
    inf_status rc = inf__onnx_out(x, out, dtype, nd, dims);
    if (rc)
        return rc;
    if (!a) { /* float 0 */
        if (out->n)
            memset(out->data, 0, (size_t)out->n * sizeof(float));
        return INF_OK;
    }
    for (int64_t i = 0; i < out->n && !rc; i++)
        rc = copy_elems(x, out, i, &a->t, 0, 1);
    return rc;
}

const struct inf__onnx_op inf__onnx_ops_shape[] = {
    {"Reshape", 5, 2, 2, 1, 1, op_reshape},
    {"Flatten", 1, 1, 1, 1, 1, op_flatten},
    {"Identity", 1, 1, 1, 1, 1, op_identity},
    {"Dropout", 1, 1, 3, 1, 2, op_identity},
    {"Transpose", 1, 1, 1, 1, 1, op_transpose},
    {"Gather", 1, 2, 2, 1, 1, op_gather},
    {"Concat", 4, 1, 64, 1, 1, op_concat},
    {"Slice", 1, 1, 5, 1, 1, op_slice},
    {"Unsqueeze", 1, 1, 2, 1, 1, op_unsqueeze},
    {"Squeeze", 1, 1, 2, 1, 1, op_squeeze},
    {"Expand", 8, 2, 2, 1, 1, op_expand},
    {"Split", 2, 1, 2, 1, 16, op_split},
    {"Shape", 1, 1, 1, 1, 1, op_shape},
    {"Size", 1, 1, 1, 1, 1, op_size},
    {"Constant", 1, 0, 0, 1, 1, op_constant},
    {"ConstantOfShape", 9, 1, 1, 1, 1, op_constant_of_shape},
    {NULL, 0, 0, 0, 0, 0, NULL},
};
