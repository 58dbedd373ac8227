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
 * ggml {@code block_q4_K}: 144 bytes per 256 elements: F16 {@code d} and {@code dmin}, 12 bytes of 6-bit
 * scales and minimums (see {@link KQuantScales#q4kScales}) and 128 bytes of nibbles.
 *
 * <p>Each 64 elements {@code 64g .. 64g+63} use 32 quant bytes {@code 32g ..}: low nibbles are the first
 * 32 elements (sub-block {@code 2g}), high nibbles the next 32 (sub-block {@code 2g+1});
 * {@code x = d * scale * q - dmin * min}. One super-block per kernel call, as in {@link Q2_KFormat}.
 */
public final class Q4_KFormat implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 256;
    private static final int BLOCK_BYTES = 144;
    private static final int DMIN = 2;
    private static final int SCALES = 4;
    private static final int QS = 16;

    @Override
    public DType dtype() {
        return DType.Q4_K;
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
                FloatVector low = (FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .convert(VectorOperators.I2F, 0);
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
        // Low and high nibbles feed separate accumulators: two FMA chains instead of one.
        FloatVector accLow = FloatVector.zero(F);
        FloatVector accHigh = FloatVector.zero(F);
        for (int g = 0; g < 4; g++) {
            FloatVector d1 = FloatVector.broadcast(F, d * ((int) (scales >>> (16 * g)) & 0xFF));
            FloatVector m1 = FloatVector.broadcast(F, -dmin * ((int) (mins >>> (16 * g)) & 0xFF));
            FloatVector d2 = FloatVector.broadcast(F, d * ((int) (scales >>> (16 * g + 8)) & 0xFF));
            FloatVector m2 = FloatVector.broadcast(F, -dmin * ((int) (mins >>> (16 * g + 8)) & 0xFF));
            for (int l = 0; l < 32; l += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, w, block + QS + 32 * g + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                FloatVector low = (FloatVector) q.and(0x0F).convert(VectorOperators.I2F, 0);
                FloatVector high = (FloatVector) q.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .convert(VectorOperators.I2F, 0);
                accLow = low.fma(d1, m1).fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (64 * g + l), Lanes.ORDER), accLow);
                accHigh = high.fma(d2, m2)
                        .fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (64 * g + 32 + l), Lanes.ORDER), accHigh);
            }
        }
        return accLow.add(accHigh).reduceLanes(VectorOperators.ADD);
    }
}
