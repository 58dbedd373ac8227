package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import dev.isthmus.backend.cpu.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/** ADD and MUL: element-wise {@code out = a ∘ b}, where {@code b} has the rows of {@code a} or one row. */
public final class BinaryOps {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final long MIN_CHUNK_ELEMENTS = 1 << 15;

    /** The element-wise operation. */
    public enum Kind {
        ADD("add"), MUL("mul");

        final String opName;

        Kind(String opName) {
            this.opName = opName;
        }
    }

    private BinaryOps() {
    }

    public static void run(WorkerPool pool, Kind kind, Tensor a, Tensor b, Tensor out) {
        String op = kind.opName;
        Check.operand(op, "a", a, DType.F32);
        Check.operand(op, "b", b, DType.F32);
        Check.operand(op, "out", out, DType.F32);
        Check.sameShape(op, "a", a, "out", out);
        boolean broadcast = b.rows() == 1 && a.rows() != 1;
        if (b.cols() != a.cols() || (b.rows() != a.rows() && !broadcast)) {
            throw Check.fail(op, "b " + Check.describe(b) + " must have the shape of a " + Check.describe(a)
                    + " or be one row of " + a.cols());
        }
        int rows = (int) a.rows();
        int cols = (int) a.cols();
        MemorySegment as = a.segment();
        MemorySegment bs = b.segment();
        MemorySegment os = out.segment();
        long bFirstRow = b.rowOffset(0);
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                long bOff = broadcast ? bFirstRow : b.rowOffset(r);
                if (kind == Kind.ADD) {
                    addRow(as, a.rowOffset(r), bs, bOff, os, out.rowOffset(r), cols);
                } else {
                    mulRow(as, a.rowOffset(r), bs, bOff, os, out.rowOffset(r), cols);
                }
            }
        });
    }

    private static void addRow(MemorySegment a, long aOff, MemorySegment b, long bOff,
                               MemorySegment out, long outOff, int cols) {
        int i = 0;
        for (int upper = F.loopBound(cols); i < upper; i += L) {
            long o = 4L * i;
            FloatVector.fromMemorySegment(F, a, aOff + o, Lanes.ORDER)
                    .add(FloatVector.fromMemorySegment(F, b, bOff + o, Lanes.ORDER))
                    .intoMemorySegment(out, outOff + o, Lanes.ORDER);
        }
        for (; i < cols; i++) {
            long o = 4L * i;
            LittleEndian.f32(out, outOff + o, LittleEndian.f32(a, aOff + o) + LittleEndian.f32(b, bOff + o));
        }
    }

    private static void mulRow(MemorySegment a, long aOff, MemorySegment b, long bOff,
                               MemorySegment out, long outOff, int cols) {
        int i = 0;
        for (int upper = F.loopBound(cols); i < upper; i += L) {
            long o = 4L * i;
            FloatVector.fromMemorySegment(F, a, aOff + o, Lanes.ORDER)
                    .mul(FloatVector.fromMemorySegment(F, b, bOff + o, Lanes.ORDER))
                    .intoMemorySegment(out, outOff + o, Lanes.ORDER);
        }
        for (; i < cols; i++) {
            long o = 4L * i;
            LittleEndian.f32(out, outOff + o, LittleEndian.f32(a, aOff + o) * LittleEndian.f32(b, bOff + o));
        }
    }
}
