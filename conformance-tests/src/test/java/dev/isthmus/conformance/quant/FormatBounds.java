package dev.isthmus.conformance.quant;

import dev.isthmus.api.DType;
import dev.isthmus.conformance.reference.HalfFloats;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * How far a decoded tensor may be from the floats it was made from, per format, from the format's
 * arithmetic and the block fields as stored (read here straight from the bytes):
 *
 * <ul>
 *   <li>F32 exactly; F16 and BF16 exactly the round-to-nearest-even value ({@link HalfFloats}).</li>
 *   <li>Q8_0: half a step, d / 2, per element.</li>
 *   <li>Q4_0, Q5_0: one step |d| per element (d = max / -2^(b-1) puts the largest magnitude on the lowest
 *       level, so the opposite extreme is a step beyond the highest), plus the f16 rounding of d.</li>
 *   <li>Q4_1, Q5_1: half a step d / 2 per element, plus the f16 rounding of m and d.</li>
 *   <li>K-quants: the RMS error of each super-block at most 0.4 S (Q2_K: 0.55 S), S its largest sub-block step
 *       (Q2_K 15 d, Q3_K 32 |d|, Q4_K and Q5_K 63 d, Q6_K 128 |d|); plain rounding to a grid of step S gives
 *       S / √12 ≈ 0.29 S, the rest allows for the clipping the scale searches choose and for 6-bit (Q2_K:
 *       4-bit) sub-block scales.</li>
 * </ul>
 */
final class FormatBounds {
    private FormatBounds() {
    }

    /** Checks one row: {@code original} as generated, {@code decoded} by the reference, {@code bytes} as stored. */
    static void checkRow(DType t, String what, float[] original, double[] decoded, byte[] bytes, int rowOffset) {
        int bs = t.blockSize();
        for (int block = 0; block < original.length / bs; block++) {
            int o = rowOffset + block * t.blockBytes();
            double sq = 0;
            for (int i = block * bs; i < (block + 1) * bs; i++) {
                double x = original[i];
                double y = decoded[i];
                double err = Math.abs(x - y);
                // Messages are built only on failure: this runs for every element of every tensor.
                switch (t) {
                    case F32 -> check(y == x, what, i, x, y, 0);
                    case F16 -> check(y == HalfFloats.roundToF16(original[i]), what, i, x, y, 0);
                    case BF16 -> check(y == HalfFloats.roundToBf16(original[i]), what, i, x, y, 0);
                    case Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 -> {
                        // 1e-4: the quantizer computes x / d in f32, which may round a value lying within
                        // 2^-23 · 127 steps of a half step to the farther level
                        double bound = elementBound(t, bytes, o) * (1 + 1e-4);
                        check(err <= bound, what, i, x, y, bound);
                    }
                    case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> sq += err * err;
                    default -> throw new AssertionError("no bound for " + t);
                }
            }
            if (bs == 256) {
                double rms = Math.sqrt(sq / bs);
                double bound = rmsBound(t, bytes, o);
                assertTrue(rms <= bound, what + " block " + block + ": RMS error " + rms + " > " + bound);
            }
        }
    }

    private static void check(boolean ok, String what, int i, double x, double y, double bound) {
        if (!ok) {
            fail(what + " element " + i + ": " + x + " decoded as " + y + " (error " + Math.abs(x - y) + ", bound " + bound + ")");
        }
    }

    private static double f16(byte[] b, int o) {
        return HalfFloats.f16ToDouble((b[o] & 0xFF) | (b[o + 1] & 0xFF) << 8);
    }

    private static double elementBound(DType t, byte[] b, int o) {
        return switch (t) {
            case Q8_0 -> f16(b, o) / 2;
            case Q4_0 -> Math.abs(f16(b, o)) * (1 + 8 * 0x1p-10);
            case Q5_0 -> Math.abs(f16(b, o)) * (1 + 16 * 0x1p-10);
            case Q4_1 -> f16(b, o) / 2 + 0x1p-10 * (Math.abs(f16(b, o + 2)) + 15 * f16(b, o));
            case Q5_1 -> f16(b, o) / 2 + 0x1p-10 * (Math.abs(f16(b, o + 2)) + 31 * f16(b, o));
            default -> throw new AssertionError(t);
        };
    }

    private static double rmsBound(DType t, byte[] b, int o) {
        return switch (t) {
            case Q2_K -> 0.55 * 15 * f16(b, o + 80);
            case Q3_K -> 0.4 * 32 * Math.abs(f16(b, o + 108));
            case Q4_K, Q5_K -> 0.4 * 63 * f16(b, o);
            case Q6_K -> 0.4 * 128 * Math.abs(f16(b, o + 208));
            default -> throw new AssertionError(t);
        };
    }
}
