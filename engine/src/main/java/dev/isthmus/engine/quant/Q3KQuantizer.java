package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * Q3_K (110 bytes per 256): u8 hmask[32], u8 qs[64], u8 scales[12], f16 d. Sixteen sub-blocks of 16 decode
 * as x = d · (sc - 32) · q with 6-bit sc and q in [-4, 3].
 *
 * <p>Each sub-block's scale comes from {@link ScaleSearch#symmetricRefined}; the scales are quantized to 6 bits
 * against the one of largest magnitude (which maps to -32), and the quants recomputed against the decoded
 * scales. The low two bits of each quant are placed as in Q2_K; element e's third bit is bit {@code e / 32}
 * of {@code hmask[e % 32]}, set when q &gt;= 0. Scale i keeps its low nibble in byte i (i &lt; 8) or in the
 * high nibble of byte i - 8, and its top two bits at bits {@code 2 (i / 4)} of byte {@code 8 + i % 4}.
 */
final class Q3KQuantizer extends BlockQuantizer {
    private final ScaleSearch search = new ScaleSearch();
    private final int[] L = new int[256];
    private final float[] scales = new float[16];

    Q3KQuantizer() {
        super(DType.Q3_K);
    }

    @Override
    void quantizeBlock(float[] x, int xo, byte[] y, int yo) {
        for (int j = 0; j < 16; j++) {
            scales[j] = search.symmetricRefined(16, 4, x, xo + 16 * j, L, 16 * j);
        }
        float maxScale = ScaleSearch.signedMax(scales, 0, 16);
        int s = yo + 96;
        java.util.Arrays.fill(y, s, s + 12, (byte) 0);
        float d;
        if (maxScale != 0) {
            float iscale = -32f / maxScale;
            for (int j = 0; j < 16; j++) {
                int l = Bits.clamp(Bits.nearestInt(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) {
                    y[s + j] = (byte) (l & 0x0F);
                } else {
                    y[s + j - 8] |= (byte) ((l & 0x0F) << 4);
                }
                y[s + 8 + j % 4] |= (byte) ((l >>> 4) << (2 * (j / 4)));
            }
            d = Bits.putHalf(y, yo + 108, 1 / iscale);
        } else {
            d = Bits.putHalf(y, yo + 108, 0);
        }
        for (int j = 0; j < 16; j++) {
            float dq = d * (scale(y, s, j) - 32);
            if (dq == 0) {
                continue;
            }
            for (int i = 0; i < 16; i++) {
                L[16 * j + i] = Bits.clamp(Bits.nearestInt(x[xo + 16 * j + i] / dq), -4, 3) + 4;
            }
        }
        java.util.Arrays.fill(y, yo, yo + 32, (byte) 0);
        for (int e = 0; e < 256; e++) {
            if (L[e] > 3) {
                y[yo + (e & 31)] |= (byte) (1 << (e >>> 5));
                L[e] -= 4;
            }
        }
        for (int half = 0; half < 2; half++) {
            int base = 128 * half;
            for (int l = 0; l < 32; l++) {
                y[yo + 32 + 32 * half + l] = (byte) (L[base + l] | L[base + l + 32] << 2
                        | L[base + l + 64] << 4 | L[base + l + 96] << 6);
            }
        }
    }

    /** The 6-bit scale i (0..15), unsigned, from the 12 scale bytes at {@code s}. */
    private static int scale(byte[] y, int s, int i) {
        int low4 = i < 8 ? y[s + i] & 0x0F : (y[s + i - 8] & 0xFF) >>> 4;
        int high2 = ((y[s + 8 + i % 4] & 0xFF) >>> (2 * (i / 4))) & 3;
        return low4 | high2 << 4;
    }

    @Override
    void dequantizeBlock(byte[] y, int yo, float[] x, int xo) {
        float d = Bits.getHalf(y, yo + 108);
        for (int e = 0; e < 256; e++) {
            int half = e >>> 7;
            int j = (e >>> 5) & 3;
            int l = e & 31;
            int low2 = ((y[yo + 32 + 32 * half + l] & 0xFF) >>> (2 * j)) & 3;
            boolean high = ((y[yo + l] >>> (e >>> 5)) & 1) != 0;
            int q = low2 - (high ? 0 : 4);
            x[xo + e] = d * (scale(y, yo + 96, e >>> 4) - 32) * q;
        }
    }
}
