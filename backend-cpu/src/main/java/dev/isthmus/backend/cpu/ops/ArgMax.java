package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import dev.isthmus.backend.cpu.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/** ARGMAX: per row the index of the largest value, the lowest index on ties; NaNs are never chosen. */
public final class ArgMax {
    private static final String OP = "argmax";
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final long MIN_CHUNK_ELEMENTS = 1 << 16;

    private ArgMax() {
    }

    public static int[] run(WorkerPool pool, Tensor x) {
        Check.operand(OP, "x", x, DType.F32);
        int rows = (int) x.rows();
        int cols = (int) x.cols();
        if (cols == 0 && rows > 0) {
            throw Check.fail(OP, "x " + Check.describe(x) + " has empty rows");
        }
        int[] result = new int[rows];
        MemorySegment data = x.segment();
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / cols), (from, to) -> {
            for (int r = from; r < to; r++) {
                result[r] = row(data, x.rowOffset(r), cols);
            }
        });
        return result;
    }

    private static int row(MemorySegment x, long off, int cols) {
        // First the maximum with wide compares, then the first lane that holds it.
        int upper = F.loopBound(cols);
        float max = Float.NEGATIVE_INFINITY;
        int i = 0;
        if (upper > 0) {
            FloatVector maxes = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; i < upper; i += L) {
                maxes = maxes.max(FloatVector.fromMemorySegment(F, x, off + 4L * i, Lanes.ORDER));
            }
            max = maxes.reduceLanes(VectorOperators.MAX);
        }
        for (; i < cols; i++) {
            max = Math.max(max, LittleEndian.f32(x, off + 4L * i));
        }
        if (Float.isNaN(max)) {
            return skippingNaN(x, off, cols);
        }
        i = 0;
        for (; i < upper; i += L) {
            int lane = FloatVector.fromMemorySegment(F, x, off + 4L * i, Lanes.ORDER)
                    .compare(VectorOperators.EQ, max).firstTrue();
            if (lane < L) {
                return i + lane;
            }
        }
        for (; i < cols; i++) {
            if (LittleEndian.f32(x, off + 4L * i) == max) {
                return i;
            }
        }
        return 0;
    }

    private static int skippingNaN(MemorySegment x, long off, int cols) {
        int best = -1;
        float bestValue = 0;
        for (int i = 0; i < cols; i++) {
            float v = LittleEndian.f32(x, off + 4L * i);
            if (!Float.isNaN(v) && (best < 0 || v > bestValue)) {
                best = i;
                bestValue = v;
            }
        }
        return Math.max(best, 0);
    }
}
