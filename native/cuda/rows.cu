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

// The element types a row is written in: element e of the row at `row` becomes v.
struct ToF32 {
    static ISTHMUS_DEVICE void store(unsigned char* row, int e, float v) { reinterpret_cast<float*>(row)[e] = v; }
};

struct ToF16 {
    static ISTHMUS_DEVICE void store(unsigned char* row, int e, float v) {
        reinterpret_cast<unsigned short*>(row)[e] = (unsigned short)f32_to_f16(v);
    }
};

struct ToBF16 {
    static ISTHMUS_DEVICE void store(unsigned char* row, int e, float v) {
        reinterpret_cast<unsigned short*>(row)[e] = (unsigned short)f32_to_bf16(v);
    }
};

template <class F, class To>
ISTHMUS_DEVICE void rows_q(const unsigned char* src, long long srcStride, const int* ids, int rows, int groups,
                           unsigned char* dst, long long dstStride) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= groups) {
        return;
    }
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        const long long sr = ids ? (long long)ids[r] : (long long)r;
        float w[32];
        F::dequant32(byte_ptr(src, sr * srcStride), g, w);
        unsigned char* out = byte_ptr(dst, (long long)r * dstStride);
#pragma unroll
        for (int e = 0; e < 32; e++) {
            To::store(out, 32 * g + e, w[e]);
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

template <class To>
ISTHMUS_DEVICE void copy_rows(const unsigned char* src, long long srcStride, const int* rows, int n, int cols,
                              unsigned char* dst, long long dstStride) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) {
        return;
    }
    for (int r = blockIdx.y; r < n; r += gridDim.y) {
        const float v = reinterpret_cast<const float*>(byte_ptr(src, (long long)r * srcStride))[c];
        const long long dr = rows ? (long long)rows[r] : (long long)r;
        To::store(byte_ptr(dst, dr * dstStride), c, v);
    }
}

}  // namespace isthmus

#define ISTHMUS_ROWS_Q(name, F)                                                                                 \
    extern "C" __global__ void isthmus_rows_##name(const unsigned char* src, long long srcStride, const int* ids, \
                                                   int rows, int groups, unsigned char* dst, long long dstStride) { \
        isthmus::rows_q<isthmus::F, isthmus::ToF32>(src, srcStride, ids, rows, groups, dst, dstStride);             \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_rows_##name)                                                                         \
    extern "C" __global__ void isthmus_rows_##name##_to_f16(const unsigned char* src, long long srcStride,       \
                                                            const int* ids, int rows, int groups,               \
                                                            unsigned char* dst, long long dstStride) {          \
        isthmus::rows_q<isthmus::F, isthmus::ToF16>(src, srcStride, ids, rows, groups, dst, dstStride);             \
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

#define ISTHMUS_COPY_ROWS(name, To)                                                                               \
    extern "C" __global__ void isthmus_copy_rows_##name(const unsigned char* src, long long srcStride,           \
                                                        const int* rows, int n, int cols, unsigned char* dst,   \
                                                        long long dstStride) {                                  \
        isthmus::copy_rows<isthmus::To>(src, srcStride, rows, n, cols, dst, dstStride);                             \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_copy_rows_##name)

ISTHMUS_COPY_ROWS(f32, ToF32)
ISTHMUS_COPY_ROWS(f16, ToF16)
ISTHMUS_COPY_ROWS(bf16, ToBF16)
