package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.kernel.FloatKernels;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import dev.isthmus.backend.cpu.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/** SOFTMAX, row-wise; the row maximum is subtracted first so no exponential overflows. */
public final class Softmax {
    private static final String OP = "softmax";
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final long MIN_CHUNK_ELEMENTS = 1 << 14;

    private Softmax() {
    }

    public static void run(WorkerPool pool, Tensor x, Tensor out) {
        Check.operand(OP, "x", x, DType.F32);
        Check.operand(OP, "out", out, DType.F32);
        Check.sameShape(OP, "x", x, "out", out);
        int rows = (int) x.rows();
        int cols = (int) x.cols();
        MemorySegment in = x.segment();
        MemorySegment dst = out.segment();
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                row(in, x.rowOffset(r), dst, out.rowOffset(r), cols);
            }
        });
    }

    private static void row(MemorySegment x, long xOff, MemorySegment out, long outOff, int cols) {
        if (cols == 0) {
            return;
        }
        int upper = F.loopBound(cols);
        float max = Float.NEGATIVE_INFINITY;
        int i = 0;
        if (upper > 0) {
            FloatVector maxes = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; i < upper; i += L) {
                maxes = maxes.max(FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER));
            }
            max = maxes.reduceLanes(VectorOperators.MAX);
        }
        for (; i < cols; i++) {
            max = Math.max(max, LittleEndian.f32(x, xOff + 4L * i));
        }

        FloatVector sums = FloatVector.zero(F);
        i = 0;
        for (; i < upper; i += L) {
            FloatVector e = FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER).sub(max)
                    .lanewise(VectorOperators.EXP);
            e.intoMemorySegment(out, outOff + 4L * i, Lanes.ORDER);
            sums = sums.add(e);
        }
        double sum = sums.reduceLanes(VectorOperators.ADD);
        for (; i < cols; i++) {
            float e = (float) Math.exp(LittleEndian.f32(x, xOff + 4L * i) - max);
            LittleEndian.f32(out, outOff + 4L * i, e);
            sum += e;
        }
        FloatKernels.scale(out, outOff, (float) (1 / sum), out, outOff, cols);
    }
}
