// Shared definitions of the Isthmus CUDA kernels.
//
// The same sources are compiled twice:
//   * by nvcc into the fatbin the CUDA backend loads (sm_80, sm_90 and compute_90 PTX), and
//   * by the host C++ compiler into the kernel emulator (native/cuda/emu), which runs every thread of a
//     block as a cooperatively scheduled fiber so that the kernels can be executed and tested on a machine
//     without a GPU. Everything below that differs between the two builds is in this header and in
//     emu/cuda_emu.h; kernel sources use only what is defined here.
//
// Conventions that every kernel follows (the Java side, dev.isthmus.backend.cuda.Kernel, states the same):
//   * Tensors are passed as a base pointer plus byte strides for every dimension but the innermost, which is
//     contiguous. Strides are `long long` and always in BYTES.
//   * F32 data must be 4-byte aligned, F16/BF16 data 2-byte aligned. Quantized rows are read byte-wise except
//     for their f16 fields, which are 2-byte aligned because every ggml block size is even.
//   * Kernels are extern "C" (unmangled names) and take only pointers, int, long long and float.
//   * Grids are "grid-stride" in y (and z): a kernel never assumes gridDim.y covers all rows, so the host may
//     clamp gridDim.y to the hardware limit of 65535.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define ISTHMUS_DEVICE __device__ __forceinline__
#define ISTHMUS_DYNAMIC_SHARED() isthmus_dynamic_smem
extern __shared__ __align__(16) unsigned char isthmus_dynamic_smem[];
// The emulator registers every kernel by name; on the device the loader finds them in the fatbin.
#define ISTHMUS_EXPORT(fn)
#else
#include "../emu/cuda_emu.h"
#define ISTHMUS_DEVICE inline
#define ISTHMUS_DYNAMIC_SHARED() (emu::dynamic_shared())
#define ISTHMUS_EXPORT(fn) static emu::Registrar isthmus_registrar_##fn(#fn, &fn);
#endif

#define ISTHMUS_FULL_MASK 0xffffffffu

namespace isthmus {

// ---- scalar helpers ---------------------------------------------------------------------------------------

ISTHMUS_DEVICE int imin(int a, int b) { return a < b ? a : b; }
ISTHMUS_DEVICE int imax(int a, int b) { return a > b ? a : b; }

ISTHMUS_DEVICE const unsigned char* byte_ptr(const void* p, long long offset) {
    return static_cast<const unsigned char*>(p) + offset;
}

ISTHMUS_DEVICE unsigned char* byte_ptr(void* p, long long offset) {
    return static_cast<unsigned char*>(p) + offset;
}

// Little-endian u16 at a 2-byte aligned address.
ISTHMUS_DEVICE unsigned int load_u16(const unsigned char* p) {
    return *reinterpret_cast<const unsigned short*>(p);
}

// Little-endian u32 from bytes (no alignment assumption: Q5_0's qh sits at offset 2 of its block).
ISTHMUS_DEVICE unsigned int load_u32_bytes(const unsigned char* p) {
    return (unsigned int)p[0] | ((unsigned int)p[1] << 8) | ((unsigned int)p[2] << 16) | ((unsigned int)p[3] << 24);
}

// ---- half floats ------------------------------------------------------------------------------------------

// IEEE binary16 bits -> float (exact).
ISTHMUS_DEVICE float f16_to_f32(unsigned int bits) {
#if defined(__CUDACC__)
    return __half2float(__ushort_as_half((unsigned short)bits));
#else
    return emu::f16_to_f32(bits);
#endif
}

// float -> binary16 bits, round to nearest even, overflow to infinity, NaN stays NaN.
ISTHMUS_DEVICE unsigned int f32_to_f16(float v) {
#if defined(__CUDACC__)
    return __half_as_ushort(__float2half_rn(v));
#else
    return emu::f32_to_f16(v);
#endif
}

// bfloat16 bits -> float (the upper half of a binary32; exact).
ISTHMUS_DEVICE float bf16_to_f32(unsigned int bits) {
    return __uint_as_float((bits & 0xFFFFu) << 16);
}

// float -> bfloat16 bits, round to nearest even; NaN stays (quiet) NaN. Same rule as the conformance
// reference HalfFloats.bf16Bits: add 0x7FFF plus the kept lsb, then truncate.
ISTHMUS_DEVICE unsigned int f32_to_bf16(float v) {
    unsigned int bits = __float_as_uint(v);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
        return ((bits >> 16) | 0x0040u) & 0xFFFFu;
    }
    unsigned int lsb = (bits >> 16) & 1u;
    return ((bits + 0x7FFFu + lsb) >> 16) & 0xFFFFu;
}

// ---- reductions -------------------------------------------------------------------------------------------
// Every lane of the warp must call these (they use full-mask shuffles).

ISTHMUS_DEVICE float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(ISTHMUS_FULL_MASK, v, o);
    }
    return v;
}

ISTHMUS_DEVICE float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(ISTHMUS_FULL_MASK, v, o));
    }
    return v;
}

// Sum over the whole block; every thread of the block must call it and gets the result. blockDim.x must be a
// multiple of 32 (at most 1024). `scratch` is 32 floats of shared memory, not used by the caller in between.
ISTHMUS_DEVICE float block_sum(float v, float* scratch) {
    v = warp_sum(v);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    __syncthreads();  // a previous use of scratch has been read by everyone
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float r = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(r);
}

ISTHMUS_DEVICE float block_max(float v, float* scratch) {
    v = warp_max(v);
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) {
        scratch[warp] = v;
    }
    __syncthreads();
    float r = lane < warps ? scratch[lane] : -INFINITY;
    return warp_max(r);
}

}  // namespace isthmus
