package dev.isthmus.backend.cpu;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Op;
import dev.isthmus.api.Rope;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.backend.cpu.format.WeightFormats;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.memory.HostMemory;
import dev.isthmus.backend.cpu.natives.NativeCpu;
import dev.isthmus.backend.cpu.ops.ArgMax;
import dev.isthmus.backend.cpu.ops.BinaryOps;
import dev.isthmus.backend.cpu.ops.CopyRows;
import dev.isthmus.backend.cpu.ops.Dequantize;
import dev.isthmus.backend.cpu.ops.EmbeddingLookup;
import dev.isthmus.backend.cpu.ops.FlashAttention;
import dev.isthmus.backend.cpu.ops.LayerNorm;
import dev.isthmus.backend.cpu.ops.MatMul;
import dev.isthmus.backend.cpu.ops.RmsNorm;
import dev.isthmus.backend.cpu.ops.RotaryEmbedding;
import dev.isthmus.backend.cpu.ops.Softmax;
import dev.isthmus.backend.cpu.ops.SwiGlu;
import dev.isthmus.backend.cpu.ops.TopKSelection;
import dev.isthmus.backend.cpu.ops.TensorCopy;
import dev.isthmus.backend.cpu.ops.UnaryOps;
import dev.isthmus.backend.cpu.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The operator SPI on the host CPU: off-heap tensors, Vector API kernels and a worker pool of
 * {@link BackendOptions#effectiveThreads()} threads (the calling thread being one of them). Operators run
 * synchronously, so {@link #synchronize()} has nothing to wait for.
 */
public final class CpuBackend implements Backend {
    private static final AtomicInteger INSTANCES = new AtomicInteger();

    private final WorkerPool pool;
    private final HostMemory memory = new HostMemory();

    public CpuBackend(BackendOptions options) {
        this.pool = new WorkerPool(options.effectiveThreads(), "isthmus-cpu-" + INSTANCES.incrementAndGet());
    }

    /**
     * E.g. "Java Vector API, 512-bit preferred species, kernels 512-bit (16 float lanes), 2 threads; matmul and
     * attention: C kernels (AVX-512 VNNI int8, F16C)".
     */
    static String describeHardware(int threads) {
        return "Java Vector API, " + FloatVector.SPECIES_PREFERRED.vectorBitSize()
                + "-bit preferred species, kernels " + Lanes.describe() + ", " + threads
                + (threads == 1 ? " thread" : " threads") + "; matmul and attention: "
                + (NativeCpu.enabled() ? NativeCpu.status() : "Java kernels (" + NativeCpu.status() + ")");
    }

    /** Number of threads operators run on. */
    public int threads() {
        return pool.threads();
    }

    @Override
    public String name() {
        return CpuBackendProvider.NAME;
    }

    @Override
    public Device device() {
        return Device.HOST;
    }

    @Override
    public boolean supports(Op op, DType... dtypes) {
        if (op == null) {
            return false;
        }
        for (DType t : dtypes == null ? new DType[0] : dtypes) {
            if (t == null || !supports(op, t)) {
                return false;
            }
        }
        return true;
    }

    private static boolean supports(Op op, DType t) {
        return switch (op) {
            case MATMUL, DEQUANTIZE, EMBEDDING_LOOKUP -> WeightFormats.supports(t);
            case RMS_NORM, LAYER_NORM, COPY_ROWS, ATTENTION -> WeightFormats.supportsFloat(t);
            case ADD, MUL, SCALE, SILU, GELU, SWIGLU, SOFTMAX, ROPE, ARGMAX, TOP_K -> t == DType.F32;
        };
    }

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        return memory.allocate(dtype, shape);
    }

    @Override
    public void release(Tensor tensor) {
        memory.release(tensor);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        TensorCopy.run(src, dst);
    }

    @Override
    public void synchronize() {
        // Every operator has finished when it returns.
    }

    @Override
    public void matmul(Tensor x, Tensor w, Tensor out) {
        MatMul.run(pool, x, w, out);
    }

    @Override
    public void matmul(Tensor x, Tensor[] weights, Tensor[] outs) {
        MatMul.runAll(pool, x, weights, outs);
    }

    @Override
    public void matmulSwiglu(Tensor x, Tensor gate, Tensor up, Tensor out, Tensor upOut) {
        MatMul.runSwiglu(pool, x, gate, up, out, upOut);
    }

    @Override
    public void dequantize(Tensor src, Tensor dst) {
        Dequantize.run(pool, src, dst);
    }

    @Override
    public void embeddingLookup(Tensor table, int[] ids, Tensor out) {
        EmbeddingLookup.run(pool, table, ids, out);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        RmsNorm.run(pool, x, weight, eps, out);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        LayerNorm.run(pool, x, weight, bias, eps, out);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        BinaryOps.run(pool, BinaryOps.Kind.ADD, a, b, out);
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        BinaryOps.run(pool, BinaryOps.Kind.MUL, a, b, out);
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        UnaryOps.run(pool, UnaryOps.Kind.SCALE, x, s, out);
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        UnaryOps.run(pool, UnaryOps.Kind.SILU, x, 0f, out);
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        UnaryOps.run(pool, UnaryOps.Kind.GELU, x, 0f, out);
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        SwiGlu.run(pool, gate, up, out);
    }

    @Override
    public void softmax(Tensor x, Tensor out) {
        Softmax.run(pool, x, out);
    }

    @Override
    public void rope(Tensor x, int[] positions, Rope rope) {
        RotaryEmbedding.run(pool, x, positions, rope);
    }

    @Override
    public void copyRows(Tensor src, Tensor dst, int[] rows) {
        CopyRows.run(pool, src, dst, rows);
    }

    @Override
    public void attention(Tensor q, Tensor kCache, Tensor vCache, KvLayout layout, Attention params, Tensor out) {
        FlashAttention.run(pool, q, kCache, vCache, layout, params, out);
    }

    @Override
    public int[] argmax(Tensor x) {
        return ArgMax.run(pool, x);
    }

    @Override
    public TopK topK(Tensor x, int k) {
        return TopKSelection.run(pool, x, k);
    }

    @Override
    public void close() {
        pool.close();
        memory.close();
    }
}
