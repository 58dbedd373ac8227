package dev.isthmus.engine.sampling;

import org.junit.jupiter.api.Test;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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

    /** Draws recorded before the Sampler drew through {@link SamplingTransform}: a seed's tokens must not move. */
    @Test
    void seededDrawsAreStable() {
        assertSeededDraws(SamplingParams.defaults(42), 278, 456, 395, 23, 395, 297, 232, 54, 143, 72, 32, 54, 304,
                198, 222, 172, 114, 262, 419, 348, 111, 198, 419, 260);
        assertSeededDraws(params(1f, 0, 1f, 0f), 381, 456, 282, 162, 412, 34, 85, 178, 143, 323, 32, 169, 272, 428,
                361, 224, 134, 262, 90, 321, 313, 198, 139, 307);
        assertSeededDraws(new SamplingParams(0.7f, 8, 0.9f, 0f, 1.3f, 0.4f, 0.2f, 16, 3,
                        Map.of(5, Float.NEGATIVE_INFINITY, 9, 1.5f)), 116, 14, 414, 23, 395, 146, 232, 106, 143, 248,
                32, 455, 265, 337, 492, 147, 114, 200, 419, 380, 354, 478, 11, 263);
        assertSeededDraws(new SamplingParams(1.5f, 0, 1f, 0.02f, 1f, 0f, 0f, -1, 1234567, Map.of()), 278, 134, 445,
                490, 374, 31, 303, 151, 356, 225, 18, 349, 334, 135, 416, 147, 139, 200, 463, 380, 390, 198, 111, 175);
    }

    private static void assertSeededDraws(SamplingParams p, int... expected) {
        SplittableRandom logits = new SplittableRandom(1);
        Sampler s = new Sampler(p);
        int[] drawn = new int[expected.length];
        for (int t = 0; t < drawn.length; t++) {
            float[] l = new float[500];
            for (int i = 0; i < l.length; i++) {
                l[i] = (float) (logits.nextGaussian() * 2);
            }
            drawn[t] = s.sample(l);
            s.accept(drawn[t]);
        }
        assertArrayEquals(expected, drawn, p.toString());
    }

    @Test
    void anInfiniteLogitIsAlwaysDrawn() {
        // Whatever min-p says (before, with min-p 0 the NaN softmax made the walk end on the least likely token).
        for (float minP : new float[] {0f, 0.05f}) {
            SamplingParams p = new SamplingParams(0.8f, 40, 0.95f, minP, 1f, 0f, 0f, 64, 3, Map.of());
            Sampler s = new Sampler(p);
            for (int i = 0; i < 20; i++) {
                assertEquals(1, s.sample(new float[] {1f, Float.POSITIVE_INFINITY, 2f}), "min-p " + minP);
            }
        }
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
