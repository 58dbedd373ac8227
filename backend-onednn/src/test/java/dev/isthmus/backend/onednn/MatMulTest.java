package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MatMulTest {
    private static OneDnnBackend backend;

    /** oneDNN alone: without the CPU backend's kernels for small quantized matmuls. */
    static final Map<String, String> ONEDNN_ONLY = Map.of("cpuDelegate", "false");

    static OneDnnBackend open(Map<String, String> properties) {
        return (OneDnnBackend) new OneDnnBackendProvider().create(new BackendOptions(0, properties));
    }

    @BeforeAll
    static void open() {
        backend = open(ONEDNN_ONLY);
    }

    @AfterAll
    static void close() {
        backend.close();
    }

    private static Tensor host(Arena arena, DType t, byte[] bytes, long... shape) {
        Tensor x = Tensor.allocate(arena, t, shape);
        MemorySegment.copy(bytes, 0, x.segment(), ValueLayout.JAVA_BYTE, 0, bytes.length);
        return x;
    }

    private static float[] run(OneDnnBackend b, Tensor w, float[] x, int n, int k, int m) {
        try (Arena arena = Arena.ofShared()) {
            Tensor xt = Tensor.allocate(arena, DType.F32, n, k);
            xt.copyFrom(x);
            Tensor out = Tensor.allocate(arena, DType.F32, n, m);
            b.matmul(xt, w, out);
            return out.toFloatArray();
        }
    }

    /** NMSE bound of each path: f32 products are exact up to rounding; bf16 activations cost ~1e-5. */
    private static double bound(DType t, int n) {
        return t == DType.F32 || (t == DType.F16 && n < 16) ? 1e-10 : 5e-5;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0"})
    void matchesTheDoubleReference(DType t) {
        SplittableRandom r = new SplittableRandom(t.ordinal());
        int k = 256;
        int m = 96;
        byte[] w = TestWeights.random(t, r, m, k);
        try (Arena arena = Arena.ofShared()) {
            Tensor wt = host(arena, t, w, m, k);
            for (int n : new int[] {1, 3, 16, 64}) {
                float[] x = TestWeights.uniform(r, n * k);
                double nmse = TestWeights.nmse(TestWeights.reference(x, t, w, n, m, k), run(backend, wt, x, n, k, m));
                assertTrue(nmse < bound(t, n), t + " n=" + n + ": NMSE " + nmse);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q5_0"})
    void blockFormatsThroughWeightDecompression(DType t) {
        try (OneDnnBackend b = open(Map.of("cpuDelegate", "false", "quantWeights", "s8"));
             Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(10 + t.ordinal());
            int k = 256;
            int m = 80;
            byte[] w = TestWeights.random(t, r, m, k);
            Tensor wt = host(arena, t, w, m, k);
            for (int n : new int[] {1, 33}) {
                float[] x = TestWeights.uniform(r, n * k);
                double nmse = TestWeights.nmse(TestWeights.reference(x, t, w, n, m, k), run(b, wt, x, n, k, m));
                assertTrue(nmse < 5e-5, t + " n=" + n + ": NMSE " + nmse);
            }
            assertTrue(b.stats().weightBytes() < (long) m * k * 2, "s8 and scales, not bf16");
        }
    }

    @Test
    void weightsAreConvertedOncePerLayoutAndPrimitivesOncePerShape() {
        try (OneDnnBackend b = open(ONEDNN_ONLY); Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(1);
            int k = 128;
            int m = 64;
            Tensor w = host(arena, DType.F16, TestWeights.random(DType.F16, r, m, k), m, k);
            OneDnnBackend.Stats s0 = b.stats();
            run(b, w, TestWeights.uniform(r, k), 1, k, m);
            OneDnnBackend.Stats s1 = b.stats();
            assertEquals(s0.weights() + 1, s1.weights());
            assertEquals(s0.matmulPlans() + 1, s1.matmulPlans());
            run(b, w, TestWeights.uniform(r, k), 1, k, m);
            assertEquals(s1, b.stats(), "the same shape reuses the primitive and the converted weights");

            // 32 rows take the bf16 path: a second layout of the same weights, one more primitive.
            run(b, w, TestWeights.uniform(r, 32 * k), 32, k, m);
            OneDnnBackend.Stats s2 = b.stats();
            assertEquals(s1.weights(), s2.weights());
            assertEquals(s1.matmulPlans() + 1, s2.matmulPlans());
            assertTrue(s2.weightBytes() > s1.weightBytes());
            run(b, w, TestWeights.uniform(r, 32 * k), 32, k, m);
            assertEquals(s2, b.stats());
        }
    }

    @Test
    void weightsInBackendMemoryAreForgottenWhenReleased() {
        try (OneDnnBackend b = open(ONEDNN_ONLY)) {
            SplittableRandom r = new SplittableRandom(2);
            int k = 64;
            int m = 8;
            int before = b.stats().weights();
            Tensor w = b.allocate(DType.Q8_0, m, k);
            byte[] bytes = TestWeights.random(DType.Q8_0, r, m, k);
            MemorySegment.copy(bytes, 0, w.segment(), ValueLayout.JAVA_BYTE, 0, bytes.length);
            float[] x = TestWeights.uniform(r, k);
            float[] out = run(b, w, x, 1, k, m);
            assertTrue(TestWeights.nmse(TestWeights.reference(x, DType.Q8_0, bytes, 1, m, k), out) < 5e-5);
            assertEquals(before + 1, b.stats().weights());
            b.release(w);
            assertEquals(before, b.stats().weights());
        }
    }

    @Test
    void newContentAtAReusedAddressIsNotServedFromTheCache() {
        SplittableRandom r = new SplittableRandom(3);
        int k = 64;
        int m = 16;
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, m, k);
            float[] x = TestWeights.uniform(r, k);
            for (int round = 0; round < 3; round++) {
                byte[] bytes = TestWeights.random(DType.F32, r, m, k);
                MemorySegment.copy(bytes, 0, w.segment(), ValueLayout.JAVA_BYTE, 0, bytes.length);
                float[] out = run(backend, w, x, 1, k, m);
                double nmse = TestWeights.nmse(TestWeights.reference(x, DType.F32, bytes, 1, m, k), out);
                assertTrue(nmse < 1e-10, "round " + round + ": NMSE " + nmse);
            }
        }
        // Memory of a closed arena: the entry's scope is dead, whatever lands at that address next.
        for (int round = 0; round < 3; round++) {
            try (Arena arena = Arena.ofShared()) {
                byte[] bytes = TestWeights.random(DType.Q4_0, r, m, k);
                Tensor w = host(arena, DType.Q4_0, bytes, m, k);
                float[] x = TestWeights.uniform(r, 2 * k);
                double nmse = TestWeights.nmse(TestWeights.reference(x, DType.Q4_0, bytes, 2, m, k),
                        run(backend, w, x, 2, k, m));
                assertTrue(nmse < 5e-5, "round " + round + ": NMSE " + nmse);
            }
        }
    }

    @Test
    void f32MathPropertySelectsTheBf16Path() {
        try (OneDnnBackend b = open(Map.of("f32Math", "bf16", "bf16MinRows", "1")); Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(4);
            int k = 128;
            int m = 32;
            byte[] w = TestWeights.random(DType.F32, r, m, k);
            Tensor wt = host(arena, DType.F32, w, m, k);
            float[] x = TestWeights.uniform(r, k);
            double nmse = TestWeights.nmse(TestWeights.reference(x, DType.F32, w, 1, m, k), run(b, wt, x, 1, k, m));
            // bf16 rounding of both operands: clearly not f32 exact, clearly within the suite's 5e-4.
            assertTrue(nmse > 1e-8 && nmse < 5e-5, "NMSE " + nmse);
        }
    }

    @Test
    void singleRowQuantizedMatmulsGoToTheCpuKernelsAndBatchesToOneDnn() {
        try (OneDnnBackend b = open(Map.of()); Arena arena = Arena.ofShared()) {
            assertTrue(b.hasCpuDelegate(), "backend-cpu is a test dependency");
            SplittableRandom r = new SplittableRandom(5);
            int k = 256;
            int m = 64;
            for (DType t : new DType[] {DType.Q8_0, DType.Q4_K}) {
                byte[] w = t == DType.Q4_K ? new byte[Math.toIntExact(t.rowBytes(k) * m)] : TestWeights.random(t, r, m, k);
                Tensor wt = host(arena, t, w, m, k);
                int plans = b.stats().matmulPlans();
                run(b, wt, TestWeights.uniform(r, 2 * k), 2, k, m);
                assertEquals(plans, b.stats().matmulPlans(), t + ", 2 rows: the CPU backend's kernel");
                run(b, wt, TestWeights.uniform(r, 16 * k), 16, k, m);
                assertEquals(plans + (t == DType.Q8_0 ? 1 : 0), b.stats().matmulPlans(),
                        t + ", 16 rows: oneDNN if it takes the dtype");
            }
        }
    }
}
