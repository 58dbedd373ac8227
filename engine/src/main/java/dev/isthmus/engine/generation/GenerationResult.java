package dev.isthmus.engine.generation;

/**
 * The outcome of one generation.
 *
 * @param text            generated text (without the prompt, cut before a stop string)
 * @param promptTokens    the prompt as tokens (with BOS if added)
 * @param tokens          generated token ids (including an end-of-generation token, if any)
 * @param reason          why it ended
 * @param promptNanos     time spent evaluating the prompt
 * @param generationNanos time spent producing the new tokens
 */
public record GenerationResult(String text, int[] promptTokens, int[] tokens, StopReason reason, long promptNanos,
                               long generationNanos) {
    /** Prompt evaluation speed in tokens per second. */
    public double promptTokensPerSecond() {
        return promptNanos == 0 ? 0 : promptTokens.length * 1e9 / promptNanos;
    }

    /** Generation speed in tokens per second. */
    public double generationTokensPerSecond() {
        return generationNanos == 0 ? 0 : tokens.length * 1e9 / generationNanos;
    }
}
