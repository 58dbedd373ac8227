package dev.isthmus.conformance.cuda;

import dev.isthmus.api.DType;
import dev.isthmus.backend.cuda.kernels.BlockLayouts;
import dev.isthmus.conformance.reference.Dequant;
import dev.isthmus.conformance.reference.HalfFloats;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA kernels' block decoders, mirrored in plain Java ({@link BlockLayouts}, same indexing as
 * {@code native/cuda/include/isthmus_quant.cuh}), against the conformance suite's independent float64 decoder
 * ({@link Dequant}), for every block format, over random blocks (every bit pattern of the quant bytes, finite
 * random scales) and every 32-element group.
 *
 * <p>These tests live here rather than in backend-cuda because Maven forbids the dependency cycle
 * backend-cuda → conformance-tests → backend-cuda (conformance-tests already depends on backend-cuda).
 */
class BlockLayoutsMirrorTest {
    static final List<DType> FORMATS = List.of(DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q8_0,
            DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K, DType.Q8_K);

    /** Byte offsets of a format's f16 scale fields (the f32 one of Q8_K is handled apart). */
    static int[] halfFields(DType t) {
        return switch (t) {
            case Q4_0, Q5_0, Q8_0 -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q2_K -> new int[] {80, 82};
            case Q3_K -> new int[] {108};
            case Q6_K -> new int[] {208};
            default -> new int[0];
        };
    }

    /** Random bytes with finite scales in [-2, 2] (sometimes tiny or zero). */
    static byte[] randomBlocks(DType t, int blocks, SplittableRandom r) {
        byte[] b = new byte[blocks * t.blockBytes()];
        r.nextBytes(b);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        for (int k = 0; k < blocks; k++) {
            int o = k * t.blockBytes();
            for (int f : halfFields(t)) {
                double v = switch (r.nextInt(8)) {
                    case 0 -> 0.0;
                    case 1 -> r.nextDouble(-1e-5, 1e-5);
                    default -> r.nextDouble(-2, 2);
                };
                bb.putShort(o + f, HalfFloats.f16Bits((float) v));
            }
            if (t == DType.Q8_K) {
                bb.putFloat(o, (float) r.nextDouble(-2, 2));
            }
        }
        return b;
    }

    @TestFactory
    Stream<DynamicTest> mirrorDecodesLikeTheFloat64Reference() {
        return FORMATS.stream().map(t -> DynamicTest.dynamicTest(t.name(), () -> {
            SplittableRandom r = new SplittableRandom(t.ggmlId() * 7919L);
            int blocksPerRow = t.blockSize() == 32 ? 8 : 2;
            int rows = 300;
            int cols = blocksPerRow * t.blockSize();
            int rowBytes = blocksPerRow * t.blockBytes();
            // An odd leading offset, as a row view inside a larger buffer would have.
            int lead = 6;
            byte[] data = new byte[lead + rows * rowBytes];
            System.arraycopy(randomBlocks(t, rows * blocksPerRow, r), 0, data, lead, rows * rowBytes);
            float[] w = new float[32];
            long checked = 0;
            for (int row = 0; row < rows; row++) {
                double[] ref = Dequant.row(t, data, lead + row * rowBytes, cols);
                for (int blk = 0; blk < blocksPerRow; blk++) {
                    double scale = blockScale(t, data, lead + row * rowBytes + blk * t.blockBytes());
                    for (int sub = 0; sub < t.blockSize() / 32; sub++) {
                        int g = blk * (t.blockSize() / 32) + sub;
                        BlockLayouts.dequant32(t, data, lead + row * rowBytes, g, w);
                        for (int e = 0; e < 32; e++) {
                            double expected = ref[32 * g + e];
                            // Float rounding of d*sc*q - dmin*m; a layout error is off by at least one step (|d|).
                            double tol = 1e-6 * scale + 1e-30;
                            if (Math.abs(w[e] - expected) > tol) {
                                throw new AssertionError(t + " row " + row + " group " + g + " element " + e
                                        + ": mirror " + w[e] + ", reference " + expected);
                            }
                            checked++;
                        }
                    }
                }
            }
            assertEquals((long) rows * cols, checked);
        }));
    }

    /** The largest magnitude a block's formula can reach: bounds the float rounding of the mirror. */
    static double blockScale(DType t, byte[] b, int o) {
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        double s = 0;
        for (int f : halfFields(t)) {
            s += Math.abs(HalfFloats.f16ToDouble(bb.getShort(o + f) & 0xFFFF));
        }
        if (t == DType.Q8_K) {
            s = Math.abs(bb.getFloat(o));
        }
        return s * 64 * 64;
    }

    @Test
    void halfFloatRoundingMirrorsMatchTheJdkAndTheReference() {
        SplittableRandom r = new SplittableRandom(11);
        float[] edges = {0f, -0f, 65504f, 65519.996f, 65520f, -65520f, 1e-8f, 5.9604645e-8f, 2.9802322e-8f,
                2.9802326e-8f, 6.1035156e-5f, 6.1035152e-5f, Float.MIN_VALUE, Float.MAX_VALUE,
                Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 1.0009766f, 1.0004883f, 1.0014648f};
        for (float f : edges) {
            assertEquals(Float.floatToFloat16(f) & 0xFFFF, BlockLayouts.f32ToF16(f), "f16 of " + f);
            assertEquals(HalfFloats.bf16Bits(f) & 0xFFFF, BlockLayouts.f32ToBf16(f), "bf16 of " + f);
        }
        for (int i = 0; i < 2_000_000; i++) {
            float f = Float.intBitsToFloat(r.nextInt());
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(Float.float16ToFloat((short) BlockLayouts.f32ToF16(f))));
                assertEquals(HalfFloats.bf16Bits(f) & 0xFFFF, BlockLayouts.f32ToBf16(f));
                continue;
            }
            assertEquals(Float.floatToFloat16(f) & 0xFFFF, BlockLayouts.f32ToF16(f), "f16 of " + f);
            assertEquals(HalfFloats.bf16Bits(f) & 0xFFFF, BlockLayouts.f32ToBf16(f), "bf16 of " + f);
        }
    }
}
