package dev.isthmus.engine.llama2c;

import dev.isthmus.engine.SharedData;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.api.DType;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.gguf.GgufType;
import dev.isthmus.engine.gguf.GgufWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

class Llama2cCheckpointTest {
    @TempDir
    Path dir;

    private static Path bin() {
        return SharedData.file("llama2c/stories260K.bin");
    }

    private static Path tok512() {
        return SharedData.file("llama2c/tok512.bin");
    }

    @Test
    void configOfStories260K() {
        Llama2cCheckpoint.Config c = Llama2cCheckpoint.readConfig(bin());
        assertEquals(new Llama2cCheckpoint.Config(64, 172, 5, 8, 4, 512, true, 512), c);
        assertEquals(8, c.headSize());
        assertEquals(32, c.kvDim());
    }

    /** The same model in two independently produced formats must give bit-identical tensors. */
    @Test
    void tensorsAreIdenticalToTheGgufConversion() {
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(bin(), tok512());
             GgufFile gguf = GgufFile.open(SharedData.file("models/stories260K.gguf"))) {
            assertEquals("llama2c", ck.format());
            assertEquals(2 + 9 * 5, ck.tensorInfos().size());
            for (TensorInfo t : ck.tensorInfos()) {
                assertTrue(gguf.hasTensor(t.name()), t.name());
                TensorInfo g = gguf.tensorInfo(t.name());
                assertEquals(DType.F32, t.dtype());
                assertEquals(g.dtype(), t.dtype(), t.name());
                assertArrayEquals(g.shape(), t.shape(), t.name());
                assertEquals(-1, ck.tensor(t.name()).segment().mismatch(gguf.tensor(t.name()).segment()), t.name());
            }
            // The checkpoint shares its classifier (vocab_size > 0); the GGUF stores a copy of the embedding.
            assertFalse(ck.hasTensor("output.weight"));
            assertEquals(-1, gguf.tensor("output.weight").segment().mismatch(ck.tensor("token_embd.weight").segment()));
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> ck.tensor("output.weight"));
            assertTrue(e.getMessage().contains("shared"), e.getMessage());
            // Every tensor is covered exactly once: the layout accounts for the whole file except the RoPE tables.
            long covered = ck.tensorInfos().stream().mapToLong(TensorInfo::byteSize).sum();
            assertEquals(28 + covered + 2L * 4 * (512 * 8 / 2), ck.config().expectedFileSize());
        }
    }

    @Test
    void metadataMatchesTheGgufConversion() {
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(bin(), tok512());
             GgufFile gguf = GgufFile.open(SharedData.file("models/stories260K.gguf"))) {
            Metadata m = ck.metadata();
            Metadata g = gguf.metadata();
            assertEquals(List.of("general.architecture", "general.name", "llama.context_length",
                    "llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
                    "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count",
                    "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon", "llama.vocab_size",
                    "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                    "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
                    "tokenizer.ggml.add_space_prefix"), List.copyOf(m.asMap().keySet()));
            for (String k : List.of("general.architecture", "llama.embedding_length", "llama.block_count",
                    "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
                    "llama.rope.dimension_count", "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model",
                    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id")) {
                assertEquals(g.get(k), m.get(k), k);
            }
            assertArrayEquals(g.getStringArray("tokenizer.ggml.tokens"), m.getStringArray("tokenizer.ggml.tokens"));
            assertArrayEquals(g.getFloatArray("tokenizer.ggml.scores"), m.getFloatArray("tokenizer.ggml.scores"));
            assertArrayEquals(g.getIntArray("tokenizer.ggml.token_type"), m.getIntArray("tokenizer.ggml.token_type"));
            assertEquals("stories260K", m.getString("general.name", null));
            // llama2.c's seq_len (512) is what the model was trained with; the GGUF converter wrote 2048.
            assertEquals(512, m.getInt("llama.context_length", 0));
            assertEquals(512, m.getInt("llama.vocab_size", 0));
            assertEquals(10000f, m.getFloat("llama.rope.freq_base", 0));
            assertTrue(m.getBool("tokenizer.ggml.add_bos_token", false));
            assertTrue(m.getBool("tokenizer.ggml.add_space_prefix", false));
        }
    }

    @Test
    void llama2TokenizerBin() {
        Metadata t = Llama2cCheckpoint.readTokenizer(SharedData.file("llama2c/tokenizer.bin"), 32000);
        String[] tokens = t.getStringArray("tokenizer.ggml.tokens");
        assertEquals(32000, tokens.length);
        // llama2.c's test.c: "I believe the meaning of life is" -> 1 306 4658 278 6593 310 2834 338.
        String[] expected = {"<s>", "▁I", "▁believe", "▁the", "▁meaning", "▁of", "▁life", "▁is"};
        int[] ids = {1, 306, 4658, 278, 6593, 310, 2834, 338};
        for (int i = 0; i < ids.length; i++) {
            assertEquals(expected[i], tokens[ids[i]], "id " + ids[i]);
        }
        int[] types = t.getIntArray("tokenizer.ggml.token_type");
        assertArrayEquals(new int[] {2, 3, 3, 6}, Arrays.copyOf(types, 4));
        assertEquals(6, types[3 + 255]);
        assertEquals(1, types[259]);
        // Identical to the Llama-2 vocabulary as llama.cpp converted it to GGUF.
        try (GgufFile g = GgufFile.open(SharedData.file("models/llama-2-tiny-random.gguf"))) {
            assertArrayEquals(g.metadata().getStringArray("tokenizer.ggml.tokens"), tokens);
            assertArrayEquals(g.metadata().getFloatArray("tokenizer.ggml.scores"), t.getFloatArray("tokenizer.ggml.scores"));
            assertArrayEquals(g.metadata().getIntArray("tokenizer.ggml.token_type"), types);
        }
        // The checkpoint's vocab size decides how many tokens are read.
        assertEquals(512, Llama2cCheckpoint.readTokenizer(SharedData.file("llama2c/tokenizer.bin"), 512)
                .getStringArray("tokenizer.ggml.tokens").length);
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> Llama2cCheckpoint.readTokenizer(tok512(), 513));
        assertMessage(e, "tok512.bin", "513");
    }

    @Test
    void convertsToGguf() throws IOException {
        Path out = dir.resolve("converted.gguf");
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(bin(), tok512())) {
            GgufWriter.copyOf(ck).write(out);
        }
        try (GgufFile converted = GgufFile.open(out);
             GgufFile reference = GgufFile.open(SharedData.file("models/stories260K.gguf"))) {
            // The integer keys get llama.cpp's types (uint32), not just the same Java values.
            assertEquals(GgufType.UINT32, converted.valueType("llama.block_count"));
            assertEquals(GgufType.INT32, converted.arrayElementType("tokenizer.ggml.token_type"));
            assertArrayEquals(reference.metadata().getStringArray("tokenizer.ggml.tokens"),
                    converted.metadata().getStringArray("tokenizer.ggml.tokens"));
            for (TensorInfo t : converted.tensorInfos()) {
                assertEquals(-1, converted.tensor(t.name()).segment().mismatch(reference.tensor(t.name()).segment()),
                        t.name());
            }
            assertEquals(47, converted.tensorInfos().size());
        }
    }

    @Test
    void openWithoutTokenizerHasNoTokenizerKeys() {
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(bin(), null)) {
            assertNull(ck.metadata().get("tokenizer.ggml.tokens"));
            assertEquals(64, ck.metadata().getInt("llama.embedding_length", 0));
        }
    }

    // ---- hostile headers and tokenizers ----

    private Path checkpoint(int[] header, long floats) throws IOException {
        Path p = dir.resolve("bad.bin");
        ByteBuffer b = ByteBuffer.allocate(28 + (int) (4 * floats)).order(ByteOrder.LITTLE_ENDIAN);
        for (int h : header) {
            b.putInt(h);
        }
        Files.write(p, b.array());
        return p;
    }

    private static long floats(int dim, int hidden, int layers, int heads, int kv, int vocab, int seq) {
        long hs = dim / heads;
        long kvDim = kv * hs;
        long n = (long) Math.abs(vocab) * dim + layers * (2L * dim + 2L * dim * dim + 2L * dim * kvDim + 3L * dim * hidden)
                + dim + 2 * (seq * hs / 2);
        return vocab < 0 ? n + (long) -vocab * dim : n;
    }

    @Test
    void syntheticCheckpointsWithSeparateClassifier() throws IOException {
        Path p = checkpoint(new int[] {8, 16, 2, 2, 1, -10, 4}, floats(8, 16, 2, 2, 1, -10, 4));
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(p, null)) {
            assertFalse(ck.config().sharedClassifier());
            assertTrue(ck.hasTensor("output.weight"));
            assertArrayEquals(new long[] {10, 8}, ck.tensorInfo("output.weight").shape());
            assertArrayEquals(new long[] {4, 8}, ck.tensorInfo("blk.1.attn_k.weight").shape());
            assertEquals(Files.size(p), ck.tensorInfo("output.weight").offset() + 10 * 8 * 4);
        }
    }

    @Test
    void badHeaders() throws IOException {
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {0, 16, 2, 2, 1, 10, 4}, 0)), "dim", "0");
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {8, 16, -2, 2, 1, 10, 4}, 0)), "n_layers", "-2");
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {8, 16, 2, 2, 1, 0, 4}, 0)), "vocab_size", "0");
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {8, 16, 2, 3, 1, 10, 4}, 0)), "n_heads",
                "3 does not divide dim 8");
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {8, 16, 2, 2, 3, 10, 4}, 0)), "n_kv_heads", "3");
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {6, 16, 2, 2, 1, 10, 4}, 0)), "head size", "odd");
        long n = floats(8, 16, 2, 2, 1, 10, 4);
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {8, 16, 2, 2, 1, 10, 4}, n - 1)), "file size",
                String.valueOf(28 + 4 * (n - 1)), String.valueOf(28 + 4 * n), "shared");
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {8, 16, 2, 2, 1, 10, 4}, n + 1)), "file size",
                "shared");
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {8, 16, 2, 2, 1, -10, 4}, n)), "file size",
                "separate");
        int max = Integer.MAX_VALUE;
        expect(() -> Llama2cCheckpoint.readConfig(checkpoint(new int[] {1 << 30, max, max, 2, 1, max, max}, 0)),
                "llama2.c header");
        Path tiny = dir.resolve("tiny.bin");
        Files.write(tiny, new byte[10]);
        expect(() -> Llama2cCheckpoint.readConfig(tiny), "llama2.c header", "truncated");
        // A valid checkpoint with a tokenizer that has too few tokens.
        Path ok = checkpoint(new int[] {8, 16, 2, 2, 1, 600, 4}, floats(8, 16, 2, 2, 1, 600, 4));
        expect(() -> Llama2cCheckpoint.open(ok, tok512()), "tok512.bin", "600");
    }

    private Path tokenizer(int maxLen, Object... scoreLenBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN).putInt(maxLen);
        for (int i = 0; i < scoreLenBytes.length; i += 3) {
            b.putFloat((Float) scoreLenBytes[i]).putInt((Integer) scoreLenBytes[i + 1]).put(((String) scoreLenBytes[i + 2]).getBytes());
        }
        Path p = dir.resolve("tok.bin");
        Files.write(p, Arrays.copyOf(b.array(), b.position()));
        return p;
    }

    @Test
    void badTokenizers() throws IOException {
        expect(() -> Llama2cCheckpoint.readTokenizer(tokenizer(0), 1), "max_token_length", "0");
        expect(() -> Llama2cCheckpoint.readTokenizer(tokenizer(4, 0f, -1, ""), 1), "token #0 length", "-1");
        expect(() -> Llama2cCheckpoint.readTokenizer(tokenizer(4, 0f, 5, "abcde"), 1), "token #0 length", "5",
                "max_token_length 4");
        expect(() -> Llama2cCheckpoint.readTokenizer(tokenizer(8, 0f, 1, "a", 0f, 8, "abc"), 2), "token #1 length", "8");
        expect(() -> Llama2cCheckpoint.readTokenizer(tokenizer(8, 0f, 1, "a", 0f, 1, "b"), 3), "3 tokens");
        expect(() -> Llama2cCheckpoint.readTokenizer(tokenizer(8, 0f, 6, "aaaaaa", 0f, 6, "bbbbbb"), 3), "token #2",
                "truncated", "only 2 of 3");
        expect(() -> Llama2cCheckpoint.readTokenizer(tokenizer(8, 0f, 6, "aaaaaa", 0f, 7, "bbbbbb"), 2), "token #1 length",
                "7", "past the end");
        Path empty = dir.resolve("empty.bin");
        Files.write(empty, new byte[0]);
        expect(() -> Llama2cCheckpoint.readTokenizer(empty, 1), "max_token_length", "truncated");
    }

    private static void expect(Executable x, String... parts) {
        Throwable t = assertThrows(Throwable.class, x);
        assertTrue(t instanceof ModelFormatException, () -> "expected ModelFormatException, got " + t);
        assertMessage(t, parts);
    }

    private static void assertMessage(Throwable e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), () -> "message lacks \"" + p + "\": " + e.getMessage());
        }
    }
}
