package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.format.FloatFormat;
import dev.isthmus.backend.cpu.format.WeightFormats;

import java.lang.foreign.MemorySegment;

/**
 * A KV cache {@code [slots, kvHeads, headDim]} addressed by slot and head. A rank-3 cache uses its two
 * outer strides directly, avoiding {@link Tensor#rowOffset}'s divisions in the per-key loop.
 */
final class CacheView {
    final Tensor tensor;
    final MemorySegment segment;
    final FloatFormat format;
    final int kvHeads;
    final int headDim;
    final long slots;
    private final boolean rank3;
    private final long slotStride;
    private final long headStride;

    CacheView(Tensor tensor) {
        this.tensor = tensor;
        this.segment = tensor.segment();
        this.format = WeightFormats.floatFormat(tensor.dtype());
        this.kvHeads = (int) tensor.dim(-2);
        this.headDim = (int) tensor.cols();
        this.slots = kvHeads == 0 ? 0 : tensor.rows() / kvHeads;
        this.rank3 = tensor.rank() == 3;
        this.slotStride = rank3 ? tensor.stride(0) : 0;
        this.headStride = rank3 ? tensor.stride(1) : 0;
    }

    /** Byte offset of the row of {@code head} in {@code slot}. */
    long offset(int slot, int head) {
        return rank3 ? slot * slotStride + head * headStride : tensor.rowOffset((long) slot * kvHeads + head);
    }
}
