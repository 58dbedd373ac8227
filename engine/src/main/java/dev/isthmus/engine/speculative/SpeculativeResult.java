package dev.isthmus.engine.speculative;

import dev.isthmus.engine.generation.GenerationResult;

/**
 * The outcome of a speculative generation.
 *
 * @param generation what plain generation would report: text, tokens, stop reason, timings
 * @param stats      proposals, acceptance, and where the time went
 */
public record SpeculativeResult(GenerationResult generation, SpeculationStats stats) {
}
