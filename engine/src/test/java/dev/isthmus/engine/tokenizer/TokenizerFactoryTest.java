package dev.isthmus.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFormatException;
import java.util.LinkedHashMap;
import org.junit.jupiter.api.Test;

/** Choosing and building tokenizers from metadata, including what is rejected. */
class TokenizerFactoryTest {
    /** A tiny byte-level BPE vocabulary: the 256 byte characters, "ab" and "abc". */
    static LinkedHashMap<String, Object> tinyBpe(String pre) {
        String[] tokens = new String[258];
        for (int b = 0; b < 256; b++) {
            tokens[b] = String.valueOf(ByteUnicode.toChar(b));
        }
        tokens[256] = "ab";
        tokens[257] = "abc";
        LinkedHashMap<String, Object> values = new LinkedHashMap<>();
        values.put("tokenizer.ggml.model", "gpt2");
        if (pre != null) {
            values.put("tokenizer.ggml.pre", pre);
        }
        values.put("tokenizer.ggml.tokens", tokens);
        values.put("tokenizer.ggml.merges", new String[] {"a b", "ab c"});
        return values;
    }

    @Test
    void unknownPreTokenizerIsAnErrorNamingIt() {
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> Tokenizers.fromMetadata(new Metadata(tinyBpe("no-such-pre"))));
        assertTrue(e.getMessage().contains("'no-such-pre'"), e.getMessage());
        assertTrue(e.getMessage().contains("tokenizer.ggml.pre"), e.getMessage());
    }

    @Test
    void unknownModelIsAnErrorNamingIt() {
        LinkedHashMap<String, Object> values = tinyBpe("gpt-2");
        values.put("tokenizer.ggml.model", "bert");
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Tokenizers.fromMetadata(new Metadata(values)));
        assertTrue(e.getMessage().contains("'bert'"), e.getMessage());
    }

    @Test
    void missingPiecesAreErrorsNamingTheKey() {
        LinkedHashMap<String, Object> noMerges = tinyBpe("gpt-2");
        noMerges.remove("tokenizer.ggml.merges");
        assertTrue(assertThrows(ModelFormatException.class, () -> Tokenizers.fromMetadata(new Metadata(noMerges)))
                .getMessage().contains("tokenizer.ggml.merges"));
        LinkedHashMap<String, Object> noModel = tinyBpe("gpt-2");
        noModel.remove("tokenizer.ggml.model");
        assertTrue(assertThrows(ModelFormatException.class, () -> Tokenizers.fromMetadata(new Metadata(noModel)))
                .getMessage().contains("tokenizer.ggml.model"));
    }

    @Test
    void tinyBpeMergesByRankAndHasNoBos() {
        Tokenizer tokenizer = Tokenizers.fromMetadata(new Metadata(tinyBpe(null))); // no pre: llama.cpp's "default"
        // token ids of single bytes are their byte values here, since printable bytes spell themselves
        assertArrayEquals(new int[] {257, 256, 'x'}, tokenizer.encode("abcabx", true, false));
        assertEquals(-1, tokenizer.bos());
        assertEquals(-1, tokenizer.eos());
        assertEquals("abcabx", tokenizer.decode(tokenizer.encode("abcabx")));
    }
}
