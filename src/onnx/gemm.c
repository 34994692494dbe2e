/*
 * gemm.c - the float32 matrix product behind MatMul, Gemm and Conv: a packed, blocked GEMM
 * with an 8x32 AVX-512 register tile, a 6x16 AVX2/FMA one, or a scalar one (chosen once from the
 * CPU's features), split over the thread pool.
 *
 * C[M][N] = A[M][K] * B[K][N]. A is packed once per product into panels of MR rows
 * (A_p[panel][k][MR], MR = the tile's rows, alpha folded in, zero padded). B is never packed
 * whole: each work item either asks a pack_b callback for a tile of NC columns and KC rows laid
 * out as 16-column panels ([panel][k][16]), so a convolution packs its im2col columns straight
 * from the input image (no K x pixels buffer) and a MatMul copies its B tile; or, where every
 * row of B is a contiguous run (1x1 convolutions, the padded-grid 3x3 ones), reads B in place
 * through a table of row offsets. Work items are (column tile, row block) pairs, split into one
 * contiguous range per thread that the others take from once their own is done (inf_ranges);
 * each keeps its B tile in its own buffer. Epilogue on the last K block: a
 * per-row bias (Conv's bias, BatchNormalization folded in), then ReLU.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "inferno/cpu.h"
#include "onnx/onnx_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MR_MAX 8  /* the most rows a tile has (AVX-512: 8; AVX2 and scalar: 6) */
#define NR     16 /* columns per B panel */
#define KC     256
#define NC     192 /* a multiple of 32: the widest tile */

/*
 * A register tile: C[mr][nr] (row stride ldc) = A panel * B rows [0, kc) (+ C when
 * accumulate), then + bias[i] and ReLU when asked. a: the A panel ([kc][MR]). Row k of B: base_k
 * = off ? b + off[k] : b + 16 k; its columns 0..15 at base_k, 16..31 at base_k + bstep. nr is at
 * most the tile's width; with off, 16.
 */
typedef void (*tile_fn)(int64_t kc, const float *a, const float *b, const int64_t *off,
                        int64_t bstep, float *c, int64_t ldc, int mr, int nr, bool accumulate,
                        const float *bias, bool relu);

static struct {
    tile_fn fn;
    int mr, nr;  /* rows of an A panel; widest tile */
    int64_t kcp; /* K rows per block with packed B */
} tiles;
static pthread_once_t tiles_once = PTHREAD_ONCE_INIT;
static void tiles_init(void);

size_t inf__sgemm_packed_a_size(int64_t M, int64_t K)
{
    pthread_once(&tiles_once, tiles_init);
    return (size_t)((M + tiles.mr - 1) / tiles.mr) * (size_t)K * (size_t)tiles.mr;
}

void inf__sgemm_pack_a(const float *A, int64_t lda, bool ta, int64_t M, int64_t K, float alpha,
                       float *dst)
{
    pthread_once(&tiles_once, tiles_init);
    const int mr = tiles.mr;
    for (int64_t p = 0; p < M; p += mr) {
        float *d = dst + (p / mr) * K * mr;
        for (int64_t k = 0; k < K; k++)
            for (int i = 0; i < mr; i++) {
                int64_t r = p + i;
                d[k * mr + i] = r < M ? alpha * (ta ? A[k * lda + r] : A[r * lda + k]) : 0.f;
            }
    }
}

/* ---- the register tiles ---- */

#define MR6 6

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

/* The scalar tile (6 x 16), the reference the SIMD ones are tested against. */
static void ukr_ref(int64_t kc, const float *a, const float *b, const int64_t *off, int64_t bstep,
                    float *c, int64_t ldc, int mr, int nr, bool accumulate, const float *bias,
                    bool relu)
{
    float acc[MR6 * NR] = {0};
    (void)bstep;
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = off ? b + off[k] : b + k * NR;
        for (int i = 0; i < MR6; i++)
            for (int j = 0; j < nr; j++)
                acc[i * NR + j] += a[k * MR6 + i] * bk[j];
    }
    tile_store(c, ldc, acc, mr, nr, accumulate, bias, relu);
}

#if defined(__x86_64__)
/* The tile's body; off == NULL: a packed panel (row k at b + 16 k), else B read in place (row k
   at b + off[k], always 16 columns). Inlined into the two entry points below. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
ukr_avx2_body(int64_t kc, const float *a, const float *b, const int64_t *off, float *c, int64_t ldc,
              int mr, int nr, bool accumulate, const float *bias, bool relu)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    if (nr <= 8) { /* a narrow last panel: half the work */
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_loadu_ps(off ? b + off[k] : b);
            c00 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), b0, c00);
            c10 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), b0, c10);
            c20 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), b0, c20);
            c30 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), b0, c30);
            c40 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), b0, c40);
            c50 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), b0, c50);
            a += MR6;
            b += off ? 0 : NR;
        }
    } else {
        for (int64_t k = 0; k < kc; k++) {
            const float *bk = off ? b + off[k] : b;
            __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8), x;
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
            a += MR6;
            b += off ? 0 : NR;
        }
    }
    if (mr == MR6 && nr == NR) {
        __m256 r[MR6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
        __m256 zero = _mm256_setzero_ps();
        for (int i = 0; i < MR6; i++) {
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
    float acc[MR6 * NR];
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

__attribute__((target("avx2,fma"))) static void
ukr_avx2(int64_t kc, const float *a, const float *b, const int64_t *off, int64_t bstep, float *c,
         int64_t ldc, int mr, int nr, bool accumulate, const float *bias, bool relu)
{
    (void)bstep;
    if (off)
        ukr_avx2_body(kc, a, b, off, c, ldc, mr, nr, accumulate, bias, relu);
    else
        ukr_avx2_body(kc, a, b, NULL, c, ldc, mr, nr, accumulate, bias, relu);
}

/*
 * The AVX-512 tile: 8 rows x 32 columns in 16 zmm accumulators (nv = 2 halves of 16; nv = 1 for
 * a 16-column tile), two B loads and eight broadcasts per k. Eight rows: the convolutions'
 * channel counts (32, 64, 128) fill whole panels, where six rows left a third of a panel empty.
 * B read in place goes 16 columns at a time: 32 unaligned columns per k touch three lines, and
 * with them super-resolution-10's 64-channel 3x3 convolution took 43.5 ms instead of 38.5 (its
 * B rows no longer stayed in L1). Partial rows and columns are stored through masks.
 */
#define MR8 8

__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
ukr_avx512_body(int64_t kc, const float *a, const float *b, const int64_t *off, int64_t bstep,
                float *c, int64_t ldc, int mr, int nr, bool accumulate, const float *bias,
                bool relu, const int nv, const int rows)
{
    __m512 acc[MR8][2];
#pragma GCC unroll 8
    for (int i = 0; i < MR8; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = off ? b + off[k] : b + k * NR;
        __m512 b0 = _mm512_loadu_ps(bk), b1 = nv > 1 ? _mm512_loadu_ps(bk + bstep) : b0;
#pragma GCC unroll 8
        for (int i = 0; i < rows; i++) {
            __m512 x = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
            if (nv > 1)
                acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
        }
        a += MR8;
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int h = 0; h < nv; h++) {
        int cols = nr - 16 * h > 16 ? 16 : nr - 16 * h;
        if (cols <= 0)
            break;
        __mmask16 mask = (__mmask16)((1u << cols) - 1u);
        for (int i = 0; i < mr; i++) {
            float *ci = c + i * ldc + 16 * h;
            __m512 v = acc[i][h];
            if (accumulate)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, ci));
            if (bias)
                v = _mm512_add_ps(v, _mm512_set1_ps(bias[i]));
            if (relu)
                v = _mm512_max_ps(v, zero);
            _mm512_mask_storeu_ps(ci, mask, v);
        }
    }
}

__attribute__((target("avx512f,avx512vl,fma"))) static void
ukr_avx512(int64_t kc, const float *a, const float *b, const int64_t *off, int64_t bstep, float *c,
           int64_t ldc, int mr, int nr, bool accumulate, const float *bias, bool relu)
{
    if (off && mr <= 2) /* the last rows of a panel (9 output channels: 8 + 1) */
        ukr_avx512_body(kc, a, b, off, 0, c, ldc, mr, nr, accumulate, bias, relu, 1, 2);
    else if (off && mr <= 4)
        ukr_avx512_body(kc, a, b, off, 0, c, ldc, mr, nr, accumulate, bias, relu, 1, 4);
    else if (off) /* in place: 16 columns */
        ukr_avx512_body(kc, a, b, off, 0, c, ldc, mr, nr, accumulate, bias, relu, 1, MR8);
    else if (nr > 16)
        ukr_avx512_body(kc, a, b, NULL, bstep, c, ldc, mr, nr, accumulate, bias, relu, 2, MR8);
    else
        ukr_avx512_body(kc, a, b, NULL, bstep, c, ldc, mr, nr, accumulate, bias, relu, 1, MR8);
}
#endif

/* The tile in use, chosen once from the CPU's features (inferno/cpu.h, as src/kernels does):
   INFERNO_ONNX_GEMM=avx2 or =ref caps it (INFERNO_ONNX_REF_GEMM=1 is =ref). */
static void tiles_init(void)
{
    tiles.fn = ukr_ref;
    tiles.mr = MR6;
    tiles.nr = NR;
    tiles.kcp = KC;
    const char *want = getenv("INFERNO_ONNX_GEMM");
    if (getenv("INFERNO_ONNX_REF_GEMM") || (want && !strcmp(want, "ref")))
        return;
#if defined(__x86_64__)
    const struct inf_cpu_features *f = inf_cpu_features();
    if (!f->avx2 || !f->fma)
        return;
    tiles.fn = ukr_avx2;
    if (!f->avx512f || !f->avx512vl || (want && !strcmp(want, "avx2")))
        return;
    tiles.fn = ukr_avx512;
    tiles.mr = MR8;
    tiles.nr = 2 * NR;
    tiles.kcp = KC / 2; /* two 16-column panels of KC / 2 rows: 16 KiB, as one of KC rows */
#endif
}

/* ---- the driver ---- */

/* Rows [k0, k0+kc) of in-place B's columns [j, j+nr) (from base) as one zero-padded 16-column
   panel. */
static void pack_b_direct(const struct inf__gemm_plan *p, const float *base, int64_t k0, int64_t kc,
                          int64_t j, int nr, float *dst)
{
    for (int64_t k = 0; k < kc; k++) {
        const float *s = base + p->b_off[k0 + k] + j;
        float *d = dst + k * NR;
        int q = 0;
        for (; q < nr; q++)
            d[q] = s[q];
        for (; q < NR; q++)
            d[q] = 0.f;
    }
}

struct gemm_task {
    const struct inf__gemm_plan *p;
    int64_t kc_max;
    struct inf_ranges next;
    int64_t n_tiles, n_mblocks, mblock;
    int64_t tiles_per_row, nc; /* column tiles of one row, and their width */
    float *bufs;               /* one B tile buffer per thread */
    size_t buf_floats;
};

static void gemm_worker(void *arg, int ith, int nth)
{
    struct gemm_task *t = arg;
    const struct inf__gemm_plan *p = t->p;
    float *bp = t->bufs + (size_t)ith * t->buf_floats;
    const bool direct = p->b_base != NULL;
    const int MR = tiles.mr;
    (void)nth;
    for (;;) {
        int64_t w = inf_ranges_next(&t->next, ith);
        if (w < 0)
            break;
        int64_t tile = w / t->n_mblocks, mb = w % t->n_mblocks;
        int64_t y = tile / t->tiles_per_row, j0 = (tile % t->tiles_per_row) * t->nc;
        int64_t nc = p->N - j0 < t->nc ? p->N - j0 : t->nc;
        int64_t m0 = mb * t->mblock, m1 = m0 + t->mblock < p->M ? m0 + t->mblock : p->M;
        const float *bb = direct ? p->b_base + y * p->b_row : NULL;
        float *C = p->C + y * p->c_row;
        for (int64_t k0 = 0; k0 < p->K; k0 += t->kc_max) {
            int64_t kc = p->K - k0 < t->kc_max ? p->K - k0 : t->kc_max;
            bool last = k0 + kc >= p->K;
            if (!direct)
                p->pack_b(p->bctx, k0, kc, j0, nc, bp);
            /* one B tile (kc x 16 or 32, in L1) against every A panel of the block */
            for (int64_t jp = 0; jp < nc;) {
                int64_t rem = nc - jp;
                int nr = rem < tiles.nr ? (int)rem : tiles.nr;
                const float *b = bp + (jp / NR) * INF__PANEL_STRIDE(kc);
                const int64_t *off = NULL;
                int64_t bstep = INF__PANEL_STRIDE(kc);
                if (direct && (nr >= NR || p->b_tail_ok)) { /* a panel in place */
                    nr = nr < NR ? nr : NR;
                    b = bb + j0 + jp;
                    off = p->b_off + k0;
                    bstep = NR;
                } else if (direct) { /* the narrow last one copied */
                    pack_b_direct(p, bb, k0, kc, j0 + jp, nr, bp);
                    b = bp;
                }
                for (int64_t m = m0; m < m1; m += MR)
                    tiles.fn(kc, p->Ap + (m / MR) * p->K * MR + k0 * MR, b, off, bstep,
                             C + m * p->ldc + j0 + jp, p->ldc, m1 - m < MR ? (int)(m1 - m) : MR, nr,
                             k0 > 0 || p->accumulate, last && p->row_bias ? p->row_bias + m : NULL,
                             last && p->relu && !p->col_bias);
                jp += nr;
            }
        }
        if (p->col_bias) /* MatMul+Add: the bias of each column, then ReLU, on the hot block */
            for (int64_t m = m0; m < m1; m++) {
                float *c = C + m * p->ldc + j0;
                const float *cb = p->col_bias + j0;
                for (int64_t j = 0; j < nc; j++) {
                    float v = c[j] + cb[j];
                    c[j] = p->relu && v < 0.f ? 0.f : v;
                }
            }
    }
}

bool inf__gemm_run(struct inf_threadpool *pool, const struct inf__gemm_plan *p)
{
    pthread_once(&tiles_once, tiles_init);
    const int64_t rows = p->rows > 1 && p->b_base ? p->rows : 1;
    if (p->M <= 0 || p->N <= 0)
        return true;
    if (p->K == 0) {
        for (int64_t y = 0; y < rows; y++)
            for (int64_t m = 0; m < p->M; m++)
                for (int64_t j = 0; j < p->N; j++) {
                    float *c = p->C + (rows > 1 ? y * p->c_row : 0) + m * p->ldc + j;
                    float v = (p->accumulate ? *c : 0.f) + (p->row_bias ? p->row_bias[m] : 0.f);
                    *c = p->relu && v < 0 ? 0 : v;
                }
        return true;
    }
    /* small products on one thread: waking the pool costs more than it saves */
    int nth = (double)p->M * (double)p->N * (double)rows * (double)p->K >= 2097152.0
                  ? inf_threadpool_n_threads(pool)
                  : 1;
    /* in-place B: KC rows per block whatever the tile (on light-densenet121 64 rows cost 4 ms
       more than 256; 192 to 1200 were within the noise of 256) */
    struct gemm_task t = {.p = p, .kc_max = p->b_base ? KC : p->kc > 0 ? p->kc : tiles.kcp};
    const int MR = tiles.mr;
    /* a row's column tiles of (nearly) equal width: 224 columns as 112 + 112, not 192 + 32 */
    t.tiles_per_row = (p->N + NC - 1) / NC;
    t.nc = ((p->N + t.tiles_per_row - 1) / t.tiles_per_row + NR - 1) / NR * NR;
    if (nth > 1 && rows == 1 && t.tiles_per_row % nth && t.tiles_per_row < 4 * nth) {
        /* a multiple of the threads where the width allows: 840 columns on 2 threads as 6
           tiles of 144, not 5 of 168 (3 against 2) */
        int64_t tp = (t.tiles_per_row + nth - 1) / nth * nth;
        int64_t nc = ((p->N + tp - 1) / tp + NR - 1) / NR * NR;
        if ((p->N + nc - 1) / nc == tp)
            t.tiles_per_row = tp, t.nc = nc;
    }
    t.n_tiles = rows * t.tiles_per_row;
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
    int64_t kc_max = p->K < t.kc_max ? p->K : t.kc_max, nc_max = p->N < t.nc ? p->N : t.nc;
    t.buf_floats = (size_t)INF__PANEL_STRIDE(kc_max) * (size_t)((nc_max + NR - 1) / NR) + 16;
    t.bufs = aligned_alloc(64, ((size_t)nth * t.buf_floats * sizeof(float) + 63) / 64 * 64);
    if (!t.bufs)
        return false;
    inf_ranges_init(&t.next, t.n_tiles * t.n_mblocks, nth);
    if (nth > 1 && t.n_tiles * t.n_mblocks > 1)
        inf_threadpool_run(pool, gemm_worker, &t);
    else
        gemm_worker(&t, 0, 1);
    free(t.bufs);
    return true;
}

/* Whether the AVX-512 tile is in use (INFERNO_ONNX_GEMM=avx2 or =ref turns it off): the
   convolutions' other AVX-512 code follows the same choice. */
bool inf__gemm_avx512(void)
{
    pthread_once(&tiles_once, tiles_init);
#if defined(__x86_64__)
    return tiles.fn == ukr_avx512;
#else
    return false;
#endif
}

/* C[M][N] (row stride ldc) = A (packed, K columns) * B given as 16-column panels of K rows each,
   bstride floats apart, on the calling thread: the Winograd convolution's small products. */
void inf__gemm_panels(int64_t M, int64_t N, int64_t K, const float *Ap, const float *Bp,
                      int64_t bstride, float *C, int64_t ldc)
{
    pthread_once(&tiles_once, tiles_init);
    const int MR = tiles.mr;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        int64_t kc = K - k0 < KC ? K - k0 : KC;
        for (int64_t jp = 0; jp < N; jp += tiles.nr) {
            int nr = N - jp < tiles.nr ? (int)(N - jp) : tiles.nr;
            const float *b = Bp + (jp / NR) * bstride + k0 * NR;
            for (int64_t m = 0; m < M; m += MR)
                tiles.fn(kc, Ap + (m / MR) * K * MR + k0 * MR, b, NULL, bstride, C + m * ldc + jp,
                         ldc, M - m < MR ? (int)(M - m) : MR, nr, k0 > 0, NULL, false);
        }
    }
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
