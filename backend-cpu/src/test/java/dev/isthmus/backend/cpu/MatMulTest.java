package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MatMulTest {
    @RegisterExtension
    static final CpuBackendFixture cpu = CpuBackendFixture.withThreads(2);

    @Test
    void twoByThreeTimesThreeByTwo() {
        Tensor x = TestData.f32(cpu.arena(), new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor w = TestData.f32(cpu.arena(), new float[] {1, 0, -1, 2, 1, 0}, 2, 3); // rows of wᵀ
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 2, 2);
        cpu.backend().matmul(x, w, out);
        assertArrayEquals(new float[] {1 - 3, 2 + 2, 4 - 6, 8 + 5}, out.toFloatArray());
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
            "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"})
    void everyWeightTypeMatchesTheReferenceForSmallAndBatchedInputs(DType type) {
        Random random = new Random(42 + type.ordinal());
        int k = type.blockSize() == 1 ? 70 : 2 * type.blockSize();
        int m = 37;
        TestData.RandomWeights weights = TestData.randomWeights(cpu.arena(), random, type, m, k);
        double[][] wRef = weights.reference();
        Tensor w = weights.tensor();
        for (int n : new int[] {1, 3, 4, 9}) {
            float[] xv = TestData.randomFloats(random, n * k);
            Tensor x = TestData.f32(cpu.arena(), xv, n, k);
            Tensor out = Tensor.allocate(cpu.arena(), DType.F32, n, m);
            cpu.backend().matmul(x, w, out);
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
        TestData.RandomWeights weights = TestData.randomWeights(cpu.arena(), random, DType.Q4_K, m, k);
        double[][] wRef = weights.reference();
        Tensor w = weights.tensor();
        float[] xv = TestData.randomFloats(random, n * k);
        Tensor x = TestData.f32(cpu.arena(), xv, n, k);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, n, m);
        cpu.backend().matmul(x, w, out);
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
        Tensor bigX = TestData.f32(cpu.arena(), new float[] {9, 9, 1, 2, 3, 4, 9, 9}, 4, 2);
        Tensor w = TestData.f32(cpu.arena(), new float[] {1, 1, 1, -1}, 2, 2);
        Tensor bigOut = TestData.f32(cpu.arena(), new float[] {7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, 5, 2);
        cpu.backend().matmul(bigX.slice(1, 2), w, bigOut.slice(2, 2));
        assertArrayEquals(new float[] {7, 7, 7, 7, 3, -1, 7, -1, 7, 7}, bigOut.toFloatArray());
    }

    @Test
    void shapeMismatchNamesTheOperandsAndShapes() {
        Tensor x = Tensor.allocate(cpu.arena(), DType.F32, 3, 64);
        Tensor w = Tensor.allocate(cpu.arena(), DType.Q4_0, 10, 96);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 3, 10);
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> cpu.backend().matmul(x, w, out));
        assertEquals("matmul: x F32[3, 64] and w Q4_0[10, 96] disagree on k", e.getMessage());

        Tensor w2 = Tensor.allocate(cpu.arena(), DType.F32, 10, 64);
        Tensor badOut = Tensor.allocate(cpu.arena(), DType.F32, 3, 11);
        e = assertThrows(IllegalArgumentException.class, () -> cpu.backend().matmul(x, w2, badOut));
        assertTrue(e.getMessage().startsWith("matmul: out F32[3, 11]"), e.getMessage());

        Tensor square = Tensor.allocate(cpu.arena(), DType.F32, 4, 4);
        e = assertThrows(IllegalArgumentException.class, () -> cpu.backend().matmul(square, square, square));
        assertTrue(e.getMessage().contains("must not alias"), e.getMessage());
    }
}
