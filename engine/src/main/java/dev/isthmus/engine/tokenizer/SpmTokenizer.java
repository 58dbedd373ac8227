package dev.isthmus.engine.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * SentencePiece-style BPE as llama.cpp runs it for {@code tokenizer.ggml.model = "llama"}: spaces
 * become '▁' (with one put before the text if {@code add_space_prefix}), the text is split into
 * characters, and the adjacent pair whose concatenation is the highest-scoring token is merged until
 * no pair forms a token. Characters left that are not tokens fall back to {@code <0xXX>} byte tokens.
 */
final class SpmTokenizer extends VocabTokenizer {
    static final char SPACE_MARK = '\u2581';

    private final boolean addSpacePrefix;
    /** The token for each byte in byte fallback, -1 if the vocabulary lacks it. */
    private final int[] byteTokens = new int[256];

    SpmTokenizer(Vocabulary vocabulary, boolean addSpacePrefix) {
        super(vocabulary);
        this.addSpacePrefix = addSpacePrefix;
        for (int b = 0; b < 256; b++) {
            int id = vocabulary.id(String.format("<0x%02X>", b));
            if (id < 0) {
                id = vocabulary.id(String.valueOf((char) b)); // llama.cpp's fallback: the byte as a one-char token
            }
            byteTokens[b] = id;
        }
    }

    @Override
    public boolean addsSpacePrefix() {
        return addSpacePrefix;
    }

    @Override
    byte[] normalTokenBytes(String text) {
        return text.replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
    }

    @Override
    void encodeText(String fragment, boolean startsSegment, IntList out) {
        String text = (addSpacePrefix && startsSegment ? " " + fragment : fragment).replace(' ', SPACE_MARK);
        new Session(text).run(out);
    }

    /** The symbols of one text being merged; a symbol is a run of characters, starting as one code point. */
    private final class Session {
        private final String text;
        private final int[] start;
        private final int[] length;
        private final int[] previous;
        private final int[] next;
        private final BigramQueue queue;

        Session(String text) {
            this.text = text;
            int n = text.codePointCount(0, text.length());
            start = new int[n];
            length = new int[n];
            previous = new int[n];
            next = new int[n];
            for (int i = 0, offset = 0; i < n; i++) {
                int width = Character.charCount(text.codePointAt(offset));
                start[i] = offset;
                length[i] = width;
                previous[i] = i - 1;
                next[i] = i + 1 < n ? i + 1 : -1;
                offset += width;
            }
            queue = new BigramQueue(2 * n);
        }

        void run(IntList out) {
            int n = start.length;
            if (n == 0) {
                return;
            }
            for (int i = 1; i < n; i++) {
                tryAddBigram(i - 1, i);
            }
            while (!queue.isEmpty()) {
                int entry = queue.pop();
                int left = queue.left(entry);
                int right = queue.right(entry);
                // Stale if either side was merged into something else since the entry was queued.
                if (length[left] == 0 || length[right] == 0 || length[left] + length[right] != queue.size(entry)) {
                    continue;
                }
                length[left] += length[right];
                length[right] = 0;
                next[left] = next[right];
                if (next[right] >= 0) {
                    previous[next[right]] = left;
                }
                tryAddBigram(previous[left], left);
                tryAddBigram(left, next[left]);
            }
            for (int i = 0; i != -1; i = next[i]) {
                emit(start[i], start[i] + length[i], out);
            }
        }

        private void tryAddBigram(int left, int right) {
            if (left < 0 || right < 0) {
                return;
            }
            int size = length[left] + length[right];
            int id = vocabulary.id(text, start[left], start[left] + size);
            if (id < 0) {
                return;
            }
            // Highest score first: the queue pops the lowest key.
            queue.push(-(double) vocabulary.score(id), left, right, size);
        }

        private void emit(int from, int to, IntList out) {
            int id = vocabulary.id(text, from, to);
            if (id >= 0) {
                out.add(id);
                return;
            }
            for (byte b : Utf8.encode(text, from, to)) {
                int byteToken = byteTokens[b & 0xFF];
                if (byteToken >= 0) {
                    out.add(byteToken);
                } else if (vocabulary.unk() >= 0) {
                    out.add(vocabulary.unk());
                }
            }
        }
    }
}
