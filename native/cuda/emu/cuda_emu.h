// Host-compiler definitions that let the Isthmus CUDA kernel sources compile as ordinary C++ for the kernel
// emulator (emu_runtime.cpp). Included by include/isthmus_common.cuh when __CUDACC__ is not defined.
//
// Model: a launch runs its blocks one after another; the threads of a block are fibers on one OS thread,
// scheduled cooperatively. A fiber runs until it reaches __syncthreads (block barrier), a warp shuffle (warp
// barrier) or its end. This reproduces the CUDA semantics the kernels rely on (barriers, shuffles, shared
// memory shared by the block) deterministically, and reports what CUDA would leave undefined: a shuffle that
// reads a lane not taking part, a barrier not reached by all threads (deadlock), a bad launch configuration.
//
// __shared__ variables become function-local statics: one instance per kernel, which is correct because only
// one block runs at a time (launches are serialized by a global lock).
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cstddef>
#include <type_traits>
#include <utility>

struct dim3 {
    unsigned int x, y, z;
};

namespace emu {

struct ThreadCtx {
    dim3 thread;
    dim3 block;
    dim3 blockSize;
    dim3 gridSize;
};

extern thread_local ThreadCtx* current;

void syncthreads();
void syncwarp();
uint64_t shuffle_exchange(uint64_t bits, int srcLane);
int current_lane();
unsigned char* dynamic_shared();

template <class T>
inline uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}

template <class T>
inline T from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}

// Exact binary16 -> float.
inline float f16_to_f32(unsigned int h) {
    const unsigned int sign = (h >> 15) & 1u;
    const unsigned int e = (h >> 10) & 31u;
    const unsigned int m = h & 1023u;
    float v;
    if (e == 0) {
        v = (float)m * 0x1p-24f;
    } else if (e == 31) {
        v = m ? NAN : INFINITY;
    } else {
        v = ldexpf((float)(1024u + m), (int)e - 25);
    }
    return sign ? -v : v;
}

// float -> binary16, round to nearest even, overflow to infinity, NaN stays NaN (quiet).
inline unsigned int f32_to_f16(float f) {
    unsigned int x;
    memcpy(&x, &f, 4);
    const unsigned int sign = (x >> 16) & 0x8000u;
    const unsigned int ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) {
        return sign | 0x7E00u | ((ax >> 13) & 0x3FFu);
    }
    if (ax >= 0x477FF000u) {  // >= 65520: rounds to infinity
        return sign | 0x7C00u;
    }
    if (ax < 0x38800000u) {  // below the smallest normal half (2^-14): a multiple of 2^-24
        const float v = fabsf(f) * 0x1p24f;  // exact
        return sign | (unsigned int)nearbyintf(v);  // ties to even in the default rounding mode; 1024 = min normal
    }
    const unsigned int e = (ax >> 23) - 127u + 15u;
    const unsigned int m = ax & 0x7FFFFFu;
    unsigned int r = (e << 10) | (m >> 13);
    const unsigned int rem = m & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) {
        r++;
    }
    return sign | r;
}

// ---- kernel registry --------------------------------------------------------------------------------------

using Invoker = void (*)(void* fn, void** params);

void register_kernel(const char* name, void* fn, Invoker invoker, const char* signature);

template <class T>
constexpr char kind_of() {
    return std::is_pointer<T>::value ? 'p'
           : std::is_floating_point<T>::value ? (sizeof(T) == 4 ? 'f' : 'd')
           : (std::is_integral<T>::value && sizeof(T) == 8) ? 'l'
           : (std::is_integral<T>::value && sizeof(T) == 4) ? 'i'
           : '?';
}

template <class... A, std::size_t... I>
void invoke_with(void (*fn)(A...), void** params, std::index_sequence<I...>) {
    fn(*static_cast<typename std::remove_cv<A>::type*>(params[I])...);
}

template <class... A>
void invoke(void* fn, void** params) {
    invoke_with(reinterpret_cast<void (*)(A...)>(fn), params, std::index_sequence_for<A...>{});
}

struct Registrar {
    template <class... A>
    Registrar(const char* name, void (*fn)(A...)) {
        static const char sig[] = {kind_of<A>()..., '\0'};
        register_kernel(name, reinterpret_cast<void*>(fn), &invoke<A...>, sig);
    }
};

}  // namespace emu

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __restrict__

#define threadIdx (emu::current->thread)
#define blockIdx (emu::current->block)
#define blockDim (emu::current->blockSize)
#define gridDim (emu::current->gridSize)

inline void __syncthreads() { emu::syncthreads(); }

inline void __syncwarp(unsigned int /*mask*/ = 0xffffffffu) { emu::syncwarp(); }

template <class T>
inline T __shfl_xor_sync(unsigned int /*mask*/, T v, int laneMask) {
    return emu::from_bits<T>(emu::shuffle_exchange(emu::to_bits(v), emu::current_lane() ^ laneMask));
}

template <class T>
inline T __shfl_sync(unsigned int /*mask*/, T v, int srcLane) {
    return emu::from_bits<T>(emu::shuffle_exchange(emu::to_bits(v), srcLane & 31));
}

inline float __uint_as_float(unsigned int u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    memcpy(&u, &f, 4);
    return u;
}
