package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.SamplingTransform;
import dev.isthmus.engine.sampling.TokenDistribution;
import dev.isthmus.engine.sampling.TokenHistory;
import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The rejection rule, statistically: whatever the draft's {@code q}, the tokens that come out of
 * verification are distributed as the target's {@code p}, and drafts are accepted at the rate
 * {@code Σ min(p, q)}.
 */
class RejectionSamplerTest {
    private static final int DRAWS = 100_000;
    /** χ² critical values at α = 10⁻⁴ by degrees of freedom (index), so a correct rule fails 1 run in 10⁴. */
    private static final double[] CHI2_CRITICAL = {0, 15.14, 18.42, 21.11, 23.51, 25.74, 27.86, 29.88, 31.83};
    /** Total-variation distance between 10⁵ draws over ≤ 8 tokens and their distribution stays far below. */
    private static final double TV_BOUND = 0.01;

    @Test
    void outputFollowsTargetForOverlappingDistributions() {
        check(TokenDistribution.of(0.30, 0.25, 0.20, 0.10, 0.10, 0.05),
                TokenDistribution.of(0.05, 0.10, 0.15, 0.30, 0.20, 0.20), 1);
    }

    @Test
    void outputFollowsTargetWhenSupportsDiffer() {
        // The draft proposes tokens the target never picks (6, 7) and never proposes ones it does (0, 1).
        check(TokenDistribution.of(0.4, 0.2, 0.1, 0.1, 0.1, 0.1, 0, 0),
                TokenDistribution.of(0, 0, 0.1, 0.2, 0.1, 0.1, 0.25, 0.25), 2);
    }

    @Test
    void outputFollowsTargetForPointMassDraftsAsNgramLookupMakes() {
        TokenDistribution p = TokenDistribution.of(0.1, 0.5, 0.15, 0.25);
        check(p, TokenDistribution.point(1), 3);
        check(p, TokenDistribution.point(3), 4);
    }

    @Test
    void identicalDistributionsAreAlwaysAccepted() {
        TokenDistribution p = TokenDistribution.of(0.1, 0.2, 0.3, 0.4);
        Stats s = run(p, p, 5);
        assertEquals(DRAWS, s.accepted);
    }

    @Test
    void outputFollowsTargetThroughTheSamplingTransform() {
        // p and q from logits through one transform (temperature, top-k, top-p, min-p, a penalty, a ban).
        SamplingParams params = new SamplingParams(0.7f, 6, 0.97f, 0.02f, 1.3f, 0.1f, 0.05f, 8, 1,
                Map.of(7, Float.NEGATIVE_INFINITY));
        SamplingTransform t = new SamplingTransform(params);
        TokenHistory history = new TokenHistory(new int[] {2, 2, 5});
        TokenDistribution p = t.distribution(new float[] {1.0f, 2.5f, 2.0f, 0.3f, -1f, 1.8f, 0.9f, 3f}, history);
        TokenDistribution q = t.distribution(new float[] {1.6f, 1.2f, 2.4f, 0.8f, 0.5f, 1.1f, 1.5f, 3f}, history);
        assertEquals(0, p.probabilityOf(7));
        check(p, q, 6);
    }

    @Test
    void draftTokenOutsideItsOwnDistributionIsRefused() {
        RejectionSampler r = new RejectionSampler(new SplittableRandom(1));
        assertThrows(IllegalArgumentException.class,
                () -> r.verify(TokenDistribution.of(0.5, 0.5), TokenDistribution.of(1, 0), 1));
    }

    @Test
    void residualIsPositivePartOfDifferenceNormalized() {
        TokenDistribution r = RejectionSampler.residual(TokenDistribution.of(0.5, 0.3, 0.2),
                TokenDistribution.of(0.2, 0.5, 0.3));
        assertEquals(1, r.size());
        assertEquals(0, r.id(0));
        assertEquals(1.0, r.probability(0), 1e-12);
        TokenDistribution r2 = RejectionSampler.residual(TokenDistribution.of(0.5, 0.3, 0.2),
                TokenDistribution.point(0));
        assertEquals(0.6, r2.probabilityOf(1), 1e-12);
        assertEquals(0.4, r2.probabilityOf(2), 1e-12);
        assertEquals(0, r2.probabilityOf(0));
    }

    private record Stats(long[] counts, long accepted) {
    }

    private static Stats run(TokenDistribution p, TokenDistribution q, long seed) {
        SplittableRandom draftRandom = new SplittableRandom(seed);
        RejectionSampler verifier = new RejectionSampler(new SplittableRandom(seed * 31 + 7));
        int vocab = 16;
        long[] counts = new long[vocab];
        long accepted = 0;
        for (int i = 0; i < DRAWS; i++) {
            int drafted = q.sample(draftRandom.nextDouble());
            RejectionSampler.Verdict v = verifier.verify(p, q, drafted);
            counts[v.token()]++;
            if (v.accepted()) {
                assertEquals(drafted, v.token());
                accepted++;
            }
        }
        return new Stats(counts, accepted);
    }

    private static void check(TokenDistribution p, TokenDistribution q, long seed) {
        Stats s = run(p, q, seed);
        double chi2 = 0;
        double tv = 0;
        int support = 0;
        for (int id = 0; id < s.counts.length; id++) {
            double expected = p.probabilityOf(id) * DRAWS;
            if (expected == 0) {
                assertEquals(0, s.counts[id], "token " + id + " has probability 0 under p but came out");
                continue;
            }
            support++;
            chi2 += (s.counts[id] - expected) * (s.counts[id] - expected) / expected;
            tv += Math.abs(s.counts[id] - expected) / DRAWS / 2;
        }
        assertTrue(chi2 < CHI2_CRITICAL[support - 1], "chi-square " + chi2 + " with " + (support - 1)
                + " degrees of freedom: output is not distributed as p = " + p);
        assertTrue(tv < TV_BOUND, "total variation " + tv + " from p = " + p);

        // Acceptance rate Σ min(p, q) = 1 − TV(p, q), within 5 standard deviations.
        double overlap = 0;
        for (int id = 0; id < 16; id++) {
            overlap += Math.min(p.probabilityOf(id), q.probabilityOf(id));
        }
        double rate = (double) s.accepted / DRAWS;
        double sd = Math.sqrt(overlap * (1 - overlap) / DRAWS);
        assertEquals(overlap, rate, 5 * sd + 1e-12, "acceptance rate");
    }
}
