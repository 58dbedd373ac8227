package dev.isthmus.engine.sampling;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {
    private static final float[] LOGITS = {1f, 3f, 2f, 0.5f, 2.9f};

    private static SamplingParams params(float temp, int topK, float topP, float minP) {
        return new SamplingParams(temp, topK, topP, minP, 1f, 0f, 0f, 64, 7, Map.of());
    }

    private static int[] histogram(SamplingParams p, int draws) {
        Sampler s = new Sampler(p);
        int[] counts = new int[LOGITS.length];
        for (int i = 0; i < draws; i++) {
            counts[s.sample(LOGITS.clone())]++;
        }
        return counts;
    }

    @Test
    void greedyTakesTheLargestLogit() {
        assertEquals(1, new Sampler(SamplingParams.greedy()).sample(LOGITS.clone()));
    }

    @Test
    void temperatureSamplingFollowsTheSoftmax() {
        int draws = 200_000;
        int[] counts = histogram(params(1f, 0, 1f, 0f), draws);
        double sum = 0;
        for (float l : LOGITS) {
            sum += Math.exp(l);
        }
        for (int i = 0; i < LOGITS.length; i++) {
            double expected = Math.exp(LOGITS[i]) / sum;
            assertEquals(expected, counts[i] / (double) draws, 0.005, "token " + i);
        }
    }

    @Test
    void topKKeepsOnlyTheKMostLikely() {
        int[] counts = histogram(params(1f, 2, 1f, 0f), 20_000);
        assertEquals(0, counts[0] + counts[2] + counts[3]);
        assertTrue(counts[1] > 0 && counts[4] > 0);
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // softmax: 3 -> 0.40, 2.9 -> 0.36, 2 -> 0.15, ...: p = 0.7 needs the first two.
        int[] counts = histogram(params(1f, 0, 0.7f, 0f), 20_000);
        assertEquals(0, counts[0] + counts[2] + counts[3]);
    }

    @Test
    void minPDropsTokensFarLessLikelyThanTheBest() {
        // exp(2 - 3) = 0.37 >= 0.3 stays; exp(1 - 3) = 0.14 goes.
        int[] counts = histogram(params(1f, 0, 1f, 0.3f), 20_000);
        assertEquals(0, counts[0] + counts[3]);
        assertTrue(counts[2] > 0);
    }

    @Test
    void sameSeedSameTokensOtherSeedOtherTokens() {
        Sampler a = new Sampler(params(1f, 0, 1f, 0f));
        Sampler b = new Sampler(params(1f, 0, 1f, 0f));
        Sampler c = new Sampler(params(1f, 0, 1f, 0f).withSeed(8));
        StringBuilder sa = new StringBuilder(), sb = new StringBuilder(), sc = new StringBuilder();
        for (int i = 0; i < 64; i++) {
            sa.append(a.sample(LOGITS.clone()));
            sb.append(b.sample(LOGITS.clone()));
            sc.append(c.sample(LOGITS.clone()));
        }
        assertEquals(sa.toString(), sb.toString());
        assertNotEquals(sa.toString(), sc.toString());
    }

    @Test
    void logitBiasCanBanAndForceTokens() {
        SamplingParams ban = new SamplingParams(0f, 0, 1f, 0f, 1f, 0f, 0f, 64, 0, Map.of(1, Float.NEGATIVE_INFINITY));
        assertEquals(4, new Sampler(ban).sample(LOGITS.clone()));
        SamplingParams force = new SamplingParams(1f, 0, 1f, 0f, 1f, 0f, 0f, 64, 0, Map.of(3, 100f));
        assertEquals(3, new Sampler(force).sample(LOGITS.clone()));
        SamplingParams all = new SamplingParams(1f, 0, 1f, 0f, 1f, 0f, 0f, 64, 0,
                Map.of(0, Float.NEGATIVE_INFINITY, 1, Float.NEGATIVE_INFINITY, 2, Float.NEGATIVE_INFINITY,
                        3, Float.NEGATIVE_INFINITY, 4, Float.NEGATIVE_INFINITY));
        assertThrows(IllegalStateException.class, () -> new Sampler(all).sample(LOGITS.clone()));
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        SamplingParams p = new SamplingParams(0f, 0, 1f, 0f, 2f, 0f, 0f, 64, 0, Map.of());
        Sampler s = new Sampler(p);
        s.accept(1);
        float[] logits = {1f, 3f, 2f, -1f, 2.9f};
        assertEquals(4, s.sample(logits));
        assertEquals(1.5f, logits[1]);
        s.accept(3);
        float[] again = {1f, 3f, 2f, -1f, 2.9f};
        s.sample(again);
        assertEquals(-2f, again[3]);
    }

    @Test
    void presenceAndFrequencyPenaltiesSubtract() {
        SamplingParams p = new SamplingParams(0f, 0, 1f, 0f, 1f, 0.5f, 0.25f, 64, 0, Map.of());
        Sampler s = new Sampler(p);
        s.accept(1);
        s.accept(1);
        s.accept(1);
        float[] logits = LOGITS.clone();
        assertEquals(4, s.sample(logits));
        assertEquals(3f - 0.5f - 3 * 0.25f, logits[1], 1e-6);
    }

    @Test
    void penaltiesLookOnlyAtTheLastNTokens() {
        SamplingParams p = new SamplingParams(0f, 0, 1f, 0f, 10f, 0f, 0f, 2, 0, Map.of());
        Sampler s = new Sampler(p);
        s.accept(1);
        s.accept(0);
        s.accept(2);
        assertEquals(1, s.sample(LOGITS.clone()), "token 1 is outside the last 2 and must not be penalized");
    }

    @Test
    void invalidParametersAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> params(1f, -1, 1f, 0f));
        assertThrows(IllegalArgumentException.class, () -> params(1f, 0, 0f, 0f));
        assertThrows(IllegalArgumentException.class, () -> params(1f, 0, 1f, 1.5f));
    }
}
