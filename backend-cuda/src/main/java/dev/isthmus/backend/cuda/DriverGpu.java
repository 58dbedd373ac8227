package dev.isthmus.backend.cuda;

import dev.isthmus.bindings.cuda.cuda_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumMap;
import java.util.Map;

import static dev.isthmus.backend.cuda.DriverApi.check;

/**
 * {@link Gpu} on a real device through the CUDA driver API (jextract bindings {@link cuda_h}): the device's
 * primary context (shared with any other user of the device in this process, e.g. cuBLAS), one non-blocking
 * stream, and the module loaded from the fatbin with a function handle per {@link Kernel}.
 *
 * <p>The driver's current context is per thread, so every entry point makes the context current first: the
 * backend may be used from any thread (one at a time).
 */
final class DriverGpu implements Gpu {
    private final Arena arena = Arena.ofShared();
    private final int device;
    private final MemorySegment context;
    private final MemorySegment stream;
    private final MemorySegment module;
    private final Map<Kernel, MemorySegment> functions = new EnumMap<>(Kernel.class);
    private final String description;
    private final int multiprocessors;
    private final Blas blas;
    private final String blasReason;
    private boolean closed;

    private DriverGpu(int device, MemorySegment context, MemorySegment stream, MemorySegment module,
                      String description, int multiprocessors, Blas blas, String blasReason) {
        this.device = device;
        this.context = context;
        this.stream = stream;
        this.module = module;
        this.description = description;
        this.multiprocessors = multiprocessors;
        this.blas = blas == null ? null : new CurrentContextBlas(blas);
        this.blasReason = blasReason;
    }

    /** cuBLAS calls use the calling thread's current context: make ours current first. */
    private final class CurrentContextBlas implements Blas {
        private final Blas blas;

        CurrentContextBlas(Blas blas) {
            this.blas = blas;
        }

        @Override
        public void gemmEx(int transa, int transb, int m, int n, int k, float alpha, long a, int aType, int lda,
                           long b, int bType, int ldb, float beta, long c, int cType, int ldc, int computeType) {
            current();
            blas.gemmEx(transa, transb, m, n, k, alpha, a, aType, lda, b, bType, ldb, beta, c, cType, ldc, computeType);
        }

        @Override
        public String description() {
            return blas.description();
        }

        @Override
        public void close() {
            current();
            blas.close();
        }
    }

    /**
     * Opens device {@code ordinal}: retains its primary context, creates a stream, loads {@code fatbin} and looks
     * up every kernel, and creates a cuBLAS handle on the stream if cuBLAS can be loaded.
     *
     * @throws CudaException naming the call that failed (for a module load, with the JIT error log)
     */
    static DriverGpu open(int ordinal, byte[] fatbin, String description, int multiprocessors, boolean useBlas) {
        String why = DriverApi.load();
        if (why != null) {
            throw new IllegalStateException(why);
        }
        MemorySegment ctx = null;
        MemorySegment stream = null;
        MemorySegment module = null;
        boolean retained = false;
        try (Arena a = Arena.ofConfined()) {
            check(cuda_h.cuInit(0), "cuInit");
            MemorySegment dev = a.allocate(ValueLayout.JAVA_INT);
            check(cuda_h.cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
            int device = dev.get(ValueLayout.JAVA_INT, 0);
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(cuda_h.cuDevicePrimaryCtxRetain(p, device), "cuDevicePrimaryCtxRetain");
            retained = true;
            ctx = p.get(ValueLayout.ADDRESS, 0);
            check(cuda_h.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
            check(cuda_h.cuStreamCreate(p, cuda_h.CU_STREAM_NON_BLOCKING()), "cuStreamCreate");
            stream = p.get(ValueLayout.ADDRESS, 0);
            module = loadModule(a, fatbin);
            DriverGpu gpu;
            Blas blas = null;
            String blasReason = "cuBLAS disabled (cuda.cublas=false)";
            if (useBlas) {
                try {
                    blas = CublasBlas.create(stream);
                    blasReason = null;
                } catch (RuntimeException e) {
                    blasReason = e.getMessage();
                }
            }
            gpu = new DriverGpu(device, ctx, stream, module, description, multiprocessors, blas, blasReason);
            for (Kernel k : Kernel.values()) {
                MemorySegment name = a.allocateFrom(k.symbol());
                check(cuda_h.cuModuleGetFunction(p, module, name), "cuModuleGetFunction(" + k.symbol() + ")");
                gpu.functions.put(k, p.get(ValueLayout.ADDRESS, 0));
            }
            return gpu;
        } catch (RuntimeException e) {
            if (module != null) {
                cuda_h.cuModuleUnload(module);
            }
            if (stream != null) {
                cuda_h.cuStreamDestroy_v2(stream);
            }
            if (retained) {
                try (Arena a = Arena.ofConfined()) {
                    MemorySegment dev = a.allocate(ValueLayout.JAVA_INT);
                    if (cuda_h.cuDeviceGet(dev, ordinal) == 0) {
                        cuda_h.cuDevicePrimaryCtxRelease_v2(dev.get(ValueLayout.JAVA_INT, 0));
                    }
                }
            }
            throw e;
        }
    }

    /** {@code cuModuleLoadDataEx} with an error log, so that a PTX JIT failure says what went wrong. */
    private static MemorySegment loadModule(Arena a, byte[] fatbin) {
        MemorySegment image = a.allocate(fatbin.length, 16);
        MemorySegment.copy(fatbin, 0, image, ValueLayout.JAVA_BYTE, 0, fatbin.length);
        int logSize = 8192;
        MemorySegment log = a.allocate(logSize);
        MemorySegment options = a.allocate(ValueLayout.JAVA_INT, 2);
        options.setAtIndex(ValueLayout.JAVA_INT, 0, cuda_h.CU_JIT_ERROR_LOG_BUFFER());
        options.setAtIndex(ValueLayout.JAVA_INT, 1, cuda_h.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES());
        MemorySegment values = a.allocate(ValueLayout.ADDRESS, 2);
        values.setAtIndex(ValueLayout.ADDRESS, 0, log);
        values.setAtIndex(ValueLayout.ADDRESS, 1, MemorySegment.ofAddress(logSize));
        MemorySegment p = a.allocate(ValueLayout.ADDRESS);
        int rc = cuda_h.cuModuleLoadDataEx(p, image, 2, options, values);
        if (rc != 0) {
            String jitLog = log.getString(0).strip();
            throw new CudaException("loading the CUDA kernels (cuModuleLoadDataEx) failed: " + DriverApi.describe(rc)
                    + (rc == 209 ? " — the fatbin has sm_80/sm_90 code and compute_90 PTX; this GPU or driver can use none of them" : "")
                    + (rc == 222 ? " — the driver is older than the CUDA toolkit that built the PTX" : "")
                    + (jitLog.isEmpty() ? "" : "\nJIT log: " + jitLog), rc);
        }
        return p.get(ValueLayout.ADDRESS, 0);
    }

    private void current() {
        if (closed) {
            throw new IllegalStateException("CUDA backend is closed");
        }
        check(cuda_h.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public int multiprocessors() {
        return multiprocessors;
    }

    @Override
    public long allocate(long bytes) {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.JAVA_LONG);
            check(cuda_h.cuMemAlloc_v2(p, bytes), "cuMemAlloc(" + bytes + ")");
            return p.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    @Override
    public void free(long address) {
        current();
        check(cuda_h.cuMemFree_v2(address), "cuMemFree");
    }

    @Override
    public MemorySegment allocatePinned(long bytes) {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(cuda_h.cuMemHostAlloc(p, bytes, cuda_h.CU_MEMHOSTALLOC_PORTABLE()), "cuMemHostAlloc(" + bytes + ")");
            return p.get(ValueLayout.ADDRESS, 0).reinterpret(bytes);
        }
    }

    @Override
    public void freePinned(MemorySegment pinned) {
        current();
        check(cuda_h.cuMemFreeHost(pinned), "cuMemFreeHost");
    }

    @Override
    public void copyToDevice(long dst, MemorySegment src, long bytes) {
        current();
        // From pageable memory the driver stages the bytes before returning, so src may be reused at once.
        check(cuda_h.cuMemcpyHtoDAsync_v2(dst, src, bytes, stream), "cuMemcpyHtoDAsync");
    }

    @Override
    public void copyToDeviceAsync(long dst, MemorySegment pinnedSrc, long bytes) {
        current();
        check(cuda_h.cuMemcpyHtoDAsync_v2(dst, pinnedSrc, bytes, stream), "cuMemcpyHtoDAsync");
    }

    @Override
    public void copyToHost(MemorySegment dst, long src, long bytes) {
        current();
        check(cuda_h.cuMemcpyDtoHAsync_v2(dst, src, bytes, stream), "cuMemcpyDtoHAsync");
        check(cuda_h.cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    @Override
    public void copyOnDevice(long dst, long src, long bytes) {
        current();
        check(cuda_h.cuMemcpyDtoDAsync_v2(dst, src, bytes, stream), "cuMemcpyDtoDAsync");
    }

    @Override
    public void fill(long dst, byte value, long bytes) {
        current();
        check(cuda_h.cuMemsetD8Async(dst, value, bytes, stream), "cuMemsetD8Async");
    }

    @Override
    public void launch(Kernel kernel, Launch l, MemorySegment params) {
        current();
        check(cuda_h.cuLaunchKernel(functions.get(kernel), l.gridX(), l.gridY(), l.gridZ(), l.blockX(), l.blockY(),
                l.blockZ(), l.sharedBytes(), stream, params, MemorySegment.NULL), "cuLaunchKernel(" + kernel.symbol()
                + ", " + l + ")");
    }

    @Override
    public void synchronize() {
        current();
        check(cuda_h.cuStreamSynchronize(stream), "cuStreamSynchronize");
    }

    @Override
    public Blas blas() {
        return blas;
    }

    @Override
    public String blasUnavailableReason() {
        return blasReason;
    }

    /** A {@code CUgraph} or {@code CUgraphExec} handle. */
    private record Handle(MemorySegment handle, boolean executable) implements Graph {
        @Override
        public void close() {
            if (executable) {
                cuda_h.cuGraphExecDestroy(handle);
            } else {
                cuda_h.cuGraphDestroy(handle);
            }
        }
    }

    @Override
    public void beginCapture() {
        current();
        check(cuda_h.cuStreamBeginCapture_v2(stream, cuda_h.CU_STREAM_CAPTURE_MODE_RELAXED()), "cuStreamBeginCapture");
    }

    @Override
    public Graph endCapture() {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(cuda_h.cuStreamEndCapture(stream, p), "cuStreamEndCapture");
            return new Handle(p.get(ValueLayout.ADDRESS, 0), false);
        }
    }

    @Override
    public Graph instantiate(Graph graph) {
        current();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(cuda_h.cuGraphInstantiateWithFlags(p, ((Handle) graph).handle(), 0), "cuGraphInstantiate");
            return new Handle(p.get(ValueLayout.ADDRESS, 0), true);
        }
    }

    @Override
    public boolean update(Graph exec, Graph graph) {
        current();
        try (Arena a = Arena.ofConfined()) {
            // CUgraphExecUpdateResultInfo: { CUgraphExecUpdateResult result; CUgraphNode errorNode, errorFromNode; }
            MemorySegment info = a.allocate(24, 8);
            int rc = cuda_h.cuGraphExecUpdate_v2(((Handle) exec).handle(), ((Handle) graph).handle(), info);
            return rc == 0 && info.get(ValueLayout.JAVA_INT, 0) == cuda_h.CU_GRAPH_EXEC_UPDATE_SUCCESS();
        }
    }

    @Override
    public void launchGraph(Graph exec) {
        current();
        check(cuda_h.cuGraphLaunch(((Handle) exec).handle(), stream), "cuGraphLaunch");
    }

    /** The stream handle (for cuBLAS and graph capture). */
    MemorySegment stream() {
        return stream;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        current();
        try {
            cuda_h.cuStreamSynchronize(stream);
            if (blas != null) {
                blas.close();
            }
            cuda_h.cuModuleUnload(module);
            cuda_h.cuStreamDestroy_v2(stream);
            cuda_h.cuDevicePrimaryCtxRelease_v2(device);
        } finally {
            closed = true;
            arena.close();
        }
    }
}
