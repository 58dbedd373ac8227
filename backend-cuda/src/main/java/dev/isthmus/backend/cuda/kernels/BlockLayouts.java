package dev.isthmus.backend.cuda.kernels;

import dev.isthmus.api.DType;

/**
 * A plain-Java mirror of the block decoders of {@code native/cuda/include/isthmus_quant.cuh}: {@link #dequant32}
 * decodes group {@code g} (elements {@code 32g .. 32g+31}) of a quantized row with the same indexing, statement by
 * statement, in float arithmetic like the kernels. It is tested against the conformance suite's independent
 * float64 reference ({@code dev.isthmus.conformance.reference.Dequant}) in
 * {@code conformance-tests/src/test/java/dev/isthmus/conformance/cuda/BlockLayoutsMirrorTest}, which checks the
 * bit layouts the CUDA code assumes without a GPU. Keep the two in step: a change to one decoder is a change to
 * the other.
 */
public final class BlockLayouts {
    private BlockLayouts() {
    }

    private static int u8(byte[] b, int i) {
        return b[i] & 0xFF;
    }

    private static int load_u16(byte[] b, int i) {
        return u8(b, i) | u8(b, i + 1) << 8;
    }

    private static int load_u32_bytes(byte[] b, int i) {
        return u8(b, i) | u8(b, i + 1) << 8 | u8(b, i + 2) << 16 | u8(b, i + 3) << 24;
    }

    private static float f16_at(byte[] b, int i) {
        return Float.float16ToFloat((short) load_u16(b, i));
    }

    /**
     * Decodes group {@code g} of the row of {@code type} starting at byte {@code row} of {@code b} into
     * {@code w[0..31]}.
     *
     * @throws IllegalArgumentException for a type without block decoder (the plain types)
     */
    public static void dequant32(DType type, byte[] b, int row, int g, float[] w) {
        switch (type) {
            case Q4_0 -> q4_0(b, row, g, w);
            case Q4_1 -> q4_1(b, row, g, w);
            case Q5_0 -> q5_0(b, row, g, w);
            case Q5_1 -> q5_1(b, row, g, w);
            case Q8_0 -> q8_0(b, row, g, w);
            case Q2_K -> q2_K(b, row, g, w);
            case Q3_K -> q3_K(b, row, g, w);
            case Q4_K -> q4_K(b, row, g, w);
            case Q5_K -> q5_K(b, row, g, w);
            case Q6_K -> q6_K(b, row, g, w);
            case Q8_K -> q8_K(b, row, g, w);
            default -> throw new IllegalArgumentException("no block decoder for " + type);
        }
    }

    static void q4_0(byte[] b, int row, int g, float[] w) {
        int blk = row + g * 18;
        float d = f16_at(b, blk);
        int qs = blk + 2;
        for (int j = 0; j < 16; j++) {
            int v = u8(b, qs + j);
            w[j] = (float) ((v & 0x0F) - 8) * d;
            w[j + 16] = (float) ((v >> 4) - 8) * d;
        }
    }

    static void q4_1(byte[] b, int row, int g, float[] w) {
        int blk = row + g * 20;
        float d = f16_at(b, blk);
        float m = f16_at(b, blk + 2);
        int qs = blk + 4;
        for (int j = 0; j < 16; j++) {
            int v = u8(b, qs + j);
            w[j] = (float) (v & 0x0F) * d + m;
            w[j + 16] = (float) (v >> 4) * d + m;
        }
    }

    static void q5_0(byte[] b, int row, int g, float[] w) {
        int blk = row + g * 22;
        float d = f16_at(b, blk);
        int qh = load_u32_bytes(b, blk + 2);
        int qs = blk + 6;
        for (int j = 0; j < 16; j++) {
            int v = u8(b, qs + j);
            int lo = (v & 0x0F) | (((qh >>> j) & 1) << 4);
            int hi = (v >> 4) | (((qh >>> (j + 16)) & 1) << 4);
            w[j] = (float) (lo - 16) * d;
            w[j + 16] = (float) (hi - 16) * d;
        }
    }

    static void q5_1(byte[] b, int row, int g, float[] w) {
        int blk = row + g * 24;
        float d = f16_at(b, blk);
        float m = f16_at(b, blk + 2);
        int qh = load_u32_bytes(b, blk + 4);
        int qs = blk + 8;
        for (int j = 0; j < 16; j++) {
            int v = u8(b, qs + j);
            int lo = (v & 0x0F) | (((qh >>> j) & 1) << 4);
            int hi = (v >> 4) | (((qh >>> (j + 16)) & 1) << 4);
            w[j] = (float) lo * d + m;
            w[j + 16] = (float) hi * d + m;
        }
    }

    static void q8_0(byte[] b, int row, int g, float[] w) {
        int blk = row + g * 34;
        float d = f16_at(b, blk);
        for (int j = 0; j < 32; j++) {
            w[j] = (float) b[blk + 2 + j] * d;
        }
    }

    static void q2_K(byte[] b, int row, int g, float[] w) {
        int blk = row + (g >> 3) * 84;
        int s = g & 7;
        int half = s >> 2;
        int j = s & 3;
        float d = f16_at(b, blk + 80);
        float dmin = f16_at(b, blk + 82);
        int scales = blk;
        int qs = blk + 16 + 32 * half;
        for (int t = 0; t < 2; t++) {
            int sc = u8(b, scales + 8 * half + 2 * j + t);
            float dl = d * (float) (sc & 0x0F);
            float ml = dmin * (float) (sc >> 4);
            for (int i = 0; i < 16; i++) {
                int l = 16 * t + i;
                int q = (u8(b, qs + l) >> (2 * j)) & 3;
                w[l] = dl * (float) q - ml;
            }
        }
    }

    static int q3k_scale(byte[] b, int scales, int i) {
        int low4 = i < 8 ? (u8(b, scales + i) & 0x0F) : (u8(b, scales + i - 8) >> 4);
        int high2 = (u8(b, scales + 8 + (i & 3)) >> (2 * (i >> 2))) & 3;
        return low4 | (high2 << 4);
    }

    static void q3_K(byte[] b, int row, int g, float[] w) {
        int blk = row + (g >> 3) * 110;
        int s = g & 7;
        int half = s >> 2;
        int j = s & 3;
        float d = f16_at(b, blk + 108);
        int hmask = blk;
        int qs = blk + 32 + 32 * half;
        int scales = blk + 96;
        for (int t = 0; t < 2; t++) {
            float dl = d * (float) (q3k_scale(b, scales, 8 * half + 2 * j + t) - 32);
            for (int i = 0; i < 16; i++) {
                int l = 16 * t + i;
                int low2 = (u8(b, qs + l) >> (2 * j)) & 3;
                int high = (u8(b, hmask + l) >> (4 * half + j)) & 1;
                w[l] = dl * (float) (low2 - (high != 0 ? 0 : 4));
            }
        }
    }

    static int k4_scale(byte[] b, int s, int j) {
        return j < 4 ? (u8(b, s + j) & 63) : ((u8(b, s + j + 4) & 0x0F) | ((u8(b, s + j - 4) >> 6) << 4));
    }

    static int k4_min(byte[] b, int s, int j) {
        return j < 4 ? (u8(b, s + j + 4) & 63) : ((u8(b, s + j + 4) >> 4) | ((u8(b, s + j) >> 6) << 4));
    }

    static void q4_K(byte[] b, int row, int g, float[] w) {
        int blk = row + (g >> 3) * 144;
        int s = g & 7;
        int c = s >> 1;
        int shift = (s & 1) * 4;
        float d = f16_at(b, blk);
        float dmin = f16_at(b, blk + 2);
        float dl = d * (float) k4_scale(b, blk + 4, s);
        float ml = dmin * (float) k4_min(b, blk + 4, s);
        int qs = blk + 16 + 32 * c;
        for (int l = 0; l < 32; l++) {
            w[l] = dl * (float) ((u8(b, qs + l) >> shift) & 0x0F) - ml;
        }
    }

    static void q5_K(byte[] b, int row, int g, float[] w) {
        int blk = row + (g >> 3) * 176;
        int s = g & 7;
        int c = s >> 1;
        int shift = (s & 1) * 4;
        float d = f16_at(b, blk);
        float dmin = f16_at(b, blk + 2);
        float dl = d * (float) k4_scale(b, blk + 4, s);
        float ml = dmin * (float) k4_min(b, blk + 4, s);
        int qh = blk + 16;
        int qs = blk + 48 + 32 * c;
        for (int l = 0; l < 32; l++) {
            int q = ((u8(b, qs + l) >> shift) & 0x0F) + 16 * ((u8(b, qh + l) >> s) & 1);
            w[l] = dl * (float) q - ml;
        }
    }

    static void q6_K(byte[] b, int row, int g, float[] w) {
        int blk = row + (g >> 3) * 210;
        int s = g & 7;
        int half = s >> 2;
        int t = s & 3;
        float d = f16_at(b, blk + 208);
        int ql = blk + 64 * half + ((t & 1) != 0 ? 32 : 0);
        int qh = blk + 128 + 32 * half;
        int scales = blk + 192 + 8 * half;
        int lowShift = t < 2 ? 0 : 4;
        for (int u = 0; u < 2; u++) {
            float dl = d * (float) b[scales + u + 2 * t];
            for (int i = 0; i < 16; i++) {
                int l = 16 * u + i;
                int low4 = (u8(b, ql + l) >> lowShift) & 0x0F;
                int high2 = (u8(b, qh + l) >> (2 * t)) & 3;
                w[l] = dl * (float) ((low4 | (high2 << 4)) - 32);
            }
        }
    }

    static void q8_K(byte[] b, int row, int g, float[] w) {
        int blk = row + (g >> 3) * 292;
        int s = g & 7;
        float d = Float.intBitsToFloat(load_u32_bytes(b, blk));
        int qs = blk + 4 + 32 * s;
        for (int l = 0; l < 32; l++) {
            w[l] = (float) b[qs + l] * d;
        }
    }

    /**
     * Mirror of the emulator's and {@code __float2half_rn}'s rounding (and of {@code f32_to_bf16} in
     * isthmus_common.cuh): float to bfloat16 bits, nearest even, NaN kept quiet.
     */
    public static int f32ToBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return ((bits >>> 16) | 0x0040) & 0xFFFF;
        }
        int lsb = (bits >>> 16) & 1;
        return ((bits + 0x7FFF + lsb) >>> 16) & 0xFFFF;
    }

    /** Mirror of {@code emu::f32_to_f16} (emu/cuda_emu.h): float to binary16 bits, nearest even. */
    public static int f32ToF16(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int ax = x & 0x7FFFFFFF;
        if (ax > 0x7F800000) {
            return sign | 0x7E00 | ((ax >>> 13) & 0x3FF);
        }
        if (ax >= 0x477FF000) {
            return sign | 0x7C00;
        }
        if (ax < 0x38800000) {
            float v = Math.abs(f) * 0x1p24f;
            return sign | (int) Math.rint(v);
        }
        int e = (ax >>> 23) - 127 + 15;
        int m = ax & 0x7FFFFF;
        int r = (e << 10) | (m >>> 13);
        int rem = m & 0x1FFF;
        if (rem > 0x1000 || (rem == 0x1000 && (r & 1) != 0)) {
            r++;
        }
        return sign | r;
    }
}
