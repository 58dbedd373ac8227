// ROPE: rotary position embedding, in place.
//
// LAYOUT ASSUMED
//   x: F32 [n, heads, headDim]; head h of row t at x + t * rowStride + h * headStride (bytes), its headDim
//   elements contiguous and 4-byte aligned. positions: int32[n] on the device. freqFactors: float[dims / 2] on
//   the device, or NULL.
//   Pair i (i < dims/2) is (2i, 2i+1) when neox == 0 (NORMAL) and (i, i + dims/2) when neox != 0 (NEOX); it is
//   rotated by  angle = p * freqScale * theta^(-2i/dims) / freqFactors[i]:
//     (a, b) -> (a cos - b sin, a sin + b cos).
//   Dimensions from dims on are left as they are. The angle is computed in double precision: positions reach
//   the thousands, and a float angle would be off by ~1e-4 rad there.
//
// GEOMETRY (dev.isthmus.backend.cuda.LaunchGeometry.rope)
//   one block per (row, head): gridDim.x = min(n * heads, 65535), grid-stride;
//   blockDim.x = min(128, dims/2 rounded up to 32), threads loop over the pairs.
#include "include/isthmus_common.cuh"

extern "C" __global__ void isthmus_rope(unsigned char* x, long long rowStride, long long headStride, int n, int heads,
                                        int dims, const int* positions, float theta, float freqScale,
                                        const float* freqFactors, int neox) {
    const int half = dims / 2;
    for (int rh = blockIdx.x; rh < n * heads; rh += gridDim.x) {
        const int t = rh / heads;
        const int h = rh % heads;
        float* v = reinterpret_cast<float*>(x + (long long)t * rowStride + (long long)h * headStride);
        const double p = (double)positions[t];
        for (int i = threadIdx.x; i < half; i += blockDim.x) {
            const double freq = pow((double)theta, -2.0 * (double)i / (double)dims);
            const double factor = freqFactors ? (double)freqFactors[i] : 1.0;
            const double angle = p * (double)freqScale * freq / factor;
            double sd;
            double cd;
            sincos(angle, &sd, &cd);
            const float s = (float)sd;
            const float c = (float)cd;
            const int ia = neox ? i : 2 * i;
            const int ib = neox ? i + half : 2 * i + 1;
            const float a = v[ia];
            const float b = v[ib];
            v[ia] = a * c - b * s;
            v[ib] = a * s + b * c;
        }
    }
}
ISTHMUS_EXPORT(isthmus_rope)
