package dev.isthmus.engine.speculative;

/**
 * How much to speculate per step.
 *
 * @param draftMax tokens proposed per step at most (the verification batch is this plus one)
 * @param draftMin proposals shorter than this are not verified: the step decodes one token as without
 *                 speculation (0: verify every proposal)
 */
public record SpeculativeParams(int draftMax, int draftMin) {
    /** llama.cpp's defaults: up to 16 tokens, any proposal verified. */
    public static final SpeculativeParams DEFAULTS = new SpeculativeParams(16, 0);

    public SpeculativeParams {
        if (draftMax < 1) {
            throw new IllegalArgumentException("draft max must be ≥ 1, got " + draftMax);
        }
        if (draftMin < 0 || draftMin > draftMax) {
            throw new IllegalArgumentException("draft min must be in [0, draft max = " + draftMax + "], got "
                    + draftMin);
        }
    }
}
