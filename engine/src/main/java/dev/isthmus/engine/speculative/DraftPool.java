package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.TokenHistory;

import java.util.List;

/**
 * Drafters of many generations that propose together, for a scheduler that verifies all their proposals in
 * one batched pass of the target: a draft model evaluates the next draft position of every generation in one
 * forward pass of its own, instead of one pass per generation. Opened by {@link DraftSource#openPool}; used by
 * one thread at a time.
 */
public interface DraftPool extends AutoCloseable {
    /**
     * A drafter for one more generation. Its state (a draft model's KV cache) lives in the pool; closing the
     * drafter frees it. Its {@link Drafter#propose} works alone too, as a batch of one.
     *
     * @param sampling the generation's sampling parameters (see {@link DraftSource#open})
     */
    Drafter open(SamplingParams sampling);

    /**
     * Proposals for several generations at once.
     *
     * @param drafters distinct drafters opened by this pool
     * @param contexts per drafter, the prompt and every token generated so far (read only, during the call)
     * @param max      per drafter, tokens to propose at most (0: none)
     * @return per drafter, its proposal, possibly empty, at most {@code max[i]} tokens
     * @throws IllegalArgumentException if the lists differ in length; a pool that keeps state per drafter also
     *                                  refuses a drafter it did not open, or one given twice
     */
    Draft[] propose(List<Drafter> drafters, List<TokenHistory> contexts, int[] max);

    /** Frees the pool; drafters still open become unusable. */
    @Override
    void close();
}
