/*
 * tensor.c - ONNX tensors: element types and conversions (Cast's rules, the 8/4/2-bit float
 * and integer formats), TensorProto decoding and encoding, NumPy .npy files, and the test
 * runner's comparison.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/files.h"
#include "onnx/onnx_internal.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[INF_ONNX_DTYPE_COUNT] = {
    [INF_ONNX_UNDEFINED] = {"undefined", 0},
    [INF_ONNX_FLOAT] = {"float", 4},
    [INF_ONNX_UINT8] = {"uint8", 1},
    [INF_ONNX_INT8] = {"int8", 1},
    [INF_ONNX_UINT16] = {"uint16", 2},
    [INF_ONNX_INT16] = {"int16", 2},
    [INF_ONNX_INT32] = {"int32", 4},
    [INF_ONNX_INT64] = {"int64", 8},
    [INF_ONNX_STRING] = {"string", sizeof(char *)},
    [INF_ONNX_BOOL] = {"bool", 1},
    [INF_ONNX_FLOAT16] = {"float16", 2},
    [INF_ONNX_DOUBLE] = {"double", 8},
    [INF_ONNX_UINT32] = {"uint32", 4},
    [INF_ONNX_UINT64] = {"uint64", 8},
    [INF_ONNX_COMPLEX64] = {"complex64", 0},
    [INF_ONNX_COMPLEX128] = {"complex128", 0},
    [INF_ONNX_BFLOAT16] = {"bfloat16", 2},
    [INF_ONNX_F8E4M3FN] = {"float8e4m3fn", 1},
    [INF_ONNX_F8E4M3FNUZ] = {"float8e4m3fnuz", 1},
    [INF_ONNX_F8E5M2] = {"float8e5m2", 1},
    [INF_ONNX_F8E5M2FNUZ] = {"float8e5m2fnuz", 1},
    [INF_ONNX_UINT4] = {"uint4", 1},
    [INF_ONNX_INT4] = {"int4", 1},
    [INF_ONNX_F4E2M1] = {"float4e2m1", 1},
    [INF_ONNX_F8E8M0] = {"float8e8m0", 1},
    [INF_ONNX_UINT2] = {"uint2", 1},
    [INF_ONNX_INT2] = {"int2", 1},
};

const char *inf_onnx_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < INF_ONNX_DTYPE_COUNT ? dtypes[dtype].name : "unknown";
}

size_t inf_onnx_dtype_size(int dtype)
{
    return dtype >= 0 && dtype < INF_ONNX_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

/* Bits per element in raw_data (sub-byte types pack). */
static int raw_bits(int dtype)
{
    switch (dtype) {
    case INF_ONNX_UINT4:
    case INF_ONNX_INT4:
    case INF_ONNX_F4E2M1:
        return 4;
    case INF_ONNX_UINT2:
    case INF_ONNX_INT2:
        return 2;
    default:
        return (int)inf_onnx_dtype_size(dtype) * 8;
    }
}

bool inf__onnx_is_float(int d)
{
    switch (d) {
    case INF_ONNX_FLOAT:
    case INF_ONNX_DOUBLE:
    case INF_ONNX_FLOAT16:
    case INF_ONNX_BFLOAT16:
    case INF_ONNX_F8E4M3FN:
    case INF_ONNX_F8E4M3FNUZ:
    case INF_ONNX_F8E5M2:
    case INF_ONNX_F8E5M2FNUZ:
    case INF_ONNX_F4E2M1:
    case INF_ONNX_F8E8M0:
        return true;
    default:
        return false;
    }
}

bool inf__onnx_is_integer(int d)
{
    switch (d) {
    case INF_ONNX_UINT8:
    case INF_ONNX_INT8:
    case INF_ONNX_UINT16:
    case INF_ONNX_INT16:
    case INF_ONNX_INT32:
    case INF_ONNX_INT64:
    case INF_ONNX_UINT32:
    case INF_ONNX_UINT64:
    case INF_ONNX_UINT4:
    case INF_ONNX_INT4:
    case INF_ONNX_UINT2:
    case INF_ONNX_INT2:
        return true;
    default:
        return false;
    }
}

int64_t inf__onnx_numel(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return -1;
        if (dims[i] && n > (INT64_C(1) << 62) / dims[i])
            return -1;
        n *= dims[i];
    }
    return n;
}

void inf_onnx_tensor_release(struct inf_onnx_tensor *t)
{
    if (!t)
        return;
    if (!t->borrowed) {
        if (t->dtype == INF_ONNX_STRING && t->data)
            for (int64_t i = 0; i < t->n; i++)
                free(((char **)t->data)[i]);
        free(t->data);
        free(t->name);
    }
    memset(t, 0, sizeof(*t));
}

static inf_status tensor_alloc(struct inf_onnx_tensor *t, int dtype, int ndim, const int64_t *dims,
                               size_t max_bytes, bool zero, struct inf_error *err);

inf_status inf_onnx_tensor_alloc(struct inf_onnx_tensor *t, int dtype, int ndim,
                                 const int64_t *dims, size_t max_bytes, struct inf_error *err)
{
    return tensor_alloc(t, dtype, ndim, dims, max_bytes, true, err);
}

inf_status inf__onnx_tensor_alloc_uninit(struct inf_onnx_tensor *t, int dtype, int ndim,
                                         const int64_t *dims, size_t max_bytes,
                                         struct inf_error *err)
{
    return tensor_alloc(t, dtype, ndim, dims, max_bytes, dtype == INF_ONNX_STRING, err);
}

static inf_status tensor_alloc(struct inf_onnx_tensor *t, int dtype, int ndim, const int64_t *dims,
                               size_t max_bytes, bool zero, struct inf_error *err)
{
    memset(t, 0, sizeof(*t));
    if (ndim < 0 || ndim > INF_ONNX_MAX_DIMS)
        return inf_error_set(err, INF_ELIMIT, "tensor rank %d is over %d", ndim, INF_ONNX_MAX_DIMS);
    size_t es = inf_onnx_dtype_size(dtype);
    if (!es)
        return inf_error_set(err, INF_EUNSUPPORTED, "tensor type '%s' is not supported",
                             inf_onnx_dtype_name(dtype));
    int64_t n = inf__onnx_numel(ndim, dims);
    if (!max_bytes)
        max_bytes = INF__ONNX_DEFAULT_MAX_BYTES;
    if (n < 0 || (uint64_t)n > max_bytes / es)
        return inf_error_set(err, INF_ELIMIT, "tensor of shape with %d dims is too large", ndim);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    t->n = n;
    if (n) {
        t->data = zero ? calloc((size_t)n, es) : malloc((size_t)n * es);
        if (!t->data)
            return inf_error_set(err, INF_ENOMEM,
                                 "out of memory for a tensor of %" PRId64 " elements", n);
    }
    return INF_OK;
}

inf_status inf_onnx_tensor_copy(struct inf_onnx_tensor *dst, const struct inf_onnx_tensor *src,
                                struct inf_error *err)
{
    inf_status rc = inf_onnx_tensor_alloc(dst, src->dtype, src->ndim, src->dims, 0, err);
    if (rc)
        return rc;
    if (src->dtype == INF_ONNX_STRING) {
        for (int64_t i = 0; i < src->n; i++) {
            const char *s = ((char **)src->data)[i];
            if (!(((char **)dst->data)[i] = strdup(s ? s : ""))) {
                inf_onnx_tensor_release(dst);
                return inf_error_set(err, INF_ENOMEM, "out of memory");
            }
        }
    } else if (src->n) {
        memcpy(dst->data, src->data, (size_t)src->n * inf_onnx_dtype_size(src->dtype));
    }
    if (src->name && !(dst->name = strdup(src->name))) {
        inf_onnx_tensor_release(dst);
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    }
    return INF_OK;
}

/* ---- small floats ---------------------------------------------------------------------------- */

float inf__onnx_h2f(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0x1f)
        u = s | 0x7f800000u | (m << 13);
    else if (e)
        u = s | ((e + 112) << 23) | (m << 13);
    else if (!m)
        u = s;
    else {
        float f = (float)m * 0x1p-24f;
        return s ? -f : f;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t inf__onnx_f2h(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t s = (u >> 16) & 0x8000, e = (u >> 23) & 0xff, m = u & 0x7fffff;
    if (e == 0xff)
        return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
    int32_t ne = (int32_t)e - 127 + 15;
    if (ne >= 0x1f)
        return (uint16_t)(s | 0x7c00);
    if (ne <= 0) {
        if (ne < -10)
            return (uint16_t)s;
        m |= 0x800000;
        int shift = 14 - ne;
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(s | r);
    }
    uint32_t r = ((uint32_t)ne << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++; /* may carry into the exponent, and into infinity: both right */
    return (uint16_t)(s | r);
}

static float bf2f(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t f2bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* The 8- and 4-bit float formats: exponent and mantissa bits, bias, and how NaN/Inf look. */
struct minifloat {
    int ebits, mbits, bias;
    bool fnuz; /* no negative zero: 0x80 is NaN */
    bool ieee; /* all-ones exponent is Inf/NaN (E5M2) */
    bool fn;   /* all ones (S.1111.111) is NaN, no Inf (E4M3FN) */
};

static const struct minifloat *minifloat_of(int dtype)
{
    static const struct minifloat e4m3fn = {4, 3, 7, false, false, true},
                                  e4m3fnuz = {4, 3, 8, true, false, false},
                                  e5m2 = {5, 2, 15, false, true, false},
                                  e5m2fnuz = {5, 2, 16, true, false, false},
                                  e2m1 = {2, 1, 1, false, false, false};
    switch (dtype) {
    case INF_ONNX_F8E4M3FN:
        return &e4m3fn;
    case INF_ONNX_F8E4M3FNUZ:
        return &e4m3fnuz;
    case INF_ONNX_F8E5M2:
        return &e5m2;
    case INF_ONNX_F8E5M2FNUZ:
        return &e5m2fnuz;
    case INF_ONNX_F4E2M1:
        return &e2m1;
    default:
        return NULL;
    }
}

static double mini_decode(const struct minifloat *f, unsigned code)
{
    int nbits = 1 + f->ebits + f->mbits;
    unsigned sign = (code >> (nbits - 1)) & 1, mag = code & ((1u << (nbits - 1)) - 1);
    unsigned e = mag >> f->mbits, m = mag & ((1u << f->mbits) - 1);
    if (f->fnuz && sign && !mag)
        return NAN;
    if (f->fn && mag == (1u << (nbits - 1)) - 1)
        return NAN;
    if (f->ieee && e == (1u << f->ebits) - 1)
        return m ? NAN : (sign ? -INFINITY : INFINITY);
    double v = e ? ldexp(1.0 + (double)m / (1 << f->mbits), (int)e - f->bias)
                 : ldexp((double)m / (1 << f->mbits), 1 - f->bias);
    return sign ? -v : v;
}

static unsigned mini_encode(const struct minifloat *f, double x, bool sat)
{
    int nbits = 1 + f->ebits + f->mbits;
    unsigned sbit = 1u << (nbits - 1), nan_code, max_code;
    if (f->fnuz)
        nan_code = 0x80, max_code = 0x7f;
    else if (f->ieee)
        nan_code = 0x7f, max_code = 0x7b;
    else if (f->fn)
        nan_code = 0x7f, max_code = 0x7e;
    else
        nan_code = sbit, max_code = sbit - 1; /* E2M1 has no NaN: it becomes -0 */
    if (isnan(x))
        return nan_code;
    bool neg = signbit(x);
    double a = fabs(x), maxv = mini_decode(f, max_code);
    unsigned s = neg ? sbit : 0;
    if (f->fnuz)
        s = neg ? 0x80 : 0;
    if (a > maxv) {
        if (sat || f->ebits == 2) /* E2M1 has no NaN or Inf: it always saturates */
            return s | max_code;
        if (isinf(a))
            return f->ieee ? s | 0x7c : nan_code;
        double ulp = maxv - mini_decode(f, max_code - 1);
        if (a < maxv + ulp / 2 || (a == maxv + ulp / 2 && !(max_code & 1)))
            return s | max_code;
        return f->ieee ? s | 0x7c : nan_code;
    }
    /* nearest of the codes 0..max_code (ordered by value), ties to the even code */
    unsigned lo = 0, hi = max_code;
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (mini_decode(f, mid) <= a)
            lo = mid;
        else
            hi = mid;
    }
    double vl = mini_decode(f, lo), vh = mini_decode(f, hi);
    unsigned c;
    if (a - vl < vh - a)
        c = lo;
    else if (a - vl > vh - a)
        c = hi;
    else
        c = (lo & 1) ? hi : lo;
    if (a <= vl)
        c = lo;
    if (c == 0 && f->fnuz)
        return 0;
    return s | c;
}

static double e8m0_decode(uint8_t c)
{
    return c == 0xff ? NAN : ldexp(1.0, (int)c - 127);
}

static uint8_t e8m0_encode(double x, bool sat)
{
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t e = (u >> 23) & 0xff, m = u & 0x7fffff;
    if (e == 0xff)
        return (m || !sat) ? 0xff : 0xfe;
    /* round_mode "up" (the default): any mantissa bits round the exponent up */
    if (m && (e > 0 || m > 0x400000))
        e++;
    if (e >= 0xff)
        return sat ? 0xfe : 0xff;
    return (uint8_t)e;
}

/* ---- element access -------------------------------------------------------------------------- */

double inf__onnx_get_f64(const struct inf_onnx_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case INF_ONNX_FLOAT:
        return ((const float *)d)[i];
    case INF_ONNX_DOUBLE:
        return ((const double *)d)[i];
    case INF_ONNX_FLOAT16:
        return inf__onnx_h2f(((const uint16_t *)d)[i]);
    case INF_ONNX_BFLOAT16:
        return bf2f(((const uint16_t *)d)[i]);
    case INF_ONNX_F8E4M3FN:
    case INF_ONNX_F8E4M3FNUZ:
    case INF_ONNX_F8E5M2:
    case INF_ONNX_F8E5M2FNUZ:
    case INF_ONNX_F4E2M1:
        return mini_decode(minifloat_of(t->dtype), ((const uint8_t *)d)[i]);
    case INF_ONNX_F8E8M0:
        return e8m0_decode(((const uint8_t *)d)[i]);
    case INF_ONNX_UINT64:
        return (double)((const uint64_t *)d)[i];
    case INF_ONNX_STRING:
        /* a string element not set (an op's output left empty) reads as 0 */
        return ((char *const *)d)[i] ? strtod(((char *const *)d)[i], NULL) : 0.0;
    default:
        return (double)inf__onnx_get_i64(t, i);
    }
}

int64_t inf__onnx_get_i64(const struct inf_onnx_tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case INF_ONNX_UINT8:
    case INF_ONNX_BOOL:
    case INF_ONNX_UINT4:
    case INF_ONNX_UINT2:
        return ((const uint8_t *)d)[i];
    case INF_ONNX_INT8:
    case INF_ONNX_INT4:
    case INF_ONNX_INT2:
        return ((const int8_t *)d)[i];
    case INF_ONNX_UINT16:
        return ((const uint16_t *)d)[i];
    case INF_ONNX_INT16:
        return ((const int16_t *)d)[i];
    case INF_ONNX_INT32:
        return ((const int32_t *)d)[i];
    case INF_ONNX_UINT32:
        return ((const uint32_t *)d)[i];
    case INF_ONNX_INT64:
        return ((const int64_t *)d)[i];
    case INF_ONNX_UINT64:
        return (int64_t)((const uint64_t *)d)[i];
    case INF_ONNX_STRING:
        return ((char *const *)d)[i] ? strtoll(((char *const *)d)[i], NULL, 10) : 0;
    default: {
        double v = inf__onnx_get_f64(t, i);
        if (isnan(v))
            return 0;
        if (v >= 9.2233720368547758e18)
            return INT64_MAX;
        if (v <= -9.2233720368547758e18)
            return INT64_MIN;
        return (int64_t)v;
    }
    }
}

void inf__onnx_set_i64(struct inf_onnx_tensor *t, int64_t i, int64_t v)
{
    void *d = t->data;
    switch (t->dtype) {
    case INF_ONNX_UINT8:
        ((uint8_t *)d)[i] = (uint8_t)v;
        break;
    case INF_ONNX_BOOL:
        ((uint8_t *)d)[i] = v != 0;
        break;
    case INF_ONNX_INT8:
        ((int8_t *)d)[i] = (int8_t)v;
        break;
    case INF_ONNX_UINT16:
        ((uint16_t *)d)[i] = (uint16_t)v;
        break;
    case INF_ONNX_INT16:
        ((int16_t *)d)[i] = (int16_t)v;
        break;
    case INF_ONNX_INT32:
        ((int32_t *)d)[i] = (int32_t)v;
        break;
    case INF_ONNX_UINT32:
        ((uint32_t *)d)[i] = (uint32_t)v;
        break;
    case INF_ONNX_INT64:
        ((int64_t *)d)[i] = v;
        break;
    case INF_ONNX_UINT64:
        ((uint64_t *)d)[i] = (uint64_t)v;
        break;
    case INF_ONNX_UINT4:
        ((uint8_t *)d)[i] = (uint8_t)(v & 15);
        break;
    case INF_ONNX_INT4:
        ((int8_t *)d)[i] = (int8_t)(((v & 15) ^ 8) - 8);
        break;
    case INF_ONNX_UINT2:
        ((uint8_t *)d)[i] = (uint8_t)(v & 3);
        break;
    case INF_ONNX_INT2:
        ((int8_t *)d)[i] = (int8_t)(((v & 3) ^ 2) - 2);
        break;
    default:
        inf__onnx_set_f64(t, i, (double)v, true);
    }
}

static int64_t clamp_i64(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    return v < lo ? (int64_t)lo : v > hi ? (int64_t)hi : (int64_t)v;
}

void inf__onnx_set_f64(struct inf_onnx_tensor *t, int64_t i, double v, bool sat)
{
    void *d = t->data;
    switch (t->dtype) {
    case INF_ONNX_FLOAT:
        ((float *)d)[i] = (float)v;
        return;
    case INF_ONNX_DOUBLE:
        ((double *)d)[i] = v;
        return;
    case INF_ONNX_FLOAT16:
        ((uint16_t *)d)[i] = inf__onnx_f2h((float)v);
        return;
    case INF_ONNX_BFLOAT16:
        ((uint16_t *)d)[i] = f2bf((float)v);
        return;
    case INF_ONNX_F8E4M3FN:
    case INF_ONNX_F8E4M3FNUZ:
    case INF_ONNX_F8E5M2:
    case INF_ONNX_F8E5M2FNUZ:
    case INF_ONNX_F4E2M1:
        ((uint8_t *)d)[i] = (uint8_t)mini_encode(minifloat_of(t->dtype), v, sat);
        return;
    case INF_ONNX_F8E8M0:
        ((uint8_t *)d)[i] = e8m0_encode(v, sat);
        return;
    case INF_ONNX_BOOL:
        ((uint8_t *)d)[i] = v != 0;
        return;
    case INF_ONNX_UINT64:
        ((uint64_t *)d)[i] = isnan(v) || v <= 0           ? 0
                             : v >= 1.8446744073709552e19 ? UINT64_MAX
                                                          : (uint64_t)v;
        return;
    case INF_ONNX_STRING: {
        /* the shortest text that reads back as the same value (as NumPy prints it): float
           precision when v is a float value, else double */
        char buf[64];
        bool is_f32 = (double)(float)v == v || isnan(v);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof(buf), "%.*g", prec, v);
            double back = strtod(buf, NULL);
            if (is_f32 ? (float)back == (float)v : back == v)
                break;
        }
        char **s = &((char **)d)[i];
        free(*s);
        *s = strdup(buf);
        return;
    }
    default:
        inf__onnx_set_i64(t, i, clamp_i64(v, -9.2233720368547748e18, 9.2233720368547748e18));
    }
}

/* ---- TensorProto ----------------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Unpack raw bytes of dtype into t (allocated). */
static inf_status from_raw(struct inf_onnx_tensor *t, const uint8_t *raw, size_t len,
                           struct inf_error *err)
{
    int bits = raw_bits(t->dtype);
    uint64_t need = bits >= 8 ? (uint64_t)t->n * (uint64_t)(bits / 8)
                              : ((uint64_t)t->n * (uint64_t)bits + 7) / 8;
    if (len != need)
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s': raw_data has %zu bytes, its shape needs %" PRIu64,
                             t->name ? t->name : "", len, need);
    if (bits >= 8) {
        size_t es = (size_t)bits / 8;
        if (t->n)
            memcpy(t->data, raw, (size_t)t->n * es); /* little-endian host (x86-64) */
        if (t->dtype == INF_ONNX_BOOL)
            for (int64_t i = 0; i < t->n; i++)
                ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
        return INF_OK;
    }
    for (int64_t i = 0; i < t->n; i++) {
        uint64_t bit = (uint64_t)i * (uint64_t)bits;
        unsigned v = (raw[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
        if (t->dtype == INF_ONNX_INT4 || t->dtype == INF_ONNX_INT2)
            inf__onnx_set_i64(t, i, v);
        else
            ((uint8_t *)t->data)[i] = (uint8_t)v;
    }
    return INF_OK;
}

static bool safe_location(const char *loc)
{
    if (!*loc || loc[0] == '/' || strstr(loc, "\\"))
        return false;
    for (const char *p = loc; *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if ((n == 2 && p[0] == '.' && p[1] == '.') || n == 0)
            return false;
        p += n + (q ? 1 : 0);
    }
    return true;
}

static inf_status read_external(struct inf_onnx_tensor *t, const char *dir, const char *loc,
                                int64_t offset, int64_t length, struct inf_error *err)
{
    if (!dir)
        return inf_error_set(err, INF_EUNSUPPORTED,
                             "tensor '%s': external data needs a model file's directory",
                             t->name ? t->name : "");
    if (!loc || !safe_location(loc))
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s': external data location '%s' leaves the model's "
                             "directory",
                             t->name ? t->name : "", loc ? loc : "");
    if (offset < 0)
        return inf_error_set(err, INF_EFORMAT, "tensor '%s': negative external offset",
                             t->name ? t->name : "");
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, loc) >= sizeof(path))
        return inf_error_set(err, INF_ELIMIT, "external data path too long");
    FILE *f = fopen(path, "rb");
    if (!f)
        return inf_error_set(err, INF_EIO, "cannot open external data '%s': %s", path,
                             strerror(errno));
    int bits = raw_bits(t->dtype);
    uint64_t need = bits >= 8 ? (uint64_t)t->n * (uint64_t)(bits / 8)
                              : ((uint64_t)t->n * (uint64_t)bits + 7) / 8;
    if (length >= 0 && (uint64_t)length != need) {
        fclose(f);
        return inf_error_set(err, INF_EFORMAT,
                             "tensor '%s': external length %" PRId64 " != %" PRIu64,
                             t->name ? t->name : "", length, need);
    }
    uint8_t *buf = malloc(need ? need : 1);
    inf_status rc = INF_OK;
    if (!buf)
        rc = inf_error_set(err, INF_ENOMEM, "out of memory");
    else if (fseeko(f, (off_t)offset, SEEK_SET) || fread(buf, 1, need, f) != need)
        rc = inf_error_set(err, INF_EFORMAT, "external data '%s' is shorter than tensor '%s'", loc,
                           t->name ? t->name : "");
    else
        rc = from_raw(t, buf, need, err);
    free(buf);
    fclose(f);
    return rc;
}

inf_status inf__onnx_tensor_decode_ext(const void *pbuf, size_t n, const char *external_dir,
                                       size_t max_bytes, struct inf_onnx_tensor *out,
                                       struct inf_error *err)
{
    struct inf__pb b = {pbuf, (const uint8_t *)pbuf + n};
    struct inf__pb_field f;
    bool bad;
    int64_t *dims = NULL, *i64 = NULL;
    float *f32 = NULL;
    double *f64 = NULL;
    size_t n_dims = 0, c_dims = 0, n_i64 = 0, c_i64 = 0, n_f32 = 0, c_f32 = 0, n_f64 = 0, c_f64 = 0;
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool has_raw = false, external = false;
    int64_t dtype = 0;
    char *name = NULL, *loc = NULL;
    int64_t ext_off = 0, ext_len = -1;
    const struct inf__pb_field *strs = NULL;
    struct inf__pb_field *str_list = NULL;
    size_t n_str = 0, c_str = 0;
    inf_status rc = INF_OK;
    /* a cap on repeated values: no more than the bytes could hold */
    const size_t cap = n + 1;

    memset(out, 0, sizeof(*out));
    if (!max_bytes)
        max_bytes = INF__ONNX_DEFAULT_MAX_BYTES;
    while (inf__pb_next(&b, &f, &bad)) {
        bool ok = true;
        switch (f.number) {
        case 1:
            ok = inf__pb_append_i64(&f, &dims, &n_dims, &c_dims, INF_ONNX_MAX_DIMS);
            if (!ok) {
                rc = inf_error_set(err, INF_ELIMIT, "tensor has more than %d dims or bad dims",
                                   INF_ONNX_MAX_DIMS);
                goto out;
            }
            break;
        case 2:
            ok = f.wt == INF__PB_VARINT;
            dtype = (int64_t)f.v;
            break;
        case 4:
            ok = inf__pb_append_f32(&f, &f32, &n_f32, &c_f32, cap);
            break;
        case 5:
        case 7:
        case 11:
            ok = inf__pb_append_i64(&f, &i64, &n_i64, &c_i64, cap);
            break;
        case 10:
            ok = inf__pb_append_f64(&f, &f64, &n_f64, &c_f64, cap);
            break;
        case 6:
            ok = f.wt == INF__PB_LEN;
            if (ok && n_str == c_str) {
                size_t nc = c_str ? 2 * c_str : 16;
                void *p = realloc(str_list, nc * sizeof(*str_list));
                if (!p) {
                    rc = inf_error_set(err, INF_ENOMEM, "out of memory");
                    goto out;
                }
                str_list = p;
                c_str = nc;
            }
            if (ok)
                str_list[n_str++] = f;
            break;
        case 8:
            ok = f.wt == INF__PB_LEN;
            if (ok) {
                free(name);
                if (!(name = inf__pb_strdup(&f))) {
                    rc = inf_error_set(err, INF_ENOMEM, "out of memory");
                    goto out;
                }
            }
            break;
        case 9:
            ok = f.wt == INF__PB_LEN;
            raw = f.data;
            raw_len = f.len;
            has_raw = true;
            break;
        case 13: {
            /* StringStringEntryProto {key=1, value=2} */
            ok = f.wt == INF__PB_LEN;
            if (!ok)
                break;
            struct inf__pb e = {f.data, f.data + f.len};
            struct inf__pb_field g;
            const uint8_t *k = NULL, *v = NULL;
            size_t kl = 0, vl = 0;
            while (ok && inf__pb_next(&e, &g, &bad)) {
                if (g.wt != INF__PB_LEN)
                    continue;
                if (g.number == 1)
                    k = g.data, kl = g.len;
                else if (g.number == 2)
                    v = g.data, vl = g.len;
            }
            if (bad || !k || !v)
                ok = false;
            else {
                char vbuf[4096];
                if (vl >= sizeof(vbuf)) {
                    ok = false;
                    break;
                }
                memcpy(vbuf, v, vl);
                vbuf[vl] = 0;
                if (kl == 8 && !memcmp(k, "location", 8)) {
                    free(loc);
                    loc = strdup(vbuf);
                } else if (kl == 6 && !memcmp(k, "offset", 6)) {
                    ext_off = strtoll(vbuf, NULL, 10);
                } else if (kl == 6 && !memcmp(k, "length", 6)) {
                    ext_len = strtoll(vbuf, NULL, 10);
                }
            }
            break;
        }
        case 14:
            ok = f.wt == INF__PB_VARINT;
            external = f.v == 1;
            break;
        default:
            break;
        }
        if (!ok) {
            rc = inf_error_set(err, INF_EFORMAT, "malformed TensorProto field %u", f.number);
            goto out;
        }
    }
    if (bad) {
        rc = inf_error_set(err, INF_EFORMAT, "malformed TensorProto (truncated or bad varint)");
        goto out;
    }
    if (dtype <= 0 || dtype >= INF_ONNX_DTYPE_COUNT || !inf_onnx_dtype_size((int)dtype)) {
        rc = inf_error_set(err, INF_EUNSUPPORTED,
                           "tensor '%s': data type %" PRId64 " is not supported", name ? name : "",
                           dtype);
        goto out;
    }
    for (size_t i = 0; i < n_dims; i++)
        if (dims[i] < 0) {
            rc = inf_error_set(err, INF_EFORMAT, "tensor '%s': negative dim %" PRId64,
                               name ? name : "", dims[i]);
            goto out;
        }
    int64_t numel = inf__onnx_numel((int)n_dims, dims);
    if (numel < 0) {
        rc = inf_error_set(err, INF_ELIMIT, "tensor '%s': element count overflows",
                           name ? name : "");
        goto out;
    }
    /* before allocating: the data present must cover the shape */
    uint64_t have;
    if (external)
        have = (uint64_t)numel;
    else if (dtype == INF_ONNX_STRING) /* never in raw_data */
        have = n_str;
    else if (has_raw)
        have = (uint64_t)raw_len * 8 / (uint64_t)raw_bits((int)dtype);
    else
        have = n_f32 + n_i64 + n_f64;
    if (dtype == INF_ONNX_F4E2M1 || dtype == INF_ONNX_INT4 || dtype == INF_ONNX_UINT4 ||
        dtype == INF_ONNX_INT2 || dtype == INF_ONNX_UINT2)
        if (!has_raw && !external)
            have = (n_i64) * (uint64_t)(8 / raw_bits((int)dtype));
    if (have < (uint64_t)numel) {
        rc = inf_error_set(err, INF_EFORMAT,
                           "tensor '%s': shape has %" PRId64 " elements, the data %" PRIu64,
                           name ? name : "", numel, have);
        goto out;
    }
    rc = inf_onnx_tensor_alloc(out, (int)dtype, (int)n_dims, dims, max_bytes, err);
    if (rc)
        goto out;
    out->name = name;
    name = NULL;
    if (external) {
        rc = read_external(out, external_dir, loc, ext_off, ext_len, err);
    } else if (has_raw && dtype != INF_ONNX_STRING) {
        rc = from_raw(out, raw, raw_len, err);
    } else if (dtype == INF_ONNX_STRING) {
        for (int64_t i = 0; i < numel; i++)
            if (!(((char **)out->data)[i] = inf__pb_strdup(&str_list[i]))) {
                rc = inf_error_set(err, INF_ENOMEM, "out of memory");
                break;
            }
    } else {
        int bits = raw_bits((int)dtype);
        for (int64_t i = 0; i < numel; i++) {
            switch (dtype) {
            case INF_ONNX_FLOAT:
                if ((uint64_t)i >= n_f32)
                    goto short_data;
                ((float *)out->data)[i] = f32[i];
                break;
            case INF_ONNX_DOUBLE:
                if ((uint64_t)i >= n_f64)
                    goto short_data;
                ((double *)out->data)[i] = f64[i];
                break;
            case INF_ONNX_FLOAT16:
            case INF_ONNX_BFLOAT16:
                if ((uint64_t)i >= n_i64)
                    goto short_data;
                ((uint16_t *)out->data)[i] = (uint16_t)i64[i];
                break;
            case INF_ONNX_F8E4M3FN:
            case INF_ONNX_F8E4M3FNUZ:
            case INF_ONNX_F8E5M2:
            case INF_ONNX_F8E5M2FNUZ:
            case INF_ONNX_F8E8M0:
                if ((uint64_t)i >= n_i64)
                    goto short_data;
                ((uint8_t *)out->data)[i] = (uint8_t)i64[i];
                break;
            default:
                if (bits < 8) {
                    uint64_t per = (uint64_t)(8 / bits), k = (uint64_t)i / per;
                    if (k >= n_i64)
                        goto short_data;
                    unsigned v = (unsigned)((uint64_t)i64[k] >> ((uint64_t)i % per * bits)) &
                                 ((1u << bits) - 1);
                    if (dtype == INF_ONNX_F4E2M1)
                        ((uint8_t *)out->data)[i] = (uint8_t)v;
                    else
                        inf__onnx_set_i64(out, i, v);
                } else {
                    if ((uint64_t)i >= n_i64)
                        goto short_data;
                    inf__onnx_set_i64(out, i, i64[i]);
                }
            }
        }
    }
    goto out;
short_data:
    rc = inf_error_set(err, INF_EFORMAT, "tensor '%s': typed data shorter than its shape",
                       out->name ? out->name : "");
out:
    if (rc)
        inf_onnx_tensor_release(out);
    (void)strs;
    free(dims);
    free(i64);
    free(f32);
    free(f64);
    free(name);
    free(loc);
    free(str_list);
    return rc;
}

inf_status inf_onnx_tensor_decode(const void *pb, size_t n, struct inf_onnx_tensor *out,
                                  struct inf_error *err)
{
    return inf__onnx_tensor_decode_ext(pb, n, NULL, 0, out, err);
}

/* A growing output buffer. */
struct obuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
};

static void ob_put(struct obuf *o, const void *d, size_t n)
{
    if (o->oom)
        return;
    if (o->n + n > o->cap) {
        size_t nc = o->cap ? o->cap : 256;
        while (nc < o->n + n)
            nc *= 2;
        uint8_t *p = realloc(o->p, nc);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = nc;
    }
    memcpy(o->p + o->n, d, n);
    o->n += n;
}

static void ob_varint(struct obuf *o, uint64_t v)
{
    uint8_t b[10];
    size_t k = 0;
    do {
        b[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[k] |= 0x80;
        k++;
    } while (v);
    ob_put(o, b, k);
}

inf_status inf_onnx_tensor_encode(const struct inf_onnx_tensor *t, uint8_t **out, size_t *n,
                                  struct inf_error *err)
{
    struct obuf o = {0};
    for (int i = 0; i < t->ndim; i++) {
        ob_varint(&o, 1 << 3);
        ob_varint(&o, (uint64_t)t->dims[i]);
    }
    ob_varint(&o, 2 << 3);
    ob_varint(&o, (uint64_t)t->dtype);
    if (t->name) {
        ob_varint(&o, 8 << 3 | 2);
        ob_varint(&o, strlen(t->name));
        ob_put(&o, t->name, strlen(t->name));
    }
    if (t->dtype == INF_ONNX_STRING) {
        for (int64_t i = 0; i < t->n; i++) {
            const char *s = ((char *const *)t->data)[i];
            ob_varint(&o, 6 << 3 | 2);
            ob_varint(&o, strlen(s));
            ob_put(&o, s, strlen(s));
        }
    } else {
        int bits = raw_bits(t->dtype);
        size_t bytes =
            bits >= 8 ? (size_t)t->n * (size_t)(bits / 8) : ((size_t)t->n * (size_t)bits + 7) / 8;
        ob_varint(&o, 9 << 3 | 2);
        ob_varint(&o, bytes);
        if (bits >= 8) {
            if (bytes)
                ob_put(&o, t->data, bytes);
        } else {
            uint8_t *pk = calloc(bytes ? bytes : 1, 1);
            if (!pk)
                o.oom = true;
            else {
                for (int64_t i = 0; i < t->n; i++) {
                    uint64_t bit = (uint64_t)i * (uint64_t)bits;
                    pk[bit / 8] |= (uint8_t)((((const uint8_t *)t->data)[i] & ((1u << bits) - 1))
                                             << (bit % 8));
                }
                ob_put(&o, pk, bytes);
                free(pk);
            }
        }
    }
    if (o.oom) {
        free(o.p);
        return inf_error_set(err, INF_ENOMEM, "out of memory encoding a tensor");
    }
    *out = o.p;
    *n = o.n;
    return INF_OK;
}

/* ---- .npy ------------------------------------------------------------------------------------ */

static const struct {
    const char *descr;
    int dtype;
} npy_types[] = {
    {"<f4", INF_ONNX_FLOAT},  {"<f8", INF_ONNX_DOUBLE}, {"<f2", INF_ONNX_FLOAT16},
    {"|b1", INF_ONNX_BOOL},   {"|i1", INF_ONNX_INT8},   {"|u1", INF_ONNX_UINT8},
    {"<i2", INF_ONNX_INT16},  {"<u2", INF_ONNX_UINT16}, {"<i4", INF_ONNX_INT32},
    {"<u4", INF_ONNX_UINT32}, {"<i8", INF_ONNX_INT64},  {"<u8", INF_ONNX_UINT64},
};

inf_status inf_onnx_npy_decode(const void *data, size_t n, struct inf_onnx_tensor *out,
                               struct inf_error *err)
{
    const uint8_t *p = data;
    memset(out, 0, sizeof(*out));
    if (n < 10 || memcmp(p, "\x93NUMPY", 6))
        return inf_error_set(err, INF_EFORMAT, "not a .npy file");
    size_t hl, off;
    if (p[6] == 1) {
        hl = get_le(p + 8, 2);
        off = 10;
    } else if (p[6] == 2 || p[6] == 3) {
        if (n < 12)
            return inf_error_set(err, INF_EFORMAT, "truncated .npy header");
        hl = get_le(p + 8, 4);
        off = 12;
    } else {
        return inf_error_set(err, INF_EUNSUPPORTED, ".npy version %u", p[6]);
    }
    if (hl > n - off || hl > 65536)
        return inf_error_set(err, INF_EFORMAT, "truncated .npy header");
    char hdr[65537];
    memcpy(hdr, p + off, hl);
    hdr[hl] = 0;
    const char *d = strstr(hdr, "'descr'"), *fo = strstr(hdr, "'fortran_order'"),
               *sh = strstr(hdr, "'shape'");
    if (!d || !fo || !sh)
        return inf_error_set(err, INF_EFORMAT, ".npy header lacks descr/fortran_order/shape");
    d = strchr(d + 7, '\'');
    if (!d)
        return inf_error_set(err, INF_EFORMAT, "bad .npy descr");
    int dtype = 0;
    for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); i++)
        if (!strncmp(d + 1, npy_types[i].descr, 3) && d[4] == '\'')
            dtype = npy_types[i].dtype;
    if (!dtype)
        return inf_error_set(err, INF_EUNSUPPORTED, ".npy dtype %.8s is not supported", d + 1);
    fo += 15;
    while (*fo == ' ' || *fo == ':')
        fo++;
    if (!strncmp(fo, "True", 4))
        return inf_error_set(err, INF_EUNSUPPORTED, "Fortran-order .npy is not supported");
    const char *s = strchr(sh, '(');
    if (!s)
        return inf_error_set(err, INF_EFORMAT, "bad .npy shape");
    int64_t dims[INF_ONNX_MAX_DIMS];
    int nd = 0;
    s++;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        char *e;
        errno = 0;
        long long v = strtoll(s, &e, 10);
        if (e == s || v < 0 || errno || nd == INF_ONNX_MAX_DIMS)
            return inf_error_set(err, INF_EFORMAT, "bad .npy shape");
        dims[nd++] = v;
        s = e;
    }
    inf_status rc = inf_onnx_tensor_alloc(out, dtype, nd, dims, 0, err);
    if (rc)
        return rc;
    size_t bytes = (size_t)out->n * inf_onnx_dtype_size(dtype);
    if (bytes > n - off - hl) {
        inf_onnx_tensor_release(out);
        return inf_error_set(err, INF_EFORMAT, ".npy data shorter than its shape");
    }
    if (bytes)
        memcpy(out->data, p + off + hl, bytes);
    return INF_OK;
}

inf_status inf_onnx_npy_encode(const struct inf_onnx_tensor *t, uint8_t **out, size_t *n,
                               struct inf_error *err)
{
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof(npy_types) / sizeof(npy_types[0]); i++)
        if (npy_types[i].dtype == t->dtype)
            descr = npy_types[i].descr;
    if (!descr)
        return inf_error_set(err, INF_EUNSUPPORTED, "type '%s' has no .npy form",
                             inf_onnx_dtype_name(t->dtype));
    char hdr[512];
    int k = snprintf(hdr, sizeof(hdr), "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->ndim; i++)
        k += snprintf(hdr + k, sizeof(hdr) - (size_t)k, "%" PRId64 "%s", t->dims[i],
                      t->ndim == 1 || i + 1 < t->ndim ? ", " : "");
    k += snprintf(hdr + k, sizeof(hdr) - (size_t)k, "), }");
    size_t total = 10 + (size_t)k + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hl = (size_t)k + pad + 1;
    size_t bytes = (size_t)t->n * inf_onnx_dtype_size(t->dtype);
    uint8_t *b = malloc(10 + hl + bytes);
    if (!b)
        return inf_error_set(err, INF_ENOMEM, "out of memory");
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    put_le(b + 8, hl, 2);
    memcpy(b + 10, hdr, (size_t)k);
    memset(b + 10 + k, ' ', pad);
    b[10 + hl - 1] = '\n';
    if (bytes)
        memcpy(b + 10 + hl, t->data, bytes);
    *out = b;
    *n = 10 + hl + bytes;
    return INF_OK;
}

inf_status inf_onnx_tensor_read_file(const char *path, struct inf_onnx_tensor *out,
                                     struct inf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return inf_error_set(err, INF_EIO, "cannot open '%s': %s", path, strerror(errno));
    size_t len;
    char *buf = inf__read_stream(f, (size_t)4 << 30, &len);
    fclose(f);
    if (!buf)
        return inf_error_set(err, INF_EIO, "cannot read '%s': %s", path, strerror(errno));
    inf_status rc = len >= 6 && !memcmp(buf, "\x93NUMPY", 6)
                        ? inf_onnx_npy_decode(buf, len, out, err)
                        : inf_onnx_tensor_decode(buf, len, out, err);
    free(buf);
    if (rc)
        inf_error_prefix(err, "%s", path);
    return rc;
}

/* ---- comparison ------------------------------------------------------------------------------ */

bool inf_onnx_tensor_close(const struct inf_onnx_tensor *a, const struct inf_onnx_tensor *e,
                           double rtol, double atol, char *why, size_t why_size)
{
    if (a->dtype != e->dtype) {
        snprintf(why, why_size, "type %s, expected %s", inf_onnx_dtype_name(a->dtype),
                 inf_onnx_dtype_name(e->dtype));
        return false;
    }
    bool same = a->ndim == e->ndim;
    for (int i = 0; same && i < a->ndim; i++)
        same = a->dims[i] == e->dims[i];
    if (!same) {
        char sa[128] = "", se[128] = "";
        for (int i = 0; i < a->ndim; i++)
            snprintf(sa + strlen(sa), sizeof(sa) - strlen(sa), "%s%" PRId64, i ? "," : "",
                     a->dims[i]);
        for (int i = 0; i < e->ndim; i++)
            snprintf(se + strlen(se), sizeof(se) - strlen(se), "%s%" PRId64, i ? "," : "",
                     e->dims[i]);
        snprintf(why, why_size, "shape [%s], expected [%s]", sa, se);
        return false;
    }
    for (int64_t i = 0; i < a->n; i++) {
        if (a->dtype == INF_ONNX_STRING) {
            if (strcmp(((char *const *)a->data)[i], ((char *const *)e->data)[i])) {
                snprintf(why, why_size, "element %" PRId64 " differs", i);
                return false;
            }
        } else if (inf__onnx_is_float(a->dtype)) {
            double x = inf__onnx_get_f64(a, i), y = inf__onnx_get_f64(e, i);
            if (isnan(x) && isnan(y))
                continue;
            if (isinf(y) && x == y)
                continue;
            if (!(fabs(x - y) <= atol + rtol * fabs(y))) {
                snprintf(why, why_size, "element %" PRId64 ": %.9g, expected %.9g", i, x, y);
                return false;
            }
        } else if (inf__onnx_get_i64(a, i) != inf__onnx_get_i64(e, i)) {
            snprintf(why, why_size, "element %" PRId64 ": %" PRId64 ", expected %" PRId64, i,
                     inf__onnx_get_i64(a, i), inf__onnx_get_i64(e, i));
            return false;
        }
    }
    return true;
}
