/**
 * Speculative decoding: something cheap proposes the next tokens, the target model checks them all in one
 * batched forward pass ({@link dev.isthmus.engine.graph.Batch#ofSequenceAllLogits}), and every accepted
 * token saves one sequential pass of the target.
 *
 * <ul>
 *   <li>{@link dev.isthmus.engine.speculative.SpeculativeGenerator} — the loop, for one prompt at a time;
 *       returns the usual {@link dev.isthmus.engine.generation.GenerationResult} plus
 *       {@link dev.isthmus.engine.speculative.SpeculationStats}.</li>
 *   <li>The serving {@link dev.isthmus.engine.serving.Engine} speculates for every decoding sequence of its batch
 *       and verifies all proposals in its one batched pass; its drafters come from a
 *       {@link dev.isthmus.engine.speculative.DraftPool}, in which a draft model drafts for all sequences in
 *       shared passes.</li>
 *   <li>{@link dev.isthmus.engine.speculative.Verifier} — the target's side for one generation: its own tokens,
 *       and the walk through a proposal that both loops share.</li>
 *   <li>{@link dev.isthmus.engine.speculative.DraftSource} / {@link dev.isthmus.engine.speculative.Drafter} —
 *       where proposals come from: {@link dev.isthmus.engine.speculative.DraftModel} (a small model with the
 *       target's vocabulary, checked by {@link dev.isthmus.engine.speculative.Vocabularies}) or
 *       {@link dev.isthmus.engine.speculative.NgramLookup} (prompt lookup, no second model).</li>
 *   <li>{@link dev.isthmus.engine.sampling.SamplingTransform} — the sampler's chain (bias, penalties,
 *       top-k, top-p, min-p, temperature) as an explicit distribution, used for both the target's {@code p}
 *       and the draft's {@code q}.</li>
 *   <li>{@link dev.isthmus.engine.speculative.RejectionSampler} — accept with {@code min(1, p/q)}, else draw
 *       from {@code max(0, p − q)} normalized: the output is distributed as the target's {@code p}.</li>
 * </ul>
 *
 * <p><b>Greedy</b> (temperature ≤ 0): a proposed token is accepted iff it is the target's argmax at its
 * position, so the output equals the target's greedy output token for token; the tests check this against
 * plain generation. (It relies on the backend giving a row the same logits whether it is evaluated alone or
 * in a batch, up to rounding that does not move the argmax; the CPU backend does for the tested models.)
 *
 * <p><b>Rollback</b>: after verification the target's KV cache is truncated to the accepted tokens
 * ({@link dev.isthmus.engine.graph.KvCache#truncate}); a draft model keeps the longest prefix of its cache that
 * agrees with the accepted context and re-evaluates the rest on its next proposal.
 */
package dev.isthmus.engine.speculative;
