package dev.isthmus.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Decodes tokens one at a time, as they are generated, into text that is safe to show: a UTF-8
 * character whose bytes are spread over several tokens (an emoji as four SentencePiece byte tokens,
 * a CJK character split by byte-level BPE) is held back until it is complete, so no push ever
 * returns half a character. Not thread-safe; use one per generation.
 *
 * <p>If the vocabulary {@linkplain Tokenizer#addsSpacePrefix() adds a space prefix}, the leading
 * space of a piece that follows BOS is dropped (as llama2.c prints it). A decoder created with
 * {@code startOfText} also treats its first piece that way, which is how {@link Tokenizer#decode}
 * decodes a whole sequence; a decoder for a continuation of a prompt should not.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final boolean stripSpaceAfterBos;
    private byte[] pending = new byte[16];
    private int pendingLength;
    private boolean afterBos;

    /**
     * @param startOfText whether the first token pushed starts the text (as if it followed BOS)
     */
    public StreamingDecoder(Tokenizer tokenizer, boolean startOfText) {
        this.tokenizer = tokenizer;
        this.stripSpaceAfterBos = tokenizer.addsSpacePrefix();
        this.afterBos = startOfText;
    }

    /**
     * Adds a token and returns the text completed by it: possibly empty, never ending in the middle of
     * a UTF-8 sequence that later tokens may complete. Bytes that can no longer form a character are
     * returned as U+FFFD.
     */
    public String push(int id) {
        byte[] bytes = tokenizer.tokenBytes(id);
        int from = 0;
        if (stripSpaceAfterBos && afterBos && bytes.length > 0 && bytes[0] == ' ') {
            from = 1;
        }
        afterBos = id == tokenizer.bos();
        append(bytes, from);
        int complete = Utf8.completePrefixLength(pending, pendingLength);
        return take(complete);
    }

    /** Returns whatever is still held back, an incomplete trailing sequence becoming U+FFFD, and resets. */
    public String flush() {
        return take(pendingLength);
    }

    private void append(byte[] bytes, int from) {
        int n = bytes.length - from;
        if (pendingLength + n > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + n));
        }
        System.arraycopy(bytes, from, pending, pendingLength, n);
        pendingLength += n;
    }

    private String take(int length) {
        if (length == 0) {
            return "";
        }
        String text = new String(pending, 0, length, StandardCharsets.UTF_8);
        System.arraycopy(pending, length, pending, 0, pendingLength - length);
        pendingLength -= length;
        return text;
    }
}
