/*
 * calibrate.c - choosing a SIMD level per weight type by measurement on the running CPU, and the
 * small text file that caches the choice per CPU model and build.
 *
 * The file, $XDG_CACHE_HOME/inferno/kernels-<hash of the key>.txt (~/.cache when XDG_CACHE_HOME
 * is unset), reads:
 *
 *   # inferno: matrix-vector kernels chosen by measurement (GB/s, 1 thread); delete to re-measure
 *   inferno-kernels 1
 *   key cpu=AMD EPYC (family 25 model 17 stepping 1); features=...; vnni=1; build=0.1.0 2fd330e
 *   q4_K avx2 avx2=19.90 avx512=15.20
 *   ...
 *   end
 *
 * It is outside input: read with a size cap, line by line into a bounded buffer, and accepted
 * only whole (version, exact key, one line per candidate type, "end"); anything else is ignored
 * and the choice measured and written again.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build_info.h"
#include "core/clock.h"
#include "core/files.h"
#include "inferno/cpu.h"
#include "kernels/internal.h"

#define CAL_N           4096        /* values per row: a multiple of every block size */
#define CAL_BYTES       (64u << 20) /* weights per type: twice a big L3 */
#define CAL_SLICE       (8u << 20)  /* weights per pass: each pass reads the slice after the last */
#define CAL_SAMPLE_ROWS 16          /* rows quantized for real, then repeated */
#define CAL_ROUNDS      5
#define CAL_MARGIN      0.95 /* another level wins only when its time is under 95 % of the top's */
#define MAX_FILE        16384

bool inf__kchoice_candidate(const struct inf__kern *tables, const bool *ok, enum inf_type type)
{
    const struct inf_type_traits *tr = inf_type_get(type);
    if (!tr || !tr->is_weight) /* activation formats, packed layouts */
        return false;
    inf__gemm_fn first = NULL;
    for (int l = INF_CPU_AVX2; l < INF_CPU_LEVEL_COUNT; l++) {
        if (!ok[l] || !tables[l].w[type].gemm)
            continue;
        if (!first)
            first = tables[l].w[type].gemm;
        else if (tables[l].w[type].gemm != first)
            return true;
    }
    return false;
}

void inf__kchoice_key(bool vnni, char *buf, size_t size)
{
    char feats[256];
    inf_cpu_features_string(inf_cpu_features(), feats, sizeof(feats));
    snprintf(buf, size, "cpu=%s; features=%s; vnni=%d; build=%s %s", inf_cpu_model(), feats,
             vnni ? 1 : 0, INFERNO_VERSION, INFERNO_GIT_COMMIT);
    for (char *p = buf; *p; p++) /* one line, whatever a hypervisor puts in the brand string */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* Nanoseconds of one matrix-vector pass over rows rows of w with the level's gemm. */
static uint64_t time_pass(const struct inf__wkern *wk, const char *w, size_t ldw, int64_t rows,
                          const void *act, size_t lda, float *y)
{
    const uint64_t t0 = inf__now_ns();
    for (int64_t r = 0; r < rows; r += wk->max_nr) {
        const int nr = (int)(rows - r < wk->max_nr ? rows - r : wk->max_nr);
        wk->gemm(CAL_N, w + (size_t)r * ldw, ldw, act, lda, y + r, 1, nr, 1);
    }
    return inf__now_ns() - t0;
}

static int top_level(const bool *ok)
{
    int top = INF_CPU_SCALAR;
    for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++)
        if (ok[l])
            top = l;
    return top;
}

bool inf__kchoice_measure(const struct inf__kern *tables, const bool *ok, struct inf__kchoice *c)
{
    const int top = top_level(ok);
    float *x = malloc((size_t)CAL_N * CAL_SAMPLE_ROWS * sizeof(float));
    char *w = malloc(CAL_BYTES);
    void *act = aligned_alloc(64, (size_t)CAL_N * sizeof(float) * 2);
    float *y = malloc(CAL_SLICE / 64 * sizeof(float)); /* every row is more than 64 bytes */
    bool done = false;
    if (!x || !w || !act || !y)
        goto out;
    uint32_t seed = 0x9e3779b9u;
    for (size_t i = 0; i < (size_t)CAL_N * CAL_SAMPLE_ROWS; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / (float)(1u << 23) - 1.0f;
    }
    for (int t = 0; t < INF_TYPE_COUNT; t++) {
        c->level[t] = -1;
        for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++)
            c->gbps[t][l] = 0;
    }
    for (int t = 0; t < INF_TYPE_COUNT; t++) {
        const struct inf_type_traits *tr = inf_type_get((enum inf_type)t);
        if (!tr || !tr->from_float_ref || !inf__kchoice_candidate(tables, ok, (enum inf_type)t))
            continue;
        const inf_from_float_fn q = tables[top].quantize_act[tr->vec_dot_type];
        const size_t ldw = inf_type_row_size((enum inf_type)t, CAL_N);
        if (!q || ldw < 64)
            continue;
        /* passes walk the slices in turn, so each reads weights that the others have pushed out
         * of the caches: memory is what a model's matrix-vector products stream from */
        const int64_t rows = (int64_t)(CAL_SLICE / ldw);
        const int64_t n_slices = (int64_t)(CAL_BYTES / ((size_t)rows * ldw));
        const int64_t all_rows = rows * n_slices;
        int64_t pass = 0;
        tr->from_float_ref(x, w, (int64_t)CAL_N * CAL_SAMPLE_ROWS);
        for (int64_t r = CAL_SAMPLE_ROWS; r < all_rows; r += CAL_SAMPLE_ROWS) {
            const int64_t k = all_rows - r < CAL_SAMPLE_ROWS ? all_rows - r : CAL_SAMPLE_ROWS;
            memcpy(w + (size_t)r * ldw, w, (size_t)k * ldw);
        }
        q(x, act, CAL_N);
        const size_t lda = inf_type_row_size(tr->vec_dot_type, CAL_N);
        uint64_t best[INF_CPU_LEVEL_COUNT];
        for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++)
            best[l] = UINT64_MAX;
        /* rounds alternate the levels, so a slow moment of the machine hits both */
        for (int round = 0; round < CAL_ROUNDS; round++)
            for (int l = INF_CPU_AVX2; l < INF_CPU_LEVEL_COUNT; l++) {
                if (!ok[l] || !tables[l].w[t].gemm)
                    continue;
                const char *slice = w + (size_t)(pass++ % n_slices) * (size_t)rows * ldw;
                const uint64_t ns = time_pass(&tables[l].w[t], slice, ldw, rows, act, lda, y);
                if (ns < best[l])
                    best[l] = ns ? ns : 1;
            }
        int fastest = top;
        for (int l = INF_CPU_AVX2; l < INF_CPU_LEVEL_COUNT; l++) {
            if (best[l] == UINT64_MAX)
                continue;
            c->gbps[t][l] = (float)((double)rows * (double)ldw / (double)best[l]);
            if (best[l] < best[fastest])
                fastest = l;
        }
        c->level[t] =
            (int8_t)((double)best[fastest] < CAL_MARGIN * (double)best[top] ? fastest : top);
    }
    done = true;
out:
    free(x);
    free(w);
    free(act);
    free(y);
    return done;
}

size_t inf__kchoice_format(const struct inf__kchoice *c, const struct inf__kern *tables,
                           const bool *ok, const char *key, char *buf, size_t size)
{
    size_t o = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        const int n_ = snprintf(buf + o, size - o, __VA_ARGS__);                                   \
        if (n_ < 0 || (size_t)n_ >= size - o)                                                      \
            return 0;                                                                              \
        o += (size_t)n_;                                                                           \
    } while (0)
    if (!size)
        return 0;
    PUT("# inferno: matrix-vector kernels chosen by measurement (GB/s, 1 thread); "
        "delete to re-measure\ninferno-kernels %d\nkey %s\n",
        INF__KCHOICE_VERSION, key);
    for (int t = 0; t < INF_TYPE_COUNT; t++) {
        if (!inf__kchoice_candidate(tables, ok, (enum inf_type)t))
            continue;
        const int l = c->level[t] >= 0 ? c->level[t] : top_level(ok);
        PUT("%s %s", inf_type_get((enum inf_type)t)->name,
            inf_cpu_level_name((enum inf_cpu_level)l));
        for (int m = 0; m < INF_CPU_LEVEL_COUNT; m++)
            if (c->gbps[t][m] > 0)
                PUT(" %s=%.2f", inf_cpu_level_name((enum inf_cpu_level)m), (double)c->gbps[t][m]);
        PUT("\n");
    }
    PUT("end\n");
#undef PUT
    return o;
}

static int find_level(const char *s, size_t n)
{
    for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++) {
        const char *name = inf_cpu_level_name((enum inf_cpu_level)l);
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            return l;
    }
    return -1;
}

static int find_type(const char *s, size_t n)
{
    for (int t = 0; t < INF_TYPE_COUNT; t++) {
        const struct inf_type_traits *tr = inf_type_get((enum inf_type)t);
        if (tr && tr->name && strlen(tr->name) == n && memcmp(tr->name, s, n) == 0)
            return t;
    }
    return -1;
}

/* One "<type> <level> [<level>=<GB/s>]..." line (NUL-terminated) into c; false when malformed. */
static bool parse_type_line(char *line, const struct inf__kern *tables, const bool *ok, bool *seen,
                            struct inf__kchoice *c)
{
    char *save = NULL;
    const char *tok = strtok_r(line, " ", &save);
    const int t = tok ? find_type(tok, strlen(tok)) : -1;
    if (t < 0 || seen[t] || !inf__kchoice_candidate(tables, ok, (enum inf_type)t))
        return false;
    tok = strtok_r(NULL, " ", &save);
    const int l = tok ? find_level(tok, strlen(tok)) : -1;
    if (l < INF_CPU_AVX2 || !ok[l] || !tables[l].w[t].gemm)
        return false;
    seen[t] = true;
    c->level[t] = (int8_t)l;
    while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
        const char *eq = strchr(tok, '=');
        const int m = eq ? find_level(tok, (size_t)(eq - tok)) : -1;
        if (m < 0 || !eq[1])
            return false;
        char *end = NULL;
        errno = 0;
        const double v = strtod(eq + 1, &end);
        if (errno || *end || !isfinite(v) || v < 0 || v > 1e6)
            return false;
        c->gbps[t][m] = (float)v;
    }
    return true;
}

bool inf__kchoice_parse(const char *text, size_t len, const struct inf__kern *tables,
                        const bool *ok, const char *key, struct inf__kchoice *c)
{
    bool seen[INF_TYPE_COUNT] = {false};
    char line[1024], magic[32];
    int state = 0; /* 0: before the version line, 1: before the key, 2: type lines */
    size_t i = 0;
    if (!text)
        return false;
    for (int t = 0; t < INF_TYPE_COUNT; t++) {
        c->level[t] = -1;
        for (int l = 0; l < INF_CPU_LEVEL_COUNT; l++)
            c->gbps[t][l] = 0;
    }
    snprintf(magic, sizeof(magic), "inferno-kernels %d", INF__KCHOICE_VERSION);
    while (i < len) {
        size_t n = 0;
        while (i + n < len && text[i + n] != '\n')
            n++;
        if (n >= sizeof(line) || memchr(text + i, '\0', n))
            return false;
        memcpy(line, text + i, n);
        line[n] = '\0';
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        i += n + 1;
        if (n == 0 || line[0] == '#')
            continue;
        if (state == 0) {
            if (strcmp(line, magic) != 0)
                return false;
            state = 1;
        } else if (state == 1) {
            if (strncmp(line, "key ", 4) != 0 || strcmp(line + 4, key) != 0)
                return false;
            state = 2;
        } else if (strcmp(line, "end") == 0) {
            for (int t = 0; t < INF_TYPE_COUNT; t++)
                if (!seen[t] && inf__kchoice_candidate(tables, ok, (enum inf_type)t))
                    return false;
            return true;
        } else if (!parse_type_line(line, tables, ok, seen, c)) {
            return false;
        }
    }
    return false; /* no "end": truncated */
}

bool inf__kchoice_path(const char *key, char *buf, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, size, "%s/inferno/kernels-%016llx.txt", xdg, (unsigned long long)h);
    else if (home && home[0] == '/')
        n = snprintf(buf, size, "%s/.cache/inferno/kernels-%016llx.txt", home,
                     (unsigned long long)h);
    else
        return false;
    return n > 0 && (size_t)n < size;
}

bool inf__kchoice_load(const char *path, const struct inf__kern *tables, const bool *ok,
                       const char *key, struct inf__kchoice *c)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = 0;
    char *text = inf__read_stream(f, MAX_FILE, &n);
    fclose(f);
    const bool good = text && inf__kchoice_parse(text, n, tables, ok, key, c);
    free(text);
    return good;
}

bool inf__kchoice_save(const char *path, const struct inf__kchoice *c,
                       const struct inf__kern *tables, const bool *ok, const char *key)
{
    char text[MAX_FILE];
    const size_t len = inf__kchoice_format(c, tables, ok, key, text, sizeof(text));
    struct inf__outfile o = {.fd = -1};
    if (!len || inf__mkdir_parents(path) != 0 || inf__outfile_open(path, &o, NULL) != INF_OK)
        return false;
    bool good =
        write(o.fd, text, len) == (ssize_t)len && inf__outfile_commit(&o, path, NULL) == INF_OK;
    close(o.fd);
    if (!good)
        inf__outfile_abandon(&o);
    return good;
}
