package dev.isthmus.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.engine.llama2c.Llama2cCheckpoint;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/** Tokenizers from llama2.c's tokenizer.bin files, which carry tokens and scores only. */
class TokenizerLlama2cTest {
    private static Tokenizer llama2c(String file, int vocabSize) {
        return Tokenizers.fromMetadata(Llama2cCheckpoint.readTokenizer(Vocabs.file("llama2c/" + file), vocabSize));
    }

    /** The assertion of llama2.c's test.c. */
    @Test
    void llama2cReferencePrompt() {
        Tokenizer tokenizer = llama2c("tokenizer.bin", 32000);
        int[] ids = tokenizer.encode("I believe the meaning of life is", true, false);
        assertArrayEquals(new int[] {1, 306, 4658, 278, 6593, 310, 2834, 338}, ids);
        assertEquals("I believe the meaning of life is", tokenizer.decode(ids));
    }

    /** tokenizer.bin is the Llama-2 vocabulary, so it must tokenize every vector exactly as llama-spm's GGUF. */
    @Test
    void llama2cVocabularyReproducesTheSentencePieceVectors() throws IOException {
        Tokenizer tokenizer = llama2c("tokenizer.bin", 32000);
        for (TokenizerVectorsTest.Case c : TokenizerVectorsTest.cases("llama-spm")) {
            assertArrayEquals(c.expected(), tokenizer.encode(c.input(), false, false), TokenizerVectorsTest.quote(c.input()));
            assertEquals(c.input(), tokenizer.decode(c.expected()));
        }
    }

    /** tok512.bin and stories260K.gguf hold the same 512-token vocabulary. */
    @Test
    void tok512MatchesTheGgufOfTheSameModel() throws IOException {
        Tokenizer fromBin = llama2c("tok512.bin", 512);
        Tokenizer fromGguf = Tokenizers.fromMetadata(Vocabs.ggufMetadata(Vocabs.file("models/stories260K.gguf")));
        assertEquals(fromGguf.vocabSize(), fromBin.vocabSize());
        for (TokenizerVectorsTest.Case c : TokenizerVectorsTest.cases("llama-spm")) {
            int[] ids = fromGguf.encode(c.input(), true, false);
            assertArrayEquals(ids, fromBin.encode(c.input(), true, false), TokenizerVectorsTest.quote(c.input()));
            assertEquals(c.input(), fromBin.decode(ids));
        }
    }
}
