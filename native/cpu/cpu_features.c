/*
 * Isthmus CPU kernels: run-time CPU feature detection.
 *
 * Compiled WITHOUT any -m flags (unlike kernels_avx512.c), so that calling it is safe on every x86-64 CPU:
 * the Java side calls isthmus_cpu_features() first and uses the AVX-512 kernels only when it reports them.
 */
#include <stdint.h>
#include <cpuid.h>
#include <unistd.h>
#include <sys/syscall.h>

#define EXPORT __attribute__((visibility("default")))

/* Bits returned by isthmus_cpu_features(); mirrored in NativeCpu.java. */
#define ISTHMUS_F_AVX512     (1 << 0) /* AVX-512 F+BW+VL+DQ, FMA, F16C, and the OS saves zmm state */
#define ISTHMUS_F_AVX512VNNI (1 << 1) /* vpdpbusd */
#define ISTHMUS_F_AMX_INT8   (1 << 2) /* AMX tiles with int8 (and the kernel granted XTILEDATA) */
#define ISTHMUS_F_AVX512BF16 (1 << 3)

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t) hi << 32) | lo;
}

EXPORT int isthmus_cpu_features(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) {
        return 0;
    }
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, f16c = (c >> 29) & 1;
    if (!osxsave) {
        return 0;
    }
    uint64_t xcr0 = xgetbv0();
    /* SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state enabled by the OS. */
    int zmmState = (xcr0 & 0xE6) == 0xE6;
    if (__get_cpuid_max(0, 0) < 7) {
        return 0;
    }
    __cpuid_count(7, 0, a, b, c, d);
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    int vnni = (c >> 11) & 1;
    int amxBf16 = (d >> 22) & 1, amxTile = (d >> 24) & 1, amxInt8 = (d >> 25) & 1;
    int features = 0;
    if (zmmState && fma && f16c && avx512f && avx512dq && avx512bw && avx512vl) {
        features |= ISTHMUS_F_AVX512;
        if (vnni) {
            features |= ISTHMUS_F_AVX512VNNI;
        }
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        if ((a1 >> 5) & 1) {
            features |= ISTHMUS_F_AVX512BF16;
        }
    }
    (void) amxBf16;
    /* AMX: tile state in XCR0 (bits 17, 18) and permission from Linux to use XTILEDATA (feature 18). */
    if (amxTile && amxInt8 && (xcr0 & (3u << 17)) == (3u << 17)) {
        const long ARCH_REQ_XCOMP_PERM = 0x1023;
        const long XFEATURE_XTILEDATA = 18;
        if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0) {
            features |= ISTHMUS_F_AMX_INT8;
        }
    }
    return features;
}

/* ABI version of the library: NativeCpu.java refuses a library of another version. */
EXPORT int isthmus_cpu_abi_version(void) {
    return 2;
}
