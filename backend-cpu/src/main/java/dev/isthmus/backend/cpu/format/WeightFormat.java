package dev.isthmus.backend.cpu.format;

import dev.isthmus.api.DType;

import java.lang.foreign.MemorySegment;

/**
 * How the rows of one weight dtype are decoded: the two kernels every matmul, dequantize and embedding
 * lookup are built from. One class per dtype, so each can be optimised on its own.
 *
 * <p>Offsets are byte offsets; {@code count} is a number of elements and a multiple of the dtype's block
 * size, and {@code offset} is the start of a block. Activations and outputs are little-endian F32.
 */
public interface WeightFormat {

    /** The dtype this format decodes. */
    DType dtype();

    /** Decodes {@code count} elements at {@code src + srcOffset} into F32 at {@code dst + dstOffset}. */
    void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count);

    /**
     * {@code Σ w[i]·x[i]} over {@code count} elements, decoding {@code w} block by block in registers
     * (the fused kernel of single-row matmul).
     */
    float dot(MemorySegment w, long wOffset, MemorySegment x, long xOffset, int count);
}
