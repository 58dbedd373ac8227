package dev.isthmus.engine.sampling;

import java.util.Arrays;

/** A growable sequence of token ids: the context a drafter continues and the sampling penalties look at. */
public final class TokenHistory {
    private int[] tokens;
    private int size;

    public TokenHistory() {
        tokens = new int[64];
    }

    public TokenHistory(int[] initial) {
        tokens = Arrays.copyOf(initial, Math.max(64, initial.length * 2));
        size = initial.length;
    }

    public int size() {
        return size;
    }

    public int get(int i) {
        if (i < 0 || i >= size) {
            throw new IndexOutOfBoundsException("token " + i + " of " + size);
        }
        return tokens[i];
    }

    public void add(int token) {
        if (size == tokens.length) {
            tokens = Arrays.copyOf(tokens, size * 2);
        }
        tokens[size++] = token;
    }

    /** Appends the tokens of {@code other} from index {@code from} on. */
    public void addAll(TokenHistory other, int from) {
        for (int i = from; i < other.size; i++) {
            add(other.tokens[i]);
        }
    }

    /** Keeps the first {@code length} tokens. */
    public void truncate(int length) {
        if (length < 0 || length > size) {
            throw new IllegalArgumentException("cannot truncate " + size + " tokens to " + length);
        }
        size = length;
    }

    /** Tokens {@code [from, to)} as a new array. */
    public int[] range(int from, int to) {
        if (from < 0 || to > size || from > to) {
            throw new IndexOutOfBoundsException("range [" + from + ", " + to + ") of " + size);
        }
        return Arrays.copyOfRange(tokens, from, to);
    }

    public int[] toArray() {
        return Arrays.copyOf(tokens, size);
    }

    public TokenHistory copy() {
        TokenHistory h = new TokenHistory();
        h.tokens = Arrays.copyOf(tokens, Math.max(64, tokens.length));
        h.size = size;
        return h;
    }

    /** How many leading tokens this history and {@code other} share. */
    public int commonPrefix(TokenHistory other) {
        int n = Math.min(size, other.size);
        int i = 0;
        while (i < n && tokens[i] == other.tokens[i]) {
            i++;
        }
        return i;
    }

    /** The backing array; valid up to {@link #size()}, only until the next {@link #add}. */
    int[] array() {
        return tokens;
    }

    @Override
    public String toString() {
        return Arrays.toString(toArray());
    }
}
