package dev.isthmus.engine.tokenizer;

import java.io.ByteArrayOutputStream;

/** UTF-8 encoding and sequence-boundary helpers shared by the encoders and the streaming decoder. */
final class Utf8 {
    private Utf8() {
    }

    /**
     * The UTF-8 bytes of {@code s}. Unlike {@link String#getBytes}, an unpaired surrogate becomes
     * U+FFFD (as llama.cpp turns invalid input into U+FFFD), not '?'.
     */
    static byte[] encode(CharSequence s) {
        return encode(s, 0, s.length());
    }

    static byte[] encode(CharSequence s, int start, int end) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(end - start + 8);
        for (int i = start; i < end; ) {
            int cp;
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < end && Character.isLowSurrogate(s.charAt(i + 1))) {
                cp = Character.toCodePoint(c, s.charAt(i + 1));
                i += 2;
            } else {
                cp = Character.isSurrogate(c) ? 0xFFFD : c;
                i++;
            }
            appendCodePoint(out, cp);
        }
        return out.toByteArray();
    }

    static void appendCodePoint(ByteArrayOutputStream out, int cp) {
        if (cp < 0x80) {
            out.write(cp);
        } else if (cp < 0x800) {
            out.write(0xC0 | (cp >> 6));
            out.write(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out.write(0xE0 | (cp >> 12));
            out.write(0x80 | ((cp >> 6) & 0x3F));
            out.write(0x80 | (cp & 0x3F));
        } else {
            out.write(0xF0 | (cp >> 18));
            out.write(0x80 | ((cp >> 12) & 0x3F));
            out.write(0x80 | ((cp >> 6) & 0x3F));
            out.write(0x80 | (cp & 0x3F));
        }
    }

    /** The length of the sequence a lead byte starts, or 0 if {@code b} cannot start one. */
    static int sequenceLength(int b) {
        b &= 0xFF;
        if (b < 0x80) {
            return 1;
        }
        if (b >= 0xC2 && b <= 0xDF) {
            return 2;
        }
        if (b >= 0xE0 && b <= 0xEF) {
            return 3;
        }
        if (b >= 0xF0 && b <= 0xF4) {
            return 4;
        }
        return 0;
    }

    static boolean isContinuation(int b) {
        return (b & 0xC0) == 0x80;
    }

    /**
     * Where the complete part of {@code bytes[0, length)} ends: the start of a trailing multi-byte
     * sequence that is still missing bytes, or {@code length} if there is none. Bytes that can never
     * become valid are counted as complete, so the caller emits them (as U+FFFD) instead of waiting.
     */
    static int completePrefixLength(byte[] bytes, int length) {
        for (int back = 1; back <= 3 && back <= length; back++) {
            int b = bytes[length - back] & 0xFF;
            if (isContinuation(b)) {
                continue;
            }
            int needed = sequenceLength(b);
            return needed > back ? length - back : length;
        }
        return length;
    }
}
