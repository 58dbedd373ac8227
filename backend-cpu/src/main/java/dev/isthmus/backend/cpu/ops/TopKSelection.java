package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import dev.isthmus.backend.cpu.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * TOP_K: per row the {@code k} largest values, largest first, ties by lower index; NaN ranks below every
 * number.
 *
 * <p>A row is scanned once while a sorted list of the best {@code k} so far is kept. Once the list is
 * full, whole vectors are compared against its smallest entry, so over a vocabulary-sized row almost
 * every element is rejected by a single compare; the scan goes by increasing index, which makes an equal
 * value never displace an earlier one.
 */
public final class TopKSelection {
    private static final String OP = "topK";
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final long MIN_CHUNK_ELEMENTS = 1 << 16;

    private TopKSelection() {
    }

    public static TopK run(WorkerPool pool, Tensor x, int k) {
        Check.operand(OP, "x", x, DType.F32);
        int rows = (int) x.rows();
        int cols = (int) x.cols();
        if (k < 0 || k > cols) {
            throw Check.fail(OP, "k = " + k + " for rows of " + cols + " in x " + Check.describe(x));
        }
        int[][] indices = new int[rows][k];
        float[][] values = new float[rows][k];
        MemorySegment data = x.segment();
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                row(data, x.rowOffset(r), cols, indices[r], values[r]);
            }
        });
        return new TopK(indices, values);
    }

    private static void row(MemorySegment x, long off, int cols, int[] indices, float[] values) {
        int k = indices.length;
        if (k == 0) {
            return;
        }
        int size = 0;
        int i = 0;
        for (; i < cols && size < k; i++) {
            size = insert(LittleEndian.f32(x, off + 4L * i), i, indices, values, size);
        }
        for (; i <= cols - L; i += L) {
            float threshold = values[k - 1];
            FloatVector v = FloatVector.fromMemorySegment(F, x, off + 4L * i, Lanes.ORDER);
            VectorMask<Float> candidates = Float.isNaN(threshold)
                    ? v.test(VectorOperators.IS_NAN).not()
                    : v.compare(VectorOperators.GT, threshold);
            if (candidates.anyTrue()) {
                for (int lane = 0; lane < L; lane++) {
                    size = insert(v.lane(lane), i + lane, indices, values, size);
                }
            }
        }
        for (; i < cols; i++) {
            size = insert(LittleEndian.f32(x, off + 4L * i), i, indices, values, size);
        }
    }

    /** Whether a value seen later (higher index) ranks above {@code existing}. */
    private static boolean ranksAbove(float later, float existing) {
        return !Float.isNaN(later) && (Float.isNaN(existing) || later > existing);
    }

    /** Adds {@code (value, index)} to the sorted list of {@code size} entries if it belongs; returns the new size. */
    private static int insert(float value, int index, int[] indices, float[] values, int size) {
        int k = indices.length;
        if (size == k && !ranksAbove(value, values[k - 1])) {
            return size;
        }
        int pos = Math.min(size, k - 1);
        while (pos > 0 && ranksAbove(value, values[pos - 1])) {
            values[pos] = values[pos - 1];
            indices[pos] = indices[pos - 1];
            pos--;
        }
        values[pos] = value;
        indices[pos] = index;
        return Math.min(size + 1, k);
    }
}
