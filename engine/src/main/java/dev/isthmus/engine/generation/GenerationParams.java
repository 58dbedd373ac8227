package dev.isthmus.engine.generation;

import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.util.List;

/**
 * What to generate.
 *
 * @param maxTokens    new tokens at most
 * @param sampling     how to choose each token
 * @param stop         strings that end generation; the text stops before the first one found
 * @param addBos       add the BOS token before the prompt; {@code null}: the vocabulary's default
 * @param parseSpecial recognise special-token texts (e.g. {@code <|im_start|>}) in the prompt
 */
public record GenerationParams(int maxTokens, SamplingParams sampling, List<String> stop, Boolean addBos,
                               boolean parseSpecial) {
    public GenerationParams {
        if (maxTokens < 0) {
            throw new IllegalArgumentException("max tokens must be ≥ 0, got " + maxTokens);
        }
        stop = List.copyOf(stop);
        if (stop.stream().anyMatch(String::isEmpty)) {
            throw new IllegalArgumentException("empty stop string");
        }
    }

    public static GenerationParams greedy(int maxTokens) {
        return new GenerationParams(maxTokens, SamplingParams.greedy(), List.of(), null, false);
    }

    /** Tokenizes {@code prompt} with BOS and special tokens as these parameters ask. */
    public int[] tokenize(Tokenizer tokenizer, String prompt) {
        return tokenizer.encode(prompt, addBos, parseSpecial);
    }

    /**
     * The KV cache positions a generation after {@code prompt} can use: the prompt and {@link #maxTokens} new
     * tokens, at most the context window.
     *
     * @throws IllegalArgumentException if the prompt is empty or does not fit the context window
     */
    public int cacheCapacity(int[] prompt, int contextLength) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt: nothing to condition on (add BOS or some text)");
        }
        if (prompt.length >= contextLength) {
            throw new IllegalArgumentException("prompt of " + prompt.length
                    + " tokens does not fit the context window of " + contextLength);
        }
        return (int) Math.min(contextLength, (long) prompt.length + maxTokens);
    }
}
