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
 * ggml {@code block_q4_0}: 18 bytes per 32 elements, an F16 scale {@code d} then 16 bytes whose low
 * nibbles are elements 0..15 and high nibbles elements 16..31; {@code x = d * (q - 8)}.
 *
 * <p>Like all block kernels, bits are unpacked in int lanes: x86 has no byte shifts, int shifts are one
 * instruction.
 */
public final class Q4_0Format implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 18;
    private static final int QS = 2;
    private static final int HALF = 16;

    @Override
    public DType dtype() {
        return DType.Q4_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            long block = srcOffset + (long) b * BLOCK_BYTES;
            long out = dstOffset + 4L * b * BLOCK;
            float d = LittleEndian.f16(src, block);
            for (int c = 0; c < HALF; c += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, src, block + QS + c, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                FloatVector low = (FloatVector) q.and(0x0F).sub(8).convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F).sub(8)
                        .convert(VectorOperators.I2F, 0);
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
            FloatVector sum = FloatVector.zero(F);
            for (int c = 0; c < HALF; c += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, w, block + QS + c, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                FloatVector low = (FloatVector) q.and(0x0F).sub(8).convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F).sub(8)
                        .convert(VectorOperators.I2F, 0);
                sum = low.fma(FloatVector.fromMemorySegment(F, x, xs + 4L * c, Lanes.ORDER), sum);
                sum = high.fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (c + HALF), Lanes.ORDER), sum);
            }
            acc = sum.fma(FloatVector.broadcast(F, LittleEndian.f16(w, block)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
