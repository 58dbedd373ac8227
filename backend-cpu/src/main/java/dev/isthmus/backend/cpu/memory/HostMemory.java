package dev.isthmus.backend.cpu.memory;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Off-heap tensor memory. Each allocation has its own shared arena so that {@link #release} can free it
 * at once; tensors are zero-filled and 64-byte aligned (a cache line, and the widest vector).
 */
public final class HostMemory implements AutoCloseable {
    private static final long ALIGNMENT = 64;

    /** Identifies an allocation by base address and size, so a view of part of it is not mistaken for it. */
    private record Key(long address, long bytes) {
    }

    private final Map<Key, Arena> arenas = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /** A zero-filled contiguous host tensor. */
    public Tensor allocate(DType dtype, long... shape) {
        if (closed) {
            throw new IllegalStateException("the CPU backend is closed");
        }
        long bytes = Tensor.byteSizeOf(dtype, shape);
        Arena arena = Arena.ofShared();
        MemorySegment segment = arena.allocate(Math.max(bytes, 1), ALIGNMENT).asSlice(0, bytes);
        Tensor tensor = Tensor.host(segment, dtype, shape);
        arenas.put(keyOf(tensor), arena);
        return tensor;
    }

    /** Frees {@code tensor} if it came from {@link #allocate}; ignores any other tensor. */
    public void release(Tensor tensor) {
        if (tensor == null) {
            return;
        }
        Arena arena = arenas.remove(keyOf(tensor));
        if (arena != null) {
            arena.close();
        }
    }

    private static Key keyOf(Tensor t) {
        return new Key(t.segment().address(), t.segment().byteSize());
    }

    /** Number of live allocations. */
    public int liveAllocations() {
        return arenas.size();
    }

    /** Frees every allocation. */
    @Override
    public void close() {
        closed = true;
        for (Key k : arenas.keySet()) {
            Arena a = arenas.remove(k);
            if (a != null) {
                a.close();
            }
        }
    }
}
