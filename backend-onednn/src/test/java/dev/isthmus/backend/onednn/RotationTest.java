package dev.isthmus.backend.onednn;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RotationTest {

    /** {@code Σ_i H[g][i] · x[block + 16·i + lane]}, Sylvester's Hadamard matrix: the sign is the parity of g & i. */
    private static double mixed(float[] x, int block, int g, int lane) {
        double sum = 0;
        for (int i = 0; i < 16; i++) {
            sum += (Integer.bitCount(g & i) % 2 == 0 ? 1 : -1) * (double) x[block + 16 * i + lane];
        }
        return sum;
    }

    @Test
    void rowsAreMixedByTheHadamardMatrixWithinEachBlock() {
        SplittableRandom r = new SplittableRandom(1);
        int n = 3;
        int k = 512;
        long stride = 4L * (k + 32); // rows further apart than they are long, like a view
        float[] x = TestWeights.uniform(r, n * (k + 32));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocateFrom(ValueLayout.JAVA_FLOAT, x);
            MemorySegment out = arena.allocate(4L * n * k);
            for (int row = 0; row < n; row++) {
                Rotation.row(in, row * stride, k, out, 4L * row * k);
            }
            for (int row = 0; row < n; row++) {
                for (int block = 0; block < k; block += Rotation.BLOCK) {
                    for (int g = 0; g < 16; g++) {
                        for (int lane = 0; lane < 16; lane++) {
                            double expected = mixed(x, row * (k + 32) + block, g, lane);
                            float got = out.getAtIndex(ValueLayout.JAVA_FLOAT, (long) row * k + block + 16 * g + lane);
                            assertEquals(expected, got, 1e-5, "row " + row + " block " + block + " [" + g + ","
                                    + lane + "]");
                        }
                    }
                }
            }
        }
    }

    @Test
    void mixedActivationsTimesMixedWeightsAreTheProduct() {
        SplittableRandom r = new SplittableRandom(2);
        int k = 768;
        float[] x = TestWeights.uniform(r, k);
        float[] w = TestWeights.uniform(r, k);
        double exact = 0;
        for (int j = 0; j < k; j++) {
            exact += (double) x[j] * w[j];
        }
        float[] mixedW = w.clone();
        Rotation.weights(mixedW);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(4L * k);
            Rotation.row(arena.allocateFrom(ValueLayout.JAVA_FLOAT, x), 0, k, out, 0);
            double product = 0;
            for (int j = 0; j < k; j++) {
                product += out.getAtIndex(ValueLayout.JAVA_FLOAT, j) * (double) mixedW[j];
            }
            assertEquals(exact, product, 1e-4);
        }
    }

    @Test
    void heavyTailsBecomeGaussianLike() {
        SplittableRandom r = new SplittableRandom(3);
        int k = 8192;
        float[] x = TestWeights.heavyTailed(r, k, 50, 40);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocateFrom(ValueLayout.JAVA_FLOAT, x);
            MemorySegment q = arena.allocate(k);
            MemorySegment scales = arena.allocate(4);
            double before = ActivationQuantizer.quantize(in, 4L * k, 1, k, false, false, q, scales);
            double after = ActivationQuantizer.quantize(in, 4L * k, 1, k, true, false, q, scales);
            // A kurtosis of about 85 (one value in fifty forty times larger) drops to about 8.
            assertTrue(after < before / 2.5, "quantization noise " + before + " before mixing, " + after + " after");
        }
    }

    @Test
    void onlyWholeBlocksAreMixed() {
        assertTrue(Rotation.applies(256));
        assertTrue(Rotation.applies(8192));
        assertFalse(Rotation.applies(0));
        assertFalse(Rotation.applies(96));
        assertFalse(Rotation.applies(1000));
    }
}
