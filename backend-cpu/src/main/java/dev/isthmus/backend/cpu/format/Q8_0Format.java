package dev.isthmus.backend.cpu.format;

import dev.isthmus.api.DType;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * ggml {@code block_q8_0}: 34 bytes per 32 elements, an F16 scale {@code d} then 32 signed bytes;
 * {@code x = d * q}.
 */
public final class Q8_0Format implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 32;
    private static final int BLOCK_BYTES = 34;
    private static final int QS = 2;

    @Override
    public DType dtype() {
        return DType.Q8_0;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            long block = srcOffset + (long) b * BLOCK_BYTES;
            long out = dstOffset + 4L * b * BLOCK;
            float d = LittleEndian.f16(src, block);
            for (int c = 0; c < BLOCK; c += L) {
                FloatVector q = (FloatVector) ByteVector.fromMemorySegment(B, src, block + QS + c, Lanes.ORDER)
                        .convertShape(VectorOperators.B2F, F, 0);
                q.mul(d).intoMemorySegment(dst, out + 4L * c, Lanes.ORDER);
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
            for (int c = 0; c < BLOCK; c += L) {
                FloatVector q = (FloatVector) ByteVector.fromMemorySegment(B, w, block + QS + c, Lanes.ORDER)
                        .convertShape(VectorOperators.B2F, F, 0);
                sum = q.fma(FloatVector.fromMemorySegment(F, x, xs + 4L * c, Lanes.ORDER), sum);
            }
            acc = sum.fma(FloatVector.broadcast(F, LittleEndian.f16(w, block)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
