package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Quantize → dequantize round trips of every format within bounds derived from each format's arithmetic,
 * llama.cpp's own quality thresholds, and exact bytes for inputs whose encoding can be worked out by hand.
 */
class QuantizerTest {
    /** Every type a quantizer exists for. */
    private static Stream<DType> types() {
        return Arrays.stream(DType.values()).filter(Quantizer::supports);
    }

    private static float[] gaussian(long seed, int n, double std) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * std);
        }
        return x;
    }

    private static byte[] encode(DType t, float[] x) {
        byte[] b = new byte[(int) t.rowBytes(x.length)];
        Quantizer.create(t).quantize(x, 0, x.length, b, 0);
        return b;
    }

    private static float[] decode(DType t, byte[] b, int n) {
        float[] y = new float[n];
        Quantizer.create(t).dequantize(b, 0, n, y, 0);
        return y;
    }

    private static float half(byte[] b, int o) {
        return Float.float16ToFloat((short) ((b[o] & 0xFF) | (b[o + 1] & 0xFF) << 8));
    }

    /**
     * The largest error each element may have, from the block's stored fields:
     * <ul>
     *   <li>Q8_0, Q8_K: half a step, d / 2 (the element of largest magnitude fixes d, so nothing is clipped).</li>
     *   <li>Q4_0, Q5_0: one step |d|: d = max / -2^(b-1) maps the largest-magnitude element onto the lowest level,
     *       so the opposite extreme lies one step beyond the highest level; plus the f16 rounding of d, which
     *       moves the top level by at most 2^(b-1) · 2^-11 · |d|.</li>
     *   <li>Q4_1, Q5_1: half a step d / 2, plus the f16 rounding of m and of d (at most 2^-11 of |m| and of the
     *       range (2^b - 1) d each).</li>
     * </ul>
     * K-quants have no useful per-element bound (6-bit sub-block scales can clip); see {@link #rmsBound}.
     */
    private static double elementBound(DType t, byte[] b, int block) {
        int o = block * t.blockBytes();
        return switch (t) {
            case Q8_0 -> half(b, o) / 2;
            case Q8_K -> Math.abs(Float.intBitsToFloat((b[o] & 0xFF) | (b[o + 1] & 0xFF) << 8
                    | (b[o + 2] & 0xFF) << 16 | (b[o + 3] & 0xFF) << 24)) / 2;
            case Q4_0 -> Math.abs(half(b, o)) * (1 + 8 * 0x1p-10);
            case Q5_0 -> Math.abs(half(b, o)) * (1 + 16 * 0x1p-10);
            case Q4_1 -> half(b, o) / 2 + 0x1p-10 * (Math.abs(half(b, o + 2)) + 15 * half(b, o));
            case Q5_1 -> half(b, o) / 2 + 0x1p-10 * (Math.abs(half(b, o + 2)) + 31 * half(b, o));
            default -> Double.NaN;
        };
    }

    /**
     * The largest RMS error of a K-quant super-block, relative to its largest sub-block step S as stored: Q2_K
     * S = 15 d, Q4_K S = 63 d, Q5_K S = 63 d (the largest 4-/6-bit sub-block scale is the full range), Q3_K
     * S = 32 |d|, Q6_K S = 128 |d| (the largest sub-block scale maps to -32 / -128). Plain rounding to a grid of
     * step S has an RMS error of S / √12 ≈ 0.29 S; the bound allows 0.4 S for the clipping the searches choose
     * and for sub-block scales rounded to 6 (Q2_K: 4) bits, and 0.55 S for Q2_K, whose four levels and
     * absolute-error search clip the tails on purpose.
     */
    private static double rmsBound(DType t, byte[] b, int block) {
        int o = block * t.blockBytes();
        return switch (t) {
            case Q2_K -> 0.55 * 15 * half(b, o + 80);
            case Q3_K -> 0.4 * 32 * Math.abs(half(b, o + 108));
            case Q4_K, Q5_K -> 0.4 * 63 * half(b, o);
            case Q6_K -> 0.4 * 128 * Math.abs(half(b, o + 208));
            default -> Double.NaN;
        };
    }

    @TestFactory
    Stream<DynamicTest> roundTripWithinTheFormatBound() {
        return types().map(t -> DynamicTest.dynamicTest(t.name(), () -> {
            // 16 super-blocks of Gaussian data of three different scales, and a block with an outlier
            int n = 4096;
            float[] x = gaussian(t.ordinal(), n, 1);
            for (int i = 0; i < n; i++) {
                x[i] *= (i / 1024 == 0) ? 0.02f : (i / 1024 == 1) ? 3f : 1f;
            }
            x[3000] = 40;
            byte[] b = encode(t, x);
            float[] y = decode(t, b, n);
            int bs = t.blockSize();
            for (int block = 0; block < n / bs; block++) {
                double sq = 0;
                for (int i = block * bs; i < (block + 1) * bs; i++) {
                    double err = Math.abs((double) y[i] - x[i]);
                    double bound = switch (t) {
                        case F32 -> 0;
                        case F16 -> Math.abs(x[i]) * 0x1p-11 + 0x1p-25;
                        case BF16 -> Math.abs(x[i]) * 0x1p-8;
                        // 1e-4 of slack: x / d is computed in f32 (up to 127 · 2^-23 steps off)
                        case Q8_0, Q8_K, Q4_0, Q5_0, Q4_1, Q5_1 -> elementBound(t, b, block) * (1 + 1e-4);
                        default -> Double.POSITIVE_INFINITY;
                    };
                    if (!(err <= bound)) { // also catches NaN
                        fail(t + " element " + i + " of block " + block + ": " + x[i] + " decoded as " + y[i]
                                + ", error " + err + " > " + bound);
                    }
                    sq += err * err;
                }
                if (bs == 256) {
                    double rms = Math.sqrt(sq / bs);
                    double bound = t == DType.Q8_K ? Double.POSITIVE_INFINITY : rmsBound(t, b, block);
                    assertTrue(rms <= bound, t + " block " + block + ": RMS error " + rms + " > " + bound);
                }
            }
        }));
    }

    /**
     * llama.cpp's test-quantize-fns: 4096 values {@code 0.1 + 2 cos(i)}, error {@code sqrt(Σ diff²) / n} below
     * 0.002 (Q2_K: 0.0075, Q3_K: 0.004). Our reference quantizers must do at least as well as ggml's do there.
     */
    @TestFactory
    Stream<DynamicTest> llamaCppQualityThresholds() {
        return types().filter(DType::isQuantized).map(t -> DynamicTest.dynamicTest(t.name(), () -> {
            int n = 4096;
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = (float) (0.1 + 2 * Math.cos(i));
            }
            float[] y = decode(t, encode(t, x), n);
            double sum = 0;
            for (int i = 0; i < n; i++) {
                sum += ((double) x[i] - y[i]) * ((double) x[i] - y[i]);
            }
            double error = Math.sqrt(sum) / n;
            double max = t == DType.Q2_K ? 0.0075 : t == DType.Q3_K ? 0.0040 : 0.002;
            assertTrue(error < max, t + ": " + error + " >= " + max);
        }));
    }

    /** Relative RMS error on N(0, 0.02) weights, as for the synthetic models: ordered by bits per weight. */
    @Test
    void moreBitsMeanLessErrorOnGaussianWeights() {
        DType[] byBits = {DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K, DType.Q8_0, DType.BF16, DType.F16};
        float[] x = gaussian(7, 1 << 14, 0.02);
        double previous = Double.POSITIVE_INFINITY;
        for (DType t : byBits) {
            float[] y = decode(t, encode(t, x), x.length);
            double num = 0;
            double den = 0;
            for (int i = 0; i < x.length; i++) {
                num += ((double) x[i] - y[i]) * ((double) x[i] - y[i]);
                den += (double) x[i] * x[i];
            }
            double rel = Math.sqrt(num / den);
            assertTrue(rel < previous, t + ": relative RMS error " + rel + " not below the previous type's " + previous);
            previous = rel;
        }
        assertTrue(previous < 3e-4, "F16 relative error " + previous);
    }

    @TestFactory
    Stream<DynamicTest> zerosGiveZeroScalesAndNoNaN() {
        return types().map(t -> DynamicTest.dynamicTest(t.name(), () -> {
            float[] x = new float[512];
            byte[] b = encode(t, x);
            float[] y = decode(t, b, x.length);
            for (float v : y) {
                assertEquals(0f, Math.abs(v), 0.0, t + " decodes zeros to " + v);
            }
            // the scale fields: Q2_K d/dmin at 80/82, Q3_K d at 108, Q6_K d at 208, the others first
            int scaleOffset = switch (t) {
                case Q2_K -> 80;
                case Q3_K -> 108;
                case Q6_K -> 208;
                default -> 0;
            };
            if (t.isQuantized()) {
                for (int block = 0; block < x.length / t.blockSize(); block++) {
                    int o = block * t.blockBytes() + scaleOffset;
                    // ggml's d = max / -8 makes Q4_0's and Q5_0's zero scale -0: still zero
                    float d = t == DType.Q8_K ? Float.intBitsToFloat((b[o] & 0xFF) | (b[o + 1] & 0xFF) << 8
                            | (b[o + 2] & 0xFF) << 16 | (b[o + 3] & 0xFF) << 24) : half(b, o);
                    assertEquals(0f, Math.abs(d), 0.0, t + " block " + block + " scale is " + d);
                }
            }
        }));
    }

    @Test
    void q8_0EqualValuesUseTheFullRange() {
        float[] x = new float[32];
        Arrays.fill(x, 0.5f);
        byte[] b = encode(DType.Q8_0, x);
        assertEquals(Float.floatToFloat16(0.5f / 127), (short) ((b[0] & 0xFF) | (b[1] & 0xFF) << 8));
        for (int i = 0; i < 32; i++) {
            assertEquals(127, b[2 + i], "quant " + i);
        }
    }

    /** Q4_0 with x = (8 - q) / 4: d = 2 / -8 exactly, and element j's quant is j % 16, so nibbles read 0x00 … 0xFF. */
    @Test
    void q4_0NibbleLayout() {
        float[] x = new float[32];
        for (int i = 0; i < 32; i++) {
            x[i] = (8 - i % 16) / 4f;
        }
        byte[] b = encode(DType.Q4_0, x);
        assertEquals(-0.25f, half(b, 0));
        for (int j = 0; j < 16; j++) {
            assertEquals((byte) (j | j << 4), b[2 + j], "qs[" + j + "]");
        }
        assertArrayEquals(x, decode(DType.Q4_0, b, 32), 0f); // 0 decodes as (8 - 8) · -0.25 = -0
    }

    /** Q5_0 with x = (16 - q) / 8 and q = 31 - i: the high bits of elements 0-15 are set, of 16-31 clear. */
    @Test
    void q5_0HighBitLayout() {
        float[] x = new float[32];
        for (int i = 0; i < 32; i++) {
            x[i] = (16 - (31 - i)) / 8f; // the most negative, -15/8, is not the largest magnitude: 2 is (q = 0)
        }
        x[31] = 2f; // q = 0
        byte[] b = encode(DType.Q5_0, x);
        assertEquals(-0.125f, half(b, 0));
        int qh = (b[2] & 0xFF) | (b[3] & 0xFF) << 8 | (b[4] & 0xFF) << 16 | (b[5] & 0xFF) << 24;
        assertEquals(0x0000FFFF, qh);
        for (int j = 0; j < 16; j++) {
            int lo = (31 - j) & 0x0F;
            int hi = j == 15 ? 0 : (31 - (j + 16)) & 0x0F;
            assertEquals((byte) (lo | hi << 4), b[6 + j], "qs[" + j + "]");
        }
        assertArrayEquals(x, decode(DType.Q5_0, b, 32), 0f);
    }

    /** Q4_1 of 0..15 step 1: m = 0, d = 1, q = x, all exact. */
    @Test
    void q4_1RampIsExact() {
        float[] x = new float[32];
        for (int i = 0; i < 32; i++) {
            x[i] = i % 16;
        }
        byte[] b = encode(DType.Q4_1, x);
        assertEquals(1f, half(b, 0));
        assertEquals(0f, half(b, 2));
        assertArrayEquals(x, decode(DType.Q4_1, b, 32));
    }

    /**
     * Q6_K of 256 ones: every sub-block fits scale -1/32 with quant -32, the scales quantize to -128 against
     * d = 2^-12, so ql and qh are zero, every scale byte is 0x80, and 1 decodes exactly.
     */
    @Test
    void q6_KOnesAreExact() {
        float[] x = new float[256];
        Arrays.fill(x, 1f);
        byte[] b = encode(DType.Q6_K, x);
        for (int i = 0; i < 192; i++) {
            assertEquals(0, b[i], "ql/qh byte " + i);
        }
        for (int i = 192; i < 208; i++) {
            assertEquals((byte) 0x80, b[i], "scale byte " + i);
        }
        assertEquals(0x1p-12f, half(b, 208));
        assertArrayEquals(x, decode(DType.Q6_K, b, 256));
    }

    /** Q4_K of 256 equal positive values: min 0 (dmin 0), every quant 15 and every 6-bit scale 63. */
    @Test
    void q4_KEqualValues() {
        float[] x = new float[256];
        Arrays.fill(x, 0.5f);
        byte[] b = encode(DType.Q4_K, x);
        assertEquals(0f, half(b, 2), "dmin");
        for (int j = 0; j < 4; j++) {
            assertEquals(63 | 0xC0, b[4 + j] & 0xFF, "scale byte " + j + " (scale 63; top bits of scale " + (j + 4) + ")");
            assertEquals(0, b[8 + j] & 0xFF, "min byte " + j);
            assertEquals(0x0F, b[12 + j] & 0xFF, "low nibbles of scale/min " + (j + 4));
        }
        for (int i = 16; i < 144; i++) {
            assertEquals((byte) 0xFF, b[i], "quant byte " + i);
        }
        for (float v : decode(DType.Q4_K, b, 256)) {
            assertEquals(0.5f, v, 0.5f * 0x1p-10);
        }
    }

    /**
     * Q3_K of alternating ±1, worked through by hand: each sub-block's largest magnitude is the first +1, so the
     * scale search starts at -4 / 1 and settles on scale -0.28 (+1 → -4, -1 → 3; ggml's refinement only moves
     * quants when the sum of w·x·l is positive, which it is not here). Every sub-block scale then quantizes to
     * -32 with d = 0.28 / 32, and the requantized values are +1 → 1.12 (quant -4, third bit clear) and
     * -1 → -0.84 (quant 3, third bit set).
     */
    @Test
    void q3_KSignsGoToTheHighBitMask() {
        float[] x = new float[256];
        for (int i = 0; i < 256; i++) {
            x[i] = (i % 2 == 0) ? 1f : -1f;
        }
        byte[] b = encode(DType.Q3_K, x);
        float[] y = decode(DType.Q3_K, b, 256);
        assertEquals(0.28f / 32, half(b, 108), 0.28f / 32 * 0x1p-10);
        for (int i = 0; i < 256; i++) {
            assertEquals(x[i] > 0 ? 1.12f : -0.84f, y[i], 0.002, "element " + i);
            boolean high = ((b[i % 32] >>> (i / 32)) & 1) != 0;
            assertEquals(x[i] < 0, high, "hmask bit of element " + i);
        }
        for (int i = 96; i < 108; i++) {
            assertEquals(0, b[i], "scale byte " + i + ": every 6-bit scale is -32 + 32 = 0");
        }
    }

    @Test
    void f16RoundsToNearestEven() {
        Quantizer q = Quantizer.create(DType.F16);
        float[] in = {1 + 0x1p-11f, 1 + 3 * 0x1p-11f, 65520f, -0f, Float.NaN, Float.NEGATIVE_INFINITY, 0x1p-25f, 0x1.8p-24f};
        float[] expected = {1f, 1 + 0x1p-9f, Float.POSITIVE_INFINITY, -0f, Float.NaN, Float.NEGATIVE_INFINITY, 0f, 0x1p-23f};
        byte[] b = new byte[2 * in.length];
        q.quantize(in, 0, in.length, b, 0);
        float[] out = new float[in.length];
        q.dequantize(b, 0, in.length, out, 0);
        assertArrayEquals(expected, out);
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(out[3]), "sign of -0");
    }

    @Test
    void bf16RoundsToNearestEven() {
        Quantizer q = Quantizer.create(DType.BF16);
        float[] in = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, 1 + 0x1.8p-8f, Float.MAX_VALUE, -0f, Float.NaN,
                Float.intBitsToFloat(0x7F800001)};
        float[] expected = {1f, 1 + 0x1p-6f, 1 + 0x1p-7f, Float.POSITIVE_INFINITY, -0f, Float.NaN, Float.NaN};
        byte[] b = new byte[2 * in.length];
        q.quantize(in, 0, in.length, b, 0);
        float[] out = new float[in.length];
        q.dequantize(b, 0, in.length, out, 0);
        assertArrayEquals(expected, out);
        assertEquals(0x3F80, (b[0] & 0xFF) | (b[1] & 0xFF) << 8);
    }

    @Test
    void rowsMustBeWholeBlocks() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Quantizer.create(DType.Q4_K).quantize(new float[300], 0, 300, new byte[1000], 0));
        assertTrue(e.getMessage().contains("256"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Quantizer.create(DType.I32));
    }

    /** Offsets are honoured on both sides: a row encoded in the middle of larger arrays equals one alone. */
    @Test
    void offsetsAreHonoured() {
        float[] x = gaussian(3, 1024, 1);
        for (DType t : types().toList()) {
            Quantizer q = Quantizer.create(t);
            byte[] alone = encode(t, Arrays.copyOfRange(x, 256, 768));
            byte[] inside = new byte[alone.length + 10];
            q.quantize(x, 256, 512, inside, 7);
            assertArrayEquals(alone, Arrays.copyOfRange(inside, 7, 7 + alone.length), t.name());
            float[] y = new float[520];
            q.dequantize(inside, 7, 512, y, 5);
            assertArrayEquals(decode(t, alone, 512), Arrays.copyOfRange(y, 5, 517), t.name());
        }
    }
}
