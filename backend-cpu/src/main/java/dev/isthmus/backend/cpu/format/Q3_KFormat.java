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
 * ggml {@code block_q3_K}: 110 bytes per 256 elements: a 32-byte high-bit mask, 64 bytes of low 2-bit
 * quants, 12 bytes of 6-bit scales (see {@link KQuantScales#q3kScales}) and F16 {@code d}.
 *
 * <p>Element {@code 128n + 32j + l} ({@code l < 32}) takes bits {@code 2j..2j+1} of quant byte
 * {@code 32n + l} and bit {@code 4n + j} of mask byte {@code l}; a clear mask bit subtracts 4. Its scale
 * is number {@code 8n + 2j + l/16}; {@code x = d * scale * q}. One super-block per kernel call, as in
 * {@link Q2_KFormat}.
 */
public final class Q3_KFormat implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 256;
    private static final int BLOCK_BYTES = 110;
    private static final int HMASK = 0;
    private static final int QS = 32;
    private static final int SCALES = 96;
    private static final int D = 108;

    @Override
    public DType dtype() {
        return DType.Q3_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            dequantizeBlock(src, srcOffset + (long) b * BLOCK_BYTES, dst, dstOffset + 4L * b * BLOCK);
        }
    }

    private static void dequantizeBlock(MemorySegment src, long block, MemorySegment dst, long out) {
        float d = LittleEndian.f16(src, block + D);
        long lowerScales = KQuantScales.q3kScales(src, block + SCALES, false);
        long upperScales = KQuantScales.q3kScales(src, block + SCALES, true);
        for (int n = 0; n < 2; n++) {
            long scales = n == 0 ? lowerScales : upperScales;
            for (int l = 0; l < 32; l += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, src, block + QS + 32 * n + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                // The mask bit moved to bit 2, where it adds 4 to the quant.
                IntVector mask4 = ((IntVector) ByteVector.fromMemorySegment(B, src, block + HMASK + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0)).lanewise(VectorOperators.LSHL, 2);
                for (int j = 0; j < 4; j++) {
                    float dl = d * (((int) (scales >>> (8 * (2 * j + l / 16))) & 0xFF) - 32);
                    FloatVector v = (FloatVector) q.lanewise(VectorOperators.LSHR, 2 * j).and(3)
                            .or(mask4.lanewise(VectorOperators.LSHR, 4 * n + j).and(4)).sub(4)
                            .convert(VectorOperators.I2F, 0);
                    v.mul(dl).intoMemorySegment(dst, out + 4L * (128 * n + 32 * j + l), Lanes.ORDER);
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
        long lowerScales = KQuantScales.q3kScales(w, block + SCALES, false);
        long upperScales = KQuantScales.q3kScales(w, block + SCALES, true);
        // Even and odd bit pairs feed separate accumulators: two FMA chains instead of one.
        FloatVector accEven = FloatVector.zero(F);
        FloatVector accOdd = FloatVector.zero(F);
        for (int n = 0; n < 2; n++) {
            long scales = n == 0 ? lowerScales : upperScales;
            for (int l = 0; l < 32; l += L) {
                IntVector q = (IntVector) ByteVector.fromMemorySegment(B, w, block + QS + 32 * n + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                IntVector mask4 = ((IntVector) ByteVector.fromMemorySegment(B, w, block + HMASK + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0)).lanewise(VectorOperators.LSHL, 2);
                for (int j = 0; j < 4; j += 2) {
                    float dEven = d * (((int) (scales >>> (8 * (2 * j + l / 16))) & 0xFF) - 32);
                    float dOdd = d * (((int) (scales >>> (8 * (2 * j + 2 + l / 16))) & 0xFF) - 32);
                    FloatVector even = (FloatVector) q.lanewise(VectorOperators.LSHR, 2 * j).and(3)
                            .or(mask4.lanewise(VectorOperators.LSHR, 4 * n + j).and(4)).sub(4)
                            .convert(VectorOperators.I2F, 0);
                    FloatVector odd = (FloatVector) q.lanewise(VectorOperators.LSHR, 2 * j + 2).and(3)
                            .or(mask4.lanewise(VectorOperators.LSHR, 4 * n + j + 1).and(4)).sub(4)
                            .convert(VectorOperators.I2F, 0);
                    accEven = even.mul(dEven).fma(
                            FloatVector.fromMemorySegment(F, x, xs + 4L * (128 * n + 32 * j + l), Lanes.ORDER), accEven);
                    accOdd = odd.mul(dOdd).fma(
                            FloatVector.fromMemorySegment(F, x, xs + 4L * (128 * n + 32 * j + 32 + l), Lanes.ORDER),
                            accOdd);
                }
            }
        }
        return accEven.add(accOdd).reduceLanes(VectorOperators.ADD);
    }
}
