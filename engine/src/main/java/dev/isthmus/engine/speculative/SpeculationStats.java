package dev.isthmus.engine.speculative;

/**
 * What speculation did during one generation.
 *
 * @param steps        target forward passes after the prompt (each verifies a proposal, possibly empty)
 * @param proposals    steps that verified a non-empty proposal
 * @param drafted      proposed tokens the target verified
 * @param accepted     of those, the tokens accepted
 * @param draftNanos   time spent proposing
 * @param verifyNanos  time spent in the target's forward passes and verification
 */
public record SpeculationStats(int steps, int proposals, long drafted, long accepted, long draftNanos,
                               long verifyNanos) {
    /** Accepted over drafted tokens (NaN if nothing was drafted). */
    public double acceptanceRate() {
        return drafted == 0 ? Double.NaN : (double) accepted / drafted;
    }

    /** Mean tokens accepted per proposal, not counting the target's own token. */
    public double meanAcceptedLength() {
        return proposals == 0 ? Double.NaN : (double) accepted / proposals;
    }
}
