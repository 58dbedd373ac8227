package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.conformance.reference.Dequant;
import dev.isthmus.conformance.reference.HalfFloats;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/** Random inputs and their encodings. Everything is little-endian, as ggml and GGUF store it. */
final class Data {
    private Data() {
    }

    static float[] uniform(SplittableRandom r, int n, double lo, double hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return v;
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    static double[][] rows(double[] flat, int cols) {
        double[][] m = new double[flat.length / cols][cols];
        for (int r = 0; r < m.length; r++) {
            System.arraycopy(flat, r * cols, m[r], 0, cols);
        }
        return m;
    }

    static double[][] rows(float[] flat, int cols) {
        return rows(toDouble(flat), cols);
    }

    static double[] flatten(double[][] m) {
        int n = 0;
        for (double[] row : m) {
            n += row.length;
        }
        double[] flat = new double[n];
        int i = 0;
        for (double[] row : m) {
            System.arraycopy(row, 0, flat, i, row.length);
            i += row.length;
        }
        return flat;
    }

    static double[] flatten(double[][][] t) {
        int n = 0;
        for (double[][] m : t) {
            for (double[] row : m) {
                n += row.length;
            }
        }
        double[] flat = new double[n];
        int i = 0;
        for (double[][] m : t) {
            for (double[] row : m) {
                System.arraycopy(row, 0, flat, i, row.length);
                i += row.length;
            }
        }
        return flat;
    }

    /** {@code [a][b][c]} from a flat row-major array. */
    static double[][][] cube(double[] flat, int a, int b, int c) {
        double[][][] t = new double[a][b][c];
        for (int i = 0; i < a; i++) {
            for (int j = 0; j < b; j++) {
                System.arraycopy(flat, (i * b + j) * c, t[i][j], 0, c);
            }
        }
        return t;
    }

    /** F32 bytes of {@code v}. */
    static byte[] f32(float[] v) {
        ByteBuffer bb = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            bb.putFloat(f);
        }
        return bb.array();
    }

    /** {@code v} encoded as F32, F16 or BF16 (rounded to nearest even). */
    static byte[] encode(DType type, float[] v) {
        if (type == DType.F32) {
            return f32(v);
        }
        ByteBuffer bb = ByteBuffer.allocate(v.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            bb.putShort(switch (type) {
                case F16 -> HalfFloats.f16Bits(f);
                case BF16 -> HalfFloats.bf16Bits(f);
                default -> throw new IllegalArgumentException("cannot encode " + type);
            });
        }
        return bb.array();
    }

    /** The values of {@code bytes} holding {@code count} elements of {@code type}. */
    static double[] decode(DType type, byte[] bytes, int count) {
        return Dequant.row(type, bytes, 0, count);
    }

    /**
     * Random contents of a {@code rows × cols} tensor of {@code type}: uniform values in [-1, 1] for the float
     * types, random block contents (random quants, random finite scales) for the block formats.
     */
    static byte[] randomWeights(DType type, SplittableRandom r, int rows, int cols) {
        if (type.isFloatingPoint()) {
            return encode(type, uniform(r, rows * cols, -1, 1));
        }
        if (!type.isQuantized()) {
            throw new IllegalArgumentException("no weights of type " + type);
        }
        return randomBlocks(type, r, Math.toIntExact(rows * (cols / type.blockSize())));
    }

    /**
     * {@code blocks} blocks of random quants with random scales {@code |d| ∈ [1e-3, 0.1]} (either sign) written
     * over the scale fields; 8-bit quants stay in [-127, 127]; Q8_K's block sums match its quants.
     */
    static byte[] randomBlocks(DType type, SplittableRandom r, int blocks) {
        byte[] b = new byte[blocks * type.blockBytes()];
        r.nextBytes(b);
        for (int blk = 0; blk < blocks; blk++) {
            int o = blk * type.blockBytes();
            switch (type) {
                case Q4_0, Q5_0 -> putF16(b, o, scale(r));
                case Q8_0 -> {
                    putF16(b, o, scale(r));
                    avoidMinus128(b, o + 2, 32);
                }
                case Q4_1, Q5_1, Q4_K, Q5_K -> {
                    putF16(b, o, scale(r));
                    putF16(b, o + 2, scale(r));
                }
                case Q2_K -> {
                    putF16(b, o + 80, scale(r));
                    putF16(b, o + 82, scale(r));
                }
                case Q3_K -> putF16(b, o + 108, scale(r));
                case Q6_K -> putF16(b, o + 208, scale(r));
                case Q8_K -> {
                    putF32(b, o, scale(r));
                    avoidMinus128(b, o + 4, 256);
                    for (int j = 0; j < 16; j++) {
                        int sum = 0;
                        for (int i = 0; i < 16; i++) {
                            sum += b[o + 4 + 16 * j + i];
                        }
                        putI16(b, o + 260 + 2 * j, sum);
                    }
                }
                default -> throw new IllegalArgumentException("not a block format: " + type);
            }
        }
        return b;
    }

    private static float scale(SplittableRandom r) {
        double magnitude = 1e-3 + r.nextDouble() * (0.1 - 1e-3);
        return (float) (r.nextBoolean() ? magnitude : -magnitude);
    }

    private static void avoidMinus128(byte[] b, int from, int count) {
        for (int i = from; i < from + count; i++) {
            if (b[i] == Byte.MIN_VALUE) {
                b[i] = -127;
            }
        }
    }

    static void putF16(byte[] b, int o, float v) {
        putI16(b, o, HalfFloats.f16Bits(v));
    }

    static void putI16(byte[] b, int o, int v) {
        b[o] = (byte) v;
        b[o + 1] = (byte) (v >>> 8);
    }

    static void putF32(byte[] b, int o, float v) {
        int bits = Float.floatToRawIntBits(v);
        b[o] = (byte) bits;
        b[o + 1] = (byte) (bits >>> 8);
        b[o + 2] = (byte) (bits >>> 16);
        b[o + 3] = (byte) (bits >>> 24);
    }

    /** {@code count} distinct values from {@code [0, bound)} in random order. */
    static int[] distinct(SplittableRandom r, int count, int bound) {
        int[] all = permutation(r, bound);
        int[] out = new int[count];
        System.arraycopy(all, 0, out, 0, count);
        return out;
    }

    /** A random permutation of {@code 0 .. n-1}. */
    static int[] permutation(SplittableRandom r, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    static long product(long[] shape, int from, int to) {
        long p = 1;
        for (int i = from; i < to; i++) {
            p *= shape[i];
        }
        return p;
    }
}
