package dev.isthmus.backend.cuda;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Per-op metadata uploads: offsets, alignment, asynchronous copies, and synchronizing only when wrapping. */
class UploadRingTest {

    /** A Gpu whose "device" is host memory and which logs what the ring asks of it. */
    static final class LoggingGpu implements Gpu {
        final Arena arena = Arena.ofShared();
        final List<String> log = new ArrayList<>();

        @Override
        public String description() {
            return "log";
        }

        @Override
        public int multiprocessors() {
            return 1;
        }

        @Override
        public long allocate(long bytes) {
            log.add("alloc " + bytes);
            return arena.allocate(bytes, 256).address();
        }

        @Override
        public void free(long address) {
            log.add("free");
        }

        @Override
        public MemorySegment allocatePinned(long bytes) {
            return arena.allocate(bytes, 256);
        }

        @Override
        public void freePinned(MemorySegment pinned) {
        }

        @Override
        public void copyToDevice(long dst, MemorySegment src, long bytes) {
            log.add("sync-copy " + bytes);
            MemorySegment.copy(src, 0, MemorySegment.ofAddress(dst).reinterpret(bytes), 0, bytes);
        }

        @Override
        public void copyToDeviceAsync(long dst, MemorySegment pinnedSrc, long bytes) {
            log.add("async-copy " + bytes);
            MemorySegment.copy(pinnedSrc, 0, MemorySegment.ofAddress(dst).reinterpret(bytes), 0, bytes);
        }

        @Override
        public void copyToHost(MemorySegment dst, long src, long bytes) {
        }

        @Override
        public void copyOnDevice(long dst, long src, long bytes) {
        }

        @Override
        public void fill(long dst, byte value, long bytes) {
        }

        @Override
        public void launch(Kernel kernel, Launch launch, MemorySegment params) {
        }

        @Override
        public void synchronize() {
            log.add("synchronize");
        }

        @Override
        public void beginCapture() {
            throw new UnsupportedOperationException();
        }

        @Override
        public Graph endCapture() {
            throw new UnsupportedOperationException();
        }

        @Override
        public Graph instantiate(Graph graph) {
            throw new UnsupportedOperationException();
        }

        @Override
        public boolean update(Graph exec, Graph graph) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void launchGraph(Graph exec) {
            throw new UnsupportedOperationException();
        }

        @Override
        public Blas blas() {
            return null;
        }

        @Override
        public String blasUnavailableReason() {
            return "none";
        }

        @Override
        public void close() {
            arena.close();
        }

        /** A pool (caching up to 1 MiB) that allocates and frees through this Gpu, so its calls are logged. */
        DevicePool pool() {
            return new DevicePool(new DevicePool.Memory() {
                public long allocate(long b) {
                    return LoggingGpu.this.allocate(b);
                }

                public void free(long a) {
                    LoggingGpu.this.free(a);
                }
            }, 1 << 20);
        }
    }

    static int[] ints(long address, int n) {
        return MemorySegment.ofAddress(address).reinterpret(4L * n).toArray(ValueLayout.JAVA_INT);
    }

    @Test
    void uploadsSeveralArraysInOneAlignedAsynchronousCopy() {
        LoggingGpu gpu = new LoggingGpu();
        try (DevicePool pool = gpu.pool();
             UploadRing ring = new UploadRing(new CudaStream(gpu, pool, false), pool, 1024)) {
            gpu.log.clear();
            try (UploadRing.Uploaded u = ring.upload(new int[] {1, 2, 3}, null, new float[] {0.5f}, new int[] {9})) {
                assertArrayEquals(new int[] {1, 2, 3}, ints(u.address(0), 3));
                assertEquals(0, u.address(1));
                assertEquals(0.5f, MemorySegment.ofAddress(u.address(2)).reinterpret(4).get(ValueLayout.JAVA_FLOAT, 0));
                assertArrayEquals(new int[] {9}, ints(u.address(3), 1));
                assertEquals(16, u.address(2) - u.address(0));
                assertEquals(0, u.address(0) % 16);
            }
            assertEquals(List.of("async-copy 48"), gpu.log);
            assertEquals(48, ring.head());
        }
    }

    @Test
    void wrapsAroundOnlyAfterSynchronizing() {
        LoggingGpu gpu = new LoggingGpu();
        try (DevicePool pool = gpu.pool();
             UploadRing ring = new UploadRing(new CudaStream(gpu, pool, false), pool, 256)) {
            gpu.log.clear();
            long first;
            try (UploadRing.Uploaded u = ring.upload((Object) new int[40])) { // 160 bytes
                first = u.address(0);
            }
            try (UploadRing.Uploaded u = ring.upload((Object) new int[30])) { // 120 more does not fit
                assertEquals(first, u.address(0), "starts again at the front");
            }
            assertEquals(List.of("async-copy 160", "synchronize", "async-copy 128"), gpu.log);
            assertEquals(1, ring.wraps());
            ring.reset();
            assertEquals(0, ring.head());
        }
    }

    @Test
    void anUploadLargerThanTheRingUsesAPoolBlockReleasedAfterItsReaders() {
        LoggingGpu gpu = new LoggingGpu();
        DevicePool pool = gpu.pool();
        try (UploadRing ring = new UploadRing(new CudaStream(gpu, pool, false), pool, 256)) {
            int[] big = new int[1000];
            for (int i = 0; i < big.length; i++) {
                big[i] = i * 3;
            }
            try (UploadRing.Uploaded u = ring.upload((Object) big)) {
                assertArrayEquals(big, ints(u.address(0), big.length));
                assertTrue(pool.stats().inUseBytes() >= 4000, "block held while the readers are queued");
            }
            assertEquals(0, pool.stats().inUseBytes());
            assertTrue(gpu.log.contains("sync-copy 4000"));
        } finally {
            pool.close();
        }
    }
}
