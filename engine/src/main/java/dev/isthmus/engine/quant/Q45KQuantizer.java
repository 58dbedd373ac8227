package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * Q4_K (144 bytes per 256: f16 d, f16 dmin, u8 scales[12], u8 qs[128]) and Q5_K (176 bytes: the same with
 * u8 qh[32] before qs). Eight sub-blocks of 32 decode as x = d · sc · q - dmin · m with 6-bit sc and m, and
 * q of 4 (Q4_K) or 5 (Q5_K) bits.
 *
 * <p>Each sub-block's scale and min come from {@link ScaleSearch#affine} with weights {@code rms + |x|}
 * (squared error; 21 candidate steps for Q4_K, 16 for Q5_K); scales and mins are quantized to 6 bits against
 * the largest of each, and the quants recomputed against the decoded values. Packing: sub-blocks j &lt; 4 keep
 * scale and min in the low 6 bits of bytes j and j + 4; sub-blocks j &gt;= 4 keep their low nibbles in byte
 * j + 4 (scale low, min high) and their top two bits in bits 6-7 of bytes j - 4 (scale) and j (min). In each
 * chunk of 64 elements c, byte {@code qs[32c + l]} holds element l in its low nibble and element 32 + l in its
 * high nibble; Q5_K's fifth bits are bits 2c and 2c + 1 of {@code qh[l]}.
 */
final class Q45KQuantizer extends BlockQuantizer {
    private final boolean five;
    private final int nmax;
    private final ScaleSearch search = new ScaleSearch();
    private final int[] L = new int[256];
    private final float[] weights = new float[32];
    private final float[] scales = new float[8];
    private final float[] mins = new float[8];

    Q45KQuantizer(DType dtype) {
        super(dtype);
        five = switch (dtype) {
            case Q4_K -> false;
            case Q5_K -> true;
            default -> throw new IllegalArgumentException(dtype + " is not Q4_K or Q5_K");
        };
        nmax = five ? 31 : 15;
    }

    @Override
    void quantizeBlock(float[] x, int xo, byte[] y, int yo) {
        float maxScale = 0;
        float maxMin = 0;
        for (int j = 0; j < 8; j++) {
            int so = xo + 32 * j;
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) {
                sumX2 += x[so + l] * x[so + l];
            }
            float rms = (float) Math.sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) {
                weights[l] = rms + Math.abs(x[so + l]);
            }
            scales[j] = five
                    ? search.affine(32, 31, x, so, weights, L, 32 * j, -0.5f, 0.1f, 15, false)
                    : search.affine(32, 15, x, so, weights, L, 32 * j, -1f, 0.1f, 20, false);
            mins[j] = search.theMin;
            maxScale = Math.max(maxScale, scales[j]);
            maxMin = Math.max(maxMin, mins[j]);
        }
        float invScale = maxScale > 0 ? 63 / maxScale : 0;
        float invMin = maxMin > 0 ? 63 / maxMin : 0;
        int s = yo + 4;
        java.util.Arrays.fill(y, s, s + 12, (byte) 0);
        for (int j = 0; j < 8; j++) {
            int ls = Bits.clamp(Bits.nearestInt(invScale * scales[j]), 0, 63);
            int lm = Bits.clamp(Bits.nearestInt(invMin * mins[j]), 0, 63);
            if (j < 4) {
                y[s + j] = (byte) ls;
                y[s + j + 4] = (byte) lm;
            } else {
                y[s + j + 4] = (byte) ((ls & 0x0F) | (lm & 0x0F) << 4);
                y[s + j - 4] |= (byte) ((ls >>> 4) << 6);
                y[s + j] |= (byte) ((lm >>> 4) << 6);
            }
        }
        float d = Bits.putHalf(y, yo, maxScale / 63);
        float dmin = Bits.putHalf(y, yo + 2, maxMin / 63);
        for (int j = 0; j < 8; j++) {
            float dq = d * scale(y, s, j);
            if (dq == 0) {
                continue;
            }
            float dm = dmin * min(y, s, j);
            for (int i = 0; i < 32; i++) {
                L[32 * j + i] = Bits.clamp(Bits.nearestInt((x[xo + 32 * j + i] + dm) / dq), 0, nmax);
            }
        }
        int qs = yo + (five ? 48 : 16);
        if (five) {
            java.util.Arrays.fill(y, yo + 16, yo + 48, (byte) 0);
        }
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                int lo = L[64 * c + l];
                int hi = L[64 * c + 32 + l];
                if (five) {
                    y[yo + 16 + l] |= (byte) ((lo >>> 4) << (2 * c) | (hi >>> 4) << (2 * c + 1));
                }
                y[qs + 32 * c + l] = (byte) ((lo & 0x0F) | (hi & 0x0F) << 4);
            }
        }
    }

    /** 6-bit scale of sub-block j (0..7) from the 12 scale bytes at {@code s}. */
    static int scale(byte[] y, int s, int j) {
        return j < 4 ? y[s + j] & 63 : (y[s + j + 4] & 0x0F) | ((y[s + j - 4] & 0xFF) >>> 6) << 4;
    }

    /** 6-bit min of sub-block j (0..7). */
    static int min(byte[] y, int s, int j) {
        return j < 4 ? y[s + j + 4] & 63 : ((y[s + j + 4] & 0xFF) >>> 4) | ((y[s + j] & 0xFF) >>> 6) << 4;
    }

    @Override
    void dequantizeBlock(byte[] y, int yo, float[] x, int xo) {
        float d = Bits.getHalf(y, yo);
        float dmin = Bits.getHalf(y, yo + 2);
        int qs = yo + (five ? 48 : 16);
        for (int c = 0; c < 4; c++) {
            float d1 = d * scale(y, yo + 4, 2 * c);
            float m1 = dmin * min(y, yo + 4, 2 * c);
            float d2 = d * scale(y, yo + 4, 2 * c + 1);
            float m2 = dmin * min(y, yo + 4, 2 * c + 1);
            for (int l = 0; l < 32; l++) {
                int b = y[qs + 32 * c + l] & 0xFF;
                int lo = b & 0x0F;
                int hi = b >>> 4;
                if (five) {
                    int h = y[yo + 16 + l] & 0xFF;
                    lo |= ((h >>> (2 * c)) & 1) << 4;
                    hi |= ((h >>> (2 * c + 1)) & 1) << 4;
                }
                x[xo + 64 * c + l] = d1 * lo - m1;
                x[xo + 64 * c + 32 + l] = d2 * hi - m2;
            }
        }
    }
}
