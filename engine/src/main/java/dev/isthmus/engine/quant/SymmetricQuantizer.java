package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * Q4_0 and Q5_0: 32 elements, x = (q - 2^(b-1)) · d with q in [0, 2^b - 1].
 *
 * <p>As in ggml, d = max / -2^(b-1) where max is the element of largest magnitude (with its sign), so
 * that element is represented exactly (q = 0) and the opposite extreme is one step short.
 * Layouts: Q4_0 = f16 d, u8 qs[16]; Q5_0 = f16 d, u32 qh, u8 qs[16]. Byte {@code qs[j]} holds element
 * j in its low nibble and element j + 16 in its high nibble; bit j of {@code qh} is bit 4 of element j.
 */
final class SymmetricQuantizer extends BlockQuantizer {
    private final int bits;
    private final int offset;
    private final int[] q = new int[32];

    SymmetricQuantizer(DType dtype) {
        super(dtype);
        bits = switch (dtype) {
            case Q4_0 -> 4;
            case Q5_0 -> 5;
            default -> throw new IllegalArgumentException(dtype + " is not Q4_0 or Q5_0");
        };
        offset = 1 << (bits - 1);
    }

    @Override
    void quantizeBlock(float[] x, int xo, byte[] y, int yo) {
        float amax = 0;
        float max = 0;
        for (int i = 0; i < 32; i++) {
            float v = x[xo + i];
            if (Math.abs(v) > amax) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = Bits.putHalf(y, yo, max / -offset);
        float id = d != 0 ? 1 / d : 0;
        int top = 2 * offset - 1;
        for (int i = 0; i < 32; i++) {
            q[i] = Bits.clamp((int) Math.floor(x[xo + i] * id + offset + 0.5f), 0, top);
        }
        int qs = yo + 2;
        if (bits == 5) {
            int qh = 0;
            for (int i = 0; i < 32; i++) {
                qh |= (q[i] >>> 4) << i;
            }
            Bits.putInt(y, yo + 2, qh);
            qs += 4;
        }
        for (int j = 0; j < 16; j++) {
            y[qs + j] = (byte) ((q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4);
        }
    }

    @Override
    void dequantizeBlock(byte[] y, int yo, float[] x, int xo) {
        float d = Bits.getHalf(y, yo);
        int qh = bits == 5 ? Bits.getInt(y, yo + 2) : 0;
        int qs = yo + (bits == 5 ? 6 : 2);
        for (int j = 0; j < 16; j++) {
            int b = y[qs + j] & 0xFF;
            int lo = (b & 0x0F) | ((qh >>> j) & 1) << 4;
            int hi = (b >>> 4) | ((qh >>> (j + 16)) & 1) << 4;
            x[xo + j] = (lo - offset) * d;
            x[xo + j + 16] = (hi - offset) * d;
        }
    }
}
