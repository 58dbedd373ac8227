package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class RowOpsTest {
    private static Backend backend;
    private static Arena arena;

    @BeforeAll
    static void open() {
        backend = new CpuBackendProvider().create(BackendOptions.defaults());
        arena = Arena.ofShared();
    }

    @AfterAll
    static void close() {
        backend.close();
        arena.close();
    }

    @Test
    void argmaxPrefersTheLowestIndexOnTies() {
        float[] v = new float[2 * 40];
        v[7] = 5;
        v[33] = 5;
        v[40 + 39] = -1;
        for (int i = 40; i < 79; i++) {
            v[i] = -2;
        }
        Tensor x = TestData.f32(arena, v, 2, 40);
        assertArrayEquals(new int[] {7, 79 - 40}, backend.argmax(x));
    }

    @Test
    void topKIsLargestFirstWithTiesByIndex() {
        Tensor x = TestData.f32(arena, new float[] {1, 5, 3, 5, 2, 5, 0}, 1, 7);
        TopK top = backend.topK(x, 4);
        assertArrayEquals(new int[] {1, 3, 5, 2}, top.indices()[0]);
        assertArrayEquals(new float[] {5, 5, 5, 3}, top.values()[0]);
        assertThrows(IllegalArgumentException.class, () -> backend.topK(x, 8));
    }

    @Test
    void topKOverALongRowMatchesASort() {
        Random random = new Random(9);
        int cols = 5000;
        float[] v = new float[cols];
        for (int i = 0; i < cols; i++) {
            v[i] = random.nextInt(200); // many ties
        }
        TopK top = backend.topK(TestData.f32(arena, v, 1, cols), 50);
        Integer[] order = new Integer[cols];
        for (int i = 0; i < cols; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> v[a] != v[b] ? Float.compare(v[b], v[a]) : Integer.compare(a, b));
        for (int r = 0; r < 50; r++) {
            assertEquals(order[r], top.indices()[0][r]);
            assertEquals(v[order[r]], top.values()[0][r]);
        }
    }

    @Test
    void copyRowsScattersIntoHalfPrecisionCaches() {
        Tensor src = TestData.f32(arena, new float[] {1, 2, 3, 4, 1.0009765625f, -0.1f, 7, 8}, 2, 2, 2);
        Tensor f16 = Tensor.allocate(arena, DType.F16, 4, 2, 2);
        backend.copyRows(src, f16, new int[] {3, 1});
        Tensor back = Tensor.allocate(arena, DType.F32, 4, 2, 2);
        backend.dequantize(f16, back);
        assertArrayEquals(new float[] {0, 0, 0, 0, 1.0009765625f, Float.float16ToFloat(Float.floatToFloat16(-0.1f)),
                7, 8, 0, 0, 0, 0, 1, 2, 3, 4}, back.toFloatArray());

        Tensor bf16 = Tensor.allocate(arena, DType.BF16, 2, 4);
        Tensor flat = TestData.f32(arena, new float[] {1.00390625f, 1.01171875f, -3, 1e-3f}, 1, 4);
        backend.copyRows(flat, bf16, new int[] {1});
        // 1 + 2^-8 is a tie between two bfloat16 values and rounds to the even one (1.0); 1 + 3·2^-8 rounds up.
        assertEquals((short) 0x3F80, bf16.segment().get(ValueLayout.JAVA_SHORT_UNALIGNED, 8));
        assertEquals((short) 0x3F82, bf16.segment().get(ValueLayout.JAVA_SHORT_UNALIGNED, 10));
        assertEquals((short) 0xC040, bf16.segment().get(ValueLayout.JAVA_SHORT_UNALIGNED, 12));
        assertThrows(IllegalArgumentException.class, () -> backend.copyRows(flat, bf16, new int[] {2}));
    }

    @Test
    void embeddingLookupGathersAndDecodesRows() {
        Random random = new Random(1);
        int cols = 64;
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        double[][] ref = new double[5][];
        for (int r = 0; r < 5; r++) {
            byte[] row = TestData.randomRow(random, DType.Q5_1, cols);
            ref[r] = ReferenceDecoder.decode(DType.Q5_1, row, cols);
            all.writeBytes(row);
        }
        byte[] table = all.toByteArray();
        Tensor t = TestData.bytes(arena, DType.Q5_1, table, 5, cols);
        Tensor out = Tensor.allocate(arena, DType.F32, 3, cols);
        backend.embeddingLookup(t, new int[] {4, 0, 4}, out);
        float[] got = out.toFloatArray();
        int[] ids = {4, 0, 4};
        for (int i = 0; i < 3; i++) {
            for (int c = 0; c < cols; c++) {
                assertEquals(ref[ids[i]][c], got[i * cols + c], 1e-6);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> backend.embeddingLookup(t, new int[] {5, 0, 0}, out));
    }
}
