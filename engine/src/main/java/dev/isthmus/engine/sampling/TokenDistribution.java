package dev.isthmus.engine.sampling;

import java.util.Arrays;

/**
 * A probability distribution over token ids with finite support: the tokens that survive the
 * {@link SamplingTransform}, most likely first (ties: lower id first), the order in which the {@link Sampler}
 * walks them. Tokens not listed have probability 0. Immutable.
 */
public final class TokenDistribution {
    private final int[] ids;
    private final double[] probs;
    /** {@code (id << 32) | index}, sorted, built on the first lookup of a large support. */
    private long[] index;

    /**
     * @param ids   distinct token ids
     * @param probs their probabilities, non-negative, summing to 1 (not checked beyond the sign)
     */
    public TokenDistribution(int[] ids, double[] probs) {
        if (ids.length != probs.length || ids.length == 0) {
            throw new IllegalArgumentException("a distribution needs as many probabilities as ids, at least one: "
                    + ids.length + " ids, " + probs.length + " probabilities");
        }
        for (double p : probs) {
            if (!(p >= 0)) {
                throw new IllegalArgumentException("negative or NaN probability " + p);
            }
        }
        this.ids = ids;
        this.probs = probs;
    }

    /** All mass on one token: what a deterministic drafter (n-gram lookup) proposes from. */
    public static TokenDistribution point(int id) {
        return new TokenDistribution(new int[] {id}, new double[] {1});
    }

    /**
     * A distribution over {@code 0 .. p.length-1} from explicit probabilities (zeros are dropped), ordered by
     * descending probability; {@code p} is normalized.
     */
    public static TokenDistribution of(double... p) {
        double sum = 0;
        int n = 0;
        for (double v : p) {
            if (!(v >= 0)) {
                throw new IllegalArgumentException("negative or NaN probability " + v);
            }
            sum += v;
            n += v > 0 ? 1 : 0;
        }
        if (n == 0) {
            throw new IllegalArgumentException("no probability mass");
        }
        Integer[] order = new Integer[n];
        int j = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] > 0) {
                order[j++] = i;
            }
        }
        Arrays.sort(order, (a, b) -> {
            int c = Double.compare(p[b], p[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int[] ids = new int[n];
        double[] probs = new double[n];
        for (int i = 0; i < n; i++) {
            ids[i] = order[i];
            probs[i] = p[ids[i]] / sum;
        }
        return new TokenDistribution(ids, probs);
    }

    /** Tokens with non-zero probability (or at least listed), most likely first. */
    public int size() {
        return ids.length;
    }

    public int id(int i) {
        return ids[i];
    }

    public double probability(int i) {
        return probs[i];
    }

    /** The most likely token's probability. */
    public double maxProbability() {
        double m = 0;
        for (double p : probs) {
            m = Math.max(m, p);
        }
        return m;
    }

    /** The probability of token {@code id} (0 if it is not in the support). */
    public double probabilityOf(int id) {
        if (ids.length <= 32) {
            for (int i = 0; i < ids.length; i++) {
                if (ids[i] == id) {
                    return probs[i];
                }
            }
            return 0;
        }
        if (index == null) {
            long[] keys = new long[ids.length];
            for (int i = 0; i < ids.length; i++) {
                keys[i] = ((long) ids[i] << 32) | i;
            }
            Arrays.sort(keys);
            index = keys;
        }
        int lo = 0;
        int hi = index.length - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            int midId = (int) (index[mid] >> 32);
            if (midId < id) {
                lo = mid + 1;
            } else if (midId > id) {
                hi = mid - 1;
            } else {
                return probs[(int) index[mid]];
            }
        }
        return 0;
    }

    /**
     * The token at which the cumulative probability first exceeds {@code r} (in {@code [0, 1)}), walking most
     * likely first; the last one if rounding leaves the sum short of {@code r}.
     */
    public int sample(double r) {
        double acc = 0;
        for (int i = 0; i < ids.length; i++) {
            acc += probs[i];
            if (r < acc) {
                return ids[i];
            }
        }
        return ids[ids.length - 1];
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("{");
        for (int i = 0; i < Math.min(ids.length, 8); i++) {
            b.append(i == 0 ? "" : ", ").append(ids[i]).append('=').append(String.format("%.4f", probs[i]));
        }
        return b.append(ids.length > 8 ? ", ...}" : "}").toString();
    }
}
