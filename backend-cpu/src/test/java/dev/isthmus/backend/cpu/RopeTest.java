package dev.isthmus.backend.cpu;

import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;


import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class RopeTest {
    @RegisterExtension
    static final CpuBackendFixture cpu = CpuBackendFixture.withDefaults();

    @Test
    void normalLayoutRotatesAdjacentPairs() {
        // headDim 4, theta 100: pair 0 has frequency 1, pair 1 has frequency 100^(-1/2) = 0.1.
        Tensor x = TestData.f32(cpu.arena(), new float[] {1, 0, 0, 1}, 1, 1, 4);
        cpu.backend().rope(x, new int[] {2}, Rope.of(RopeLayout.NORMAL, 4, 100f));
        float[] r = x.toFloatArray();
        assertEquals(Math.cos(2), r[0], 1e-6);
        assertEquals(Math.sin(2), r[1], 1e-6);
        assertEquals(-Math.sin(0.2), r[2], 1e-6);
        assertEquals(Math.cos(0.2), r[3], 1e-6);
    }

    @Test
    void neoxLayoutRotatesHalvesAndLeavesUnrotatedDimensions() {
        // headDim 6, dims 4: pairs (0,2) and (1,3); dimensions 4 and 5 untouched.
        Tensor x = TestData.f32(cpu.arena(), new float[] {1, 1, 0, 0, 7, 8}, 1, 1, 6);
        cpu.backend().rope(x, new int[] {1}, Rope.of(RopeLayout.NEOX, 4, 100f));
        float[] r = x.toFloatArray();
        assertEquals(Math.cos(1), r[0], 1e-6);
        assertEquals(Math.cos(0.1), r[1], 1e-6);
        assertEquals(Math.sin(1), r[2], 1e-6);
        assertEquals(Math.sin(0.1), r[3], 1e-6);
        assertEquals(7, r[4]);
        assertEquals(8, r[5]);
    }

    @Test
    void scalingFactorsAndLargePositionsUseDoublePrecisionAngles() {
        int pos = 100_000;
        float[] factors = {1f, 4f};
        Rope rope = new Rope(RopeLayout.NORMAL, 4, 500000f, 0.25f, factors);
        Tensor x = TestData.f32(cpu.arena(), new float[] {1, 0, 1, 0, 1, 0, 1, 0}, 1, 2, 4);
        cpu.backend().rope(x, new int[] {pos}, rope);
        float[] r = x.toFloatArray();
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < 2; i++) {
                double angle = pos * 0.25 * Math.pow(500000.0, -2.0 * i / 4) / factors[i];
                assertEquals(Math.cos(angle), r[4 * h + 2 * i], 1e-6);
                assertEquals(Math.sin(angle), r[4 * h + 2 * i + 1], 1e-6);
            }
        }
    }

    @Test
    void eachRowUsesItsOwnPosition() {
        Tensor x = TestData.f32(cpu.arena(), new float[] {1, 0, 1, 0}, 2, 1, 2);
        cpu.backend().rope(x, new int[] {0, 1}, Rope.of(RopeLayout.NORMAL, 2, 10000f));
        assertArrayEquals(new float[] {1, 0, (float) Math.cos(1), (float) Math.sin(1)}, x.toFloatArray(), 1e-6f);
        assertThrows(IllegalArgumentException.class,
                () -> cpu.backend().rope(x, new int[] {0}, Rope.of(RopeLayout.NORMAL, 2, 10000f)));
    }
}
