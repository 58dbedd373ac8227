package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.BackendOptions;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Matmul throughput of the onednn backend: {@code out[n, m] = x[n, k] · w[m, k]ᵀ} at n = 512 (prompt
 * processing) and n = 1 (generation), k = m = 2048 by default, for each weight dtype; median of the repetitions
 * after a warm-up (which converts the weights), and the best repetition. With {@code threads=1} it also reports the rate per second of
 * the calling thread's CPU time, which a loaded machine distorts much less than wall time (the OpenMP team is
 * then the calling thread alone). The CPU backend's kernels are not used ({@code cpuDelegate=false}).
 * Not a unit test: run it on a quiet machine with
 *
 * <pre>{@code java --enable-native-access=ALL-UNNAMED -cp <test class path> dev.isthmus.backend.onednn.MatMulBench
 *     [n=512,1] [k=2048] [m=2048] [threads=0] [reps=...] [types=F32,F16,BF16,Q8_0,Q4_0,Q5_0]
 *     [f32Math=strict|bf16] [bf16MinRows=16] [quantWeights=int8|bf16|s8] [int8MaxNoise=1.5e-4]}</pre>
 */
public final class MatMulBench {
    private MatMulBench() {
    }

    public static void main(String[] args) {
        Map<String, String> a = new java.util.HashMap<>();
        for (String s : args) {
            String[] kv = s.split("=", 2);
            a.put(kv[0], kv.length > 1 ? kv[1] : "");
        }
        int[] ns = Arrays.stream(a.getOrDefault("n", "512,1").split(",")).mapToInt(Integer::parseInt).toArray();
        int k = Integer.parseInt(a.getOrDefault("k", "2048"));
        int m = Integer.parseInt(a.getOrDefault("m", "2048"));
        int threads = Integer.parseInt(a.getOrDefault("threads", "0"));
        List<DType> types = Arrays.stream(a.getOrDefault("types", "F32,F16,BF16,Q8_0,Q4_0,Q5_0").split(","))
                .map(DType::valueOf).toList();
        Map<String, String> props = new java.util.HashMap<>();
        props.put("cpuDelegate", "false");
        for (String p : List.of("f32Math", "bf16MinRows", "quantWeights", "int8MaxNoise")) {
            if (a.containsKey(p)) {
                props.put(p, a.get(p));
            }
        }
        SplittableRandom r = new SplittableRandom(42);
        try (OneDnnBackend b = (OneDnnBackend) new OneDnnBackendProvider().create(new BackendOptions(threads, props));
             Arena arena = Arena.ofShared()) {
            System.out.printf(Locale.ROOT, "%s; %d threads; implementations %s%n", new OneDnnBackendProvider().probe().detail(),
                    BackendOptions.defaults().effectiveThreads(), b.matmulImplementations());
            for (DType t : types) {
                byte[] wb = TestWeights.random(t, r, m, k);
                Tensor w = Tensor.allocate(arena, t, m, k);
                MemorySegment.copy(wb, 0, w.segment(), ValueLayout.JAVA_BYTE, 0, wb.length);
                for (int n : ns) {
                    Tensor x = Tensor.allocate(arena, DType.F32, n, k);
                    x.copyFrom(TestWeights.uniform(r, n * k));
                    Tensor out = Tensor.allocate(arena, DType.F32, n, m);
                    long c0 = System.nanoTime();
                    b.matmul(x, w, out);
                    double firstMs = (System.nanoTime() - c0) / 1e6;
                    int reps = Integer.parseInt(a.getOrDefault("reps", n >= 64 ? "10" : "200"));
                    for (int i = 0; i < Math.max(2, reps / 5); i++) {
                        b.matmul(x, w, out);
                    }
                    double[] times = new double[reps];
                    double[] cpu = new double[reps];
                    java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
                    for (int i = 0; i < reps; i++) {
                        long cpu0 = mx.getCurrentThreadCpuTime();
                        long t0 = System.nanoTime();
                        b.matmul(x, w, out);
                        times[i] = (System.nanoTime() - t0) / 1e9;
                        cpu[i] = (mx.getCurrentThreadCpuTime() - cpu0) / 1e9;
                    }
                    Arrays.sort(times);
                    Arrays.sort(cpu);
                    double median = times[reps / 2];
                    double flop = 2.0 * n * k * m;
                    double gbps = (double) Tensor.byteSizeOf(t, m, k) / median / 1e9;
                    System.out.printf(Locale.ROOT, "%-5s n=%-4d k=%d m=%d: %8.1f GFLOP/s median, %8.1f best, %9.1f us "
                                    + "(weights %.1f GB/s; per CPU second of the caller %.1f GFLOP; first call with "
                                    + "conversion %.1f ms)%n", t, n, k, m, flop / median / 1e9, flop / times[0] / 1e9,
                            median * 1e6, gbps, flop / cpu[reps / 2] / 1e9, firstMs);
                }
            }
        }
    }
}
