// The ggml block formats, decoded 32 elements ("a group") at a time.
//
// LAYOUT ASSUMED (ggml-common.h; all multi-byte fields little-endian, "f16" = IEEE binary16):
//   A row of a quantized matrix is a sequence of blocks, each holding QK consecutive elements of the row in
//   BYTES bytes; rows are `rowStride` bytes apart (a row is cols/QK blocks). Group g of a row is elements
//   [32g, 32g + 32): block g / (QK/32), sub-group g % (QK/32) of it.
//
//   Q4_0  (QK  32,  18 B): f16 d; u8 qs[16].                     x = (q - 8) d
//   Q4_1  (QK  32,  20 B): f16 d; f16 m; u8 qs[16].              x = q d + m
//   Q5_0  (QK  32,  22 B): f16 d; u32 qh; u8 qs[16].             x = (q - 16) d, bit 4 of q_e = bit e of qh
//   Q5_1  (QK  32,  24 B): f16 d; f16 m; u32 qh; u8 qs[16].      x = q d + m
//   Q8_0  (QK  32,  34 B): f16 d; i8 qs[32].                     x = q d
//     (32-element formats: byte qs[j] holds element j in its low nibble and element j + 16 in its high one)
//   Q2_K  (QK 256,  84 B): u8 scales[16]; u8 qs[64]; f16 d; f16 dmin.
//   Q3_K  (QK 256, 110 B): u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d.
//   Q4_K  (QK 256, 144 B): f16 d; f16 dmin; u8 scales[12]; u8 qs[128].
//   Q5_K  (QK 256, 176 B): f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128].
//   Q6_K  (QK 256, 210 B): u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d.
//   Q8_K  (QK 256, 292 B): f32 d; i8 qs[256]; i16 bsums[16].
//   The bit positions of the K formats are spelled out at each decoder below.
//
// The Java mirror dev.isthmus.backend.cuda.kernels.BlockLayouts implements dequant32 of every format with the
// same indexing, statement by statement, and is tested against the conformance suite's float64 reference.
#pragma once

#include "isthmus_common.cuh"

namespace isthmus {

ISTHMUS_DEVICE float f16_at(const unsigned char* p) { return f16_to_f32(load_u16(p)); }

struct Q4_0 {
    static constexpr int QK = 32;
    static constexpr int BYTES = 18;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)g * BYTES;
        const float d = f16_at(b);
        const unsigned char* qs = b + 2;
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const int v = qs[j];
            w[j] = (float)((v & 0x0F) - 8) * d;
            w[j + 16] = (float)((v >> 4) - 8) * d;
        }
    }
};

struct Q4_1 {
    static constexpr int QK = 32;
    static constexpr int BYTES = 20;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)g * BYTES;
        const float d = f16_at(b);
        const float m = f16_at(b + 2);
        const unsigned char* qs = b + 4;
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const int v = qs[j];
            w[j] = (float)(v & 0x0F) * d + m;
            w[j + 16] = (float)(v >> 4) * d + m;
        }
    }
};

struct Q5_0 {
    static constexpr int QK = 32;
    static constexpr int BYTES = 22;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)g * BYTES;
        const float d = f16_at(b);
        const unsigned int qh = load_u32_bytes(b + 2);
        const unsigned char* qs = b + 6;
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const int v = qs[j];
            const int lo = (v & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (v >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            w[j] = (float)(lo - 16) * d;
            w[j + 16] = (float)(hi - 16) * d;
        }
    }
};

struct Q5_1 {
    static constexpr int QK = 32;
    static constexpr int BYTES = 24;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)g * BYTES;
        const float d = f16_at(b);
        const float m = f16_at(b + 2);
        const unsigned int qh = load_u32_bytes(b + 4);
        const unsigned char* qs = b + 8;
#pragma unroll
        for (int j = 0; j < 16; j++) {
            const int v = qs[j];
            const int lo = (v & 0x0F) | (int)(((qh >> j) & 1u) << 4);
            const int hi = (v >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
            w[j] = (float)lo * d + m;
            w[j + 16] = (float)hi * d + m;
        }
    }
};

struct Q8_0 {
    static constexpr int QK = 32;
    static constexpr int BYTES = 34;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)g * BYTES;
        const float d = f16_at(b);
        const signed char* qs = reinterpret_cast<const signed char*>(b + 2);
#pragma unroll
        for (int j = 0; j < 32; j++) {
            w[j] = (float)qs[j] * d;
        }
    }
};

// Q2_K: elements come in two halves of 128; in half h, element 32j + l (j = 0..3, l = 0..31) is bits 2j..2j+1
// of qs[32h + l]; its sub-block is 8h + 2j + l/16, whose scale byte holds the scale in the low nibble and the
// min in the high nibble. x = d * sc * q - dmin * m. Group s (0..7) is half s/4, j = s%4.
struct Q2_K {
    static constexpr int QK = 256;
    static constexpr int BYTES = 84;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)(g >> 3) * BYTES;
        const int s = g & 7;
        const int half = s >> 2;
        const int j = s & 3;
        const float d = f16_at(b + 80);
        const float dmin = f16_at(b + 82);
        const unsigned char* scales = b;
        const unsigned char* qs = b + 16 + 32 * half;
#pragma unroll
        for (int t = 0; t < 2; t++) {  // the two sub-blocks of 16 of this group
            const int sc = scales[8 * half + 2 * j + t];
            const float dl = d * (float)(sc & 0x0F);
            const float ml = dmin * (float)(sc >> 4);
#pragma unroll
            for (int i = 0; i < 16; i++) {
                const int l = 16 * t + i;
                const int q = (qs[l] >> (2 * j)) & 3;
                w[l] = dl * (float)q - ml;
            }
        }
    }
};

// The 6-bit scale i (0..15) of a Q3_K block from its 12 scale bytes: the low four bits are the low nibble of
// byte i (i < 8) or the high nibble of byte i - 8; the high two bits are bits 2(i/4)..2(i/4)+1 of byte 8 + i%4.
ISTHMUS_DEVICE int q3k_scale(const unsigned char* scales, int i) {
    const int low4 = i < 8 ? (scales[i] & 0x0F) : (scales[i - 8] >> 4);
    const int high2 = (scales[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
    return low4 | (high2 << 4);
}

// Q3_K: the low two bits of each quant are placed like Q2_K's; element 32j + l of half h takes its third bit
// from bit 4h + j of hmask[l], a clear bit meaning "subtract 4". x = d * (sc - 32) * q.
struct Q3_K {
    static constexpr int QK = 256;
    static constexpr int BYTES = 110;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)(g >> 3) * BYTES;
        const int s = g & 7;
        const int half = s >> 2;
        const int j = s & 3;
        const float d = f16_at(b + 108);
        const unsigned char* hmask = b;
        const unsigned char* qs = b + 32 + 32 * half;
        const unsigned char* scales = b + 96;
#pragma unroll
        for (int t = 0; t < 2; t++) {
            const float dl = d * (float)(q3k_scale(scales, 8 * half + 2 * j + t) - 32);
#pragma unroll
            for (int i = 0; i < 16; i++) {
                const int l = 16 * t + i;
                const int low2 = (qs[l] >> (2 * j)) & 3;
                const int high = (hmask[l] >> (4 * half + j)) & 1;
                w[l] = dl * (float)(low2 - (high ? 0 : 4));
            }
        }
    }
};

// The 6-bit scale and min of sub-block j (0..7) of Q4_K/Q5_K from the 12 scale bytes:
//   scale: j < 4: low 6 bits of byte j;      else low nibble of byte j + 4 | (top two bits of byte j - 4) << 4
//   min:   j < 4: low 6 bits of byte j + 4;  else high nibble of byte j + 4 | (top two bits of byte j) << 4
ISTHMUS_DEVICE int k4_scale(const unsigned char* s, int j) {
    return j < 4 ? (s[j] & 63) : ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
}

ISTHMUS_DEVICE int k4_min(const unsigned char* s, int j) {
    return j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
}

// Q4_K: four chunks of 64; in chunk c element l (< 32) is the low nibble of qs[32c + l] (sub-block 2c) and
// element 32 + l its high nibble (sub-block 2c + 1). Group s is sub-block s. x = d * sc * q - dmin * m.
struct Q4_K {
    static constexpr int QK = 256;
    static constexpr int BYTES = 144;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)(g >> 3) * BYTES;
        const int s = g & 7;
        const int c = s >> 1;
        const int shift = (s & 1) * 4;
        const float d = f16_at(b);
        const float dmin = f16_at(b + 2);
        const float dl = d * (float)k4_scale(b + 4, s);
        const float ml = dmin * (float)k4_min(b + 4, s);
        const unsigned char* qs = b + 16 + 32 * c;
#pragma unroll
        for (int l = 0; l < 32; l++) {
            w[l] = dl * (float)((qs[l] >> shift) & 0x0F) - ml;
        }
    }
};

// Q5_K: like Q4_K plus a fifth bit (worth 16) for the elements of sub-block s from bit s of qh[l].
struct Q5_K {
    static constexpr int QK = 256;
    static constexpr int BYTES = 176;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)(g >> 3) * BYTES;
        const int s = g & 7;
        const int c = s >> 1;
        const int shift = (s & 1) * 4;
        const float d = f16_at(b);
        const float dmin = f16_at(b + 2);
        const float dl = d * (float)k4_scale(b + 4, s);
        const float ml = dmin * (float)k4_min(b + 4, s);
        const unsigned char* qh = b + 16;
        const unsigned char* qs = b + 48 + 32 * c;
#pragma unroll
        for (int l = 0; l < 32; l++) {
            const int q = ((qs[l] >> shift) & 0x0F) + 16 * ((qh[l] >> s) & 1);
            w[l] = dl * (float)q - ml;
        }
    }
};

// Q6_K: two halves of 128 (half h uses ql[64h..], qh[32h..], scales[8h..]); element 32t + l (t = 0..3) has as
// low four bits the low (t < 2) or high (t >= 2) nibble of ql[l] (t even) or ql[l + 32] (t odd), and as high
// two bits bits 2t..2t+1 of qh[l]; its scale is scales[l/16 + 2t]. x = d * sc * (q - 32). Group s is half s/4,
// t = s%4.
struct Q6_K {
    static constexpr int QK = 256;
    static constexpr int BYTES = 210;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)(g >> 3) * BYTES;
        const int s = g & 7;
        const int half = s >> 2;
        const int t = s & 3;
        const float d = f16_at(b + 208);
        const unsigned char* ql = b + 64 * half + ((t & 1) ? 32 : 0);
        const unsigned char* qh = b + 128 + 32 * half;
        const signed char* scales = reinterpret_cast<const signed char*>(b + 192 + 8 * half);
        const int lowShift = t < 2 ? 0 : 4;
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const float dl = d * (float)scales[u + 2 * t];
#pragma unroll
            for (int i = 0; i < 16; i++) {
                const int l = 16 * u + i;
                const int low4 = (ql[l] >> lowShift) & 0x0F;
                const int high2 = (qh[l] >> (2 * t)) & 3;
                w[l] = dl * (float)((low4 | (high2 << 4)) - 32);
            }
        }
    }
};

struct Q8_K {
    static constexpr int QK = 256;
    static constexpr int BYTES = 292;
    static ISTHMUS_DEVICE void dequant32(const unsigned char* row, int g, float* w) {
        const unsigned char* b = row + (long long)(g >> 3) * BYTES;
        const int s = g & 7;
        const float d = __uint_as_float(load_u32_bytes(b));
        const signed char* qs = reinterpret_cast<const signed char*>(b + 4 + 32 * s);
#pragma unroll
        for (int l = 0; l < 32; l++) {
            w[l] = (float)qs[l] * d;
        }
    }
};

// ---- plain element types (block size 1) --------------------------------------------------------------------

struct F32 {
    static ISTHMUS_DEVICE float load(const unsigned char* row, int e) {
        return reinterpret_cast<const float*>(row)[e];
    }
};

struct F16 {
    static ISTHMUS_DEVICE float load(const unsigned char* row, int e) {
        return f16_to_f32(reinterpret_cast<const unsigned short*>(row)[e]);
    }
};

struct BF16 {
    static ISTHMUS_DEVICE float load(const unsigned char* row, int e) {
        return bf16_to_f32(reinterpret_cast<const unsigned short*>(row)[e]);
    }
};

}  // namespace isthmus
