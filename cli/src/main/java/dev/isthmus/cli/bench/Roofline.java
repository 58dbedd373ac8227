package dev.isthmus.cli.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * This machine's limits as Java sees them: read bandwidth (summing a large off-heap array with the Vector
 * API) and the FP32 fused-multiply-add rate (independent FMA chains in registers), each on {@code threads}
 * threads. Decode is bound by the first, prefill (without int8 instructions) by the second.
 */
public final class Roofline {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private Roofline() {
    }

    /** Measured limits. */
    public record Limits(int threads, double readGBps, double fmaGflops) {
    }

    /** Measures with {@code bytes} of array (at least 1 GiB keeps caches out of it) and the best of {@code reps}. */
    public static Limits measure(int threads, long bytes, int reps) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "roofline");
            t.setDaemon(true);
            return t;
        });
        try (Arena arena = Arena.ofShared()) {
            long chunk = bytes / threads / (S.vectorByteSize() * 4L) * (S.vectorByteSize() * 4L);
            MemorySegment data = arena.allocate(chunk * threads, 64);
            data.fill((byte) 1);
            double bestRead = 0;
            double bestFma = 0;
            for (int r = 0; r < reps + 1; r++) {
                long t0 = System.nanoTime();
                runAll(pool, threads, i -> sum(data.asSlice(i * chunk, chunk)));
                double read = chunk * threads / ((System.nanoTime() - t0) / 1e9) / 1e9;
                long iterations = 20_000_000L;
                t0 = System.nanoTime();
                runAll(pool, threads, i -> fmaChains(iterations));
                double flops = (double) iterations * 8 * S.length() * 2 * threads;
                double fma = flops / ((System.nanoTime() - t0) / 1e9) / 1e9;
                if (r > 0) {
                    bestRead = Math.max(bestRead, read);
                    bestFma = Math.max(bestFma, fma);
                }
            }
            return new Limits(threads, bestRead, bestFma);
        } finally {
            pool.shutdownNow();
        }
    }

    private interface Work {
        float run(int thread);
    }

    private static void runAll(ExecutorService pool, int threads, Work work) throws Exception {
        List<Future<Float>> fs = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            int t = i;
            fs.add(pool.submit((Callable<Float>) () -> work.run(t)));
        }
        float sink = 0;
        for (Future<Float> f : fs) {
            sink += f.get();
        }
        if (sink == 42.4242f) {
            System.out.print("");
        }
    }

    private static float sum(MemorySegment s) {
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        long step = S.vectorByteSize();
        for (long off = 0; off < s.byteSize(); off += 4 * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(S, s, off, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(FloatVector.fromMemorySegment(S, s, off + step, ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(FloatVector.fromMemorySegment(S, s, off + 2 * step, ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(FloatVector.fromMemorySegment(S, s, off + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }

    /** Eight independent FMA chains hide the FMA latency, so the loop runs at the FMA throughput. */
    private static float fmaChains(long iterations) {
        FloatVector m = FloatVector.broadcast(S, 0.999999f);
        FloatVector c = FloatVector.broadcast(S, 1e-7f);
        FloatVector a0 = FloatVector.broadcast(S, 1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (long i = 0; i < iterations; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).reduceLanes(VectorOperators.ADD);
    }
}
