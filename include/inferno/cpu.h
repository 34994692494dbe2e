/*
 * inferno/cpu.h - CPU features detected at run time (cpuid + the OS's XSAVE support), used by
 * the kernels to choose a SIMD level and shown by `inferno --version`.
 */
#ifndef INFERNO_CPU_H
#define INFERNO_CPU_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct inf_cpu_features {
    bool sse42, avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16, avx_vnni;
};

/* Detect once (thread-safe); the result is cached. */
const struct inf_cpu_features *inf_cpu_features(void);

/* "avx2 fma f16c avx512f …": the detected features, space-separated, into buf. */
void inf_cpu_features_string(const struct inf_cpu_features *f, char *buf, size_t size);

/* "AMD EPYC 9R14 (family 25 model 17 stepping 1)": the CPU's brand string and cpuid numbers,
 * detected once; "unknown" off x86. The string lives as long as the program. */
const char *inf_cpu_model(void);

/* Number of physical cores (falls back to online CPUs when topology is unknown); >= 1. */
int inf_cpu_physical_cores(void);

#ifdef __cplusplus
}
#endif
#endif
