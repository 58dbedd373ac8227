package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/** Builders of test tensors. */
final class TestData {
    private TestData() {
    }

    static Tensor f32(Arena arena, float[] values, long... shape) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        t.copyFrom(values);
        return t;
    }

    static Tensor bytes(Arena arena, DType type, byte[] bytes, long... shape) {
        Tensor t = Tensor.allocate(arena, type, shape);
        MemorySegment.copy(bytes, 0, t.segment(), ValueLayout.JAVA_BYTE, 0, bytes.length);
        return t;
    }

    static float[] randomFloats(Random random, int count) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }

    /** A tensor of random weight rows and the float64 decoding of each row, to compute expected results from. */
    record RandomWeights(Tensor tensor, double[][] reference) {
    }

    /** {@code rows} rows of {@link #randomRow}, drawn in order from {@code random}, as one tensor [rows, count]. */
    static RandomWeights randomWeights(Arena arena, Random random, DType type, int rows, int count) {
        double[][] reference = new double[rows][];
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (int r = 0; r < rows; r++) {
            byte[] row = randomRow(random, type, count);
            reference[r] = ReferenceDecoder.decode(type, row, count);
            all.writeBytes(row);
        }
        return new RandomWeights(bytes(arena, type, all.toByteArray(), rows, count), reference);
    }

    private static void putShort(byte[] b, int at, int value) {
        b[at] = (byte) value;
        b[at + 1] = (byte) (value >> 8);
    }

    private static void putHalf(byte[] b, int at, float value) {
        putShort(b, at, Float.floatToFloat16(value));
    }

    /** Random row bytes of {@code count} elements of {@code type}, with sane scale fields. */
    static byte[] randomRow(Random random, DType type, int count) {
        int blocks = count / type.blockSize();
        byte[] b = new byte[blocks * type.blockBytes()];
        random.nextBytes(b);
        for (int blk = 0; blk < blocks; blk++) {
            int o = blk * type.blockBytes();
            float d = 0.002f + random.nextFloat() * 0.05f;
            float m = (random.nextFloat() - 0.5f) * 0.1f;
            switch (type) {
                case F32 -> {
                    int bits = Float.floatToIntBits((float) random.nextGaussian());
                    putShort(b, o, bits);
                    putShort(b, o + 2, bits >>> 16);
                }
                case F16 -> putHalf(b, o, (float) random.nextGaussian());
                case BF16 -> putShort(b, o, Float.floatToIntBits((float) random.nextGaussian()) >>> 16);
                case Q8_0, Q4_0, Q5_0 -> putHalf(b, o, d);
                case Q4_1, Q5_1 -> {
                    putHalf(b, o, d);
                    putHalf(b, o + 2, m);
                }
                case Q2_K -> {
                    putHalf(b, o + 80, d);
                    putHalf(b, o + 82, d / 3);
                }
                case Q3_K -> putHalf(b, o + 108, d);
                case Q4_K, Q5_K -> {
                    putHalf(b, o, d / 8);
                    putHalf(b, o + 2, d / 16);
                }
                case Q6_K -> putHalf(b, o + 208, d / 16);
                case Q8_K -> {
                    int bits = Float.floatToIntBits(d);
                    putShort(b, o, bits);
                    putShort(b, o + 2, bits >>> 16);
                }
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        return b;
    }
}
