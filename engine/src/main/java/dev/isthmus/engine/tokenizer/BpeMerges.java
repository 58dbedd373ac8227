package dev.isthmus.engine.tokenizer;

import java.util.Arrays;

/**
 * The merge table of a BPE vocabulary ({@code tokenizer.ggml.merges}, one {@code "left right"} string
 * per rank), keyed by the pair of token ids in an open-addressing table so that a lookup while
 * encoding allocates nothing.
 */
final class BpeMerges {
    private static final long EMPTY = -1L;

    private final long[] keys;
    private final int[] ranks;
    private final int[] merged;
    private final int mask;

    BpeMerges(String[] merges, Vocabulary vocabulary) {
        int capacity = Integer.highestOneBit(Math.max(merges.length, 4) * 2) * 2;
        keys = new long[capacity];
        Arrays.fill(keys, EMPTY);
        ranks = new int[capacity];
        merged = new int[capacity];
        mask = capacity - 1;
        TokenIndex index = vocabulary.index();
        for (int rank = 0; rank < merges.length; rank++) {
            String merge = merges[rank];
            // The separator is the first space after the first character, as llama.cpp splits.
            int space = merge.indexOf(' ', 1);
            if (space < 0) {
                continue;
            }
            int leftId = index.find(merge, 0, space);
            int rightId = index.find(merge, space + 1, merge.length());
            int mergedId = index.findWithout(merge, 0, merge.length(), space);
            if (leftId < 0 || rightId < 0 || mergedId < 0) {
                continue; // cannot apply to token ids; Hugging Face refuses such vocabularies outright
            }
            insert(leftId, rightId, rank, mergedId);
        }
    }

    private void insert(int left, int right, int rank, int mergedId) {
        long key = key(left, right);
        int slot = hash(key) & mask;
        while (keys[slot] != EMPTY) {
            if (keys[slot] == key) {
                return; // a repeated pair keeps its first (best) rank
            }
            slot = (slot + 1) & mask;
        }
        keys[slot] = key;
        ranks[slot] = rank;
        merged[slot] = mergedId;
    }

    /** The slot of the merge of two tokens, or -1 if they do not merge. */
    int find(int left, int right) {
        if (left < 0 || right < 0) {
            return -1;
        }
        long key = key(left, right);
        int slot = hash(key) & mask;
        while (keys[slot] != EMPTY) {
            if (keys[slot] == key) {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
        return -1;
    }

    int rank(int slot) {
        return ranks[slot];
    }

    int merged(int slot) {
        return merged[slot];
    }

    private static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private static int hash(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29));
    }
}
