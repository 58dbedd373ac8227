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

/** RMS_NORM: {@code out = x / sqrt(mean(x²) + eps) * weight}, per row; a null weight means 1. */
public final class RmsNorm {
    private static final String OP = "rmsNorm";
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final long MIN_CHUNK_ELEMENTS = 1 << 15;

    private RmsNorm() {
    }

    public static void run(WorkerPool pool, Tensor x, Tensor weight, float eps, Tensor out) {
        Check.operand(OP, "x", x, DType.F32);
        Check.operand(OP, "out", out, DType.F32);
        Check.sameShape(OP, "x", x, "out", out);
        if (weight != null) {
            Check.operand(OP, "weight", weight, FloatRow.DTYPES);
            Check.vectorOf(OP, "weight", weight, "x", x);
        }
        int rows = (int) x.rows();
        int cols = (int) x.cols();
        FloatRow w = weight == null ? null : FloatRow.of(weight, Scratch.TERTIARY);
        MemorySegment in = x.segment();
        MemorySegment dst = out.segment();
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                normalizeRow(in, x.rowOffset(r), w, eps, dst, out.rowOffset(r), cols);
            }
        });
    }

    private static void normalizeRow(MemorySegment x, long xOff, FloatRow w, float eps,
                                     MemorySegment out, long outOff, int cols) {
        FloatVector squares = FloatVector.zero(F);
        int i = 0;
        int upper = F.loopBound(cols);
        for (; i < upper; i += L) {
            FloatVector v = FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER);
            squares = v.fma(v, squares);
        }
        double sum = squares.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            float v = LittleEndian.f32(x, xOff + 4L * i);
            sum += v * v;
        }
        float scale = (float) (1.0 / Math.sqrt(sum / Math.max(cols, 1) + eps));
        i = 0;
        if (w == null) {
            for (; i < upper; i += L) {
                FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER).mul(scale)
                        .intoMemorySegment(out, outOff + 4L * i, Lanes.ORDER);
            }
            for (; i < cols; i++) {
                LittleEndian.f32(out, outOff + 4L * i, LittleEndian.f32(x, xOff + 4L * i) * scale);
            }
            return;
        }
        MemorySegment ws = w.segment();
        long wOff = w.offset();
        for (; i < upper; i += L) {
            FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER).mul(scale)
                    .mul(FloatVector.fromMemorySegment(F, ws, wOff + 4L * i, Lanes.ORDER))
                    .intoMemorySegment(out, outOff + 4L * i, Lanes.ORDER);
        }
        for (; i < cols; i++) {
            LittleEndian.f32(out, outOff + 4L * i,
                    LittleEndian.f32(x, xOff + 4L * i) * scale * LittleEndian.f32(ws, wOff + 4L * i));
        }
    }
}
