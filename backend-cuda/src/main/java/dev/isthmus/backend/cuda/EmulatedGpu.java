package dev.isthmus.backend.cuda;

import dev.isthmus.bindings.cublas.cublas_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@link Gpu} on the kernel emulator: "device" memory is host memory from the emulator's allocator, launches run
 * the host-compiled kernels with CUDA's execution model before returning, and the reference {@code cublasGemmEx}
 * stands in for cuBLAS. Everything the backend does above {@link Gpu} — pool, uploads, launch geometry, kernel
 * arguments, GEMM mapping — runs exactly as on a GPU. For tests (and {@code -Disthmus.cuda.emulator=true});
 * it is slow.
 *
 * <p>Stream capture is emulated: while capturing, work is recorded (kernel arguments copied at the call, as the
 * driver does; pinned sources read when the graph runs) and runs at {@link #launchGraph}. What CUDA forbids
 * during a capture — synchronizing, copying from or to pageable host memory, freeing device memory, calling
 * cuBLAS (which may allocate its workspace) — throws {@code CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED}, so that
 * tests catch a backend that would break a capture on a GPU.
 */
final class EmulatedGpu implements Gpu {
    private final EmulatorApi api;
    private final Arena arena = Arena.ofShared();
    private final Map<Kernel, MemorySegment> names = new EnumMap<>(Kernel.class);
    private final Map<MemorySegment, Arena> pinned = new IdentityHashMap<>();
    private final Blas blas;
    private boolean closed;

    private final boolean reverse;
    /** The work recorded by the capture in progress, or null. */
    private List<Recorded> capture;

    /** One recorded operation: its kind (for graph update's topology check) and what it does. */
    private record Recorded(String kind, Runnable action) {
    }

    private record EmuGraph(List<Recorded> work, boolean executable) implements Graph {
        @Override
        public void close() {
        }
    }

    EmulatedGpu(EmulatorApi api, boolean withBlas) {
        this(api, withBlas, false);
    }

    /** @param reverse run the threads of each block of this instance's launches in reverse order */
    EmulatedGpu(EmulatorApi api, boolean withBlas, boolean reverse) {
        this.api = api;
        this.reverse = reverse;
        this.blas = withBlas ? new EmulatedBlas() : null;
        Map<String, String> available = api.kernels();
        for (Kernel k : Kernel.values()) {
            String sig = available.get(k.symbol());
            if (sig == null) {
                throw new IllegalStateException("kernel emulator lacks " + k.symbol());
            }
            if (!sig.equals(k.signatureCode())) {
                throw new IllegalStateException(k.symbol() + " has parameters " + sig + " in the emulator but "
                        + k.signatureCode() + " in Kernel");
            }
            names.put(k, arena.allocateFrom(k.symbol()));
        }
    }

    private void check(int rc, String call) {
        if (rc != 0) {
            if (rc == 2) {
                throw new DevicePool.OutOfDeviceMemoryException(call + ": CUDA_ERROR_OUT_OF_MEMORY (2)");
            }
            throw new CudaException(call + " failed: " + CudaErrors.name(rc) + " (" + rc + "): " + api.lastError(), rc);
        }
    }

    private static MemorySegment at(long address, long bytes) {
        return MemorySegment.ofAddress(address).reinterpret(bytes);
    }

    @Override
    public String description() {
        return "CUDA kernel emulator on the CPU (" + api.library().getFileName() + "), for testing only";
    }

    @Override
    public int multiprocessors() {
        return 4;
    }

    private void notCapturing(String call) {
        if (capture != null) {
            throw new CudaException(call + " failed: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED (900): operation not "
                    + "permitted when stream is capturing", 900);
        }
    }

    private boolean record(String kind, Runnable action) {
        if (capture == null) {
            return false;
        }
        capture.add(new Recorded(kind, action));
        return true;
    }

    @Override
    public long allocate(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.JAVA_LONG);
            check(api.memAlloc(p, bytes), "cuMemAlloc(" + bytes + ")");
            return p.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    @Override
    public void free(long address) {
        notCapturing("cuMemFree");
        check(api.memFree(address), "cuMemFree");
    }

    @Override
    public synchronized MemorySegment allocatePinned(long bytes) {
        Arena a = Arena.ofShared();
        MemorySegment s = a.allocate(bytes, 256);
        pinned.put(s, a);
        return s;
    }

    @Override
    public synchronized void freePinned(MemorySegment s) {
        Arena a = pinned.remove(s);
        if (a == null) {
            throw new IllegalArgumentException("not a pinned allocation");
        }
        a.close();
    }

    @Override
    public void copyToDevice(long dst, MemorySegment src, long bytes) {
        notCapturing("cuMemcpyHtoDAsync from pageable memory");
        MemorySegment.copy(src, 0, at(dst, bytes), 0, bytes);
    }

    @Override
    public void copyToDeviceAsync(long dst, MemorySegment pinnedSrc, long bytes) {
        Runnable copy = () -> MemorySegment.copy(pinnedSrc, 0, at(dst, bytes), 0, bytes);
        if (!record("memcpy", copy)) {
            copy.run();
        }
    }

    @Override
    public void copyToHost(MemorySegment dst, long src, long bytes) {
        notCapturing("cuMemcpyDtoHAsync + cuStreamSynchronize");
        MemorySegment.copy(at(src, bytes), 0, dst, 0, bytes);
    }

    @Override
    public void copyOnDevice(long dst, long src, long bytes) {
        Runnable copy = () -> MemorySegment.copy(at(src, bytes), 0, at(dst, bytes), 0, bytes);
        if (!record("memcpy", copy)) {
            copy.run();
        }
    }

    @Override
    public void fill(long dst, byte value, long bytes) {
        Runnable fill = () -> at(dst, bytes).fill(value);
        if (!record("memset", fill)) {
            fill.run();
        }
    }

    @Override
    public void launch(Kernel kernel, Launch l, MemorySegment params) {
        if (capture != null) {
            // The driver copies the argument values when the launch is recorded; so does the emulator.
            Arena values = Arena.ofAuto();
            int n = kernel.params().size();
            MemorySegment copy = values.allocate(8L * n, 8);
            MemorySegment pointers = values.allocate(8L * n, 8);
            for (int i = 0; i < n; i++) {
                MemorySegment v = params.getAtIndex(ValueLayout.ADDRESS, i).reinterpret(kernel.params().get(i).bytes());
                MemorySegment.copy(v, 0, copy, 8L * i, v.byteSize());
                pointers.setAtIndex(ValueLayout.ADDRESS, i, copy.asSlice(8L * i));
            }
            record("kernel " + kernel.symbol(), () -> runLaunch(kernel, l, pointers));
            return;
        }
        runLaunch(kernel, l, params);
    }

    private void runLaunch(Kernel kernel, Launch l, MemorySegment params) {
        int rc;
        synchronized (EmulatorApi.class) { // the schedule order is global to the emulator
            if (reverse) {
                api.setReverseOrder(true);
            }
            try {
                rc = api.launch(names.get(kernel), l, params);
            } finally {
                if (reverse) {
                    api.setReverseOrder(false);
                }
            }
        }
        check(rc, "cuLaunchKernel(" + kernel.symbol() + ", " + l + ")");
    }

    @Override
    public void synchronize() {
        notCapturing("cuStreamSynchronize");
    }

    @Override
    public void beginCapture() {
        if (capture != null) {
            throw new CudaException("cuStreamBeginCapture failed: CUDA_ERROR_ILLEGAL_STATE (401): already capturing",
                    401);
        }
        capture = new ArrayList<>();
    }

    @Override
    public Graph endCapture() {
        if (capture == null) {
            throw new CudaException("cuStreamEndCapture failed: CUDA_ERROR_ILLEGAL_STATE (401): not capturing", 401);
        }
        EmuGraph g = new EmuGraph(List.copyOf(capture), false);
        capture = null;
        return g;
    }

    @Override
    public Graph instantiate(Graph graph) {
        return new EmuGraph(new ArrayList<>(((EmuGraph) graph).work()), true);
    }

    @Override
    public boolean update(Graph exec, Graph graph) {
        List<Recorded> target = ((EmuGraph) exec).work();
        List<Recorded> source = ((EmuGraph) graph).work();
        if (target.size() != source.size()) {
            return false;
        }
        for (int i = 0; i < target.size(); i++) {
            if (!target.get(i).kind().equals(source.get(i).kind())) {
                return false;
            }
        }
        for (int i = 0; i < target.size(); i++) {
            target.set(i, source.get(i));
        }
        return true;
    }

    @Override
    public void launchGraph(Graph exec) {
        notCapturing("cuGraphLaunch");
        for (Recorded r : ((EmuGraph) exec).work()) {
            r.action().run();
        }
    }

    @Override
    public Blas blas() {
        return blas;
    }

    @Override
    public String blasUnavailableReason() {
        return blas != null ? null : "cuBLAS disabled (cuda.cublas=false)";
    }

    /** {allocations, frees, live bytes} of the emulated device memory. */
    long[] memoryStats() {
        return api.memStats();
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            pinned.values().forEach(Arena::close);
            pinned.clear();
            arena.close();
        }
    }

    /** The emulator's reference {@code cublasGemmEx} (column-major, as the cuBLAS documentation defines it). */
    private final class EmulatedBlas implements Blas {
        @Override
        public void gemmEx(int transa, int transb, int m, int n, int k, float alpha, long a, int aType, int lda,
                           long b, int bType, int ldb, float beta, long c, int cType, int ldc, int computeType) {
            try (Arena s = Arena.ofConfined()) {
                MemorySegment al = s.allocateFrom(ValueLayout.JAVA_FLOAT, alpha);
                MemorySegment be = s.allocateFrom(ValueLayout.JAVA_FLOAT, beta);
                notCapturing("cublasGemmEx");
                int rc = api.gemmEx(transa, transb, m, n, k, al, MemorySegment.ofAddress(a), aType, lda,
                        MemorySegment.ofAddress(b), bType, ldb, be, MemorySegment.ofAddress(c), cType, ldc, computeType,
                        cublas_h.CUBLAS_GEMM_DEFAULT);
                CublasBlas.check(rc, "cublasGemmEx(m=" + m + ", n=" + n + ", k=" + k + ")");
            }
        }

        @Override
        public String description() {
            return "emulated cublasGemmEx";
        }

        @Override
        public void close() {
        }
    }
}
