package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

/**
 * Encodes rows of floats into one {@link DType}'s exact ggml block layout, and decodes them back.
 *
 * <p>Every element type that holds real numbers has one: F32 (a plain copy), F16 and BF16 (rounded to
 * nearest, ties to even), and the block formats Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K,
 * Q6_K and Q8_K. The block formats follow ggml's reference quantizers (the ones {@code llama-quantize}
 * uses without an importance matrix), including the iterative scale searches of the K-quants, with one
 * deliberate difference: values are always rounded against the scale <em>as stored</em> (f16-rounded),
 * which ggml does for the K-quants but not for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0, so the error is never larger.
 *
 * <p>An instance keeps scratch buffers and is not thread-safe: use one per thread ({@link #create} is
 * cheap). Nothing is allocated per call.
 */
public interface Quantizer {
    /** The type this quantizer writes. */
    DType dtype();

    /**
     * Encodes {@code count} elements {@code src[srcOffset ..]} into {@code dtype().rowBytes(count)} bytes at
     * {@code dst[dstOffset ..]}.
     *
     * @throws IllegalArgumentException if {@code count} is not a multiple of the block size
     */
    void quantize(float[] src, int srcOffset, int count, byte[] dst, int dstOffset);

    /**
     * Decodes {@code count} elements stored at {@code src[srcOffset ..]} into {@code dst[dstOffset ..]}, as
     * ggml's {@code dequantize_row} functions do (f32 arithmetic). Uses no scratch, so unlike
     * {@link #quantize} it may be called from several threads at once.
     *
     * @throws IllegalArgumentException if {@code count} is not a multiple of the block size
     */
    void dequantize(byte[] src, int srcOffset, int count, float[] dst, int dstOffset);

    /** True for the types a quantizer exists for: every {@link DType} except the integer types. */
    static boolean supports(DType dtype) {
        return dtype != DType.I8 && dtype != DType.I32;
    }

    /**
     * A new quantizer for {@code dtype}.
     *
     * @throws IllegalArgumentException if the type holds integers (I8, I32)
     */
    static Quantizer create(DType dtype) {
        return switch (dtype) {
            case F32, F16, BF16 -> new FloatQuantizer(dtype);
            case Q8_0, Q8_K -> new Q8Quantizer(dtype);
            case Q4_0, Q5_0 -> new SymmetricQuantizer(dtype);
            case Q4_1, Q5_1 -> new AffineQuantizer(dtype);
            case Q2_K -> new Q2KQuantizer();
            case Q3_K -> new Q3KQuantizer();
            case Q4_K, Q5_K -> new Q45KQuantizer(dtype);
            case Q6_K -> new Q6KQuantizer();
            case I8, I32 -> throw new IllegalArgumentException("no quantizer for integer type " + dtype);
        };
    }
}
