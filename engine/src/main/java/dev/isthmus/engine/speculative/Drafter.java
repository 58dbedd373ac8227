package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.TokenHistory;

/**
 * Proposes the tokens the target model is likely to produce next, for one sequence. Opened per generation by
 * a {@link DraftSource}; the target verifies every proposal in one batched forward pass.
 *
 * <p>The drafter is always given the whole accepted context. One that keeps state (a draft model's KV
 * cache) must compare it with the context and roll back what was not accepted: proposals are often only
 * partly accepted, and the context then continues with a token the drafter did not propose.
 */
public interface Drafter extends AutoCloseable {
    /** Called once with the prompt, during prompt processing (a draft model evaluates it here). */
    default void prefill(TokenHistory prompt) {
    }

    /**
     * Proposes up to {@code max} tokens to follow {@code context}.
     *
     * @param context the prompt and every token generated so far; read only, valid during the call
     * @param max     at least 1
     * @return the proposal, possibly empty, at most {@code max} tokens
     */
    Draft propose(TokenHistory context, int max);

    @Override
    default void close() {
    }
}
