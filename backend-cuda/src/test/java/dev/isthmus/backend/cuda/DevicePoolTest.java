package dev.isthmus.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The device memory pool over a fake driver that records every cuMemAlloc/cuMemFree. */
class DevicePoolTest {

    /** Fake device memory with a capacity: hands out 256-aligned addresses and tracks what is live. */
    static final class FakeMemory implements DevicePool.Memory {
        final long capacity;
        final Map<Long, Long> live = new HashMap<>();
        long used;
        long next = 0x7000_0000_0000L;
        int allocations;
        int frees;

        FakeMemory(long capacity) {
            this.capacity = capacity;
        }

        @Override
        public long allocate(long bytes) {
            if (used + bytes > capacity) {
                throw new DevicePool.OutOfDeviceMemoryException("fake device out of memory");
            }
            long a = next;
            next += (bytes + 255) / 256 * 256 + 256;
            live.put(a, bytes);
            used += bytes;
            allocations++;
            return a;
        }

        @Override
        public void free(long address) {
            Long b = live.remove(address);
            if (b == null) {
                throw new AssertionError("double or foreign free of 0x" + Long.toHexString(address));
            }
            used -= b;
            frees++;
        }
    }

    @Test
    void sizeClassesArePowersOfTwoThenQuarterSteps() {
        assertEquals(256, DevicePool.sizeClass(1));
        assertEquals(256, DevicePool.sizeClass(256));
        assertEquals(512, DevicePool.sizeClass(257));
        assertEquals(1 << 20, DevicePool.sizeClass((1 << 19) + 1));
        assertEquals(1 << 20, DevicePool.sizeClass(1 << 20));
        assertEquals((1 << 20) + (1 << 18), DevicePool.sizeClass((1 << 20) + 1));
        assertEquals(3L << 29, DevicePool.sizeClass((1L << 30) + (1L << 29) - 5));
        assertEquals(2L << 30, DevicePool.sizeClass(2L << 30));
        assertThrows(IllegalArgumentException.class, () -> DevicePool.sizeClass(0));
        SplittableRandom r = new SplittableRandom(7);
        for (int i = 0; i < 10_000; i++) {
            long bytes = 1 + r.nextLong(1L << 34);
            long c = DevicePool.sizeClass(bytes);
            assertTrue(c >= bytes && c % 256 == 0, bytes + " -> " + c);
            assertTrue(c <= Math.max(256, bytes * 2) && (bytes <= (1 << 20) || c <= bytes * 1.25 + 256),
                    bytes + " -> " + c + " wastes too much");
        }
    }

    @Test
    void aReleasedBlockIsReusedWithoutCallingTheDriver() {
        FakeMemory mem = new FakeMemory(1L << 40);
        try (DevicePool pool = new DevicePool(mem, 1L << 30)) {
            long a = pool.allocate(1000);
            pool.release(a);
            long b = pool.allocate(900); // same class (1024)
            assertEquals(a, b);
            assertEquals(1, mem.allocations);
            assertEquals(1, pool.stats().reuses());
            long c = pool.allocate(2000); // another class
            assertNotEquals(a, c);
            assertEquals(2, mem.allocations);
        }
    }

    @Test
    void aDecodeLoopAllocatesFromTheDriverOnlyInItsFirstStep() {
        FakeMemory mem = new FakeMemory(1L << 40);
        try (DevicePool pool = new DevicePool(mem, 1L << 30)) {
            long[] sizes = {4096 * 4, 4096 * 4, 11008 * 4, 11008 * 4, 32000 * 4, 128 * 4 * 32, 4 * 16};
            for (int step = 0; step < 50; step++) {
                List<Long> blocks = new ArrayList<>();
                for (long s : sizes) {
                    blocks.add(pool.allocate(s));
                }
                blocks.forEach(pool::release);
                if (step == 0) {
                    assertEquals(sizes.length, mem.allocations);
                }
            }
            assertEquals(sizes.length, mem.allocations);
            assertEquals(0, mem.frees);
        }
    }

    @Test
    void cachedBytesAreCappedByFreeingTheLargestBlocks() {
        FakeMemory mem = new FakeMemory(1L << 40);
        try (DevicePool pool = new DevicePool(mem, 10_000)) {
            long big = pool.allocate(8192);
            long small = pool.allocate(1024);
            long other = pool.allocate(4096);
            pool.release(small);
            pool.release(other);
            assertEquals(1024 + 4096, pool.stats().cachedBytes());
            pool.release(big); // 13312 > 10000: the largest (8192) goes back to the driver
            assertEquals(1024 + 4096, pool.stats().cachedBytes());
            assertEquals(1, mem.frees);
            assertEquals(2, mem.live.size());
        }
    }

    @Test
    void fragmentationFromRandomSizesStaysBoundedAndWasteAtMostAQuarter() {
        FakeMemory mem = new FakeMemory(1L << 40);
        long cap = 64L << 20;
        try (DevicePool pool = new DevicePool(mem, cap)) {
            SplittableRandom r = new SplittableRandom(42);
            List<Long> live = new ArrayList<>();
            for (int i = 0; i < 20_000; i++) {
                if (live.isEmpty() || r.nextInt(3) > 0 && live.size() < 200) {
                    long bytes = 1 + (long) Math.pow(2, r.nextDouble() * 26); // 1 B .. 64 MiB, log-uniform
                    live.add(pool.allocate(bytes));
                } else {
                    pool.release(live.remove(r.nextInt(live.size())));
                }
                DevicePool.Stats s = pool.stats();
                assertTrue(s.cachedBytes() <= cap, "cache " + s.cachedBytes() + " over its cap");
                assertEquals(mem.used, s.inUseBytes() + s.cachedBytes(), "driver memory = in use + cached");
            }
            DevicePool.Stats s = pool.stats();
            assertTrue(s.reuses() > s.driverAllocations(), "reuse should dominate: " + s);
            live.forEach(pool::release);
            assertEquals(0, pool.stats().inUseBytes());
        }
        assertEquals(0, mem.live.size(), "close frees everything");
    }

    @Test
    void outOfMemoryReturnsTheCacheAndRetries() {
        FakeMemory mem = new FakeMemory(3 << 20);
        try (DevicePool pool = new DevicePool(mem, 1L << 30)) {
            long a = pool.allocate(1 << 20);
            long b = pool.allocate(1 << 20);
            pool.release(a);
            pool.release(b);
            long c = pool.allocate(2 << 20); // needs the cached 2 MiB back
            assertTrue(pool.isLive(c));
            assertEquals(2, mem.frees);
            assertThrows(DevicePool.OutOfDeviceMemoryException.class, () -> pool.allocate(2 << 20));
        }
    }

    @Test
    void duringAGraphCaptureNothingGoesBackToTheDriverUntilTheDeferralEnds() {
        FakeMemory mem = new FakeMemory(1L << 40);
        try (DevicePool pool = new DevicePool(mem, 1000)) {
            long a = pool.allocate(4096);
            pool.deferFrees(true);
            pool.release(a); // over the cap, but cuMemFree is not allowed now
            pool.trim();
            assertEquals(0, mem.frees);
            assertEquals(4096, pool.stats().cachedBytes());
            pool.deferFrees(false);
            assertEquals(1, mem.frees);
            assertEquals(0, pool.stats().cachedBytes());
        }
        FakeMemory small = new FakeMemory(2 << 20);
        try (DevicePool pool = new DevicePool(small, 1L << 30)) {
            pool.release(pool.allocate(1 << 20));
            pool.deferFrees(true);
            assertThrows(DevicePool.OutOfDeviceMemoryException.class, () -> pool.allocate(2 << 20));
            assertEquals(0, small.frees, "no trim-and-retry while frees are deferred");
            pool.deferFrees(false);
            pool.allocate(2 << 20);
            assertEquals(1, small.frees);
        }
    }

    @Test
    void releaseOfAForeignOrFreedAddressIsAnError() {
        try (DevicePool pool = new DevicePool(new FakeMemory(1 << 30), 1 << 30)) {
            long a = pool.allocate(10);
            pool.release(a);
            assertThrows(IllegalArgumentException.class, () -> pool.release(a));
            assertThrows(IllegalArgumentException.class, () -> pool.release(12345));
        }
    }

    @Test
    void closeFreesLiveAndCachedBlocksAndTrimEmptiesTheCache() {
        FakeMemory mem = new FakeMemory(1L << 40);
        DevicePool pool = new DevicePool(mem, 1L << 30);
        long a = pool.allocate(100);
        long b = pool.allocate(5000);
        pool.release(b);
        pool.trim();
        assertEquals(0, pool.stats().cachedBytes());
        assertEquals(1, mem.live.size());
        assertTrue(pool.isLive(a));
        pool.close();
        assertEquals(0, mem.live.size());
        assertThrows(IllegalStateException.class, () -> pool.allocate(1));
    }
}
