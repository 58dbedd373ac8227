package dev.isthmus.backend.cuda;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CUDA graphs on the emulator, which enforces CUDA's rules for stream capture (no synchronization, pageable
 * copies, frees or cuBLAS calls while capturing): a decode loop gives the same results with and without graphs,
 * one capture per step, and the executable graph of the first step is updated, not re-instantiated.
 */
class CudaGraphsTest {

    @BeforeAll
    static void requireEmulator() {
        String why = KernelResources.load().emulatorAbsenceReason();
        Assumptions.assumeTrue(why == null, why);
    }

    /** A toy decode loop (embedding → rope → KV cache → attention → matmul → argmax), returning the ids. */
    static List<Integer> decode(CudaBackend b, int steps) {
        int dim = 32, heads = 2, hd = 16, vocab = 40, ctx = 64;
        SplittableRandom r = new SplittableRandom(9);
        List<Integer> out = new ArrayList<>();
        try (Arena a = Arena.ofConfined()) {
            Tensor embH = Tensor.allocate(a, DType.F32, vocab, dim);
            Tensor wH = Tensor.allocate(a, DType.F32, vocab, dim);
            float[] e = new float[vocab * dim];
            float[] w = new float[vocab * dim];
            for (int i = 0; i < e.length; i++) {
                e[i] = (float) r.nextDouble(-1, 1);
                w[i] = (float) r.nextDouble(-1, 1);
            }
            embH.copyFrom(e);
            wH.copyFrom(w);
            Tensor emb = b.allocate(DType.F32, vocab, dim);
            Tensor wOut = b.allocate(DType.F32, vocab, dim);
            b.copy(embH, emb);
            b.copy(wH, wOut);
            Tensor kCache = b.allocate(DType.F16, ctx, heads, hd);
            Tensor vCache = b.allocate(DType.F16, ctx, heads, hd);
            int token = 3;
            for (int pos = 0; pos < steps; pos++) {
                Tensor x = b.allocate(DType.F32, 1, dim);
                b.embeddingLookup(emb, new int[] {token}, x);
                Tensor q = x.reshape(1, heads, hd);
                b.rope(q, new int[] {pos}, Rope.of(RopeLayout.NEOX, hd, 10000));
                b.copyRows(q, kCache, new int[] {pos});
                b.copyRows(q, vCache, new int[] {pos});
                Tensor o = b.allocate(DType.F32, 1, heads, hd);
                b.attention(q, kCache, vCache, KvLayout.contiguous(ctx, pos, 1), Attention.causal(hd), o);
                Tensor h = b.allocate(DType.F32, 1, dim);
                b.rmsNorm(o.reshape(1, dim), b.allocate(DType.F32, dim), 1e-5f, h);
                b.add(h, x, h);
                Tensor logits = b.allocate(DType.F32, 1, vocab);
                b.matmul(h, wOut, logits);
                token = b.argmax(logits)[0];
                out.add(token);
                b.release(x);
                b.release(o);
                b.release(h);
                b.release(logits);
            }
        }
        return out;
    }

    @Test
    void aDecodeLoopGivesTheSameTokensWithGraphsAndUpdatesOneExecutableGraph() {
        List<Integer> eager;
        try (CudaBackend b = CudaBackendProvider.emulated(CudaBackendProvider.options(Map.of()))) {
            eager = decode(b, 12);
        }
        try (CudaBackend b = CudaBackendProvider.emulated(CudaBackendProvider.options(Map.of("cuda.graphs", "true")))) {
            List<Integer> graphed = decode(b, 12);
            assertEquals(eager, graphed);
            CudaStream.GraphStats s = graphStats(b);
            // Setup copies end captures too; every decode step is one capture ended by argmax's copy to the host.
            assertTrue(s.launches() >= 12, s.toString());
            assertTrue(s.updates() >= 10, "decode steps should update the executable graph: " + s);
            assertTrue(s.instantiations() <= 3, s.toString());
        }
    }

    @Test
    void aCaptureThatBreaksCudaRulesIsAbandonedAndGraphsSwitchOff() {
        try (CudaBackend b = CudaBackendProvider.emulated(CudaBackendProvider.options(Map.of("cuda.graphs", "true")))) {
            Tensor x = b.allocate(DType.F32, 4, 4); // starts a capture (the zero fill)
            CudaStream stream = stream(b);
            assertTrue(stream.capturing());
            // Something below the backend synchronizing mid-capture, as a bug would: CUDA refuses, so does the emulator.
            CudaException e = assertThrows(CudaException.class, () -> stream.gpu().synchronize());
            assertEquals(900, e.code());
            b.synchronize(); // the backend's own path ends the capture first
            b.silu(x, x);
            b.synchronize();
            assertArrayEquals(new int[] {0, 0, 0, 0}, b.argmax(x));
        }
    }

    static CudaStream stream(CudaBackend b) {
        try {
            var f = CudaBackend.class.getDeclaredField("stream");
            f.setAccessible(true);
            return (CudaStream) f.get(b);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    static CudaStream.GraphStats graphStats(CudaBackend b) {
        return stream(b).graphStats();
    }
}
