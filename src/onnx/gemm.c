/*
 * gemm.c - the float32 matrix product behind MatMul, Gemm and Conv: a packed, blocked GEMM
 * with a 6x16 AVX2/FMA register tile (scalar tile elsewhere), split over the thread pool.
 *
 * C[M][N] = A[M][K] * B[K][N]. A is packed once per product into panels of MR rows
 * (A_p[panel][k][MR], alpha folded in, zero padded). B is never packed whole: each work item
 * asks a pack_b callback for a tile of NC columns and KC rows laid out as NR-column panels
 * ([panel][k][NR]), so a convolution packs its im2col columns straight from the input image
 * (no K x pixels buffer) and a MatMul copies its B tile. Work items are (column tile, row
 * block) pairs handed out by an atomic counter; each keeps its B tile in its own buffer.
 * Epilogue on the last K block: a per-row bias (Conv's bias, BatchNormalization folded in),
 * then ReLU.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/cpu.h"
#include "onnx/onnx_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MR 6
#define NR 16
#define KC 256
#define NC 192

size_t inf__sgemm_packed_a_size(int64_t M, int64_t K)
{
    return (size_t)((M + MR - 1) / MR) * (size_t)K * MR;
}

void inf__sgemm_pack_a(const float *A, int64_t lda, bool ta, int64_t M, int64_t K, float alpha,
                       float *dst)
{
    for (int64_t p = 0; p < M; p += MR) {
        float *d = dst + (p / MR) * K * MR;
        for (int64_t k = 0; k < K; k++)
            for (int i = 0; i < MR; i++) {
                int64_t r = p + i;
                d[k * MR + i] = r < M ? alpha * (ta ? A[k * lda + r] : A[r * lda + k]) : 0.f;
            }
    }
}

/* ---- the register tile ---- */

static void tile_store(float *c, int64_t ldc, const float *acc, int mr, int nr, bool accumulate,
                       const float *bias, bool relu)
{
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float v = acc[i * NR + j];
            if (accumulate)
                v += c[i * ldc + j];
            if (bias)
                v += bias[i];
            if (relu && v < 0)
                v = 0;
            c[i * ldc + j] = v;
        }
}

static void ukr_ref(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr,
                    int nr, bool accumulate, const float *bias, bool relu)
{
    float acc[MR * NR] = {0};
    for (int64_t k = 0; k < kc; k++)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
                acc[i * NR + j] += a[k * MR + i] * b[k * NR + j];
    tile_store(c, ldc, acc, mr, nr, accumulate, bias, relu);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void ukr_avx2(int64_t kc, const float *a, const float *b,
                                                         float *c, int64_t ldc, int mr, int nr,
                                                         bool accumulate, const float *bias,
                                                         bool relu)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    if (nr <= 8) { /* a narrow last panel: half the work */
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_loadu_ps(b);
            c00 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), b0, c00);
            c10 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), b0, c10);
            c20 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), b0, c20);
            c30 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), b0, c30);
            c40 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), b0, c40);
            c50 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), b0, c50);
            a += MR;
            b += NR;
        }
    } else {
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
            x = _mm256_broadcast_ss(a + 0);
            c00 = _mm256_fmadd_ps(x, b0, c00);
            c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a + 1);
            c10 = _mm256_fmadd_ps(x, b0, c10);
            c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a + 2);
            c20 = _mm256_fmadd_ps(x, b0, c20);
            c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a + 3);
            c30 = _mm256_fmadd_ps(x, b0, c30);
            c31 = _mm256_fmadd_ps(x, b1, c31);
            x = _mm256_broadcast_ss(a + 4);
            c40 = _mm256_fmadd_ps(x, b0, c40);
            c41 = _mm256_fmadd_ps(x, b1, c41);
            x = _mm256_broadcast_ss(a + 5);
            c50 = _mm256_fmadd_ps(x, b0, c50);
            c51 = _mm256_fmadd_ps(x, b1, c51);
            a += MR;
            b += NR;
        }
    }
    if (mr == MR && nr == NR) {
        __m256 r[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
        __m256 zero = _mm256_setzero_ps();
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            __m256 v0 = r[i][0], v1 = r[i][1];
            if (accumulate) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + 8));
            }
            if (bias) {
                __m256 bb = _mm256_broadcast_ss(bias + i);
                v0 = _mm256_add_ps(v0, bb);
                v1 = _mm256_add_ps(v1, bb);
            }
            if (relu) {
                v0 = _mm256_max_ps(v0, zero);
                v1 = _mm256_max_ps(v1, zero);
            }
            _mm256_storeu_ps(ci, v0);
            _mm256_storeu_ps(ci + 8, v1);
        }
        return;
    }
    float acc[MR * NR];
    _mm256_storeu_ps(acc + 0, c00);
    _mm256_storeu_ps(acc + 8, c01);
    _mm256_storeu_ps(acc + 16, c10);
    _mm256_storeu_ps(acc + 24, c11);
    _mm256_storeu_ps(acc + 32, c20);
    _mm256_storeu_ps(acc + 40, c21);
    _mm256_storeu_ps(acc + 48, c30);
    _mm256_storeu_ps(acc + 56, c31);
    _mm256_storeu_ps(acc + 64, c40);
    _mm256_storeu_ps(acc + 72, c41);
    _mm256_storeu_ps(acc + 80, c50);
    _mm256_storeu_ps(acc + 88, c51);
    tile_store(c, ldc, acc, mr, nr, accumulate, bias, relu);
}
#endif

typedef void (*ukr_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int mr,
                       int nr, bool accumulate, const float *bias, bool relu);

static ukr_fn pick_ukr(void)
{
#if defined(__x86_64__)
    if (getenv("INFERNO_ONNX_REF_GEMM"))
        return ukr_ref;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return ukr_avx2;
#endif
    return ukr_ref;
}

/* ---- the driver ---- */

struct gemm_task {
    const struct inf__gemm_plan *p;
    ukr_fn ukr;
    struct inf_chunker next;
    int64_t n_tiles, n_mblocks, mblock;
    float *bufs; /* one B tile buffer per thread */
    size_t buf_floats;
};

static void gemm_worker(void *arg, int ith, int nth)
{
    struct gemm_task *t = arg;
    const struct inf__gemm_plan *p = t->p;
    float *bp = t->bufs + (size_t)ith * t->buf_floats;
    (void)nth;
    for (;;) {
        int64_t w = inf_chunker_next(&t->next, 1);
        if (w >= t->n_tiles * t->n_mblocks)
            break;
        int64_t tile = w / t->n_mblocks, mb = w % t->n_mblocks;
        int64_t j0 = tile * NC, nc = p->N - j0 < NC ? p->N - j0 : NC;
        int64_t m0 = mb * t->mblock, m1 = m0 + t->mblock < p->M ? m0 + t->mblock : p->M;
        for (int64_t k0 = 0; k0 < p->K; k0 += KC) {
            int64_t kc = p->K - k0 < KC ? p->K - k0 : KC;
            bool last = k0 + kc >= p->K;
            p->pack_b(p->bctx, k0, kc, j0, nc, bp);
            /* one B panel (kc x 16, in L1) against every A panel of the block */
            for (int64_t jp = 0; jp < nc; jp += NR) {
                int nr = nc - jp < NR ? (int)(nc - jp) : NR;
                for (int64_t m = m0; m < m1; m += MR) {
                    const float *ap = p->Ap + (m / MR) * p->K * MR + k0 * MR;
                    int mr = m1 - m < MR ? (int)(m1 - m) : MR;
                    t->ukr(kc, ap, bp + (jp / NR) * INF__PANEL_STRIDE(kc),
                           p->C + m * p->ldc + j0 + jp, p->ldc, mr, nr, k0 > 0 || p->accumulate,
                           last && p->row_bias ? p->row_bias + m : NULL,
                           last && p->relu && !p->col_bias);
                }
            }
        }
        if (p->col_bias) /* MatMul+Add: the bias of each column, then ReLU, on the hot block */
            for (int64_t m = m0; m < m1; m++) {
                float *c = p->C + m * p->ldc + j0;
                const float *cb = p->col_bias + j0;
                for (int64_t j = 0; j < nc; j++) {
                    float v = c[j] + cb[j];
                    c[j] = p->relu && v < 0.f ? 0.f : v;
                }
            }
    }
}

static ukr_fn ukr;
static pthread_once_t ukr_once = PTHREAD_ONCE_INIT;

static void ukr_init(void)
{
    ukr = pick_ukr();
}

bool inf__gemm_run(struct inf_threadpool *pool, const struct inf__gemm_plan *p)
{
    pthread_once(&ukr_once, ukr_init);
    if (p->M <= 0 || p->N <= 0)
        return true;
    if (p->K == 0) {
        for (int64_t m = 0; m < p->M; m++)
            for (int64_t j = 0; j < p->N; j++) {
                float v = (p->accumulate ? p->C[m * p->ldc + j] : 0.f) +
                          (p->row_bias ? p->row_bias[m] : 0.f);
                p->C[m * p->ldc + j] = p->relu && v < 0 ? 0 : v;
            }
        return true;
    }
    /* small products on one thread: waking the pool costs more than it saves */
    int nth = (double)p->M * (double)p->N * (double)p->K >= 2097152.0
                  ? inf_threadpool_n_threads(pool)
                  : 1;
    struct gemm_task t = {.p = p, .ukr = ukr};
    t.n_tiles = (p->N + NC - 1) / NC;
    int64_t m_panels = (p->M + MR - 1) / MR;
    t.n_mblocks = 1;
    if (nth > 1 && t.n_tiles < 2 * nth && m_panels > 1) {
        t.n_mblocks = (2 * nth + t.n_tiles - 1) / t.n_tiles;
        if (t.n_mblocks > m_panels)
            t.n_mblocks = m_panels;
    }
    t.mblock = ((m_panels + t.n_mblocks - 1) / t.n_mblocks) * MR;
    t.n_mblocks = (p->M + t.mblock - 1) / t.mblock;
    /* B tile buffers as large as this product needs (a small one stays off mmap) */
    int64_t kc_max = p->K < KC ? p->K : KC, nc_max = p->N < NC ? p->N : NC;
    t.buf_floats = (size_t)INF__PANEL_STRIDE(kc_max) * (size_t)((nc_max + NR - 1) / NR) + 16;
    t.bufs = aligned_alloc(64, ((size_t)nth * t.buf_floats * sizeof(float) + 63) / 64 * 64);
    if (!t.bufs)
        return false;
    inf_chunker_init(&t.next, 0);
    if (nth > 1 && t.n_tiles * t.n_mblocks > 1)
        inf_threadpool_run(pool, gemm_worker, &t);
    else
        gemm_worker(&t, 0, 1);
    free(t.bufs);
    return true;
}

/* ---- B from a strided matrix ---- */

struct mat_b {
    const float *B;
    int64_t ldb;
    bool tb;
    int64_t N;
};

static void pack_b_matrix(const void *ctx, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                          float *dst)
{
    const struct mat_b *m = ctx;
    int64_t full = nc / NR * NR;
    if (!m->tb) {
        /* k outer: each k reads one contiguous run of its row for the whole tile */
        for (int64_t k = 0; k < kc; k++) {
            const float *s = m->B + (k0 + k) * m->ldb + j0;
            float *dk = dst + k * NR;
            for (int64_t jp = 0; jp < full; jp += NR)
                memcpy(dk + (jp / NR) * INF__PANEL_STRIDE(kc), s + jp, NR * sizeof(float));
            if (full < nc) {
                float *t = dk + (full / NR) * INF__PANEL_STRIDE(kc);
                int64_t j = 0;
                for (; full + j < nc; j++)
                    t[j] = s[full + j];
                for (; j < NR; j++)
                    t[j] = 0.f;
            }
        }
        return;
    }
    /* B given as [N][K]: each column of the tile is a contiguous run of k */
    for (int64_t jp = 0; jp < nc; jp += NR) {
        float *d = dst + (jp / NR) * INF__PANEL_STRIDE(kc);
        int nr = nc - jp < NR ? (int)(nc - jp) : NR;
        for (int j = 0; j < NR; j++) {
            if (j >= nr) {
                for (int64_t k = 0; k < kc; k++)
                    d[k * NR + j] = 0.f;
                continue;
            }
            const float *s = m->B + (j0 + jp + j) * m->ldb + k0;
            for (int64_t k = 0; k < kc; k++)
                d[k * NR + j] = s[k];
        }
    }
}

bool inf__sgemm(struct inf_threadpool *pool, const struct inf__sgemm_args *a)
{
    float *ap = malloc(sizeof(float) * (inf__sgemm_packed_a_size(a->M, a->K) + 1));
    if (!ap)
        return false;
    inf__sgemm_pack_a(a->A, a->lda, a->ta, a->M, a->K, a->alpha, ap);
    struct mat_b mb = {a->B, a->ldb, a->tb, a->N};
    struct inf__gemm_plan p = {.M = a->M,
                               .N = a->N,
                               .K = a->K,
                               .Ap = ap,
                               .pack_b = pack_b_matrix,
                               .bctx = &mb,
                               .C = a->C,
                               .ldc = a->ldc,
                               .row_bias = a->row_bias,
                               .col_bias = a->col_bias,
                               .relu = a->relu,
                               .accumulate = a->accumulate};
    bool ok = inf__gemm_run(pool, &p);
    free(ap);
    return ok;
}
