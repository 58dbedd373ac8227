// ATTENTION: fused scaled-dot-product attention over a paged KV cache (flash attention with an online softmax;
// the scores are never written to global memory), for a batch of query rows of several sequences at different
// positions (prefill, decode and mixed batches), with GQA/MQA, causal and sliding-window masks, ALiBi and
// logit soft-capping. With splits > 1 the keys of each row are cut into `splits` ranges processed by different
// blocks ("flash decoding"), whose partial results isthmus_attention_combine merges.
//
// LAYOUT ASSUMED (dev.isthmus.api.KvLayout, vLLM's PagedAttention layout)
//   q:   F32 [n, heads, headDim]: head h of row i at q + i * qRowStride + h * qHeadStride (bytes), contiguous.
//   k,v: caches [slots, kvHeads, headDim] of the kernel's dtype (F32, F16 or BF16): KV head g of slot s at
//        base + s * slotStride + g * headStride (bytes), headDim contiguous elements.
//   out: F32 [n, heads, headDim] like q; must not alias q.
//   querySeq[i], queryPos[i]: sequence and position of query row i (int32, device).
//   contextLen[s]: positions in the cache of sequence s; tableOffset[s]: where its block table starts in
//   `tables` (all block tables concatenated). Position j of sequence s lives in slot
//   tables[tableOffset[s] + j / blockSize] * blockSize + j % blockSize.
//   Query head h reads KV head h / (heads / kvHeads). Key position j is visible to a query at position p if
//   j < contextLen, (!causal || j <= p) and (window == 0 || j > p - window): the range [lo, hi) with
//   lo = window > 0 ? max(0, p - window + 1) : 0 and hi = causal ? min(p + 1, contextLen) : contextLen.
//   Score = scale * q.k; then softcap * tanh(score / softcap) if softcap > 0; then + alibi[h] * (j - p) if
//   alibi != NULL. Output = softmax-weighted sum of the visible values.
//   partial (splits > 1 only): F32 [n, heads, splits, headDim + 2]: the unnormalized output, then the running
//   max and the running sum of each split.
//
// GEOMETRY (dev.isthmus.backend.cuda.LaunchGeometry.attention)
//   blockDim.x = 128. A block handles one query row i (grid y, grid-stride), `headsPerBlock` query heads of one
//   KV head (grid x = kvHeads * ceil(G / headsPerBlock), G = heads / kvHeads, so a K/V tile is loaded once for
//   all the query heads that share it) and one key range (grid z = splits). Keys are processed in tiles of
//   `tileKeys` (<= 32) positions. Every thread owns up to ATT_ACC outputs (headsPerBlock * headDim <= 128 *
//   ATT_ACC). Dynamic shared memory, in floats:
//     headsPerBlock * headDim              the query heads
//   + 32 * (headDim + 1)                   the K tile, then the V tile (rows padded against bank conflicts)
//   + headsPerBlock * 32                   scores, then probabilities, of the tile
//   + 3 * headsPerBlock                    running max, running sum, correction of the tile
#include "include/isthmus_common.cuh"

#define ATT_TILE 32
#define ATT_ACC 16

namespace isthmus {

// KV element type: 0 = F32, 1 = F16, 2 = BF16.
template <int KV>
ISTHMUS_DEVICE float kv_load(const unsigned char* p, int d) {
    if (KV == 0) {
        return reinterpret_cast<const float*>(p)[d];
    } else if (KV == 1) {
        return f16_to_f32(reinterpret_cast<const unsigned short*>(p)[d]);
    } else {
        return bf16_to_f32(reinterpret_cast<const unsigned short*>(p)[d]);
    }
}

template <int KV>
ISTHMUS_DEVICE void attention(const unsigned char* q, long long qRowStride, long long qHeadStride,
                              const unsigned char* k, long long kSlotStride, long long kHeadStride,
                              const unsigned char* v, long long vSlotStride, long long vHeadStride,
                              unsigned char* out, long long oRowStride, long long oHeadStride,
                              const int* querySeq, const int* queryPos, const int* contextLen,
                              const int* tableOffset, const int* tables, int n, int heads, int kvHeads,
                              int headDim, int headsPerBlock, int tileKeys, int blockSize, float scale, int causal,
                              int window, const float* alibi, float softcap, int splits, float* partial) {
    const int G = heads / kvHeads;
    const int groupBlocks = (G + headsPerBlock - 1) / headsPerBlock;
    const int kvh = blockIdx.x / groupBlocks;
    const int h0 = kvh * G + (blockIdx.x % groupBlocks) * headsPerBlock;
    const int nh = imin(headsPerBlock, kvh * G + G - h0);
    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int warps = blockDim.x >> 5;
    const int hdp = headDim + 1;

    float* qs = reinterpret_cast<float*>(ISTHMUS_DYNAMIC_SHARED());
    float* tile = qs + headsPerBlock * headDim;
    float* P = tile + ATT_TILE * hdp;
    float* mS = P + headsPerBlock * ATT_TILE;
    float* lS = mS + headsPerBlock;
    float* cS = lS + headsPerBlock;

    for (int i = blockIdx.y; i < n; i += gridDim.y) {
        const int seq = querySeq[i];
        const int p = queryPos[i];
        const int ctx = contextLen[seq];
        const int hi = causal ? imin(p + 1, ctx) : ctx;
        const int lo = window > 0 ? imax(0, p - window + 1) : 0;
        const int per = (hi - lo + splits - 1) / splits;
        const int s0 = lo + (int)blockIdx.z * per;
        const int s1 = imin(hi, s0 + per);
        const int* table = tables + tableOffset[seq];

        __syncthreads();  // the previous row is completely done with shared memory
        for (int idx = tid; idx < nh * headDim; idx += blockDim.x) {
            const int hh = idx / headDim;
            const int d = idx % headDim;
            qs[hh * headDim + d] = reinterpret_cast<const float*>(
                    q + (long long)i * qRowStride + (long long)(h0 + hh) * qHeadStride)[d];
        }
        if (tid < nh) {
            mS[tid] = -INFINITY;
            lS[tid] = 0.0f;
        }
        float acc[ATT_ACC];
#pragma unroll
        for (int r = 0; r < ATT_ACC; r++) {
            acc[r] = 0.0f;
        }

        for (int t0 = s0; t0 < s1; t0 += tileKeys) {
            const int tk = imin(tileKeys, s1 - t0);
            __syncthreads();  // qs, mS ready; the previous tile's V is no longer read
            for (int idx = tid; idx < tk * headDim; idx += blockDim.x) {
                const int j = idx / headDim;
                const int d = idx % headDim;
                const int pos = t0 + j;
                const long long slot = (long long)table[pos / blockSize] * blockSize + pos % blockSize;
                tile[j * hdp + d] = kv_load<KV>(k + slot * kSlotStride + (long long)kvh * kHeadStride, d);
            }
            __syncthreads();
            for (int idx = tid; idx < nh * ATT_TILE; idx += blockDim.x) {
                const int hh = idx / ATT_TILE;
                const int j = idx % ATT_TILE;
                float s = -INFINITY;
                if (j < tk) {
                    const float* qh = qs + hh * headDim;
                    const float* kj = tile + j * hdp;
                    float dot = 0.0f;
                    for (int d = 0; d < headDim; d++) {
                        dot += qh[d] * kj[d];
                    }
                    s = scale * dot;
                    if (softcap > 0.0f) {
                        s = softcap * tanhf(s / softcap);
                    }
                    if (alibi) {
                        s += alibi[h0 + hh] * (float)(t0 + j - p);
                    }
                }
                P[hh * ATT_TILE + j] = s;
            }
            __syncthreads();
            for (int hh = warp; hh < nh; hh += warps) {  // warp-uniform loop: every lane takes part
                const float mOld = mS[hh];
                const float s = P[hh * ATT_TILE + lane];
                const float mNew = fmaxf(mOld, warp_max(s));
                const float e = s == -INFINITY ? 0.0f : expf(s - mNew);
                const float sum = warp_sum(e);
                P[hh * ATT_TILE + lane] = e;
                __syncwarp();  // every lane has read mS[hh] before lane 0 overwrites it
                if (lane == 0) {
                    const float corr = mOld == -INFINITY ? 0.0f : expf(mOld - mNew);
                    lS[hh] = lS[hh] * corr + sum;
                    mS[hh] = mNew;
                    cS[hh] = corr;
                }
            }
            __syncthreads();  // K tile no longer needed: load V into the same buffer
            for (int idx = tid; idx < tk * headDim; idx += blockDim.x) {
                const int j = idx / headDim;
                const int d = idx % headDim;
                const int pos = t0 + j;
                const long long slot = (long long)table[pos / blockSize] * blockSize + pos % blockSize;
                tile[j * hdp + d] = kv_load<KV>(v + slot * vSlotStride + (long long)kvh * vHeadStride, d);
            }
            __syncthreads();
#pragma unroll
            for (int r = 0; r < ATT_ACC; r++) {
                const int o = tid + r * blockDim.x;
                if (o < nh * headDim) {
                    const int hh = o / headDim;
                    const int d = o % headDim;
                    float a = acc[r] * cS[hh];
                    const float* ph = P + hh * ATT_TILE;
                    for (int j = 0; j < tk; j++) {
                        a += ph[j] * tile[j * hdp + d];
                    }
                    acc[r] = a;
                }
            }
        }
        __syncthreads();  // mS, lS final (and written when the range was empty)
#pragma unroll
        for (int r = 0; r < ATT_ACC; r++) {
            const int o = tid + r * blockDim.x;
            if (o < nh * headDim) {
                const int hh = o / headDim;
                const int d = o % headDim;
                if (splits == 1) {
                    const float l = lS[hh];
                    reinterpret_cast<float*>(out + (long long)i * oRowStride + (long long)(h0 + hh) * oHeadStride)[d] =
                            l > 0.0f ? acc[r] / l : 0.0f;
                } else {
                    float* part = partial + (((long long)i * heads + h0 + hh) * splits + blockIdx.z) * (headDim + 2);
                    part[d] = acc[r];
                    if (d == 0) {
                        part[headDim] = mS[hh];
                        part[headDim + 1] = lS[hh];
                    }
                }
            }
        }
    }
}

}  // namespace isthmus

#define ISTHMUS_ATTENTION(name, KV)                                                                              \
    extern "C" __global__ void isthmus_attention_##name(                                                        \
            const unsigned char* q, long long qRowStride, long long qHeadStride, const unsigned char* k,        \
            long long kSlotStride, long long kHeadStride, const unsigned char* v, long long vSlotStride,         \
            long long vHeadStride, unsigned char* out, long long oRowStride, long long oHeadStride,             \
            const int* querySeq, const int* queryPos, const int* contextLen, const int* tableOffset,            \
            const int* tables, int n, int heads, int kvHeads, int headDim, int headsPerBlock, int tileKeys,     \
            int blockSize, float scale, int causal, int window, const float* alibi, float softcap, int splits,  \
            float* partial) {                                                                                   \
        isthmus::attention<KV>(q, qRowStride, qHeadStride, k, kSlotStride, kHeadStride, v, vSlotStride,         \
                               vHeadStride, out, oRowStride, oHeadStride, querySeq, queryPos, contextLen,       \
                               tableOffset, tables, n, heads, kvHeads, headDim, headsPerBlock, tileKeys,        \
                               blockSize, scale, causal, window, alibi, softcap, splits, partial);              \
    }                                                                                                           \
    ISTHMUS_EXPORT(isthmus_attention_##name)

ISTHMUS_ATTENTION(f32, 0)
ISTHMUS_ATTENTION(f16, 1)
ISTHMUS_ATTENTION(bf16, 2)

// Merges the `splits` partial results of each (row, head):
//   M = max_s m_s;  out = sum_s acc_s exp(m_s - M) / sum_s l_s exp(m_s - M)
// GEOMETRY: one block per (row, head): gridDim.x = min(n * heads, 65535), grid-stride; blockDim.x = 128, threads
// loop over headDim.
extern "C" __global__ void isthmus_attention_combine(const float* partial, int n, int heads, int headDim, int splits,
                                                     unsigned char* out, long long oRowStride, long long oHeadStride) {
    for (int ih = blockIdx.x; ih < n * heads; ih += gridDim.x) {
        const int i = ih / heads;
        const int h = ih % heads;
        const float* base = partial + (long long)ih * splits * (headDim + 2);
        float m = -INFINITY;
        for (int s = 0; s < splits; s++) {
            m = fmaxf(m, base[s * (headDim + 2) + headDim]);
        }
        float l = 0.0f;
        for (int s = 0; s < splits; s++) {
            const float ms = base[s * (headDim + 2) + headDim];
            if (ms != -INFINITY) {
                l += base[s * (headDim + 2) + headDim + 1] * expf(ms - m);
            }
        }
        float* o = reinterpret_cast<float*>(out + (long long)i * oRowStride + (long long)h * oHeadStride);
        for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
            float a = 0.0f;
            for (int s = 0; s < splits; s++) {
                const float ms = base[s * (headDim + 2) + headDim];
                if (ms != -INFINITY) {
                    a += base[s * (headDim + 2) + d] * expf(ms - m);
                }
            }
            o[d] = l > 0.0f ? a / l : 0.0f;
        }
    }
}
ISTHMUS_EXPORT(isthmus_attention_combine)
