// Row-wise reductions: RMS_NORM, LAYER_NORM, SOFTMAX, ARGMAX.
//
// LAYOUT ASSUMED
//   x, out: F32 matrices [rows, cols]; row r at base + r * stride (bytes); elements contiguous, 4-byte aligned.
//   out may alias x (same shape): every element is read by the thread that writes it, and all reads of the
//   reductions happen before the first write (separated by __syncthreads in block_sum/block_max).
//   weight, bias: F32 vectors of cols elements (bias/weight may be NULL for layer_norm, meaning 0/1).
//   argmax out: int32[rows] on the device.
//
// GEOMETRY (dev.isthmus.backend.cuda.LaunchGeometry.rowwise)
//   one block per row: blockDim.x = min(256, cols rounded up to a multiple of 32), gridDim.x = min(rows, 65535);
//   the kernels loop over rows with stride gridDim.x, so the clamp is safe.
#include "include/isthmus_common.cuh"

namespace isthmus {

ISTHMUS_DEVICE const float* frow(const unsigned char* base, long long stride, int r) {
    return reinterpret_cast<const float*>(byte_ptr(base, (long long)r * stride));
}

ISTHMUS_DEVICE float* frow(unsigned char* base, long long stride, int r) {
    return reinterpret_cast<float*>(byte_ptr(base, (long long)r * stride));
}

}  // namespace isthmus

using namespace isthmus;

// out = x / sqrt(mean(x^2) + eps) * weight
extern "C" __global__ void isthmus_rms_norm(const unsigned char* x, long long xStride, const float* weight,
                                            unsigned char* out, long long outStride, int rows, int cols, float eps) {
    __shared__ float scratch[32];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = frow(x, xStride, r);
        float ss = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            ss += xr[c] * xr[c];
        }
        ss = block_sum(ss, scratch);
        const float inv = 1.0f / sqrtf(ss / (float)cols + eps);
        float* o = frow(out, outStride, r);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            o[c] = xr[c] * inv * weight[c];
        }
        __syncthreads();  // out may alias x: the next row's reads come after this row's writes anyway
    }
}
ISTHMUS_EXPORT(isthmus_rms_norm)

// out = (x - mean) / sqrt(var + eps) * weight + bias (population variance, two passes)
extern "C" __global__ void isthmus_layer_norm(const unsigned char* x, long long xStride, const float* weight,
                                              const float* bias, unsigned char* out, long long outStride, int rows,
                                              int cols, float eps) {
    __shared__ float scratch[32];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = frow(x, xStride, r);
        float s = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            s += xr[c];
        }
        const float mean = block_sum(s, scratch) / (float)cols;
        float v = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            const float d = xr[c] - mean;
            v += d * d;
        }
        const float var = block_sum(v, scratch) / (float)cols;
        const float inv = 1.0f / sqrtf(var + eps);
        float* o = frow(out, outStride, r);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            float y = (xr[c] - mean) * inv;
            if (weight) {
                y *= weight[c];
            }
            if (bias) {
                y += bias[c];
            }
            o[c] = y;
        }
        __syncthreads();
    }
}
ISTHMUS_EXPORT(isthmus_layer_norm)

// out = exp(x - max) / sum(exp(x - max)), per row
extern "C" __global__ void isthmus_softmax(const unsigned char* x, long long xStride, unsigned char* out,
                                           long long outStride, int rows, int cols) {
    __shared__ float scratch[32];
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = frow(x, xStride, r);
        float mx = -INFINITY;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            mx = fmaxf(mx, xr[c]);
        }
        mx = block_max(mx, scratch);
        float s = 0.0f;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            s += expf(xr[c] - mx);
        }
        const float inv = 1.0f / block_sum(s, scratch);
        float* o = frow(out, outStride, r);
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            o[c] = expf(xr[c] - mx) * inv;
        }
        __syncthreads();
    }
}
ISTHMUS_EXPORT(isthmus_softmax)

// out[r] = the index of the largest value of row r, the lowest such index on ties.
extern "C" __global__ void isthmus_argmax(const unsigned char* x, long long xStride, int rows, int cols, int* out) {
    __shared__ float bestValue[32];
    __shared__ int bestIndex[32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int warps = blockDim.x >> 5;
    for (int r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* xr = frow(x, xStride, r);
        float bv = -INFINITY;
        int bi = -1;
        for (int c = threadIdx.x; c < cols; c += blockDim.x) {
            const float v = xr[c];
            if (bi < 0 || v > bv) {  // c increases, so ties keep the lower index
                bv = v;
                bi = c;
            }
        }
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(ISTHMUS_FULL_MASK, bv, o);
            const int oi = __shfl_xor_sync(ISTHMUS_FULL_MASK, bi, o);
            if (oi >= 0 && (bi < 0 || ov > bv || (ov == bv && oi < bi))) {
                bv = ov;
                bi = oi;
            }
        }
        __syncthreads();
        if (lane == 0) {
            bestValue[warp] = bv;
            bestIndex[warp] = bi;
        }
        __syncthreads();
        if (warp == 0) {
            bv = lane < warps ? bestValue[lane] : -INFINITY;
            bi = lane < warps ? bestIndex[lane] : -1;
            for (int o = 16; o > 0; o >>= 1) {
                const float ov = __shfl_xor_sync(ISTHMUS_FULL_MASK, bv, o);
                const int oi = __shfl_xor_sync(ISTHMUS_FULL_MASK, bi, o);
                if (oi >= 0 && (bi < 0 || ov > bv || (ov == bv && oi < bi))) {
                    bv = ov;
                    bi = oi;
                }
            }
            if (lane == 0) {
                out[r] = bi;
            }
        }
    }
}
ISTHMUS_EXPORT(isthmus_argmax)
