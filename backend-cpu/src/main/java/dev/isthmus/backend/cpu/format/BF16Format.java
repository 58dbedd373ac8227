package dev.isthmus.backend.cpu.format;

import dev.isthmus.api.DType;
import dev.isthmus.backend.cpu.kernel.HalfFloats;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/** bfloat16 rows: each element is the upper 16 bits of an F32. */
public final class BF16Format implements FloatFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Short> S = Lanes.SHORTS;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;

    @Override
    public DType dtype() {
        return DType.BF16;
    }

    private static float scalar(MemorySegment s, long offset) {
        return HalfFloats.bf16ToFloat(s.get(LittleEndian.SHORT, offset));
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            ((IntVector) ShortVector.fromMemorySegment(S, src, srcOffset + 2L * i, Lanes.ORDER)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoMemorySegment(dst, dstOffset + 4L * i, Lanes.ORDER);
        }
        for (; i < count; i++) {
            LittleEndian.f32(dst, dstOffset + 4L * i, scalar(src, srcOffset + 2L * i));
        }
    }

    @Override
    public float dot(MemorySegment w, long wOffset, MemorySegment x, long xOffset, int count) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            acc = ((IntVector) ShortVector.fromMemorySegment(S, w, wOffset + 2L * i, Lanes.ORDER)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.fromMemorySegment(F, x, xOffset + 4L * i, Lanes.ORDER), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < count; i++) {
            sum = Math.fma(scalar(w, wOffset + 2L * i), LittleEndian.f32(x, xOffset + 4L * i), sum);
        }
        return sum;
    }

    @Override
    public void scaleAdd(MemorySegment v, long vOffset, float weight, MemorySegment acc, long accOffset, int count) {
        FloatVector wv = FloatVector.broadcast(F, weight);
        int i = 0;
        for (int upper = F.loopBound(count); i < upper; i += L) {
            long o = accOffset + 4L * i;
            ((IntVector) ShortVector.fromMemorySegment(S, v, vOffset + 2L * i, Lanes.ORDER)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(wv, FloatVector.fromMemorySegment(F, acc, o, Lanes.ORDER))
                    .intoMemorySegment(acc, o, Lanes.ORDER);
        }
        for (; i < count; i++) {
            long o = accOffset + 4L * i;
            LittleEndian.f32(acc, o, Math.fma(scalar(v, vOffset + 2L * i), weight, LittleEndian.f32(acc, o)));
        }
    }

    @Override
    public void encode(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int i = 0; i < count; i++) {
            dst.set(LittleEndian.SHORT, dstOffset + 2L * i,
                    HalfFloats.floatToBf16(LittleEndian.f32(src, srcOffset + 4L * i)));
        }
    }
}
