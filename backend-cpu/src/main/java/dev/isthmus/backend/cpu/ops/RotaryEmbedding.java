package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import dev.isthmus.backend.cpu.parallel.Scratch;
import dev.isthmus.backend.cpu.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;

/**
 * ROPE, in place on {@code x [n, heads, headDim]}. Angles and rotations are computed in double: at
 * positions in the tens of thousands a float {@code pos * freq} is already off by a noticeable fraction
 * of a radian. The cosines and sines of a token are computed once and applied to all its heads.
 */
public final class RotaryEmbedding {
    private static final String OP = "rope";
    private static final long MIN_CHUNK_ELEMENTS = 1 << 13;

    private RotaryEmbedding() {
    }

    public static void run(WorkerPool pool, Tensor x, int[] positions, Rope rope) {
        Check.operand(OP, "x", x, DType.F32);
        Check.notNull(OP, "positions", positions);
        Check.notNull(OP, "rope", rope);
        if (x.rank() < 3) {
            throw Check.fail(OP, "x " + Check.describe(x) + " must be [n, heads, headDim]");
        }
        int heads = (int) x.dim(-2);
        int headDim = (int) x.cols();
        int tokens = heads == 0 ? 0 : (int) (x.rows() / heads);
        if (positions.length != tokens) {
            throw Check.fail(OP, positions.length + " positions for x " + Check.describe(x) + " with " + tokens
                    + " rows");
        }
        if (rope.dims() > headDim) {
            throw Check.fail(OP, "rope rotates " + rope.dims() + " dimensions but x " + Check.describe(x)
                    + " has heads of " + headDim);
        }
        int pairs = rope.dims() / 2;
        double[] inverseFrequencies = inverseFrequencies(rope);
        boolean neox = rope.layout() == RopeLayout.NEOX;
        MemorySegment data = x.segment();
        int grain = (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1L, (long) heads * headDim));
        pool.parallelFor(tokens, grain, (from, to) -> {
            double[] cosSin = Scratch.current().doubles(2 * pairs);
            for (int t = from; t < to; t++) {
                for (int i = 0; i < pairs; i++) {
                    double angle = positions[t] * inverseFrequencies[i];
                    cosSin[2 * i] = Math.cos(angle);
                    cosSin[2 * i + 1] = Math.sin(angle);
                }
                for (int h = 0; h < heads; h++) {
                    rotate(data, x.rowOffset((long) t * heads + h), cosSin, pairs, neox);
                }
            }
        });
    }

    /** Per pair {@code i}: {@code freqScale * theta^(-2i/dims) / freqFactors[i]}. */
    private static double[] inverseFrequencies(Rope rope) {
        int pairs = rope.dims() / 2;
        double[] f = new double[pairs];
        for (int i = 0; i < pairs; i++) {
            double v = rope.freqScale() * Math.pow(rope.theta(), -2.0 * i / rope.dims());
            if (rope.freqFactors() != null) {
                v /= rope.freqFactors()[i];
            }
            f[i] = v;
        }
        return f;
    }

    private static void rotate(MemorySegment x, long rowOff, double[] cosSin, int pairs, boolean neox) {
        for (int i = 0; i < pairs; i++) {
            long a = rowOff + 4L * (neox ? i : 2 * i);
            long b = rowOff + 4L * (neox ? i + pairs : 2 * i + 1);
            double x0 = LittleEndian.f32(x, a);
            double x1 = LittleEndian.f32(x, b);
            double c = cosSin[2 * i];
            double s = cosSin[2 * i + 1];
            LittleEndian.f32(x, a, (float) (x0 * c - x1 * s));
            LittleEndian.f32(x, b, (float) (x0 * s + x1 * c));
        }
    }
}
