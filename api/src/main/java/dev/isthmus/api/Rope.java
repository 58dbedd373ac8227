package dev.isthmus.api;

/**
 * Parameters of rotary position embedding.
 *
 * <p>For pair {@code i} of the first {@code dims} dimensions of a head at position {@code p} the angle is
 * {@code p * freqScale * theta^(-2i/dims) / freqFactors[i]}, as in ggml. Linear ("position
 * interpolation") scaling is {@code freqScale = 1/factor}; Llama 3's frequency-dependent scaling is
 * expressed through {@code freqFactors} (GGUF tensor {@code rope_freqs}). Dimensions past {@code dims}
 * are left as they are.
 *
 * @param layout      which dimensions form a pair
 * @param dims        number of rotated dimensions (even, at most the head size)
 * @param theta       the base, 10000 for Llama 2, 500000 for Llama 3
 * @param freqScale   multiplier of positions (1 for none)
 * @param freqFactors per-pair divisors of the frequency ({@code dims/2} values), or {@code null}
 */
public record Rope(RopeLayout layout, int dims, float theta, float freqScale, float[] freqFactors) {
    public Rope {
        if (dims <= 0 || dims % 2 != 0) {
            throw new IllegalArgumentException("rope dims must be positive and even, got " + dims);
        }
        if (freqFactors != null && freqFactors.length != dims / 2) {
            throw new IllegalArgumentException(
                    "rope needs " + dims / 2 + " frequency factors, got " + freqFactors.length);
        }
    }

    /** Plain RoPE with no scaling. */
    public static Rope of(RopeLayout layout, int dims, float theta) {
        return new Rope(layout, dims, theta, 1f, null);
    }
}
