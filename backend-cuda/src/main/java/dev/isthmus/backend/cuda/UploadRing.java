package dev.isthmus.backend.cuda;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Uploads the small per-op host arrays (token ids, positions, block tables, slot indices, ALiBi slopes) to the
 * device without synchronizing: they are written into a pinned host ring and copied asynchronously, in stream
 * order, into the same offsets of a device ring, where the kernels queued after the copy read them.
 *
 * <p>With CUDA graphs the copies are recorded in the capture and read the pinned ring when the graph runs; the
 * ring only wraps after a synchronization, which ends the capture, so recorded regions are never overwritten.
 *
 * <p>A region of either ring may be reused once everything queued before it has run. The rings are filled
 * front to back; when an upload does not fit in the rest, the stream is synchronized (so every earlier copy
 * and kernel is done) and filling restarts at the front. {@link #reset()} (after any synchronize) does the same
 * for free. An upload larger than the whole ring goes through a temporary pool block instead.
 */
final class UploadRing implements AutoCloseable {
    static final int ALIGN = 16;

    private final Gpu gpu;
    private final CudaStream stream;
    private final DevicePool pool;
    private final long capacity;
    private final MemorySegment host;
    private final long device;
    private long head;
    private long wraps;

    UploadRing(CudaStream stream, DevicePool pool, long capacity) {
        this.stream = stream;
        this.gpu = stream.gpu();
        this.pool = pool;
        this.capacity = capacity;
        this.host = gpu.allocatePinned(capacity);
        this.device = gpu.allocate(capacity);
    }

    private static long bytesOf(Object a) {
        if (a == null) {
            return 0;
        }
        if (a instanceof int[] i) {
            return 4L * i.length;
        }
        if (a instanceof float[] f) {
            return 4L * f.length;
        }
        throw new IllegalArgumentException("cannot upload a " + a.getClass().getSimpleName());
    }

    private static long align(long n) {
        return (n + ALIGN - 1) / ALIGN * ALIGN;
    }

    /**
     * Device addresses of uploaded arrays. Close it after queuing the work that reads them (an upload too large
     * for the ring lives in a pool block, released then).
     */
    final class Uploaded implements AutoCloseable {
        private final long[] addresses;
        private final long block;

        private Uploaded(long[] addresses, long block) {
            this.addresses = addresses;
            this.block = block;
        }

        /** The address of array {@code i} ({@code 0} for a {@code null} array). */
        long address(int i) {
            return addresses[i];
        }

        @Override
        public void close() {
            if (block != 0) {
                pool.release(block); // stream-ordered: reused only by work queued after the readers
            }
        }
    }

    /**
     * Uploads each array ({@code int[]}, {@code float[]} or {@code null}) and returns their device addresses, in
     * order ({@code 0} for {@code null}). The addresses stay valid for the work queued before the next upload
     * that wraps around.
     */
    Uploaded upload(Object... arrays) {
        long total = 0;
        for (Object a : arrays) {
            total += align(bytesOf(a));
        }
        long[] addresses = new long[arrays.length];
        if (total == 0) {
            return new Uploaded(addresses, 0);
        }
        if (total > capacity) {
            return uploadLarge(arrays, total);
        }
        if (head + total > capacity) {
            stream.synchronize(); // (ends a graph capture first: the recorded copies read the ring when it runs)
            head = 0;
            wraps++;
        }
        long start = head;
        long off = start;
        for (int i = 0; i < arrays.length; i++) {
            Object a = arrays[i];
            if (a == null) {
                continue;
            }
            write(host, off, a);
            addresses[i] = device + off;
            off += align(bytesOf(a));
        }
        stream.copyToDeviceAsync(device + start, host.asSlice(start, total), total);
        head = start + total;
        return new Uploaded(addresses, 0);
    }

    private Uploaded uploadLarge(Object[] arrays, long total) {
        long block = pool.allocate(total);
        long[] addresses = new long[arrays.length];
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment tmp = arena.allocate(total, ALIGN);
            long off = 0;
            for (int i = 0; i < arrays.length; i++) {
                if (arrays[i] == null) {
                    continue;
                }
                write(tmp, off, arrays[i]);
                addresses[i] = block + off;
                off += align(bytesOf(arrays[i]));
            }
            stream.copyToDevice(block, tmp, total);
        }
        return new Uploaded(addresses, block);
    }

    private static void write(MemorySegment dst, long off, Object a) {
        if (a instanceof int[] i) {
            MemorySegment.copy(i, 0, dst, ValueLayout.JAVA_INT, off, i.length);
        } else {
            float[] f = (float[]) a;
            MemorySegment.copy(f, 0, dst, ValueLayout.JAVA_FLOAT, off, f.length);
        }
    }

    /** Starts filling from the front again; only after the stream was synchronized. */
    void reset() {
        head = 0;
    }

    long head() {
        return head;
    }

    long wraps() {
        return wraps;
    }

    long capacity() {
        return capacity;
    }

    @Override
    public void close() {
        gpu.free(device);
        gpu.freePinned(host);
    }
}
