package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * Q2_K (84 bytes per 256): u8 scales[16], u8 qs[64], f16 d, f16 dmin. Sixteen sub-blocks of 16; sub-block j
 * decodes as x = d · (scales[j] &amp; 15) · q - dmin · (scales[j] &gt;&gt; 4) with 2-bit q.
 *
 * <p>Each sub-block gets its own scale and min from {@link ScaleSearch#affine} (|x|-weighted absolute error,
 * 16 candidate steps); those are quantized to 4 bits against the largest of each, and the quants are then
 * recomputed against the decoded scale and min. The quants of elements {@code 32j + l} of each half of 128
 * share byte {@code qs[32 half + l]}, at bits {@code 2j}.
 */
final class Q2KQuantizer extends BlockQuantizer {
    private final ScaleSearch search = new ScaleSearch();
    private final int[] L = new int[256];
    private final float[] weights = new float[16];
    private final float[] scales = new float[16];
    private final float[] mins = new float[16];

    Q2KQuantizer() {
        super(DType.Q2_K);
    }

    @Override
    void quantizeBlock(float[] x, int xo, byte[] y, int yo) {
        float maxScale = 0;
        float maxMin = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) {
                weights[l] = Math.abs(x[xo + 16 * j + l]);
            }
            scales[j] = search.affine(16, 3, x, xo + 16 * j, weights, L, 16 * j, -0.5f, 0.1f, 15, true);
            mins[j] = search.theMin;
            maxScale = Math.max(maxScale, scales[j]);
            maxMin = Math.max(maxMin, mins[j]);
        }
        float d;
        if (maxScale > 0) {
            float iscale = 15 / maxScale;
            for (int j = 0; j < 16; j++) {
                y[yo + j] = (byte) Bits.clamp(Bits.nearestInt(iscale * scales[j]), 0, 15);
            }
            d = Bits.putHalf(y, yo + 80, maxScale / 15);
        } else {
            for (int j = 0; j < 16; j++) {
                y[yo + j] = 0;
            }
            d = Bits.putHalf(y, yo + 80, 0);
        }
        float dmin;
        if (maxMin > 0) {
            float iscale = 15 / maxMin;
            for (int j = 0; j < 16; j++) {
                y[yo + j] |= (byte) (Bits.clamp(Bits.nearestInt(iscale * mins[j]), 0, 15) << 4);
            }
            dmin = Bits.putHalf(y, yo + 82, maxMin / 15);
        } else {
            dmin = Bits.putHalf(y, yo + 82, 0);
        }
        for (int j = 0; j < 16; j++) {
            int sc = y[yo + j] & 0xFF;
            float dq = d * (sc & 0x0F);
            if (dq == 0) {
                continue; // every element decodes to -dm whatever its quant
            }
            float dm = dmin * (sc >>> 4);
            for (int i = 0; i < 16; i++) {
                L[16 * j + i] = Bits.clamp(Bits.nearestInt((x[xo + 16 * j + i] + dm) / dq), 0, 3);
            }
        }
        for (int half = 0; half < 2; half++) {
            int base = 128 * half;
            for (int l = 0; l < 32; l++) {
                y[yo + 16 + 32 * half + l] = (byte) (L[base + l] | L[base + l + 32] << 2
                        | L[base + l + 64] << 4 | L[base + l + 96] << 6);
            }
        }
    }

    @Override
    void dequantizeBlock(byte[] y, int yo, float[] x, int xo) {
        float d = Bits.getHalf(y, yo + 80);
        float dmin = Bits.getHalf(y, yo + 82);
        for (int e = 0; e < 256; e++) {
            int half = e >>> 7;
            int j = (e >>> 5) & 3;
            int l = e & 31;
            int q = ((y[yo + 16 + 32 * half + l] & 0xFF) >>> (2 * j)) & 3;
            int sc = y[yo + 8 * half + 2 * j + (l >>> 4)] & 0xFF;
            x[xo + e] = d * (sc & 0x0F) * q - dmin * (sc >>> 4);
        }
    }
}
