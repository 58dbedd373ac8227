package dev.isthmus.engine.sampling;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The transform is the distribution the {@link Sampler} draws from: with the same seed, walking the
 * transform's distribution picks the Sampler's tokens draw for draw.
 */
class SamplingTransformTest {
    private static final List<SamplingParams> PARAMS = List.of(
            SamplingParams.defaults(11),
            new SamplingParams(1.3f, 0, 0.9f, 0f, 1f, 0f, 0f, 64, 12, Map.of()),
            new SamplingParams(0.5f, 5, 1f, 0f, 1f, 0f, 0f, 64, 13, Map.of()),
            new SamplingParams(1f, 0, 1f, 0.1f, 1.1f, 0.2f, 0.1f, 16, 14, Map.of(3, Float.NEGATIVE_INFINITY, 4, 2f)),
            new SamplingParams(0.9f, 20, 0.8f, 0.05f, 1.5f, 0f, 0f, -1, 15, Map.of(0, Float.NEGATIVE_INFINITY)));

    @Test
    void drawsTheSamplersTokens() {
        SplittableRandom r = new SplittableRandom(42);
        for (SamplingParams params : PARAMS) {
            for (int vocab : new int[] {8, 100, 3000}) {
                float[] logits = randomLogits(r, vocab);
                int[] history = r.ints(40, 0, vocab).toArray();
                Sampler sampler = new Sampler(params);
                for (int t : history) {
                    sampler.accept(t);
                }
                TokenDistribution d = new SamplingTransform(params).distribution(logits.clone(),
                        new TokenHistory(history));
                SplittableRandom own = new SplittableRandom(params.seed());
                for (int draw = 0; draw < 200; draw++) {
                    assertEquals(sampler.sample(logits.clone()), d.sample(own.nextDouble()),
                            "draw " + draw + " with " + params + ", vocab " + vocab);
                }
                double sum = 0;
                for (int i = 0; i < d.size(); i++) {
                    sum += d.probability(i);
                }
                assertEquals(1, sum, 1e-9);
            }
        }
    }

    @Test
    void greedyIsTheSamplersArgmaxAfterPenalties() {
        SplittableRandom r = new SplittableRandom(7);
        SamplingParams params = new SamplingParams(0f, 0, 1f, 0f, 1.8f, 0.5f, 0.3f, 8, 0, Map.of(1, -3f));
        for (int trial = 0; trial < 100; trial++) {
            float[] logits = randomLogits(r, 50);
            int[] history = r.ints(12, 0, 50).toArray();
            Sampler sampler = new Sampler(params);
            for (int t : history) {
                sampler.accept(t);
            }
            SamplingTransform t = new SamplingTransform(params);
            assertEquals(sampler.sample(logits.clone()), t.greedy(logits.clone(), new TokenHistory(history)));
            TokenDistribution point = t.distribution(logits.clone(), new TokenHistory(history));
            assertEquals(1, point.size());
            assertEquals(sampler.sample(logits.clone()), point.id(0));
        }
    }

    @Test
    void topKSelectionIsThePrefixOfTheFullOrder() {
        SplittableRandom r = new SplittableRandom(3);
        for (int trial = 0; trial < 200; trial++) {
            int vocab = 1 + r.nextInt(300);
            float[] logits = new float[vocab];
            for (int i = 0; i < vocab; i++) {
                // Few distinct values: many ties, broken by id; some banned or NaN.
                int kind = r.nextInt(20);
                logits[i] = kind == 0 ? Float.NEGATIVE_INFINITY : kind == 1 ? Float.NaN : r.nextInt(7) - 3;
            }
            int[] full = SamplingTransform.candidatesByLogit(logits, 0);
            int k = 1 + r.nextInt(vocab + 2);
            int[] top = SamplingTransform.candidatesByLogit(logits, k);
            assertArrayEquals(Arrays.copyOf(full, Math.min(k, full.length)), top, "k = " + k);
        }
    }

    @Test
    void everyTokenBannedIsAnError() {
        SamplingParams params = new SamplingParams(1f, 0, 1f, 0f, 1f, 0f, 0f, 64, 1,
                Map.of(0, Float.NEGATIVE_INFINITY, 1, Float.NEGATIVE_INFINITY));
        assertThrows(IllegalStateException.class,
                () -> new SamplingTransform(params).distribution(new float[] {1, 2}, new TokenHistory()));
    }

    @Test
    void infiniteLogitsShareAllTheMass() {
        // The softmax's limit as those logits grow: the other tokens get nothing, whatever top-k/p and min-p say.
        float[] logits = {1f, Float.POSITIVE_INFINITY, 2f, Float.POSITIVE_INFINITY};
        TokenDistribution d = new SamplingTransform(SamplingParams.defaults(3)).distribution(logits, new TokenHistory());
        assertEquals(0.5, d.probabilityOf(1), 0);
        assertEquals(0.5, d.probabilityOf(3), 0);
        assertEquals(0, d.probabilityOf(2), 0);
    }

    @Test
    void aNanTemperatureIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> SamplingParams.defaults(1).withTemperature(Float.NaN));
    }

    @Test
    void softmaxProbabilityOfArgmax() {
        assertEquals(Math.exp(2) / (1 + Math.exp(1) + Math.exp(2)),
                SamplingTransform.softmaxProbability(new float[] {0, 1, 2, Float.NEGATIVE_INFINITY}, 2), 1e-12);
    }

    private static float[] randomLogits(SplittableRandom r, int vocab) {
        float[] l = new float[vocab];
        for (int i = 0; i < vocab; i++) {
            l[i] = (float) (r.nextGaussian() * 2.5);
        }
        return l;
    }
}
