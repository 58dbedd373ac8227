package dev.isthmus.backend.onednn;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * An orthogonal mixing of the inputs of an int8 matmul that makes heavy-tailed activations Gaussian-like, so
 * that one s8 scale per row fits them: {@code x · wᵀ = (x·H) · (w·H / 16)ᵀ} with {@code H} the 16 × 16 Hadamard
 * matrix (entries ±1, {@code H·H = 16·I}) applied within each block of {@value #BLOCK} inputs to the 16 elements
 * {@code j, j + 16, …, j + 240} of each lane {@code j}.
 *
 * <p>Each mixed value is a ±sum of 16, so a rare large activation (SwiGLU outputs have a kurtosis around 20: one
 * s8 step, set by the largest value, is coarse for all the others) is spread over 16 values at a quarter of its
 * size; the row's quantization noise drops about five-fold while Gaussian rows stay Gaussian. Rows with repeated
 * parts get spikier instead (the attention outputs of query heads that share a key/value head), which is why
 * {@link MatMul} mixes only when it lowers the noise of a call. The weights are mixed when they are converted, the
 * activations on every call that mixes (four stages of adds and subtracts on 16 registers per block).
 */
final class Rotation {
    /** Inputs mixed together: 16 groups of 16. */
    static final int BLOCK = 256;
    private static final int LANES = 16;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.length() <= LANES
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_512;
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    private Rotation() {
    }

    /** Whether rows of {@code k} inputs are mixed: whole blocks only. */
    static boolean applies(long k) {
        return k > 0 && k % BLOCK == 0;
    }

    /** Mixes a row of {@code k} f32 values at byte {@code from} of {@code x} into {@code out} at byte {@code to}. */
    static void row(MemorySegment x, long from, int k, MemorySegment out, long to) {
        for (long block = 0; block < 4L * k; block += 4L * BLOCK) {
            mixBlock(x, from + block, out, to + block);
        }
    }

    /**
     * The butterflies of {@code H} over the 16 groups of one block, {@link #F} lanes at a time, with the 16 groups
     * in registers (written out: the JIT keeps locals in registers, not an array of vectors): read at
     * {@code from}, written at {@code to} (which may be the same place).
     */
    private static void mixBlock(MemorySegment in, long from, MemorySegment out, long to) {
        for (long lane = 0; lane < 4L * LANES; lane += 4L * F.length()) {
            long at = from + lane;
            FloatVector v0 = FloatVector.fromMemorySegment(F, in, at + 0, ORDER);
            FloatVector v1 = FloatVector.fromMemorySegment(F, in, at + 64, ORDER);
            FloatVector v2 = FloatVector.fromMemorySegment(F, in, at + 128, ORDER);
            FloatVector v3 = FloatVector.fromMemorySegment(F, in, at + 192, ORDER);
            FloatVector v4 = FloatVector.fromMemorySegment(F, in, at + 256, ORDER);
            FloatVector v5 = FloatVector.fromMemorySegment(F, in, at + 320, ORDER);
            FloatVector v6 = FloatVector.fromMemorySegment(F, in, at + 384, ORDER);
            FloatVector v7 = FloatVector.fromMemorySegment(F, in, at + 448, ORDER);
            FloatVector v8 = FloatVector.fromMemorySegment(F, in, at + 512, ORDER);
            FloatVector v9 = FloatVector.fromMemorySegment(F, in, at + 576, ORDER);
            FloatVector v10 = FloatVector.fromMemorySegment(F, in, at + 640, ORDER);
            FloatVector v11 = FloatVector.fromMemorySegment(F, in, at + 704, ORDER);
            FloatVector v12 = FloatVector.fromMemorySegment(F, in, at + 768, ORDER);
            FloatVector v13 = FloatVector.fromMemorySegment(F, in, at + 832, ORDER);
            FloatVector v14 = FloatVector.fromMemorySegment(F, in, at + 896, ORDER);
            FloatVector v15 = FloatVector.fromMemorySegment(F, in, at + 960, ORDER);
            FloatVector t;
            // stage 1: groups i and i + 1
            t = v0;
            v0 = t.add(v1);
            v1 = t.sub(v1);
            t = v2;
            v2 = t.add(v3);
            v3 = t.sub(v3);
            t = v4;
            v4 = t.add(v5);
            v5 = t.sub(v5);
            t = v6;
            v6 = t.add(v7);
            v7 = t.sub(v7);
            t = v8;
            v8 = t.add(v9);
            v9 = t.sub(v9);
            t = v10;
            v10 = t.add(v11);
            v11 = t.sub(v11);
            t = v12;
            v12 = t.add(v13);
            v13 = t.sub(v13);
            t = v14;
            v14 = t.add(v15);
            v15 = t.sub(v15);
            // stage 2: groups i and i + 2
            t = v0;
            v0 = t.add(v2);
            v2 = t.sub(v2);
            t = v1;
            v1 = t.add(v3);
            v3 = t.sub(v3);
            t = v4;
            v4 = t.add(v6);
            v6 = t.sub(v6);
            t = v5;
            v5 = t.add(v7);
            v7 = t.sub(v7);
            t = v8;
            v8 = t.add(v10);
            v10 = t.sub(v10);
            t = v9;
            v9 = t.add(v11);
            v11 = t.sub(v11);
            t = v12;
            v12 = t.add(v14);
            v14 = t.sub(v14);
            t = v13;
            v13 = t.add(v15);
            v15 = t.sub(v15);
            // stage 3: groups i and i + 4
            t = v0;
            v0 = t.add(v4);
            v4 = t.sub(v4);
            t = v1;
            v1 = t.add(v5);
            v5 = t.sub(v5);
            t = v2;
            v2 = t.add(v6);
            v6 = t.sub(v6);
            t = v3;
            v3 = t.add(v7);
            v7 = t.sub(v7);
            t = v8;
            v8 = t.add(v12);
            v12 = t.sub(v12);
            t = v9;
            v9 = t.add(v13);
            v13 = t.sub(v13);
            t = v10;
            v10 = t.add(v14);
            v14 = t.sub(v14);
            t = v11;
            v11 = t.add(v15);
            v15 = t.sub(v15);
            // stage 4: groups i and i + 8
            t = v0;
            v0 = t.add(v8);
            v8 = t.sub(v8);
            t = v1;
            v1 = t.add(v9);
            v9 = t.sub(v9);
            t = v2;
            v2 = t.add(v10);
            v10 = t.sub(v10);
            t = v3;
            v3 = t.add(v11);
            v11 = t.sub(v11);
            t = v4;
            v4 = t.add(v12);
            v12 = t.sub(v12);
            t = v5;
            v5 = t.add(v13);
            v13 = t.sub(v13);
            t = v6;
            v6 = t.add(v14);
            v14 = t.sub(v14);
            t = v7;
            v7 = t.add(v15);
            v15 = t.sub(v15);
            long dst = to + lane;
            v0.intoMemorySegment(out, dst + 0, ORDER);
            v1.intoMemorySegment(out, dst + 64, ORDER);
            v2.intoMemorySegment(out, dst + 128, ORDER);
            v3.intoMemorySegment(out, dst + 192, ORDER);
            v4.intoMemorySegment(out, dst + 256, ORDER);
            v5.intoMemorySegment(out, dst + 320, ORDER);
            v6.intoMemorySegment(out, dst + 384, ORDER);
            v7.intoMemorySegment(out, dst + 448, ORDER);
            v8.intoMemorySegment(out, dst + 512, ORDER);
            v9.intoMemorySegment(out, dst + 576, ORDER);
            v10.intoMemorySegment(out, dst + 640, ORDER);
            v11.intoMemorySegment(out, dst + 704, ORDER);
            v12.intoMemorySegment(out, dst + 768, ORDER);
            v13.intoMemorySegment(out, dst + 832, ORDER);
            v14.intoMemorySegment(out, dst + 896, ORDER);
            v15.intoMemorySegment(out, dst + 960, ORDER);
        }
    }

    /** Mixes one row of weights in place and divides it by 16, so that mixed activations times it are the product. */
    static void weights(float[] row) {
        MemorySegment s = MemorySegment.ofArray(row);
        row(s, 0, row.length, s, 0);
        for (int j = 0; j < row.length; j++) {
            row[j] /= LANES;
        }
    }
}
