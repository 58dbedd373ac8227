package dev.isthmus.backend.cpu.format;

import dev.isthmus.api.DType;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * ggml {@code block_q4_1}: 20 bytes per 32 elements, F16 scale {@code d} and minimum {@code m}, then 16
 * bytes of nibbles laid out as in Q4_0; {@code x = d * q + m}.
 */
public final class Q4_1Format implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 20;
    private static final int MIN = 2;
    private static final int QS = 4;
    private static final int HALF = 16;

    @Override
    public DType dtype() {
        return DType.Q4_1;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            long block = srcOffset + (long) b * BLOCK_BYTES;
            long out = dstOffset + 4L * b * BLOCK;
            FloatVector d = FloatVector.broadcast(F, LittleEndian.f16(src, block));
            FloatVector m = FloatVector.broadcast(F, LittleEndian.f16(src, block + MIN));
            for (int c = 0; c < HALF; c += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, src, block + QS + c, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                FloatVector low = (FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .convert(VectorOperators.I2F, 0);
                low.fma(d, m).intoMemorySegment(dst, out + 4L * c, Lanes.ORDER);
                high.fma(d, m).intoMemorySegment(dst, out + 4L * (c + HALF), Lanes.ORDER);
            }
        }
    }

    @Override
    public float dot(MemorySegment w, long wOffset, MemorySegment x, long xOffset, int count) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            long block = wOffset + (long) b * BLOCK_BYTES;
            long xs = xOffset + 4L * b * BLOCK;
            FloatVector d = FloatVector.broadcast(F, LittleEndian.f16(w, block));
            FloatVector m = FloatVector.broadcast(F, LittleEndian.f16(w, block + MIN));
            for (int c = 0; c < HALF; c += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, w, block + QS + c, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                FloatVector low = (FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .convert(VectorOperators.I2F, 0);
                acc = low.fma(d, m).fma(FloatVector.fromMemorySegment(F, x, xs + 4L * c, Lanes.ORDER), acc);
                acc = high.fma(d, m).fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (c + HALF), Lanes.ORDER), acc);
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
