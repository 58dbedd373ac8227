package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * The symmetric 8-bit formats: x = q · d with q in [-127, 127].
 *
 * <p>Q8_0 (34 bytes per 32): f16 d = amax / 127, then i8 qs[32]. Q8_K (292 bytes per 256, the
 * activation format of the K-quant dot products): f32 d chosen so that the element of largest magnitude
 * maps to exactly -127 (its sign flips the scale, as in ggml), i8 qs[256], then i16 bsums[16], the sums
 * of each 16 quants.
 */
final class Q8Quantizer extends BlockQuantizer {
    Q8Quantizer(DType dtype) {
        super(dtype);
        if (dtype != DType.Q8_0 && dtype != DType.Q8_K) {
            throw new IllegalArgumentException(dtype + " is not an 8-bit symmetric format");
        }
    }

    @Override
    void quantizeBlock(float[] x, int xo, byte[] y, int yo) {
        if (dtype() == DType.Q8_0) {
            quantizeQ8_0(x, xo, y, yo);
        } else {
            quantizeQ8_K(x, xo, y, yo);
        }
    }

    private static void quantizeQ8_0(float[] x, int xo, byte[] y, int yo) {
        float amax = 0;
        for (int i = 0; i < 32; i++) {
            amax = Math.max(amax, Math.abs(x[xo + i]));
        }
        float d = Bits.putHalf(y, yo, amax / 127);
        float id = d != 0 ? 1 / d : 0;
        for (int i = 0; i < 32; i++) {
            // f16 rounding may make d a little small: |x| * id stays below 127.07, so the clamp only
            // turns a would-be 128 (impossible) or a rounding artefact into a valid i8
            y[yo + 2 + i] = (byte) Bits.clamp(Bits.nearestInt(x[xo + i] * id), -127, 127);
        }
    }

    private static void quantizeQ8_K(float[] x, int xo, byte[] y, int yo) {
        float max = ScaleSearch.signedMax(x, xo, 256);
        if (max == 0) {
            java.util.Arrays.fill(y, yo, yo + 292, (byte) 0);
            return;
        }
        float iscale = -127f / max;
        for (int i = 0; i < 256; i++) {
            y[yo + 4 + i] = (byte) Math.min(127, Bits.nearestInt(iscale * x[xo + i]));
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) {
                sum += y[yo + 4 + 16 * g + i];
            }
            Bits.putShort(y, yo + 260 + 2 * g, sum);
        }
        Bits.putFloat(y, yo, 1 / iscale);
    }

    @Override
    void dequantizeBlock(byte[] y, int yo, float[] x, int xo) {
        if (dtype() == DType.Q8_0) {
            float d = Bits.getHalf(y, yo);
            for (int i = 0; i < 32; i++) {
                x[xo + i] = y[yo + 2 + i] * d;
            }
        } else {
            float d = Bits.getFloat(y, yo);
            for (int i = 0; i < 256; i++) {
                x[xo + i] = y[yo + 4 + i] * d;
            }
        }
    }
}
