package dev.isthmus.api;

/**
 * Parameters of fused attention.
 *
 * <p>The score of query position {@code p} and key position {@code j} is {@code s = scale * q·k}, then
 * {@code softcap * tanh(s / softcap)} if a softcap is set, then {@code + slope_h * (j - p)} if ALiBi
 * slopes are given; keys outside the mask get no weight; the weights are the softmax of the scores.
 *
 * @param scale          multiplier of {@code q·k}, usually {@code 1/sqrt(headDim)}
 * @param causal         whether a query at position {@code p} sees only keys at positions {@code ≤ p};
 *                       otherwise it sees its sequence's whole context ({@link KvLayout#contextLengths()})
 * @param slidingWindow  if positive, a query at {@code p} sees only keys at positions {@code > p - slidingWindow}
 * @param alibiSlopes    per query head ALiBi slope (bias {@code slope * (keyPos - queryPos)}), or {@code null}
 * @param logitSoftcap   if positive, scores become {@code softcap * tanh(score / softcap)} (Gemma 2)
 */
public record Attention(float scale, boolean causal, int slidingWindow, float[] alibiSlopes, float logitSoftcap) {
    public Attention {
        if (slidingWindow < 0) {
            throw new IllegalArgumentException("slidingWindow must be ≥ 0, got " + slidingWindow);
        }
    }

    /** Causal attention with the usual {@code 1/sqrt(headDim)} scale and nothing else. */
    public static Attention causal(int headDim) {
        return new Attention((float) (1 / Math.sqrt(headDim)), true, 0, null, 0f);
    }
}
