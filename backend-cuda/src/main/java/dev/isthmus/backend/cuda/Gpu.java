package dev.isthmus.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * The device operations the CUDA backend uses, on one device, one context and one stream. {@link DriverGpu}
 * implements them with the CUDA driver API ({@code dev.isthmus.bindings.cuda}); {@link EmulatedGpu} with the
 * kernel emulator, so that everything above this interface runs without a GPU.
 *
 * <p>Device memory is addressed by {@code long} addresses ({@code CUdeviceptr}). Copies, fills and launches are
 * queued on the stream in order; {@link #synchronize()} waits for them.
 */
interface Gpu extends AutoCloseable {
    /** A description for {@code isthmus backends}: device name, compute capability, memory. */
    String description();

    /** Streaming multiprocessors (to size grids). */
    int multiprocessors();

    /**
     * Raw device memory ({@code cuMemAlloc}).
     *
     * @throws DevicePool.OutOfDeviceMemoryException if the device is out of memory
     */
    long allocate(long bytes);

    /** {@code cuMemFree}. */
    void free(long address);

    /** Page-locked host memory the device copies from asynchronously ({@code cuMemHostAlloc}). */
    MemorySegment allocatePinned(long bytes);

    void freePinned(MemorySegment pinned);

    /** Queues a host → device copy; {@code src} may be reused as soon as this returns. */
    void copyToDevice(long dst, MemorySegment src, long bytes);

    /** Queues a host → device copy from pinned memory, which must stay unchanged until the copy has run. */
    void copyToDeviceAsync(long dst, MemorySegment pinnedSrc, long bytes);

    /** Copies device → host; returns when the bytes are in {@code dst}. */
    void copyToHost(MemorySegment dst, long src, long bytes);

    /** Queues a device → device copy. */
    void copyOnDevice(long dst, long src, long bytes);

    /** Queues a byte fill ({@code cuMemsetD8Async}). */
    void fill(long dst, byte value, long bytes);

    /** Queues a kernel launch with packed {@code kernelParams} (see {@link KernelArgs}). */
    void launch(Kernel kernel, Launch launch, MemorySegment params);

    /** Waits until everything queued has run; reports asynchronous errors of earlier work. */
    void synchronize();

    // ---- CUDA graphs (stream capture) -------------------------------------------------------------------
    // While capturing, queued work (launches, fills, device copies, copies from pinned memory) is recorded
    // instead of run. Synchronizing, copying from pageable host memory and freeing device memory are not allowed
    // then; CudaStream ends the capture before any of them.

    /** A captured graph ({@code CUgraph}) or an executable one ({@code CUgraphExec}). */
    interface Graph extends AutoCloseable {
        @Override
        void close();
    }

    /** {@code cuStreamBeginCapture} in relaxed mode (so the pool may still call {@code cuMemAlloc}). */
    void beginCapture();

    /** {@code cuStreamEndCapture}: the recorded work. */
    Graph endCapture();

    /** {@code cuGraphInstantiate}: an executable graph. */
    Graph instantiate(Graph graph);

    /** {@code cuGraphExecUpdate}: whether {@code exec} could take {@code graph}'s parameters (same topology). */
    boolean update(Graph exec, Graph graph);

    /** {@code cuGraphLaunch} on the stream. */
    void launchGraph(Graph exec);

    /** cuBLAS on this stream, or {@code null}; {@link #blasUnavailableReason()} says why. */
    Blas blas();

    String blasUnavailableReason();

    /** Frees the stream, module and context (memory is the pool's business). */
    @Override
    void close();
}
