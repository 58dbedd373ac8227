package dev.isthmus.engine.gguf;

import dev.isthmus.engine.SharedData;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.format.TensorInfo;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class GgufFileTest {
    @Test
    void stories260K() {
        try (GgufFile f = GgufFile.open(SharedData.file("models/stories260K.gguf"))) {
            assertEquals("gguf", f.format());
            assertEquals(3, f.version());
            assertEquals(32, f.alignment());
            assertEquals(0, f.dataOffset() % 32);
            Metadata md = f.metadata();
            assertEquals("llama", md.require("general.architecture"));
            assertEquals(64, md.getInt("llama.embedding_length", 0));
            assertEquals(5, md.getInt("llama.block_count", 0));
            assertEquals(8, md.getInt("llama.attention.head_count", 0));
            assertEquals(4, md.getInt("llama.attention.head_count_kv", 0));
            assertEquals(172, md.getInt("llama.feed_forward_length", 0));
            assertEquals(2048, md.getInt("llama.context_length", 0));
            assertEquals(8, md.getInt("llama.rope.dimension_count", 0));
            assertEquals(1e-5f, md.getFloat("llama.attention.layer_norm_rms_epsilon", 0), 1e-9);
            assertEquals(GgufType.UINT32, f.valueType("llama.block_count"));
            assertEquals(GgufType.ARRAY, f.valueType("tokenizer.ggml.tokens"));
            assertEquals(GgufType.STRING, f.arrayElementType("tokenizer.ggml.tokens"));
            assertEquals("llama", md.getString("tokenizer.ggml.model", null));
            String[] tokens = md.getStringArray("tokenizer.ggml.tokens");
            assertEquals(512, tokens.length);
            assertEquals(List.of("<unk>", "<s>", "</s>", "<0x00>"), List.of(tokens).subList(0, 4));
            assertEquals(512, md.getFloatArray("tokenizer.ggml.scores").length);
            assertArrayEquals(new int[] {2, 3, 3, 6}, java.util.Arrays.copyOf(md.getIntArray("tokenizer.ggml.token_type"), 4));
            assertEquals(1, md.getInt("tokenizer.ggml.bos_token_id", -1));
            assertEquals(2, md.getInt("tokenizer.ggml.eos_token_id", -1));

            assertEquals(2 + 1 + 9 * 5, f.tensorInfos().size());
            assertShape(f, "token_embd.weight", DType.F32, 512, 64);
            assertShape(f, "output.weight", DType.F32, 512, 64);
            assertShape(f, "output_norm.weight", DType.F32, 64);
            assertShape(f, "blk.0.attn_q.weight", DType.F32, 64, 64);
            assertShape(f, "blk.0.attn_k.weight", DType.F32, 32, 64);
            assertShape(f, "blk.4.attn_v.weight", DType.F32, 32, 64);
            assertShape(f, "blk.2.ffn_gate.weight", DType.F32, 172, 64);
            assertShape(f, "blk.2.ffn_down.weight", DType.F32, 64, 172);
            assertShape(f, "blk.2.ffn_up.weight", DType.F32, 172, 64);
            readEverything(f);
            // The norms of a trained model are far from zero: a sanity check that data offsets are right.
            float[] norm = f.tensor("output_norm.weight").toFloatArray();
            double sum = 0;
            for (float v : norm) {
                assertTrue(Float.isFinite(v));
                sum += Math.abs(v);
            }
            assertTrue(sum / norm.length > 0.1, "mean |output_norm| " + sum / norm.length);
        }
    }

    @Test
    void llama2TinyRandom() {
        try (GgufFile f = GgufFile.open(SharedData.file("models/llama-2-tiny-random.gguf"))) {
            Metadata md = f.metadata();
            assertEquals("llama", md.require("general.architecture"));
            assertEquals(8, md.getInt("llama.embedding_length", 0));
            assertEquals(1, md.getInt("llama.block_count", 0));
            assertEquals(2, md.getInt("llama.attention.head_count", 0));
            assertEquals(32, md.getInt("llama.feed_forward_length", 0));
            assertEquals(32000, md.getStringArray("tokenizer.ggml.tokens").length);
            assertEquals(12, f.tensorInfos().size());
            assertShape(f, "token_embd.weight", DType.F16, 32000, 8);
            assertShape(f, "output.weight", DType.F16, 32000, 8);
            assertShape(f, "blk.0.attn_q.weight", DType.F16, 8, 8);
            assertShape(f, "blk.0.ffn_down.weight", DType.F16, 8, 32);
            assertShape(f, "blk.0.attn_norm.weight", DType.F32, 8);
            assertShape(f, "output_norm.weight", DType.F32, 8);
            for (TensorInfo t : f.tensorInfos()) {
                assertEquals(t.name().endsWith("norm.weight") ? DType.F32 : DType.F16, t.dtype(), t.name());
            }
            readEverything(f);
        }
    }

    @Test
    void everyVocabularyFileOpens() throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.list(SharedData.root().resolve("tokenizer-vectors"))) {
            files = s.filter(p -> p.toString().endsWith(".gguf")).sorted().toList();
        }
        assertEquals(9, files.size(), files.toString());
        for (Path p : files) {
            try (GgufFile f = GgufFile.open(p)) {
                assertTrue(f.tensorInfos().isEmpty(), p.toString());
                String[] tokens = f.metadata().getStringArray("tokenizer.ggml.tokens");
                assertNotNull(tokens, p.toString());
                assertTrue(tokens.length > 1000, p + ": " + tokens.length);
                assertNotNull(f.metadata().getString("tokenizer.ggml.model", null), p.toString());
                assertNotNull(f.metadata().getString("general.architecture", null), p.toString());
            }
        }
    }

    @Test
    void missingTensorAndClosedFile() {
        GgufFile f = GgufFile.open(SharedData.file("models/stories260K.gguf"));
        assertFalse(f.hasTensor("nope"));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> f.tensor("nope"));
        assertTrue(e.getMessage().contains("'nope'") && e.getMessage().contains("stories260K.gguf"), e.getMessage());
        f.close();
        f.close();
        assertThrows(IllegalStateException.class, () -> f.tensor("token_embd.weight"));
    }

    static void assertShape(GgufFile f, String name, DType dtype, long... shape) {
        assertTrue(f.hasTensor(name), name);
        TensorInfo t = f.tensorInfo(name);
        assertEquals(dtype, t.dtype(), name);
        assertArrayEquals(shape, t.shape(), name);
        Tensor x = f.tensor(name);
        assertArrayEquals(shape, x.shape(), name);
        assertEquals(t.byteSize(), x.segment().byteSize(), name);
    }

    /** Touches every byte of every tensor: all offsets and sizes lie inside the mapping. */
    static void readEverything(GgufFile f) {
        for (TensorInfo t : f.tensorInfos()) {
            Tensor x = f.tensor(t.name());
            assertEquals(Tensor.byteSizeOf(t.dtype(), t.shape()), t.byteSize(), t.name());
            assertEquals(t.byteSize(), x.segment().toArray(ValueLayout.JAVA_BYTE).length, t.name());
            if (t.dtype() == DType.F32) {
                for (float v : x.toFloatArray()) {
                    assertTrue(Float.isFinite(v), t.name());
                }
            }
        }
    }
}
