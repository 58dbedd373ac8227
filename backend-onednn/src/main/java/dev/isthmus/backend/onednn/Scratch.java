package dev.isthmus.backend.onednn;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Grow-only temporary buffers, one per slot, reused across calls (the backend serializes its calls). */
final class Scratch implements AutoCloseable {
    /** Matmul activations converted to bf16. */
    static final int SRC_BF16 = 0;
    static final int X_COPY = 1;
    static final int OUT_COPY = 2;
    static final int SCALAR = 3;
    /** Matmul activations quantized to s8, and their per-row scales. */
    static final int SRC_S8 = 4;
    static final int ROW_SCALES = 5;
    /** The rounding error of {@link #SRC_S8} as s8, and its per-row scales. */
    static final int RESIDUAL_S8 = 6;
    static final int RESIDUAL_SCALES = 7;
    private static final int SLOTS = 8;

    private final Arena[] arenas = new Arena[SLOTS];
    private final MemorySegment[] buffers = new MemorySegment[SLOTS];

    /** At least {@code bytes} bytes (contents undefined), 64-byte aligned. */
    MemorySegment get(int slot, long bytes) {
        MemorySegment b = buffers[slot];
        if (b == null || b.byteSize() < bytes) {
            if (arenas[slot] != null) {
                arenas[slot].close();
            }
            long size = Math.max(bytes, b == null ? 4096 : Math.max(bytes, b.byteSize() * 3 / 2));
            arenas[slot] = Arena.ofShared();
            b = arenas[slot].allocate(size, 4096);
            buffers[slot] = b;
        }
        return b.asSlice(0, bytes);
    }

    @Override
    public void close() {
        for (int i = 0; i < SLOTS; i++) {
            if (arenas[i] != null) {
                arenas[i].close();
                arenas[i] = null;
                buffers[i] = null;
            }
        }
    }
}
