package dev.isthmus.engine.serving;

import dev.isthmus.engine.speculative.DraftSource;
import dev.isthmus.engine.speculative.SpeculativeParams;

import java.util.Objects;

/**
 * Speculative decoding in an {@link Engine}: where each decoding sequence's proposals come from (a draft model
 * or n-gram lookup; a draft model is the caller's and stays open while the engine runs) and how many tokens a
 * step proposes.
 */
public record SpeculationConfig(DraftSource drafts, SpeculativeParams params) {
    public SpeculationConfig {
        Objects.requireNonNull(drafts, "drafts");
        Objects.requireNonNull(params, "params");
    }
}
