package dev.isthmus.engine.sampling;

import java.util.Map;

/**
 * How the next token is chosen from logits (llama.cpp's sampler chain, in its order: logit bias,
 * penalties, top-k, top-p, min-p, temperature, then a seeded draw).
 *
 * @param temperature       0 or less: greedy (argmax after bias and penalties)
 * @param topK              keep the k most likely tokens (0: all)
 * @param topP              keep the smallest set whose probability reaches p (1: all)
 * @param minP              drop tokens less likely than {@code minP} times the most likely (0: none)
 * @param repeatPenalty     divide positive (multiply negative) logits of recent tokens (1: none)
 * @param presencePenalty   subtract once from the logit of every recent token
 * @param frequencyPenalty  subtract per occurrence of a recent token
 * @param penaltyLastN      how many recent tokens the penalties look at (0: none, -1: all)
 * @param seed              seed of the draw; the same seed gives the same tokens
 * @param logitBias         added to the logits of the given token ids ({@code -Infinity} bans a token)
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, float repeatPenalty,
                             float presencePenalty, float frequencyPenalty, int penaltyLastN, long seed,
                             Map<Integer, Float> logitBias) {
    public SamplingParams {
        if (Float.isNaN(temperature)) {
            throw new IllegalArgumentException("temperature must be a number, got NaN");
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be ≥ 0, got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("min-p must be in [0, 1], got " + minP);
        }
        if (!(repeatPenalty > 0)) {
            throw new IllegalArgumentException("repeat penalty must be > 0, got " + repeatPenalty);
        }
        logitBias = Map.copyOf(logitBias);
    }

    /** Greedy decoding: always the most likely token. */
    public static SamplingParams greedy() {
        return new SamplingParams(0f, 0, 1f, 0f, 1f, 0f, 0f, 64, 0, Map.of());
    }

    /** llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties. */
    public static SamplingParams defaults(long seed) {
        return new SamplingParams(0.8f, 40, 0.95f, 0.05f, 1f, 0f, 0f, 64, seed, Map.of());
    }

    public SamplingParams withTemperature(float t) {
        return new SamplingParams(t, topK, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty,
                penaltyLastN, seed, logitBias);
    }

    public SamplingParams withSeed(long s) {
        return new SamplingParams(temperature, topK, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty,
                penaltyLastN, s, logitBias);
    }

    public boolean isGreedy() {
        return temperature <= 0;
    }
}
