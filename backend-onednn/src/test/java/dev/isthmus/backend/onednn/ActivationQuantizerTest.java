package dev.isthmus.backend.onednn;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ActivationQuantizerTest {

    @Test
    void eachRowIsRoundedToItsOwnScale() {
        SplittableRandom r = new SplittableRandom(1);
        int n = 6;
        int k = 100; // not a multiple of the vector length: the scalar tail too
        long stride = (k + 7) * 4L; // rows further apart than they are long, like a view
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocate(stride * n);
            float[][] rows = new float[n][k];
            for (int row = 0; row < n; row++) {
                double magnitude = Math.pow(10, row - 3); // scales from 1e-3 to 1e2
                for (int c = 0; c < k; c++) {
                    rows[row][c] = (float) ((2 * r.nextDouble() - 1) * magnitude);
                    x.set(ValueLayout.JAVA_FLOAT, row * stride + 4L * c, rows[row][c]);
                }
            }
            MemorySegment q = arena.allocate((long) n * k);
            MemorySegment scales = arena.allocate(4L * n);
            ActivationQuantizer.quantize(x, stride, n, k, false, false, q, scales);
            for (int row = 0; row < n; row++) {
                float max = 0;
                for (float v : rows[row]) {
                    max = Math.max(max, Math.abs(v));
                }
                float s = scales.getAtIndex(ValueLayout.JAVA_FLOAT, row);
                assertEquals(max / 127, s, "scale of row " + row);
                int extreme = 0;
                for (int c = 0; c < k; c++) {
                    int got = q.get(ValueLayout.JAVA_BYTE, (long) row * k + c);
                    // Round to nearest: within half a step of the value (and a float rounding of the division).
                    assertTrue(Math.abs(got * (double) s - rows[row][c]) <= s * (0.5 + 1e-5),
                            "row " + row + " col " + c + ": " + got + " · " + s + " for " + rows[row][c]);
                    extreme = Math.max(extreme, Math.abs(got));
                }
                assertEquals(127, extreme, "the largest magnitude of row " + row + " uses the full range");
            }
        }
    }

    @Test
    void theNoiseEstimateIsTheRoundingNoiseOfTheRows() {
        int n = 3;
        int k = 4096;
        SplittableRandom r = new SplittableRandom(2);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocateFrom(ValueLayout.JAVA_FLOAT, TestWeights.uniform(r, n * k));
            MemorySegment q = arena.allocate((long) n * k);
            MemorySegment scales = arena.allocate(4L * n);
            double noise = ActivationQuantizer.quantize(x, 4L * k, n, k, false, false, q, scales);
            // Uniform in [-1, 1]: a step of 1/127, noise step²/12 against a mean square of 1/3.
            assertEquals(1.0 / (127 * 127 * 4), noise, 0.05 / (127 * 127 * 4));
            double error = 0;
            double signal = 0;
            for (int i = 0; i < n * k; i++) {
                float v = x.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                double d = v - q.get(ValueLayout.JAVA_BYTE, i)
                        * (double) scales.getAtIndex(ValueLayout.JAVA_FLOAT, i / k);
                error += d * d;
                signal += v * v;
            }
            assertEquals(noise, error / signal, 0.1 * noise, "the estimate is what rounding does");
        }
    }

    @Test
    void theResidualTermAddsSevenBits() {
        int n = 4;
        int k = 77;
        SplittableRandom r = new SplittableRandom(3);
        try (Arena arena = Arena.ofConfined()) {
            // Heavy tails: mostly small values, one in twenty a hundred times larger.
            MemorySegment x = arena.allocateFrom(ValueLayout.JAVA_FLOAT, TestWeights.heavyTailed(r, n * k, 20, 100));
            MemorySegment q = arena.allocate((long) n * k);
            MemorySegment scales = arena.allocate(4L * n);
            MemorySegment e = arena.allocate((long) n * k);
            MemorySegment residualScales = arena.allocate(4L * n);
            ActivationQuantizer.quantize(x, 4L * k, n, k, false, false, q, scales);
            ActivationQuantizer.quantizeResidual(x, 4L * k, n, k, false, false, q, scales, e, residualScales);
            for (int row = 0; row < n; row++) {
                float s = scales.getAtIndex(ValueLayout.JAVA_FLOAT, row);
                float t = residualScales.getAtIndex(ValueLayout.JAVA_FLOAT, row);
                assertEquals(s / 254, t);
                for (int c = 0; c < k; c++) {
                    long i = (long) row * k + c;
                    double two = q.get(ValueLayout.JAVA_BYTE, i) * (double) s
                            + e.get(ValueLayout.JAVA_BYTE, i) * (double) t;
                    float v = x.getAtIndex(ValueLayout.JAVA_FLOAT, i);
                    assertTrue(Math.abs(two - v) <= t * 0.5 + Math.ulp(v) * 2, "row " + row + " col " + c);
                }
            }
        }
    }

    @Test
    void mixedRowsAndParallelCallsQuantizeAsMixingFirstOnOneThread() {
        SplittableRandom r = new SplittableRandom(4);
        int n = 70;
        int k = 512;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment x = arena.allocateFrom(ValueLayout.JAVA_FLOAT, TestWeights.heavyTailed(r, n * k, 20, 10));
            MemorySegment premixed = arena.allocate(4L * n * k);
            for (int row = 0; row < n; row++) {
                Rotation.row(x, 4L * row * k, k, premixed, 4L * row * k);
            }
            MemorySegment expected = arena.allocate((long) n * k);
            MemorySegment expectedScales = arena.allocate(4L * n);
            double noise = ActivationQuantizer.quantize(premixed, 4L * k, n, k, false, false, expected, expectedScales);
            MemorySegment q = arena.allocate((long) n * k);
            MemorySegment scales = arena.allocate(4L * n);
            assertEquals(noise, ActivationQuantizer.quantize(x, 4L * k, n, k, true, true, q, scales));
            assertEquals(-1, expected.mismatch(q));
            assertEquals(-1, expectedScales.mismatch(scales));
            assertEquals(noise, ActivationQuantizer.noise(x, 4L * k, n, k, true), 0.2 * noise, "estimated on samples");
        }
    }

    @Test
    void tiesRoundToEven() {
        try (Arena arena = Arena.ofConfined()) {
            int k = 32;
            MemorySegment x = arena.allocate(4L * k);
            // max 127, so the scale is 1 and each value is its own quantized value before rounding
            float[] v = {127f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f};
            for (int c = 0; c < k; c++) {
                x.setAtIndex(ValueLayout.JAVA_FLOAT, c, v[c % v.length]);
            }
            MemorySegment q = arena.allocate(k);
            MemorySegment scales = arena.allocate(4);
            ActivationQuantizer.quantize(x, 4L * k, 1, k, false, false, q, scales);
            int[] expected = {127, 0, 2, 2, 0, -2, -2, 126};
            for (int c = 0; c < k; c++) {
                assertEquals(expected[c % v.length], q.get(ValueLayout.JAVA_BYTE, c), "value " + v[c % v.length]);
            }
        }
    }

    @Test
    void zeroRowsHaveScaleZeroAndNonFiniteRowsANonFiniteScale() {
        int k = 40;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocate(3 * 4L * k);
            x.setAtIndex(ValueLayout.JAVA_FLOAT, k + 5, Float.NaN);
            x.setAtIndex(ValueLayout.JAVA_FLOAT, 2L * k + 39, Float.POSITIVE_INFINITY);
            MemorySegment q = arena.allocate(3L * k);
            q.fill((byte) 9);
            MemorySegment scales = arena.allocate(12);
            ActivationQuantizer.quantize(x, 4L * k, 3, k, false, false, q, scales);
            assertEquals(0f, scales.getAtIndex(ValueLayout.JAVA_FLOAT, 0));
            for (int c = 0; c < k; c++) {
                assertEquals(0, q.get(ValueLayout.JAVA_BYTE, c));
            }
            assertTrue(Float.isNaN(scales.getAtIndex(ValueLayout.JAVA_FLOAT, 1)));
            assertEquals(Float.POSITIVE_INFINITY, scales.getAtIndex(ValueLayout.JAVA_FLOAT, 2));
        }
    }
}
