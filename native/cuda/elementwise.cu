// Element-wise operators: ADD, MUL (with row broadcast), SCALE, SILU, GELU, SWIGLU.
//
// LAYOUT ASSUMED
//   Every operand is an F32 matrix [rows, cols]: row r at base + r * stride (bytes), elements contiguous,
//   4-byte aligned. For ADD/MUL, b either has `rows` rows or a single row broadcast to all: the host passes
//   bStride = 0 for the broadcast. out may alias any input of its shape: each element is read and written by
//   the same thread.
//
// GEOMETRY (dev.isthmus.backend.cuda.LaunchGeometry.elementwise)
//   blockDim.x = 256, one thread per column; gridDim.x = ceil(cols / 256); gridDim.y = min(rows, 65535),
//   grid-stride over rows.
#include "include/isthmus_common.cuh"

namespace isthmus {

ISTHMUS_DEVICE float silu(float v) { return v / (1.0f + expf(-v)); }

ISTHMUS_DEVICE float gelu(float v) {
    // tanh approximation, as ggml and GPT-2: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const float k = 0.7978845608028654f;
    return 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
}

ISTHMUS_DEVICE const float* el(const unsigned char* base, long long stride, int r, int c) {
    return reinterpret_cast<const float*>(byte_ptr(base, (long long)r * stride)) + c;
}

ISTHMUS_DEVICE float* el(unsigned char* base, long long stride, int r, int c) {
    return reinterpret_cast<float*>(byte_ptr(base, (long long)r * stride)) + c;
}

}  // namespace isthmus

using namespace isthmus;

#define ISTHMUS_BINARY(name, expr)                                                                               \
    extern "C" __global__ void isthmus_##name(const unsigned char* a, long long aStride, const unsigned char* b, \
                                              long long bStride, unsigned char* out, long long outStride,       \
                                              int rows, int cols) {                                             \
        const int c = blockIdx.x * blockDim.x + threadIdx.x;                                                    \
        if (c >= cols) {                                                                                        \
            return;                                                                                             \
        }                                                                                                       \
        for (int r = blockIdx.y; r < rows; r += gridDim.y) {                                                    \
            const float av = *el(a, aStride, r, c);                                                             \
            const float bv = *el(b, bStride, r, c);                                                             \
            *el(out, outStride, r, c) = (expr);                                                                 \
        }                                                                                                       \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_##name)

ISTHMUS_BINARY(add, av + bv)
ISTHMUS_BINARY(mul, av * bv)
// gate = a, up = b (same rows; bStride is never 0 here)
ISTHMUS_BINARY(swiglu, silu(av) * bv)

#define ISTHMUS_UNARY(name, expr)                                                                                \
    extern "C" __global__ void isthmus_##name(const unsigned char* x, long long xStride, unsigned char* out,     \
                                              long long outStride, int rows, int cols, float s) {               \
        const int c = blockIdx.x * blockDim.x + threadIdx.x;                                                    \
        if (c >= cols) {                                                                                        \
            return;                                                                                             \
        }                                                                                                       \
        for (int r = blockIdx.y; r < rows; r += gridDim.y) {                                                    \
            const float v = *el(x, xStride, r, c);                                                              \
            *el(out, outStride, r, c) = (expr);                                                                 \
        }                                                                                                       \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_##name)

// All unary kernels take the scalar s (used by scale only) so that they share one signature.
ISTHMUS_UNARY(scale, v * s)
ISTHMUS_UNARY(silu, silu(v))
ISTHMUS_UNARY(gelu, gelu(v))
