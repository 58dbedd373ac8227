package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;

/**
 * Straightforward scalar decoders of the ggml block formats, one element at a time from byte arrays,
 * used to check the vector kernels. Written from the block layouts in ggml-common.h, deliberately in a
 * different shape from the production code (element index → bits, rather than block loops).
 */
final class ReferenceDecoder {
    private ReferenceDecoder() {
    }

    static int u8(byte[] b, int i) {
        return b[i] & 0xFF;
    }

    static float f16(byte[] b, int i) {
        return Float.float16ToFloat((short) (u8(b, i) | (u8(b, i + 1) << 8)));
    }

    static float f32(byte[] b, int i) {
        return Float.intBitsToFloat(u8(b, i) | (u8(b, i + 1) << 8) | (u8(b, i + 2) << 16) | (u8(b, i + 3) << 24));
    }

    /** Decodes a whole row of {@code count} elements. */
    static double[] decode(DType type, byte[] row, int count) {
        double[] out = new double[count];
        for (int e = 0; e < count; e++) {
            int block = e / type.blockSize();
            out[e] = element(type, row, block * type.blockBytes(), e % type.blockSize());
        }
        return out;
    }

    /** Element {@code i} of the block starting at {@code o}. */
    static double element(DType type, byte[] b, int o, int i) {
        return switch (type) {
            case F32 -> f32(b, o);
            case F16 -> f16(b, o);
            case BF16 -> Float.intBitsToFloat((u8(b, o) | (u8(b, o + 1) << 8)) << 16);
            case Q8_0 -> (double) f16(b, o) * b[o + 2 + i];
            case Q4_0 -> (double) f16(b, o) * (nibble(b, o + 2, i) - 8);
            case Q4_1 -> (double) f16(b, o) * nibble(b, o + 4, i) + f16(b, o + 2);
            case Q5_0 -> (double) f16(b, o) * ((nibble(b, o + 6, i) | (qh5(b, o + 2, i) << 4)) - 16);
            case Q5_1 -> (double) f16(b, o) * (nibble(b, o + 8, i) | (qh5(b, o + 4, i) << 4)) + f16(b, o + 2);
            case Q8_K -> (double) f32(b, o) * b[o + 4 + i];
            case Q2_K -> q2k(b, o, i);
            case Q3_K -> q3k(b, o, i);
            case Q4_K -> q4k(b, o, i, false);
            case Q5_K -> q4k(b, o, i, true);
            case Q6_K -> q6k(b, o, i);
            default -> throw new IllegalArgumentException(type.toString());
        };
    }

    /** 32-element blocks: element i < 16 is the low nibble of byte i, i ≥ 16 the high nibble of byte i-16. */
    private static int nibble(byte[] b, int qs, int i) {
        return i < 16 ? u8(b, qs + i) & 0xF : u8(b, qs + i - 16) >> 4;
    }

    private static int qh5(byte[] b, int qh, int i) {
        int word = u8(b, qh) | (u8(b, qh + 1) << 8) | (u8(b, qh + 2) << 16) | (u8(b, qh + 3) << 24);
        return (word >>> i) & 1;
    }

    private static double q2k(byte[] b, int o, int i) {
        int half = i / 128;
        int j = (i % 128) / 32;
        int l = i % 32;
        int q = (u8(b, o + 16 + 32 * half + l) >> (2 * j)) & 3;
        int sc = u8(b, o + 8 * half + 2 * j + l / 16);
        return (double) f16(b, o + 80) * (sc & 0xF) * q - (double) f16(b, o + 82) * (sc >> 4);
    }

    private static double q3k(byte[] b, int o, int i) {
        int half = i / 128;
        int j = (i % 128) / 32;
        int l = i % 32;
        int low = (u8(b, o + 32 + 32 * half + l) >> (2 * j)) & 3;
        boolean high = (u8(b, o + l) & (1 << (4 * half + j))) != 0;
        int q = low - (high ? 0 : 4);
        // Unpack the 16 6-bit scales the way ggml does, through three 32-bit words.
        int[] aux = new int[4];
        for (int w = 0; w < 3; w++) {
            int p = o + 96 + 4 * w;
            aux[w] = u8(b, p) | (u8(b, p + 1) << 8) | (u8(b, p + 2) << 16) | (u8(b, p + 3) << 24);
        }
        int tmp = aux[2];
        int k1 = 0x03030303;
        int k2 = 0x0f0f0f0f;
        aux[2] = ((aux[0] >>> 4) & k2) | (((tmp >>> 4) & k1) << 4);
        aux[3] = ((aux[1] >>> 4) & k2) | (((tmp >>> 6) & k1) << 4);
        aux[0] = (aux[0] & k2) | ((tmp & k1) << 4);
        aux[1] = (aux[1] & k2) | (((tmp >>> 2) & k1) << 4);
        int is = 8 * half + 2 * j + l / 16;
        int scale = (byte) (aux[is / 4] >>> (8 * (is % 4)));
        return (double) f16(b, o + 108) * (scale - 32) * q;
    }

    private static int[] scaleMinK4(byte[] b, int scales, int j) {
        if (j < 4) {
            return new int[] {u8(b, scales + j) & 63, u8(b, scales + j + 4) & 63};
        }
        int d = (u8(b, scales + j + 4) & 0xF) | ((u8(b, scales + j - 4) >> 6) << 4);
        int m = (u8(b, scales + j + 4) >> 4) | ((u8(b, scales + j) >> 6) << 4);
        return new int[] {d, m};
    }

    private static double q4k(byte[] b, int o, int i, boolean fiveBit) {
        int group = i / 64;
        int l = i % 32;
        boolean upper = (i % 64) >= 32;
        int qs = fiveBit ? o + 48 : o + 16;
        int byteValue = u8(b, qs + 32 * group + l);
        int q = upper ? byteValue >> 4 : byteValue & 0xF;
        if (fiveBit) {
            int bit = 2 * group + (upper ? 1 : 0);
            q += ((u8(b, o + 16 + l) >> bit) & 1) * 16;
        }
        int[] sm = scaleMinK4(b, o + 4, 2 * group + (upper ? 1 : 0));
        return (double) f16(b, o) * sm[0] * q - (double) f16(b, o + 2) * sm[1];
    }

    private static double q6k(byte[] b, int o, int i) {
        int half = i / 128;
        int quarter = (i % 128) / 32;
        int l = i % 32;
        int ql = o + 64 * half;
        int qh = o + 128 + 32 * half;
        int nib = switch (quarter) {
            case 0 -> u8(b, ql + l) & 0xF;
            case 1 -> u8(b, ql + 32 + l) & 0xF;
            case 2 -> u8(b, ql + l) >> 4;
            default -> u8(b, ql + 32 + l) >> 4;
        };
        int top = (u8(b, qh + l) >> (2 * quarter)) & 3;
        int q = (nib | (top << 4)) - 32;
        int scale = b[o + 192 + 8 * half + l / 16 + 2 * quarter];
        return (double) f16(b, o + 208) * scale * q;
    }
}
