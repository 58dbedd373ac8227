package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

class WeightPackingTest {

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q5_0"})
    void scaleTimesIntegerIsTheGgufValueExactly(DType t) {
        SplittableRandom r = new SplittableRandom(t.ordinal());
        int m = 7;
        int k = 96;
        int padding = 3 * t.blockBytes();
        byte[] bytes = TestWeights.random(t, r, m, k);
        int rowBytes = Math.toIntExact(t.rowBytes(k));
        try (Arena arena = Arena.ofShared()) {
            // Rows spaced wider than they are long, like a view into a fused weight.
            long stride = rowBytes + padding;
            MemorySegment src = arena.allocate(stride * m);
            for (int row = 0; row < m; row++) {
                MemorySegment.copy(bytes, row * rowBytes, src, ValueLayout.JAVA_BYTE, row * stride, rowBytes);
            }
            MemorySegment quant = arena.allocate(WeightPacking.quantBytes(t, m, k));
            MemorySegment scales = arena.allocate(WeightPacking.scaleBytes(t, m, k));
            WeightPacking.unpack(t, src, stride, m, k, quant, scales);
            for (int row = 0; row < m; row++) {
                for (int col = 0; col < k; col++) {
                    double d = Float.float16ToFloat(scales.get(ValueLayout.JAVA_SHORT,
                            2L * ((long) (col / WeightPacking.group(t)) * m + row)));
                    double got = d * quant.get(ValueLayout.JAVA_BYTE, (long) row * k + col);
                    assertEquals(TestWeights.value(t, bytes, k, row, col), got, 0.0, t + " [" + row + "," + col + "]");
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q5_0"})
    void bf16IsTheGgufValueRoundedOnce(DType t) {
        SplittableRandom r = new SplittableRandom(100 + t.ordinal());
        int m = 5;
        int k = 64;
        byte[] bytes = TestWeights.random(t, r, m, k);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment src = arena.allocate(bytes.length);
            MemorySegment.copy(bytes, 0, src, ValueLayout.JAVA_BYTE, 0, bytes.length);
            MemorySegment out = arena.allocate((long) m * k * 2);
            WeightPacking.toBf16(t, src, t.rowBytes(k), m, k, out);
            for (int row = 0; row < m; row++) {
                for (int col = 0; col < k; col++) {
                    float exact = (float) TestWeights.value(t, bytes, k, row, col);
                    float got = Float.intBitsToFloat((out.get(ValueLayout.JAVA_SHORT, 2L * (row * k + col)) & 0xFFFF) << 16);
                    assertEquals(exact, got, Math.abs(exact) / 256, t + " [" + row + "," + col + "]");
                    assertEquals(WeightPacking.bf16(exact), out.get(ValueLayout.JAVA_SHORT, 2L * (row * k + col)));
                }
            }
        }
    }

    @org.junit.jupiter.api.Test
    void bf16RoundsToNearestEven() {
        assertEquals((short) 0x3F80, WeightPacking.bf16(1.0f));
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even, down to 1.
        assertEquals((short) 0x3F80, WeightPacking.bf16(1.00390625f));
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: up to the even one.
        assertEquals((short) 0x3F82, WeightPacking.bf16(1.01171875f));
        assertEquals((short) 0xBF81, WeightPacking.bf16(-1.0078125f));
    }
}
