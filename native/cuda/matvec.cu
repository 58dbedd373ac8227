// Fused dequantize + matrix-vector product for decode (and, without cuBLAS, any batch):
//   out[r, i] = sum_e x[r, e] * W[i, e]      (out = x W^T, W stored one output feature per row, as GGUF does)
//
// LAYOUT ASSUMED
//   x:   F32 [n, k], row r at x + r * xStride (bytes), elements contiguous, 4-byte aligned.
//   W:   [m, k] in the kernel's dtype, row i at W + i * wStride (bytes); quantized rows are k/QK blocks in the
//        layouts of include/isthmus_quant.cuh (k a multiple of QK), F32/F16/BF16 rows are k elements.
//   out: F32 [n, m], row r at out + r * outStride (bytes). Must not alias x.
//
// GEOMETRY (dev.isthmus.backend.cuda.LaunchGeometry.matvec)
//   blockDim.x = 128 = 4 warps; warp w of block b computes output feature i = 4b + w for up to MV_ROWS (8) rows
//   of x at once, so each weight is read once per 8 activation rows. gridDim.x = ceil(m / 4);
//   gridDim.y = min(ceil(n / 8), 65535), grid-stride over the chunks of 8 rows.
//   Quantized: lane l handles the 32-element groups l, l + 32, ... of the weight row (dequantized into
//   registers once, then dotted with each of the up to 8 x rows). Plain types: lane l handles elements
//   l, l + 32, ... (coalesced). The lanes' partial sums are combined with warp shuffles.
#include "include/isthmus_common.cuh"
#include "include/isthmus_quant.cuh"

#define MV_ROWS 8

namespace isthmus {

// The end of a warp's work on rows r0 .. r0 + nr - 1 of output feature i: each row's partial sums over the
// lanes added by shuffles, and written by lane 0.
ISTHMUS_DEVICE void store_rows(float (&acc)[MV_ROWS], int nr, int lane, unsigned char* out, long long outStride,
                               int r0, int i) {
#pragma unroll
    for (int r = 0; r < MV_ROWS; r++) {
        if (r < nr) {  // nr is the same for the whole warp: the shuffles stay convergent
            acc[r] = warp_sum(acc[r]);
        }
    }
    if (lane == 0) {
        for (int r = 0; r < nr; r++) {
            reinterpret_cast<float*>(byte_ptr(out, (long long)(r0 + r) * outStride))[i] = acc[r];
        }
    }
}

template <class F>
ISTHMUS_DEVICE void matvec_q(const unsigned char* x, long long xStride, const unsigned char* W, long long wStride,
                             unsigned char* out, long long outStride, int n, int m, int k) {
    const int lane = threadIdx.x & 31;
    const int i = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (i >= m) {
        return;  // uniform across the warp: i depends on the warp only
    }
    const unsigned char* wrow = byte_ptr(W, (long long)i * wStride);
    const int groups = k >> 5;
    for (int r0 = blockIdx.y * MV_ROWS; r0 < n; r0 += gridDim.y * MV_ROWS) {
        const int nr = imin(MV_ROWS, n - r0);
        float acc[MV_ROWS];
#pragma unroll
        for (int r = 0; r < MV_ROWS; r++) {
            acc[r] = 0.0f;
        }
        for (int g = lane; g < groups; g += 32) {
            float w[32];
            F::dequant32(wrow, g, w);
#pragma unroll
            for (int r = 0; r < MV_ROWS; r++) {
                if (r < nr) {
                    const float* xr = reinterpret_cast<const float*>(byte_ptr(x, (long long)(r0 + r) * xStride)) + 32 * g;
                    float s = 0.0f;
#pragma unroll
                    for (int e = 0; e < 32; e++) {
                        s += w[e] * xr[e];
                    }
                    acc[r] += s;
                }
            }
        }
        store_rows(acc, nr, lane, out, outStride, r0, i);
    }
}

template <class T>
ISTHMUS_DEVICE void matvec_plain(const unsigned char* x, long long xStride, const unsigned char* W, long long wStride,
                                 unsigned char* out, long long outStride, int n, int m, int k) {
    const int lane = threadIdx.x & 31;
    const int i = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (i >= m) {
        return;
    }
    const unsigned char* wrow = byte_ptr(W, (long long)i * wStride);
    for (int r0 = blockIdx.y * MV_ROWS; r0 < n; r0 += gridDim.y * MV_ROWS) {
        const int nr = imin(MV_ROWS, n - r0);
        float acc[MV_ROWS];
#pragma unroll
        for (int r = 0; r < MV_ROWS; r++) {
            acc[r] = 0.0f;
        }
        for (int e = lane; e < k; e += 32) {
            const float wv = T::load(wrow, e);
#pragma unroll
            for (int r = 0; r < MV_ROWS; r++) {
                if (r < nr) {
                    acc[r] += wv * reinterpret_cast<const float*>(byte_ptr(x, (long long)(r0 + r) * xStride))[e];
                }
            }
        }
        store_rows(acc, nr, lane, out, outStride, r0, i);
    }
}

}  // namespace isthmus

#define ISTHMUS_MATVEC(name, impl, F)                                                                            \
    extern "C" __global__ void isthmus_matvec_##name(const unsigned char* x, long long xStride,                 \
                                                     const unsigned char* w, long long wStride,                 \
                                                     unsigned char* out, long long outStride, int n, int m,     \
                                                     int k) {                                                   \
        isthmus::impl<isthmus::F>(x, xStride, w, wStride, out, outStride, n, m, k);                            \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_matvec_##name)

ISTHMUS_MATVEC(f32, matvec_plain, F32)
ISTHMUS_MATVEC(f16, matvec_plain, F16)
ISTHMUS_MATVEC(bf16, matvec_plain, BF16)
ISTHMUS_MATVEC(q4_0, matvec_q, Q4_0)
ISTHMUS_MATVEC(q4_1, matvec_q, Q4_1)
ISTHMUS_MATVEC(q5_0, matvec_q, Q5_0)
ISTHMUS_MATVEC(q5_1, matvec_q, Q5_1)
ISTHMUS_MATVEC(q8_0, matvec_q, Q8_0)
ISTHMUS_MATVEC(q2_k, matvec_q, Q2_K)
ISTHMUS_MATVEC(q3_k, matvec_q, Q3_K)
ISTHMUS_MATVEC(q4_k, matvec_q, Q4_K)
ISTHMUS_MATVEC(q5_k, matvec_q, Q5_K)
ISTHMUS_MATVEC(q6_k, matvec_q, Q6_K)
ISTHMUS_MATVEC(q8_k, matvec_q, Q8_K)
