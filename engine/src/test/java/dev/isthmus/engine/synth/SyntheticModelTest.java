package dev.isthmus.engine.synth;

import dev.isthmus.api.DType;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.model.ModelConfig;
import dev.isthmus.engine.quant.QuantRecipe;
import dev.isthmus.engine.tokenizer.TokenType;
import dev.isthmus.engine.tokenizer.Tokenizer;
import dev.isthmus.engine.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticModelTest {
    @Test
    void shapesHaveTheRealModelsSizes() {
        assertEquals(1_235_814_400L, SyntheticModel.Shape.LLAMA_3_2_1B.parameterCount());
        assertEquals(1_100_048_384L, SyntheticModel.Shape.TINYLLAMA_1_1B.parameterCount());
        assertEquals(64, SyntheticModel.Shape.LLAMA_3_2_1B.headDim());
        assertEquals(SyntheticModel.Shape.TINY, SyntheticModel.Shape.named("TINY"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SyntheticModel.Shape.named("gpt-5"));
        assertTrue(e.getMessage().contains("llama-3.2-1b, tinyllama-1.1b, tiny"), e.getMessage());
    }

    @Test
    void tensorsFollowTheShape() {
        List<QuantRecipe.Tensor> tied = new SyntheticModel(SyntheticModel.Shape.LLAMA_3_2_1B, 0).tensors();
        assertEquals(2 + 16 * 9, tied.size());
        assertTrue(tied.stream().noneMatch(t -> t.name().equals("output.weight")));
        List<QuantRecipe.Tensor> tiny = new SyntheticModel(SyntheticModel.Shape.TINY, 0).tensors();
        assertEquals("output.weight", tiny.get(tiny.size() - 1).name());
        assertArrayEquals(new long[] {128, 256}, tiny.stream().filter(t -> t.name().equals("blk.1.attn_k.weight"))
                .findFirst().orElseThrow().shape());
        long elements = tiny.stream().mapToLong(t -> java.util.Arrays.stream(t.shape()).reduce(1, (a, b) -> a * b)).sum();
        assertEquals(SyntheticModel.Shape.TINY.parameterCount(), elements);
    }

    /** Rows depend on seed, tensor and row only; values look like N(0, 0.02); norms are ones. */
    @Test
    void rowsAreSeededNormalValues() {
        SyntheticModel a = new SyntheticModel(SyntheticModel.Shape.TINY, 7);
        float[] r1 = new float[256];
        float[] r2 = new float[256];
        a.row("blk.0.attn_q.weight", 3, r1);
        new SyntheticModel(SyntheticModel.Shape.TINY, 7).row("blk.0.attn_q.weight", 3, r2);
        assertArrayEquals(r1, r2);
        new SyntheticModel(SyntheticModel.Shape.TINY, 8).row("blk.0.attn_q.weight", 3, r2);
        assertFalse(java.util.Arrays.equals(r1, r2), "another seed gives the same row");
        a.row("blk.0.attn_q.weight", 4, r2);
        assertFalse(java.util.Arrays.equals(r1, r2), "neighbouring rows are equal");
        a.row("blk.1.attn_q.weight", 3, r2);
        assertFalse(java.util.Arrays.equals(r1, r2), "another tensor gives the same row");

        double sum = 0;
        double sq = 0;
        int n = 0;
        float[] row = new float[512];
        for (int r = 0; r < 256; r++) {
            a.row("blk.0.ffn_down.weight", r, row);
            for (float v : row) {
                sum += v;
                sq += v * v;
                n++;
            }
        }
        double mean = sum / n;
        double std = Math.sqrt(sq / n - mean * mean);
        assertEquals(0, mean, 3e-4);
        assertEquals(SyntheticModel.WEIGHT_STD, std, 3e-4);
        a.row("blk.0.ffn_norm.weight", 0, r1);
        for (float v : r1) {
            assertEquals(1f, v);
        }
        assertThrows(IllegalArgumentException.class, () -> a.row("blk.0.ffn_norm.weight", 1, new float[256]));
        assertThrows(IllegalArgumentException.class, () -> a.row("nope", 0, new float[256]));
    }

    /** The file has the metadata a Llama GGUF needs and a byte-level vocabulary that round-trips text. */
    @Test
    void fileIsAModelWithAWorkingTokenizer(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tiny.gguf");
        List<String> seen = new ArrayList<>();
        new SyntheticModel(SyntheticModel.Shape.TINY, 3).write(file, QuantRecipe.named("Q8_0"), 2,
                c -> seen.add(c.tensor().name()));
        try (ModelFile m = ModelFiles.open(file, null)) {
            assertEquals(m.tensorInfos().stream().map(TensorInfo::name).toList(), seen);
            assertEquals(DType.Q8_0, m.tensor("output.weight").dtype());
            assertEquals(DType.F32, m.tensor("output_norm.weight").dtype());
            ModelConfig c = ModelConfig.from(m.metadata(), 512, "tiny");
            assertEquals(256, c.dim());
            assertEquals(2, c.kvHeads());
            assertEquals(7, m.metadata().getLong("general.file_type", -1));
            assertEquals("tiny", m.metadata().getString(SyntheticModel.KEY_SHAPE, null));
            assertEquals(3, m.metadata().getLong(SyntheticModel.KEY_SEED, -1));
            assertEquals(dev.isthmus.engine.gguf.GgufType.UINT32, ((GgufFile) m).valueType("llama.block_count"));

            Tokenizer tok = Tokenizers.fromMetadata(m.metadata());
            assertEquals(512, tok.vocabSize());
            assertEquals(510, tok.bos());
            assertEquals(511, tok.eos());
            assertTrue(tok.isEndOfGeneration(511));
            assertEquals(TokenType.CONTROL, tok.tokenType(510));
            String text = "The quick brown fox jumps over the lazy dog, 2024 times! Ünïcödé → ok";
            int[] ids = tok.encode(text);
            assertEquals(510, ids[0], "BOS first");
            assertTrue(ids.length < text.length(), "merges shorten common English: " + ids.length + " tokens");
            assertEquals(text, tok.decode(ids));
        }
    }

    /** A 128k vocabulary is mostly made-up words, all distinct, and they decode to themselves. */
    @Test
    void largeVocabulariesAreFilledWithWords() {
        SyntheticVocabulary v = new SyntheticVocabulary(128256);
        assertEquals(128256, v.tokens.length);
        assertEquals(128256, new java.util.HashSet<>(List.of(v.tokens)).size());
        assertEquals("Ġ", v.tokens[' ']);
        assertEquals("A", v.tokens['A']);
        assertTrue(v.merges.length > 50, "merges: " + v.merges.length);
        assertTrue(v.tokens[100_000].matches("Ġ([bcdfghjklmnprstvwz][aeiou])+"), v.tokens[100_000]);
    }
}
