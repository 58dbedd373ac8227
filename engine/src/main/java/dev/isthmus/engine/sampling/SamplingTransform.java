package dev.isthmus.engine.sampling;

import java.util.Arrays;
import java.util.Map;

/**
 * The sampler chain of {@link SamplingParams} as an explicit distribution: logit bias, penalties over an
 * explicit token history, top-k, top-p, min-p, then temperature. The {@link Sampler} draws from it; speculative
 * sampling needs the target's probabilities {@code p} and the draft's {@code q} as numbers, and takes both from
 * this one transform with the same parameters, so that {@code p} is exactly what plain sampling draws from.
 *
 * <p>Stateless apart from its parameters (the history is passed in), so one instance serves both the rows of a
 * verification batch (each with its own history) and the draft model.
 */
public final class SamplingTransform {
    private final SamplingParams params;

    public SamplingTransform(SamplingParams params) {
        this.params = params;
    }

    public SamplingParams params() {
        return params;
    }

    public boolean isGreedy() {
        return params.isGreedy();
    }

    /**
     * Greedy choice: the argmax after bias and penalties (lowest id on ties), as the Sampler with temperature
     * ≤ 0. {@code logits} is modified (bias and penalties applied).
     */
    public int greedy(float[] logits, TokenHistory history) {
        adjust(logits, history);
        return argmax(logits);
    }

    /**
     * The distribution of the next token after bias, penalties, top-k, top-p, min-p and temperature. For
     * greedy parameters, all mass on the argmax. Tokens whose logit is +Infinity (a forcing logit bias) take all
     * the mass, shared equally: the softmax's limit. {@code logits} is modified (bias and penalties applied).
     *
     * @throws IllegalStateException if every token has been banned
     */
    public TokenDistribution distribution(float[] logits, TokenHistory history) {
        adjust(logits, history);
        if (params.isGreedy()) {
            return TokenDistribution.point(argmax(logits));
        }
        int[] ids = candidatesByLogit(logits, params.topK());
        int n = ids.length;
        if (n == 0) {
            throw new IllegalStateException("every token is banned by the logit bias");
        }
        int forced = 0;
        while (forced < n && logits[ids[forced]] == Float.POSITIVE_INFINITY) {
            forced++;
        }
        if (forced > 0) {
            double[] p = new double[forced];
            Arrays.fill(p, 1.0 / forced);
            return new TokenDistribution(Arrays.copyOf(ids, forced), p);
        }
        double[] p = softmax(logits, ids, n, 1f);
        n = topP(p, n);
        n = minP(p, n);
        p = softmax(logits, ids, n, params.temperature());
        return new TokenDistribution(Arrays.copyOf(ids, n), p);
    }

    /** Applies the logit bias and the penalties for {@code history} to {@code logits}, in place. */
    public void adjust(float[] logits, TokenHistory history) {
        for (Map.Entry<Integer, Float> e : params.logitBias().entrySet()) {
            int id = e.getKey();
            if (id >= 0 && id < logits.length) {
                logits[id] += e.getValue();
            }
        }
        int size = history.size();
        if (params.penaltyLastN() == 0 || size == 0 || (params.repeatPenalty() == 1f
                && params.presencePenalty() == 0f && params.frequencyPenalty() == 0f)) {
            return;
        }
        int from = params.penaltyLastN() < 0 ? 0 : Math.max(0, size - params.penaltyLastN());
        int[] window = Arrays.copyOfRange(history.array(), from, size);
        Arrays.sort(window);
        for (int i = 0; i < window.length; ) {
            int id = window[i];
            int j = i;
            while (j < window.length && window[j] == id) {
                j++;
            }
            int count = j - i;
            i = j;
            if (id < 0 || id >= logits.length) {
                continue;
            }
            float l = logits[id];
            l = l > 0 ? l / params.repeatPenalty() : l * params.repeatPenalty();
            logits[id] = l - count * params.frequencyPenalty() - params.presencePenalty();
        }
    }

    /** The probability of token {@code id} under a plain softmax (temperature 1) of {@code logits}. */
    public static double softmaxProbability(float[] logits, int id) {
        float max = Float.NEGATIVE_INFINITY;
        for (float l : logits) {
            if (l > max) {
                max = l;
            }
        }
        if (max == Float.NEGATIVE_INFINITY) {
            return 0;
        }
        double sum = 0;
        for (float l : logits) {
            if (l != Float.NEGATIVE_INFINITY && !Float.isNaN(l)) {
                sum += Math.exp((double) l - max);
            }
        }
        return Math.exp((double) logits[id] - max) / sum;
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * Token ids with a finite logit, most likely first (ties: lower id first). With {@code topK > 0} only the
     * first {@code topK} are ordered and returned (selected in linear time): the same prefix a full sort gives,
     * since the keys are distinct.
     */
    static int[] candidatesByLogit(float[] logits, int topK) {
        // Ordering primitive keys (descending logit in the high half, id in the low half) avoids boxing a
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
        if (topK > 0 && topK < n) {
            select(keys, 0, n - 1, topK - 1);
            n = topK;
        }
        Arrays.sort(keys, 0, n);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (int) keys[i];
        }
        return ids;
    }

    /** Rearranges {@code a[lo..hi]} so that {@code a[k]} is the k-th smallest and smaller keys precede it. */
    private static void select(long[] a, int lo, int hi, int k) {
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            // Median of three as the pivot: keeps sorted or reversed logits linear.
            if (a[mid] < a[lo]) {
                swap(a, mid, lo);
            }
            if (a[hi] < a[lo]) {
                swap(a, hi, lo);
            }
            if (a[hi] < a[mid]) {
                swap(a, hi, mid);
            }
            long pivot = a[mid];
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (a[i] < pivot) {
                    i++;
                }
                while (a[j] > pivot) {
                    j--;
                }
                if (i <= j) {
                    swap(a, i++, j--);
                }
            }
            if (k <= j) {
                hi = j;
            } else if (k >= i) {
                lo = i;
            } else {
                return;
            }
        }
    }

    private static void swap(long[] a, int i, int j) {
        long t = a[i];
        a[i] = a[j];
        a[j] = t;
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
