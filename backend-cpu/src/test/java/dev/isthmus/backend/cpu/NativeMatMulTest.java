package dev.isthmus.backend.cpu;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.natives.NativeCpu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.InputStream;
import java.util.Properties;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The C kernels (native/cpu) against a float64 reference: both the fused decode path (fewer than 4 activation
 * rows) and the tiled prefill path, with partial tiles and partial microkernel row groups. Quantized weights
 * multiply 8-bit quantized activations, so they are held to the conformance suite's MATMUL bound (NMSE 5e-4,
 * here with a 10× margin); F16 weights multiply F32 activations and must be exact to float rounding.
 *
 * <p>Runs in the {@code native-kernels} Surefire execution (the other executions pin the Java kernels).
 */
class NativeMatMulTest {
    @RegisterExtension
    static final CpuBackendFixture cpu = CpuBackendFixture.withThreads(2);

    @Test
    void kernelsAreEnabledWhenBuiltAndTheCpuHasTheFeatures() throws Exception {
        Properties p = new Properties();
        try (InputStream in = NativeCpu.class.getResourceAsStream("/dev/isthmus/backend/cpu/native/kernels.properties")) {
            assumeTrue(in != null, "built without native/cpu");
            p.load(in);
        }
        assumeTrue(Boolean.parseBoolean(p.getProperty("built")), p.getProperty("reason"));
        String flags = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/cpuinfo"));
        assumeTrue(flags.contains("avx512_vnni") && flags.contains("avx512bw"), "CPU without AVX-512 VNNI");
        assertTrue(NativeCpu.enabled(), NativeCpu.status());
    }

    @ParameterizedTest
    @EnumSource(names = {"F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void matchesTheReferenceForDecodeAndPrefillShapes(DType type) {
        assumeTrue(NativeCpu.enabled(), NativeCpu.status());
        Random random = new Random(7 + type.ordinal());
        for (int[] shape : new int[][] {{37, 2 * Math.max(type.blockSize(), 32)}, {70, 1024}}) {
            int m = shape[0];
            int k = shape[1];
            TestData.RandomWeights weights = TestData.randomWeights(cpu.arena(), random, type, m, k);
            double[][] wRef = weights.reference();
            Tensor w = weights.tensor();
            for (int n : new int[] {1, 3, 4, 9, 21}) {
                float[] xv = TestData.randomFloats(random, n * k);
                Tensor x = TestData.f32(cpu.arena(), xv, n, k);
                Tensor out = Tensor.allocate(cpu.arena(), DType.F32, n, m);
                cpu.backend().matmul(x, w, out);
                float[] got = out.toFloatArray();
                double err = 0;
                double norm = 0;
                for (int i = 0; i < n; i++) {
                    for (int r = 0; r < m; r++) {
                        double expected = 0;
                        double magnitude = 0;
                        for (int c = 0; c < k; c++) {
                            expected += wRef[r][c] * xv[i * k + c];
                            magnitude += Math.abs(wRef[r][c] * xv[i * k + c]);
                        }
                        double g = got[i * m + r];
                        String where = type + " m=" + m + " k=" + k + " n=" + n + " out[" + i + ", " + r + "]";
                        if (type == DType.F16) {
                            assertEquals(expected, g, 1e-5 * magnitude + 1e-6, where);
                        } else {
                            // a wrong block, scale or offset shows as an error of the order of the magnitude
                            assertEquals(expected, g, 0.05 * magnitude + 1e-6, where);
                        }
                        err += (g - expected) * (g - expected);
                        norm += expected * expected;
                    }
                }
                double nmse = err / Math.max(norm, 1e-30);
                assertTrue(nmse < (type.isQuantized() ? 2e-4 : 1e-9), type + " m=" + m + " k=" + k + " n=" + n + ": NMSE " + nmse);
            }
        }
    }

    /**
     * A row's product is the same bits alone and in a batch of fewer than 16 rows (and, for the K-quants, 4):
     * greedy speculative decoding verifies proposals in a batch and must reproduce one-row decoding.
     */
    @ParameterizedTest
    @EnumSource(names = {"F16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"})
    void aRowGetsTheSameBitsAloneAndInASmallBatch(DType type) {
        assumeTrue(NativeCpu.enabled(), NativeCpu.status());
        Random random = new Random(11 + type.ordinal());
        int maxRows = type == DType.Q4_K || type == DType.Q6_K ? 3 : 15;
        for (int[] shape : new int[][] {{70, 3 * Math.max(type.blockSize(), 32)}, {133, 1024}}) {
            int m = shape[0];
            int k = shape[1];
            Tensor w = TestData.randomWeights(cpu.arena(), random, type, m, k).tensor();
            float[] xv = TestData.randomFloats(random, maxRows * k);
            Tensor batchOut = Tensor.allocate(cpu.arena(), DType.F32, maxRows, m);
            cpu.backend().matmul(TestData.f32(cpu.arena(), xv, maxRows, k), w, batchOut);
            float[] batch = batchOut.toFloatArray();
            for (int i = 0; i < maxRows; i++) {
                float[] row = java.util.Arrays.copyOfRange(xv, i * k, (i + 1) * k);
                Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 1, m);
                cpu.backend().matmul(TestData.f32(cpu.arena(), row, 1, k), w, out);
                float[] alone = out.toFloatArray();
                for (int r = 0; r < m; r++) {
                    assertEquals(Float.floatToIntBits(alone[r]), Float.floatToIntBits(batch[i * m + r]),
                            type + " m=" + m + " k=" + k + " row " + i + " of " + maxRows + ", out " + r + ": alone "
                                    + alone[r] + ", batched " + batch[i * m + r]);
                }
            }
        }
    }
}
