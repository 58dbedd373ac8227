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
import java.lang.foreign.ValueLayout;

/**
 * ggml {@code block_q6_K}: 210 bytes per 256 elements: 128 bytes of low nibbles {@code ql}, 64 bytes of
 * high 2-bit pairs {@code qh}, 16 signed 8-bit scales (one per 16 elements) and F16 {@code d}.
 *
 * <p>In half {@code n} (128 elements, {@code ql + 64n}, {@code qh + 32n}), for {@code l < 32}: element
 * {@code l} is the low nibble of {@code ql[l]}, {@code 32 + l} the low nibble of {@code ql[32 + l]},
 * {@code 64 + l} the high nibble of {@code ql[l]} and {@code 96 + l} the high nibble of
 * {@code ql[32 + l]}, with bits 0-1, 2-3, 4-5, 6-7 of {@code qh[l]} on top; {@code x = d * scale * (q - 32)}.
 * One super-block per kernel call, as in {@link Q2_KFormat}.
 */
public final class Q6_KFormat implements WeightFormat {
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final VectorSpecies<Byte> B = Lanes.BYTES;
    private static final VectorSpecies<Integer> I = Lanes.INTS;
    private static final int L = Lanes.COUNT;
    private static final int BLOCK = 256;
    private static final int BLOCK_BYTES = 210;
    private static final int QL = 0;
    private static final int QH = 128;
    private static final int SCALES = 192;
    private static final int D = 208;

    @Override
    public DType dtype() {
        return DType.Q6_K;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        for (int b = 0, blocks = count / BLOCK; b < blocks; b++) {
            dequantizeBlock(src, srcOffset + (long) b * BLOCK_BYTES, dst, dstOffset + 4L * b * BLOCK);
        }
    }

    private static void dequantizeBlock(MemorySegment src, long block, MemorySegment dst, long out) {
        float d = LittleEndian.f16(src, block + D);
        for (int n = 0; n < 2; n++) {
            for (int l = 0; l < 32; l += L) {
                IntVector first = (IntVector) ByteVector.fromMemorySegment(B, src, block + QL + 64 * n + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                IntVector second = (IntVector) ByteVector.fromMemorySegment(B, src, block + QL + 64 * n + 32 + l,
                        Lanes.ORDER).convertShape(VectorOperators.B2I, I, 0);
                IntVector high = (IntVector) ByteVector.fromMemorySegment(B, src, block + QH + 32 * n + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                long scales = block + SCALES + 8 * n + l / 16;
                long o = out + 4L * (128 * n + l);
                // Each quarter's two high bits are moved to bits 4-5 and or-ed onto its nibble.
                FloatVector q1 = (FloatVector) first.and(0x0F).or(high.lanewise(VectorOperators.LSHL, 4).and(0x30))
                        .sub(32).convert(VectorOperators.I2F, 0);
                FloatVector q2 = (FloatVector) second.and(0x0F).or(high.lanewise(VectorOperators.LSHL, 2).and(0x30))
                        .sub(32).convert(VectorOperators.I2F, 0);
                FloatVector q3 = (FloatVector) first.lanewise(VectorOperators.LSHR, 4).and(0x0F).or(high.and(0x30))
                        .sub(32).convert(VectorOperators.I2F, 0);
                FloatVector q4 = (FloatVector) second.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .or(high.lanewise(VectorOperators.LSHR, 2).and(0x30)).sub(32).convert(VectorOperators.I2F, 0);
                q1.mul(d * src.get(ValueLayout.JAVA_BYTE, scales)).intoMemorySegment(dst, o, Lanes.ORDER);
                q2.mul(d * src.get(ValueLayout.JAVA_BYTE, scales + 2)).intoMemorySegment(dst, o + 128, Lanes.ORDER);
                q3.mul(d * src.get(ValueLayout.JAVA_BYTE, scales + 4)).intoMemorySegment(dst, o + 256, Lanes.ORDER);
                q4.mul(d * src.get(ValueLayout.JAVA_BYTE, scales + 6)).intoMemorySegment(dst, o + 384, Lanes.ORDER);
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
        // Quarters 1, 3 and 2, 4 feed separate accumulators: two FMA chains instead of one.
        FloatVector acc = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        for (int n = 0; n < 2; n++) {
            for (int l = 0; l < 32; l += L) {
                IntVector first = (IntVector) ByteVector.fromMemorySegment(B, w, block + QL + 64 * n + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                IntVector second = (IntVector) ByteVector.fromMemorySegment(B, w, block + QL + 64 * n + 32 + l,
                        Lanes.ORDER).convertShape(VectorOperators.B2I, I, 0);
                IntVector high = (IntVector) ByteVector.fromMemorySegment(B, w, block + QH + 32 * n + l, Lanes.ORDER)
                        .convertShape(VectorOperators.B2I, I, 0);
                long scales = block + SCALES + 8 * n + l / 16;
                long o = xs + 4L * (128 * n + l);
                FloatVector q1 = (FloatVector) first.and(0x0F).or(high.lanewise(VectorOperators.LSHL, 4).and(0x30))
                        .sub(32).convert(VectorOperators.I2F, 0);
                FloatVector q2 = (FloatVector) second.and(0x0F).or(high.lanewise(VectorOperators.LSHL, 2).and(0x30))
                        .sub(32).convert(VectorOperators.I2F, 0);
                FloatVector q3 = (FloatVector) first.lanewise(VectorOperators.LSHR, 4).and(0x0F).or(high.and(0x30))
                        .sub(32).convert(VectorOperators.I2F, 0);
                FloatVector q4 = (FloatVector) second.lanewise(VectorOperators.LSHR, 4).and(0x0F)
                        .or(high.lanewise(VectorOperators.LSHR, 2).and(0x30)).sub(32).convert(VectorOperators.I2F, 0);
                acc = q1.mul(d * w.get(ValueLayout.JAVA_BYTE, scales))
                        .fma(FloatVector.fromMemorySegment(F, x, o, Lanes.ORDER), acc);
                acc2 = q2.mul(d * w.get(ValueLayout.JAVA_BYTE, scales + 2))
                        .fma(FloatVector.fromMemorySegment(F, x, o + 128, Lanes.ORDER), acc2);
                acc = q3.mul(d * w.get(ValueLayout.JAVA_BYTE, scales + 4))
                        .fma(FloatVector.fromMemorySegment(F, x, o + 256, Lanes.ORDER), acc);
                acc2 = q4.mul(d * w.get(ValueLayout.JAVA_BYTE, scales + 6))
                        .fma(FloatVector.fromMemorySegment(F, x, o + 384, Lanes.ORDER), acc2);
            }
        }
        return acc.add(acc2).reduceLanes(VectorOperators.ADD);
    }
}
