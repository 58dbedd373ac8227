package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

class QuantizationTest {
    private static float value(long row, int col) {
        return (float) Math.sin(row * 31 + col * 0.37) * 0.05f;
    }

    private static byte[] quantize(DType type, long rows, int cols, int threads) {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment target = arena.allocate(type.rowBytes(cols) * rows);
            Quantization.quantizeRows(type, rows, cols, (r, dst) -> {
                for (int c = 0; c < cols; c++) {
                    dst[c] = value(r, c);
                }
            }, target, threads);
            return target.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** Rows are independent, so any number of threads writes the same bytes as one row at a time. */
    @Test
    void threadsDoNotChangeTheBytes() {
        for (DType t : new DType[] {DType.Q4_K, DType.Q8_0, DType.F16}) {
            byte[] one = quantize(t, 301, 512, 1);
            assertArrayEquals(one, quantize(t, 301, 512, 3), t.name());
            byte[] row7 = new byte[(int) t.rowBytes(512)];
            float[] x = new float[512];
            for (int c = 0; c < 512; c++) {
                x[c] = value(7, c);
            }
            Quantizer.create(t).quantize(x, 0, 512, row7, 0);
            byte[] inFile = java.util.Arrays.copyOfRange(one, 7 * row7.length, 8 * row7.length);
            assertArrayEquals(row7, inFile, t.name());
        }
    }

    @Test
    void aFailingSourceFailsTheCall() {
        IllegalStateException boom = new IllegalStateException("boom");
        try (Arena arena = Arena.ofShared()) {
            MemorySegment target = arena.allocate(DType.Q8_0.rowBytes(64) * 100);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> Quantization.quantizeRows(
                    DType.Q8_0, 100, 64, (r, dst) -> {
                        if (r == 77) {
                            throw boom;
                        }
                    }, target, 2));
            assertSame(boom, e);
            assertThrows(IllegalArgumentException.class,
                    () -> Quantization.quantizeRows(DType.Q8_0, 1000, 64, (r, dst) -> { }, target, 2));
        }
    }

    /** rowsOf reads every float type and every block format back as floats. */
    @Test
    void rowsOfDecodesEveryType() {
        Random random = new Random(5);
        float[] x = new float[4 * 256];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        for (DType t : new DType[] {DType.F32, DType.F16, DType.BF16, DType.Q4_0, DType.Q6_K}) {
            Quantizer q = Quantizer.create(t);
            byte[] bytes = new byte[(int) t.rowBytes(x.length)];
            q.quantize(x, 0, x.length, bytes, 0);
            float[] expected = new float[x.length];
            q.dequantize(bytes, 0, x.length, expected, 0);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment seg = arena.allocate(bytes.length);
                MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
                Quantization.RowSource rows = Quantization.rowsOf(Tensor.host(seg, t, 4, 256));
                float[] row = new float[256];
                for (int r = 0; r < 4; r++) {
                    rows.read(r, row);
                    assertArrayEquals(java.util.Arrays.copyOfRange(expected, 256 * r, 256 * (r + 1)), row, t + " row " + r);
                }
            }
        }
        assertEquals(Runtime.getRuntime().availableProcessors(), Quantization.defaultThreads());
    }
}
