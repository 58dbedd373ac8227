package dev.isthmus.backend.onednn;

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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The oneDNN backend: host memory, matmul and the row/element-wise operators as oneDNN primitives (see
 * {@link MatMul} and {@link Elementwise}). The operators oneDNN does not do (embedding lookup, dequantize,
 * RoPE, copy of rows into the KV cache, attention, argmax, top-k, matmul of the other block formats), and
 * matmuls and row operators with at most {@code cpuGemvMaxRows} rows (token generation), run on the kernels of
 * the {@code cpu} backend when it is on the class path (one instance owned by this backend, on the same memory);
 * without it they answer {@code false} to {@link #supports} (or, for the latter, run on oneDNN).
 *
 * <p><b>Threads.</b> oneDNN runs each primitive on an OpenMP team of the calling thread, whose size
 * ({@code omp_set_num_threads}) is set before the primitive is created and each time it runs: all of
 * {@link BackendOptions#effectiveThreads()} (the count the CPU backend's pool uses too) for large work, one
 * thread for small work (below 2²⁰ multiply-adds or 2¹⁶ elements), where forking a team costs more than it
 * saves. The graph calls one operator at a time, so either the OpenMP team or the CPU pool is busy, never
 * both, and the two together never exceed the thread count (idle OpenMP workers spin only briefly, see
 * {@link OneDnnNatives}).
 *
 * <p><b>Properties</b> ({@link BackendOptions#properties()}, else system properties {@code isthmus.onednn.NAME}):
 * {@code bf16MinRows} (default 16): from this many activation rows F16 weights are multiplied in bf16 on AMX
 * (fewer rows: f32 products of the exact f16 weights); {@code f32Math} = {@code strict} (default) or
 * {@code bf16}: whether F32 weights take the bf16 path from {@code bf16MinRows} rows too;
 * {@code quantWeights} = {@code int8} (default), {@code bf16} or {@code s8}: Q8_0/Q4_0/Q5_0 weights
 * re-quantized to s8 with one scale per output channel and multiplied with activations quantized to s8 per row
 * on AMX int8 (fastest, 1 byte per weight, NMSE around 1e-4), converted exactly to bf16 (2 bytes per weight,
 * about half as fast) or kept exactly as s8 with their block scales for oneDNN's weight decompression (1 byte
 * per weight, slower still); {@code int8MaxNoise} (default 2e-4): the expected rounding noise of s8
 * activations, relative to their signal, above which the int8 path mixes them (and the weights) by
 * {@link Rotation} when that lowers it, and if still above multiplies their s8 rounding error too (a second
 * product with the same weights): Gaussian-like rows (about 7e-5) take one product, heavy-tailed SwiGLU outputs
 * (about 7e-4) are mixed (about 1.4e-4); 1 never mixes nor takes two products, 0 always takes two;
 * {@code cpuGemvMaxRows} (default 2): matmuls and row operators with at most this many rows run on the CPU
 * backend's kernels;
 * {@code cpuDelegate} (default {@code true}): whether to use the CPU backend at all.
 *
 * <p>Calls are serialized by a lock; the backend may be used from any thread.
 */
final class OneDnnBackend implements Backend {
    static final String NAME = "onednn";

    /** Memory from {@link #allocate}, by address: its arena and size. */
    private record Allocation(Arena arena, long bytes) {
    }

    private final ReentrantLock lock = new ReentrantLock();
    private final Dnnl dnnl;
    private final Scratch scratch = new Scratch();
    private final WeightCache weights = new WeightCache();
    private final MatMul matmul;
    private final Elementwise elementwise;
    private final Map<Long, Allocation> allocations = new HashMap<>();
    /** The CPU backend whose kernels run what oneDNN does not, or null if there is none on the class path. */
    private final Backend cpu;
    private final int gemvMaxRows;
    /** Volatile: the delegations to the CPU backend check it without the lock. */
    private volatile boolean closed;

    OneDnnBackend(OneDnnNatives.Loaded natives, BackendOptions options) {
        int threads = options.effectiveThreads();
        int bf16MinRows = Integer.parseInt(property(options, "bf16MinRows", "16"));
        this.gemvMaxRows = Integer.parseInt(property(options, "cpuGemvMaxRows", "2"));
        String f32Math = property(options, "f32Math", "strict");
        if (!f32Math.equals("strict") && !f32Math.equals("bf16")) {
            throw new IllegalArgumentException("f32Math must be strict or bf16, got " + f32Math);
        }
        this.dnnl = new Dnnl(n -> {
            try {
                natives.ompSetNumThreads().invokeExact(n);
            } catch (Throwable t) {
                throw new IllegalStateException("omp_set_num_threads failed", t);
            }
        }, threads);
        MatMul.QuantMath quantMath = switch (property(options, "quantWeights", "int8")) {
            case "int8" -> MatMul.QuantMath.INT8;
            case "bf16" -> MatMul.QuantMath.BF16;
            case "s8" -> MatMul.QuantMath.S8;
            default -> throw new IllegalArgumentException("quantWeights must be int8, bf16 or s8, got "
                    + property(options, "quantWeights", "int8"));
        };
        double int8MaxNoise = Double.parseDouble(property(options, "int8MaxNoise",
                Double.toString(MatMul.INT8_MAX_NOISE)));
        this.matmul = new MatMul(dnnl, weights, scratch, Math.max(1, bf16MinRows), f32Math.equals("bf16"), quantMath,
                int8MaxNoise);
        this.elementwise = new Elementwise(dnnl, scratch);
        this.cpu = Boolean.parseBoolean(property(options, "cpuDelegate", "true")) ? CpuDelegate.open(options) : null;
        locked(() -> matmul.probeImplementations());
    }

    private static String property(BackendOptions options, String name, String def) {
        String v = options.properties().get(name);
        if (v == null) {
            v = System.getProperty("isthmus.onednn." + name);
        }
        return v == null || v.isBlank() ? def : v.trim();
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public Device device() {
        return Device.HOST;
    }

    @Override
    public boolean supports(Op op, DType... dtypes) {
        if (op == null || dtypes == null) {
            return false;
        }
        for (DType t : dtypes) {
            if (t == null || !supports(op, t)) {
                return false;
            }
        }
        return true;
    }

    private boolean supports(Op op, DType t) {
        return onOneDnn(op, t) || (cpu != null && cpu.supports(op, t));
    }

    /** Whether oneDNN primitives implement {@code op} for {@code t} (at least for some shapes). */
    boolean onOneDnn(Op op, DType t) {
        return switch (op) {
            case MATMUL -> matmul.supports(t);
            case RMS_NORM, LAYER_NORM, ADD, MUL, SCALE, SILU, GELU, SWIGLU, SOFTMAX -> t == DType.F32;
            case DEQUANTIZE, EMBEDDING_LOOKUP, ROPE, COPY_ROWS, ATTENTION, ARGMAX, TOP_K -> false;
        };
    }

    /** Whether the CPU backend's kernels are at hand for what oneDNN does not do. */
    boolean hasCpuDelegate() {
        return cpu != null;
    }

    /**
     * Whether a matmul goes to the CPU backend's kernels: weights oneDNN cannot take, and at most
     * {@code cpuGemvMaxRows} activation rows (token generation), which only stream the weights: the CPU kernels
     * read them from the model file as fast as oneDNN reads its converted copy (which then need not exist), fuse
     * the Q/K/V and gate/up products into one dispatch of their pool where oneDNN forks a team per product, and
     * for block formats multiply them exactly.
     */
    private boolean matmulOnCpu(Tensor x, Tensor w) {
        ensureOpen();
        if (cpu == null) {
            return false;
        }
        return !matmul.supports(w.dtype()) || x.rows() <= gemvMaxRows;
    }

    /**
     * Whether a row or element-wise operator goes to the CPU backend's kernels: at most {@code cpuGemvMaxRows}
     * rows (token generation), where executing a oneDNN primitive costs several times the work itself.
     */
    private boolean rowsOnCpu(Tensor x) {
        ensureOpen();
        return cpu != null && x.rows() <= gemvMaxRows;
    }

    private Backend cpu(Op op) {
        ensureOpen();
        if (cpu == null) {
            throw new UnsupportedOperationException("onednn does not implement " + op + " and no cpu backend is on "
                    + "the class path; open it with Backends.openWithFallback");
        }
        return cpu;
    }

    /** The implementation oneDNN chose for the row/element-wise operators used so far, for diagnostics. */
    Map<String, String> elementwiseImplementations() {
        lock.lock();
        try {
            return elementwise.implementations();
        } finally {
            lock.unlock();
        }
    }

    /** The matmul implementation oneDNN chose per kind on this CPU, for diagnostics. */
    Map<MatMul.Kind, String> matmulImplementations() {
        return matmul.probeImplementations();
    }

    // ---- memory -----------------------------------------------------------------------------------

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        long bytes = Tensor.byteSizeOf(dtype, shape);
        Arena arena = Arena.ofShared();
        MemorySegment s = arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes);
        lock.lock();
        try {
            ensureOpen();
            allocations.put(s.address(), new Allocation(arena, bytes));
        } finally {
            lock.unlock();
        }
        return Tensor.of(s, Device.HOST, dtype, shape);
    }

    @Override
    public void release(Tensor tensor) {
        if (tensor == null) {
            return;
        }
        lock.lock();
        try {
            long address = tensor.segment().address();
            Allocation a = allocations.get(address);
            // Only the tensor allocate returned (or a reshape of it): not a view that happens to start there.
            if (a != null && a.bytes() == tensor.segment().byteSize()) {
                allocations.remove(address);
                weights.evict(address, Math.max(1, a.bytes()));
                a.arena().close();
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        if (src.dtype() != dst.dtype() || !Arrays.equals(src.shape(), dst.shape())) {
            throw new IllegalArgumentException("copy needs the same dtype and shape: " + src + " -> " + dst);
        }
        if (src.isContiguous() && dst.isContiguous()) {
            MemorySegment.copy(src.segment(), 0, dst.segment(), 0, src.rows() * src.rowBytes());
            return;
        }
        long bytes = src.rowBytes();
        for (long r = 0; r < src.rows(); r++) {
            MemorySegment.copy(src.segment(), src.rowOffset(r), dst.segment(), dst.rowOffset(r), bytes);
        }
    }

    @Override
    public void synchronize() {
        // CPU primitives on an in-order stream have finished when execute returns.
    }

    // ---- operators --------------------------------------------------------------------------------

    /** Runs {@code op} under the lock after checking that the backend is open. */
    private void locked(Runnable op) {
        lock.lock();
        try {
            ensureOpen();
            op.run();
        } finally {
            lock.unlock();
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("the onednn backend is closed");
        }
    }

    @Override
    public void matmul(Tensor x, Tensor w, Tensor out) {
        if (matmulOnCpu(x, w)) {
            cpu.matmul(x, w, out);
            return;
        }
        locked(() -> matmul.run(x, w, out));
    }

    /**
     * Several products of the same activations: on oneDNN with {@code x} converted or quantized once, unless some
     * weight goes to the CPU backend's kernels (then all go there when all can, else one by one).
     */
    @Override
    public void matmul(Tensor x, Tensor[] weights, Tensor[] outs) {
        int onCpu = 0;
        for (Tensor w : weights) {
            onCpu += matmulOnCpu(x, w) ? 1 : 0;
        }
        if (onCpu == weights.length && onCpu > 0) {
            cpu.matmul(x, weights, outs);
            return;
        }
        if (onCpu > 0) {
            Backend.super.matmul(x, weights, outs);
            return;
        }
        locked(() -> matmul.run(x, weights, outs));
    }

    /** Gate and up products with {@code x} converted or quantized once, then SwiGLU, all on oneDNN when it can. */
    @Override
    public void matmulSwiglu(Tensor x, Tensor gate, Tensor up, Tensor out, Tensor upOut) {
        boolean gateOnCpu = matmulOnCpu(x, gate);
        boolean upOnCpu = matmulOnCpu(x, up);
        if (gateOnCpu && upOnCpu) {
            cpu.matmulSwiglu(x, gate, up, out, upOut);
            return;
        }
        if (gateOnCpu || upOnCpu) {
            Backend.super.matmulSwiglu(x, gate, up, out, upOut);
            return;
        }
        locked(() -> {
            matmul.run(x, new Tensor[] {gate, up}, new Tensor[] {out, upOut});
            elementwise.swiglu(out, upOut, out);
        });
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        if (rowsOnCpu(x)) {
            cpu.rmsNorm(x, weight, eps, out);
            return;
        }
        locked(() -> elementwise.rmsNorm(x, weight, eps, out));
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        if (rowsOnCpu(x)) {
            cpu.layerNorm(x, weight, bias, eps, out);
            return;
        }
        locked(() -> elementwise.layerNorm(x, weight, bias, eps, out));
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        if (rowsOnCpu(a)) {
            cpu.add(a, b, out);
            return;
        }
        locked(() -> elementwise.add(a, b, out));
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        if (rowsOnCpu(a)) {
            cpu.mul(a, b, out);
            return;
        }
        locked(() -> elementwise.mul(a, b, out));
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        if (rowsOnCpu(x)) {
            cpu.scale(x, s, out);
            return;
        }
        locked(() -> elementwise.scale(x, s, out));
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        if (rowsOnCpu(x)) {
            cpu.silu(x, out);
            return;
        }
        locked(() -> elementwise.silu(x, out));
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        if (rowsOnCpu(x)) {
            cpu.gelu(x, out);
            return;
        }
        locked(() -> elementwise.gelu(x, out));
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        if (rowsOnCpu(gate)) {
            cpu.swiglu(gate, up, out);
            return;
        }
        locked(() -> elementwise.swiglu(gate, up, out));
    }

    @Override
    public void softmax(Tensor x, Tensor out) {
        if (rowsOnCpu(x)) {
            cpu.softmax(x, out);
            return;
        }
        locked(() -> elementwise.softmax(x, out));
    }

    // ---- operators on the CPU backend's kernels -------------------------------------------------------

    @Override
    public void dequantize(Tensor src, Tensor dst) {
        cpu(Op.DEQUANTIZE).dequantize(src, dst);
    }

    @Override
    public void embeddingLookup(Tensor table, int[] ids, Tensor out) {
        cpu(Op.EMBEDDING_LOOKUP).embeddingLookup(table, ids, out);
    }

    @Override
    public void rope(Tensor x, int[] positions, Rope rope) {
        cpu(Op.ROPE).rope(x, positions, rope);
    }

    @Override
    public void copyRows(Tensor src, Tensor dst, int[] rows) {
        cpu(Op.COPY_ROWS).copyRows(src, dst, rows);
    }

    @Override
    public void attention(Tensor q, Tensor kCache, Tensor vCache, KvLayout layout, Attention params, Tensor out) {
        cpu(Op.ATTENTION).attention(q, kCache, vCache, layout, params, out);
    }

    @Override
    public int[] argmax(Tensor x) {
        return cpu(Op.ARGMAX).argmax(x);
    }

    @Override
    public TopK topK(Tensor x, int k) {
        return cpu(Op.TOP_K).topK(x, k);
    }

    // ---- diagnostics and lifetime -----------------------------------------------------------------

    /** Counts for tests: cached primitives (all kinds), matmul plans, cached weights and their bytes. */
    record Stats(int primitives, int matmulPlans, int elementwisePrimitives, int weights, long weightBytes) {
    }

    Stats stats() {
        lock.lock();
        try {
            return new Stats(dnnl.primitiveCount(), matmul.planCount(), elementwise.cached(), weights.size(),
                    weights.bytes());
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            matmul.close();
            elementwise.close();
            weights.close();
            dnnl.close();
            scratch.close();
            allocations.values().forEach(a -> a.arena().close());
            allocations.clear();
            if (cpu != null) {
                cpu.close();
            }
        } finally {
            lock.unlock();
        }
    }
}
