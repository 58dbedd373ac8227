package dev.isthmus.engine.tokenizer;

import java.io.ByteArrayOutputStream;

/**
 * Byte-level BPE ({@code tokenizer.ggml.model = "gpt2"}): the text is pre-tokenized into words by the
 * family's {@link PreTokenizer}, each word's UTF-8 bytes are spelled with {@link ByteUnicode}
 * characters, and adjacent symbols are merged lowest merge rank first until no ranked pair is left.
 */
final class BpeTokenizer extends VocabTokenizer {
    private final PreTokenizer preTokenizer;
    private final BpeMerges merges;
    /** Llama 3: a word that is itself a token is emitted whole, without merging. */
    private final boolean ignoreMerges;
    /** The token spelling each single byte, -1 if the vocabulary lacks it. */
    private final int[] byteTokens = new int[256];

    BpeTokenizer(Vocabulary vocabulary, String[] merges, PreTokenizer preTokenizer, boolean ignoreMerges) {
        super(vocabulary);
        this.preTokenizer = preTokenizer;
        this.ignoreMerges = ignoreMerges;
        this.merges = new BpeMerges(merges, vocabulary);
        for (int b = 0; b < 256; b++) {
            byteTokens[b] = vocabulary.id(String.valueOf(ByteUnicode.toChar(b)));
        }
    }

    @Override
    public boolean addsSpacePrefix() {
        return false;
    }

    @Override
    byte[] normalTokenBytes(String text) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(text.length());
        for (int i = 0; i < text.length(); ) {
            int c = text.codePointAt(i);
            i += Character.charCount(c);
            int b = ByteUnicode.toByte(c);
            if (b >= 0) {
                bytes.write(b);
            } else {
                Utf8.appendCodePoint(bytes, c); // not byte-level spelled (an added token typed NORMAL): keep its text
            }
        }
        return bytes.toByteArray();
    }

    @Override
    void encodeText(String text, boolean startsSegment, IntList out) {
        for (String word : preTokenizer.split(text)) {
            encodeWord(Utf8.encode(word), out);
        }
    }

    private void encodeWord(byte[] bytes, IntList out) {
        int n = bytes.length;
        if (n == 0) {
            return;
        }
        if (ignoreMerges) {
            int whole = vocabulary.id(ByteUnicode.encode(bytes));
            if (whole >= 0) {
                out.add(whole);
                return;
            }
        }
        int[] ids = new int[n];
        int[] previous = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = byteTokens[bytes[i] & 0xFF];
            previous[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        boolean[] merged = new boolean[n];
        BigramQueue queue = new BigramQueue(2 * n);
        for (int i = 0; i + 1 < n; i++) {
            addBigram(queue, ids, i, i + 1);
        }
        while (!queue.isEmpty()) {
            int entry = queue.pop();
            int left = queue.left(entry);
            int right = queue.right(entry);
            // Stale unless both symbols are still there, still adjacent, and still spell the same pair.
            if (merged[left] || merged[right] || next[left] != right) {
                continue;
            }
            int slot = merges.find(ids[left], ids[right]);
            if (slot < 0 || merges.rank(slot) != queue.key(entry)) {
                continue;
            }
            ids[left] = merges.merged(slot);
            merged[right] = true;
            next[left] = next[right];
            if (next[right] >= 0) {
                previous[next[right]] = left;
            }
            if (previous[left] >= 0) {
                addBigram(queue, ids, previous[left], left);
            }
            if (next[left] >= 0) {
                addBigram(queue, ids, left, next[left]);
            }
        }
        for (int i = 0; i != -1; i = next[i]) {
            if (ids[i] >= 0) {
                out.add(ids[i]);
            }
        }
    }

    private void addBigram(BigramQueue queue, int[] ids, int left, int right) {
        int slot = merges.find(ids[left], ids[right]);
        if (slot >= 0) {
            queue.push(merges.rank(slot), left, right, 0);
        }
    }
}
