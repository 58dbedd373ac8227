package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.IntStream;

/**
 * Rewrites GGUF block-quantized weights ({@code Q8_0}, {@code Q4_0}, {@code Q5_0}: {@code d · q} with an f16
 * {@code d} per block of 32) for oneDNN's matmul. A matrix {@code [m, k]} (one output feature per row, as GGUF
 * stores it) becomes values in row-major {@code [m, k]} order, oneDNN's {@code ba} layout of the {@code [k, m]}
 * weights, in one of three forms:
 * <ul>
 *   <li>{@link #unpack}: exactly, as s8 integers and one f16 scale per group of 32 elements of a row, stored
 *       {@code [k / group, m]}, for weight decompression ({@code fpmath_mode} bf16 applied to integer weights);</li>
 *   <li>{@link #toBf16}: each value rounded once to bf16;</li>
 *   <li>{@link #toChannelS8}: re-quantized to s8 with one f32 scale per row, for the int8 matmul (not exact).</li>
 * </ul>
 * The integers of a block: {@code Q8_0} q ∈ [-128, 127]; {@code Q4_0} q − 8, q ∈ [0, 15] (s8, not s4: oneDNN 3.11
 * can neither reorder s4 into its blocked layout nor multiply plain s4 at a useful speed); {@code Q5_0} q − 16,
 * q ∈ [0, 31] (4 low bits in {@code qs}, the 5th in {@code qh}).
 * Formats with a per-block minimum ({@code Q4_1}, {@code Q5_1}, k-quants with mins) have no exact integer
 * zero point and are not handled here.
 */
final class WeightPacking {
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED;
    /** Each converting thread's row of values, reused while rows keep their length. */
    private static final ThreadLocal<float[]> ROW = ThreadLocal.withInitial(() -> new float[0]);

    private WeightPacking() {
    }

    /** Whether {@code t} can be rewritten exactly. */
    static boolean supports(DType t) {
        return t == DType.Q8_0 || t == DType.Q4_0 || t == DType.Q5_0;
    }

    /** Elements per scale. */
    static int group(DType t) {
        return t.blockSize();
    }

    /** Bytes of the s8 weights of an {@code [m, k]} matrix. */
    static long quantBytes(DType t, long m, long k) {
        return m * k;
    }

    /** Bytes of the f16 scales of an {@code [m, k]} matrix. */
    static long scaleBytes(DType t, long m, long k) {
        return m * (k / group(t)) * 2;
    }

    /**
     * Unpacks {@code m} rows of {@code k} elements ({@code rowStride} bytes apart in {@code src}) into
     * {@code quant} and {@code scales}, in parallel over rows when {@code src} may be read by other threads.
     */
    static void unpack(DType t, MemorySegment src, long rowStride, int m, int k, MemorySegment quant,
                       MemorySegment scales) {
        int blocks = k / t.blockSize();
        rows(src, m).forEach(row -> {
            long in = row * rowStride;
            for (int b = 0; b < blocks; b++) {
                long block = in + (long) b * t.blockBytes();
                // The f16 scale, bit for bit.
                scales.set(SHORT, ((long) b * m + row) * 2, src.get(SHORT, block));
                long firstElement = (long) row * k + (long) b * 32;
                switch (t) {
                    case Q8_0 -> MemorySegment.copy(src, block + 2, quant, firstElement, 32);
                    case Q4_0 -> q4_0(src, block + 2, quant, firstElement);
                    case Q5_0 -> q5_0(src, block, quant, firstElement);
                    default -> throw new IllegalArgumentException("cannot unpack " + t);
                }
            }
        });
    }

    /**
     * Writes {@code m} rows of {@code k} elements as bf16 in row-major {@code [m, k]} order: each {@code d · q}
     * computed exactly in f32 (an f16 times a small integer) and rounded to nearest even.
     */
    static void toBf16(DType t, MemorySegment src, long rowStride, int m, int k, MemorySegment out) {
        rows(src, m).forEach(row -> {
            float[] v = decodeRow(t, src, row * rowStride, k);
            long o = (long) row * k * 2;
            for (int j = 0; j < k; j++) {
                out.set(SHORT, o + 2L * j, bf16(v[j]));
            }
        });
    }

    /**
     * Re-quantizes {@code m} rows of {@code k} elements for oneDNN's int8 matmul: s8 integers in row-major
     * {@code [m, k]} order and one f32 scale per row (output channel), {@code s = max|v| / 127} over the row's
     * values {@code v} and {@code q' = round(v / s)}, ties to even; {@code v = d · q}, or with {@code rotate} the
     * row mixed by {@link Rotation#weights}. Unlike {@link #unpack} this is not exact: a row's blocks share one
     * scale, so a block with a smaller {@code d} than the row's largest keeps fewer bits.
     */
    static void toChannelS8(DType t, MemorySegment src, long rowStride, int m, int k, boolean rotate,
                            MemorySegment quant, MemorySegment scales) {
        rows(src, m).forEach(row -> {
            float[] v = decodeRow(t, src, row * rowStride, k);
            if (rotate) {
                Rotation.weights(v);
            }
            float max = 0;
            for (float x : v) {
                max = Math.max(max, Math.abs(x));
            }
            float s = max / 127;
            scales.setAtIndex(ValueLayout.JAVA_FLOAT, row, s);
            long o = (long) row * k;
            for (int j = 0; j < k; j++) {
                quant.set(ValueLayout.JAVA_BYTE, o + j, (byte) (s == 0 ? 0 : Math.rint(v[j] / s)));
            }
        });
    }

    /** The rows {@code 0..m-1}, in parallel when {@code src} may be read by other threads. */
    private static IntStream rows(MemorySegment src, int m) {
        IntStream rows = IntStream.range(0, m);
        return ParallelAccess.allowed(src) ? rows.parallel() : rows;
    }

    /**
     * The exact values {@code d · q} of one row of {@code k} elements starting at byte {@code offset}, in this
     * thread's row buffer (valid until its next call): a model's conversion would otherwise allocate gigabytes.
     */
    private static float[] decodeRow(DType t, MemorySegment src, long offset, int k) {
        float[] v = ROW.get();
        if (v.length != k) {
            v = new float[k];
            ROW.set(v);
        }
        byte[] q = new byte[32];
        MemorySegment qs = MemorySegment.ofArray(q);
        for (int b = 0; b < k / t.blockSize(); b++) {
            long block = offset + (long) b * t.blockBytes();
            float d = Float.float16ToFloat(src.get(SHORT, block));
            switch (t) {
                case Q8_0 -> MemorySegment.copy(src, block + 2, qs, 0, 32);
                case Q4_0 -> q4_0(src, block + 2, qs, 0);
                case Q5_0 -> q5_0(src, block, qs, 0);
                default -> throw new IllegalArgumentException("cannot convert " + t);
            }
            for (int j = 0; j < 32; j++) {
                v[b * 32 + j] = d * q[j];
            }
        }
        return v;
    }

    /** {@code f} rounded to the nearest bf16, ties to even (finite values). */
    static short bf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        bits += 0x7FFF + ((bits >>> 16) & 1);
        return (short) (bits >>> 16);
    }

    /** 16 bytes of nibbles (element j low, j + 16 high) → 32 s8 values q − 8. */
    private static void q4_0(MemorySegment src, long qs, MemorySegment quant, long out) {
        for (int j = 0; j < 16; j++) {
            int b = src.get(ValueLayout.JAVA_BYTE, qs + j);
            quant.set(ValueLayout.JAVA_BYTE, out + j, (byte) ((b & 0x0F) - 8));
            quant.set(ValueLayout.JAVA_BYTE, out + j + 16, (byte) (((b >> 4) & 0x0F) - 8));
        }
    }

    /** A Q5_0 block (d, qh, qs) → 32 s8 values q − 16. */
    private static void q5_0(MemorySegment src, long block, MemorySegment quant, long out) {
        int qh = src.get(INT, block + 2);
        long qs = block + 6;
        for (int j = 0; j < 16; j++) {
            int b = src.get(ValueLayout.JAVA_BYTE, qs + j);
            int lo = (b & 0x0F) | (((qh >>> j) & 1) << 4);
            int hi = ((b >> 4) & 0x0F) | (((qh >>> (j + 16)) & 1) << 4);
            quant.set(ValueLayout.JAVA_BYTE, out + j, (byte) (lo - 16));
            quant.set(ValueLayout.JAVA_BYTE, out + j + 16, (byte) (hi - 16));
        }
    }
}
