package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * Q4_0 and Q5_0: 32 elements, x = (q - 2^(b-1)) · d with q in [0, 2^b - 1].
 *
 * <p>As in ggml, d = max / -2^(b-1) where max is the element of largest magnitude (with its sign), so
 * that element is represented exactly (q = 0) and the opposite extreme is one step short.
 * Layouts: Q4_0 = f16 d, u8 qs[16]; Q5_0 = f16 d, u32 qh, u8 qs[16] ({@link NibbleQuantizer}).
 */
final class SymmetricQuantizer extends NibbleQuantizer {
    private final int offset;

    SymmetricQuantizer(DType dtype) {
        super(dtype, switch (dtype) {
            case Q4_0 -> 4;
            case Q5_0 -> 5;
            default -> throw new IllegalArgumentException(dtype + " is not Q4_0 or Q5_0");
        });
        offset = 1 << (bits - 1);
    }

    @Override
    void quantizeBlock(float[] x, int xo, byte[] y, int yo) {
        float max = ScaleSearch.signedMax(x, xo, 32);
        float d = Bits.putHalf(y, yo, max / -offset);
        float id = d != 0 ? 1 / d : 0;
        int top = 2 * offset - 1;
        for (int i = 0; i < 32; i++) {
            q[i] = Bits.clamp((int) Math.floor(x[xo + i] * id + offset + 0.5f), 0, top);
        }
        packQuants(y, yo + 2);
    }

    @Override
    void dequantizeBlock(byte[] y, int yo, float[] x, int xo) {
        float d = Bits.getHalf(y, yo);
        for (int i = 0; i < 32; i++) {
            x[xo + i] = (quant(y, yo + 2, i) - offset) * d;
        }
    }
}
