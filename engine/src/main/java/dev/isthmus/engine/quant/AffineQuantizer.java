package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * Q4_1 and Q5_1: 32 elements, x = q · d + m with q in [0, 2^b - 1], m the block minimum and d its range
 * over 2^b - 1 steps. Layouts: Q4_1 = f16 d, f16 m, u8 qs[16]; Q5_1 = f16 d, f16 m, u32 qh, u8 qs[16]
 * (nibbles and high bits placed as in Q4_0/Q5_0: {@link NibbleQuantizer}).
 */
final class AffineQuantizer extends NibbleQuantizer {
    AffineQuantizer(DType dtype) {
        super(dtype, switch (dtype) {
            case Q4_1 -> 4;
            case Q5_1 -> 5;
            default -> throw new IllegalArgumentException(dtype + " is not Q4_1 or Q5_1");
        });
    }

    @Override
    void quantizeBlock(float[] x, int xo, byte[] y, int yo) {
        float min = Float.MAX_VALUE;
        float max = -Float.MAX_VALUE;
        for (int i = 0; i < 32; i++) {
            min = Math.min(min, x[xo + i]);
            max = Math.max(max, x[xo + i]);
        }
        int top = (1 << bits) - 1;
        // The minimum is stored first so that the step spans from the minimum as it will be decoded.
        float m = Bits.putHalf(y, yo + 2, min);
        float d = Bits.putHalf(y, yo, (max - m) / top);
        float id = d != 0 ? 1 / d : 0;
        for (int i = 0; i < 32; i++) {
            q[i] = Bits.clamp((int) Math.floor((x[xo + i] - m) * id + 0.5f), 0, top);
        }
        packQuants(y, yo + 4);
    }

    @Override
    void dequantizeBlock(byte[] y, int yo, float[] x, int xo) {
        float d = Bits.getHalf(y, yo);
        float m = Bits.getHalf(y, yo + 2);
        for (int i = 0; i < 32; i++) {
            x[xo + i] = quant(y, yo + 4, i) * d + m;
        }
    }
}
