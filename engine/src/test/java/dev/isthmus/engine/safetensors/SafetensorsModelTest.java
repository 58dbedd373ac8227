package dev.isthmus.engine.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.api.DType;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.SamplingParams;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.stream.Collectors;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * stories260K re-laid by the test into a Hugging Face checkpoint (HF names, q/k rows in rotate-half order,
 * config.json, a tokenizer.json in the shape transformers' converter writes, two shards with an index) must
 * load into the same model as the GGUF: same tensors, same tokens, same logits, same greedy text.
 */
class SafetensorsModelTest {
    private static final String[] TEXTS = {
        "Once upon a time, there was a little girl named Lily.",
        "The cat sat on the mat. It was happy!",
        "  two  spaces and\nnew lines\n\n",
        "Tom said, \"Let's play with the big red ball.\"",
        "unicode: caf\u00e9 \u00fcber \u4e2d\u6587 \ud83d\ude00",
        "",
    };

    @TempDir
    static Path tmp;
    static Path gguf;
    static Path sharded;
    static Backend backend;

    @BeforeAll
    static void build() throws IOException {
        gguf = SharedData.file("models/stories260K.gguf");
        try (GgufFile g = GgufFile.open(gguf)) {
            sharded = HfFixtures.checkpointFromGguf(g, tmp.resolve("stories260K-hf"), "F32", 2);
        }
        backend = Backends.open("cpu", new BackendOptions(1, java.util.Map.of()));
    }

    @AfterAll
    static void close() {
        backend.close();
    }

    @Test
    void shardedCheckpointHasTheGgufTensorsBitForBit() {
        assertTrue(Files.isRegularFile(sharded.resolve("model-00001-of-00002.safetensors")));
        assertTrue(Files.isRegularFile(sharded.resolve("model-00002-of-00002.safetensors")));
        try (GgufFile g = GgufFile.open(gguf); ModelFile hf = ModelFiles.open(sharded, null)) {
            SafetensorsModel s = assertInstanceOf(SafetensorsModel.class, hf);
            assertEquals("safetensors", hf.format());
            assertEquals(2, s.shards().size());
            Set<String> expected = g.tensorInfos().stream().map(TensorInfo::name).collect(Collectors.toSet());
            Set<String> actual = hf.tensorInfos().stream().map(TensorInfo::name).collect(Collectors.toSet());
            assertEquals(expected, actual);
            for (TensorInfo t : g.tensorInfos()) {
                Tensor a = hf.tensor(t.name());
                assertEquals(DType.F32, a.dtype(), t.name());
                assertArrayEquals(t.shape(), a.shape(), t.name());
                assertArrayEquals(HfFixtures.bytes(g.tensor(t.name())), HfFixtures.bytes(a), t.name());
            }
            // Zero copy except for the permuted q/k projections.
            for (TensorInfo t : hf.tensorInfos()) {
                boolean qk = t.name().endsWith("attn_q.weight") || t.name().endsWith("attn_k.weight");
                assertEquals(qk, t.offset() < 0, t.name());
            }
        }
    }

    @Test
    void metadataMatchesWhatTheGraphReads() {
        try (GgufFile g = GgufFile.open(gguf); ModelFile hf = ModelFiles.open(sharded, null)) {
            for (String key : List.of("general.architecture", "llama.context_length", "llama.embedding_length",
                    "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
                    "llama.attention.head_count_kv", "llama.rope.dimension_count", "llama.rope.freq_base",
                    "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id",
                    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token")) {
                Object want = g.metadata().get(key);
                Object got = hf.metadata().get(key);
                if (want instanceof Number w) {
                    assertEquals(w.doubleValue(), ((Number) got).doubleValue(), key);
                } else if (want != null) {
                    assertEquals(want, got, key);
                }
            }
            assertArrayEquals(g.metadata().getStringArray("tokenizer.ggml.tokens"),
                    hf.metadata().getStringArray("tokenizer.ggml.tokens"));
            assertArrayEquals(g.metadata().getIntArray("tokenizer.ggml.token_type"),
                    hf.metadata().getIntArray("tokenizer.ggml.token_type"));
            assertEquals("stories260K-hf", hf.metadata().getString("general.name", null));
        }
    }

    @Test
    void sameTokensLogitsAndGreedyTextAsTheGguf() {
        try (Model a = Model.open(gguf, null, backend); Model b = Model.open(sharded, null, backend)) {
            for (String text : TEXTS) {
                assertArrayEquals(a.tokenizer().encode(text, true, false), b.tokenizer().encode(text, true, false), text);
            }
            int[] prompt = a.tokenizer().encode(TEXTS[0], true, false);
            // Same weights, same graph: equal up to float summation order (the views' alignment differs).
            assertClose(logits(a, prompt), logits(b, prompt));
            GenerationParams greedy = new GenerationParams(80, SamplingParams.greedy(), List.of(), null, false);
            String ta = a.generator().generate("Once upon a time", greedy, s -> { }).text();
            String tb = b.generator().generate("Once upon a time", greedy, s -> { }).text();
            assertEquals(ta, tb);
            assertTrue(ta.length() > 100, ta);
        }
    }

    static void assertClose(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-5f * Math.max(1, Math.abs(expected[i])), "logit " + i);
        }
    }

    /** Logits of every position of one sequence. */
    static float[] logits(Model m, int[] tokens) {
        try (KvCache cache = m.transformer().newCache(1, tokens.length, DType.F32)) {
            return m.transformer().forward(Batch.ofSequenceAllLogits(0, 0, tokens), cache).toFloatArray();
        }
    }

    /**
     * Independent of the loader and of the fixture: rotating HF-layout q rows the rotate-half (NEOX) way equals
     * rotating the permuted rows the interleaved (NORMAL) way, up to that same permutation of the result.
     */
    @Test
    void ropePermutationTurnsRotateHalfIntoInterleaved() {
        int heads = 3;
        int headDim = 16;
        int[] order = SafetensorsModel.ropeRowOrder(heads, headDim);
        Random rnd = new Random(7);
        try (Arena arena = Arena.ofConfined()) {
            Tensor hf = Tensor.allocate(arena, DType.F32, 2, heads, headDim);
            float[] v = new float[2 * heads * headDim];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) rnd.nextGaussian();
            }
            hf.copyFrom(v);
            Tensor gg = Tensor.allocate(arena, DType.F32, 2, heads, headDim);
            float[] w = new float[v.length];
            for (int row = 0; row < 2; row++) {
                for (int r = 0; r < heads * headDim; r++) {
                    w[row * heads * headDim + r] = v[row * heads * headDim + order[r]];
                }
            }
            gg.copyFrom(w);
            int[] positions = {5, 1234};
            backend.rope(hf, positions, Rope.of(RopeLayout.NEOX, headDim, 10000f));
            backend.rope(gg, positions, Rope.of(RopeLayout.NORMAL, headDim, 10000f));
            float[] a = hf.toFloatArray();
            float[] b = gg.toFloatArray();
            for (int row = 0; row < 2; row++) {
                for (int r = 0; r < heads * headDim; r++) {
                    assertEquals(a[row * heads * headDim + order[r]], b[row * heads * headDim + r], 1e-5f);
                }
            }
        }
    }

    @Test
    void singleFileCheckpointOpensFromTheFileOrTheDirectory() throws IOException {
        Path dir = tmp.resolve("single");
        try (GgufFile g = GgufFile.open(gguf)) {
            HfFixtures.checkpointFromGguf(g, dir, "F32", 1);
        }
        try (Model a = Model.open(gguf, null, backend); Model b = Model.open(dir.resolve("model.safetensors"), null, backend)) {
            int[] prompt = a.tokenizer().encode(TEXTS[3], true, false);
            assertClose(logits(a, prompt), logits(b, prompt));
        }
        try (ModelFile f = ModelFiles.open(dir, null)) {
            assertEquals(1, ((SafetensorsModel) f).shards().size());
            assertEquals(48, f.tensorInfos().size());
        }
    }

    /** F16 and BF16 weights stay zero-copy (q/k copies keep their dtype) and give nearly the F32 logits. */
    @Test
    void halfPrecisionCheckpoints() throws IOException {
        for (String dtype : new String[] {"F16", "BF16"}) {
            Path dir = tmp.resolve(dtype);
            try (GgufFile g = GgufFile.open(gguf)) {
                HfFixtures.checkpointFromGguf(g, dir, dtype, 3);
            }
            try (Model a = Model.open(gguf, null, backend); Model b = Model.open(dir, null, backend)) {
                for (TensorInfo t : b.file().tensorInfos()) {
                    assertEquals(DType.valueOf(dtype), t.dtype(), t.name());
                }
                int[] prompt = a.tokenizer().encode(TEXTS[0], true, false);
                float[] la = logits(a, prompt);
                float[] lb = logits(b, prompt);
                double maxDiff = 0;
                double scale = 0;
                for (int i = 0; i < la.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(la[i] - lb[i]));
                    scale = Math.max(scale, Math.abs(la[i]));
                }
                double tolerance = dtype.equals("F16") ? 0.01 : 0.08;
                assertTrue(maxDiff < tolerance * scale, dtype + ": max logit difference " + maxDiff + " of " + scale);
            }
        }
    }

    @Test
    void llama3RopeScalingBecomesFrequencyFactors() {
        ObjectNode c = HfFixtures.JSON.createObjectNode();
        c.put("model_type", "llama").put("hidden_size", 4096).put("intermediate_size", 14336)
                .put("num_hidden_layers", 32).put("num_attention_heads", 32).put("num_key_value_heads", 8)
                .put("vocab_size", 128256).put("rope_theta", 500000.0).put("max_position_embeddings", 131072);
        c.putObject("rope_scaling").put("rope_type", "llama3").put("factor", 8.0).put("low_freq_factor", 1.0)
                .put("high_freq_factor", 4.0).put("original_max_position_embeddings", 8192);
        HfConfig cfg = HfConfig.parse(c, "config.json", "x");
        float[] f = cfg.ropeFreqs();
        assertEquals(64, f.length);
        // High frequencies unscaled, low ones divided by the factor, smooth in between (llama.cpp's values).
        assertEquals(1f, f[0]);
        assertEquals(8f, f[63]);
        for (int i = 1; i < f.length; i++) {
            assertTrue(f[i] >= f[i - 1], Arrays.toString(f));
        }
        assertEquals(500000f, (Float) cfg.metadata().get("llama.rope.freq_base"));
        assertEquals(128L, cfg.metadata().get("llama.rope.dimension_count"));
    }

    @Test
    void configErrorsNameTheField() throws IOException {
        Path dir = tmp.resolve("bad-config");
        try (GgufFile g = GgufFile.open(gguf)) {
            HfFixtures.checkpointFromGguf(g, dir, "F32", 1);
        }
        ObjectNode c = (ObjectNode) HfFixtures.JSON.readTree(dir.resolve("config.json").toFile());
        c.put("model_type", "gpt_neox");
        HfFixtures.writeJson(dir.resolve("config.json"), c);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(dir, null));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("model_type"), e.getMessage());

        c.put("model_type", "llama");
        c.remove("num_hidden_layers");
        HfFixtures.writeJson(dir.resolve("config.json"), c);
        e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(dir, null));
        assertTrue(e.getMessage().contains("num_hidden_layers"), e.getMessage());

        c.put("num_hidden_layers", 5);
        c.put("num_key_value_heads", 3);
        HfFixtures.writeJson(dir.resolve("config.json"), c);
        e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(dir, null));
        assertTrue(e.getMessage().contains("num_key_value_heads"), e.getMessage());
    }

    @Test
    void indexAndTensorNameErrors() throws IOException {
        Path dir = tmp.resolve("bad-index");
        try (GgufFile g = GgufFile.open(gguf)) {
            HfFixtures.checkpointFromGguf(g, dir, "F32", 2);
        }
        Path index = dir.resolve("model.safetensors.index.json");
        ObjectNode idx = (ObjectNode) HfFixtures.JSON.readTree(index.toFile());
        ObjectNode map = (ObjectNode) idx.get("weight_map");

        map.put("model.norm.weight", "../outside.safetensors");
        HfFixtures.writeJson(index, idx);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(dir, null));
        assertTrue(e.getMessage().contains("weight_map['model.norm.weight']"), e.getMessage());

        map.put("model.norm.weight", "model-00001-of-00002.safetensors"); // it is in the second shard
        HfFixtures.writeJson(index, idx);
        e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(dir, null));
        assertTrue(e.getMessage().contains("model.norm.weight") && e.getMessage().contains("00002"), e.getMessage());

        map.put("model.norm.weight", "model-00002-of-00002.safetensors");
        map.put("model.layers.0.mlp.frobnicator.weight", "model-00002-of-00002.safetensors");
        HfFixtures.writeJson(index, idx);
        e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(dir, null));
        assertTrue(e.getMessage().contains("frobnicator"), e.getMessage());

        // An unknown tensor is an error, not silently dropped.
        Path extra = tmp.resolve("unknown-tensor");
        try (GgufFile g = GgufFile.open(gguf)) {
            HfFixtures.checkpointFromGguf(g, extra, "F32", 1);
            var tensors = HfFixtures.hfTensors(g, "F32");
            tensors.put("model.layers.0.self_attn.q_norm.weight", HfFixtures.Data.f32(new float[8], 8));
            HfFixtures.writeShards(extra, tensors, 1);
        }
        e = assertThrows(ModelFormatException.class, () -> ModelFiles.open(extra, null));
        assertTrue(e.getMessage().contains("q_norm"), e.getMessage());
    }
}
