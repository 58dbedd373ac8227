package dev.isthmus.engine.tokenizer;

/**
 * What kind of token a vocabulary entry is, as GGUF's {@code tokenizer.ggml.token_type} records it;
 * each constant's {@link #ordinal()} is its GGUF code.
 */
public enum TokenType {
    /** Code 0: not classified. Decodes to nothing. */
    UNDEFINED,
    /** Code 1: ordinary text. */
    NORMAL,
    /** Code 2: the unknown-token placeholder. Decodes to nothing unless special tokens are rendered. */
    UNKNOWN,
    /** Code 3: a control token such as BOS, EOS or {@code <|im_end|>}. Decodes to nothing unless special tokens are rendered. */
    CONTROL,
    /** Code 4: a token added verbatim; always split out of input text before the model's own tokenization. */
    USER_DEFINED,
    /** Code 5: a reserved, unused slot. Decodes to nothing. */
    UNUSED,
    /** Code 6: a SentencePiece byte-fallback token {@code <0xXX>}, decoding to that single byte. */
    BYTE;

    /** The type for a GGUF {@code token_type} code; unknown codes are {@link #UNDEFINED}. */
    public static TokenType fromGgufCode(int code) {
        return switch (code) {
            case 1 -> NORMAL;
            case 2 -> UNKNOWN;
            case 3 -> CONTROL;
            case 4 -> USER_DEFINED;
            case 5 -> UNUSED;
            case 6 -> BYTE;
            default -> UNDEFINED;
        };
    }
}
