package dev.isthmus.backend.onednn;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

/**
 * Dynamic quantization of matmul activations for oneDNN's int8 matmul: each row of {@code x} becomes s8 values
 * {@code q = round(x / s)} with its own scale {@code s = max|x| / 127} (symmetric, per token); the matmul
 * multiplies its s32 products by {@code s} (and by the weights' channel scales). Where one such term is too coarse
 * (heavy-tailed rows, whose largest value sets a step far above their typical value) the rounding error can be
 * quantized too, for a second product that adds 7 bits.
 *
 * <p>Rows may be quantized as they are or mixed by {@link Rotation} (one row at a time into a buffer that stays in
 * L1, so mixing costs no extra pass over memory), on the calling thread and, for large calls, on the common
 * fork/join pool too. This is Java because oneDNN 3.11 does not do it: its reorder accepts dynamically computed
 * scales but does not compute them on the CPU, and per-row source scales inside the int8 matmul send it to the
 * reference implementation.
 */
final class ActivationQuantizer {
    /** The widest float species, but at least 8 lanes so that {@link #B} exists (byte shapes start at 64 bits). */
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.length() >= 8
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_256;
    /** As many byte lanes as {@link #F} has float lanes. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class,
            VectorShape.forBitSize(F.vectorBitSize() / 4));
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED;
    /** 1.5 · 2²³: adding and subtracting it rounds a float of magnitude below 2²² to an integer, ties to even. */
    private static final float ROUND = 0x1.8p23f;
    /** Rows {@link #noise} looks at: enough to tell heavy tails from Gaussian ones. */
    private static final int SAMPLE_ROWS = 32;
    /** Rows per task of a parallel call. */
    private static final int CHUNK = 16;

    private ActivationQuantizer() {
    }

    /**
     * Quantizes {@code n} rows of {@code k} f32 values ({@code xStride} bytes apart in {@code x}), each mixed by
     * {@link Rotation} first if {@code mixed}, into {@code q} ({@code k} bytes per row) and their scales into
     * {@code scales} ({@code n} floats); with {@code parallel} on the common fork/join pool too, when all three
     * segments may be. A row of zeros has scale 0; a row with a NaN or an infinity gets a non-finite scale, so that
     * its products are not finite either.
     *
     * @return the expected noise of the quantization relative to the signal: {@code Σ k·s²/12 / Σ x²} over all
     *         rows (rounding errors uniform within a step), e.g. 7e-5 for Gaussian rows of 2048 and 7e-4 for
     *         heavy-tailed ones whose largest value is 12 times their root mean square (SwiGLU outputs)
     */
    static double quantize(MemorySegment x, long xStride, int n, int k, boolean mixed, boolean parallel,
                           MemorySegment q, MemorySegment scales) {
        double[] noise = new double[n];
        double[] signal = new double[n];
        forRows(n, k, mixed, parallel && ParallelAccess.allowed(x, q, scales), (from, to, buffer) -> {
            int bound = F.loopBound(k);
            float[] sumOfSquares = new float[1];
            for (int r = from; r < to; r++) {
                MemorySegment row = row(x, xStride, r, k, mixed, buffer);
                float max = absMax(row, k, bound, sumOfSquares);
                float scale = max / 127;
                float inverse = max == 0 || !Float.isFinite(max) ? 0 : 127 / max;
                scales.setAtIndex(ValueLayout.JAVA_FLOAT, r, scale);
                noise[r] = (double) k * scale * scale / 12;
                signal[r] = sumOfSquares[0];
                long out = (long) r * k;
                int i = 0;
                for (; i < bound; i += F.length()) {
                    FloatVector v = FloatVector.fromMemorySegment(F, row, 4L * i, ORDER).mul(inverse)
                            .add(ROUND).sub(ROUND);
                    ((ByteVector) v.convertShape(VectorOperators.F2B, B, 0)).intoMemorySegment(q, out + i, ORDER);
                }
                for (; i < k; i++) {
                    q.set(ValueLayout.JAVA_BYTE, out + i, (byte) Math.rint(row.get(FLOAT, 4L * i) * inverse));
                }
            }
        });
        return ratio(noise, signal);
    }

    /**
     * The noise {@link #quantize} would report, estimated from at most {@value #SAMPLE_ROWS} rows spread over the
     * call, without quantizing: to choose between the rows as they are and mixed.
     */
    static double noise(MemorySegment x, long xStride, int n, int k, boolean mixed) {
        int samples = Math.min(n, SAMPLE_ROWS);
        double[] noise = new double[samples];
        double[] signal = new double[samples];
        MemorySegment buffer = mixed ? MemorySegment.ofArray(new float[k]) : null;
        float[] sumOfSquares = new float[1];
        for (int i = 0; i < samples; i++) {
            MemorySegment row = row(x, xStride, (int) ((long) i * n / samples), k, mixed, buffer);
            float scale = absMax(row, k, F.loopBound(k), sumOfSquares) / 127;
            noise[i] = (double) k * scale * scale / 12;
            signal[i] = sumOfSquares[0];
        }
        return ratio(noise, signal);
    }

    /**
     * The rounding error of {@link #quantize} ({@code q}, {@code scales}, the same {@code mixed}) quantized in
     * turn: per row {@code t = s / 254}, and {@code e = round((x − s·q) / t)} clamped to [-127, 127] (the error is
     * at most half a step, {@code 127·t}), so that {@code s·q + t·e} is within {@code t / 2} of {@code x}: 15 bits
     * per row instead of 8, for a second matmul with the same weights.
     */
    static void quantizeResidual(MemorySegment x, long xStride, int n, int k, boolean mixed, boolean parallel,
                                 MemorySegment q, MemorySegment scales, MemorySegment residual,
                                 MemorySegment residualScales) {
        forRows(n, k, mixed, parallel && ParallelAccess.allowed(x, q, residual), (from, to, buffer) -> {
            int bound = F.loopBound(k);
            for (int r = from; r < to; r++) {
                MemorySegment row = row(x, xStride, r, k, mixed, buffer);
                long at = (long) r * k;
                float s = scales.getAtIndex(ValueLayout.JAVA_FLOAT, r);
                float t = s / 254;
                float inverse = s == 0 || !Float.isFinite(s) ? 0 : 254 / s;
                residualScales.setAtIndex(ValueLayout.JAVA_FLOAT, r, t);
                int i = 0;
                for (; i < bound; i += F.length()) {
                    FloatVector quantized = (FloatVector) ByteVector.fromMemorySegment(B, q, at + i, ORDER)
                            .convertShape(VectorOperators.B2F, F, 0);
                    FloatVector e = FloatVector.fromMemorySegment(F, row, 4L * i, ORDER).sub(quantized.mul(s))
                            .mul(inverse).max(-127).min(127).add(ROUND).sub(ROUND);
                    ((ByteVector) e.convertShape(VectorOperators.F2B, B, 0))
                            .intoMemorySegment(residual, at + i, ORDER);
                }
                for (; i < k; i++) {
                    float e = (row.get(FLOAT, 4L * i) - q.get(ValueLayout.JAVA_BYTE, at + i) * s) * inverse;
                    residual.set(ValueLayout.JAVA_BYTE, at + i, (byte) Math.rint(Math.clamp(e, -127f, 127f)));
                }
            }
        });
    }

    /** Work on rows {@code from..to-1}, with a {@code k}-float buffer for mixed rows (null otherwise). */
    private interface RowRange {
        void run(int from, int to, MemorySegment buffer);
    }

    /** Runs {@code body} over all rows, in tasks of {@value #CHUNK} rows on the common fork/join pool if parallel. */
    private static void forRows(int n, int k, boolean mixed, boolean parallel, RowRange body) {
        IntStream chunks = IntStream.range(0, (n + CHUNK - 1) / CHUNK);
        (parallel ? chunks.parallel() : chunks).forEach(c -> body.run(c * CHUNK, Math.min(n, (c + 1) * CHUNK),
                mixed ? MemorySegment.ofArray(new float[k]) : null));
    }

    /** Row {@code r} of {@code x}: in place, or mixed into {@code buffer}. */
    private static MemorySegment row(MemorySegment x, long xStride, int r, int k, boolean mixed,
                                     MemorySegment buffer) {
        if (mixed) {
            Rotation.row(x, r * xStride, k, buffer, 0);
            return buffer;
        }
        return x.asSlice(r * xStride, 4L * k);
    }

    private static double ratio(double[] noise, double[] signal) {
        double n = 0;
        double s = 0;
        for (int i = 0; i < noise.length; i++) {
            n += noise[i];
            s += signal[i];
        }
        return s > 0 ? n / s : 0;
    }

    /** The largest magnitude of a row; its sum of squares goes into {@code sumOfSquares[0]}. */
    private static float absMax(MemorySegment row, int k, int bound, float[] sumOfSquares) {
        // Two chains of each: a max or a sum depends on the previous one, so one chain would wait on each.
        FloatVector max0 = FloatVector.zero(F);
        FloatVector max1 = FloatVector.zero(F);
        FloatVector sum0 = FloatVector.zero(F);
        FloatVector sum1 = FloatVector.zero(F);
        int step = F.length();
        int i = 0;
        for (; i + 2 * step <= bound; i += 2 * step) {
            FloatVector v0 = FloatVector.fromMemorySegment(F, row, 4L * i, ORDER);
            FloatVector v1 = FloatVector.fromMemorySegment(F, row, 4L * (i + step), ORDER);
            max0 = max0.max(v0.abs());
            max1 = max1.max(v1.abs());
            sum0 = v0.fma(v0, sum0);
            sum1 = v1.fma(v1, sum1);
        }
        for (; i < bound; i += step) {
            FloatVector v = FloatVector.fromMemorySegment(F, row, 4L * i, ORDER);
            max0 = max0.max(v.abs());
            sum0 = v.fma(v, sum0);
        }
        float max = max0.max(max1).reduceLanes(VectorOperators.MAX);
        float sum = sum0.add(sum1).reduceLanes(VectorOperators.ADD);
        for (; i < k; i++) {
            float v = row.get(FLOAT, 4L * i);
            max = Math.max(max, Math.abs(v));
            sum += v * v;
        }
        sumOfSquares[0] = sum;
        return max;
    }
}
