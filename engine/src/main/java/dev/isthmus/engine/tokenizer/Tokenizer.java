package dev.isthmus.engine.tokenizer;

/**
 * Turns text into token ids and back, reproducing llama.cpp's tokenizers for a model's
 * {@code tokenizer.ggml.*} vocabulary. Obtain one with {@link Tokenizers#fromMetadata}.
 *
 * <p>Implementations are immutable and safe to share between threads.
 */
public interface Tokenizer {
    /**
     * Tokenizes text.
     *
     * @param addBos prepend the BOS token; ignored if the vocabulary has none (see {@link #addBosByDefault()})
     * @param parseSpecial recognise the texts of CONTROL tokens (such as {@code <|im_end|>}) in the input
     *     and emit those tokens; if false such texts are tokenized as ordinary text. USER_DEFINED tokens
     *     are recognised either way, as in llama.cpp and Hugging Face tokenizers.
     */
    int[] encode(String text, boolean addBos, boolean parseSpecial);

    /** {@link #encode(String, boolean, boolean)} with the vocabulary's BOS policy and no special-token parsing. */
    default int[] encode(String text) {
        return encode(text, addBosByDefault(), false);
    }

    /**
     * {@link #encode(String, boolean, boolean)} where the caller may leave BOS to the vocabulary
     * ({@code addBos == null}: {@link #addBosByDefault()}), as requests and generation parameters do.
     */
    default int[] encode(String text, Boolean addBos, boolean parseSpecial) {
        return encode(text, addBos != null ? addBos : addBosByDefault(), parseSpecial);
    }

    /**
     * The text of a token sequence. Control and unknown tokens contribute nothing; bytes that do not
     * form valid UTF-8 become U+FFFD. For a vocabulary that {@linkplain #addsSpacePrefix() adds a space
     * prefix}, the leading space of the first piece (at the start or right after a leading BOS) is
     * removed again, so {@code decode(encode(s))} returns {@code s}. Unlike llama.cpp's detokenizer no
     * "clean-up" of spaces before punctuation is applied: the bytes are returned exactly.
     */
    String decode(int[] ids);

    /** The raw bytes a token decodes to; control and unknown tokens give none. */
    default byte[] tokenBytes(int id) {
        return tokenBytes(id, false);
    }

    /**
     * The raw bytes a token decodes to: SentencePiece's '▁' becomes a space, {@code <0xXX>} byte tokens
     * their byte, byte-level BPE characters their bytes, USER_DEFINED tokens their text.
     *
     * @param renderSpecial give control and unknown tokens as their text instead of nothing
     * @throws IndexOutOfBoundsException if {@code id} is outside the vocabulary
     */
    byte[] tokenBytes(int id, boolean renderSpecial);

    /** The token's text as stored in the vocabulary (e.g. {@code "▁the"}, {@code "Ġthe"}, {@code "<0x0A>"}). */
    String piece(int id);

    /** The id of the token whose vocabulary text is exactly {@code piece}, or -1. */
    int tokenId(String piece);

    TokenType tokenType(int id);

    int vocabSize();

    /** The beginning-of-sequence token, or -1 if the vocabulary has none. */
    int bos();

    /** The end-of-sequence token, or -1 if the vocabulary has none. */
    int eos();

    /**
     * Whether generation should stop at this token: EOS, EOT ({@code tokenizer.ggml.eot_token_id}), EOM,
     * and, following llama.cpp, tokens named like {@code <|eot_id|>}, {@code <|end|>}, {@code <|im_end|>},
     * {@code <|endoftext|>}, {@code <end_of_turn>} or FIM pad/repo/file-separator tokens.
     */
    boolean isEndOfGeneration(int id);

    /**
     * Whether prompts should start with BOS: {@code tokenizer.ggml.add_bos_token} if present, else true
     * for SentencePiece vocabularies and Llama-3 style BPE, false for other BPE vocabularies.
     */
    boolean addBosByDefault();

    /**
     * Whether encoding puts a space before the text (SentencePiece's {@code add_space_prefix}), which
     * decoding strips again from the first piece after BOS.
     */
    boolean addsSpacePrefix();

    /** A decoder for streaming generated tokens; see {@link StreamingDecoder}. */
    default StreamingDecoder streamingDecoder() {
        return new StreamingDecoder(this, false);
    }
}
