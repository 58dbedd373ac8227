package dev.isthmus.engine.graph;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;

import java.lang.foreign.Arena;

/**
 * A forward pass's logits as a host {@code float[]}: read in place where the backend's memory is host memory,
 * else copied through a host buffer that grows to the largest pass seen. Used by one thread at a time; closing
 * frees the buffer.
 */
public final class HostLogits implements AutoCloseable {
    private final Backend backend;
    private final int vocab;
    // Shared, not confined: an engine creates this on the caller's thread and uses it on its own.
    private Arena arena;
    private Tensor buffer;

    public HostLogits(Backend backend, int vocab) {
        this.backend = backend;
        this.vocab = vocab;
    }

    /** F32 logits {@code [rows, vocab]} on the backend's device, as {@code rows * vocab} floats. */
    public float[] copy(Tensor logits) {
        if (backend.device().hostAccessible()) {
            return logits.toFloatArray();
        }
        long rows = logits.dim(0);
        if (buffer == null || buffer.dim(0) < rows) {
            long grown = Math.max(rows, buffer == null ? 1 : 2 * buffer.dim(0));
            close();
            arena = Arena.ofShared();
            buffer = Tensor.allocate(arena, DType.F32, grown, vocab);
        }
        Tensor dst = buffer.slice(0, rows);
        backend.copy(logits, dst);
        return dst.toFloatArray();
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
            arena = null;
            buffer = null;
        }
    }
}
