package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
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
            MemorySegment src = arena.allocateFrom(ValueLayout.JAVA_BYTE, bytes);
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

    /** With {@code mixed}, the values are the row mixed by {@link Rotation#weights} (checked on its own). */
    @ParameterizedTest
    @CsvSource({"Q8_0, false", "Q4_0, false", "Q5_0, false", "Q8_0, true", "Q4_0, true"})
    void channelS8IsTheGgufValueRoundedToOneScalePerRow(DType t, boolean mixed) {
        SplittableRandom r = new SplittableRandom(200 + t.ordinal());
        int m = 6;
        int k = 512;
        byte[] bytes = TestWeights.random(t, r, m, k);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment quant = arena.allocate((long) m * k);
            MemorySegment scales = arena.allocate(4L * m);
            WeightPacking.toChannelS8(t, arena.allocateFrom(ValueLayout.JAVA_BYTE, bytes), t.rowBytes(k), m, k, mixed,
                    quant, scales);
            for (int row = 0; row < m; row++) {
                float[] values = new float[k];
                for (int col = 0; col < k; col++) {
                    values[col] = (float) TestWeights.value(t, bytes, k, row, col);
                }
                if (mixed) {
                    Rotation.weights(values);
                }
                float max = 0;
                for (float v : values) {
                    max = Math.max(max, Math.abs(v));
                }
                float s = scales.getAtIndex(ValueLayout.JAVA_FLOAT, row);
                assertEquals(max / 127, s, t + " scale of row " + row);
                int extreme = 0;
                for (int col = 0; col < k; col++) {
                    int q = quant.get(ValueLayout.JAVA_BYTE, (long) row * k + col);
                    assertEquals(values[col], q * (double) s, s * (0.5 + 1e-5), t + " [" + row + "," + col + "]");
                    extreme = Math.max(extreme, Math.abs(q));
                }
                assertEquals(127, extreme, t + " row " + row + " uses the full s8 range");
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
