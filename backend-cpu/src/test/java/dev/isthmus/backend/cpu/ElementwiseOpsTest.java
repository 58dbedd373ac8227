package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ElementwiseOpsTest {
    @RegisterExtension
    static final CpuBackendFixture cpu = CpuBackendFixture.withDefaults();

    private static Tensor f32(float[] v, long... shape) {
        return TestData.f32(cpu.arena(), v, shape);
    }

    @Test
    void addAndMulBroadcastASingleRow() {
        Tensor a = f32(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor b = f32(new float[] {10, 20, 30}, 1, 3);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 2, 3);
        cpu.backend().add(a, b, out);
        assertArrayEquals(new float[] {11, 22, 33, 14, 25, 36}, out.toFloatArray());
        cpu.backend().mul(a, b, out);
        assertArrayEquals(new float[] {10, 40, 90, 40, 100, 180}, out.toFloatArray());
        Tensor b2 = f32(new float[] {1, 1, 1, 2, 2, 2}, 2, 3);
        cpu.backend().mul(a, b2, a); // output aliases input
        assertArrayEquals(new float[] {1, 2, 3, 8, 10, 12}, a.toFloatArray());
    }

    @Test
    void longRowsExerciseVectorBodiesAndTails() {
        Random random = new Random(3);
        int cols = 1000;
        float[] av = TestData.randomFloats(random, 3 * cols);
        float[] bv = TestData.randomFloats(random, 3 * cols);
        Tensor a = f32(av, 3, cols);
        Tensor b = f32(bv, 3, cols);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 3, cols);
        cpu.backend().add(a, b, out);
        float[] sum = out.toFloatArray();
        cpu.backend().swiglu(a, b, out);
        float[] glu = out.toFloatArray();
        cpu.backend().gelu(a, out);
        float[] gelu = out.toFloatArray();
        for (int i = 0; i < av.length; i++) {
            assertEquals(av[i] + bv[i], sum[i]);
            double silu = av[i] / (1 + Math.exp(-av[i]));
            assertEquals(silu * bv[i], glu[i], 1e-5 * (1 + Math.abs(silu * bv[i])));
            double x = av[i];
            double g = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            assertEquals(g, gelu[i], 1e-5 * (1 + Math.abs(g)));
        }
    }

    @Test
    void scaleSiluGelu() {
        Tensor x = f32(new float[] {-2, -1, 0, 1, 2}, 1, 5);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 1, 5);
        cpu.backend().scale(x, 3f, out);
        assertArrayEquals(new float[] {-6, -3, 0, 3, 6}, out.toFloatArray());
        cpu.backend().silu(x, out);
        float[] s = out.toFloatArray();
        assertEquals(1 / (1 + Math.exp(-1)), s[3], 1e-6);
        assertEquals(0, s[2], 0);
        cpu.backend().gelu(x, out);
        float[] g = out.toFloatArray();
        assertEquals(0.841192, g[3], 1e-5);
        assertEquals(-0.045402, g[0], 1e-5);
    }

    @Test
    void softmaxIsStableForLargeInputs() {
        Tensor x = f32(new float[] {1000, 1000, 1001, 1, 2, 3}, 2, 3);
        cpu.backend().softmax(x, x);
        float[] s = x.toFloatArray();
        assertEquals(1 / (2 + Math.E), s[0], 1e-6);
        assertEquals(1 / (2 + Math.E), s[1], 1e-6);
        assertEquals(Math.E / (2 + Math.E), s[2], 1e-6);
        double z = Math.exp(1) + Math.exp(2) + Math.exp(3);
        assertEquals(Math.exp(3) / z, s[5], 1e-6);
    }

    @Test
    void rmsNormWithF32AndF16Weights() {
        Tensor x = f32(new float[] {3, 4, 0, 0}, 1, 4);
        Tensor w = f32(new float[] {1, 2, 3, 4}, 4);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 1, 4);
        cpu.backend().rmsNorm(x, w, 0f, out);
        double rms = Math.sqrt((9 + 16) / 4.0);
        assertArrayEquals(new float[] {(float) (3 / rms), (float) (8 / rms), 0, 0}, out.toFloatArray(), 1e-6f);

        Tensor w16 = Tensor.allocate(cpu.arena(), DType.F16, 4);
        for (int i = 0; i < 4; i++) {
            w16.segment().set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 2L * i, Float.floatToFloat16(i + 1));
        }
        Tensor out2 = Tensor.allocate(cpu.arena(), DType.F32, 1, 4);
        cpu.backend().rmsNorm(x, w16, 0f, out2);
        assertArrayEquals(out.toFloatArray(), out2.toFloatArray());
    }

    @Test
    void layerNormWithAndWithoutAffineParameters() {
        Tensor x = f32(new float[] {1, 2, 3, 4, 10, 10, 10, 10}, 2, 4);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 2, 4);
        cpu.backend().layerNorm(x, null, null, 1e-5f, out);
        double sd = Math.sqrt(1.25 + 1e-5);
        float[] plain = out.toFloatArray();
        assertEquals(-1.5 / sd, plain[0], 1e-6);
        assertEquals(1.5 / sd, plain[3], 1e-6);
        assertEquals(0, plain[5], 0);
        Tensor w = f32(new float[] {2, 2, 2, 2}, 1, 4);
        Tensor b = f32(new float[] {1, 1, 1, 1}, 4);
        cpu.backend().layerNorm(x, w, b, 1e-5f, out);
        assertEquals(2 * -1.5 / sd + 1, out.toFloatArray()[0], 1e-6);
        assertEquals(1, out.toFloatArray()[6], 0);
    }

    @Test
    void badShapesAreRejectedWithOpAndOperandNames() {
        Tensor a = Tensor.allocate(cpu.arena(), DType.F32, 2, 3);
        Tensor b = Tensor.allocate(cpu.arena(), DType.F32, 2, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> cpu.backend().add(a, b, a));
        assertTrue(e.getMessage().startsWith("add: b F32[2, 4]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> cpu.backend().softmax(a, b));
        assertTrue(e.getMessage().startsWith("softmax:"), e.getMessage());
        Tensor w = Tensor.allocate(cpu.arena(), DType.F32, 4);
        e = assertThrows(IllegalArgumentException.class, () -> cpu.backend().rmsNorm(a, w, 1e-5f, a));
        assertTrue(e.getMessage().startsWith("rmsNorm: weight F32[4]"), e.getMessage());
        Tensor q = Tensor.allocate(cpu.arena(), DType.Q8_0, 1, 32);
        e = assertThrows(IllegalArgumentException.class, () -> cpu.backend().silu(q, q));
        assertTrue(e.getMessage().startsWith("silu: x Q8_0[1, 32] must be F32"), e.getMessage());
    }
}
