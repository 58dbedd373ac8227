package dev.isthmus.bench;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.CpuBackendProvider;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
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
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Matrix × vector (decode) and matrix × matrix (prefill) through the SPI, for each weight dtype, on the CPU
 * backend with its C kernels ({@code kernels=native}: AVX-512 VNNI / F16C, where the dtype has one) or its Java
 * Vector API kernels ({@code kernels=java}), on 1 or 2 threads. Shapes are llama-3.2-1b's: {@code m=2048}
 * (attention projections) and {@code m=8192} (FFN gate/up) with {@code k=2048}; {@code n=1} is a decode step,
 * {@code n=512} a pp512 prompt. Each parameter combination runs in its own fork, so the system property that
 * selects the kernels is set before the backend loads.
 *
 * <p>Run: {@code java --add-modules jdk.incubator.vector -jar bench/target/benchmarks.jar Matmul
 * -p dtype=Q8_0,Q4_0 -p n=1 -p threads=2}
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MatmulBenchmark {
    @Param({"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
    public String dtype;

    /** Activation rows: 1 is a decode step, larger is prefill. */
    @Param({"1", "512"})
    public int n;

    @Param({"2048"})
    public int k;

    @Param({"2048"})
    public int m;

    /** {@code native} or {@code java}. */
    @Param({"native", "java"})
    public String kernels;

    @Param({"2"})
    public int threads;

    private Arena arena;
    private Backend backend;
    private Tensor x;
    private Tensor w;
    private Tensor out;

    @Setup(Level.Trial)
    public void setUp() {
        System.setProperty("isthmus.cpu.native", String.valueOf(kernels.equals("native")));
        arena = Arena.ofShared();
        backend = new CpuBackendProvider().create(new BackendOptions(threads, Map.of()));
        DType t = DType.valueOf(dtype);
        Random random = new Random(42);
        x = Tensor.allocate(arena, DType.F32, n, k);
        for (long i = 0; i < (long) n * k; i++) {
            x.segment().setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) random.nextGaussian());
        }
        w = Tensor.allocate(arena, t, m, k);
        fillPlausibleWeights(w, random);
        out = Tensor.allocate(arena, DType.F32, n, m);
    }

    /**
     * Random bytes are valid weights of every block format except for the scales, which must be finite: the
     * scale fields of each block are overwritten with small values. Float types get Gaussian values.
     */
    private static void fillPlausibleWeights(Tensor w, Random random) {
        DType t = w.dtype();
        if (!t.isQuantized()) {
            for (long i = 0; i < w.elementCount(); i++) {
                float v = (float) (random.nextGaussian() * 0.02);
                switch (t) {
                    case F32 -> w.segment().setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, v);
                    case F16 -> w.segment().setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16(v));
                    case BF16 -> w.segment().setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i,
                            (short) (Float.floatToRawIntBits(v) >>> 16));
                    default -> throw new IllegalArgumentException("not a weight type: " + t);
                }
            }
            return;
        }
        byte[] bytes = new byte[(int) w.segment().byteSize()];
        random.nextBytes(bytes);
        w.segment().copyFrom(MemorySegment.ofArray(bytes));
        short smallHalf = Float.floatToFloat16(0.01f);
        long blocks = w.segment().byteSize() / t.blockBytes();
        for (long b = 0; b < blocks; b++) {
            long base = b * t.blockBytes();
            if (t == DType.Q8_K) {
                w.segment().set(ValueLayout.JAVA_FLOAT_UNALIGNED, base, 0.01f);
            }
            for (int offset : halfScaleOffsets(t)) {
                w.segment().set(ValueLayout.JAVA_SHORT_UNALIGNED, base + offset, smallHalf);
            }
        }
    }

    /** Byte offsets of the half-float scales (d, and dmin/m where present) inside a block, per ggml. */
    private static int[] halfScaleOffsets(DType t) {
        return switch (t) {
            case Q4_0, Q5_0, Q8_0 -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q2_K -> new int[] {80, 82};
            case Q3_K -> new int[] {108};
            case Q6_K -> new int[] {208};
            default -> new int[0];
        };
    }

    @Benchmark
    public Tensor matmul() {
        backend.matmul(x, w, out);
        return out;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        backend.close();
        arena.close();
    }
}
