package dev.isthmus.bench;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
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
 * One layer's ATTENTION with llama-3.2-1b's heads (32 query heads, 8 KV heads, head size 64) over an F16 cache:
 * {@code n=512} is the causal prompt of pp512 (positions 0..511), {@code n=1} a decode step at position
 * {@code context - 1}. {@code kernels=native} is the C flash-attention kernel, {@code java} the Vector API one.
 *
 * <p>Run: {@code java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar Attention}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class AttentionBenchmark {
    @Param({"1", "512"})
    public int n;

    @Param({"512"})
    public int context;

    @Param({"native", "java"})
    public String kernels;

    @Param({"2"})
    public int threads;

    private static final int HEADS = 32;
    private static final int KV_HEADS = 8;
    private static final int HEAD_DIM = 64;

    private Arena arena;
    private Backend backend;
    private Tensor q;
    private Tensor k;
    private Tensor v;
    private Tensor out;
    private KvLayout layout;
    private Attention params;

    @Setup(Level.Trial)
    public void setUp() {
        System.setProperty("isthmus.cpu.native", String.valueOf(kernels.equals("native")));
        arena = Arena.ofShared();
        backend = new CpuBackendProvider().create(new BackendOptions(threads, Map.of()));
        Random random = new Random(1);
        q = Tensor.allocate(arena, DType.F32, n, HEADS, HEAD_DIM);
        for (long i = 0; i < q.elementCount(); i++) {
            q.segment().setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) random.nextGaussian());
        }
        k = Tensor.allocate(arena, DType.F16, context, KV_HEADS, HEAD_DIM);
        v = Tensor.allocate(arena, DType.F16, context, KV_HEADS, HEAD_DIM);
        for (long i = 0; i < k.elementCount(); i++) {
            k.segment().setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16((float) random.nextGaussian()));
            v.segment().setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16((float) random.nextGaussian()));
        }
        out = Tensor.allocate(arena, DType.F32, n, HEADS, HEAD_DIM);
        layout = KvLayout.contiguous(context, context - n, n);
        params = Attention.causal(HEAD_DIM);
    }

    @Benchmark
    public Tensor attention() {
        backend.attention(q, k, v, layout, params, out);
        return out;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
        arena.close();
    }
}
