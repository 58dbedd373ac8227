package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.TokenDistribution;

import java.util.Arrays;

/**
 * Tokens proposed to follow the context, and per token the distribution it was drawn from.
 *
 * @param tokens        the proposal, in order
 * @param distributions per token, the drafter's distribution {@code q} it was drawn from (the same sampling
 *                      transform as the target's), or {@code null} for a deterministic drafter, whose
 *                      {@code q} is all mass on the proposed token
 */
public record Draft(int[] tokens, TokenDistribution[] distributions) {
    public static final Draft EMPTY = new Draft(new int[0], null);

    public Draft {
        if (distributions != null && distributions.length != tokens.length) {
            throw new IllegalArgumentException(tokens.length + " draft tokens but " + distributions.length
                    + " distributions");
        }
    }

    /** A deterministic proposal (n-gram lookup, greedy drafting). */
    public static Draft of(int... tokens) {
        return new Draft(tokens, null);
    }

    public int size() {
        return tokens.length;
    }

    public boolean isEmpty() {
        return tokens.length == 0;
    }

    public int token(int i) {
        return tokens[i];
    }

    /**
     * The distribution token {@code i} was drawn from; all mass on it for a deterministic drafter.
     *
     * @throws IllegalStateException if a drafter's distribution gives its own token probability 0
     */
    public TokenDistribution distribution(int i) {
        if (distributions == null || distributions[i] == null) {
            return TokenDistribution.point(tokens[i]);
        }
        TokenDistribution q = distributions[i];
        if (!(q.probabilityOf(tokens[i]) > 0)) {
            throw new IllegalStateException("draft token " + tokens[i] + " has probability 0 in the distribution "
                    + "it was drawn from: " + q);
        }
        return q;
    }

    /** The first {@code n} tokens. */
    public Draft prefix(int n) {
        if (n >= tokens.length) {
            return this;
        }
        return new Draft(Arrays.copyOf(tokens, n), distributions == null ? null : Arrays.copyOf(distributions, n));
    }

    @Override
    public String toString() {
        return "Draft" + Arrays.toString(tokens);
    }
}
