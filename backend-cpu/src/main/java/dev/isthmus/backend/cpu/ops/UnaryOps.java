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

/** SCALE, SILU and GELU: element-wise functions of one tensor. */
public final class UnaryOps {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final long MIN_CHUNK_ELEMENTS = 1 << 14;
    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2 / Math.PI);
    private static final float GELU_CUBIC = 0.044715f;

    /** The element-wise function. */
    public enum Kind {
        SCALE("scale"), SILU("silu"), GELU("gelu");

        final String opName;

        Kind(String opName) {
            this.opName = opName;
        }
    }

    private UnaryOps() {
    }

    /** {@code out = f(x)}; {@code factor} is the multiplier of SCALE and ignored otherwise. */
    public static void run(WorkerPool pool, Kind kind, Tensor x, float factor, Tensor out) {
        String op = kind.opName;
        Check.operand(op, "x", x, DType.F32);
        Check.operand(op, "out", out, DType.F32);
        Check.sameShape(op, "x", x, "out", out);
        int rows = (int) x.rows();
        int cols = (int) x.cols();
        MemorySegment in = x.segment();
        MemorySegment dst = out.segment();
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                long xOff = x.rowOffset(r);
                long outOff = out.rowOffset(r);
                switch (kind) {
                    case SCALE -> scaleRow(in, xOff, factor, dst, outOff, cols);
                    case SILU -> siluRow(in, xOff, dst, outOff, cols);
                    case GELU -> geluRow(in, xOff, dst, outOff, cols);
                }
            }
        });
    }

    private static void scaleRow(MemorySegment x, long xOff, float s, MemorySegment out, long outOff, int cols) {
        int i = 0;
        for (int upper = F.loopBound(cols); i < upper; i += L) {
            FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER).mul(s)
                    .intoMemorySegment(out, outOff + 4L * i, Lanes.ORDER);
        }
        for (; i < cols; i++) {
            LittleEndian.f32(out, outOff + 4L * i, LittleEndian.f32(x, xOff + 4L * i) * s);
        }
    }

    static float silu(float x) {
        return (float) (x / (1 + Math.exp(-x)));
    }

    private static void siluRow(MemorySegment x, long xOff, MemorySegment out, long outOff, int cols) {
        int i = 0;
        for (int upper = F.loopBound(cols); i < upper; i += L) {
            FloatVector v = FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER);
            v.div(v.neg().lanewise(VectorOperators.EXP).add(1f)).intoMemorySegment(out, outOff + 4L * i, Lanes.ORDER);
        }
        for (; i < cols; i++) {
            LittleEndian.f32(out, outOff + 4L * i, silu(LittleEndian.f32(x, xOff + 4L * i)));
        }
    }

    private static void geluRow(MemorySegment x, long xOff, MemorySegment out, long outOff, int cols) {
        int i = 0;
        for (int upper = F.loopBound(cols); i < upper; i += L) {
            FloatVector v = FloatVector.fromMemorySegment(F, x, xOff + 4L * i, Lanes.ORDER);
            FloatVector inner = v.mul(v).mul(v).mul(GELU_CUBIC).add(v).mul(SQRT_2_OVER_PI);
            v.mul(0.5f).mul(inner.lanewise(VectorOperators.TANH).add(1f))
                    .intoMemorySegment(out, outOff + 4L * i, Lanes.ORDER);
        }
        for (; i < cols; i++) {
            double v = LittleEndian.f32(x, xOff + 4L * i);
            double g = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v)));
            LittleEndian.f32(out, outOff + 4L * i, (float) g);
        }
    }
}
