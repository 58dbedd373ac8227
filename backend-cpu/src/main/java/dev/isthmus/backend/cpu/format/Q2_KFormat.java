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
 * ggml {@code block_q2_K}: 84 bytes per 256 elements: 16 scale bytes (low nibble scale, high nibble
 * minimum, one per 16 elements), 64 bytes of 2-bit quants, then F16 {@code d} and {@code dmin}.
 *
 * <p>Each half of 128 elements uses 32 quant bytes: element {@code 128n + 32j + l} ({@code l < 32}) is bits
 * {@code 2j..2j+1} of byte {@code 32n + l}, with scale byte {@code 8n + 2j + l/16};
 * {@code x = d * (sc & 15) * q - dmin * (sc >> 4)}.
 *
 * <p>The kernels work one super-block per call and return plain values, because a vector crossing a
 * method boundary that the JIT declines to inline gets boxed.
 */
public final class Q2_KFormat implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 256;
    private static final int BLOCK_BYTES = 84;
    private static final int SCALES = 0;
    private static final int QS = 16;
    private static final int D = 80;
    private static final int DMIN = 82;

    @Override
    public DType dtype() {
        return DType.Q2_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            dequantizeBlock(src, srcOffset + (long) b * BLOCK_BYTES, dst, dstOffset + 4L * b * BLOCK);
        }
    }

    private static void dequantizeBlock(MemorySegment src, long block, MemorySegment dst, long out) {
        float d = LittleEndian.f16(src, block + D);
        float dmin = LittleEndian.f16(src, block + DMIN);
        for (int n = 0; n < 2; n++) {
            for (int l = 0; l < 32; l += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, src, block + QS + 32 * n + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                for (int j = 0; j < 4; j++) {
                    int sc = LittleEndian.u8(src, block + SCALES + 8 * n + 2 * j + l / 16);
                    FloatVector v = (FloatVector) q.lanewise(VectorOperators.LSHR, 2 * j).and(3)
                            .convert(VectorOperators.I2F, 0);
                    v.fma(FloatVector.broadcast(F, d * (sc & 0x0F)), FloatVector.broadcast(F, -dmin * (sc >>> 4)))
                            .intoMemorySegment(dst, out + 4L * (128 * n + 32 * j + l), Lanes.ORDER);
                }
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
        float d = LittleEndian.f16(w, block + D);
        float dmin = LittleEndian.f16(w, block + DMIN);
        // Even and odd bit pairs feed separate accumulators: two FMA chains instead of one.
        FloatVector accEven = FloatVector.zero(F);
        FloatVector accOdd = FloatVector.zero(F);
        for (int n = 0; n < 2; n++) {
            for (int l = 0; l < 32; l += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, w, block + QS + 32 * n + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                for (int j = 0; j < 4; j += 2) {
                    int scEven = LittleEndian.u8(w, block + SCALES + 8 * n + 2 * j + l / 16);
                    int scOdd = LittleEndian.u8(w, block + SCALES + 8 * n + 2 * j + 2 + l / 16);
                    FloatVector even = (FloatVector) q.lanewise(VectorOperators.LSHR, 2 * j).and(3)
                            .convert(VectorOperators.I2F, 0);
                    FloatVector odd = (FloatVector) q.lanewise(VectorOperators.LSHR, 2 * j + 2).and(3)
                            .convert(VectorOperators.I2F, 0);
                    accEven = even.fma(FloatVector.broadcast(F, d * (scEven & 0x0F)),
                                    FloatVector.broadcast(F, -dmin * (scEven >>> 4)))
                            .fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (128 * n + 32 * j + l), Lanes.ORDER),
                                    accEven);
                    accOdd = odd.fma(FloatVector.broadcast(F, d * (scOdd & 0x0F)),
                                    FloatVector.broadcast(F, -dmin * (scOdd >>> 4)))
                            .fma(FloatVector.fromMemorySegment(F, x, xs + 4L * (128 * n + 32 * j + 32 + l),
                                    Lanes.ORDER), accOdd);
                }
            }
        }
        return accEven.add(accOdd).reduceLanes(VectorOperators.ADD);
    }
}
