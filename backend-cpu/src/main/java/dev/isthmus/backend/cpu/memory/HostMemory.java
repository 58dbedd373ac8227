package dev.isthmus.backend.cpu.memory;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Off-heap tensor memory. Each allocation has its own shared arena so that {@link #release} can free it
 * at once; tensors are zero-filled and 64-byte aligned (a cache line, and the widest vector).
 *
 * <p>On Linux, allocations of {@link #LARGE} bytes or more are anonymous private mappings ({@code mmap}): the
 * kernel's pages are already zero, so nothing is written until the tensor is used and only the pages actually
 * touched become resident. (Zero-filling a malloc'ed block would make every page resident: e.g. the
 * engine's {@code [512, vocab]} logits buffer of a 512-token prompt, of which only the last row is computed,
 * is 263 MB.)
 */
public final class HostMemory implements AutoCloseable {
    private static final long ALIGNMENT = 64;
    /** Allocations from this size on are mapped rather than malloc'ed. */
    static final long LARGE = 1 << 20;
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;

    static {
        MethodHandle mmap = null;
        MethodHandle munmap = null;
        try {
            if (System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                mmap = linker.downcallHandle(libc.findOrThrow("mmap"), FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                munmap = linker.downcallHandle(libc.findOrThrow("munmap"), FunctionDescriptor.of(ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
            }
        } catch (Throwable t) {
            mmap = null;
            munmap = null;
        }
        MMAP = mmap;
        MUNMAP = munmap;
    }

    /** Identifies an allocation by base address and size, so a view of part of it is not mistaken for it. */
    private record Key(long address, long bytes) {
    }

    /** How one allocation is freed: its arena, or a mapping. */
    private interface Allocation {
        void free();
    }

    private record ArenaAllocation(Arena arena) implements Allocation {
        @Override
        public void free() {
            arena.close();
        }
    }

    private final Map<Key, Allocation> arenas = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /** A zero-filled contiguous host tensor. */
    public Tensor allocate(DType dtype, long... shape) {
        if (closed) {
            throw new IllegalStateException("the CPU backend is closed");
        }
        long bytes = Tensor.byteSizeOf(dtype, shape);
        if (bytes >= LARGE && MMAP != null) {
            long address = map(bytes);
            if (address != -1) {
                // the arena gives the mapping the same lifetime checks as other tensors; closing it unmaps
                Arena arena = Arena.ofShared();
                MemorySegment segment = MemorySegment.ofAddress(address).reinterpret(bytes, arena,
                        s -> unmap(address, bytes));
                Tensor tensor = Tensor.host(segment, dtype, shape);
                arenas.put(keyOf(tensor), new ArenaAllocation(arena));
                return tensor;
            }
        }
        Arena arena = Arena.ofShared();
        MemorySegment segment = arena.allocate(Math.max(bytes, 1), ALIGNMENT).asSlice(0, bytes);
        Tensor tensor = Tensor.host(segment, dtype, shape);
        arenas.put(keyOf(tensor), new ArenaAllocation(arena));
        return tensor;
    }

    /** An anonymous private read-write mapping of {@code bytes} (zero pages), or -1. */
    private static long map(long bytes) {
        final int protReadWrite = 0x3;
        final int mapPrivateAnonymous = 0x02 | 0x20;
        try {
            return (long) MMAP.invokeExact(0L, bytes, protReadWrite, mapPrivateAnonymous, -1, 0L);
        } catch (Throwable t) {
            return -1;
        }
    }

    private static void unmap(long address, long bytes) {
        try {
            int rc = (int) MUNMAP.invokeExact(address, bytes);
            if (rc != 0) {
                throw new IllegalStateException("munmap failed for " + bytes + " bytes");
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Frees {@code tensor} if it came from {@link #allocate}; ignores any other tensor. */
    public void release(Tensor tensor) {
        if (tensor == null) {
            return;
        }
        Allocation allocation = arenas.remove(keyOf(tensor));
        if (allocation != null) {
            allocation.free();
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
            Allocation a = arenas.remove(k);
            if (a != null) {
                a.free();
            }
        }
    }
}
