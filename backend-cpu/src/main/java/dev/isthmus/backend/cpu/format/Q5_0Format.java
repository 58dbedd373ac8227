package dev.isthmus.backend.cpu.format;

import dev.isthmus.api.DType;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * ggml {@code block_q5_0}: 22 bytes per 32 elements, an F16 scale {@code d}, a little-endian 32-bit word
 * {@code qh} whose bit {@code j} is the fifth bit of element {@code j}, then 16 bytes of low nibbles laid
 * out as in Q4_0; {@code x = d * (q - 16)}. The fifth bits become a lane mask directly.
 */
public final class Q5_0Format implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 22;
    private static final int QH = 2;
    private static final int QS = 6;
    private static final int HALF = 16;

    @Override
    public DType dtype() {
        return DType.Q5_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            long block = srcOffset + (long) b * BLOCK_BYTES;
            long out = dstOffset + 4L * b * BLOCK;
            float d = LittleEndian.f16(src, block);
            int qh = src.get(LittleEndian.INT, block + QH);
            for (int c = 0; c < HALF; c += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, src, block + QS + c, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                VectorMask<Integer> lowFifth = VectorMask.fromLong(I, (qh >>> c) & Lanes.LANE_BITS);
                VectorMask<Integer> highFifth = VectorMask.fromLong(I, (qh >>> (c + HALF)) & Lanes.LANE_BITS);
                FloatVector low = (FloatVector) q.and(0x0F).lanewise(VectorOperators.OR, 0x10, lowFifth).sub(16)
                        .convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .lanewise(VectorOperators.OR, 0x10, highFifth).sub(16).convert(VectorOperators.I2F, 0);
                low.mul(d).intoMemorySegment(dst, out + 4L * c, Lanes.ORDER);
                high.mul(d).intoMemorySegment(dst, out + 4L * (c + HALF), Lanes.ORDER);
            }
        }
    }

    @Override
    public float dot(MemorySegment w, long wOffset, MemorySegment x, long xOffset, int count) {
        FloatVector acc = FloatVector.zero(F);
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            long block = wOffset + (long) b * BLOCK_BYTES;
            long xs = xOffset + 4L * b * BLOCK;
            int qh = w.get(LittleEndian.INT, block + QH);
            FloatVector sum = FloatVector.zero(F);
            for (int c = 0; c < HALF; c += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, w, block + QS + c, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                VectorMask<Integer> lowFifth = VectorMask.fromLong(I, (qh >>> c) & Lanes.LANE_BITS);
                VectorMask<Integer> highFifth = VectorMask.fromLong(I, (qh >>> (c + HALF)) & Lanes.LANE_BITS);
                FloatVector low = (FloatVector) q.and(0x0F).lanewise(VectorOperators.OR, 0x10, lowFifth).sub(16)
                        .convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .lanewise(VectorOperators.OR, 0x10, highFifth).sub(16).convert(VectorOperators.I2F, 0);
                sum = low.fma(FloatVector.fromMemorySegment(F, x, xs + 4L * c, Lanes.ORDER), sum);
                sum = high.fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (c + HALF), Lanes.ORDER), sum);
            }
            acc = sum.fma(FloatVector.broadcast(F, LittleEndian.f16(w, block)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
