package dev.isthmus.engine.tokenizer;

/**
 * Token text to id, looked up by a region of a string without copying it out: loading a merge table
 * looks up both halves and the joined pair of every merge, and SentencePiece looks up every candidate
 * pair, so substrings would dominate both. When a text occurs twice the lower id wins.
 */
final class TokenIndex {
    private static final int NO_SKIP = -1;

    private final String[] texts;
    /** Open addressing: id + 1, or 0 for an empty slot. */
    private final int[] slots;
    private final int mask;

    TokenIndex(String[] texts) {
        this.texts = texts;
        int capacity = Integer.highestOneBit(Math.max(texts.length, 2) * 2) * 2;
        slots = new int[capacity];
        mask = capacity - 1;
        for (int id = 0; id < texts.length; id++) {
            String text = texts[id];
            int slot = hash(text, 0, text.length(), NO_SKIP) & mask;
            boolean present = false;
            while (slots[slot] != 0) {
                if (texts[slots[slot] - 1].equals(text)) {
                    present = true;
                    break;
                }
                slot = (slot + 1) & mask;
            }
            if (!present) {
                slots[slot] = id + 1;
            }
        }
    }

    /** The id of {@code text}, or -1. */
    int find(String text) {
        return find(text, 0, text.length(), NO_SKIP);
    }

    /** The id of the text {@code s[start, end)}, or -1. */
    int find(CharSequence s, int start, int end) {
        return find(s, start, end, NO_SKIP);
    }

    /** The id of the text {@code s[start, end)} without the character at {@code skip}, or -1. */
    int findWithout(CharSequence s, int start, int end, int skip) {
        return find(s, start, end, skip);
    }

    private int find(CharSequence s, int start, int end, int skip) {
        int length = end - start - (skip >= 0 ? 1 : 0);
        int slot = hash(s, start, end, skip) & mask;
        while (slots[slot] != 0) {
            int id = slots[slot] - 1;
            if (regionEquals(texts[id], length, s, start, end, skip)) {
                return id;
            }
            slot = (slot + 1) & mask;
        }
        return -1;
    }

    private static boolean regionEquals(String text, int length, CharSequence s, int start, int end, int skip) {
        if (text.length() != length) {
            return false;
        }
        for (int i = start, j = 0; i < end; i++) {
            if (i != skip && s.charAt(i) != text.charAt(j++)) {
                return false;
            }
        }
        return true;
    }

    private static int hash(CharSequence s, int start, int end, int skip) {
        int h = 0;
        for (int i = start; i < end; i++) {
            if (i != skip) {
                h = 31 * h + s.charAt(i);
            }
        }
        h ^= h >>> 16;
        h *= 0x85EBCA6B;
        return h ^ (h >>> 13);
    }
}
