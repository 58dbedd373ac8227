package dev.isthmus.engine.speculative;

/**
 * What speculation did during one generation, or, for a serving engine, for all its generations so far.
 *
 * @param steps        decode steps after the prompt (each verifies a proposal, possibly empty); one generation's
 *                     are target forward passes, an engine's are counted per sequence and share passes
 * @param proposals    steps that verified a non-empty proposal
 * @param drafted      proposed tokens the target verified
 * @param accepted     of those, the tokens accepted
 * @param draftNanos   time spent proposing
 * @param verifyNanos  time spent in the target's forward passes and verification (an engine's: of the whole
 *                     passes that verified a proposal)
 */
public record SpeculationStats(long steps, long proposals, long drafted, long accepted, long draftNanos,
                               long verifyNanos) {
    /** Nothing yet. */
    public static final SpeculationStats NONE = new SpeculationStats(0, 0, 0, 0, 0, 0);

    /** Both counts added. */
    public SpeculationStats plus(SpeculationStats o) {
        return new SpeculationStats(steps + o.steps, proposals + o.proposals, drafted + o.drafted,
                accepted + o.accepted, draftNanos + o.draftNanos, verifyNanos + o.verifyNanos);
    }

    /** Accepted over drafted tokens (NaN if nothing was drafted). */
    public double acceptanceRate() {
        return drafted == 0 ? Double.NaN : (double) accepted / drafted;
    }

    /** Mean tokens accepted per proposal, not counting the target's own token. */
    public double meanAcceptedLength() {
        return proposals == 0 ? Double.NaN : (double) accepted / proposals;
    }
}
