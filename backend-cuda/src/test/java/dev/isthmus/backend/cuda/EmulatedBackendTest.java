package dev.isthmus.backend.cuda;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The backend's host side on the kernel emulator: explicit copies, memory reuse across a decode-like loop (no
 * driver allocation per op), the flash-decoding split path, and the errors for misuse. The whole conformance
 * suite runs on it in conformance-tests ({@code dev.isthmus.conformance.cuda}).
 */
class EmulatedBackendTest {

    @BeforeAll
    static void requireEmulator() {
        String why = KernelResources.load().emulatorAbsenceReason();
        Assumptions.assumeTrue(why == null, why);
    }

    static float[] random(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextDouble(-1, 1);
        }
        return a;
    }

    @Test
    void copiesRoundTripAndDeviceTensorsAreNotHostAccessible() {
        try (CudaBackend b = CudaBackendProvider.emulated(BackendOptions.defaults()); Arena a = Arena.ofConfined()) {
            Tensor host = Tensor.allocate(a, DType.F32, 6, 5);
            float[] v = random(new SplittableRandom(1), 30);
            host.copyFrom(v);
            Tensor dev = b.allocate(DType.F32, 6, 5);
            assertFalse(dev.device().hostAccessible());
            assertThrows(IllegalStateException.class, () -> dev.getFloat(0, 0));
            b.copy(host, dev);
            // Device to device through a row-range view, then back to a host view.
            Tensor dev2 = b.allocate(DType.F32, 8, 5);
            b.copy(dev.slice(1, 4), dev2.slice(3, 4));
            Tensor back = Tensor.allocate(a, DType.F32, 8, 5);
            b.copy(dev2, back);
            float[] out = back.toFloatArray();
            for (int i = 0; i < 20; i++) {
                assertEquals(v[5 + i], out[15 + i]);
            }
            assertEquals(0f, out[0], "allocate zero-fills");
        }
    }

    @Test
    void aDecodeLoopReusesPooledMemoryAndAllocatesNothingPerStep() {
        try (CudaBackend b = CudaBackendProvider.emulated(BackendOptions.defaults())) {
            Tensor w = b.allocate(DType.F32, 64, 32);
            Tensor k = b.allocate(DType.F16, 40, 2, 16);
            Tensor v = b.allocate(DType.F16, 40, 2, 16);
            long[] before = null;
            for (int step = 0; step < 6; step++) {
                Tensor x = b.allocate(DType.F32, 1, 32);
                Tensor y = b.allocate(DType.F32, 1, 64);
                Tensor q = b.allocate(DType.F32, 1, 4, 16);
                Tensor o = b.allocate(DType.F32, 1, 4, 16);
                b.matmul(x, w, y);
                Tensor kNew = b.allocate(DType.F32, 1, 2, 16);
                b.copyRows(kNew, k, new int[] {step});
                b.attention(q, k, v, KvLayout.contiguous(40, step, 1), Attention.causal(16), o);
                b.argmax(y);
                b.release(x);
                b.release(y);
                b.release(q);
                b.release(o);
                b.release(kNew);
                if (step == 1) {
                    before = ((EmulatedGpu) gpu(b)).memoryStats();
                }
            }
            long[] after = ((EmulatedGpu) gpu(b)).memoryStats();
            assertEquals(before[0], after[0], "driver allocations after the first steps");
            DevicePool.Stats s = b.memoryStats();
            assertTrue(s.reuses() > 10, s.toString());
        }
    }

    private static Gpu gpu(CudaBackend b) {
        try {
            var f = CudaBackend.class.getDeclaredField("gpu");
            f.setAccessible(true);
            return (Gpu) f.get(b);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    /** Float64 attention of one query row over keys 0..ctx-1 (contiguous cache), GQA, causal. */
    static double[] referenceAttention(float[] q, float[] k, float[] v, int heads, int kvHeads, int hd, int ctx,
                                       float scale) {
        double[] out = new double[heads * hd];
        for (int h = 0; h < heads; h++) {
            int g = h / (heads / kvHeads);
            double[] s = new double[ctx];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < ctx; j++) {
                double dot = 0;
                for (int d = 0; d < hd; d++) {
                    dot += (double) q[h * hd + d] * k[(j * kvHeads + g) * hd + d];
                }
                s[j] = scale * dot;
                max = Math.max(max, s[j]);
            }
            double sum = 0;
            for (int j = 0; j < ctx; j++) {
                double e = Math.exp(s[j] - max);
                sum += e;
                for (int d = 0; d < hd; d++) {
                    out[h * hd + d] += e * v[(j * kvHeads + g) * hd + d];
                }
            }
            for (int d = 0; d < hd; d++) {
                out[h * hd + d] /= sum;
            }
        }
        return out;
    }

    @Test
    void longDecodeAttentionIsSplitAndCombined() {
        int heads = 4, kvHeads = 2, hd = 32, ctx = 700;
        SplittableRandom r = new SplittableRandom(5);
        float[] q = random(r, heads * hd);
        float[] k = random(r, ctx * kvHeads * hd);
        float[] v = random(r, ctx * kvHeads * hd);
        double[] expected = referenceAttention(q, k, v, heads, kvHeads, hd, ctx, 0.3f);
        for (String maxSplits : new String[] {"1", "16"}) {
            try (CudaBackend b = CudaBackendProvider.emulated(
                    CudaBackendProvider.options(Map.of("cuda.attention.maxSplits", maxSplits)));
                 Arena a = Arena.ofConfined()) {
                LaunchGeometry.AttentionPlan plan = LaunchGeometry.attention(1, heads, kvHeads, hd, ctx, 4,
                        Integer.parseInt(maxSplits));
                assertEquals(maxSplits.equals("1") ? 1 : 3, plan.splits(), "splits planned");
                Tensor qh = Tensor.allocate(a, DType.F32, 1, heads, hd);
                qh.copyFrom(q);
                Tensor kh = Tensor.allocate(a, DType.F32, ctx, kvHeads, hd);
                kh.copyFrom(k);
                Tensor vh = Tensor.allocate(a, DType.F32, ctx, kvHeads, hd);
                vh.copyFrom(v);
                Tensor qd = b.allocate(DType.F32, 1, heads, hd);
                Tensor kd = b.allocate(DType.F32, ctx, kvHeads, hd);
                Tensor vd = b.allocate(DType.F32, ctx, kvHeads, hd);
                Tensor od = b.allocate(DType.F32, 1, heads, hd);
                b.copy(qh, qd);
                b.copy(kh, kd);
                b.copy(vh, vd);
                b.attention(qd, kd, vd, KvLayout.contiguous(ctx, ctx - 1, 1), new Attention(0.3f, true, 0, null, 0f), od);
                Tensor oh = Tensor.allocate(a, DType.F32, 1, heads, hd);
                b.copy(od, oh);
                float[] out = oh.toFloatArray();
                for (int i = 0; i < out.length; i++) {
                    assertEquals(expected[i], out[i], 2e-5, "maxSplits " + maxSplits + ", element " + i);
                }
            }
        }
    }

    @Test
    void argmaxIsExactWithTiesToTheLowestIndex() {
        try (CudaBackend b = CudaBackendProvider.emulated(BackendOptions.defaults()); Arena a = Arena.ofConfined()) {
            Tensor h = Tensor.allocate(a, DType.F32, 3, 1000);
            float[] v = new float[3000];
            v[700] = 5;
            v[300] = 5; // tie: 300 wins
            v[1000 + 999] = 1;
            for (int i = 2000; i < 3000; i++) {
                v[i] = -1;
            }
            h.copyFrom(v);
            Tensor d = b.allocate(DType.F32, 3, 1000);
            b.copy(h, d);
            assertArrayEquals(new int[] {300, 999, 0}, b.argmax(d));
        }
    }

    @Test
    void misuseGivesClearErrors() {
        try (CudaBackend b = CudaBackendProvider.emulated(BackendOptions.defaults()); Arena a = Arena.ofConfined()) {
            Tensor host = Tensor.allocate(a, DType.F32, 2, 4);
            Tensor dev = b.allocate(DType.F32, 2, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.silu(host, dev));
            assertTrue(e.getMessage().contains("is not on cuda-emulator:0; copy it there with Backend.copy first"),
                    e.getMessage());
            assertThrows(UnsupportedOperationException.class, () -> b.topK(dev, 2));
            assertThrows(IndexOutOfBoundsException.class,
                    () -> b.embeddingLookup(b.allocate(DType.F32, 3, 4), new int[] {3}, b.allocate(DType.F32, 1, 4)));
            assertThrows(IllegalArgumentException.class, () -> b.copy(dev, Tensor.allocate(a, DType.F32, 4, 2)));
        }
    }
}
