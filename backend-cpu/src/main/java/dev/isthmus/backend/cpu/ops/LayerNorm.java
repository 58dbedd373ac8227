package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import dev.isthmus.backend.cpu.parallel.Scratch;
import dev.isthmus.backend.cpu.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * LAYER_NORM: {@code out = (x - mean) / sqrt(var + eps) * weight + bias}, per row; null weight and bias
 * mean 1 and 0. The variance is taken around the mean in a second pass, which unlike
 * {@code E[x²] - mean²} does not cancel catastrophically for rows with a large offset.
 */
public final class LayerNorm {
    private static final String OP = "layerNorm";
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final long MIN_CHUNK_ELEMENTS = 1 << 15;

    private LayerNorm() {
    }

    public static void run(WorkerPool pool, Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        Check.operand(OP, "x", x, DType.F32);
        Check.operand(OP, "out", out, DType.F32);
        Check.sameShape(OP, "x", x, "out", out);
        if (weight != null) {
            Check.operand(OP, "weight", weight, FloatRow.DTYPES);
            Check.vectorOf(OP, "weight", weight, "x", x);
        }
        if (bias != null) {
            Check.operand(OP, "bias", bias, FloatRow.DTYPES);
            Check.vectorOf(OP, "bias", bias, "x", x);
        }
        int rows = (int) x.rows();
        int cols = (int) x.cols();
        FloatRow w = weight == null ? null : FloatRow.of(weight, Scratch.TERTIARY);
        FloatRow b = bias == null ? null : FloatRow.of(bias, Scratch.SECONDARY);
        MemorySegment in = x.segment();
        MemorySegment dst = out.segment();
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                normalizeRow(in, x.rowOffset(r), w, b, eps, dst, out.rowOffset(r), cols);
            }
        });
    }

    private static void normalizeRow(MemorySegment x, long xOff, FloatRow w, FloatRow b, float eps,
                                     MemorySegment out, long outOff, int cols) {
        if (cols == 0) {
            return;
        }
        int upper = F.loopBound(cols);
        FloatVector sums = FloatVector.zero(F);
        int i = 0;
        for (; i < upper; i += L) {
            sums = sums.add(FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER));
        }
        double total = sums.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            total += LittleEndian.f32(x, xOff + 4L * i);
        }
        float mean = (float) (total / cols);

        FloatVector squares = FloatVector.zero(F);
        i = 0;
        for (; i < upper; i += L) {
            FloatVector d = FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER).sub(mean);
            squares = d.fma(d, squares);
        }
        double variance = squares.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            float d = LittleEndian.f32(x, xOff + 4L * i) - mean;
            variance += d * d;
        }
        float scale = (float) (1.0 / Math.sqrt(variance / cols + eps));

        i = 0;
        for (; i < upper; i += L) {
            long o = 4L * i;
            FloatVector v = FloatVector.fromMemorySegment(F, x, xOff + o, Lanes.ORDER).sub(mean).mul(scale);
            if (w != null) {
                v = v.mul(FloatVector.fromMemorySegment(F, w.segment(), w.offset() + o, Lanes.ORDER));
            }
            if (b != null) {
                v = v.add(FloatVector.fromMemorySegment(F, b.segment(), b.offset() + o, Lanes.ORDER));
            }
            v.intoMemorySegment(out, outOff + o, Lanes.ORDER);
        }
        for (; i < cols; i++) {
            long o = 4L * i;
            float v = (LittleEndian.f32(x, xOff + o) - mean) * scale;
            if (w != null) {
                v *= LittleEndian.f32(w.segment(), w.offset() + o);
            }
            if (b != null) {
                v += LittleEndian.f32(b.segment(), b.offset() + o);
            }
            LittleEndian.f32(out, outOff + o, v);
        }
    }
}
