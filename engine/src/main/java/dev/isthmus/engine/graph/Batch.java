package dev.isthmus.engine.graph;

import java.util.Arrays;

/**
 * One forward pass worth of tokens: each row is a token of some sequence at some position, so prompt
 * chunks of new sequences and single decode tokens of running ones can share a pass.
 *
 * @param tokens    token ids
 * @param seqs      per row, the sequence (an index into the {@link KvCache})
 * @param positions per row, the position within its sequence
 * @param logitRows rows whose logits are wanted, ascending
 */
public record Batch(int[] tokens, int[] seqs, int[] positions, int[] logitRows) {
    public Batch {
        if (tokens.length == 0) {
            throw new IllegalArgumentException("empty batch");
        }
        if (seqs.length != tokens.length || positions.length != tokens.length) {
            throw new IllegalArgumentException("batch arrays differ in length: tokens " + tokens.length
                    + ", seqs " + seqs.length + ", positions " + positions.length);
        }
        for (int i = 0; i < logitRows.length; i++) {
            if (logitRows[i] < 0 || logitRows[i] >= tokens.length || (i > 0 && logitRows[i] <= logitRows[i - 1])) {
                throw new IllegalArgumentException("bad logit rows " + Arrays.toString(logitRows));
            }
        }
    }

    /** Tokens of one sequence at consecutive positions from {@code start}, with logits for the last only. */
    public static Batch ofSequence(int seq, int start, int... tokens) {
        int[] seqs = new int[tokens.length];
        int[] positions = new int[tokens.length];
        Arrays.fill(seqs, seq);
        for (int i = 0; i < tokens.length; i++) {
            positions[i] = start + i;
        }
        return new Batch(tokens.clone(), seqs, positions, new int[] {tokens.length - 1});
    }

    /** Like {@link #ofSequence} but with logits for every row (perplexity, speculative verification). */
    public static Batch ofSequenceAllLogits(int seq, int start, int... tokens) {
        Batch b = ofSequence(seq, start, tokens);
        int[] all = new int[tokens.length];
        Arrays.setAll(all, i -> i);
        return new Batch(b.tokens, b.seqs, b.positions, all);
    }

    public int size() {
        return tokens.length;
    }
}
