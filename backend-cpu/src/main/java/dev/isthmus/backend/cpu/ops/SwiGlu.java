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

/** SWIGLU: {@code out = silu(gate) * up}, the gated feed-forward of Llama. */
public final class SwiGlu {
    private static final String OP = "swiglu";
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final long MIN_CHUNK_ELEMENTS = 1 << 14;

    private SwiGlu() {
    }

    public static void run(WorkerPool pool, Tensor gate, Tensor up, Tensor out) {
        Check.operand(OP, "gate", gate, DType.F32);
        Check.operand(OP, "up", up, DType.F32);
        Check.operand(OP, "out", out, DType.F32);
        Check.sameShape(OP, "gate", gate, "up", up);
        Check.sameShape(OP, "gate", gate, "out", out);
        int rows = (int) gate.rows();
        int cols = (int) gate.cols();
        MemorySegment g = gate.segment();
        MemorySegment u = up.segment();
        MemorySegment o = out.segment();
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                row(g, gate.rowOffset(r), u, up.rowOffset(r), o, out.rowOffset(r), cols);
            }
        });
    }

    private static void row(MemorySegment g, long gOff, MemorySegment u, long uOff,
                            MemorySegment out, long outOff, int cols) {
        int i = 0;
        for (int upper = F.loopBound(cols); i < upper; i += L) {
            long o = 4L * i;
            FloatVector v = FloatVector.fromMemorySegment(F, g, gOff + o, Lanes.ORDER);
            v.div(v.neg().lanewise(VectorOperators.EXP).add(1f))
                    .mul(FloatVector.fromMemorySegment(F, u, uOff + o, Lanes.ORDER))
                    .intoMemorySegment(out, outOff + o, Lanes.ORDER);
        }
        for (; i < cols; i++) {
            long o = 4L * i;
            LittleEndian.f32(out, outOff + o, UnaryOps.silu(LittleEndian.f32(g, gOff + o)) * LittleEndian.f32(u, uOff + o));
        }
    }
}
