package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.format.WeightFormat;
import dev.isthmus.backend.cpu.format.WeightFormats;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BlockFormatTest {
    @RegisterExtension
    static final CpuBackendFixture cpu = CpuBackendFixture.withDefaults();

    private float[] dequantize(DType type, byte[] bytes, int count) {
        Tensor src = TestData.bytes(cpu.arena(), type, bytes, 1, count);
        Tensor dst = Tensor.allocate(cpu.arena(), DType.F32, 1, count);
        cpu.backend().dequantize(src, dst);
        return dst.toFloatArray();
    }

    @Test
    void handBuiltQ4_0BlockDecodesToKnownValues() {
        byte[] block = new byte[18];
        short half = Float.floatToFloat16(0.5f);
        block[0] = (byte) half;
        block[1] = (byte) (half >> 8);
        for (int j = 0; j < 16; j++) {
            block[2 + j] = (byte) (j | ((15 - j) << 4));
        }
        float[] expected = new float[32];
        for (int j = 0; j < 16; j++) {
            expected[j] = (j - 8) * 0.5f;
            expected[j + 16] = (7 - j) * 0.5f;
        }
        assertArrayEquals(expected, dequantize(DType.Q4_0, block, 32));
    }

    @Test
    void handBuiltQ8_0BlockDecodesToKnownValues() {
        byte[] block = new byte[34];
        short half = Float.floatToFloat16(0.25f);
        block[0] = (byte) half;
        block[1] = (byte) (half >> 8);
        float[] expected = new float[32];
        for (int j = 0; j < 32; j++) {
            block[2 + j] = (byte) (j - 16);
            expected[j] = (j - 16) * 0.25f;
        }
        assertArrayEquals(expected, dequantize(DType.Q8_0, block, 32));
    }

    @Test
    void handBuiltQ5_0BlockUsesTheFifthBitOfEachElement() {
        byte[] block = new byte[22];
        short half = Float.floatToFloat16(1f);
        block[0] = (byte) half;
        block[1] = (byte) (half >> 8);
        // Fifth bit set for elements 0 and 31 only.
        int qh = 1 | (1 << 31);
        for (int i = 0; i < 4; i++) {
            block[2 + i] = (byte) (qh >>> (8 * i));
        }
        for (int j = 0; j < 16; j++) {
            block[6 + j] = (byte) 0x33; // every nibble is 3
        }
        float[] out = dequantize(DType.Q5_0, block, 32);
        assertEquals(3 + 16 - 16, out[0]);
        assertEquals(3 - 16, out[1]);
        assertEquals(3 - 16, out[30]);
        assertEquals(3 + 16 - 16, out[31]);
    }

    @Test
    void handBuiltQ4_1BlockAddsTheMinimum() {
        byte[] block = new byte[20];
        short d = Float.floatToFloat16(2f);
        short m = Float.floatToFloat16(-1f);
        block[0] = (byte) d;
        block[1] = (byte) (d >> 8);
        block[2] = (byte) m;
        block[3] = (byte) (m >> 8);
        block[4] = (byte) 0xF1; // element 0 = 1, element 16 = 15
        float[] out = dequantize(DType.Q4_1, block, 32);
        assertEquals(1f, out[0]);
        assertEquals(29f, out[16]);
        assertEquals(-1f, out[1]);
    }

    @Test
    void handBuiltQ6_KBlockDecodesScalesAndHighBits() {
        byte[] block = new byte[210];
        short d = Float.floatToFloat16(0.5f);
        block[208] = (byte) d;
        block[209] = (byte) (d >> 8);
        for (int s = 0; s < 16; s++) {
            block[192 + s] = (byte) (s - 8);
        }
        block[0] = (byte) 0x21;   // element 0 low nibble 1, element 64 low nibble 2
        block[128] = (byte) 0b11_10_01_00; // high bits: elements 0:0, 32:1, 64:2, 96:3
        float[] out = dequantize(DType.Q6_K, block, 256);
        assertEquals(0.5f * -8 * (1 - 32), out[0]);
        assertEquals(0.5f * -6 * (16 - 32), out[32]);
        assertEquals(0.5f * -4 * (2 + 32 - 32), out[64]);
        assertEquals(0.5f * -2 * (48 - 32), out[96]);
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
            "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"})
    void dequantizeAndDotAgreeWithTheScalarReference(DType type) {
        Random random = new Random(type.ordinal() * 31L + 7);
        int count = type.blockSize() == 1 ? 77 : 3 * type.blockSize();
        WeightFormat format = WeightFormats.of(type);
        for (int trial = 0; trial < 20; trial++) {
            byte[] row = TestData.randomRow(random, type, count);
            double[] reference = ReferenceDecoder.decode(type, row, count);
            float[] decoded = dequantize(type, row, count);
            for (int i = 0; i < count; i++) {
                assertEquals(reference[i], decoded[i], 1e-6 + 1e-6 * Math.abs(reference[i]),
                        type + " element " + i);
            }

            MemorySegment w = cpu.arena().allocate(row.length + 3L).asSlice(3); // deliberately unaligned
            MemorySegment.copy(row, 0, w, ValueLayout.JAVA_BYTE, 0, row.length);
            float[] x = TestData.randomFloats(random, count);
            MemorySegment xs = cpu.arena().allocate(4L * count + 4).asSlice(4);
            MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, count);
            double expected = 0;
            double magnitude = 0;
            for (int i = 0; i < count; i++) {
                expected += reference[i] * x[i];
                magnitude += Math.abs(reference[i] * x[i]);
            }
            float dot = format.dot(w, 0, xs, 0, count);
            assertEquals(expected, dot, 1e-5 * magnitude + 1e-6, type + " dot");
        }
    }

    @Test
    void halfFloatsConvertSubnormalsInfinitiesAndNaN() {
        short[] halves = {0, (short) 0x8000, 1, (short) 0x8001, 0x03FF, 0x0400, 0x3C00, (short) 0xC000, 0x7BFF,
                0x7C00, (short) 0xFC00, 0x7E00, 0x3555, 0x0200, 0x1234, (short) 0x9876, 0x7C01};
        int count = halves.length;
        byte[] bytes = new byte[2 * count];
        for (int i = 0; i < count; i++) {
            bytes[2 * i] = (byte) halves[i];
            bytes[2 * i + 1] = (byte) (halves[i] >> 8);
        }
        float[] out = dequantize(DType.F16, bytes, count);
        for (int i = 0; i < count; i++) {
            float expected = Float.float16ToFloat(halves[i]);
            if (Float.isNaN(expected)) {
                assertTrue(Float.isNaN(out[i]), "NaN at " + i);
            } else {
                assertEquals(Float.floatToIntBits(expected), Float.floatToIntBits(out[i]), "half " + halves[i]);
            }
        }
    }
}
