package dev.isthmus.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

class TokenizerStreamingDecoderTest {
    /** Pushes every id, asserting that no chunk contains a broken character; returns the chunks. */
    private static List<String> stream(StreamingDecoder decoder, int[] ids) {
        List<String> chunks = new ArrayList<>();
        for (int id : ids) {
            String chunk = decoder.push(id);
            assertWellFormed(chunk);
            chunks.add(chunk);
        }
        String rest = decoder.flush();
        assertWellFormed(rest);
        chunks.add(rest);
        return chunks;
    }

    private static void assertWellFormed(String chunk) {
        assertFalse(chunk.contains("\uFFFD"), () -> "replacement character in " + TokenizerVectorsTest.quote(chunk));
        for (int i = 0; i < chunk.length(); i++) {
            char c = chunk.charAt(i);
            if (Character.isHighSurrogate(c)) {
                assertTrue(i + 1 < chunk.length() && Character.isLowSurrogate(chunk.charAt(i + 1)), "unpaired surrogate");
                i++;
            } else {
                assertFalse(Character.isLowSurrogate(c), "unpaired surrogate");
            }
        }
    }

    @Test
    void emojiSplitOverSentencePieceByteTokensIsHeldBackUntilComplete() {
        Tokenizer tokenizer = Vocabs.vocab("llama-spm");
        int[] ids = tokenizer.encode("🦙", false, false);
        // '▁' and four byte tokens <0xF0> <0x9F> <0xA6> <0x99>: the vocabulary has no llama
        assertEquals(TokenType.BYTE, tokenizer.tokenType(ids[ids.length - 1]));
        List<String> chunks = stream(new StreamingDecoder(tokenizer, true), ids);
        assertEquals(List.of("", "", "", "", "🦙", ""), chunks);
    }

    @Test
    void cjkSplitByByteLevelBpeIsHeldBackUntilComplete() {
        Tokenizer tokenizer = Vocabs.vocab("llama-bpe");
        String text = "កាន់តែពិសេសអាចខលចេញ 我想在apple工作1314151天～";
        int[] ids = tokenizer.encode(text, false, false);
        List<String> chunks = stream(tokenizer.streamingDecoder(), ids);
        assertEquals(text, String.join("", chunks));
        assertTrue(chunks.subList(0, ids.length).contains(""), "some token ends inside a character and is held back");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.isthmus.engine.tokenizer.TokenizerVectorsTest#families")
    void streamsEveryVectorStringWithoutBrokenCharacters(String family) throws IOException {
        Tokenizer tokenizer = Vocabs.vocab(family);
        for (TokenizerVectorsTest.Case c : TokenizerVectorsTest.cases(family)) {
            List<String> chunks = stream(new StreamingDecoder(tokenizer, true), c.expected());
            assertEquals(c.input(), String.join("", chunks), family);
        }
    }

    @Test
    void spaceAfterBosIsDroppedButAContinuationKeepsIt() {
        Tokenizer tokenizer = Vocabs.vocab("llama-spm");
        int hello = tokenizer.tokenId("▁Hello");
        StreamingDecoder afterBos = tokenizer.streamingDecoder();
        assertEquals("", afterBos.push(tokenizer.bos()));
        assertEquals("Hello", afterBos.push(hello));
        assertEquals(" Hello", afterBos.push(hello));

        assertEquals(" Hello", tokenizer.streamingDecoder().push(hello));
        assertEquals("Hello", new StreamingDecoder(tokenizer, true).push(hello));
        assertEquals("Hello Hello", tokenizer.decode(new int[] {tokenizer.bos(), hello, hello}));
        assertEquals("Hello Hello", tokenizer.decode(new int[] {hello, hello}));
    }

    @Test
    void bytesThatCannotBecomeACharacterAreReplaced() {
        Tokenizer tokenizer = Vocabs.vocab("llama-spm");
        int e4 = tokenizer.tokenId("<0xE4>");
        int bd = tokenizer.tokenId("<0xBD>");
        int a = tokenizer.tokenId("A");
        StreamingDecoder decoder = tokenizer.streamingDecoder();
        assertEquals("", decoder.push(e4));
        assertEquals("", decoder.push(bd));
        assertEquals("\uFFFDA", decoder.push(a)); // E4 BD needs a third byte; 'A' cannot be it
        assertEquals("", decoder.push(e4));
        assertEquals("\uFFFD", decoder.flush());
        assertEquals("", decoder.flush());
        assertEquals("\uFFFD", tokenizer.decode(new int[] {e4}));
    }
}
