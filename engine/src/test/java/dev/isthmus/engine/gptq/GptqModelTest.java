package dev.isthmus.engine.gptq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.safetensors.HfFixtures;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A whole GPTQ checkpoint (a random two-layer Llama, every projection GPTQ-packed by the test; layer 0 act-order,
 * layer 1 plain) must run like the same model stored as F32 safetensors of the dequantized weights: this checks
 * the q/k RoPE row order on converted layers and the folding of an act-order down projection's input order into
 * the gate and up rows.
 */
class GptqModelTest {
    static final int DIM = 64;
    static final int HEADS = 4;
    static final int KV_HEADS = 2;
    static final int HEAD_DIM = 16;
    static final int FFN = 128;
    static final int LAYERS = 2;
    static final int VOCAB = 96;

    @TempDir
    static Path tmp;
    static Path gptqDir;
    static Path floatDir;
    static Backend backend;
    /** The packed layers by HF prefix (e.g. model.layers.0.mlp.down_proj), with the weights they encode. */
    static final Map<String, GptqFixtures.Packed> PACKED = new LinkedHashMap<>();

    @BeforeAll
    static void build() throws IOException {
        backend = Backends.open("cpu", new BackendOptions(1, java.util.Map.of()));
        Random rnd = new Random(11);
        LinkedHashMap<String, HfFixtures.Data> gptq = new LinkedHashMap<>();
        LinkedHashMap<String, HfFixtures.Data> floats = new LinkedHashMap<>();
        float[] embed = gaussian(VOCAB * DIM, 1, rnd);
        float[] lmHead = gaussian(VOCAB * DIM, 0.2, rnd);
        for (Map<String, HfFixtures.Data> m : java.util.List.of(gptq, floats)) {
            m.put("model.embed_tokens.weight", HfFixtures.Data.f16(embed, VOCAB, DIM));
            m.put("lm_head.weight", HfFixtures.Data.f16(lmHead, VOCAB, DIM));
            m.put("model.norm.weight", HfFixtures.Data.f16(ones(DIM), DIM));
        }
        String[][] projections = {
            {"self_attn.q_proj", "" + HEADS * HEAD_DIM, "" + DIM},
            {"self_attn.k_proj", "" + KV_HEADS * HEAD_DIM, "" + DIM},
            {"self_attn.v_proj", "" + KV_HEADS * HEAD_DIM, "" + DIM},
            {"self_attn.o_proj", "" + DIM, "" + HEADS * HEAD_DIM},
            {"mlp.gate_proj", "" + FFN, "" + DIM},
            {"mlp.up_proj", "" + FFN, "" + DIM},
            {"mlp.down_proj", "" + DIM, "" + FFN},
        };
        for (int l = 0; l < LAYERS; l++) {
            String p = "model.layers." + l + ".";
            for (Map<String, HfFixtures.Data> m : java.util.List.of(gptq, floats)) {
                m.put(p + "input_layernorm.weight", HfFixtures.Data.f16(ones(DIM), DIM));
                m.put(p + "post_attention_layernorm.weight", HfFixtures.Data.f16(ones(DIM), DIM));
            }
            for (String[] proj : projections) {
                int out = Integer.parseInt(proj[1]);
                int in = Integer.parseInt(proj[2]);
                double[][] w = GptqFixtures.randomWeights(out, in, 1 / Math.sqrt(in), rnd);
                int[] g = l == 0 ? GptqFixtures.actOrderGroups(in, 32, rnd) : GptqFixtures.trivialGroups(in, 32);
                GptqFixtures.Packed packed = GptqFixtures.pack(w, g, in / 32, false, 1);
                gptq.putAll(packed.tensors(p + proj[0], true));
                PACKED.put(p + proj[0], packed);
                floats.put(p + proj[0] + ".weight", HfFixtures.Data.f32(packed.weightF32(), out, in));
            }
        }
        gptqDir = Files.createDirectories(tmp.resolve("gptq"));
        floatDir = Files.createDirectories(tmp.resolve("float"));
        ObjectNode config = config();
        HfFixtures.writeJson(floatDir.resolve("config.json"), config);
        HfFixtures.writeShards(floatDir, floats, 1);
        HfFixtures.writeJson(gptqDir.resolve("config.json"), config);
        ObjectNode q = HfFixtures.JSON.createObjectNode();
        q.put("bits", 4).put("group_size", 32).put("desc_act", true).put("sym", false).put("quant_method", "gptq")
                .put("checkpoint_format", "gptq");
        HfFixtures.writeJson(gptqDir.resolve("quantize_config.json"), q);
        HfFixtures.writeShards(gptqDir, gptq, 2);
    }

    @AfterAll
    static void close() {
        backend.close();
    }

    static ObjectNode config() {
        ObjectNode c = HfFixtures.JSON.createObjectNode();
        c.put("model_type", "llama").put("hidden_size", DIM).put("intermediate_size", FFN)
                .put("num_hidden_layers", LAYERS).put("num_attention_heads", HEADS).put("num_key_value_heads", KV_HEADS)
                .put("vocab_size", VOCAB).put("max_position_embeddings", 64).put("rms_norm_eps", 1e-5)
                .put("hidden_act", "silu");
        return c;
    }

    static float[] gaussian(int n, double std, Random rnd) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * std);
        }
        return v;
    }

    static float[] ones(int n) {
        float[] v = new float[n];
        java.util.Arrays.fill(v, 1);
        return v;
    }

    static float[] logits(ModelFile file, int[] tokens) {
        try (Transformer t = Transformer.load(file, backend); KvCache cache = t.newCache(1, tokens.length, DType.F32)) {
            return t.forward(Batch.ofSequenceAllLogits(0, 0, tokens), cache).toFloatArray();
        }
    }

    @Test
    void convertedLayersHaveTheDocumentedTypes() {
        try (ModelFile m = ModelFiles.open(gptqDir, null)) {
            assertEquals("safetensors-gptq", m.format());
            for (TensorInfo t : m.tensorInfos()) {
                DType expected;
                if (!t.name().startsWith("blk.") || t.name().contains("norm")) {
                    expected = DType.F16;
                } else if (t.name().startsWith("blk.1.") || t.name().endsWith("ffn_down.weight")) {
                    expected = DType.Q4_1; // plain groups; or act-order folded into gate/up
                } else {
                    expected = DType.F16; // act-order inputs the graph cannot permute
                }
                assertEquals(expected, t.dtype(), t.name());
                Tensor x = m.tensor(t.name());
                assertEquals(t.byteSize(), x.segment().byteSize(), t.name());
                assertEquals(t.dtype(), x.dtype(), t.name());
            }
        }
    }

    @Test
    void runsLikeTheDequantizedFloatModel() {
        int[] tokens = new int[24];
        Random rnd = new Random(3);
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = rnd.nextInt(VOCAB);
        }
        float[] expected;
        float[] actual;
        try (ModelFile f = ModelFiles.open(floatDir, null); ModelFile g = ModelFiles.open(gptqDir, null)) {
            expected = logits(f, tokens);
            actual = logits(g, tokens);
        }
        double maxDiff = 0;
        double scale = 0;
        for (int i = 0; i < expected.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(expected[i] - actual[i]));
            scale = Math.max(scale, Math.abs(expected[i]));
        }
        // Conversion error: F16 rounding (2^-11 relative) of Q4_1 minimums and of the F16 layers.
        assertTrue(maxDiff < 3e-3 * scale, "max logit difference " + maxDiff + " of " + scale);
        assertTrue(scale > 1, "logits too small to compare: " + scale);
    }

    /** x·Wᵀ of a loaded weight through the SPI, on the host. */
    static float[] matmul(Tensor w, float[] x, int rows) {
        try (Arena arena = Arena.ofShared()) {
            Tensor xt = Tensor.allocate(arena, DType.F32, rows, w.dim(1));
            xt.copyFrom(x);
            Tensor y = Tensor.allocate(arena, DType.F32, rows, w.dim(0));
            backend.matmul(xt, w, y);
            return y.toFloatArray();
        }
    }

    /** Float64 {@code x·Wᵀ} of a packed layer's exact weights, output row {@code r} being HF row {@code hfRow[r]}. */
    static double[] reference(GptqFixtures.Packed p, double[] x, int rows, int[] hfRow) {
        double[] y = new double[rows * p.out()];
        for (int n = 0; n < rows; n++) {
            for (int r = 0; r < p.out(); r++) {
                double s = 0;
                int o = hfRow == null ? r : hfRow[r];
                for (int i = 0; i < p.in(); i++) {
                    s += x[n * p.in() + i] * p.weight()[o][i];
                }
                y[n * p.out() + r] = s;
            }
        }
        return y;
    }

    static void assertNear(double[] expected, float[] actual, double relative, String what) {
        double err = 0;
        double norm = 0;
        for (int i = 0; i < expected.length; i++) {
            err += (expected[i] - actual[i]) * (expected[i] - actual[i]);
            norm += expected[i] * expected[i];
        }
        assertTrue(Math.sqrt(err) <= relative * Math.sqrt(norm), what + ": relative error " + Math.sqrt(err / norm));
    }

    /**
     * Weights loaded from the checkpoint files, multiplied through the CPU backend's SPI, against float64 matmuls
     * of the dequantized GPTQ weights: a plain Q4_1 layer, an act-order q projection (F16, rows in GGUF's RoPE
     * order), and the act-order feed-forward block whose down projection's input order was folded into gate/up.
     */
    @Test
    void loadedWeightsMatchFloat64Matmuls() {
        Random rnd = new Random(8);
        int rows = 3;
        double[] x = new double[rows * DIM];
        float[] xf = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            xf[i] = (float) rnd.nextGaussian();
            x[i] = xf[i];
        }
        // GGUF row g of q/k is HF row h where the (test's own) HF→GGUF map sends h to g.
        int[] ggufOfHf = HfFixtures.hfRowsFromGguf(HEADS, HEAD_DIM);
        int[] hfOfGguf = new int[ggufOfHf.length];
        for (int h = 0; h < ggufOfHf.length; h++) {
            hfOfGguf[ggufOfHf[h]] = h;
        }
        try (ModelFile m = ModelFiles.open(gptqDir, null)) {
            Tensor v1 = m.tensor("blk.1.attn_v.weight");
            assertEquals(DType.Q4_1, v1.dtype());
            assertNear(reference(PACKED.get("model.layers.1.self_attn.v_proj"), x, rows, null), matmul(v1, xf, rows),
                    1e-3, "blk.1.attn_v");
            Tensor q0 = m.tensor("blk.0.attn_q.weight");
            assertEquals(DType.F16, q0.dtype());
            assertNear(reference(PACKED.get("model.layers.0.self_attn.q_proj"), x, rows, hfOfGguf), matmul(q0, xf, rows),
                    1e-3, "blk.0.attn_q");

            // down(silu(gate·x) * up·x), with the loaded (permuted) tensors and the SPI's swiglu.
            Tensor gate = m.tensor("blk.0.ffn_gate.weight");
            Tensor up = m.tensor("blk.0.ffn_up.weight");
            Tensor down = m.tensor("blk.0.ffn_down.weight");
            assertEquals(DType.Q4_1, down.dtype());
            float[] out;
            try (Arena arena = Arena.ofShared()) {
                Tensor xt = Tensor.allocate(arena, DType.F32, rows, DIM);
                xt.copyFrom(xf);
                Tensor g = Tensor.allocate(arena, DType.F32, rows, FFN);
                Tensor u = Tensor.allocate(arena, DType.F32, rows, FFN);
                Tensor y = Tensor.allocate(arena, DType.F32, rows, DIM);
                backend.matmul(xt, gate, g);
                backend.matmul(xt, up, u);
                backend.swiglu(g, u, g);
                backend.matmul(g, down, y);
                out = y.toFloatArray();
            }
            double[] gRef = reference(PACKED.get("model.layers.0.mlp.gate_proj"), x, rows, null);
            double[] uRef = reference(PACKED.get("model.layers.0.mlp.up_proj"), x, rows, null);
            double[] h = new double[gRef.length];
            for (int i = 0; i < h.length; i++) {
                h[i] = gRef[i] / (1 + Math.exp(-gRef[i])) * uRef[i];
            }
            assertNear(reference(PACKED.get("model.layers.0.mlp.down_proj"), h, rows, null), out, 2e-3, "blk.0 FFN");
        }
    }

    @Test
    void missingConfigOrPartsAreErrors() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("no-config"));
        for (String f : new String[] {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json"}) {
            Files.copy(gptqDir.resolve(f), dir.resolve(f));
        }
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(dir, null));
        assertTrue(e.getMessage().contains("qweight") && e.getMessage().contains("quantize_config.json"), e.getMessage());

        // config.json's quantization_config works as well as quantize_config.json.
        ObjectNode c = config();
        c.putObject("quantization_config").put("quant_method", "gptq").put("bits", 4).put("group_size", 32)
                .put("desc_act", true).put("sym", false);
        HfFixtures.writeJson(dir.resolve("config.json"), c);
        try (ModelFile m = ModelFiles.open(dir, null)) {
            assertEquals(DType.Q4_1, m.tensorInfos().stream().filter(t -> t.name().equals("blk.1.attn_q.weight"))
                    .findFirst().orElseThrow().dtype());
        }
        c.putObject("quantization_config").put("quant_method", "awq").put("bits", 4);
        HfFixtures.writeJson(dir.resolve("config.json"), c);
        e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(dir, null));
        assertTrue(e.getMessage().contains("quant_method") && e.getMessage().contains("awq"), e.getMessage());
    }
}
