package dev.isthmus.backend.cpu.format;

import java.lang.foreign.MemorySegment;

/**
 * A plain floating-point format (F32, F16, BF16), which can also be written and serves as a KV cache
 * dtype: attention accumulates value rows in it and COPY_ROWS encodes into it.
 */
public interface FloatFormat extends WeightFormat {

    /** {@code acc[i] += weight * v[i]} for {@code count} elements; {@code acc} is F32. */
    void scaleAdd(MemorySegment v, long vOffset, float weight, MemorySegment acc, long accOffset, int count);

    /** Converts {@code count} F32 values at {@code src} into this format at {@code dst}. */
    void encode(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count);
}
