package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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

    /** NMSE bound of the bf16 paths: bf16 activations (and weights) cost about 5e-6. */
    private static final double BF16_NMSE = 5e-5;
    /**
     * NMSE bound of the default int8 path of block formats: weights re-quantized to s8 per output channel and
     * activations to s8 per row cost about 5e-5 on these random blocks (whose scales vary 50-fold in a row).
     */
    private static final double INT8_NMSE = 1.5e-4;

    /** NMSE bound of each path: f32 products are exact up to rounding. */
    private static double bound(DType t, int n) {
        if (t == DType.F32 || (t == DType.F16 && n < 16)) {
            return 1e-10;
        }
        return t.isQuantized() ? INT8_NMSE : BF16_NMSE;
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
    void blockFormatsAreReQuantizedToOneByteAWeight(DType t) {
        try (OneDnnBackend b = open(ONEDNN_ONLY); Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(20 + t.ordinal());
            int k = 512;
            int m = 64;
            byte[] w = TestWeights.random(t, r, m, k);
            Tensor wt = host(arena, t, w, m, k);
            float[] x = TestWeights.uniform(r, 40 * k);
            double nmse = TestWeights.nmse(TestWeights.reference(x, t, w, 40, m, k), run(b, wt, x, 40, k, m));
            // Not exact (one scale per row for weights and activations), but within the path's bound.
            assertTrue(nmse > 1e-6 && nmse < INT8_NMSE, t + ": NMSE " + nmse);
            long bytes = b.stats().weightBytes();
            assertTrue(bytes >= (long) m * k + 4L * m && bytes < (long) m * k * 3 / 2,
                    t + ": s8 weights and one f32 scale per row, got " + bytes + " bytes");
        }
    }

    /**
     * Heavy-tailed activations (like SwiGLU outputs: one value in twenty ten times larger, kurtosis about 25) with
     * {@code int8MaxNoise} 1 (one s8 term as they are), the default (mixed by {@link Rotation}, one term) and 0
     * (mixed, and a second term for the rounding error).
     */
    @Test
    void heavyTailedActivationsAreMixedOrGetASecondInt8Term() {
        SplittableRandom r = new SplittableRandom(21);
        int k = 1024;
        int m = 64;
        int n = 32;
        byte[] w = TestWeights.random(DType.Q8_0, r, m, k);
        float[] x = TestWeights.heavyTailed(r, n * k, 20, 10);
        double[] expected = TestWeights.reference(x, DType.Q8_0, w, n, m, k);
        String[] maxNoise = {"1", Double.toString(MatMul.INT8_MAX_NOISE), "0"};
        double[] nmse = new double[maxNoise.length];
        for (int i = 0; i < maxNoise.length; i++) {
            try (OneDnnBackend b = open(Map.of("cpuDelegate", "false", "int8MaxNoise", maxNoise[i]));
                 Arena arena = Arena.ofShared()) {
                Tensor wt = host(arena, DType.Q8_0, w, m, k);
                int plans = b.stats().matmulPlans();
                nmse[i] = TestWeights.nmse(expected, run(b, wt, x, n, k, m));
                assertEquals(plans + (i == 2 ? 2 : 1), b.stats().matmulPlans(), "int8MaxNoise " + maxNoise[i]
                        + ": the product (and the residual product)");
                assertEquals(1, b.stats().weights(), "one form of the weights: as they are, or mixed");
                long bytes = b.stats().weightBytes();
                assertTrue(bytes < (long) m * k * 3 / 2, "one packed copy for both products, got " + bytes + " bytes");
            }
        }
        assertTrue(nmse[1] < INT8_NMSE && nmse[1] < nmse[0] / 1.5,
                "as they are: NMSE " + nmse[0] + ", mixed: " + nmse[1]);
        assertTrue(nmse[2] < nmse[1] / 1.5, "mixed: NMSE " + nmse[1] + ", with a second term: " + nmse[2]);
    }

    /**
     * The exact alternatives on request: {@code bf16} (each value rounded once to bf16, 2 bytes a weight) and
     * {@code s8} (the integers and their f16 block scales, decompressed to bf16 in the kernel: 1 byte and a bit).
     */
    @ParameterizedTest
    @CsvSource({"bf16, Q8_0", "bf16, Q4_0", "bf16, Q5_0", "s8, Q8_0", "s8, Q4_0", "s8, Q5_0"})
    void blockFormatsExactlyOnRequest(String quantWeights, DType t) {
        try (OneDnnBackend b = open(Map.of("cpuDelegate", "false", "quantWeights", quantWeights));
             Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(10 + t.ordinal());
            int k = 256;
            int m = 80;
            byte[] w = TestWeights.random(t, r, m, k);
            Tensor wt = host(arena, t, w, m, k);
            for (int n : new int[] {1, 33}) {
                float[] x = TestWeights.uniform(r, n * k);
                double nmse = TestWeights.nmse(TestWeights.reference(x, t, w, n, m, k), run(b, wt, x, n, k, m));
                assertTrue(nmse < BF16_NMSE, quantWeights + " " + t + " n=" + n + ": NMSE " + nmse);
            }
            long bytes = b.stats().weightBytes();
            assertEquals(quantWeights.equals("bf16"), bytes >= (long) m * k * 2,
                    quantWeights + ": " + bytes + " bytes");
        }
    }

    @Test
    void severalProductsOfOneInputEqualSeparateProducts() {
        try (OneDnnBackend b = open(ONEDNN_ONLY); Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(6);
            int k = 256;
            int n = 20;
            DType[] types = {DType.Q8_0, DType.F16, DType.Q4_0};
            int[] ms = {48, 16, 32};
            Tensor x = Tensor.allocate(arena, DType.F32, n, k);
            float[] xf = TestWeights.uniform(r, n * k);
            x.copyFrom(xf);
            Tensor[] ws = new Tensor[types.length];
            Tensor[] outs = new Tensor[types.length];
            byte[][] bytes = new byte[types.length][];
            for (int i = 0; i < types.length; i++) {
                bytes[i] = TestWeights.random(types[i], r, ms[i], k);
                ws[i] = host(arena, types[i], bytes[i], ms[i], k);
                outs[i] = Tensor.allocate(arena, DType.F32, n, ms[i]);
            }
            b.matmul(x, ws, outs);
            for (int i = 0; i < types.length; i++) {
                float[] together = outs[i].toFloatArray();
                double nmse = TestWeights.nmse(TestWeights.reference(xf, types[i], bytes[i], n, ms[i], k), together);
                assertTrue(nmse < bound(types[i], n), types[i] + ": NMSE " + nmse);
                assertArrayEquals(run(b, ws[i], xf, n, k, ms[i]), together, types[i] + ": same as a separate call");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 24})
    void swigluOfGateAndUpProducts(int n) {
        // n = 2: the CPU backend's kernels; n = 24: oneDNN int8 products and its SwiGLU.
        try (OneDnnBackend b = open(Map.of()); Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(7);
            int k = 256;
            int m = 40;
            byte[] g = TestWeights.random(DType.Q8_0, r, m, k);
            byte[] u = TestWeights.random(DType.Q8_0, r, m, k);
            float[] xf = TestWeights.uniform(r, n * k);
            Tensor x = Tensor.allocate(arena, DType.F32, n, k);
            x.copyFrom(xf);
            Tensor out = Tensor.allocate(arena, DType.F32, n, m);
            Tensor upOut = Tensor.allocate(arena, DType.F32, n, m);
            b.matmulSwiglu(x, host(arena, DType.Q8_0, g, m, k), host(arena, DType.Q8_0, u, m, k), out, upOut);
            double[] gate = TestWeights.reference(xf, DType.Q8_0, g, n, m, k);
            double[] up = TestWeights.reference(xf, DType.Q8_0, u, n, m, k);
            double[] expected = new double[n * m];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
            }
            double nmse = TestWeights.nmse(expected, out.toFloatArray());
            assertTrue(nmse < 2 * INT8_NMSE, "n=" + n + ": NMSE " + nmse);
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
            double nmse = TestWeights.nmse(TestWeights.reference(x, DType.Q8_0, bytes, 1, m, k), out);
            assertTrue(nmse < bound(DType.Q8_0, 1), "NMSE " + nmse);
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
                assertTrue(nmse < bound(DType.Q4_0, 2), "round " + round + ": NMSE " + nmse);
            }
        }
    }

    @Test
    void f32MathPropertySelectsTheBf16Path() {
        try (OneDnnBackend b = open(Map.of("f32Math", "bf16", "bf16MinRows", "1", "cpuDelegate", "false"));
             Arena arena = Arena.ofShared()) {
            SplittableRandom r = new SplittableRandom(4);
            int k = 128;
            int m = 32;
            byte[] w = TestWeights.random(DType.F32, r, m, k);
            Tensor wt = host(arena, DType.F32, w, m, k);
            float[] x = TestWeights.uniform(r, k);
            double nmse = TestWeights.nmse(TestWeights.reference(x, DType.F32, w, 1, m, k), run(b, wt, x, 1, k, m));
            // bf16 rounding of both operands: clearly not f32 exact, clearly within the suite's 5e-4.
            assertTrue(nmse > 1e-8 && nmse < BF16_NMSE, "NMSE " + nmse);
        }
    }

    @Test
    void fewRowMatmulsGoToTheCpuKernelsAndBatchesToOneDnn() {
        try (OneDnnBackend b = open(Map.of()); Arena arena = Arena.ofShared()) {
            assertTrue(b.hasCpuDelegate(), "backend-cpu is a test dependency");
            SplittableRandom r = new SplittableRandom(5);
            int k = 256;
            int m = 64;
            for (DType t : new DType[] {DType.Q8_0, DType.F16, DType.Q4_K}) {
                byte[] w = t == DType.Q4_K ? new byte[Math.toIntExact(t.rowBytes(k) * m)] : TestWeights.random(t, r, m, k);
                Tensor wt = host(arena, t, w, m, k);
                int plans = b.stats().matmulPlans();
                run(b, wt, TestWeights.uniform(r, 2 * k), 2, k, m);
                assertEquals(plans, b.stats().matmulPlans(), t + ", 2 rows: the CPU backend's kernel");
                run(b, wt, TestWeights.uniform(r, 16 * k), 16, k, m);
                assertEquals(plans + (t == DType.Q4_K ? 0 : 1), b.stats().matmulPlans(),
                        t + ", 16 rows: oneDNN if it takes the dtype");
            }
        }
    }
}
