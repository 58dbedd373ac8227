/*
 * Isthmus CPU kernels: matrix products for AVX-512 + VNNI (x86-64), called from Java through FFM.
 *
 * Why C: the Java Vector API cannot express vpdpbusd (int8 x int8 dot products accumulated into int32), nor
 * F16C conversions. These kernels multiply quantized weights (Q8_0, Q4_0, Q4_K, Q6_K) with activations
 * quantized to 8 bits on the fly (isthmus_quantize), and F16 weights with F32 activations.
 *
 * Layouts (all little-endian, ggml block formats for weights):
 *   activations, kind 0 (for Q8_0, Q4_0 weights), one row of k elements, nb = k/32 blocks:
 *       int8 q[k] | float d[nb] | float sumf[nb] | int32 sumi[nb]          x[i] ~= d[i/32] * q[i]
 *   activations, kind 1 (for K-quants), ns = k/256 super-blocks:
 *       int8 q[k] | float d[ns] | int32 sum16[k/16] | float dsum32[k/32]   (dsum32 = d * sum of 32 q)
 *   rows start at multiples of 64 bytes (isthmus_quant_row_bytes).
 *
 * Two shapes of product:
 *   - few activation rows (decode): a fused dot product per weight row and activation row, decoding each
 *     weight block in registers (memory bound: every weight byte is read once);
 *   - many rows (prefill): weights are decoded one tile of 16 rows at a time into an interleaved layout
 *     (4 consecutive k of each of the 16 rows per 64-byte vector) so that one vpdpbusd against a broadcast
 *     of 4 activation bytes advances 16 output columns; the tile is reused by every activation row.
 *
 * Every entry point works on a range of weight rows [r0, r1) so that Java's worker pool calls it once per
 * range and thread, never per block.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define INLINE static inline __attribute__((always_inline))

/* dtype codes: mirrored in NativeCpu.java */
enum { DT_F16 = 1, DT_Q8_0 = 2, DT_Q4_0 = 3, DT_Q4_K = 4, DT_Q6_K = 5 };

#define TILE 16 /* weight rows per prefill tile = float lanes of a zmm */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 4096 /* decode kernels prefetch the weights this far ahead (measured: +30-50 % from DRAM) */
#endif
/*
 * Below this many activation rows, fused dot products instead of tiles (mirrored in NativeMatMul.java): for
 * Q8_0, Q4_0 and F16 up to 15 rows share each decoded weight block (verification of speculative proposals,
 * batched decoding of several sequences); the K-quants switch at 4.
 */
#define SMALL_N 16
#define SMALL_N_KQUANT 4
#define MAX_NJ 8 /* activation rows per pass of the multi-row dot products */

INLINE float fp16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

INLINE int32_t ld32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

INLINE uint32_t ldu32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^x for x <= 0 (and moderately positive x): 2^n * p(r), |r| <= ln2/2, degree-6 Taylor: rel. error < 2e-7. */
INLINE __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Activation quantization                                                                                */
/* ------------------------------------------------------------------------------------------------------ */

/* Start of the decode extension of a kind-0 row (see quantize_row0). */
INLINE int64_t ext0_offset(int k) {
    return ((int64_t) k + 12LL * (k / 32) + 63) & ~63LL;
}

EXPORT int64_t isthmus_quant_row_bytes(int kind, int k) {
    int ext = kind & 16;
    kind &= 15;
    int64_t bytes = kind == 0 ? ext0_offset(k) + (ext ? 320LL * (k / 64) : 0)
                              : (int64_t) k + 4LL * (k / 256) + 4LL * (k / 16) + 4LL * (k / 32);
    return (bytes + 63) & ~63LL;
}

/* 16 floats to 16 int8 with scale id; returns the int32 vector (for sums). */
INLINE __m512i quant16(const float *x, __m512 id, int8_t *q) {
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), id));
    _mm_storeu_si128((__m128i *) q, _mm512_cvtepi32_epi8(v));
    return v;
}

/*
 * Kind-0 rows also carry, for the decode kernels, per pair of blocks p (64 elements) at ext0_offset(k) + 192p:
 * int32 init8[16] and init128[16] (-8 and -128 times the sum of q of block 2p in lane 0 and of block 2p+1
 * in lane 8, zero elsewhere: the starting value of a vpdpbusd whose weights carry an offset of 8 or 128),
 * then float dxv[16] (d of block 2p in lanes 0-7, of block 2p+1 in lanes 8-15); then, for the 256-bit Q4_0
 * kernel, the pair's q reordered as [A0-15, B0-15, A16-31, B16-31] (64 bytes), int32 init8h[8] (-8 sums of A
 * in lane 0 and of B in lane 4) and float dxh[8] (d of A in lanes 0-3, of B in lanes 4-7).
 */
static void quantize_row0(const float *x, int k, uint8_t *dst, int ext) {
    int nb = k / 32;
    int8_t *q = (int8_t *) dst;
    float *d = (float *) (dst + k);
    float *sumf = d + nb;
    int32_t *sumi = (int32_t *) (sumf + nb);
    const __m512 signBit = _mm512_set1_ps(-0.0f);
    for (int b = 0; b < nb; b++) {
        const float *xb = x + 32 * b;
        __m512 a = _mm512_max_ps(_mm512_andnot_ps(signBit, _mm512_loadu_ps(xb)),
                                 _mm512_andnot_ps(signBit, _mm512_loadu_ps(xb + 16)));
        float amax = _mm512_reduce_max_ps(a);
        float db = amax / 127.0f;
        __m512 id = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
        __m512i s = _mm512_add_epi32(quant16(xb, id, q + 32 * b), quant16(xb + 16, id, q + 32 * b + 16));
        int32_t total = _mm512_reduce_add_epi32(s);
        d[b] = db;
        sumf[b] = (float) total;
        sumi[b] = total;
    }
    if (!ext) {
        return;
    }
    uint8_t *extension = dst + ext0_offset(k);
    for (int p = 0; p < nb / 2; p++) {
        int32_t *init8 = (int32_t *) (extension + 320 * p);
        int32_t *init128 = init8 + 16;
        float *dxv = (float *) (init128 + 16);
        memset(init8, 0, 128);
        init8[0] = -8 * sumi[2 * p];
        init8[8] = -8 * sumi[2 * p + 1];
        init128[0] = -128 * sumi[2 * p];
        init128[8] = -128 * sumi[2 * p + 1];
        for (int i = 0; i < 8; i++) {
            dxv[i] = d[2 * p];
            dxv[8 + i] = d[2 * p + 1];
        }
        int8_t *qh = (int8_t *) (dxv + 16);
        const int8_t *qa = q + 64 * p, *qb = qa + 32;
        memcpy(qh, qa, 16);
        memcpy(qh + 16, qb, 16);
        memcpy(qh + 32, qa + 16, 16);
        memcpy(qh + 48, qb + 16, 16);
        int32_t *init8h = (int32_t *) (qh + 64);
        memset(init8h, 0, 32);
        init8h[0] = -8 * sumi[2 * p];
        init8h[4] = -8 * sumi[2 * p + 1];
        float *dxh = (float *) (init8h + 8);
        for (int i = 0; i < 4; i++) {
            dxh[i] = d[2 * p];
            dxh[4 + i] = d[2 * p + 1];
        }
    }
}

static void quantize_row1(const float *x, int k, uint8_t *dst) {
    int ns = k / 256;
    int8_t *q = (int8_t *) dst;
    float *d = (float *) (dst + k);
    int32_t *sum16 = (int32_t *) (d + ns);
    float *dsum32 = (float *) (sum16 + k / 16);
    const __m512 signBit = _mm512_set1_ps(-0.0f);
    for (int s = 0; s < ns; s++) {
        const float *xs = x + 256 * s;
        __m512 a = _mm512_setzero_ps();
        for (int i = 0; i < 256; i += 16) {
            a = _mm512_max_ps(a, _mm512_andnot_ps(signBit, _mm512_loadu_ps(xs + i)));
        }
        float amax = _mm512_reduce_max_ps(a);
        float ds = amax / 127.0f;
        __m512 id = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
        d[s] = ds;
        for (int j = 0; j < 16; j++) {
            sum16[16 * s + j] = _mm512_reduce_add_epi32(quant16(xs + 16 * j, id, q + 256 * s + 16 * j));
        }
        for (int j = 0; j < 8; j++) {
            dsum32[8 * s + j] = ds * (float) (sum16[16 * s + 2 * j] + sum16[16 * s + 2 * j + 1]);
        }
    }
}

/*
 * Quantizes activation rows [r0, r1) of x (row stride xs bytes) into dst (row stride ds bytes). kind | 16
 * adds the decode extension of kind 0 (needed by the fused dot products, i.e. for fewer than 4 rows).
 */
EXPORT void isthmus_quantize(int kind, const uint8_t *x, int64_t xs, int r0, int r1, int k, uint8_t *dst,
                             int64_t ds) {
    for (int r = r0; r < r1; r++) {
        if ((kind & 15) == 0) {
            quantize_row0((const float *) (x + r * xs), k, dst + r * ds, kind & 16);
        } else {
            quantize_row1((const float *) (x + r * xs), k, dst + r * ds);
        }
    }
}

/* ------------------------------------------------------------------------------------------------------ */
/* Fused dot products (decode)                                                                            */
/* ------------------------------------------------------------------------------------------------------ */

/*
 * Decode kernels for Q8_0 and Q4_0 work on pairs of blocks in one zmm (lanes 0-7: first block, 8-15: second).
 * The weights get an unsigned offset (Q8_0: w ^ 0x80 = w + 128; Q4_0: the stored nibble = value + 8) and the
 * vpdpbusd starts from init = -offset * sum(x) of each block (precomputed with the activations), so the integer
 * result is exact. The two F16 scales come from one 64-byte load and one vpermw.
 *
 * Q4_0 uses 256-bit registers only (so port 1 stays available for vector work): a pair of blocks A, B is one
 * ymm [qs A | qs B]; its low nibbles [A0-15 | B0-15] and high nibbles [A16-31 | B16-31] meet the activations
 * reordered the same way in the decode extension, both vpdpbusd accumulating into lanes 0-3 (A) and 4-7 (B).
 *
 * A row's dot product is summed in the same order by every decode kernel (one accumulator per row along k,
 * then the odd last block), so its value does not depend on how many rows are computed together: a token's
 * logits are the same alone and in a batch of up to SMALL_N - 1 rows (speculative verification relies on it).
 */
/* vpermw index: word 0 (scale of a Q8_0 block) to lanes 0-7, word 17 (byte 34: the next block's) to lanes 8-15 */
#define Q8_0_PAIR_SCALES                                                                                          \
    _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 17, 17, 17, 17, 17, 17, 17, 0, 0, 0, 0, 0, \
                     0, 0, 0)

/* The 6-bit scales and mins of a Q4_K/Q5_K super-block, one per byte (sub-block j in byte j). */
INLINE void q4k_scales(const uint8_t *f, uint64_t *scales, uint64_t *mins) {
    uint32_t w0 = ldu32(f), w1 = ldu32(f + 4), w2 = ldu32(f + 8);
    uint32_t s1 = (w2 & 0x0F0F0F0Fu) | (((w0 >> 6) & 0x03030303u) << 4);
    uint32_t m1 = ((w2 >> 4) & 0x0F0F0F0Fu) | (((w1 >> 6) & 0x03030303u) << 4);
    *scales = (uint64_t) (w0 & 0x3F3F3F3Fu) | ((uint64_t) s1 << 32);
    *mins = (uint64_t) (w1 & 0x3F3F3F3Fu) | ((uint64_t) m1 << 32);
}

static float dot_q4_k(const uint8_t *w, const uint8_t *xrow, int k) {
    int ns = k / 256;
    const int8_t *xq = (const int8_t *) xrow;
    const float *xd = (const float *) (xrow + k);
    const float *dsum32 = (const float *) ((const int32_t *) (xd + ns) + k / 16);
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m512i zero = _mm512_setzero_si512();
    /* lanes 0-7: scale 2G, lanes 8-15: scale 2G+1 */
    const __m512i idx0 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i two = _mm512_set1_epi32(2);
    __m512 acc = _mm512_setzero_ps();
    __m256 accMin = _mm256_setzero_ps();
    for (int s = 0; s < ns; s++) {
        const uint8_t *blk = w + 144 * s;
        _mm_prefetch((const char *) (blk + PREFETCH_BYTES), _MM_HINT_T0);
        _mm_prefetch((const char *) (blk + PREFETCH_BYTES + 64), _MM_HINT_T0);
        _mm_prefetch((const char *) (blk + PREFETCH_BYTES + 128), _MM_HINT_T0);
        uint64_t sc, mn;
        q4k_scales(blk + 4, &sc, &mn);
        __m512i scz = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((int64_t) sc));
        __m512i isum = _mm512_setzero_si512();
        __m512i idx = idx0;
        const int8_t *xs = xq + 256 * s;
        for (int g = 0; g < 4; g++) {
            __m256i v = _mm256_loadu_si256((const __m256i *) (blk + 16 + 32 * g));
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, low)),
                                           _mm256_and_si256(_mm256_srli_epi16(v, 4), low), 1);
            __m512i dp = _mm512_dpbusd_epi32(zero, q, _mm512_loadu_si512(xs + 64 * g));
            isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(dp, _mm512_permutexvar_epi32(idx, scz)));
            idx = _mm512_add_epi32(idx, two);
        }
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(fp16(blk) * xd[s]), acc);
        __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((int64_t) mn)));
        accMin = _mm256_fmadd_ps(_mm256_mul_ps(mf, _mm256_loadu_ps(dsum32 + 8 * s)), _mm256_set1_ps(fp16(blk + 2)),
                                 accMin);
    }
    return _mm512_reduce_add_ps(acc) - hsum256(accMin);
}

/* The 6-bit values of half h (128 elements) of a Q6_K super-block: elements 0-63 and 64-127 of the half. */
INLINE void q6k_half(const uint8_t *blk, int h, __m512i *q12, __m512i *q34) {
    const __m512i low = _mm512_set1_epi8(0x0F);
    const __m512i high2 = _mm512_set1_epi8(0x30);
    const __m512i shift12 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shift34 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512i l = _mm512_loadu_si512(blk + 64 * h);
    __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *) (blk + 128 + 32 * h)));
    __m512i h12 = _mm512_and_si512(_mm512_sllv_epi16(hb, shift12), high2);
    __m512i h34 = _mm512_and_si512(_mm512_srlv_epi16(hb, shift34), high2);
    *q12 = _mm512_or_si512(_mm512_and_si512(l, low), h12);
    *q34 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low), h34);
}

static float dot_q6_k(const uint8_t *w, const uint8_t *xrow, int k) {
    int ns = k / 256;
    const int8_t *xq = (const int8_t *) xrow;
    const float *xd = (const float *) (xrow + k);
    const int32_t *sum16 = (const int32_t *) (xd + ns);
    const __m512i zero = _mm512_setzero_si512();
    /* lanes 4i..4i+3: scale c*4 + i */
    const __m512i idx0 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i four = _mm512_set1_epi32(4);
    __m512 acc = _mm512_setzero_ps();
    for (int s = 0; s < ns; s++) {
        const uint8_t *blk = w + 210 * s;
        const int8_t *xs = xq + 256 * s;
        for (int l = 0; l < 256; l += 64) {
            _mm_prefetch((const char *) (blk + PREFETCH_BYTES + l), _MM_HINT_T0);
        }
        __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) (blk + 192)));
        __m512i isum = _mm512_setzero_si512();
        __m512i idx = idx0;
        for (int h = 0; h < 2; h++) {
            __m512i q12, q34;
            q6k_half(blk, h, &q12, &q34);
            __m512i d12 = _mm512_dpbusd_epi32(zero, q12, _mm512_loadu_si512(xs + 128 * h));
            isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(d12, _mm512_permutexvar_epi32(idx, sc)));
            idx = _mm512_add_epi32(idx, four);
            __m512i d34 = _mm512_dpbusd_epi32(zero, q34, _mm512_loadu_si512(xs + 128 * h + 64));
            isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(d34, _mm512_permutexvar_epi32(idx, sc)));
            idx = _mm512_add_epi32(idx, four);
        }
        /* q - 32: subtract 32 * scale * sum(x) per 16 elements */
        __m512i corr = _mm512_mullo_epi32(sc, _mm512_loadu_si512(sum16 + 16 * s));
        isum = _mm512_sub_epi32(isum, _mm512_slli_epi32(corr, 5));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(fp16(blk + 208) * xd[s]), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/*
 * Decode kernels reading STREAMS weight rows at once, from STREAMS distant parts of the row range: one core
 * keeps more cache-line fills in flight across several sequential streams than along one (measured here on
 * Q8_0, 1.3 GB of weights: one thread 7.6-9 GB/s with one stream, 12-13.5 GB/s with four; two threads 14.5
 * and 21.5 GB/s). They cover whole pairs of blocks; the caller finishes an odd last block per row.
 */
#define STREAMS 4

/*
 * The steps every Q8_0 / Q4_0 decode kernel is a loop of: a pair of weight blocks (64 elements) decoded into
 * registers, then its product with the same pair of one activation row (kind 0, decode extension at ext)
 * accumulated. The four-stream and the multi-row kernels share them, which is what makes them sum a row
 * identically.
 */
typedef struct {
    __m512i u8;    /* the 64 weights + 128 */
    __m512 scale;  /* the first block's d in lanes 0-7, the second's in lanes 8-15 */
} q8_0_pair;

INLINE q8_0_pair q8_0_decode_pair(const uint8_t *a) {
    q8_0_pair w;
    w.u8 = _mm512_xor_si512(_mm512_set1_epi8((char) 0x80), _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *) (a + 2))),
            _mm256_loadu_si256((const __m256i *) (a + 36)), 1));
    w.scale = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(Q8_0_PAIR_SCALES,
                                                                               _mm512_loadu_si512(a))));
    return w;
}

INLINE __m512 q8_0_pair_fma(q8_0_pair w, const uint8_t *xr, int64_t ext, int p, __m512 acc) {
    const uint8_t *e = xr + ext + 320 * p;
    __m512i d = _mm512_dpbusd_epi32(_mm512_loadu_si512(e + 64), w.u8, _mm512_loadu_si512(xr + 64 * p));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(w.scale, _mm512_loadu_ps((const float *) (e + 128))),
                           acc);
}

typedef struct {
    __m256i lo, hi; /* nibbles [A0-15 | B0-15] and [A16-31 | B16-31] */
    __m256 scale;   /* A's d in lanes 0-3, B's in lanes 4-7 */
} q4_0_pair;

INLINE q4_0_pair q4_0_decode_pair(const uint8_t *a) {
    const __m256i low = _mm256_set1_epi8(0x0F);
    const __m256i scaleIdx = _mm256_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0);
    __m256i ya = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *) (a + 2))),
                                         _mm_loadu_si128((const __m128i *) (a + 20)), 1);
    q4_0_pair w;
    w.lo = _mm256_and_si256(ya, low);
    w.hi = _mm256_and_si256(_mm256_srli_epi16(ya, 4), low);
    w.scale = _mm256_cvtph_ps(_mm256_castsi256_si128(
            _mm256_permutexvar_epi16(scaleIdx, _mm256_loadu_si256((const __m256i *) a))));
    return w;
}

/* ext: the decode extension's 256-bit part, ext0_offset(k) + 192. */
INLINE __m256 q4_0_pair_fma(q4_0_pair w, const uint8_t *xr, int64_t ext, int p, __m256 acc) {
    const uint8_t *e = xr + ext + 320 * p;
    __m256i d = _mm256_dpbusd_epi32(_mm256_loadu_si256((const __m256i *) (e + 64)), w.lo,
                                    _mm256_loadu_si256((const __m256i *) e));
    d = _mm256_dpbusd_epi32(d, w.hi, _mm256_loadu_si256((const __m256i *) (e + 32)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_mul_ps(w.scale, _mm256_loadu_ps((const float *) (e + 96))),
                           acc);
}

static void dot4_q8_0(const uint8_t *const *wr, const uint8_t *xrow, int k, float *res) {
    int64_t ext = ext0_offset(k);
    __m512 acc[STREAMS];
    for (int s = 0; s < STREAMS; s++) {
        acc[s] = _mm512_setzero_ps();
    }
    for (int p = 0; p < k / 64; p++) {
#pragma GCC unroll 4
        for (int s = 0; s < STREAMS; s++) {
            const uint8_t *a = wr[s] + 68 * p;
            _mm_prefetch((const char *) (a + PREFETCH_BYTES), _MM_HINT_T0);
            acc[s] = q8_0_pair_fma(q8_0_decode_pair(a), xrow, ext, p, acc[s]);
        }
    }
    for (int s = 0; s < STREAMS; s++) {
        res[s] = _mm512_reduce_add_ps(acc[s]);
    }
}

static void dot4_q4_0(const uint8_t *const *wr, const uint8_t *xrow, int k, float *res) {
    int64_t ext = ext0_offset(k) + 192;
    __m256 acc[STREAMS];
    for (int s = 0; s < STREAMS; s++) {
        acc[s] = _mm256_setzero_ps();
    }
    for (int p = 0; p < k / 64; p++) {
#pragma GCC unroll 4
        for (int s = 0; s < STREAMS; s++) {
            const uint8_t *a = wr[s] + 36 * p;
            if ((p & 1) == 0) {
                _mm_prefetch((const char *) (a + PREFETCH_BYTES), _MM_HINT_T0);
            }
            acc[s] = q4_0_pair_fma(q4_0_decode_pair(a), xrow, ext, p, acc[s]);
        }
    }
    for (int s = 0; s < STREAMS; s++) {
        res[s] = hsum256(acc[s]);
    }
}

/* The odd last block of a Q8_0 / Q4_0 row, after dot4_*. */
static float last_block(int dtype, const uint8_t *wrow, const uint8_t *xrow, int k) {
    int b = k / 32 - 1;
    const int8_t *xq = (const int8_t *) xrow;
    const float *xd = (const float *) (xrow + k);
    const __m256i zero = _mm256_setzero_si256();
    if (dtype == DT_Q8_0) {
        const uint8_t *w0 = wrow + 34 * b;
        __m256i wv0 = _mm256_loadu_si256((const __m256i *) (w0 + 2));
        __m256i xv0 = _mm256_loadu_si256((const __m256i *) (xq + 32 * b));
        __m256i d0 = _mm256_dpbusd_epi32(zero, _mm256_abs_epi8(wv0),
                                         _mm256_mask_sub_epi8(xv0, _mm256_movepi8_mask(wv0), zero, xv0));
        return hsum256(_mm256_cvtepi32_ps(d0)) * fp16(w0) * xd[b];
    }
    const float *xsum = xd + k / 32;
    const uint8_t *w0 = wrow + 18 * b;
    __m128i v0 = _mm_loadu_si128((const __m128i *) (w0 + 2));
    __m256i q0 = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v0, 4), v0), _mm256_set1_epi8(0x0F));
    __m256i d0 = _mm256_dpbusd_epi32(zero, q0, _mm256_loadu_si256((const __m256i *) (xq + 32 * b)));
    return fp16(w0) * xd[b] * (hsum256(_mm256_cvtepi32_ps(d0)) - 8.0f * xsum[b]);
}

/*
 * Multi-row dot products: one weight row against nj <= MAX_NJ activation rows, each weight block decoded once
 * and used nj times (the single-row kernels decode it per activation row). NJ is a compile-time constant in
 * each instantiation so the accumulators stay in registers.
 */
INLINE void dotn_q8_0_impl(const uint8_t *w, const uint8_t *xq, int64_t xqs, int k, float *res, const int NJ) {
    int64_t ext = ext0_offset(k);
    __m512 acc[MAX_NJ];
    for (int j = 0; j < NJ; j++) {
        acc[j] = _mm512_setzero_ps();
    }
    for (int p = 0; p < k / 64; p++) {
        const uint8_t *a = w + 68 * p;
        _mm_prefetch((const char *) (a + PREFETCH_BYTES), _MM_HINT_T0);
        q8_0_pair wp = q8_0_decode_pair(a);
        for (int j = 0; j < NJ; j++) {
            acc[j] = q8_0_pair_fma(wp, xq + j * xqs, ext, p, acc[j]);
        }
    }
    for (int j = 0; j < NJ; j++) {
        res[j] = _mm512_reduce_add_ps(acc[j]);
    }
}

INLINE void dotn_q4_0_impl(const uint8_t *w, const uint8_t *xq, int64_t xqs, int k, float *res, const int NJ) {
    int64_t ext = ext0_offset(k) + 192;
    __m256 acc[MAX_NJ];
    for (int j = 0; j < NJ; j++) {
        acc[j] = _mm256_setzero_ps();
    }
    for (int p = 0; p < k / 64; p++) {
        const uint8_t *a = w + 36 * p;
        if ((p & 1) == 0) {
            _mm_prefetch((const char *) (a + PREFETCH_BYTES), _MM_HINT_T0);
        }
        q4_0_pair wp = q4_0_decode_pair(a);
        for (int j = 0; j < NJ; j++) {
            acc[j] = q4_0_pair_fma(wp, xq + j * xqs, ext, p, acc[j]);
        }
    }
    for (int j = 0; j < NJ; j++) {
        res[j] = hsum256(acc[j]);
    }
}

/*
 * The end of every F16 decode dot product, from element i (a multiple of 32, where the two FMA chains over even
 * and odd 16-element chunks stop): one more chunk into the even chain if there is one, the chains added, the
 * rest one element at a time.
 */
INLINE float f16_finish(const uint16_t *h, const float *x, int i, int k, __m512 acc0, __m512 acc1) {
    if (i + 16 <= k) {
        acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (h + i))), _mm512_loadu_ps(x + i),
                               acc0);
        i += 16;
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < k; i++) {
        sum += _cvtsh_ss(h[i]) * x[i];
    }
    return sum;
}

INLINE void dotn_f16_impl(const uint8_t *w, const uint8_t *xf, int64_t xfs, int k, float *res, const int NJ) {
    const uint16_t *h = (const uint16_t *) w;
    __m512 acc0[MAX_NJ], acc1[MAX_NJ];
    for (int j = 0; j < NJ; j++) {
        acc0[j] = _mm512_setzero_ps();
        acc1[j] = _mm512_setzero_ps();
    }
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        _mm_prefetch((const char *) (h + i) + PREFETCH_BYTES, _MM_HINT_T0);
        __m512 w0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (h + i)));
        __m512 w1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (h + i + 16)));
        for (int j = 0; j < NJ; j++) {
            const float *x = (const float *) (xf + j * xfs) + i;
            acc0[j] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), acc0[j]);
            acc1[j] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), acc1[j]);
        }
    }
    for (int j = 0; j < NJ; j++) {
        res[j] = f16_finish(h, (const float *) (xf + j * xfs), i, k, acc0[j], acc1[j]);
    }
}

#define DOTN_CASES(IMPL, ...)                                                                                    \
    switch (nj) {                                                                                                \
        case 1: IMPL(__VA_ARGS__, 1); break;                                                                     \
        case 2: IMPL(__VA_ARGS__, 2); break;                                                                     \
        case 3: IMPL(__VA_ARGS__, 3); break;                                                                     \
        case 4: IMPL(__VA_ARGS__, 4); break;                                                                     \
        case 5: IMPL(__VA_ARGS__, 5); break;                                                                     \
        case 6: IMPL(__VA_ARGS__, 6); break;                                                                     \
        case 7: IMPL(__VA_ARGS__, 7); break;                                                                     \
        default: IMPL(__VA_ARGS__, 8); break;                                                                    \
    }

/* Weight rows [r0, r1) of a Q8_0 / Q4_0 / F16 matrix against n < SMALL_N activation rows, MAX_NJ at a time. */
static void matmul_rows(int dtype, const uint8_t *w, int64_t ws, int r0, int r1, const uint8_t *xq, int64_t xqs,
                        const uint8_t *xf, int64_t xfs, int n, int k, uint8_t *out, int64_t os) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *wr = w + r * ws;
        for (int j0 = 0; j0 < n; j0 += MAX_NJ) {
            int nj = n - j0 < MAX_NJ ? n - j0 : MAX_NJ;
            float res[MAX_NJ];
            if (dtype == DT_Q8_0) {
                DOTN_CASES(dotn_q8_0_impl, wr, xq + j0 * xqs, xqs, k, res)
            } else if (dtype == DT_Q4_0) {
                DOTN_CASES(dotn_q4_0_impl, wr, xq + j0 * xqs, xqs, k, res)
            } else {
                DOTN_CASES(dotn_f16_impl, wr, xf + j0 * xfs, xfs, k, res)
            }
            for (int j = 0; j < nj; j++) {
                if (dtype != DT_F16 && (k / 32) % 2) {
                    res[j] += last_block(dtype, wr, xq + (j0 + j) * xqs, k);
                }
                ((float *) (out + (j0 + j) * os))[r] = res[j];
            }
        }
    }
}

/* F16 rows in STREAMS streams, each row summed exactly as dotn_f16_impl sums it. */
static void dot4_f16(const uint8_t *const *wr, const float *x, int k, float *res) {
    __m512 acc0[STREAMS], acc1[STREAMS];
    for (int s = 0; s < STREAMS; s++) {
        acc0[s] = _mm512_setzero_ps();
        acc1[s] = _mm512_setzero_ps();
    }
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
#pragma GCC unroll 4
        for (int s = 0; s < STREAMS; s++) {
            const uint16_t *h = (const uint16_t *) wr[s] + i;
            _mm_prefetch((const char *) h + PREFETCH_BYTES, _MM_HINT_T0);
            acc0[s] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) h)), x0, acc0[s]);
            acc1[s] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (h + 16))), x1, acc1[s]);
        }
    }
    for (int s = 0; s < STREAMS; s++) {
        res[s] = f16_finish((const uint16_t *) wr[s], x, i, k, acc0[s], acc1[s]);
    }
}

/* Dot products of STREAMS Q8_0 / Q4_0 / F16 weight rows with one activation row, odd last block included. */
static void dot_streams(int dtype, const uint8_t *const *wr, const uint8_t *xrow, const float *xf, int k,
                        float *res) {
    if (dtype == DT_F16) {
        dot4_f16(wr, xf, k, res);
        return;
    }
    if (dtype == DT_Q8_0) {
        dot4_q8_0(wr, xrow, k, res);
    } else {
        dot4_q4_0(wr, xrow, k, res);
    }
    if ((k / 32) % 2) {
        for (int s = 0; s < STREAMS; s++) {
            res[s] += last_block(dtype, wr[s], xrow, k);
        }
    }
}

/* Rows [r0, r0 + STREAMS * len) of a Q8_0 / Q4_0 / F16 matrix times one activation row, as STREAMS
 * interleaved streams of len rows. */
static void matvec_streams(int dtype, const uint8_t *w, int64_t ws, int r0, int len, const uint8_t *xq,
                           const float *xf, int k, float *out) {
    for (int i = 0; i < len; i++) {
        const uint8_t *wr[STREAMS];
        int rows[STREAMS];
        for (int s = 0; s < STREAMS; s++) {
            rows[s] = r0 + s * len + i;
            wr[s] = w + rows[s] * ws;
        }
        float res[STREAMS];
        dot_streams(dtype, wr, xq, xf, k, res);
        for (int s = 0; s < STREAMS; s++) {
            out[rows[s]] = res[s];
        }
    }
}

/* ------------------------------------------------------------------------------------------------------ */
/* Prefill: weight tiles of 16 rows, interleaved                                                          */
/* ------------------------------------------------------------------------------------------------------ */

/*
 * Packed tile: pq[(e / 4) * 64 + r * 4 + e % 4] = unsigned 8-bit value of element e of row r (e < k),
 * followed by float scales pd (per 32 elements for Q8_0/Q4_0/Q4_K, per 16 for Q6_K; 16 rows per entry) and,
 * for Q4_K, the scaled minimums pm.
 */
/*
 * One 32-element block of each of the 16 rows of a tile (vals[r]: row r's 32 unsigned values) in the tile's
 * interleaved order from element e0 on: 8 vectors, vector i holding values 4i..4i+3 of rows 0-15. A transpose
 * of 16 x 8 dwords in registers: rows r and r + 8 share a vector, an 8 x 8 transpose runs in both 256-bit
 * halves at once, and two lane shuffles put each output's four 128-bit quarters (rows 0-3, 4-7, 8-11, 12-15)
 * in order. (Writing the 4-byte groups one by one made packing cost as much as 6 rows of the product.)
 */
INLINE void put_block16(uint8_t *pq, int e0, const __m256i *vals) {
    __m512i v[8], t[8], u[8];
    for (int r = 0; r < 8; r++) {
        v[r] = _mm512_inserti64x4(_mm512_castsi256_si512(vals[r]), vals[r + 8], 1);
    }
    for (int r = 0; r < 8; r += 2) {
        t[r] = _mm512_unpacklo_epi32(v[r], v[r + 1]);     /* per 128-bit lane: dwords 0, 1 (4, 5) of rows r, r+1 */
        t[r + 1] = _mm512_unpackhi_epi32(v[r], v[r + 1]); /* dwords 2, 3 (6, 7) */
    }
    for (int g = 0; g < 8; g += 4) {                     /* rows 0-3, then 4-7 (and 8-11, 12-15 in the high half) */
        u[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);     /* dword 0 of 4 rows; lane 1: dword 4 */
        u[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]); /* dword 1; 5 */
        u[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]); /* dword 2; 6 */
        u[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]); /* dword 3; 7 */
    }
    uint8_t *out = pq + (int64_t) (e0 / 4) * 64;
    for (int i = 0; i < 4; i++) {
        /* u[i]: [rows 0-3 | rows 0-3 | rows 8-11 | rows 8-11] dwords (i | i + 4 | i | i + 4); u[i + 4]: rows + 4 */
        __m512i lo = _mm512_shuffle_i32x4(u[i], u[i + 4], _MM_SHUFFLE(2, 0, 2, 0));
        __m512i hi = _mm512_shuffle_i32x4(u[i], u[i + 4], _MM_SHUFFLE(3, 1, 3, 1));
        _mm512_storeu_si512(out + 64 * i, _mm512_shuffle_i32x4(lo, lo, _MM_SHUFFLE(3, 1, 2, 0)));
        _mm512_storeu_si512(out + 64 * (i + 4), _mm512_shuffle_i32x4(hi, hi, _MM_SHUFFLE(3, 1, 2, 0)));
    }
}

static void pack_tile(int dtype, const uint8_t *w, int64_t ws, int nr, int k, uint8_t *pq, float *pd, float *pm) {
    if (dtype == DT_Q8_0 || dtype == DT_Q4_0) {
        for (int b = 0; b < k / 32; b++) {
            __m256i vals[TILE];
            for (int r = 0; r < TILE; r++) {
                if (r >= nr) {
                    vals[r] = _mm256_setzero_si256();
                    pd[16 * b + r] = 0;
                    continue;
                }
                const uint8_t *blk = w + r * ws + (dtype == DT_Q8_0 ? 34 : 18) * b;
                if (dtype == DT_Q8_0) {
                    vals[r] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (blk + 2)),
                                               _mm256_set1_epi8((char) 0x80));
                } else {
                    __m128i v = _mm_loadu_si128((const __m128i *) (blk + 2));
                    vals[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
                }
                pd[16 * b + r] = fp16(blk);
            }
            put_block16(pq, 32 * b, vals);
        }
        return;
    }
    /* K-quants: each row's super-block decoded to 256 values, then the tile's rows transposed 32 values at a time */
    uint8_t tmp[TILE][256] __attribute__((aligned(64)));
    int scales = dtype == DT_Q6_K ? 16 : 8; /* per super-block */
    for (int s = 0; s < k / 256; s++) {
        for (int r = 0; r < TILE; r++) {
            float *ds = pd + 16 * scales * s + r;
            if (r >= nr) {
                memset(tmp[r], 0, 256);
                for (int j = 0; j < scales; j++) {
                    ds[16 * j] = 0;
                    if (pm) {
                        pm[16 * (8 * s + j) + r] = 0;
                    }
                }
                continue;
            }
            if (dtype == DT_Q4_K) {
                const uint8_t *blk = w + r * ws + 144 * s;
                uint64_t sc, mn;
                q4k_scales(blk + 4, &sc, &mn);
                float d = fp16(blk), dmin = fp16(blk + 2);
                for (int g = 0; g < 4; g++) {
                    __m256i v = _mm256_loadu_si256((const __m256i *) (blk + 16 + 32 * g));
                    _mm256_store_si256((__m256i *) (tmp[r] + 64 * g), _mm256_and_si256(v, _mm256_set1_epi8(0x0F)));
                    _mm256_store_si256((__m256i *) (tmp[r] + 64 * g + 32),
                                       _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)));
                }
                for (int j = 0; j < 8; j++) {
                    ds[16 * j] = d * (float) ((sc >> (8 * j)) & 0xFF);
                    pm[16 * (8 * s + j) + r] = dmin * (float) ((mn >> (8 * j)) & 0xFF);
                }
            } else {
                const uint8_t *blk = w + r * ws + 210 * s;
                for (int h = 0; h < 2; h++) {
                    __m512i q12, q34;
                    q6k_half(blk, h, &q12, &q34);
                    _mm512_store_si512(tmp[r] + 128 * h, q12);
                    _mm512_store_si512(tmp[r] + 128 * h + 64, q34);
                }
                float d = fp16(blk + 208);
                for (int j = 0; j < 16; j++) {
                    ds[16 * j] = d * (float) (int8_t) blk[192 + j];
                }
            }
        }
        for (int g = 0; g < 8; g++) {
            __m256i vals[TILE];
            for (int r = 0; r < TILE; r++) {
                vals[r] = _mm256_load_si256((const __m256i *) (tmp[r] + 32 * g));
            }
            put_block16(pq, 256 * s + 32 * g, vals);
        }
    }
}

#define NX_B32 8 /* activation rows per microkernel call, Q8_0/Q4_0 */
#define NX_K 4   /* K-quants (more live registers per row) */
#define NX_F16 6

/* Q8_0 / Q4_0 tile times nx activation rows: u8 weights (value + off) against s8 activations. */
INLINE void mk_b32(const uint8_t *pq, const float *pd, int k, const uint8_t *x, int64_t xs, int nx, int off,
                   float *out, int64_t os, __mmask16 mask) {
    int nb = k / 32;
    __m512 acc[NX_B32];
    const int8_t *xq[NX_B32];
    const float *xd[NX_B32];
    const int32_t *xsum[NX_B32];
    for (int j = 0; j < nx; j++) {
        acc[j] = _mm512_setzero_ps();
        xq[j] = (const int8_t *) (x + j * xs);
        xd[j] = (const float *) (x + j * xs + k);
        xsum[j] = (const int32_t *) (xd[j] + 2 * nb);
    }
    for (int b = 0; b < nb; b++) {
        const uint8_t *p = pq + 512 * b;
        __m512i w0 = _mm512_load_si512(p), w1 = _mm512_load_si512(p + 64);
        __m512i w2 = _mm512_load_si512(p + 128), w3 = _mm512_load_si512(p + 192);
        __m512i w4 = _mm512_load_si512(p + 256), w5 = _mm512_load_si512(p + 320);
        __m512i w6 = _mm512_load_si512(p + 384), w7 = _mm512_load_si512(p + 448);
        __m512 dw = _mm512_load_ps(pd + 16 * b);
        for (int j = 0; j < nx; j++) {
            const int8_t *q = xq[j] + 32 * b;
            __m512i s0 = _mm512_set1_epi32(-off * xsum[j][b]);
            __m512i s1 = _mm512_setzero_si512();
            s0 = _mm512_dpbusd_epi32(s0, w0, _mm512_set1_epi32(ld32(q)));
            s1 = _mm512_dpbusd_epi32(s1, w1, _mm512_set1_epi32(ld32(q + 4)));
            s0 = _mm512_dpbusd_epi32(s0, w2, _mm512_set1_epi32(ld32(q + 8)));
            s1 = _mm512_dpbusd_epi32(s1, w3, _mm512_set1_epi32(ld32(q + 12)));
            s0 = _mm512_dpbusd_epi32(s0, w4, _mm512_set1_epi32(ld32(q + 16)));
            s1 = _mm512_dpbusd_epi32(s1, w5, _mm512_set1_epi32(ld32(q + 20)));
            s0 = _mm512_dpbusd_epi32(s0, w6, _mm512_set1_epi32(ld32(q + 24)));
            s1 = _mm512_dpbusd_epi32(s1, w7, _mm512_set1_epi32(ld32(q + 28)));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(xd[j][b])), acc[j]);
        }
    }
    for (int j = 0; j < nx; j++) {
        _mm512_mask_storeu_ps(out + j * os, mask, acc[j]);
    }
}

INLINE void mk_q4k(const uint8_t *pq, const float *pd, const float *pm, int k, const uint8_t *x, int64_t xs, int nx,
                   float *out, int64_t os, __mmask16 mask) {
    int ns = k / 256;
    __m512 acc[NX_K], sub[NX_K];
    const int8_t *xq[NX_K];
    const float *xd[NX_K];
    const float *dsum32[NX_K];
    for (int j = 0; j < nx; j++) {
        acc[j] = _mm512_setzero_ps();
        xq[j] = (const int8_t *) (x + j * xs);
        xd[j] = (const float *) (x + j * xs + k);
        dsum32[j] = (const float *) ((const int32_t *) (xd[j] + ns) + k / 16);
    }
    for (int s = 0; s < ns; s++) {
        for (int j = 0; j < nx; j++) {
            sub[j] = _mm512_setzero_ps();
        }
        for (int c = 0; c < 8; c++) {
            int e = 256 * s + 32 * c;
            const uint8_t *p = pq + 16 * e;
            __m512i w0 = _mm512_load_si512(p), w1 = _mm512_load_si512(p + 64);
            __m512i w2 = _mm512_load_si512(p + 128), w3 = _mm512_load_si512(p + 192);
            __m512i w4 = _mm512_load_si512(p + 256), w5 = _mm512_load_si512(p + 320);
            __m512i w6 = _mm512_load_si512(p + 384), w7 = _mm512_load_si512(p + 448);
            __m512 dsc = _mm512_load_ps(pd + 16 * (e / 32));
            __m512 dmn = _mm512_load_ps(pm + 16 * (e / 32));
            for (int j = 0; j < nx; j++) {
                const int8_t *q = xq[j] + e;
                __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
                s0 = _mm512_dpbusd_epi32(s0, w0, _mm512_set1_epi32(ld32(q)));
                s1 = _mm512_dpbusd_epi32(s1, w1, _mm512_set1_epi32(ld32(q + 4)));
                s0 = _mm512_dpbusd_epi32(s0, w2, _mm512_set1_epi32(ld32(q + 8)));
                s1 = _mm512_dpbusd_epi32(s1, w3, _mm512_set1_epi32(ld32(q + 12)));
                s0 = _mm512_dpbusd_epi32(s0, w4, _mm512_set1_epi32(ld32(q + 16)));
                s1 = _mm512_dpbusd_epi32(s1, w5, _mm512_set1_epi32(ld32(q + 20)));
                s0 = _mm512_dpbusd_epi32(s0, w6, _mm512_set1_epi32(ld32(q + 24)));
                s1 = _mm512_dpbusd_epi32(s1, w7, _mm512_set1_epi32(ld32(q + 28)));
                sub[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), dsc, sub[j]);
                acc[j] = _mm512_fnmadd_ps(dmn, _mm512_set1_ps(dsum32[j][e / 32]), acc[j]);
            }
        }
        for (int j = 0; j < nx; j++) {
            acc[j] = _mm512_fmadd_ps(sub[j], _mm512_set1_ps(xd[j][s]), acc[j]);
        }
    }
    for (int j = 0; j < nx; j++) {
        _mm512_mask_storeu_ps(out + j * os, mask, acc[j]);
    }
}

INLINE void mk_q6k(const uint8_t *pq, const float *pd, int k, const uint8_t *x, int64_t xs, int nx, float *out,
                   int64_t os, __mmask16 mask) {
    int ns = k / 256;
    __m512 acc[NX_K], sub[NX_K];
    const int8_t *xq[NX_K];
    const float *xd[NX_K];
    const int32_t *sum16[NX_K];
    for (int j = 0; j < nx; j++) {
        acc[j] = _mm512_setzero_ps();
        xq[j] = (const int8_t *) (x + j * xs);
        xd[j] = (const float *) (x + j * xs + k);
        sum16[j] = (const int32_t *) (xd[j] + ns);
    }
    for (int s = 0; s < ns; s++) {
        for (int j = 0; j < nx; j++) {
            sub[j] = _mm512_setzero_ps();
        }
        for (int c = 0; c < 16; c += 2) {
            int e = 256 * s + 16 * c;
            const uint8_t *p = pq + 16 * e;
            __m512i w0 = _mm512_load_si512(p), w1 = _mm512_load_si512(p + 64);
            __m512i w2 = _mm512_load_si512(p + 128), w3 = _mm512_load_si512(p + 192);
            __m512i w4 = _mm512_load_si512(p + 256), w5 = _mm512_load_si512(p + 320);
            __m512i w6 = _mm512_load_si512(p + 384), w7 = _mm512_load_si512(p + 448);
            __m512 d0 = _mm512_load_ps(pd + 16 * (e / 16));
            __m512 d1 = _mm512_load_ps(pd + 16 * (e / 16 + 1));
            for (int j = 0; j < nx; j++) {
                const int8_t *q = xq[j] + e;
                __m512i s0 = _mm512_set1_epi32(-32 * sum16[j][e / 16]);
                __m512i s1 = _mm512_set1_epi32(-32 * sum16[j][e / 16 + 1]);
                s0 = _mm512_dpbusd_epi32(s0, w0, _mm512_set1_epi32(ld32(q)));
                s1 = _mm512_dpbusd_epi32(s1, w4, _mm512_set1_epi32(ld32(q + 16)));
                s0 = _mm512_dpbusd_epi32(s0, w1, _mm512_set1_epi32(ld32(q + 4)));
                s1 = _mm512_dpbusd_epi32(s1, w5, _mm512_set1_epi32(ld32(q + 20)));
                s0 = _mm512_dpbusd_epi32(s0, w2, _mm512_set1_epi32(ld32(q + 8)));
                s1 = _mm512_dpbusd_epi32(s1, w6, _mm512_set1_epi32(ld32(q + 24)));
                s0 = _mm512_dpbusd_epi32(s0, w3, _mm512_set1_epi32(ld32(q + 12)));
                s1 = _mm512_dpbusd_epi32(s1, w7, _mm512_set1_epi32(ld32(q + 28)));
                sub[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), d0, sub[j]);
                sub[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), d1, sub[j]);
            }
        }
        for (int j = 0; j < nx; j++) {
            acc[j] = _mm512_fmadd_ps(sub[j], _mm512_set1_ps(xd[j][s]), acc[j]);
        }
    }
    for (int j = 0; j < nx; j++) {
        _mm512_mask_storeu_ps(out + j * os, mask, acc[j]);
    }
}

/* F16 tile of 32 rows, converted to F32 and transposed: pf[e * 32 + r] (rows >= nr are zero). */
#define TILE_F16 32
#define F16_K_CHUNK 512
static void pack_f16(const uint8_t *w, int64_t ws, int nr, int k, float *pf) {
    float tmp[16] __attribute__((aligned(64)));
    for (int r = 0; r < TILE_F16; r++) {
        const uint16_t *h = (const uint16_t *) (w + r * ws);
        int e = 0;
        for (; e + 16 <= k; e += 16) {
            __m512 v = r < nr ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (h + e))) : _mm512_setzero_ps();
            _mm512_store_ps(tmp, v);
            for (int i = 0; i < 16; i++) {
                pf[(int64_t) (e + i) * TILE_F16 + r] = tmp[i];
            }
        }
        for (; e < k; e++) {
            pf[(int64_t) e * TILE_F16 + r] = r < nr ? _cvtsh_ss(h[e]) : 0.0f;
        }
    }
}

/* 32 weight rows (two zmm) times nx activation rows: 2 loads and nx broadcasts feed 2 * nx FMAs per k. */
INLINE void mk_f16(const float *pf, int k, const float *x, int64_t xs, int nx, float *out, int64_t os,
                   __mmask16 mask0, __mmask16 mask1, int accumulate) {
    __m512 acc0[NX_F16], acc1[NX_F16];
    for (int j = 0; j < nx; j++) {
        acc0[j] = _mm512_setzero_ps();
        acc1[j] = _mm512_setzero_ps();
    }
    for (int e = 0; e < k; e++) {
        __m512 w0 = _mm512_load_ps(pf + TILE_F16 * (int64_t) e);
        __m512 w1 = _mm512_load_ps(pf + TILE_F16 * (int64_t) e + 16);
        for (int j = 0; j < nx; j++) {
            __m512 xv = _mm512_set1_ps(x[j * xs + e]);
            acc0[j] = _mm512_fmadd_ps(w0, xv, acc0[j]);
            acc1[j] = _mm512_fmadd_ps(w1, xv, acc1[j]);
        }
    }
    for (int j = 0; j < nx; j++) {
        if (accumulate) {
            acc0[j] = _mm512_add_ps(acc0[j], _mm512_maskz_loadu_ps(mask0, out + j * os));
            acc1[j] = _mm512_add_ps(acc1[j], _mm512_maskz_loadu_ps(mask1, out + j * os + 16));
        }
        _mm512_mask_storeu_ps(out + j * os, mask0, acc0[j]);
        _mm512_mask_storeu_ps(out + j * os + 16, mask1, acc1[j]);
    }
}

/* Microkernel dispatch with nx a compile-time constant in each branch. */
#define NX_MIN(N, MAX) ((N) < (MAX) ? (N) : (MAX))
#define NX_CASES(MAX, CALL) \
    switch (nx) { \
        case 1: CALL(NX_MIN(1, MAX)); break; case 2: CALL(NX_MIN(2, MAX)); break; \
        case 3: CALL(NX_MIN(3, MAX)); break; case 4: CALL(NX_MIN(4, MAX)); break; \
        case 5: CALL(NX_MIN(5, MAX)); break; case 6: CALL(NX_MIN(6, MAX)); break; \
        case 7: CALL(NX_MIN(7, MAX)); break; default: CALL(NX_MIN(8, MAX)); break; \
    }

static void tile_b32(const uint8_t *pq, const float *pd, int k, const uint8_t *x, int64_t xs, int n, int off,
                     float *out, int64_t os, __mmask16 mask) {
    for (int j0 = 0; j0 < n; j0 += NX_B32) {
        int nx = n - j0 < NX_B32 ? n - j0 : NX_B32;
        const uint8_t *xj = x + j0 * xs;
        float *oj = out + j0 * os;
#define CALL_B32(N) mk_b32(pq, pd, k, xj, xs, N, off, oj, os, mask)
        NX_CASES(NX_B32, CALL_B32)
    }
}

static void tile_q4k(const uint8_t *pq, const float *pd, const float *pm, int k, const uint8_t *x, int64_t xs, int n,
                     float *out, int64_t os, __mmask16 mask) {
    for (int j0 = 0; j0 < n; j0 += NX_K) {
        int nx = n - j0 < NX_K ? n - j0 : NX_K;
        const uint8_t *xj = x + j0 * xs;
        float *oj = out + j0 * os;
#define CALL_Q4K(N) mk_q4k(pq, pd, pm, k, xj, xs, N, oj, os, mask)
        NX_CASES(NX_K, CALL_Q4K)
    }
}

static void tile_q6k(const uint8_t *pq, const float *pd, int k, const uint8_t *x, int64_t xs, int n, float *out,
                     int64_t os, __mmask16 mask) {
    for (int j0 = 0; j0 < n; j0 += NX_K) {
        int nx = n - j0 < NX_K ? n - j0 : NX_K;
        const uint8_t *xj = x + j0 * xs;
        float *oj = out + j0 * os;
#define CALL_Q6K(N) mk_q6k(pq, pd, k, xj, xs, N, oj, os, mask)
        NX_CASES(NX_K, CALL_Q6K)
    }
}

static void tile_f16(const float *pf, int k, const float *x, int64_t xs, int n, float *out, int64_t os,
                     __mmask16 mask0, __mmask16 mask1, int accumulate) {
    for (int j0 = 0; j0 < n; j0 += NX_F16) {
        int nx = n - j0 < NX_F16 ? n - j0 : NX_F16;
        const float *xj = x + j0 * xs;
        float *oj = out + j0 * os;
#define CALL_F16(N) mk_f16(pf, k, xj, xs, N, oj, os, mask0, mask1, accumulate)
        NX_CASES(NX_F16, CALL_F16)
    }
}

/* ------------------------------------------------------------------------------------------------------ */
/* Entry points                                                                                           */
/* ------------------------------------------------------------------------------------------------------ */

/* Bytes of per-thread scratch isthmus_matmul needs for this k (64-byte aligned by the caller). */
EXPORT int64_t isthmus_matmul_scratch_bytes(int dtype, int k) {
    (void) dtype;
    return 128LL * k + 64; /* F16: 32 rows of F32; int8 tiles: 16k + 8k bytes */
}

/*
 * out[j, r] = x[j, :] . w[r, :] for activation rows j < n and weight rows r0 <= r < r1.
 *   w: weight row 0 (row stride ws bytes);
 *   xq/xqs: quantized activations (isthmus_quantize, kind 0 for Q8_0/Q4_0, kind 1 for Q4_K/Q6_K);
 *   xf/xfs: F32 activations (F16 weights only); strides in bytes;
 *   out/os: output row 0, row stride in bytes; scratch: isthmus_matmul_scratch_bytes, 64-byte aligned.
 */
EXPORT void isthmus_matmul(int dtype, const uint8_t *w, int64_t ws, int r0, int r1, const uint8_t *xq, int64_t xqs,
                           const uint8_t *xf, int64_t xfs, int n, int k, uint8_t *out, int64_t os, uint8_t *scratch) {
    if (n == 1 && (dtype == DT_Q8_0 || dtype == DT_Q4_0 || dtype == DT_F16)) {
        int len = (r1 - r0) / STREAMS;
        matvec_streams(dtype, w, ws, r0, len, xq, (const float *) xf, k, (float *) out);
        r0 += STREAMS * len;
    }
    int kquant = dtype == DT_Q4_K || dtype == DT_Q6_K;
    if (n < SMALL_N && !kquant) {
        matmul_rows(dtype, w, ws, r0, r1, xq, xqs, xf, xfs, n, k, out, os);
        return;
    }
    if (n < SMALL_N_KQUANT && kquant) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *wr = w + r * ws;
            for (int j = 0; j < n; j++) {
                const uint8_t *xr = xq + j * xqs;
                ((float *) (out + j * os))[r] = dtype == DT_Q4_K ? dot_q4_k(wr, xr, k) : dot_q6_k(wr, xr, k);
            }
        }
        return;
    }
    int64_t osf = os / 4;
    if (dtype == DT_F16) {
        /* k in chunks, so that the chunk of all activation rows stays in L2 while it meets every tile */
        for (int kc = 0; kc < k; kc += F16_K_CHUNK) {
            int kl = k - kc < F16_K_CHUNK ? k - kc : F16_K_CHUNK;
            for (int t = r0; t < r1; t += TILE_F16) {
                int nr = r1 - t < TILE_F16 ? r1 - t : TILE_F16;
                uint32_t bits = nr == 32 ? 0xFFFFFFFFu : (1u << nr) - 1;
                pack_f16(w + t * ws + 2LL * kc, ws, nr, kl, (float *) scratch);
                tile_f16((const float *) scratch, kl, (const float *) xf + kc, xfs / 4, n, (float *) out + t, osf,
                         (__mmask16) bits, (__mmask16) (bits >> 16), kc > 0);
            }
        }
        return;
    }
    for (int t = r0; t < r1; t += TILE) {
        int nr = r1 - t < TILE ? r1 - t : TILE;
        __mmask16 mask = (__mmask16) ((1u << nr) - 1);
        const uint8_t *wt = w + t * ws;
        float *ot = (float *) out + t;
        uint8_t *pq = scratch;
        float *pd = (float *) (scratch + 16LL * k);
        float *pm = pd + k / 2; /* Q4_K minimums: 16 * k/32 floats after pd */
        pack_tile(dtype, wt, ws, nr, k, pq, pd, dtype == DT_Q4_K ? pm : NULL);
        switch (dtype) {
            case DT_Q8_0: tile_b32(pq, pd, k, xq, xqs, n, 128, ot, osf, mask); break;
            case DT_Q4_0: tile_b32(pq, pd, k, xq, xqs, n, 8, ot, osf, mask); break;
            case DT_Q4_K: tile_q4k(pq, pd, pm, k, xq, xqs, n, ot, osf, mask); break;
            case DT_Q6_K: tile_q6k(pq, pd, k, xq, xqs, n, ot, osf, mask); break;
        }
    }
}

/* out[i] = silu(out[i]) * up[i] for count floats */
static void swiglu_epilogue(float *out, const float *up, int count) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 g = _mm512_loadu_ps(out + i);
        __m512 sig = _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(g, sig), _mm512_loadu_ps(up + i)));
    }
    if (i < count) {
        __mmask16 m = (__mmask16) ((1u << (count - i)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(m, out + i);
        __m512 sig = _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(g, sig), _mm512_maskz_loadu_ps(m, up + i)));
    }
}

/*
 * The SwiGLU feed-forward input for weight rows [r0, r1): out[j, r] = silu(x[j] . gate[r]) * (x[j] . up[r]).
 * up/us: F32 scratch with the shape of out (receives x . up[r] where the products are not fused). Arguments
 * otherwise as isthmus_matmul; gate and up share dtype and row stride. The thread that computes a range of
 * outputs also applies the activation to it, while the values are in its cache.
 */
EXPORT void isthmus_matmul_swiglu(int dtype, const uint8_t *gate, const uint8_t *up, int64_t ws, int r0, int r1,
                                  const uint8_t *xq, int64_t xqs, const uint8_t *xf, int64_t xfs, int n, int k,
                                  uint8_t *out, int64_t os, uint8_t *upOut, int64_t us, uint8_t *scratch) {
    if (n == 1 && (dtype == DT_Q8_0 || dtype == DT_Q4_0)) {
        /* two parts of the range, gate and up rows of each: STREAMS streams */
        int len = (r1 - r0) / 2;
        for (int i = 0; i < len; i++) {
            int ra = r0 + i, rb = r0 + len + i;
            const uint8_t *wr[STREAMS] = {gate + ra * ws, up + ra * ws, gate + rb * ws, up + rb * ws};
            for (int j = 0; j < n; j++) {
                float res[STREAMS];
                dot_streams(dtype, wr, xq + j * xqs, NULL, k, res);
                float *o = (float *) (out + j * os), *u = (float *) (upOut + j * us);
                o[ra] = res[0];
                u[ra] = res[1];
                o[rb] = res[2];
                u[rb] = res[3];
            }
        }
        for (int j = 0; j < n; j++) {
            swiglu_epilogue((float *) (out + j * os) + r0, (const float *) (upOut + j * us) + r0, 2 * len);
        }
        r0 += 2 * len;
        if (r0 == r1) {
            return;
        }
    }
    isthmus_matmul(dtype, gate, ws, r0, r1, xq, xqs, xf, xfs, n, k, out, os, scratch);
    isthmus_matmul(dtype, up, ws, r0, r1, xq, xqs, xf, xfs, n, k, upOut, us, scratch);
    for (int j = 0; j < n; j++) {
        swiglu_epilogue((float *) (out + j * os) + r0, (const float *) (upOut + j * us) + r0, r1 - r0);
    }
}

/* ------------------------------------------------------------------------------------------------------ */
/* Flash attention                                                                                        */
/* ------------------------------------------------------------------------------------------------------ */

#define ATT_KEYS 64 /* keys per tile */
#define ATT_QV 64   /* query vectors per run (rows x heads of one KV group) */

EXPORT int64_t isthmus_attention_scratch_bytes(int d, int dv) {
    return 4LL * (ATT_QV * d + ATT_KEYS * ATT_QV + ATT_KEYS * d + ATT_KEYS * dv + ATT_QV * dv + 6 * ATT_QV) + 6 * 64;
}

/* One cache row (F16 or F32) to F32. */
INLINE void row_to_f32(const uint8_t *src, int f16, int count, float *dst) {
    if (f16) {
        const uint16_t *h = (const uint16_t *) src;
        for (int i = 0; i < count; i += 16) {
            _mm512_store_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (h + i))));
        }
    } else {
        memcpy(dst, src, 4LL * count);
    }
}

INLINE float *align64f(uint8_t **p, int64_t floats) {
    float *r = (float *) *p;
    *p += (4 * floats + 63) & ~63LL;
    return r;
}

/*
 * Attention of query rows [row0, row0 + nr) (all of one sequence: same slot map) and the G query heads of KV
 * head kvh: the nr*G query vectors are processed together, so each key and value row is read and converted
 * once per group and tile. Scores are kept transposed (S[key][query vector]) so that the online softmax is
 * lane-parallel over query vectors.
 */
static void attend_run(const uint8_t *q, int64_t qRow, int64_t qHead, uint8_t *out, int64_t oRow, int64_t oHead,
                       const uint8_t *kc, int64_t kSlot, int64_t kHead, int kF16,
                       const uint8_t *vc, int64_t vSlot, int64_t vHead, int vF16,
                       int G, int kvh, int d, int dv, float scale, const int32_t *rowInfo, const int32_t *slotMap,
                       int row0, int nr, uint8_t *scratch) {
    int qv = nr * G;
    int qvp = (qv + 15) & ~15;
    uint8_t *p = (uint8_t *) (((uintptr_t) scratch + 63) & ~(uintptr_t) 63);
    float *qt = align64f(&p, (int64_t) d * qvp);
    float *s = align64f(&p, (int64_t) ATT_KEYS * qvp);
    float *kf = align64f(&p, (int64_t) ATT_KEYS * d);
    float *vf = align64f(&p, (int64_t) ATT_KEYS * dv);
    float *o = align64f(&p, (int64_t) qvp * dv);
    float *mv = align64f(&p, qvp);
    float *lv = align64f(&p, qvp);
    float *corr = align64f(&p, qvp);
    int32_t *firstv = (int32_t *) align64f(&p, qvp);
    int32_t *lastv = (int32_t *) align64f(&p, qvp);
    int slotBase = rowInfo[3 * row0];
    int kFirst = 1 << 30, kLast = -1;
    for (int v = 0; v < qvp; v++) {
        int i = v / G, g = v % G;
        if (v < qv) {
            const float *qr = (const float *) (q + (row0 + i) * qRow + (kvh * G + g) * qHead);
            for (int e = 0; e < d; e++) {
                qt[e * qvp + v] = qr[e] * scale;
            }
            firstv[v] = rowInfo[3 * (row0 + i) + 1];
            lastv[v] = rowInfo[3 * (row0 + i) + 2];
            if (firstv[v] < kFirst) kFirst = firstv[v];
            if (lastv[v] > kLast) kLast = lastv[v];
        } else {
            for (int e = 0; e < d; e++) {
                qt[e * qvp + v] = 0;
            }
            firstv[v] = 1 << 30;
            lastv[v] = -1;
        }
        mv[v] = -__builtin_inff();
        lv[v] = 0;
    }
    memset(o, 0, 4LL * qvp * dv);
    const __m512 negInf = _mm512_set1_ps(-__builtin_inff());
    for (int t0 = kFirst; t0 <= kLast; t0 += ATT_KEYS) {
        int nt = kLast - t0 + 1 < ATT_KEYS ? kLast - t0 + 1 : ATT_KEYS;
        int nt8 = (nt + 7) & ~7;
        for (int t = 0; t < nt; t++) {
            int slot = slotMap[slotBase + t0 + t];
            row_to_f32(kc + slot * kSlot + kvh * kHead, kF16, d, kf + t * d);
            row_to_f32(vc + slot * vSlot + kvh * vHead, vF16, dv, vf + t * dv);
        }
        for (int t = nt; t < nt8; t++) {
            memset(kf + t * d, 0, 4LL * d);
        }
        /* S[t][v] = k_t . q_v (scaled) */
        for (int vb = 0; vb < qvp; vb += 16) {
            for (int t = 0; t < nt8; t += 8) {
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
                const float *k0 = kf + t * d;
                for (int e = 0; e < d; e++) {
                    __m512 qvv = _mm512_load_ps(qt + e * qvp + vb);
                    a0 = _mm512_fmadd_ps(_mm512_set1_ps(k0[e]), qvv, a0);
                    a1 = _mm512_fmadd_ps(_mm512_set1_ps(k0[d + e]), qvv, a1);
                    a2 = _mm512_fmadd_ps(_mm512_set1_ps(k0[2 * d + e]), qvv, a2);
                    a3 = _mm512_fmadd_ps(_mm512_set1_ps(k0[3 * d + e]), qvv, a3);
                    a4 = _mm512_fmadd_ps(_mm512_set1_ps(k0[4 * d + e]), qvv, a4);
                    a5 = _mm512_fmadd_ps(_mm512_set1_ps(k0[5 * d + e]), qvv, a5);
                    a6 = _mm512_fmadd_ps(_mm512_set1_ps(k0[6 * d + e]), qvv, a6);
                    a7 = _mm512_fmadd_ps(_mm512_set1_ps(k0[7 * d + e]), qvv, a7);
                }
                float *st = s + t * qvp + vb;
                _mm512_store_ps(st, a0);
                _mm512_store_ps(st + qvp, a1);
                _mm512_store_ps(st + 2 * qvp, a2);
                _mm512_store_ps(st + 3 * qvp, a3);
                _mm512_store_ps(st + 4 * qvp, a4);
                _mm512_store_ps(st + 5 * qvp, a5);
                _mm512_store_ps(st + 6 * qvp, a6);
                _mm512_store_ps(st + 7 * qvp, a7);
            }
            /* online softmax over this tile, 16 query vectors per lane group */
            __m512i first = _mm512_load_si512(firstv + vb), last = _mm512_load_si512(lastv + vb);
            __m512 tileMax = negInf;
            for (int t = 0; t < nt; t++) {
                __m512i key = _mm512_set1_epi32(t0 + t);
                __mmask16 ok = _mm512_cmple_epi32_mask(key, last) & _mm512_cmpge_epi32_mask(key, first);
                __m512 sv = _mm512_mask_blend_ps(ok, negInf, _mm512_load_ps(s + t * qvp + vb));
                _mm512_store_ps(s + t * qvp + vb, sv);
                tileMax = _mm512_max_ps(tileMax, sv);
            }
            __m512 mOld = _mm512_load_ps(mv + vb);
            __m512 mNew = _mm512_max_ps(mOld, tileMax);
            __mmask16 live = _mm512_cmp_ps_mask(mNew, negInf, _CMP_GT_OQ);
            __m512 c = _mm512_mask_blend_ps(live, _mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(mOld, mNew)));
            __m512 sum = _mm512_setzero_ps();
            for (int t = 0; t < nt; t++) {
                __m512 sv = _mm512_load_ps(s + t * qvp + vb);
                __mmask16 ok = _mm512_cmp_ps_mask(sv, negInf, _CMP_GT_OQ);
                __m512 e = _mm512_maskz_mov_ps(ok, exp512(_mm512_sub_ps(sv, mNew)));
                _mm512_store_ps(s + t * qvp + vb, e);
                sum = _mm512_add_ps(sum, e);
            }
            _mm512_store_ps(mv + vb, mNew);
            _mm512_store_ps(lv + vb, _mm512_fmadd_ps(_mm512_load_ps(lv + vb), c, sum));
            _mm512_store_ps(corr + vb, c);
        }
        /* O[v] = corr[v] * O[v] + sum_t P[t][v] V[t] */
        if (dv == 64) {
            for (int v0 = 0; v0 < qv; v0 += 6) {
                int nv = qv - v0 < 6 ? qv - v0 : 6;
                __m512 acc[6][4];
                for (int i = 0; i < 6; i++) {
                    for (int c4 = 0; c4 < 4; c4++) {
                        acc[i][c4] = i < nv ? _mm512_mul_ps(_mm512_load_ps(o + (v0 + i) * 64 + 16 * c4),
                                                            _mm512_set1_ps(corr[v0 + i]))
                                            : _mm512_setzero_ps();
                    }
                }
                for (int t = 0; t < nt; t++) {
                    const float *vr = vf + t * 64;
                    __m512 w0 = _mm512_load_ps(vr), w1 = _mm512_load_ps(vr + 16);
                    __m512 w2 = _mm512_load_ps(vr + 32), w3 = _mm512_load_ps(vr + 48);
                    const float *pt = s + t * qvp + v0;
                    for (int i = 0; i < 6; i++) {
                        __m512 pv = _mm512_set1_ps(pt[i]);
                        acc[i][0] = _mm512_fmadd_ps(pv, w0, acc[i][0]);
                        acc[i][1] = _mm512_fmadd_ps(pv, w1, acc[i][1]);
                        acc[i][2] = _mm512_fmadd_ps(pv, w2, acc[i][2]);
                        acc[i][3] = _mm512_fmadd_ps(pv, w3, acc[i][3]);
                    }
                }
                for (int i = 0; i < nv; i++) {
                    for (int c4 = 0; c4 < 4; c4++) {
                        _mm512_store_ps(o + (v0 + i) * 64 + 16 * c4, acc[i][c4]);
                    }
                }
            }
        } else {
            for (int v = 0; v < qv; v++) {
                float *ov = o + (int64_t) v * dv;
                __m512 cv = _mm512_set1_ps(corr[v]);
                for (int e = 0; e < dv; e += 16) {
                    _mm512_store_ps(ov + e, _mm512_mul_ps(_mm512_load_ps(ov + e), cv));
                }
                for (int t = 0; t < nt; t++) {
                    __m512 pv = _mm512_set1_ps(s[t * qvp + v]);
                    const float *vr = vf + t * dv;
                    for (int e = 0; e < dv; e += 16) {
                        _mm512_store_ps(ov + e, _mm512_fmadd_ps(pv, _mm512_load_ps(vr + e), _mm512_load_ps(ov + e)));
                    }
                }
            }
        }
    }
    for (int v = 0; v < qv; v++) {
        int i = v / G, g = v % G;
        float *orow = (float *) (out + (row0 + i) * oRow + (kvh * G + g) * oHead);
        __m512 inv = _mm512_set1_ps(lv[v] > 0 ? 1.0f / lv[v] : 0.0f);
        for (int e = 0; e < dv; e += 16) {
            _mm512_storeu_ps(orow + e, _mm512_mul_ps(_mm512_load_ps(o + (int64_t) v * dv + e), inv));
        }
    }
}

/*
 * Tasks [task0, task1): task t is KV head t % kvHeads and query rows [(t / kvHeads) * rowsPerTask, +rowsPerTask).
 * rowInfo[3r .. 3r+2] = (offset of the row's sequence in slotMap, first key position, last key position);
 * slotMap[offset + pos] = cache slot of that position. q, out: F32, byte strides per row and per head; caches
 * F32 or F16 (kF16, vF16), byte strides per slot and per KV head. d and dv are multiples of 16.
 */
EXPORT void isthmus_attention(const uint8_t *q, int64_t qRow, int64_t qHead, uint8_t *out, int64_t oRow, int64_t oHead,
                              const uint8_t *kc, int64_t kSlot, int64_t kHead, int kF16,
                              const uint8_t *vc, int64_t vSlot, int64_t vHead, int vF16,
                              int heads, int kvHeads, int d, int dv, float scale,
                              const int32_t *rowInfo, const int32_t *slotMap, int n, int rowsPerTask,
                              int task0, int task1, uint8_t *scratch) {
    int G = heads / kvHeads;
    int maxRows = ATT_QV / G > 0 ? ATT_QV / G : 1;
    for (int t = task0; t < task1; t++) {
        int kvh = t % kvHeads;
        int r = (t / kvHeads) * rowsPerTask;
        int end = r + rowsPerTask < n ? r + rowsPerTask : n;
        while (r < end) {
            int nr = 1;
            while (r + nr < end && nr < maxRows && rowInfo[3 * (r + nr)] == rowInfo[3 * r]) {
                nr++;
            }
            attend_run(q, qRow, qHead, out, oRow, oHead, kc, kSlot, kHead, kF16, vc, vSlot, vHead, vF16, G, kvh, d,
                       dv, scale, rowInfo, slotMap, r, nr, scratch);
            r += nr;
        }
    }
}
