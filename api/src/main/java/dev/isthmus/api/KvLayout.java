package dev.isthmus.api;

import java.util.Arrays;

/**
 * Where each query row's keys and values are in a KV cache, for a batch of sequences at different
 * positions.
 *
 * <p>A cache tensor has shape {@code [slots, kvHeads, headDim]} and is cut into blocks of
 * {@code blockSize} slots. Sequence {@code s} keeps position {@code j} in slot
 * {@code blockTables[s][j / blockSize] * blockSize + j % blockSize} (vLLM's PagedAttention layout; a
 * contiguous per-sequence cache is one block as long as the context). Query row {@code i} belongs to
 * sequence {@code querySeq[i]} at position {@code queryPos[i]}.
 *
 * @param blockSize       slots per block
 * @param blockTables     per sequence, the cache blocks holding its positions in order
 * @param contextLengths  per sequence, how many positions are in the cache (keys a non-causal query sees)
 * @param querySeq        per query row, its sequence index
 * @param queryPos        per query row, its position within its sequence
 */
public record KvLayout(int blockSize, int[][] blockTables, int[] contextLengths, int[] querySeq, int[] queryPos) {
    public KvLayout {
        if (blockSize <= 0) {
            throw new IllegalArgumentException("blockSize must be positive, got " + blockSize);
        }
        if (blockTables.length != contextLengths.length) {
            throw new IllegalArgumentException(blockTables.length + " block tables but "
                    + contextLengths.length + " context lengths");
        }
        if (querySeq.length != queryPos.length) {
            throw new IllegalArgumentException(querySeq.length + " query sequences but "
                    + queryPos.length + " query positions");
        }
        for (int s = 0; s < blockTables.length; s++) {
            long capacity = (long) blockTables[s].length * blockSize;
            if (contextLengths[s] < 0 || contextLengths[s] > capacity) {
                throw new IllegalArgumentException("sequence " + s + " has context length " + contextLengths[s]
                        + " but its block table holds " + capacity + " positions");
            }
        }
        for (int i = 0; i < querySeq.length; i++) {
            int s = querySeq[i];
            if (s < 0 || s >= blockTables.length) {
                throw new IllegalArgumentException("query row " + i + " names sequence " + s
                        + " of " + blockTables.length);
            }
            if (queryPos[i] < 0 || queryPos[i] >= contextLengths[s]) {
                throw new IllegalArgumentException("query row " + i + " is at position " + queryPos[i]
                        + " but sequence " + s + " has " + contextLengths[s] + " cached positions");
            }
        }
    }

    /** The cache slot of position {@code pos} of sequence {@code seq}. */
    public int slot(int seq, int pos) {
        return blockTables[seq][pos / blockSize] * blockSize + pos % blockSize;
    }

    /** Number of query rows. */
    public int queries() {
        return querySeq.length;
    }

    /**
     * The layout of one sequence with a contiguous cache starting at slot 0 and {@code n} new query
     * rows at positions {@code start .. start+n-1} (the single-sequence case of generation).
     */
    public static KvLayout contiguous(int capacity, int start, int n) {
        int[] seq = new int[n];
        int[] pos = new int[n];
        for (int i = 0; i < n; i++) {
            pos[i] = start + i;
        }
        return new KvLayout(capacity, new int[][] {{0}}, new int[] {start + n}, seq, pos);
    }

    @Override
    public String toString() {
        return "KvLayout[blockSize=" + blockSize + ", contexts=" + Arrays.toString(contextLengths)
                + ", querySeq=" + Arrays.toString(querySeq) + ", queryPos=" + Arrays.toString(queryPos) + "]";
    }
}
