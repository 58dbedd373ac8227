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
 * RoPE, copy of rows into the KV cache, attention, argmax, top-k, matmul of the other block formats) and
 * matmuls of block-quantized weights with at most {@code cpuGemvMaxRows} rows run on the kernels of the
 * {@code cpu} backend when it is on the class path (one instance owned by this backend, on the same memory);
 * without it they answer {@code false} to {@link #supports}.
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
 * {@code quantWeights} = {@code bf16} (default) or {@code s8}: Q8_0/Q4_0/Q5_0 weights converted to bf16
 * (fastest; 2 bytes per weight) or kept as s8 with their block scales for oneDNN's weight decompression
 * (1 byte per weight, about 30% slower);
 * {@code cpuGemvMaxRows} (default 2): block-quantized matmuls with at most this many rows run on the CPU
 * backend's kernels; {@code cpuDelegate} (default {@code true}): whether to use the CPU backend at all.
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
    private boolean closed;

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
        String quantWeights = property(options, "quantWeights", "bf16");
        if (!quantWeights.equals("bf16") && !quantWeights.equals("s8")) {
            throw new IllegalArgumentException("quantWeights must be bf16 or s8, got " + quantWeights);
        }
        this.matmul = new MatMul(dnnl, weights, scratch, Math.max(1, bf16MinRows), f32Math.equals("bf16"),
                quantWeights.equals("bf16"));
        this.elementwise = new Elementwise(dnnl, scratch);
        this.cpu = Boolean.parseBoolean(property(options, "cpuDelegate", "true")) ? CpuDelegate.open(options) : null;
        enter();
        try {
            matmul.probeImplementations();
        } finally {
            lock.unlock();
        }
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
     * Whether a matmul goes to the CPU backend's kernels: weights oneDNN cannot take, and block-quantized
     * weights with at most {@code cpuGemvMaxRows} activation rows, where oneDNN 3.11's weight decompression
     * (built for AMX tiles) reads weights at a third of the speed of a dedicated dot-product kernel.
     */
    private boolean matmulOnCpu(Tensor x, Tensor w) {
        if (cpu == null) {
            return false;
        }
        return !matmul.supports(w.dtype()) || (w.dtype().isQuantized() && x.rows() <= gemvMaxRows);
    }

    private Backend cpu(Op op) {
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

    /** Takes the lock (released by the caller) after checking that the backend is open. */
    private void enter() {
        lock.lock();
        try {
            ensureOpen();
        } catch (RuntimeException e) {
            lock.unlock();
            throw e;
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
        enter();
        try {
            matmul.run(x, w, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        enter();
        try {
            elementwise.rmsNorm(x, weight, eps, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        enter();
        try {
            elementwise.layerNorm(x, weight, bias, eps, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        enter();
        try {
            elementwise.add(a, b, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        enter();
        try {
            elementwise.mul(a, b, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        enter();
        try {
            elementwise.scale(x, s, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        enter();
        try {
            elementwise.silu(x, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        enter();
        try {
            elementwise.gelu(x, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        enter();
        try {
            elementwise.swiglu(gate, up, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void softmax(Tensor x, Tensor out) {
        enter();
        try {
            elementwise.softmax(x, out);
        } finally {
            lock.unlock();
        }
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
