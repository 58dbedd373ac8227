package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MatMulTest {
    private static Backend backend;
    private static Arena arena;

    @BeforeAll
    static void open() {
        backend = new CpuBackendProvider().create(new BackendOptions(2, Map.of()));
        arena = Arena.ofShared();
    }

    @AfterAll
    static void close() {
        backend.close();
        arena.close();
    }

    @Test
    void twoByThreeTimesThreeByTwo() {
        Tensor x = TestData.f32(arena, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor w = TestData.f32(arena, new float[] {1, 0, -1, 2, 1, 0}, 2, 3); // rows of wᵀ
        Tensor out = Tensor.allocate(arena, DType.F32, 2, 2);
        backend.matmul(x, w, out);
        assertArrayEquals(new float[] {1 - 3, 2 + 2, 4 - 6, 8 + 5}, out.toFloatArray());
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
            "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"})
    void everyWeightTypeMatchesTheReferenceForSmallAndBatchedInputs(DType type) {
        Random random = new Random(42 + type.ordinal());
        int k = type.blockSize() == 1 ? 70 : 2 * type.blockSize();
        int m = 37;
        double[][] wRef = new double[m][];
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (int r = 0; r < m; r++) {
            byte[] row = TestData.randomRow(random, type, k);
            wRef[r] = ReferenceDecoder.decode(type, row, k);
            all.writeBytes(row);
        }
        byte[] wBytes = all.toByteArray();
        Tensor w = TestData.bytes(arena, type, wBytes, m, k);
        for (int n : new int[] {1, 3, 4, 9}) {
            float[] xv = TestData.randomFloats(random, n * k);
            Tensor x = TestData.f32(arena, xv, n, k);
            Tensor out = Tensor.allocate(arena, DType.F32, n, m);
            backend.matmul(x, w, out);
            float[] got = out.toFloatArray();
            for (int i = 0; i < n; i++) {
                for (int r = 0; r < m; r++) {
                    double expected = 0;
                    double magnitude = 0;
                    for (int c = 0; c < k; c++) {
                        expected += wRef[r][c] * xv[i * k + c];
                        magnitude += Math.abs(wRef[r][c] * xv[i * k + c]);
                    }
                    assertEquals(expected, got[i * m + r], 1e-5 * magnitude + 1e-6,
                            type + " n=" + n + " out[" + i + ", " + r + "]");
                }
            }
        }
    }

    @Test
    void manyRowsUseAllThreadsAndStayCorrect() {
        Random random = new Random(5);
        int n = 6;
        int k = 512;
        int m = 300;
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        double[][] wRef = new double[m][];
        for (int r = 0; r < m; r++) {
            byte[] row = TestData.randomRow(random, DType.Q4_K, k);
            wRef[r] = ReferenceDecoder.decode(DType.Q4_K, row, k);
            all.writeBytes(row);
        }
        byte[] wBytes = all.toByteArray();
        Tensor w = TestData.bytes(arena, DType.Q4_K, wBytes, m, k);
        float[] xv = TestData.randomFloats(random, n * k);
        Tensor x = TestData.f32(arena, xv, n, k);
        Tensor out = Tensor.allocate(arena, DType.F32, n, m);
        backend.matmul(x, w, out);
        float[] got = out.toFloatArray();
        for (int i = 0; i < n; i++) {
            for (int r = 0; r < m; r++) {
                double expected = 0;
                for (int c = 0; c < k; c++) {
                    expected += wRef[r][c] * xv[i * k + c];
                }
                assertEquals(expected, got[i * m + r], 1e-3);
            }
        }
    }

    @Test
    void viewsOfLargerTensorsAreHonoured() {
        // x is rows 1..2 of a 4-row tensor; out is rows 2..3 of a 5-row tensor whose other rows must survive.
        Tensor bigX = TestData.f32(arena, new float[] {9, 9, 1, 2, 3, 4, 9, 9}, 4, 2);
        Tensor w = TestData.f32(arena, new float[] {1, 1, 1, -1}, 2, 2);
        Tensor bigOut = TestData.f32(arena, new float[] {7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, 5, 2);
        backend.matmul(bigX.slice(1, 2), w, bigOut.slice(2, 2));
        assertArrayEquals(new float[] {7, 7, 7, 7, 3, -1, 7, -1, 7, 7}, bigOut.toFloatArray());
    }

    @Test
    void shapeMismatchNamesTheOperandsAndShapes() {
        Tensor x = Tensor.allocate(arena, DType.F32, 3, 64);
        Tensor w = Tensor.allocate(arena, DType.Q4_0, 10, 96);
        Tensor out = Tensor.allocate(arena, DType.F32, 3, 10);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.matmul(x, w, out));
        assertEquals("matmul: x F32[3, 64] and w Q4_0[10, 96] disagree on k", e.getMessage());

        Tensor w2 = Tensor.allocate(arena, DType.F32, 10, 64);
        Tensor badOut = Tensor.allocate(arena, DType.F32, 3, 11);
        e = assertThrows(IllegalArgumentException.class, () -> backend.matmul(x, w2, badOut));
        assertTrue(e.getMessage().startsWith("matmul: out F32[3, 11]"), e.getMessage());

        Tensor square = Tensor.allocate(arena, DType.F32, 4, 4);
        e = assertThrows(IllegalArgumentException.class, () -> backend.matmul(square, square, square));
        assertTrue(e.getMessage().contains("must not alias"), e.getMessage());
    }
}
