package dev.isthmus.backend.cpu.parallel;

import org.junit.jupiter.api.Test;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WorkerPoolTest {

    @Test
    void everyIndexRunsExactlyOnceAcrossManyJobs() {
        try (WorkerPool pool = new WorkerPool(3, "test")) {
            for (int job = 0; job < 2000; job++) {
                int count = 1 + job % 97;
                AtomicIntegerArray hits = new AtomicIntegerArray(count);
                pool.parallelFor(count, 1, (from, to) -> {
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < count; i++) {
                    assertEquals(1, hits.get(i), "job " + job + " index " + i);
                }
            }
        }
    }

    @Test
    void workIsSharedBetweenThreads() throws InterruptedException {
        try (WorkerPool pool = new WorkerPool(2, "test")) {
            Set<Thread> seen = ConcurrentHashMap.newKeySet();
            for (int attempt = 0; attempt < 50 && seen.size() < 2; attempt++) {
                pool.parallelFor(64, 1, (from, to) -> {
                    seen.add(Thread.currentThread());
                    long until = System.nanoTime() + 200_000;
                    while (System.nanoTime() < until) {
                        Thread.onSpinWait();
                    }
                });
            }
            assertEquals(2, seen.size());
        }
    }

    @Test
    void failuresReachTheCaller() {
        try (WorkerPool pool = new WorkerPool(2, "test")) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> pool.parallelFor(100, 1, (from, to) -> {
                        if (from <= 50 && 50 < to) {
                            throw new IllegalStateException("boom");
                        }
                    }));
            assertEquals("boom", e.getMessage());
            int[] after = new int[1];
            pool.parallelFor(1, 1, (from, to) -> after[0] = to);
            assertEquals(1, after[0]);
        }
    }

    @Test
    void closedPoolStillRunsOnTheCaller() {
        WorkerPool pool = new WorkerPool(2, "test");
        pool.close();
        int[] sum = new int[1];
        pool.parallelFor(10, 1, (from, to) -> sum[0] += to - from);
        assertEquals(10, sum[0]);
        assertTrue(pool.threads() == 2);
    }
}
