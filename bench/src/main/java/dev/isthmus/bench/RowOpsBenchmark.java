package dev.isthmus.bench;

import dev.isthmus.api.DType;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.backend.cpu.CpuBackendProvider;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The row-wise ops of a llama-3.2-1b layer on the CPU backend (Java Vector API kernels): RMSNorm of the
 * residual stream ({@code [n, 2048]}), RoPE of the query heads ({@code [n, 32, 64]}), SwiGLU of the FFN
 * ({@code [n, 8192]}), for a decode step ({@code n=1}) and a pp512 prompt.
 *
 * <p>Run: {@code java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar RowOps}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class RowOpsBenchmark {
    @Param({"1", "512"})
    public int n;

    @Param({"2"})
    public int threads;

    private Arena arena;
    private Backend backend;
    private Tensor residual;
    private Tensor normWeight;
    private Tensor normed;
    private Tensor queries;
    private int[] positions;
    private Rope rope;
    private Tensor gate;
    private Tensor up;
    private Tensor act;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        backend = new CpuBackendProvider().create(new BackendOptions(threads, Map.of()));
        Random random = new Random(3);
        residual = gaussian(random, n, 2048);
        normWeight = gaussian(random, 2048);
        normed = Tensor.allocate(arena, DType.F32, n, 2048);
        queries = gaussian(random, n, 32, 64);
        positions = new int[n];
        for (int i = 0; i < n; i++) {
            positions[i] = i;
        }
        rope = Rope.of(RopeLayout.NORMAL, 64, 500000f);
        gate = gaussian(random, n, 8192);
        up = gaussian(random, n, 8192);
        act = Tensor.allocate(arena, DType.F32, n, 8192);
    }

    private Tensor gaussian(Random random, long... shape) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        for (long i = 0; i < t.elementCount(); i++) {
            t.segment().setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) random.nextGaussian());
        }
        return t;
    }

    @Benchmark
    public Tensor rmsnorm() {
        backend.rmsNorm(residual, normWeight, 1e-5f, normed);
        return normed;
    }

    @Benchmark
    public Tensor rope() {
        // rotating the same rows again each call: the values change, the cost does not
        backend.rope(queries, positions, rope);
        return queries;
    }

    @Benchmark
    public Tensor swiglu() {
        backend.swiglu(gate, up, act);
        return act;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
        arena.close();
    }
}
