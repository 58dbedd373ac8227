package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class ElementwiseTest {

    @Test
    void primitivesAreCachedPerShapeAndStrides() {
        try (OneDnnBackend b = MatMulTest.open(MatMulTest.ONEDNN_ONLY);
             Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(5);
            Tensor x = Tensor.allocate(arena, DType.F32, 4, 64);
            Tensor w = Tensor.allocate(arena, DType.F32, 64);
            Tensor out = Tensor.allocate(arena, DType.F32, 4, 64);
            x.copyFrom(TestWeights.uniform(r, 4 * 64));
            w.copyFrom(TestWeights.uniform(r, 64));
            int before = b.stats().elementwisePrimitives();
            b.rmsNorm(x, w, 1e-5f, out);
            b.rmsNorm(x, w, 1e-5f, out);
            b.rmsNorm(x, w, 1e-5f, x);
            assertEquals(before + 1, b.stats().elementwisePrimitives(), "same shape and strides, also in place");
            b.rmsNorm(x, w, 1e-6f, out);
            b.rmsNorm(x.slice(1, 2), w, 1e-5f, out.slice(0, 2));
            assertEquals(before + 3, b.stats().elementwisePrimitives(), "another eps, another shape");
            b.scale(x, 2f, out);
            b.scale(x, 3f, out);
            assertEquals(before + 4, b.stats().elementwisePrimitives(), "the scalar is an argument, not a parameter");
        }
    }

    @Test
    void everyOperatorGetsAJittedImplementation() {
        try (OneDnnBackend b = MatMulTest.open(MatMulTest.ONEDNN_ONLY);
             Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(7);
            for (int rows : new int[] {1, 64}) {
                Tensor x = Tensor.allocate(arena, DType.F32, rows, 2048);
                Tensor y = Tensor.allocate(arena, DType.F32, rows, 2048);
                Tensor out = Tensor.allocate(arena, DType.F32, rows, 2048);
                Tensor w = Tensor.allocate(arena, DType.F32, 2048);
                x.copyFrom(TestWeights.uniform(r, rows * 2048));
                y.copyFrom(TestWeights.uniform(r, rows * 2048));
                w.copyFrom(TestWeights.uniform(r, 2048));
                b.rmsNorm(x, w, 1e-5f, out);
                b.layerNorm(x, w, w, 1e-5f, out);
                b.add(x, y, out);
                b.add(x, w, out);
                b.mul(x, y, out);
                b.scale(x, 0.5f, out);
                b.silu(x, out);
                b.gelu(x, out);
                b.swiglu(x, y, out);
                b.softmax(x, out);
                java.util.Map<String, String> impls = b.elementwiseImplementations();
                // Eight kinds: swiglu is made of silu and mul.
                assertEquals(8, impls.size(), impls.toString());
                impls.forEach((op, impl) -> org.junit.jupiter.api.Assertions.assertFalse(impl.startsWith("ref"),
                        rows + " rows, " + op + ": " + impl));
            }
        }
    }

    @Test
    void addIntoTheSecondOperand() {
        try (OneDnnBackend b = MatMulTest.open(MatMulTest.ONEDNN_ONLY);
             Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(6);
            float[] av = TestWeights.uniform(r, 3 * 40);
            float[] bv = TestWeights.uniform(r, 3 * 40);
            Tensor a = Tensor.allocate(arena, DType.F32, 3, 40);
            Tensor bt = Tensor.allocate(arena, DType.F32, 3, 40);
            a.copyFrom(av);
            bt.copyFrom(bv);
            b.add(a, bt, bt);
            float[] expected = new float[av.length];
            for (int i = 0; i < av.length; i++) {
                expected[i] = av[i] + bv[i];
            }
            assertArrayEquals(expected, bt.toFloatArray());
            assertArrayEquals(av, a.toFloatArray());
        }
    }

    @Test
    void fewRowOperatorsGoToTheCpuKernelsAndBatchesToOneDnn() {
        try (OneDnnBackend b = MatMulTest.open(Map.of()); Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(8);
            Tensor w = Tensor.allocate(arena, DType.F32, 256);
            w.copyFrom(TestWeights.uniform(r, 256));
            for (int rows : new int[] {2, 3}) {
                Tensor x = Tensor.allocate(arena, DType.F32, rows, 256);
                x.copyFrom(TestWeights.uniform(r, rows * 256));
                Tensor out = Tensor.allocate(arena, DType.F32, rows, 256);
                int cached = b.stats().elementwisePrimitives();
                b.rmsNorm(x, w, 1e-5f, out);
                b.add(x, w, out);
                assertEquals(cached + (rows == 3 ? 2 : 0), b.stats().elementwisePrimitives(), rows + " rows");
                float[] xs = x.toFloatArray();
                float[] got = out.toFloatArray();
                float[] ws = w.toFloatArray();
                for (int i = 0; i < got.length; i++) {
                    assertEquals(xs[i] + ws[i % 256], got[i], 1e-6f, rows + " rows, add " + i);
                }
            }
        }
    }
}
