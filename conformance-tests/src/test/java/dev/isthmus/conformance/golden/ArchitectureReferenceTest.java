package dev.isthmus.conformance.golden;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.conformance.reference.ReferenceOps;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.gguf.GgufWriter;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The graph's architecture switches (GQA, Qwen2's QKV bias and NeoX rope, Llama 3's rope frequency factors,
 * tied embeddings, sliding window) checked against a float64 forward pass written here from the papers'
 * equations with the independent reference ops, on small random models written as GGUF.
 */
class ArchitectureReferenceTest {
    private static final int DIM = 32, HEADS = 4, KV_HEADS = 2, HEAD_DIM = 8, FFN = 48, VOCAB = 40, LAYERS = 2;
    private static final float EPS = 1e-5f, THETA = 10000f;

    @TempDir
    Path dir;

    /** A random model of one architecture: its tensors as float matrices, written to a GGUF file. */
    private record Spec(String arch, boolean qkvBias, boolean tied, float[] ropeFreqs, int slidingWindow) {
    }

    @Test
    void llamaWithGqaAndTiedEmbeddings() throws IOException {
        check(new Spec("llama", false, true, null, 0));
    }

    @Test
    void llama3RopeFrequencyFactors() throws IOException {
        float[] factors = new float[HEAD_DIM / 2];
        for (int i = 0; i < factors.length; i++) {
            factors[i] = 1f + i * 1.5f;
        }
        check(new Spec("llama", false, false, factors, 0));
    }

    @Test
    void qwen2WithQkvBiasAndNeoxRope() throws IOException {
        check(new Spec("qwen2", true, false, null, 0));
    }

    @Test
    void mistralSlidingWindow() throws IOException {
        check(new Spec("llama", false, false, null, 3));
    }

    private void check(Spec spec) throws IOException {
        Random random = new Random(spec.hashCode());
        Map<String, double[][]> w = new LinkedHashMap<>();
        w.put("token_embd.weight", random(random, VOCAB, DIM, 0.5));
        w.put("output_norm.weight", norm(random, DIM));
        if (!spec.tied()) {
            w.put("output.weight", random(random, VOCAB, DIM, 0.3));
        }
        for (int l = 0; l < LAYERS; l++) {
            String p = "blk." + l + ".";
            w.put(p + "attn_norm.weight", norm(random, DIM));
            w.put(p + "attn_q.weight", random(random, HEADS * HEAD_DIM, DIM, 0.3));
            w.put(p + "attn_k.weight", random(random, KV_HEADS * HEAD_DIM, DIM, 0.3));
            w.put(p + "attn_v.weight", random(random, KV_HEADS * HEAD_DIM, DIM, 0.3));
            if (spec.qkvBias()) {
                w.put(p + "attn_q.bias", random(random, 1, HEADS * HEAD_DIM, 0.2));
                w.put(p + "attn_k.bias", random(random, 1, KV_HEADS * HEAD_DIM, 0.2));
                w.put(p + "attn_v.bias", random(random, 1, KV_HEADS * HEAD_DIM, 0.2));
            }
            w.put(p + "attn_output.weight", random(random, DIM, HEADS * HEAD_DIM, 0.3));
            w.put(p + "ffn_norm.weight", norm(random, DIM));
            w.put(p + "ffn_gate.weight", random(random, FFN, DIM, 0.3));
            w.put(p + "ffn_up.weight", random(random, FFN, DIM, 0.3));
            w.put(p + "ffn_down.weight", random(random, DIM, FFN, 0.3));
        }
        Path file = write(spec, w);
        int[] tokens = {3, 17, 5, 39, 0, 22, 8};
        double[][] expected = referenceForward(spec, w, tokens);

        try (Backend backend = Backends.openWithFallback("cpu", BackendOptions.defaults());
             GgufFile gguf = GgufFile.open(file);
             Transformer t = Transformer.load(gguf, backend);
             Arena arena = Arena.ofConfined()) {
            // All positions in one prefill batch.
            try (KvCache cache = t.newCache(1, tokens.length, DType.F32)) {
                float[] logits = host(backend, arena, t.forward(Batch.ofSequenceAllLogits(0, 0, tokens), cache));
                for (int i = 0; i < tokens.length; i++) {
                    assertClose(expected[i], logits, i * VOCAB, spec + " prefill row " + i);
                }
            }
            // Three prompt tokens, then one decode step at a time through the cache.
            try (KvCache cache = t.newCache(1, tokens.length, DType.F32)) {
                float[] logits = host(backend, arena, t.forward(Batch.ofSequence(0, 0, 3, 17, 5), cache));
                assertClose(expected[2], logits, 0, spec + " after prompt");
                for (int i = 3; i < tokens.length; i++) {
                    logits = host(backend, arena, t.forward(Batch.ofSequence(0, i, tokens[i]), cache));
                    assertClose(expected[i], logits, 0, spec + " decode at " + i);
                }
            }
        }
    }

    /** The transformer as the papers write it: pre-norm blocks, RoPE attention with GQA, SwiGLU FFN. */
    private static double[][] referenceForward(Spec spec, Map<String, double[][]> w, int[] tokens) {
        int n = tokens.length;
        int[] positions = new int[n];
        for (int i = 0; i < n; i++) {
            positions[i] = i;
        }
        RopeLayout layout = spec.arch().equals("qwen2") ? RopeLayout.NEOX : RopeLayout.NORMAL;
        Rope rope = new Rope(layout, HEAD_DIM, THETA, 1f, spec.ropeFreqs());
        Attention attention = new Attention((float) (1 / Math.sqrt(HEAD_DIM)), true, spec.slidingWindow(), null, 0f);
        KvLayout kv = KvLayout.contiguous(n, 0, n);

        double[][] x = ReferenceOps.embeddingLookup(w.get("token_embd.weight"), tokens);
        for (int l = 0; l < LAYERS; l++) {
            String p = "blk." + l + ".";
            double[][] xb = ReferenceOps.rmsNorm(x, w.get(p + "attn_norm.weight")[0], EPS);
            double[][] q = projection(xb, w, p + "attn_q");
            double[][] k = projection(xb, w, p + "attn_k");
            double[][] v = projection(xb, w, p + "attn_v");
            double[][][] qh = ReferenceOps.rope(heads(q, HEADS), positions, rope);
            double[][][] kh = ReferenceOps.rope(heads(k, KV_HEADS), positions, rope);
            double[][][] att = ReferenceOps.attention(qh, kh, heads(v, KV_HEADS), kv, attention);
            x = ReferenceOps.add(x, ReferenceOps.matmul(flat(att), w.get(p + "attn_output.weight")));
            xb = ReferenceOps.rmsNorm(x, w.get(p + "ffn_norm.weight")[0], EPS);
            double[][] h = ReferenceOps.swiglu(ReferenceOps.matmul(xb, w.get(p + "ffn_gate.weight")),
                    ReferenceOps.matmul(xb, w.get(p + "ffn_up.weight")));
            x = ReferenceOps.add(x, ReferenceOps.matmul(h, w.get(p + "ffn_down.weight")));
        }
        double[][] out = spec.tied() ? w.get("token_embd.weight") : w.get("output.weight");
        return ReferenceOps.matmul(ReferenceOps.rmsNorm(x, w.get("output_norm.weight")[0], EPS), out);
    }

    private static double[][] projection(double[][] x, Map<String, double[][]> w, String name) {
        double[][] y = ReferenceOps.matmul(x, w.get(name + ".weight"));
        return w.containsKey(name + ".bias") ? ReferenceOps.add(y, w.get(name + ".bias")) : y;
    }

    private static double[][][] heads(double[][] x, int heads) {
        double[][][] out = new double[x.length][heads][HEAD_DIM];
        for (int i = 0; i < x.length; i++) {
            for (int h = 0; h < heads; h++) {
                System.arraycopy(x[i], h * HEAD_DIM, out[i][h], 0, HEAD_DIM);
            }
        }
        return out;
    }

    private static double[][] flat(double[][][] x) {
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            out[i] = new double[x[i].length * HEAD_DIM];
            for (int h = 0; h < x[i].length; h++) {
                System.arraycopy(x[i][h], 0, out[i], h * HEAD_DIM, HEAD_DIM);
            }
        }
        return out;
    }

    private Path write(Spec spec, Map<String, double[][]> w) throws IOException {
        String a = spec.arch();
        GgufWriter out = new GgufWriter()
                .put("general.architecture", a)
                .put(a + ".embedding_length", DIM)
                .put(a + ".block_count", LAYERS)
                .put(a + ".feed_forward_length", FFN)
                .put(a + ".attention.head_count", HEADS)
                .put(a + ".attention.head_count_kv", KV_HEADS)
                .put(a + ".context_length", 64)
                .put(a + ".rope.freq_base", THETA)
                .put(a + ".attention.layer_norm_rms_epsilon", EPS);
        if (spec.slidingWindow() > 0) {
            out.put(a + ".attention.sliding_window", spec.slidingWindow());
        }
        try (Arena arena = Arena.ofConfined()) {
            for (Map.Entry<String, double[][]> e : w.entrySet()) {
                double[][] m = e.getValue();
                boolean vector = e.getKey().endsWith("norm.weight") || e.getKey().endsWith(".bias");
                long[] shape = vector ? new long[] {m[0].length} : new long[] {m.length, m[0].length};
                out.tensor(e.getKey(), f32(arena, m, shape));
            }
            if (spec.ropeFreqs() != null) {
                double[][] f = {new double[spec.ropeFreqs().length]};
                for (int i = 0; i < f[0].length; i++) {
                    f[0][i] = spec.ropeFreqs()[i];
                }
                out.tensor("rope_freqs.weight", f32(arena, f, new long[] {f[0].length}));
            }
            Path file = dir.resolve(a + spec.hashCode() + ".gguf");
            out.write(file);
            return file;
        }
    }

    private static Tensor f32(Arena arena, double[][] m, long[] shape) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        MemorySegment s = t.segment();
        int cols = m[0].length;
        for (int r = 0; r < m.length; r++) {
            for (int c = 0; c < cols; c++) {
                s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, (long) r * cols + c, (float) m[r][c]);
            }
        }
        return t;
    }

    /** Random values already rounded to float, so the file and the reference hold the same numbers. */
    private static double[][] random(Random r, int rows, int cols, double std) {
        double[][] m = new double[rows][cols];
        for (double[] row : m) {
            for (int c = 0; c < cols; c++) {
                row[c] = (float) (r.nextGaussian() * std);
            }
        }
        return m;
    }

    private static double[][] norm(Random r, int cols) {
        double[][] m = random(r, 1, cols, 0.1);
        for (int c = 0; c < cols; c++) {
            m[0][c] = (float) (1 + m[0][c]);
        }
        return m;
    }

    private static float[] host(Backend backend, Arena arena, Tensor logits) {
        Tensor h = Tensor.allocate(arena, DType.F32, logits.shape());
        backend.copy(logits, h);
        return h.toFloatArray();
    }

    private static void assertClose(double[] expected, float[] actual, int offset, String what) {
        double num = 0;
        double den = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = expected[i] - actual[offset + i];
            num += d * d;
            den += expected[i] * expected[i];
        }
        assertEquals(VOCAB, expected.length);
        assertTrue(num / den < 1e-9, what + ": NMSE " + num / den);
    }
}
