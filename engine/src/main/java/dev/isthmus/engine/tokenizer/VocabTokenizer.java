package dev.isthmus.engine.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * What SentencePiece and BPE tokenizers share: special-token splitting, BOS handling, token bytes for
 * the non-text token types, and decoding.
 */
abstract class VocabTokenizer implements Tokenizer {
    private static final byte[] NO_BYTES = new byte[0];

    final Vocabulary vocabulary;
    private final SpecialTokenSplitter splitter;

    VocabTokenizer(Vocabulary vocabulary) {
        this.vocabulary = vocabulary;
        this.splitter = new SpecialTokenSplitter(vocabulary);
    }

    /**
     * Tokenizes one fragment of plain text (no special tokens in it).
     *
     * @param startsSegment whether the fragment starts the input or follows a special token
     */
    abstract void encodeText(String text, boolean startsSegment, IntList out);

    /** The bytes of a NORMAL token. */
    abstract byte[] normalTokenBytes(String text);

    @Override
    public int[] encode(String text, boolean addBos, boolean parseSpecial) {
        IntList out = new IntList(text.length() / 3 + 4);
        if (addBos && vocabulary.bos() >= 0) {
            out.add(vocabulary.bos());
        }
        boolean startsSegment = true;
        for (SpecialTokenSplitter.Fragment fragment : splitter.split(text, parseSpecial)) {
            if (fragment.isText()) {
                encodeText(text.substring(fragment.start(), fragment.end()), startsSegment, out);
                startsSegment = false;
            } else {
                out.add(fragment.token());
                startsSegment = true;
            }
        }
        return out.toArray();
    }

    @Override
    public String decode(int[] ids) {
        StreamingDecoder decoder = new StreamingDecoder(this, true);
        StringBuilder text = new StringBuilder();
        for (int id : ids) {
            text.append(decoder.push(id));
        }
        return text.append(decoder.flush()).toString();
    }

    @Override
    public byte[] tokenBytes(int id, boolean renderSpecial) {
        vocabulary.checkId(id);
        String text = vocabulary.text(id);
        if (vocabulary.has(id, Vocabulary.CONTROL | Vocabulary.UNKNOWN)) {
            return renderSpecial ? text.getBytes(StandardCharsets.UTF_8) : NO_BYTES;
        }
        if (vocabulary.has(id, Vocabulary.USER_DEFINED)) {
            return text.getBytes(StandardCharsets.UTF_8);
        }
        if (vocabulary.has(id, Vocabulary.NORMAL)) {
            return normalTokenBytes(text);
        }
        if (vocabulary.has(id, Vocabulary.BYTE) && Vocabulary.isByteTokenText(text)) {
            return new byte[] {(byte) Integer.parseInt(text, 3, 5, 16)};
        }
        return NO_BYTES; // unused and undefined tokens, as llama.cpp
    }

    @Override
    public String piece(int id) {
        vocabulary.checkId(id);
        return vocabulary.text(id);
    }

    @Override
    public int tokenId(String piece) {
        return vocabulary.id(piece);
    }

    @Override
    public TokenType tokenType(int id) {
        vocabulary.checkId(id);
        return vocabulary.type(id);
    }

    @Override
    public int vocabSize() {
        return vocabulary.size();
    }

    @Override
    public int bos() {
        return vocabulary.bos();
    }

    @Override
    public int eos() {
        return vocabulary.eos();
    }

    @Override
    public boolean isEndOfGeneration(int id) {
        return vocabulary.isEndOfGeneration(id);
    }

    @Override
    public boolean addBosByDefault() {
        return vocabulary.addBos() && vocabulary.bos() >= 0;
    }
}
