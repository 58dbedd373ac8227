package dev.isthmus.engine.sampling;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Picks tokens from logits for one sequence, by {@link SamplingParams}. Stateful: it owns the seeded
 * random stream and remembers the tokens it has seen for the penalties.
 */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;
    private int[] history = new int[64];
    private int historySize;

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    public SamplingParams params() {
        return params;
    }

    /** Remembers a token (prompt or generated) for the penalties. */
    public void accept(int token) {
        if (historySize == history.length) {
            history = Arrays.copyOf(history, historySize * 2);
        }
        history[historySize++] = token;
    }

    /**
     * Chooses the next token. {@code logits} is modified (bias and penalties applied).
     *
     * @throws IllegalStateException if every token has been banned
     */
    public int sample(float[] logits) {
        applyBias(logits);
        applyPenalties(logits);
        if (params.isGreedy()) {
            return argmax(logits);
        }
        int[] ids = candidatesByLogit(logits);
        int n = ids.length;
        if (n == 0) {
            throw new IllegalStateException("every token is banned by the logit bias");
        }
        if (params.topK() > 0) {
            n = Math.min(n, params.topK());
        }
        double[] p = softmax(logits, ids, n, 1f);
        n = topP(p, n);
        n = minP(p, n);
        p = softmax(logits, ids, n, params.temperature());
        double r = random.nextDouble();
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += p[i];
            if (r < acc) {
                return ids[i];
            }
        }
        return ids[n - 1];
    }

    private void applyBias(float[] logits) {
        for (Map.Entry<Integer, Float> e : params.logitBias().entrySet()) {
            int id = e.getKey();
            if (id >= 0 && id < logits.length) {
                logits[id] += e.getValue();
            }
        }
    }

    private void applyPenalties(float[] logits) {
        if (params.penaltyLastN() == 0 || historySize == 0 || (params.repeatPenalty() == 1f
                && params.presencePenalty() == 0f && params.frequencyPenalty() == 0f)) {
            return;
        }
        int from = params.penaltyLastN() < 0 ? 0 : Math.max(0, historySize - params.penaltyLastN());
        Map<Integer, Integer> counts = new HashMap<>();
        for (int i = from; i < historySize; i++) {
            counts.merge(history[i], 1, Integer::sum);
        }
        counts.forEach((id, count) -> {
            if (id < 0 || id >= logits.length) {
                return;
            }
            float l = logits[id];
            l = l > 0 ? l / params.repeatPenalty() : l * params.repeatPenalty();
            logits[id] = l - count * params.frequencyPenalty() - params.presencePenalty();
        });
    }

    private static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Token ids with a finite logit, most likely first (ties: lower id first). */
    private static int[] candidatesByLogit(float[] logits) {
        // Sorting primitive keys (descending logit in the high half, id in the low half) avoids boxing a
        // vocabulary of 100k+ entries for every token.
        long[] keys = new long[logits.length];
        int n = 0;
        for (int i = 0; i < logits.length; i++) {
            float l = logits[i];
            if (l != Float.NEGATIVE_INFINITY && !Float.isNaN(l)) {
                int bits = Float.floatToIntBits(-l);
                int sortable = bits ^ ((bits >> 31) & 0x7fffffff);
                keys[n++] = ((long) sortable << 32) | i;
            }
        }
        Arrays.sort(keys, 0, n);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (int) keys[i];
        }
        return ids;
    }

    private static double[] softmax(float[] logits, int[] ids, int n, float temperature) {
        double[] p = new double[n];
        double max = logits[ids[0]];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            p[i] = Math.exp((logits[ids[i]] - max) / temperature);
            sum += p[i];
        }
        for (int i = 0; i < n; i++) {
            p[i] /= sum;
        }
        return p;
    }

    private int topP(double[] p, int n) {
        if (params.topP() >= 1f) {
            return n;
        }
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += p[i];
            if (acc >= params.topP()) {
                return i + 1;
            }
        }
        return n;
    }

    private int minP(double[] p, int n) {
        if (params.minP() <= 0f) {
            return n;
        }
        double threshold = p[0] * params.minP();
        int keep = 1;
        while (keep < n && p[keep] >= threshold) {
            keep++;
        }
        return keep;
    }
}
