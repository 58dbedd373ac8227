package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * Q6_K (210 bytes per 256): u8 ql[128], u8 qh[64], i8 scales[16], f16 d. Sixteen sub-blocks of 16 decode as
 * x = d · scales[j] · (q - 32) with 6-bit q.
 *
 * <p>Each sub-block's scale comes from {@link ScaleSearch#symmetricSearch}; the scales are quantized to 8 bits
 * against the one of largest magnitude (which maps to -128), and the quants recomputed against the decoded
 * scales. In each half of 128 elements h, element {@code 32t + l} keeps its low four bits in the low (t &lt; 2)
 * or high (t &gt;= 2) nibble of {@code ql[64h + l + 32 (t % 2)]} and its top two bits at bits 2t of
 * {@code qh[32h + l]}.
 */
final class Q6KQuantizer extends BlockQuantizer {
    private final ScaleSearch search = new ScaleSearch();
    private final int[] L = new int[256];
    private final float[] scales = new float[16];

    Q6KQuantizer() {
        super(DType.Q6_K);
    }

    @Override
    void quantizeBlock(float[] x, int xo, byte[] y, int yo) {
        float maxScale = 0;
        float maxAbsScale = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = search.symmetricSearch(16, 32, x, xo + 16 * j, L, 16 * j);
            if (Math.abs(scales[j]) > maxAbsScale) {
                maxAbsScale = Math.abs(scales[j]);
                maxScale = scales[j];
            }
        }
        if (maxAbsScale < ScaleSearch.GROUP_MAX_EPS) {
            java.util.Arrays.fill(y, yo, yo + 210, (byte) 0);
            return;
        }
        float iscale = -128f / maxScale;
        float d = Bits.putHalf(y, yo + 208, 1 / iscale);
        for (int j = 0; j < 16; j++) {
            y[yo + 192 + j] = (byte) Math.min(127, Bits.nearestInt(iscale * scales[j]));
        }
        for (int j = 0; j < 16; j++) {
            float dq = d * y[yo + 192 + j];
            if (dq == 0) {
                continue;
            }
            for (int i = 0; i < 16; i++) {
                L[16 * j + i] = Bits.clamp(Bits.nearestInt(x[xo + 16 * j + i] / dq), -32, 31) + 32;
            }
        }
        for (int half = 0; half < 2; half++) {
            int base = 128 * half;
            int ql = yo + 64 * half;
            int qh = yo + 128 + 32 * half;
            for (int l = 0; l < 32; l++) {
                int q1 = L[base + l];
                int q2 = L[base + l + 32];
                int q3 = L[base + l + 64];
                int q4 = L[base + l + 96];
                y[ql + l] = (byte) ((q1 & 0x0F) | (q3 & 0x0F) << 4);
                y[ql + l + 32] = (byte) ((q2 & 0x0F) | (q4 & 0x0F) << 4);
                y[qh + l] = (byte) ((q1 >>> 4) | (q2 >>> 4) << 2 | (q3 >>> 4) << 4 | (q4 >>> 4) << 6);
            }
        }
    }

    @Override
    void dequantizeBlock(byte[] y, int yo, float[] x, int xo) {
        float d = Bits.getHalf(y, yo + 208);
        for (int half = 0; half < 2; half++) {
            int ql = yo + 64 * half;
            int qh = yo + 128 + 32 * half;
            int sc = yo + 192 + 8 * half;
            int out = xo + 128 * half;
            for (int l = 0; l < 32; l++) {
                int h = y[qh + l] & 0xFF;
                int a = y[ql + l] & 0xFF;
                int b = y[ql + l + 32] & 0xFF;
                int is = l >>> 4;
                x[out + l] = d * y[sc + is] * (((a & 0x0F) | (h & 3) << 4) - 32);
                x[out + l + 32] = d * y[sc + is + 2] * (((b & 0x0F) | ((h >>> 2) & 3) << 4) - 32);
                x[out + l + 64] = d * y[sc + is + 4] * (((a >>> 4) | ((h >>> 4) & 3) << 4) - 32);
                x[out + l + 96] = d * y[sc + is + 6] * (((b >>> 4) | ((h >>> 6) & 3) << 4) - 32);
            }
        }
    }
}
