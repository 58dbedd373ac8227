package dev.isthmus.engine.speculative;

import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.tokenizer.TokenType;
import dev.isthmus.engine.tokenizer.Tokenizer;
import dev.isthmus.engine.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VocabulariesTest {
    private static Tokenizer tokenizer(String model) {
        try (GgufFile f = GgufFile.open(SharedData.file("models/" + model))) {
            return Tokenizers.fromMetadata(f.metadata());
        }
    }

    @Test
    void aVocabularyIsCompatibleWithItself() {
        Tokenizer t = tokenizer("stories260K.gguf");
        Vocabularies.checkCompatible(t, 512, tokenizer("stories260K.gguf"), 512);
    }

    @Test
    void differentSizesAreNamed() {
        IncompatibleVocabularyException e = assertThrows(IncompatibleVocabularyException.class,
                () -> Vocabularies.checkCompatible(tokenizer("stories260K.gguf"), 512,
                        tokenizer("llama-2-tiny-random.gguf"), 32000));
        assertTrue(e.getMessage().contains("the target has 512 tokens, the draft 32000"), e.getMessage());
        assertTrue(e.getMessage().contains("needs a draft model with the target's tokenizer"), e.getMessage());
    }

    @Test
    void differentLogitWidthsAreNamed() {
        Tokenizer t = tokenizer("stories260K.gguf");
        IncompatibleVocabularyException e = assertThrows(IncompatibleVocabularyException.class,
                () -> Vocabularies.checkCompatible(t, 512, t, 576));
        assertTrue(e.getMessage().contains("scores 512 token ids, the draft 576"), e.getMessage());
    }

    @Test
    void aDifferentPieceIsNamedWithItsId() {
        Tokenizer t = tokenizer("stories260K.gguf");
        Tokenizer changed = new Renamed(t, 300, "\"zz\n");
        IncompatibleVocabularyException e = assertThrows(IncompatibleVocabularyException.class,
                () -> Vocabularies.checkCompatible(t, 512, changed, 512));
        assertEquals("draft vocabulary differs from the target's: token 300 is \"" + t.piece(300)
                + "\" in the target but \"\\\"zz\\u000a\" in the draft (1 of 512 tokens differ); speculative "
                + "decoding needs a draft model with the target's tokenizer", e.getMessage());
    }

    /** A tokenizer whose one token has another piece. */
    private record Renamed(Tokenizer base, int id, String piece) implements Tokenizer {
        @Override
        public int[] encode(String text, boolean addBos, boolean parseSpecial) {
            return base.encode(text, addBos, parseSpecial);
        }

        @Override
        public String decode(int[] ids) {
            return base.decode(ids);
        }

        @Override
        public byte[] tokenBytes(int i, boolean renderSpecial) {
            return base.tokenBytes(i, renderSpecial);
        }

        @Override
        public String piece(int i) {
            return i == id ? piece : base.piece(i);
        }

        @Override
        public int tokenId(String p) {
            return base.tokenId(p);
        }

        @Override
        public TokenType tokenType(int i) {
            return base.tokenType(i);
        }

        @Override
        public int vocabSize() {
            return base.vocabSize();
        }

        @Override
        public int bos() {
            return base.bos();
        }

        @Override
        public int eos() {
            return base.eos();
        }

        @Override
        public boolean isEndOfGeneration(int i) {
            return base.isEndOfGeneration(i);
        }

        @Override
        public boolean addBosByDefault() {
            return base.addBosByDefault();
        }

        @Override
        public boolean addsSpacePrefix() {
            return base.addsSpacePrefix();
        }
    }
}
