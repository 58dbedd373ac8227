package dev.isthmus.backend.cpu.format;

import dev.isthmus.api.DType;
import dev.isthmus.backend.cpu.kernel.HalfFloats;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * IEEE half-precision rows.
 *
 * <p>The Vector API has no half-float conversion, so the kernels rebuild float bits with integer
 * operations: normals by shifting and re-biasing the exponent, subnormals by an exact int-to-float
 * conversion times 2^-24 (never arithmetic on float subnormals, which x86 runs through a slow microcode
 * path), infinities and NaNs by forcing the exponent to all ones. The conversion is written out in each
 * loop: a helper method returning a vector gets it boxed whenever the JIT declines to inline it.
 */
public final class F16Format implements FloatFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Short> S = Lanes.SHORTS;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int EXPONENT_REBIAS = (127 - 15) << 23;
    private static final float SUBNORMAL_UNIT = 0x1p-24f;

    @Override
    public DType dtype() {
        return DType.F16;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(S, src, srcOffset + 2L * i, Lanes.ORDER)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector magnitude = h.and(0x7FFF);
            IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
            VectorMask<Integer> subnormal = magnitude.compare(VectorOperators.LT, 0x0400);
            VectorMask<Integer> infOrNaN = magnitude.compare(VectorOperators.GE, 0x7C00);
            FloatVector v = shifted.add(EXPONENT_REBIAS)
                    .blend(((FloatVector) magnitude.convert(VectorOperators.I2F, 0)).mul(SUBNORMAL_UNIT)
                            .reinterpretAsInts(), subnormal)
                    .blend(shifted.or(0x7F800000), infOrNaN)
                    .or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            v.intoMemorySegment(dst, dstOffset + 4L * i, Lanes.ORDER);
        }
        for (; i < count; i++) {
            LittleEndian.f32(dst, dstOffset + 4L * i, LittleEndian.f16(src, srcOffset + 2L * i));
        }
    }

    @Override
    public float dot(MemorySegment w, long wOffset, MemorySegment x, long xOffset, int count) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(S, w, wOffset + 2L * i, Lanes.ORDER)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector magnitude = h.and(0x7FFF);
            IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
            VectorMask<Integer> subnormal = magnitude.compare(VectorOperators.LT, 0x0400);
            VectorMask<Integer> infOrNaN = magnitude.compare(VectorOperators.GE, 0x7C00);
            FloatVector v = shifted.add(EXPONENT_REBIAS)
                    .blend(((FloatVector) magnitude.convert(VectorOperators.I2F, 0)).mul(SUBNORMAL_UNIT)
                            .reinterpretAsInts(), subnormal)
                    .blend(shifted.or(0x7F800000), infOrNaN)
                    .or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            acc = v.fma(FloatVector.fromMemorySegment(F, x, xOffset + 4L * i, Lanes.ORDER), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < count; i++) {
            sum = Math.fma(LittleEndian.f16(w, wOffset + 2L * i), LittleEndian.f32(x, xOffset + 4L * i), sum);
        }
        return sum;
    }

    @Override
    public void scaleAdd(MemorySegment v, long vOffset, float weight, MemorySegment acc, long accOffset, int count) {
        FloatVector wv = FloatVector.broadcast(F, weight);
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(S, v, vOffset + 2L * i, Lanes.ORDER)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector magnitude = h.and(0x7FFF);
            IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
            VectorMask<Integer> subnormal = magnitude.compare(VectorOperators.LT, 0x0400);
            VectorMask<Integer> infOrNaN = magnitude.compare(VectorOperators.GE, 0x7C00);
            FloatVector value = shifted.add(EXPONENT_REBIAS)
                    .blend(((FloatVector) magnitude.convert(VectorOperators.I2F, 0)).mul(SUBNORMAL_UNIT)
                            .reinterpretAsInts(), subnormal)
                    .blend(shifted.or(0x7F800000), infOrNaN)
                    .or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
            long o = accOffset + 4L * i;
            value.fma(wv, FloatVector.fromMemorySegment(F, acc, o, Lanes.ORDER)).intoMemorySegment(acc, o, Lanes.ORDER);
        }
        for (; i < count; i++) {
            long o = accOffset + 4L * i;
            LittleEndian.f32(acc, o, Math.fma(LittleEndian.f16(v, vOffset + 2L * i), weight, LittleEndian.f32(acc, o)));
        }
    }

    @Override
    public void encode(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int i = 0; i < count; i++) {
            dst.set(LittleEndian.SHORT, dstOffset + 2L * i,
                    HalfFloats.floatToHalf(LittleEndian.f32(src, srcOffset + 4L * i)));
        }
    }
}
