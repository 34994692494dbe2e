/* cpu.c - run-time CPU feature detection and core counting. */
#include "inferno/cpu.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}
#endif

static struct inf_cpu_features features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;
static char model[128] = "unknown";
static pthread_once_t model_once = PTHREAD_ONCE_INIT;

static void detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    bool osxsave = (c >> 27) & 1;
    features.sse42 = (c >> 20) & 1;
    bool avx_hw = (c >> 28) & 1;
    bool fma_hw = (c >> 12) & 1;
    bool f16c_hw = (c >> 29) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool ymm_os = (xcr0 & 0x6) == 0x6;   /* SSE + AVX state */
    bool zmm_os = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
    features.avx = avx_hw && ymm_os;
    features.fma = fma_hw && ymm_os;
    features.f16c = f16c_hw && ymm_os;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        features.avx2 = ((b >> 5) & 1) && ymm_os;
        features.avx512f = ((b >> 16) & 1) && zmm_os;
        features.avx512dq = ((b >> 17) & 1) && zmm_os;
        features.avx512bw = ((b >> 30) & 1) && zmm_os;
        features.avx512vl = ((b >> 31) & 1) && zmm_os;
        features.avx512vnni = ((c >> 11) & 1) && zmm_os;
        __cpuid_count(7, 1, a, b, c, d);
        features.avx512bf16 = ((a >> 5) & 1) && zmm_os;
        features.avx_vnni = ((a >> 4) & 1) && ymm_os;
    }
#endif
}

const struct inf_cpu_features *inf_cpu_features(void)
{
    pthread_once(&features_once, detect);
    return &features;
}

void inf_cpu_features_string(const struct inf_cpu_features *f, char *buf, size_t size)
{
    static const struct {
        size_t off;
        const char *name;
    } names[] = {
        {offsetof(struct inf_cpu_features, sse42), "sse4.2"},
        {offsetof(struct inf_cpu_features, avx), "avx"},
        {offsetof(struct inf_cpu_features, avx2), "avx2"},
        {offsetof(struct inf_cpu_features, fma), "fma"},
        {offsetof(struct inf_cpu_features, f16c), "f16c"},
        {offsetof(struct inf_cpu_features, avx_vnni), "avx-vnni"},
        {offsetof(struct inf_cpu_features, avx512f), "avx512f"},
        {offsetof(struct inf_cpu_features, avx512bw), "avx512bw"},
        {offsetof(struct inf_cpu_features, avx512vl), "avx512vl"},
        {offsetof(struct inf_cpu_features, avx512dq), "avx512dq"},
        {offsetof(struct inf_cpu_features, avx512vnni), "avx512vnni"},
        {offsetof(struct inf_cpu_features, avx512bf16), "avx512bf16"},
    };
    size_t o = 0;
    if (!size)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        bool on = *(const bool *)((const char *)f + names[i].off);
        if (!on)
            continue;
        int n = snprintf(buf + o, size - o, "%s%s", o ? " " : "", names[i].name);
        if (n < 0 || (size_t)n >= size - o)
            break;
        o += (size_t)n;
    }
    if (o == 0)
        snprintf(buf, size, "(none)");
}

/* The brand string (cpuid 0x80000002..4, spaces squeezed) and family/model/stepping (cpuid 1):
 * virtual machines often shorten the brand to "AMD EPYC", which the numbers tell apart. */
static void detect_model(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d, regs[12] = {0};
    char brand[49] = {0}, squeezed[49];
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                        &regs[4 * i + 3]);
        memcpy(brand, regs, 48);
    }
    size_t o = 0;
    for (const char *p = brand; *p; p++)
        if (*p != ' ' || (o && squeezed[o - 1] != ' '))
            squeezed[o++] = *p;
    while (o && squeezed[o - 1] == ' ')
        o--;
    squeezed[o] = '\0';
    if (!__get_cpuid(1, &a, &b, &c, &d))
        a = 0;
    unsigned family = (a >> 8) & 0xf, mdl = (a >> 4) & 0xf;
    if (family == 0xf)
        family += (a >> 20) & 0xff;
    if (family == 0x6 || family >= 0xf)
        mdl |= ((a >> 16) & 0xf) << 4;
    snprintf(model, sizeof(model), "%s (family %u model %u stepping %u)", o ? squeezed : "unknown",
             family, mdl, a & 0xf);
#endif
}

const char *inf_cpu_model(void)
{
    pthread_once(&model_once, detect_model);
    return model;
}

int inf_cpu_physical_cores(void)
{
    /* Count distinct (physical id, core id) pairs in /proc/cpuinfo. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int pairs[1024][2];
    int n = 0, phys = -1, core = -1;
    char line[512];

    if (f) {
        while (fgets(line, sizeof(line), f)) {
            const char *colon = strchr(line, ':');
            if (!colon)
                continue;
            if (strncmp(line, "physical id", 11) == 0) {
                phys = (int)strtol(colon + 1, NULL, 10);
                continue;
            }
            if (strncmp(line, "core id", 7) == 0) {
                core = (int)strtol(colon + 1, NULL, 10);
                bool seen = false;
                for (int i = 0; i < n && !seen; i++)
                    seen = pairs[i][0] == phys && pairs[i][1] == core;
                if (!seen && n < 1024) {
                    pairs[n][0] = phys;
                    pairs[n][1] = core;
                    n++;
                }
            }
        }
        fclose(f);
    }
    if (n > 0)
        return n;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
