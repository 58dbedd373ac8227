// Row gathers and conversions: DEQUANTIZE, EMBEDDING_LOOKUP, COPY_ROWS, and the F32 -> F16/BF16 conversion of
// activations before a cuBLAS GEMM.
//
// LAYOUT ASSUMED
//   src, dst: matrices of `rows` rows; row r starts at base + r * stride (byte strides); the elements of a row
//   are contiguous (quantized rows: blocks as in include/isthmus_quant.cuh). For a tensor of rank > 2 the Java
//   side passes the rows of its outermost dimension with the remaining dimensions flattened (they must be
//   contiguous), which is what COPY_ROWS into a [slots, kvHeads, headDim] cache needs.
//   ids (int32, device, may be NULL): gather map. isthmus_rows_*: dst row r = src row ids[r] (ids == NULL:
//   src row r). isthmus_copy_rows_*: scatter map, dst row rows[r] = src row r.
//
// GEOMETRY (computed by dev.isthmus.backend.cuda.LaunchGeometry)
//   isthmus_rows_q_*:   blockDim.x = 128, one thread per 32-element group; gridDim.x = ceil(groups / 128);
//                       gridDim.y = min(rows, 65535), grid-stride over rows.
//   isthmus_rows_<t>, isthmus_copy_rows_*: blockDim.x = 256, one thread per element;
//                       gridDim.x = ceil(cols / 256); gridDim.y = min(rows, 65535), grid-stride over rows.
#include "include/isthmus_common.cuh"
#include "include/isthmus_quant.cuh"

namespace isthmus {

template <class F>
ISTHMUS_DEVICE void rows_q_f32(const unsigned char* src, long long srcStride, const int* ids, int rows, int groups,
                               unsigned char* dst, long long dstStride) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= groups) {
        return;
    }
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const long long sr = ids ? (long long)ids[r] : (long long)r;
        float w[32];
        F::dequant32(byte_ptr(src, sr * srcStride), g, w);
        float* out = reinterpret_cast<float*>(byte_ptr(dst, (long long)r * dstStride)) + 32 * g;
#pragma unroll
        for (int e = 0; e < 32; e++) {
            out[e] = w[e];
        }
    }
}

template <class F>
ISTHMUS_DEVICE void rows_q_f16(const unsigned char* src, long long srcStride, const int* ids, int rows, int groups,
                               unsigned char* dst, long long dstStride) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= groups) {
        return;
    }
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const long long sr = ids ? (long long)ids[r] : (long long)r;
        float w[32];
        F::dequant32(byte_ptr(src, sr * srcStride), g, w);
        unsigned short* out = reinterpret_cast<unsigned short*>(byte_ptr(dst, (long long)r * dstStride)) + 32 * g;
#pragma unroll
        for (int e = 0; e < 32; e++) {
            out[e] = (unsigned short)f32_to_f16(w[e]);
        }
    }
}

template <class T>
ISTHMUS_DEVICE void rows_plain(const unsigned char* src, long long srcStride, const int* ids, int rows, int cols,
                               unsigned char* dst, long long dstStride) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) {
        return;
    }
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const long long sr = ids ? (long long)ids[r] : (long long)r;
        reinterpret_cast<float*>(byte_ptr(dst, (long long)r * dstStride))[c] = T::load(byte_ptr(src, sr * srcStride), c);
    }
}

// dst element type: 0 = F32, 1 = F16, 2 = BF16.
template <int D>
ISTHMUS_DEVICE void copy_rows(const unsigned char* src, long long srcStride, const int* rows, int n, int cols,
                              unsigned char* dst, long long dstStride) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) {
        return;
    }
    for (int r = blockIdx.y; r < n; r += gridDim.y) {
        const float v = reinterpret_cast<const float*>(byte_ptr(src, (long long)r * srcStride))[c];
        const long long dr = rows ? (long long)rows[r] : (long long)r;
        unsigned char* out = byte_ptr(dst, dr * dstStride);
        if (D == 0) {
            reinterpret_cast<float*>(out)[c] = v;
        } else if (D == 1) {
            reinterpret_cast<unsigned short*>(out)[c] = (unsigned short)f32_to_f16(v);
        } else {
            reinterpret_cast<unsigned short*>(out)[c] = (unsigned short)f32_to_bf16(v);
        }
    }
}

}  // namespace isthmus

#define ISTHMUS_ROWS_Q(name, F)                                                                                 \
    extern "C" __global__ void isthmus_rows_##name(const unsigned char* src, long long srcStride, const int* ids, \
                                                   int rows, int groups, unsigned char* dst, long long dstStride) { \
        isthmus::rows_q_f32<isthmus::F>(src, srcStride, ids, rows, groups, dst, dstStride);                    \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_rows_##name)                                                                         \
    extern "C" __global__ void isthmus_rows_##name##_to_f16(const unsigned char* src, long long srcStride,       \
                                                            const int* ids, int rows, int groups,               \
                                                            unsigned char* dst, long long dstStride) {          \
        isthmus::rows_q_f16<isthmus::F>(src, srcStride, ids, rows, groups, dst, dstStride);                    \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_rows_##name##_to_f16)

ISTHMUS_ROWS_Q(q4_0, Q4_0)
ISTHMUS_ROWS_Q(q4_1, Q4_1)
ISTHMUS_ROWS_Q(q5_0, Q5_0)
ISTHMUS_ROWS_Q(q5_1, Q5_1)
ISTHMUS_ROWS_Q(q8_0, Q8_0)
ISTHMUS_ROWS_Q(q2_k, Q2_K)
ISTHMUS_ROWS_Q(q3_k, Q3_K)
ISTHMUS_ROWS_Q(q4_k, Q4_K)
ISTHMUS_ROWS_Q(q5_k, Q5_K)
ISTHMUS_ROWS_Q(q6_k, Q6_K)
ISTHMUS_ROWS_Q(q8_k, Q8_K)

#define ISTHMUS_ROWS_PLAIN(name, T)                                                                              \
    extern "C" __global__ void isthmus_rows_##name(const unsigned char* src, long long srcStride, const int* ids, \
                                                   int rows, int cols, unsigned char* dst, long long dstStride) { \
        isthmus::rows_plain<isthmus::T>(src, srcStride, ids, rows, cols, dst, dstStride);                      \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_rows_##name)

ISTHMUS_ROWS_PLAIN(f32, F32)
ISTHMUS_ROWS_PLAIN(f16, F16)
ISTHMUS_ROWS_PLAIN(bf16, BF16)

#define ISTHMUS_COPY_ROWS(name, D)                                                                               \
    extern "C" __global__ void isthmus_copy_rows_##name(const unsigned char* src, long long srcStride,           \
                                                        const int* rows, int n, int cols, unsigned char* dst,   \
                                                        long long dstStride) {                                  \
        isthmus::copy_rows<D>(src, srcStride, rows, n, cols, dst, dstStride);                                   \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_copy_rows_##name)

ISTHMUS_COPY_ROWS(f32, 0)
ISTHMUS_COPY_ROWS(f16, 1)
ISTHMUS_COPY_ROWS(bf16, 2)
