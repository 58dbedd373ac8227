package dev.isthmus.engine.serving;

import dev.isthmus.engine.generation.StopReason;

/**
 * The outcome of a request.
 *
 * @param text                  generated text (cut before a stop string)
 * @param promptTokens          the prompt tokens
 * @param tokens                generated token ids (including an end-of-generation token, if any)
 * @param reason                why it ended
 * @param cachedPromptTokens    prompt tokens whose keys and values were reused from the prefix cache
 * @param queueNanos            from submission to first admission into a batch
 * @param timeToFirstTokenNanos from submission to the first generated token (0 if none)
 * @param totalNanos            from submission to the end
 * @param preemptions           how often the sequence was evicted and recomputed for lack of KV blocks
 * @param draftedTokens         tokens proposed for this request and verified by the model (0 without speculation)
 * @param acceptedDraftTokens   of those, the tokens accepted
 */
public record Completion(String text, int[] promptTokens, int[] tokens, StopReason reason, int cachedPromptTokens,
                         long queueNanos, long timeToFirstTokenNanos, long totalNanos, int preemptions,
                         int draftedTokens, int acceptedDraftTokens) {
}
