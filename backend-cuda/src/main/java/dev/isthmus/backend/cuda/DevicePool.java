package dev.isthmus.backend.cuda;

import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * A caching allocator of device memory with size classes, so that ops do not call {@code cuMemAlloc}: a freed
 * block goes back to the free list of its class and the next request of that class reuses it.
 *
 * <p><b>Size classes.</b> Up to {@value #SMALL_LIMIT} bytes: powers of two from {@value #MIN_BLOCK} bytes.
 * Above: four classes per power of two ({@code 2^k × 1, 1.25, 1.5, 1.75}), so rounding wastes at most 25%
 * (and half a small class at most {@value #MIN_BLOCK} bytes). Every block is a separate driver allocation, so
 * blocks are 256-byte aligned like {@code cuMemAlloc}'s.
 *
 * <p><b>Bounding fragmentation.</b> Cached (free) bytes are capped at {@code maxCachedBytes}: a release beyond the
 * cap returns the largest cached blocks to the driver. When the driver is out of memory, the pool returns every
 * cached block and retries once before reporting the failure.
 *
 * <p>Blocks are reused in stream order: a block released after queuing work that uses it may be handed out for
 * work queued later on the same stream, which the stream runs afterwards. Not thread-safe; the backend
 * synchronizes.
 */
public final class DevicePool implements AutoCloseable {
    /** Smallest block. */
    public static final long MIN_BLOCK = 256;
    /** Largest size of the power-of-two classes. */
    public static final long SMALL_LIMIT = 1 << 20;

    /** Raw device memory: {@code cuMemAlloc}/{@code cuMemFree} (or a fake in tests). */
    public interface Memory {
        /** @throws OutOfDeviceMemoryException if the device has no room */
        long allocate(long bytes);

        void free(long address);
    }

    /** Thrown by {@link Memory#allocate} and {@link #allocate} when the device has no room. */
    public static final class OutOfDeviceMemoryException extends RuntimeException {
        @java.io.Serial
        private static final long serialVersionUID = 1L;

        public OutOfDeviceMemoryException(String message) {
            super(message);
        }
    }

    /** Counters, for tests and for {@code isthmus bench}. */
    public record Stats(long inUseBytes, long cachedBytes, long driverAllocations, long driverFrees, long reuses,
                        long requestedBytes) {
    }

    private final Memory memory;
    private final long maxCachedBytes;
    private final TreeMap<Long, ArrayDeque<Long>> free = new TreeMap<>();
    private final Map<Long, Long> live = new HashMap<>();
    private long inUseBytes;
    private long cachedBytes;
    private long requestedBytes;
    private long driverAllocations;
    private long driverFrees;
    private long reuses;
    private boolean deferFrees;
    private boolean closed;

    public DevicePool(Memory memory, long maxCachedBytes) {
        this.memory = memory;
        this.maxCachedBytes = maxCachedBytes;
    }

    /** The size class {@code bytes} is rounded up to. */
    public static long sizeClass(long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("allocation of " + bytes + " bytes");
        }
        if (bytes <= MIN_BLOCK) {
            return MIN_BLOCK;
        }
        long pow = Long.highestOneBit(bytes - 1) << 1; // next power of two >= bytes
        if (pow <= SMALL_LIMIT) {
            return pow;
        }
        long base = pow >> 1;          // 2^k < bytes <= 2^(k+1)
        long step = base >> 2;          // quarter steps between 2^k and 2^(k+1)
        long cls = base + ((bytes - base + step - 1) / step) * step;
        return Math.max(cls, bytes);
    }

    /**
     * A block of at least {@code bytes} bytes (its content is undefined).
     *
     * @throws OutOfDeviceMemoryException if the device is out of memory even after the cache was returned
     */
    public long allocate(long bytes) {
        if (closed) {
            throw new IllegalStateException("device pool is closed");
        }
        long cls = sizeClass(bytes);
        ArrayDeque<Long> list = free.get(cls);
        long address;
        if (list != null && !list.isEmpty()) {
            address = list.pop();
            if (list.isEmpty()) {
                free.remove(cls);
            }
            cachedBytes -= cls;
            reuses++;
        } else {
            address = allocateFromDriver(cls);
        }
        live.put(address, cls);
        inUseBytes += cls;
        requestedBytes += bytes;
        return address;
    }

    private long allocateFromDriver(long cls) {
        try {
            long a = memory.allocate(cls);
            driverAllocations++;
            return a;
        } catch (OutOfDeviceMemoryException e) {
            if (cachedBytes == 0 || deferFrees) {
                throw e;
            }
            trim();
            long a = memory.allocate(cls);
            driverAllocations++;
            return a;
        }
    }

    /** Returns a block to its free list (freeing the largest cached blocks beyond the cap). */
    public void release(long address) {
        Long cls = live.remove(address);
        if (cls == null) {
            throw new IllegalArgumentException("0x" + Long.toHexString(address) + " is not a live block of this pool");
        }
        inUseBytes -= cls;
        free.computeIfAbsent(cls, c -> new ArrayDeque<>()).push(address);
        cachedBytes += cls;
        enforceCap();
    }

    /**
     * While deferring (during a CUDA graph capture, when {@code cuMemFree} is not allowed), nothing is returned to
     * the driver: the cache may exceed its cap, and running out of memory is reported instead of trimming. Ending
     * the deferral brings the cache back under its cap.
     */
    public void deferFrees(boolean defer) {
        this.deferFrees = defer;
        if (!defer) {
            enforceCap();
        }
    }

    private void enforceCap() {
        while (!deferFrees && cachedBytes > maxCachedBytes && !free.isEmpty()) {
            Map.Entry<Long, ArrayDeque<Long>> largest = free.lastEntry();
            long a = largest.getValue().pop();
            if (largest.getValue().isEmpty()) {
                free.remove(largest.getKey());
            }
            cachedBytes -= largest.getKey();
            memory.free(a);
            driverFrees++;
        }
    }

    /** Whether {@code address} is the start of a block handed out and not yet released. */
    public boolean isLive(long address) {
        return live.containsKey(address);
    }

    /** The class size of a live block. */
    public long blockSize(long address) {
        Long cls = live.get(address);
        if (cls == null) {
            throw new IllegalArgumentException("0x" + Long.toHexString(address) + " is not a live block of this pool");
        }
        return cls;
    }

    /** Returns every cached (free) block to the driver (not while frees are deferred). */
    public void trim() {
        if (deferFrees) {
            return;
        }
        for (Map.Entry<Long, ArrayDeque<Long>> e : free.entrySet()) {
            for (long a : e.getValue()) {
                memory.free(a);
                driverFrees++;
            }
        }
        free.clear();
        cachedBytes = 0;
    }

    public Stats stats() {
        return new Stats(inUseBytes, cachedBytes, driverAllocations, driverFrees, reuses, requestedBytes);
    }

    /** Frees everything, live blocks included (the backend is closing; the stream has been synchronized). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        deferFrees = false;
        trim();
        for (long a : live.keySet()) {
            memory.free(a);
            driverFrees++;
        }
        live.clear();
        inUseBytes = 0;
        closed = true;
    }
}
