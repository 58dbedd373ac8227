package dev.isthmus.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** parseSpecial, USER_DEFINED splitting, BOS policy, special-token decoding and end of generation. */
class TokenizerSpecialTokensTest {
    static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(IntStream::of).toArray();
    }

    @Test
    void controlTokensAreParsedOnlyWhenAsked() {
        Tokenizer tokenizer = Vocabs.vocab("llama-bpe");
        String text = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
        int start = tokenizer.tokenId("<|start_header_id|>");
        int end = tokenizer.tokenId("<|end_header_id|>");
        int eot = tokenizer.tokenId("<|eot_id|>");
        assertArrayEquals(concat(new int[] {start}, tokenizer.encode("user", false, false), new int[] {end},
                        tokenizer.encode("\n\nHi", false, false), new int[] {eot}),
                tokenizer.encode(text, false, true));

        int[] plain = tokenizer.encode(text, false, false);
        assertTrue(Arrays.stream(plain).noneMatch(id -> id == start || id == end || id == eot), Arrays.toString(plain));
        assertEquals(text, tokenizer.decode(plain));
    }

    @Test
    void controlTokensDecodeToNothingUnlessRendered() {
        Tokenizer tokenizer = Vocabs.vocab("llama-bpe");
        int eot = tokenizer.tokenId("<|eot_id|>");
        assertEquals(TokenType.CONTROL, tokenizer.tokenType(eot));
        assertEquals(0, tokenizer.tokenBytes(eot).length);
        assertEquals("<|eot_id|>", new String(tokenizer.tokenBytes(eot, true), StandardCharsets.UTF_8));
        assertEquals("<|eot_id|>", tokenizer.piece(eot));
        assertEquals("Hi", tokenizer.decode(tokenizer.encode("Hi<|eot_id|>", true, true)));
    }

    @Test
    void userDefinedTokensAreSplitEvenWithoutParseSpecial() {
        Tokenizer mpt = Vocabs.vocab("mpt");
        int fiveSpaces = mpt.tokenId("     ");
        assertEquals(TokenType.USER_DEFINED, mpt.tokenType(fiveSpaces));
        assertArrayEquals(concat(mpt.encode("x", false, false), new int[] {fiveSpaces}, mpt.encode("y", false, false)),
                mpt.encode("x     y", false, false));
        assertEquals("     ", new String(mpt.tokenBytes(fiveSpaces), StandardCharsets.UTF_8));

        Tokenizer deepseek = Vocabs.vocab("deepseek-coder");
        int oUmlaut = deepseek.tokenId("ö");
        assertEquals(TokenType.USER_DEFINED, deepseek.tokenType(oUmlaut));
        assertArrayEquals(concat(deepseek.encode("sch", false, false), new int[] {oUmlaut}, deepseek.encode("n", false, false)),
                deepseek.encode("schön", false, false));
        assertEquals("schön", deepseek.decode(deepseek.encode("schön", false, false)));
    }

    /** Phi-3's added tokens strip the whitespace after them, and text after a special token gets the SPM space prefix. */
    @Test
    void phi3SpecialTokensSwallowFollowingWhitespace() {
        Tokenizer tokenizer = Vocabs.vocab("phi-3");
        int user = tokenizer.tokenId("<|user|>");
        int end = tokenizer.tokenId("<|end|>");
        int assistant = tokenizer.tokenId("<|assistant|>");
        int hello = tokenizer.tokenId("▁Hello");
        assertArrayEquals(new int[] {tokenizer.bos(), user, hello, end, assistant},
                tokenizer.encode("<|user|>\nHello<|end|>\n<|assistant|>", true, true));
    }

    @Test
    void bosPolicyFollowsTheVocabulary() {
        assertTrue(Vocabs.vocab("llama-spm").addBosByDefault());
        assertTrue(Vocabs.vocab("llama-bpe").addBosByDefault());
        assertFalse(Vocabs.vocab("gpt-2").addBosByDefault());
        assertTrue(Vocabs.vocab("deepseek-coder").addBosByDefault()); // add_bos_token = true in its metadata

        Tokenizer llama3 = Vocabs.vocab("llama-bpe");
        assertEquals(128000, llama3.bos());
        assertArrayEquals(concat(new int[] {128000}, llama3.encode("Hello", false, false)), llama3.encode("Hello"));
        Tokenizer gpt2 = Vocabs.vocab("gpt-2");
        assertArrayEquals(gpt2.encode("Hello", false, false), gpt2.encode("Hello"));
        assertArrayEquals(concat(new int[] {gpt2.bos()}, gpt2.encode("Hello", false, false)), gpt2.encode("Hello", true, false));
    }

    @Test
    void endOfGenerationFollowsLlamaCppRules() {
        Tokenizer llama3 = Vocabs.vocab("llama-bpe");
        assertTrue(llama3.isEndOfGeneration(llama3.tokenId("<|eot_id|>")));
        assertTrue(llama3.isEndOfGeneration(llama3.eos()));
        assertFalse(llama3.isEndOfGeneration(llama3.bos()));
        assertFalse(llama3.isEndOfGeneration(llama3.tokenId("Hello")));
        assertFalse(llama3.isEndOfGeneration(-1));

        Tokenizer qwen2 = Vocabs.vocab("qwen2");
        assertTrue(qwen2.isEndOfGeneration(qwen2.tokenId("<|im_end|>")));
        assertTrue(qwen2.isEndOfGeneration(qwen2.tokenId("<|endoftext|>")));
        assertFalse(qwen2.isEndOfGeneration(qwen2.tokenId("<|im_start|>")));

        Tokenizer phi3 = Vocabs.vocab("phi-3");
        assertTrue(phi3.isEndOfGeneration(phi3.tokenId("<|end|>")));
        assertTrue(phi3.isEndOfGeneration(phi3.eos()));
        assertFalse(phi3.isEndOfGeneration(phi3.tokenId("<|assistant|>")));

        Tokenizer gpt2 = Vocabs.vocab("gpt-2");
        assertTrue(gpt2.isEndOfGeneration(gpt2.tokenId("<|endoftext|>")));

        Tokenizer spm = Vocabs.vocab("llama-spm");
        assertTrue(spm.isEndOfGeneration(spm.eos()));
        assertFalse(spm.isEndOfGeneration(spm.bos()));
    }
}
