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
 * ggml {@code block_q5_K}: 176 bytes per 256 elements: F16 {@code d} and {@code dmin}, 12 bytes of 6-bit
 * scales and minimums packed as in Q4_K, 32 bytes of fifth bits {@code qh} and 128 bytes of nibbles laid
 * out as in Q4_K.
 *
 * <p>The fifth bit of element {@code 64g + l} is bit {@code 2g} of {@code qh[l]}, that of element
 * {@code 64g + 32 + l} bit {@code 2g + 1}; {@code x = d * scale * q - dmin * min}. One super-block per
 * kernel call, as in {@link Q2_KFormat}.
 */
public final class Q5_KFormat implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 256;
    private static final int BLOCK_BYTES = 176;
    private static final int DMIN = 2;
    private static final int SCALES = 4;
    private static final int QH = 16;
    private static final int QS = 48;

    @Override
    public DType dtype() {
        return DType.Q5_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            dequantizeBlock(src, srcOffset + (long) b * BLOCK_BYTES, dst, dstOffset + 4L * b * BLOCK);
        }
    }

    private static void dequantizeBlock(MemorySegment src, long block, MemorySegment dst, long out) {
        float d = LittleEndian.f16(src, block);
        float dmin = LittleEndian.f16(src, block + DMIN);
        long scales = KQuantScales.q4kScales(src, block + SCALES);
        long mins = KQuantScales.q4kMins(src, block + SCALES);
        for (int g = 0; g < 4; g++) {
            FloatVector d1 = FloatVector.broadcast(F, d * ((int) (scales >>> (16 * g)) & 0xFF));
            FloatVector m1 = FloatVector.broadcast(F, -dmin * ((int) (mins >>> (16 * g)) & 0xFF));
            FloatVector d2 = FloatVector.broadcast(F, d * ((int) (scales >>> (16 * g + 8)) & 0xFF));
            FloatVector m2 = FloatVector.broadcast(F, -dmin * ((int) (mins >>> (16 * g + 8)) & 0xFF));
            for (int l = 0; l < 32; l += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, src, block + QS + 32 * g + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                // The fifth bits moved to bit 4 of their lane, then shifted down per sub-block.
                IntVector fifth = ((IntVector) ByteVector.fromMemorySegment(B, src, block + QH + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0)).lanewise(VectorOperators.LSHL, 4);
                FloatVector low = (FloatVector) q.and(0x0F)
                        .or(fifth.lanewise(VectorOperators.LSHR, 2 * g).and(0x10)).convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .or(fifth.lanewise(VectorOperators.LSHR, 2 * g + 1).and(0x10)).convert(VectorOperators.I2F, 0);
                low.fma(d1, m1).intoMemorySegment(dst, out + 4L * (64 * g + l), Lanes.ORDER);
                high.fma(d2, m2).intoMemorySegment(dst, out + 4L * (64 * g + 32 + l), Lanes.ORDER);
            }
        }
    }

    @Override
    public float dot(MemorySegment w, long wOffset, MemorySegment x, long xOffset, int count) {
        float sum = 0;
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            sum += dotBlock(w, wOffset + (long) b * BLOCK_BYTES, x, xOffset + 4L * b * BLOCK);
        }
        return sum;
    }

    private static float dotBlock(MemorySegment w, long block, MemorySegment x, long xs) {
        float d = LittleEndian.f16(w, block);
        float dmin = LittleEndian.f16(w, block + DMIN);
        long scales = KQuantScales.q4kScales(w, block + SCALES);
        long mins = KQuantScales.q4kMins(w, block + SCALES);
        FloatVector acc = FloatVector.zero(F);
        for (int g = 0; g < 4; g++) {
            FloatVector d1 = FloatVector.broadcast(F, d * ((int) (scales >>> (16 * g)) & 0xFF));
            FloatVector m1 = FloatVector.broadcast(F, -dmin * ((int) (mins >>> (16 * g)) & 0xFF));
            FloatVector d2 = FloatVector.broadcast(F, d * ((int) (scales >>> (16 * g + 8)) & 0xFF));
            FloatVector m2 = FloatVector.broadcast(F, -dmin * ((int) (mins >>> (16 * g + 8)) & 0xFF));
            for (int l = 0; l < 32; l += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, w, block + QS + 32 * g + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                IntVector fifth = ((IntVector) ByteVector.fromMemorySegment(B, w, block + QH + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0)).lanewise(VectorOperators.LSHL, 4);
                FloatVector low = (FloatVector) q.and(0x0F)
                        .or(fifth.lanewise(VectorOperators.LSHR, 2 * g).and(0x10)).convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .or(fifth.lanewise(VectorOperators.LSHR, 2 * g + 1).and(0x10)).convert(VectorOperators.I2F, 0);
                acc = low.fma(d1, m1).fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (64 * g + l), Lanes.ORDER), acc);
                acc = high.fma(d2, m2)
                        .fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (64 * g + 32 + l), Lanes.ORDER), acc);
            }
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }
}
