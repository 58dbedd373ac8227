package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class RowOpsTest {
    @RegisterExtension
    static final CpuBackendFixture cpu = CpuBackendFixture.withDefaults();

    @Test
    void argmaxPrefersTheLowestIndexOnTies() {
        float[] v = new float[2 * 40];
        v[7] = 5;
        v[33] = 5;
        v[40 + 39] = -1;
        for (int i = 40; i < 79; i++) {
            v[i] = -2;
        }
        Tensor x = TestData.f32(cpu.arena(), v, 2, 40);
        assertArrayEquals(new int[] {7, 79 - 40}, cpu.backend().argmax(x));
    }

    @Test
    void topKIsLargestFirstWithTiesByIndex() {
        Tensor x = TestData.f32(cpu.arena(), new float[] {1, 5, 3, 5, 2, 5, 0}, 1, 7);
        TopK top = cpu.backend().topK(x, 4);
        assertArrayEquals(new int[] {1, 3, 5, 2}, top.indices()[0]);
        assertArrayEquals(new float[] {5, 5, 5, 3}, top.values()[0]);
        assertThrows(IllegalArgumentException.class, () -> cpu.backend().topK(x, 8));
    }

    @Test
    void topKOverALongRowMatchesASort() {
        Random random = new Random(9);
        int cols = 5000;
        float[] v = new float[cols];
        for (int i = 0; i < cols; i++) {
            v[i] = random.nextInt(200); // many ties
        }
        TopK top = cpu.backend().topK(TestData.f32(cpu.arena(), v, 1, cols), 50);
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
        Tensor src = TestData.f32(cpu.arena(), new float[] {1, 2, 3, 4, 1.0009765625f, -0.1f, 7, 8}, 2, 2, 2);
        Tensor f16 = Tensor.allocate(cpu.arena(), DType.F16, 4, 2, 2);
        cpu.backend().copyRows(src, f16, new int[] {3, 1});
        Tensor back = Tensor.allocate(cpu.arena(), DType.F32, 4, 2, 2);
        cpu.backend().dequantize(f16, back);
        assertArrayEquals(new float[] {0, 0, 0, 0, 1.0009765625f, Float.float16ToFloat(Float.floatToFloat16(-0.1f)),
                7, 8, 0, 0, 0, 0, 1, 2, 3, 4}, back.toFloatArray());

        Tensor bf16 = Tensor.allocate(cpu.arena(), DType.BF16, 2, 4);
        Tensor flat = TestData.f32(cpu.arena(), new float[] {1.00390625f, 1.01171875f, -3, 1e-3f}, 1, 4);
        cpu.backend().copyRows(flat, bf16, new int[] {1});
        // 1 + 2^-8 is a tie between two bfloat16 values and rounds to the even one (1.0); 1 + 3·2^-8 rounds up.
        assertEquals((short) 0x3F80, bf16.segment().get(ValueLayout.JAVA_SHORT_UNALIGNED, 8));
        assertEquals((short) 0x3F82, bf16.segment().get(ValueLayout.JAVA_SHORT_UNALIGNED, 10));
        assertEquals((short) 0xC040, bf16.segment().get(ValueLayout.JAVA_SHORT_UNALIGNED, 12));
        assertThrows(IllegalArgumentException.class, () -> cpu.backend().copyRows(flat, bf16, new int[] {2}));
    }

    @Test
    void embeddingLookupGathersAndDecodesRows() {
        Random random = new Random(1);
        int cols = 64;
        TestData.RandomWeights table = TestData.randomWeights(cpu.arena(), random, DType.Q5_1, 5, cols);
        double[][] ref = table.reference();
        Tensor t = table.tensor();
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 3, cols);
        cpu.backend().embeddingLookup(t, new int[] {4, 0, 4}, out);
        float[] got = out.toFloatArray();
        int[] ids = {4, 0, 4};
        for (int i = 0; i < 3; i++) {
            for (int c = 0; c < cols; c++) {
                assertEquals(ref[ids[i]][c], got[i * cols + c], 1e-6);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> cpu.backend().embeddingLookup(t, new int[] {5, 0, 0}, out));
    }
}
