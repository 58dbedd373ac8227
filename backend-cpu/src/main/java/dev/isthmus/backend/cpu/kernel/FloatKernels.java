package dev.isthmus.backend.cpu.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/** F32 building blocks over segments: dot products and scaled accumulation. */
public final class FloatKernels {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;

    private FloatKernels() {
    }

    /** {@code Σ a[i]·b[i]} over {@code count} floats. */
    public static float dot(MemorySegment a, long aOffset, MemorySegment b, long bOffset, int count) {
        // Two accumulators hide the FMA latency when the data is cache resident.
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        int i = 0;
        for (int upper = count - 2 * L; i <= upper; i += 2 * L) {
            long o = 4L * i;
            acc0 = FloatVector.fromMemorySegment(F, a, aOffset + o, Lanes.ORDER)
                    .fma(FloatVector.fromMemorySegment(F, b, bOffset + o, Lanes.ORDER), acc0);
            acc1 = FloatVector.fromMemorySegment(F, a, aOffset + o + 4L * L, Lanes.ORDER)
                    .fma(FloatVector.fromMemorySegment(F, b, bOffset + o + 4L * L, Lanes.ORDER), acc1);
        }
        for (int upper = count - L; i <= upper; i += L) {
            long o = 4L * i;
            acc0 = FloatVector.fromMemorySegment(F, a, aOffset + o, Lanes.ORDER)
                    .fma(FloatVector.fromMemorySegment(F, b, bOffset + o, Lanes.ORDER), acc0);
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; i < count; i++) {
            sum = Math.fma(LittleEndian.f32(a, aOffset + 4L * i), LittleEndian.f32(b, bOffset + 4L * i), sum);
        }
        return sum;
    }

    /**
     * Four dot products sharing one row {@code w}: {@code out[outIndex + r] = w · x_r}. Loading each
     * vector of {@code w} once for four activation rows is what makes batched matmul cheaper than four
     * separate dots.
     */
    public static void dot4(MemorySegment w, long wOffset, MemorySegment x, long x0, long x1, long x2, long x3,
                            int count, float[] out, int outIndex) {
        FloatVector acc0 = FloatVector.zero(F);
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            long o = 4L * i;
            FloatVector wv = FloatVector.fromMemorySegment(F, w, wOffset + o, Lanes.ORDER);
            acc0 = FloatVector.fromMemorySegment(F, x, x0 + o, Lanes.ORDER).fma(wv, acc0);
            acc1 = FloatVector.fromMemorySegment(F, x, x1 + o, Lanes.ORDER).fma(wv, acc1);
            acc2 = FloatVector.fromMemorySegment(F, x, x2 + o, Lanes.ORDER).fma(wv, acc2);
            acc3 = FloatVector.fromMemorySegment(F, x, x3 + o, Lanes.ORDER).fma(wv, acc3);
        }
        float s0 = acc0.reduceLanes(VectorOperators.ADD);
        float s1 = acc1.reduceLanes(VectorOperators.ADD);
        float s2 = acc2.reduceLanes(VectorOperators.ADD);
        float s3 = acc3.reduceLanes(VectorOperators.ADD);
        for (; i < count; i++) {
            long o = 4L * i;
            float wi = LittleEndian.f32(w, wOffset + o);
            s0 = Math.fma(LittleEndian.f32(x, x0 + o), wi, s0);
            s1 = Math.fma(LittleEndian.f32(x, x1 + o), wi, s1);
            s2 = Math.fma(LittleEndian.f32(x, x2 + o), wi, s2);
            s3 = Math.fma(LittleEndian.f32(x, x3 + o), wi, s3);
        }
        out[outIndex] = s0;
        out[outIndex + 1] = s1;
        out[outIndex + 2] = s2;
        out[outIndex + 3] = s3;
    }

    /**
     * Sixteen dot products of four rows {@code w0..w3} (in one segment) with four rows {@code x0..x3}:
     * {@code out[outIndex + 4r + c] = w_r · x_c}. Each loaded vector feeds four FMAs, so the kernel is
     * bound by arithmetic rather than by cache bandwidth, unlike row-by-row dots.
     */
    public static void dot4x4(MemorySegment w, long w0, long w1, long w2, long w3,
                              MemorySegment x, long x0, long x1, long x2, long x3,
                              int count, float[] out, int outIndex) {
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            long o = 4L * i;
            FloatVector v0 = FloatVector.fromMemorySegment(F, x, x0 + o, Lanes.ORDER);
            FloatVector v1 = FloatVector.fromMemorySegment(F, x, x1 + o, Lanes.ORDER);
            FloatVector v2 = FloatVector.fromMemorySegment(F, x, x2 + o, Lanes.ORDER);
            FloatVector v3 = FloatVector.fromMemorySegment(F, x, x3 + o, Lanes.ORDER);
            FloatVector r = FloatVector.fromMemorySegment(F, w, w0 + o, Lanes.ORDER);
            a00 = r.fma(v0, a00);
            a01 = r.fma(v1, a01);
            a02 = r.fma(v2, a02);
            a03 = r.fma(v3, a03);
            r = FloatVector.fromMemorySegment(F, w, w1 + o, Lanes.ORDER);
            a10 = r.fma(v0, a10);
            a11 = r.fma(v1, a11);
            a12 = r.fma(v2, a12);
            a13 = r.fma(v3, a13);
            r = FloatVector.fromMemorySegment(F, w, w2 + o, Lanes.ORDER);
            a20 = r.fma(v0, a20);
            a21 = r.fma(v1, a21);
            a22 = r.fma(v2, a22);
            a23 = r.fma(v3, a23);
            r = FloatVector.fromMemorySegment(F, w, w3 + o, Lanes.ORDER);
            a30 = r.fma(v0, a30);
            a31 = r.fma(v1, a31);
            a32 = r.fma(v2, a32);
            a33 = r.fma(v3, a33);
        }
        out[outIndex] = a00.reduceLanes(VectorOperators.ADD);
        out[outIndex + 1] = a01.reduceLanes(VectorOperators.ADD);
        out[outIndex + 2] = a02.reduceLanes(VectorOperators.ADD);
        out[outIndex + 3] = a03.reduceLanes(VectorOperators.ADD);
        out[outIndex + 4] = a10.reduceLanes(VectorOperators.ADD);
        out[outIndex + 5] = a11.reduceLanes(VectorOperators.ADD);
        out[outIndex + 6] = a12.reduceLanes(VectorOperators.ADD);
        out[outIndex + 7] = a13.reduceLanes(VectorOperators.ADD);
        out[outIndex + 8] = a20.reduceLanes(VectorOperators.ADD);
        out[outIndex + 9] = a21.reduceLanes(VectorOperators.ADD);
        out[outIndex + 10] = a22.reduceLanes(VectorOperators.ADD);
        out[outIndex + 11] = a23.reduceLanes(VectorOperators.ADD);
        out[outIndex + 12] = a30.reduceLanes(VectorOperators.ADD);
        out[outIndex + 13] = a31.reduceLanes(VectorOperators.ADD);
        out[outIndex + 14] = a32.reduceLanes(VectorOperators.ADD);
        out[outIndex + 15] = a33.reduceLanes(VectorOperators.ADD);
        for (; i < count; i++) {
            long o = 4L * i;
            float v0 = LittleEndian.f32(x, x0 + o);
            float v1 = LittleEndian.f32(x, x1 + o);
            float v2 = LittleEndian.f32(x, x2 + o);
            float v3 = LittleEndian.f32(x, x3 + o);
            addRowTail(LittleEndian.f32(w, w0 + o), v0, v1, v2, v3, out, outIndex);
            addRowTail(LittleEndian.f32(w, w1 + o), v0, v1, v2, v3, out, outIndex + 4);
            addRowTail(LittleEndian.f32(w, w2 + o), v0, v1, v2, v3, out, outIndex + 8);
            addRowTail(LittleEndian.f32(w, w3 + o), v0, v1, v2, v3, out, outIndex + 12);
        }
    }

    private static void addRowTail(float w, float v0, float v1, float v2, float v3, float[] out, int at) {
        out[at] = Math.fma(w, v0, out[at]);
        out[at + 1] = Math.fma(w, v1, out[at + 1]);
        out[at + 2] = Math.fma(w, v2, out[at + 2]);
        out[at + 3] = Math.fma(w, v3, out[at + 3]);
    }

    /** {@code acc[i] += weight * src[i]} over {@code count} floats. */
    public static void scaleAdd(MemorySegment src, long srcOffset, float weight,
                                MemorySegment acc, long accOffset, int count) {
        FloatVector wv = FloatVector.broadcast(F, weight);
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            long o = 4L * i;
            FloatVector.fromMemorySegment(F, src, srcOffset + o, Lanes.ORDER)
                    .fma(wv, FloatVector.fromMemorySegment(F, acc, accOffset + o, Lanes.ORDER))
                    .intoMemorySegment(acc, accOffset + o, Lanes.ORDER);
        }
        for (; i < count; i++) {
            long o = 4L * i;
            LittleEndian.f32(acc, accOffset + o,
                    Math.fma(LittleEndian.f32(src, srcOffset + o), weight, LittleEndian.f32(acc, accOffset + o)));
        }
    }

    /** {@code dst[i] = src[i] * s} over {@code count} floats; {@code dst} may be {@code src}. */
    public static void scale(MemorySegment src, long srcOffset, float s, MemorySegment dst, long dstOffset,
                             int count) {
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            long o = 4L * i;
            FloatVector.fromMemorySegment(F, src, srcOffset + o, Lanes.ORDER).mul(s)
                    .intoMemorySegment(dst, dstOffset + o, Lanes.ORDER);
        }
        for (; i < count; i++) {
            long o = 4L * i;
            LittleEndian.f32(dst, dstOffset + o, LittleEndian.f32(src, srcOffset + o) * s);
        }
    }
}
