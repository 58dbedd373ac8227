package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.TokenDistribution;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Speculative sampling's verification rule (Leviathan et al. 2023; Chen et al. 2023): a token {@code x}
 * drawn from the draft's {@code q} is accepted with probability {@code min(1, p(x)/q(x))}; if rejected, the
 * replacement is drawn from {@code max(0, p − q)} normalized. The token that comes out is distributed exactly
 * as {@code p}, whatever {@code q} is, so speculation changes speed but not what is sampled.
 */
public final class RejectionSampler {
    /** The token at one position and whether it is the drafted one. */
    public record Verdict(boolean accepted, int token) {
    }

    private final SplittableRandom random;

    public RejectionSampler(SplittableRandom random) {
        this.random = random;
    }

    /**
     * @param p       the target's distribution at this position
     * @param q       the distribution {@code drafted} was drawn from ({@link TokenDistribution#point} for a
     *                deterministic drafter)
     * @param drafted the proposed token
     */
    public Verdict verify(TokenDistribution p, TokenDistribution q, int drafted) {
        double px = p.probabilityOf(drafted);
        double qx = q.probabilityOf(drafted);
        if (!(qx > 0)) {
            throw new IllegalArgumentException("draft token " + drafted + " has probability 0 in its own distribution");
        }
        if (px >= qx || random.nextDouble() * qx < px) {
            return new Verdict(true, drafted);
        }
        return new Verdict(false, residual(p, q).sample(random.nextDouble()));
    }

    /** A plain draw from {@code p} (the position after the last accepted draft token). */
    public int sample(TokenDistribution p) {
        return p.sample(random.nextDouble());
    }

    /**
     * The residual distribution of speculative sampling, {@code max(0, p − q)} normalized, over the support
     * of {@code p} (outside it {@code p − q ≤ 0}). If nothing remains (only possible through rounding, as a
     * rejection implies {@code p ≠ q}), {@code p} itself.
     */
    static TokenDistribution residual(TokenDistribution p, TokenDistribution q) {
        int n = p.size();
        int[] ids = new int[n];
        double[] r = new double[n];
        double sum = 0;
        int m = 0;
        for (int i = 0; i < n; i++) {
            double v = p.probability(i) - q.probabilityOf(p.id(i));
            if (v > 0) {
                ids[m] = p.id(i);
                r[m++] = v;
                sum += v;
            }
        }
        if (m == 0 || !(sum > 0)) {
            return p;
        }
        for (int i = 0; i < m; i++) {
            r[i] /= sum;
        }
        return new TokenDistribution(Arrays.copyOf(ids, m), Arrays.copyOf(r, m));
    }
}
