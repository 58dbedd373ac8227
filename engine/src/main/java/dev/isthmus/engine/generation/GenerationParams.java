package dev.isthmus.engine.generation;

import dev.isthmus.engine.sampling.SamplingParams;

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
}
