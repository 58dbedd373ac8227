package dev.isthmus.engine.sampling;

import java.util.SplittableRandom;

/**
 * Picks tokens from logits for one sequence, by {@link SamplingParams}: one seeded draw from the
 * {@link SamplingTransform}'s distribution per token. Stateful: it owns the seeded random stream and remembers
 * the tokens it has seen for the penalties.
 */
public final class Sampler {
    private final SamplingTransform transform;
    private final SplittableRandom random;
    private final TokenHistory history = new TokenHistory();

    public Sampler(SamplingParams params) {
        this.transform = new SamplingTransform(params);
        this.random = new SplittableRandom(params.seed());
    }

    public SamplingParams params() {
        return transform.params();
    }

    /** Remembers a token (prompt or generated) for the penalties. */
    public void accept(int token) {
        history.add(token);
    }

    /**
     * Chooses the next token. {@code logits} is modified (bias and penalties applied).
     *
     * @throws IllegalStateException if every token has been banned
     */
    public int sample(float[] logits) {
        if (transform.isGreedy()) {
            return transform.greedy(logits, history);
        }
        return transform.distribution(logits, history).sample(random.nextDouble());
    }
}
