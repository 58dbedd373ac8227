package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/** Random weights in GGUF formats and their exact values, written and read independently of the backend. */
final class TestWeights {
    private TestWeights() {
    }

    /** Random bytes of an {@code [m, k]} matrix of {@code t}: plain values in [-1, 1], or random blocks. */
    static byte[] random(DType t, SplittableRandom r, int m, int k) {
        int rowBytes = Math.toIntExact(t.rowBytes(k));
        byte[] b = new byte[m * rowBytes];
        MemorySegment s = MemorySegment.ofArray(b);
        for (int row = 0; row < m; row++) {
            long base = (long) row * rowBytes;
            switch (t) {
                case F32 -> {
                    for (int c = 0; c < k; c++) {
                        s.set(ValueLayout.JAVA_FLOAT_UNALIGNED, base + 4L * c, (float) (2 * r.nextDouble() - 1));
                    }
                }
                case F16 -> {
                    for (int c = 0; c < k; c++) {
                        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * c,
                                Float.floatToFloat16((float) (2 * r.nextDouble() - 1)));
                    }
                }
                case BF16 -> {
                    for (int c = 0; c < k; c++) {
                        int bits = Float.floatToRawIntBits((float) (2 * r.nextDouble() - 1));
                        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * c, (short) (bits >>> 16));
                    }
                }
                case Q8_0, Q4_0, Q5_0 -> {
                    byte[] block = new byte[t.blockBytes()];
                    for (int blk = 0; blk < k / 32; blk++) {
                        r.nextBytes(block);
                        long p = base + (long) blk * t.blockBytes();
                        MemorySegment.copy(block, 0, s, ValueLayout.JAVA_BYTE, p, block.length);
                        // A sane scale: random bytes would make NaN/Inf f16 values.
                        s.set(ValueLayout.JAVA_SHORT_UNALIGNED, p,
                                Float.floatToFloat16((float) (0.001 + 0.05 * r.nextDouble())));
                    }
                }
                default -> throw new IllegalArgumentException(t.toString());
            }
        }
        return b;
    }

    /** The exact value of element {@code (row, col)}. */
    static double value(DType t, byte[] bytes, int k, int row, int col) {
        MemorySegment s = MemorySegment.ofArray(bytes);
        long base = (long) row * t.rowBytes(k);
        return switch (t) {
            case F32 -> s.get(ValueLayout.JAVA_FLOAT_UNALIGNED, base + 4L * col);
            case F16 -> Float.float16ToFloat(s.get(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * col));
            case BF16 -> Float.intBitsToFloat((s.get(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * col) & 0xFFFF) << 16);
            case Q8_0, Q4_0, Q5_0 -> {
                long block = base + (long) (col / 32) * t.blockBytes();
                int j = col % 32;
                double d = Float.float16ToFloat(s.get(ValueLayout.JAVA_SHORT_UNALIGNED, block));
                int q = switch (t) {
                    case Q8_0 -> s.get(ValueLayout.JAVA_BYTE, block + 2 + j);
                    case Q4_0 -> {
                        int b = s.get(ValueLayout.JAVA_BYTE, block + 2 + (j % 16)) & 0xFF;
                        yield (j < 16 ? b & 0xF : b >> 4) - 8;
                    }
                    default -> {
                        int qh = s.get(ValueLayout.JAVA_INT_UNALIGNED, block + 2);
                        int b = s.get(ValueLayout.JAVA_BYTE, block + 6 + (j % 16)) & 0xFF;
                        int low = j < 16 ? b & 0xF : b >> 4;
                        yield (low | (((qh >>> j) & 1) << 4)) - 16;
                    }
                };
                yield d * q;
            }
            default -> throw new IllegalArgumentException(t.toString());
        };
    }

    /** {@code x[n, k] · w[m, k]ᵀ} in double. */
    static double[] reference(float[] x, DType t, byte[] w, int n, int m, int k) {
        double[][] wv = new double[m][k];
        for (int i = 0; i < m; i++) {
            for (int c = 0; c < k; c++) {
                wv[i][c] = value(t, w, k, i, c);
            }
        }
        double[] out = new double[n * m];
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < m; i++) {
                double sum = 0;
                for (int c = 0; c < k; c++) {
                    sum += x[r * k + c] * wv[i][c];
                }
                out[r * m + i] = sum;
            }
        }
        return out;
    }

    static float[] uniform(SplittableRandom r, int count) {
        float[] f = new float[count];
        for (int i = 0; i < count; i++) {
            f[i] = (float) (2 * r.nextDouble() - 1);
        }
        return f;
    }

    /** Uniform in [-1, 1], but one value in {@code every} (on average) {@code factor} times larger. */
    static float[] heavyTailed(SplittableRandom r, int count, int every, float factor) {
        float[] f = uniform(r, count);
        for (int i = 0; i < count; i++) {
            if (r.nextInt(every) == 0) {
                f[i] *= factor;
            }
        }
        return f;
    }

    static double nmse(double[] expected, float[] actual) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = expected[i] - actual[i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        return num / den;
    }
}
