package dev.isthmus.engine.serving;

import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.sampling.SamplingParams;

import java.util.List;

/**
 * One generation request for the {@link Engine}.
 *
 * @param prompt    prompt token ids (with BOS if wanted; see {@link Engine#tokenize})
 * @param maxTokens new tokens at most
 * @param sampling  how to choose each token (its own seed, penalties, bias)
 * @param stop      strings that end generation; the text stops before the first one found
 * @param ignoreEos keep generating past end-of-generation tokens (benchmarks)
 */
public record Request(int[] prompt, int maxTokens, SamplingParams sampling, List<String> stop, boolean ignoreEos) {
    public Request {
        prompt = prompt.clone();
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt: nothing to condition on (add BOS or some text)");
        }
        if (maxTokens < 0) {
            throw new IllegalArgumentException("max tokens must be ≥ 0, got " + maxTokens);
        }
        stop = List.copyOf(stop);
        if (stop.stream().anyMatch(String::isEmpty)) {
            throw new IllegalArgumentException("empty stop string");
        }
    }

    /** Greedy decoding of up to {@code maxTokens} tokens, no stop strings. */
    public static Request greedy(int[] prompt, int maxTokens) {
        return new Request(prompt, maxTokens, SamplingParams.greedy(), List.of(), false);
    }

    /** The request {@link dev.isthmus.engine.generation.Generator} would serve for these parameters. */
    public static Request of(int[] prompt, GenerationParams params) {
        return new Request(prompt, params.maxTokens(), params.sampling(), params.stop(), false);
    }

    @Override
    public int[] prompt() {
        return prompt.clone();
    }
}
