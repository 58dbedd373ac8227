package dev.isthmus.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * The backend instance's stream, through which all its device work is queued, and its CUDA graphs.
 *
 * <p>With graphs enabled ({@code cuda.graphs=true}) the work queued between two host synchronizations — for
 * decoding, one token's whole forward pass — is captured into a graph instead of being launched kernel by kernel,
 * and the graph is launched when the host next needs a result ({@link #flush()}): at {@link #synchronize()}, at a
 * copy to the host, before a copy from pageable host memory and before a cuBLAS call, none of which may happen
 * during a capture. The executable graph of the previous step is updated in place with the new one's parameters
 * ({@code cuGraphExecUpdate}; decode steps have the same topology) and instantiated anew only when that fails.
 * While capturing, the pool defers returning memory to the driver ({@code cuMemFree} is not allowed then).
 *
 * <p>If anything goes wrong during a capture, the capture is abandoned, graphs are switched off for this
 * instance, and the error is reported (the work recorded since the capture began has not run).
 */
final class CudaStream implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.cuda");

    /** Counters of graph use. */
    record GraphStats(long captures, long launches, long updates, long instantiations) {
    }

    private final Gpu gpu;
    private final DevicePool pool;
    private boolean graphs;
    private boolean capturing;
    private long captured;
    private Gpu.Graph exec;
    private long captures;
    private long launches;
    private long updates;
    private long instantiations;

    CudaStream(Gpu gpu, DevicePool pool, boolean graphs) {
        this.gpu = gpu;
        this.pool = pool;
        this.graphs = graphs;
    }

    Gpu gpu() {
        return gpu;
    }

    boolean capturing() {
        return capturing;
    }

    GraphStats graphStats() {
        return new GraphStats(captures, launches, updates, instantiations);
    }

    private void capture() {
        if (graphs && !capturing) {
            gpu.beginCapture();
            capturing = true;
            captured = 0;
            captures++;
            pool.deferFrees(true);
        }
    }

    /** Runs {@code work} as part of the capture (starting one if graphs are on); abandons the capture on failure. */
    private void captured(Runnable work) {
        capture();
        try {
            work.run();
            captured++;
        } catch (RuntimeException e) {
            abandon(e);
            throw e;
        }
    }

    private void abandon(RuntimeException cause) {
        if (!capturing) {
            return;
        }
        capturing = false;
        graphs = false;
        pool.deferFrees(false);
        try {
            gpu.endCapture().close();
        } catch (RuntimeException e) {
            cause.addSuppressed(e);
        }
        LOG.log(System.Logger.Level.WARNING, "CUDA graph capture failed; graphs are off for this backend: {0}",
                cause.getMessage());
    }

    void launch(Kernel kernel, Launch launch, MemorySegment params) {
        captured(() -> gpu.launch(kernel, launch, params));
    }

    void fill(long dst, byte value, long bytes) {
        captured(() -> gpu.fill(dst, value, bytes));
    }

    void copyOnDevice(long dst, long src, long bytes) {
        captured(() -> gpu.copyOnDevice(dst, src, bytes));
    }

    /** From pinned memory, which must stay unchanged until the copy has run (the graph launched). */
    void copyToDeviceAsync(long dst, MemorySegment pinnedSrc, long bytes) {
        captured(() -> gpu.copyToDeviceAsync(dst, pinnedSrc, bytes));
    }

    /** From pageable memory: not capturable, so the capture so far runs first. */
    void copyToDevice(long dst, MemorySegment src, long bytes) {
        flush();
        gpu.copyToDevice(dst, src, bytes);
    }

    void copyToHost(MemorySegment dst, long src, long bytes) {
        flush();
        gpu.copyToHost(dst, src, bytes);
    }

    /** Before a cuBLAS call: cuBLAS is called outside captures (it may allocate its workspace). */
    void beforeBlas() {
        flush();
    }

    void synchronize() {
        flush();
        gpu.synchronize();
    }

    /** Ends the capture in progress, if any, and launches what it recorded. */
    void flush() {
        if (!capturing) {
            return;
        }
        capturing = false;
        Gpu.Graph graph;
        try {
            graph = gpu.endCapture();
        } catch (RuntimeException e) {
            graphs = false;
            pool.deferFrees(false);
            throw e;
        }
        try {
            if (captured == 0) {
                return;
            }
            if (exec != null && gpu.update(exec, graph)) {
                updates++;
            } else {
                if (exec != null) {
                    exec.close();
                    exec = null;
                }
                exec = gpu.instantiate(graph);
                instantiations++;
            }
            gpu.launchGraph(exec);
            launches++;
        } finally {
            graph.close();
            pool.deferFrees(false);
        }
    }

    @Override
    public void close() {
        try {
            flush();
        } finally {
            if (exec != null) {
                exec.close();
                exec = null;
            }
        }
    }
}
