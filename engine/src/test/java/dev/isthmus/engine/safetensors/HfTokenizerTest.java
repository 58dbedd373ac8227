package dev.isthmus.engine.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.tokenizer.Tokenizer;
import dev.isthmus.engine.tokenizer.Tokenizers;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * tokenizer.json files in the shapes Hugging Face ships (written by the test from llama.cpp's vocabulary
 * GGUFs) convert to metadata whose tokenizer passes llama.cpp's tokenizer test vectors for that family.
 */
class HfTokenizerTest {
    private static final String SEPARATOR = "\n__ggml_vocab_test__\n";

    private static Metadata vocab(String family) {
        try (GgufFile g = GgufFile.open(SharedData.file("tokenizer-vectors/ggml-vocab-" + family + ".gguf"))) {
            return g.metadata();
        }
    }

    private static Metadata convert(ObjectNode tokenizerJson, ObjectNode config, int vocabSize) {
        return new Metadata(HfTokenizer.convert(tokenizerJson, config, vocabSize, -1, -1, "tokenizer.json"), "test");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"llama-spm, false", "llama-bpe, true", "gpt-2, false"})
    void passesTheFamilysTokenizerVectors(String family, boolean pairMerges) throws IOException {
        Metadata gguf = vocab(family);
        String[] tokens = gguf.getStringArray("tokenizer.ggml.tokens");
        ObjectNode json = gguf.getString("tokenizer.ggml.model", "").equals("llama")
                ? HfFixtures.spmTokenizerJson(gguf) : HfFixtures.bpeTokenizerJson(gguf, pairMerges);
        // Through text, as the file would be read (except the 128k-token Llama 3 vocabulary: slow, and the same
        // parser as for the others).
        ObjectNode parsed = family.equals("llama-bpe") ? json : HfJson.parseObject(HfFixtures.utf8(json), "tokenizer.json");
        Metadata m = convert(parsed, null, tokens.length);
        assertEquals(gguf.getString("tokenizer.ggml.model", null), m.getString("tokenizer.ggml.model", null));
        assertEquals(gguf.getString("tokenizer.ggml.pre", "default").replace("default", "-"),
                m.getString("tokenizer.ggml.pre", "-"));
        assertArrayEquals(tokensOfUsedIds(gguf), tokensOfUsedIds(m));
        assertArrayEquals(gguf.getIntArray("tokenizer.ggml.token_type"), m.getIntArray("tokenizer.ggml.token_type"));

        Tokenizer tok = Tokenizers.fromMetadata(m);
        Path inp = SharedData.file("tokenizer-vectors/ggml-vocab-" + family + ".gguf.inp");
        Path out = SharedData.file("tokenizer-vectors/ggml-vocab-" + family + ".gguf.out");
        List<String> inputs = Arrays.asList(Files.readString(inp, StandardCharsets.UTF_8).split(SEPARATOR, -1));
        List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
        List<String> failures = new ArrayList<>();
        int n = Math.min(inputs.size(), lines.size());
        assertTrue(n >= 40, family + ": " + n + " cases");
        for (int i = 0; i < n; i++) {
            String line = lines.get(i).strip();
            int[] expected = line.isEmpty() ? new int[0] : Arrays.stream(line.split(" ")).mapToInt(Integer::parseInt).toArray();
            int[] actual = tok.encode(inputs.get(i), false, false);
            if (!Arrays.equals(expected, actual)) {
                failures.add(i + ": " + Arrays.toString(expected) + " != " + Arrays.toString(actual));
            }
        }
        assertEquals(List.of(), failures, family);
    }

    /** Texts of used ids ({@code [PAD…]} placeholders differ in spelling and are not compared). */
    private static String[] tokensOfUsedIds(Metadata m) {
        String[] t = m.getStringArray("tokenizer.ggml.tokens");
        int[] types = m.getIntArray("tokenizer.ggml.token_type");
        for (int i = 0; i < t.length; i++) {
            if (types[i] == 5) {
                t[i] = "";
            }
        }
        return t;
    }

    /** Qwen2's split expression (its vectors pass too, but its 152k vocabulary makes that test slow). */
    @Test
    void recognizesTheQwen2Family() {
        Metadata gguf = vocab("gpt-2");
        LinkedHashMap<String, Object> qwen = new LinkedHashMap<>(gguf.asMap());
        qwen.put("tokenizer.ggml.pre", "qwen2");
        ObjectNode json = HfFixtures.bpeTokenizerJson(new Metadata(qwen, "q"), false);
        Metadata m = convert(json, null, -1);
        assertEquals("qwen2", m.getString("tokenizer.ggml.pre", null));
        assertEquals("gpt2", m.getString("tokenizer.ggml.model", null));
        // Qwen2 splits digits one by one, GPT-2 in runs.
        Tokenizer tok = Tokenizers.fromMetadata(m);
        assertEquals(4, tok.encode("2024", false, false).length);
    }

    @Test
    void specialTokensAndBosPolicy() {
        Metadata gguf = vocab("gpt-2");
        ObjectNode json = HfFixtures.bpeTokenizerJson(gguf, false);
        // A template that prepends a special token (as Llama 3's prepends <|begin_of_text|>).
        ObjectNode post = json.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", "<|endoftext|>").put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        Metadata m = convert(json, null, 50257);
        assertEquals(50256L, m.get("tokenizer.ggml.bos_token_id"));
        assertEquals(true, m.get("tokenizer.ggml.add_bos_token"));
        assertEquals(false, m.get("tokenizer.ggml.add_eos_token"));
        Tokenizer tok = Tokenizers.fromMetadata(m);
        assertArrayEquals(new int[] {50256, 15496}, tok.encode("Hello", true, false));
        assertArrayEquals(new int[] {50256, 15496}, tok.encode("<|endoftext|>Hello", false, true));
        // tokenizer_config.json wins over the template.
        ObjectNode cfg = HfFixtures.JSON.createObjectNode();
        cfg.put("add_bos_token", false);
        cfg.putObject("eos_token").put("content", "!");
        m = convert(json, cfg, 50257);
        assertEquals(false, m.get("tokenizer.ggml.add_bos_token"));
        assertEquals(0L, m.get("tokenizer.ggml.eos_token_id"));
        // config.json's ids are the last resort; ids beyond the model's vocabulary are errors.
        json.remove("post_processor");
        m = new Metadata(HfTokenizer.convert(json, null, 50257, 50256, 50255, "t"), "t");
        assertEquals(50255L, m.get("tokenizer.ggml.eos_token_id"));
        assertEquals(false, m.get("tokenizer.ggml.add_bos_token"));
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> HfTokenizer.convert(json, null, 1000, -1, -1, "tokenizer.json"));
        assertTrue(e.getMessage().contains("vocab_size"), e.getMessage());
    }

    @Test
    void metaspaceAndUnigramVariants() {
        Metadata gguf = vocab("llama-spm");
        ObjectNode json = HfFixtures.spmTokenizerJson(gguf);
        // Newer Llama 2 files: no normalizer, a Metaspace pre-tokenizer that prepends ▁ to the first word.
        json.putNull("normalizer");
        json.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "\u2581")
                .put("prepend_scheme", "first").put("split", false);
        Metadata m = convert(json, null, -1);
        assertEquals(true, m.get("tokenizer.ggml.add_space_prefix"));
        json.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "\u2581")
                .put("prepend_scheme", "never").put("split", false);
        assertEquals(false, convert(json, null, -1).get("tokenizer.ggml.add_space_prefix"));

        // Unigram keeps its scores.
        ObjectNode uni = HfFixtures.JSON.createObjectNode();
        ObjectNode model = uni.putObject("model");
        model.put("type", "Unigram").put("unk_id", 0).put("byte_fallback", true);
        ArrayNode v = model.putArray("vocab");
        String[] tokens = gguf.getStringArray("tokenizer.ggml.tokens");
        float[] scores = gguf.getFloatArray("tokenizer.ggml.scores");
        for (int i = 0; i < tokens.length; i++) {
            v.addArray().add(tokens[i]).add(scores[i]);
        }
        uni.putObject("normalizer").put("type", "Prepend").put("prepend", "\u2581");
        Metadata u = convert(uni, null, -1);
        assertArrayEquals(scores, u.getFloatArray("tokenizer.ggml.scores"));
        assertEquals(2, u.getIntArray("tokenizer.ggml.token_type")[0]);
        assertEquals(6, u.getIntArray("tokenizer.ggml.token_type")[3]);
        Tokenizer a = Tokenizers.fromMetadata(gguf);
        Tokenizer b = Tokenizers.fromMetadata(u);
        for (String s : new String[] {"Hello world", " leading space", "caf\u00e9 \ud83d\ude00 tab\tend"}) {
            assertArrayEquals(a.encode(s, true, false), b.encode(s, true, false), s);
        }
    }

    @Test
    void unsupportedTokenizersNameTheField() {
        ObjectNode wp = HfFixtures.JSON.createObjectNode();
        wp.putObject("model").put("type", "WordPiece").putObject("vocab").put("a", 0);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> convert(wp, null, -1));
        assertTrue(e.getMessage().contains("model.type") && e.getMessage().contains("WordPiece"), e.getMessage());

        Metadata gguf = vocab("gpt-2");
        ObjectNode json = HfFixtures.bpeTokenizerJson(gguf, false);
        ObjectNode seq = json.putObject("pre_tokenizer");
        seq.put("type", "Sequence");
        ArrayNode list = seq.putArray("pretokenizers");
        list.addObject().put("type", "Split").putObject("pattern").put("Regex", "\\p{N}{1,7}");
        list.addObject().put("type", "ByteLevel").put("use_regex", false);
        e = assertThrows(ModelFormatException.class, () -> convert(json, null, -1));
        assertTrue(e.getMessage().contains("pre_tokenizer") && e.getMessage().contains("{1,7}"), e.getMessage());

        ObjectNode dup = HfFixtures.bpeTokenizerJson(gguf, false);
        ((ObjectNode) dup.get("model").get("vocab")).put("Ġt", 5);
        e = assertThrows(ModelFormatException.class, () -> convert(dup, null, -1));
        assertTrue(e.getMessage().contains("model.vocab['Ġt']"), e.getMessage());
    }
}
