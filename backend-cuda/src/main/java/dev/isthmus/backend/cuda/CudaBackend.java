package dev.isthmus.backend.cuda;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Op;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.bindings.cublas.cublas_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The CUDA backend: tensors in device memory (a {@link Device} that is not host-accessible; a tensor's segment is
 * its device address), every op a kernel of {@code native/cuda} launched on this instance's stream, large
 * matmuls through cuBLAS.
 *
 * <ul>
 *   <li>Memory comes from a {@link DevicePool} (size classes, reuse; no driver allocation per op); per-op host
 *       arrays (ids, positions, block tables) go through an {@link UploadRing} without synchronizing.</li>
 *   <li>MATMUL: with fewer than {@code cuda.gemm.minRows} activation rows (decode) the fused dequantize-matvec
 *       kernel of the weight's dtype; otherwise cuBLAS {@code cublasGemmEx}: F32 weights in FP32, F16/BF16
 *       weights with the activations converted to the same type (tensor cores, FP32 accumulation), block formats
 *       dequantized to F16 in chunks first. Without cuBLAS every matmul uses the kernels.</li>
 *   <li>TOP_K is not implemented ({@link #supports} says so): {@code FallbackBackend} runs it on the CPU.</li>
 * </ul>
 *
 * <p>Kernel arguments are (address, byte-stride) pairs; tensors must have evenly spaced rows and elements aligned
 * to their type ({@link TensorArgs}). Public methods are synchronized: one caller at a time, from any thread.
 */
public final class CudaBackend implements Backend {
    /** Weight types of MATMUL, DEQUANTIZE and EMBEDDING_LOOKUP. */
    static final Set<DType> WEIGHT_TYPES = EnumSet.of(DType.F32, DType.F16, DType.BF16, DType.Q4_0, DType.Q4_1,
            DType.Q5_0, DType.Q5_1, DType.Q8_0, DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K, DType.Q8_K);
    /** Cache types of COPY_ROWS and ATTENTION. */
    static final Set<DType> CACHE_TYPES = EnumSet.of(DType.F32, DType.F16, DType.BF16);

    private final Gpu gpu;
    private final Device device;
    private final CudaOptions options;
    private final DevicePool pool;
    private final CudaStream stream;
    private final KernelArgs args = new KernelArgs();
    private final UploadRing uploads;
    private final Blas blas;
    private final Map<Tensor, Long> allocations = new IdentityHashMap<>();
    private boolean closed;

    CudaBackend(Gpu gpu, Device device, CudaOptions options) {
        this.gpu = gpu;
        this.device = device;
        this.options = options;
        this.pool = new DevicePool(new DevicePool.Memory() {
            @Override
            public long allocate(long bytes) {
                return gpu.allocate(bytes);
            }

            @Override
            public void free(long address) {
                gpu.free(address);
            }
        }, options.maxCachedBytes());
        this.stream = new CudaStream(gpu, pool, options.graphs());
        this.uploads = new UploadRing(stream, pool, options.uploadRingBytes());
        this.blas = gpu.blas();
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public Device device() {
        return device;
    }

    /** What runs the ops: the device (or emulator) and cuBLAS. */
    public String description() {
        return gpu.description() + "; " + (blas != null ? blas.description() : gpu.blasUnavailableReason());
    }

    /** Counters of CUDA graph use ({@code cuda.graphs=true}). */
    public String graphStats() {
        synchronized (this) {
            return stream.graphStats().toString();
        }
    }

    /** Counters of the device memory pool. */
    public DevicePool.Stats memoryStats() {
        synchronized (this) {
            return pool.stats();
        }
    }

    @Override
    public boolean supports(Op op, DType... dtypes) {
        Set<DType> types = switch (op) {
            case MATMUL, DEQUANTIZE, EMBEDDING_LOOKUP -> WEIGHT_TYPES;
            case COPY_ROWS, ATTENTION -> CACHE_TYPES;
            case RMS_NORM, LAYER_NORM, ADD, MUL, SCALE, SILU, GELU, SWIGLU, SOFTMAX, ROPE, ARGMAX -> EnumSet.of(DType.F32);
            case TOP_K -> EnumSet.noneOf(DType.class);
        };
        if (dtypes.length == 0) {
            return !types.isEmpty();
        }
        for (DType t : dtypes) {
            if (!types.contains(t)) {
                return false;
            }
        }
        return true;
    }

    private void open() {
        if (closed) {
            throw new IllegalStateException("CUDA backend is closed");
        }
    }

    private void launch(Kernel kernel, Launch launch, Object... values) {
        stream.launch(kernel, launch, args.pack(kernel, values));
    }

    private static int toInt(long v, String what) {
        if (v < 0 || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + " " + v + " exceeds the kernels' 32-bit index range");
        }
        return (int) v;
    }

    // ---- memory ----------------------------------------------------------------------------------------

    @Override
    public synchronized Tensor allocate(DType dtype, long... shape) {
        open();
        long bytes = Tensor.byteSizeOf(dtype, shape);
        long address = pool.allocate(Math.max(bytes, 1));
        if (bytes > 0) {
            stream.fill(address, (byte) 0, bytes);
        }
        Tensor t = Tensor.of(MemorySegment.ofAddress(address).reinterpret(bytes), device, dtype, shape);
        allocations.put(t, address);
        return t;
    }

    @Override
    public synchronized void release(Tensor tensor) {
        Long address = allocations.remove(tensor);
        if (address != null && !closed) {
            pool.release(address);
        }
    }

    private boolean onDevice(Tensor t) {
        if (t.device().equals(device)) {
            return true;
        }
        if (t.device().hostAccessible()) {
            return false;
        }
        throw new IllegalArgumentException(t + " is on " + t.device().name() + ", neither the host nor " + device.name());
    }

    @Override
    public synchronized void copy(Tensor src, Tensor dst) {
        open();
        if (src.dtype() != dst.dtype() || !Arrays.equals(src.shape(), dst.shape())) {
            throw new IllegalArgumentException("copy needs the same dtype and shape: " + src + " -> " + dst);
        }
        boolean fromDevice = onDevice(src);
        boolean toDevice = onDevice(dst);
        long bytes = Tensor.byteSizeOf(src.dtype(), src.shape());
        if (bytes == 0) {
            return;
        }
        if (src.isContiguous() && dst.isContiguous()) {
            copyBytes(src, 0, dst, 0, bytes, fromDevice, toDevice);
        } else {
            long rowBytes = src.rowBytes();
            for (long r = 0; r < src.rows(); r++) {
                copyBytes(src, src.rowOffset(r), dst, dst.rowOffset(r), rowBytes, fromDevice, toDevice);
            }
        }
        if (fromDevice && !toDevice) {
            uploads.reset(); // copyToHost synchronized the stream
        }
    }

    private void copyBytes(Tensor src, long srcOff, Tensor dst, long dstOff, long bytes, boolean fromDevice,
                           boolean toDevice) {
        long s = src.segment().address() + srcOff;
        long d = dst.segment().address() + dstOff;
        if (fromDevice && toDevice) {
            stream.copyOnDevice(d, s, bytes);
        } else if (toDevice) {
            stream.copyToDevice(d, src.segment().asSlice(srcOff, bytes), bytes);
        } else if (fromDevice) {
            stream.copyToHost(dst.segment().asSlice(dstOff, bytes), s, bytes);
        } else {
            MemorySegment.copy(src.segment(), srcOff, dst.segment(), dstOff, bytes);
        }
    }

    @Override
    public synchronized void synchronize() {
        open();
        stream.synchronize();
        uploads.reset();
    }

    // ---- matmul ----------------------------------------------------------------------------------------

    @Override
    public synchronized void matmul(Tensor x, Tensor w, Tensor out) {
        open();
        TensorArgs.requireDType(x, DType.F32, "matmul x");
        TensorArgs.requireDType(out, DType.F32, "matmul out");
        requireSupported(Op.MATMUL, w.dtype());
        TensorArgs.Rows xr = TensorArgs.rows(x, device, "matmul x");
        TensorArgs.Rows wr = TensorArgs.rows(w, device, "matmul w");
        TensorArgs.Rows or = TensorArgs.rows(out, device, "matmul out");
        if (wr.cols() != xr.cols() || or.rows() != xr.rows() || or.cols() != wr.rows()) {
            throw new IllegalArgumentException("matmul shapes: x " + x + ", w " + w + ", out " + out);
        }
        int n = toInt(xr.rows(), "rows");
        int m = toInt(wr.rows(), "output features");
        int k = toInt(xr.cols(), "reduction length");
        if (n == 0 || m == 0) {
            return;
        }
        if (blas != null && n >= options.gemmMinRows() && k > 0) {
            gemm(xr, wr, or, n, m, k);
        } else {
            launch(Kernel.matvec(w.dtype()), LaunchGeometry.matvec(n, m), xr.address(), xr.stride(), wr.address(),
                    wr.stride(), or.address(), or.stride(), n, m, k);
        }
    }

    /** A cuBLAS call, outside any graph capture (cuBLAS may allocate its workspace). */
    private void runGemm(GemmPlan plan, int computeType) {
        stream.beforeBlas();
        plan.run(blas, computeType);
    }

    private void gemm(TensorArgs.Rows x, TensorArgs.Rows w, TensorArgs.Rows out, int n, int m, int k) {
        int compute = options.tf32() ? cublas_h.CUBLAS_COMPUTE_32F_FAST_TF32 : cublas_h.CUBLAS_COMPUTE_32F;
        DType t = w.dtype();
        if (t == DType.F32) {
            runGemm(GemmPlan.of(n, m, k, w.address(), w.stride(), x.address(), x.stride(), cublas_h.CUDA_R_32F, 4,
                    out.address(), out.stride(), 0), compute);
            return;
        }
        // Activations in the weights' half type (F16 for block formats), contiguous [n, k].
        DType half = t == DType.BF16 ? DType.BF16 : DType.F16;
        int cudaType = half == DType.BF16 ? cublas_h.CUDA_R_16BF : cublas_h.CUDA_R_16F;
        long xh = pool.allocate(2L * n * k);
        try {
            launch(Kernel.copyRows(half), LaunchGeometry.elementwise(n, k), x.address(), x.stride(), 0L, n, k, xh,
                    2L * k);
            if (t == DType.F16 || t == DType.BF16) {
                runGemm(GemmPlan.of(n, m, k, w.address(), w.stride(), xh, 2L * k, cudaType, 2, out.address(),
                        out.stride(), 0), compute);
                return;
            }
            int chunk = (int) Math.max(1, Math.min(m, options.dequantChunkBytes() / (2L * k)));
            long wh = pool.allocate(2L * chunk * k);
            try {
                for (int c0 = 0; c0 < m; c0 += chunk) {
                    int mc = Math.min(chunk, m - c0);
                    launch(Kernel.rowsToF16(t), LaunchGeometry.rowsQuantized(mc, k / 32),
                            w.address() + (long) c0 * w.stride(), w.stride(), 0L, mc, k / 32, wh, 2L * k);
                    runGemm(GemmPlan.of(n, mc, k, wh, 2L * k, xh, 2L * k, cublas_h.CUDA_R_16F, 2, out.address(),
                            out.stride(), c0), compute);
                }
            } finally {
                pool.release(wh);
            }
        } finally {
            pool.release(xh);
        }
    }

    private void requireSupported(Op op, DType t) {
        if (!supports(op, t)) {
            throw new UnsupportedOperationException("the CUDA backend has no " + op + " for " + t);
        }
    }

    // ---- conversions -----------------------------------------------------------------------------------

    @Override
    public synchronized void dequantize(Tensor src, Tensor dst) {
        open();
        requireSupported(Op.DEQUANTIZE, src.dtype());
        TensorArgs.requireDType(dst, DType.F32, "dequantize dst");
        TensorArgs.requireSameShape(src, dst, "dequantize");
        TensorArgs.Rows s = TensorArgs.rows(src, device, "dequantize src");
        TensorArgs.Rows d = TensorArgs.rows(dst, device, "dequantize dst");
        gatherRows(s, 0L, toInt(s.rows(), "rows"), d);
    }

    /** dst row r = dequantize(src row ids[r], or r when ids == 0). */
    private void gatherRows(TensorArgs.Rows s, long ids, int rows, TensorArgs.Rows d) {
        if (rows == 0 || s.cols() == 0) {
            return;
        }
        int cols = toInt(s.cols(), "columns");
        if (s.dtype().isQuantized()) {
            launch(Kernel.rows(s.dtype()), LaunchGeometry.rowsQuantized(rows, cols / 32), s.address(), s.stride(), ids,
                    rows, cols / 32, d.address(), d.stride());
        } else {
            launch(Kernel.rows(s.dtype()), LaunchGeometry.elementwise(rows, cols), s.address(), s.stride(), ids, rows,
                    cols, d.address(), d.stride());
        }
    }

    @Override
    public synchronized void embeddingLookup(Tensor table, int[] ids, Tensor out) {
        open();
        requireSupported(Op.EMBEDDING_LOOKUP, table.dtype());
        TensorArgs.requireDType(out, DType.F32, "embedding out");
        TensorArgs.Rows t = TensorArgs.rows(table, device, "embedding table");
        TensorArgs.Rows o = TensorArgs.rows(out, device, "embedding out");
        if (o.rows() != ids.length || o.cols() != t.cols()) {
            throw new IllegalArgumentException("embedding: " + ids.length + " ids into " + out + " from " + table);
        }
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= t.rows()) {
                throw new IndexOutOfBoundsException("token id " + ids[i] + " at " + i + " outside the table's "
                        + t.rows() + " rows");
            }
        }
        if (ids.length == 0) {
            return;
        }
        try (UploadRing.Uploaded up = uploads.upload((Object) ids)) {
            gatherRows(t, up.address(0), ids.length, o);
        }
    }

    @Override
    public synchronized void copyRows(Tensor src, Tensor dst, int[] rows) {
        open();
        requireSupported(Op.COPY_ROWS, dst.dtype());
        TensorArgs.requireDType(src, DType.F32, "copyRows src");
        TensorArgs.Rows s = TensorArgs.outer(src, device, "copyRows src");
        TensorArgs.Rows d = TensorArgs.outer(dst, device, "copyRows dst");
        if (s.rows() != rows.length || s.cols() != d.cols()) {
            throw new IllegalArgumentException("copyRows: " + rows.length + " rows of " + src + " into " + dst);
        }
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] < 0 || rows[i] >= d.rows()) {
                throw new IndexOutOfBoundsException("row " + rows[i] + " at " + i + " outside " + dst);
            }
        }
        if (rows.length == 0 || s.cols() == 0) {
            return;
        }
        int cols = toInt(s.cols(), "columns");
        try (UploadRing.Uploaded up = uploads.upload((Object) rows)) {
            launch(Kernel.copyRows(dst.dtype()), LaunchGeometry.elementwise(rows.length, cols), s.address(), s.stride(),
                    up.address(0), rows.length, cols, d.address(), d.stride());
        }
    }

    // ---- row-wise ---------------------------------------------------------------------------------------

    private TensorArgs.Rows f32Rows(Tensor t, String name) {
        TensorArgs.requireDType(t, DType.F32, name);
        return TensorArgs.rows(t, device, name);
    }

    private long vector(Tensor t, long cols, String name) {
        if (t == null) {
            return 0L;
        }
        TensorArgs.Rows v = f32Rows(t, name);
        if (v.rows() != 1 || v.cols() != cols) {
            throw new IllegalArgumentException(name + " " + t + " must be one row of " + cols);
        }
        return v.address();
    }

    @Override
    public synchronized void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        open();
        requireSupported(Op.RMS_NORM, weight.dtype());
        TensorArgs.requireSameShape(x, out, "rmsNorm");
        TensorArgs.Rows xr = f32Rows(x, "rmsNorm x");
        TensorArgs.Rows or = f32Rows(out, "rmsNorm out");
        long w = vector(weight, xr.cols(), "rmsNorm weight");
        if (xr.rows() == 0 || xr.cols() == 0) {
            return;
        }
        launch(Kernel.RMS_NORM, LaunchGeometry.rowwise(xr.rows(), xr.cols()), xr.address(), xr.stride(), w,
                or.address(), or.stride(), toInt(xr.rows(), "rows"), toInt(xr.cols(), "columns"), eps);
    }

    @Override
    public synchronized void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        open();
        TensorArgs.requireSameShape(x, out, "layerNorm");
        TensorArgs.Rows xr = f32Rows(x, "layerNorm x");
        TensorArgs.Rows or = f32Rows(out, "layerNorm out");
        long w = vector(weight, xr.cols(), "layerNorm weight");
        long b = vector(bias, xr.cols(), "layerNorm bias");
        if (xr.rows() == 0 || xr.cols() == 0) {
            return;
        }
        launch(Kernel.LAYER_NORM, LaunchGeometry.rowwise(xr.rows(), xr.cols()), xr.address(), xr.stride(), w, b,
                or.address(), or.stride(), toInt(xr.rows(), "rows"), toInt(xr.cols(), "columns"), eps);
    }

    @Override
    public synchronized void softmax(Tensor x, Tensor out) {
        open();
        TensorArgs.requireSameShape(x, out, "softmax");
        TensorArgs.Rows xr = f32Rows(x, "softmax x");
        TensorArgs.Rows or = f32Rows(out, "softmax out");
        if (xr.rows() == 0 || xr.cols() == 0) {
            return;
        }
        launch(Kernel.SOFTMAX, LaunchGeometry.rowwise(xr.rows(), xr.cols()), xr.address(), xr.stride(), or.address(),
                or.stride(), toInt(xr.rows(), "rows"), toInt(xr.cols(), "columns"));
    }

    @Override
    public synchronized int[] argmax(Tensor x) {
        open();
        TensorArgs.Rows xr = f32Rows(x, "argmax x");
        int rows = toInt(xr.rows(), "rows");
        if (rows == 0) {
            return new int[0];
        }
        if (xr.cols() == 0) {
            throw new IllegalArgumentException("argmax of rows with no columns");
        }
        long result = pool.allocate(4L * rows);
        try (Arena a = Arena.ofConfined()) {
            launch(Kernel.ARGMAX, LaunchGeometry.rowwise(rows, xr.cols()), xr.address(), xr.stride(), rows,
                    toInt(xr.cols(), "columns"), result);
            MemorySegment host = a.allocate(4L * rows, 4);
            stream.copyToHost(host, result, 4L * rows);
            uploads.reset();
            return host.toArray(ValueLayout.JAVA_INT);
        } finally {
            pool.release(result);
        }
    }

    @Override
    public TopK topK(Tensor x, int k) {
        throw new UnsupportedOperationException("the CUDA backend has no TOP_K (supports(TOP_K) is false); "
                + "FallbackBackend runs it on the CPU");
    }

    // ---- element-wise -----------------------------------------------------------------------------------

    private void binary(Kernel kernel, Tensor a, Tensor b, Tensor out, boolean broadcast, String op) {
        open();
        TensorArgs.requireSameShape(a, out, op);
        TensorArgs.Rows ar = f32Rows(a, op + " a");
        TensorArgs.Rows br = f32Rows(b, op + " b");
        TensorArgs.Rows or = f32Rows(out, op + " out");
        if (br.cols() != ar.cols() || (br.rows() != ar.rows() && !(broadcast && br.rows() == 1))) {
            throw new IllegalArgumentException(op + ": " + b + " does not match " + a
                    + (broadcast ? " (nor is it a single row)" : ""));
        }
        if (ar.rows() == 0 || ar.cols() == 0) {
            return;
        }
        long bStride = br.rows() == 1 && ar.rows() > 1 ? 0L : br.stride();
        launch(kernel, LaunchGeometry.elementwise(ar.rows(), ar.cols()), ar.address(), ar.stride(), br.address(),
                bStride, or.address(), or.stride(), toInt(ar.rows(), "rows"), toInt(ar.cols(), "columns"));
    }

    private void unary(Kernel kernel, Tensor x, Tensor out, float s, String op) {
        open();
        TensorArgs.requireSameShape(x, out, op);
        TensorArgs.Rows xr = f32Rows(x, op + " x");
        TensorArgs.Rows or = f32Rows(out, op + " out");
        if (xr.rows() == 0 || xr.cols() == 0) {
            return;
        }
        launch(kernel, LaunchGeometry.elementwise(xr.rows(), xr.cols()), xr.address(), xr.stride(), or.address(),
                or.stride(), toInt(xr.rows(), "rows"), toInt(xr.cols(), "columns"), s);
    }

    @Override
    public synchronized void add(Tensor a, Tensor b, Tensor out) {
        binary(Kernel.ADD, a, b, out, true, "add");
    }

    @Override
    public synchronized void mul(Tensor a, Tensor b, Tensor out) {
        binary(Kernel.MUL, a, b, out, true, "mul");
    }

    @Override
    public synchronized void swiglu(Tensor gate, Tensor up, Tensor out) {
        binary(Kernel.SWIGLU, gate, up, out, false, "swiglu");
    }

    @Override
    public synchronized void scale(Tensor x, float s, Tensor out) {
        unary(Kernel.SCALE, x, out, s, "scale");
    }

    @Override
    public synchronized void silu(Tensor x, Tensor out) {
        unary(Kernel.SILU, x, out, 0f, "silu");
    }

    @Override
    public synchronized void gelu(Tensor x, Tensor out) {
        unary(Kernel.GELU, x, out, 0f, "gelu");
    }

    // ---- positional -------------------------------------------------------------------------------------

    @Override
    public synchronized void rope(Tensor x, int[] positions, Rope rope) {
        open();
        TensorArgs.requireDType(x, DType.F32, "rope x");
        TensorArgs.Heads h = TensorArgs.heads(x, device, "rope x");
        if (positions.length != h.n()) {
            throw new IllegalArgumentException("rope: " + positions.length + " positions for " + x);
        }
        if (rope.dims() > h.headDim()) {
            throw new IllegalArgumentException("rope dims " + rope.dims() + " > head size " + h.headDim());
        }
        if (h.n() == 0 || h.heads() == 0) {
            return;
        }
        try (UploadRing.Uploaded up = uploads.upload(positions, rope.freqFactors())) {
            launch(Kernel.ROPE, LaunchGeometry.rope(h.n(), h.heads(), rope.dims()), h.address(), h.rowStride(),
                    h.headStride(), toInt(h.n(), "rows"), toInt(h.heads(), "heads"), rope.dims(), up.address(0),
                    rope.theta(), rope.freqScale(), up.address(1), rope.layout() == RopeLayout.NEOX ? 1 : 0);
        }
    }

    @Override
    public synchronized void attention(Tensor q, Tensor kCache, Tensor vCache, KvLayout layout, Attention params,
                                       Tensor out) {
        open();
        requireSupported(Op.ATTENTION, kCache.dtype());
        TensorArgs.requireDType(q, DType.F32, "attention q");
        TensorArgs.requireDType(out, DType.F32, "attention out");
        TensorArgs.requireSameShape(q, out, "attention");
        if (vCache.dtype() != kCache.dtype() || !Arrays.equals(kCache.shape(), vCache.shape())) {
            throw new IllegalArgumentException("attention: caches differ, " + kCache + " and " + vCache);
        }
        TensorArgs.Heads qh = TensorArgs.heads(q, device, "attention q");
        TensorArgs.Heads oh = TensorArgs.heads(out, device, "attention out");
        TensorArgs.Heads kh = TensorArgs.heads(kCache, device, "attention kCache");
        TensorArgs.Heads vh = TensorArgs.heads(vCache, device, "attention vCache");
        int n = toInt(qh.n(), "query rows");
        int heads = toInt(qh.heads(), "heads");
        int headDim = toInt(qh.headDim(), "head size");
        int kvHeads = toInt(kh.heads(), "KV heads");
        if (kh.headDim() != headDim || kvHeads == 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention: q " + q + " does not fit caches " + kCache);
        }
        if (layout.queries() != n) {
            throw new IllegalArgumentException("attention: " + layout.queries() + " query rows in the layout, " + n
                    + " in " + q);
        }
        float[] slopes = params.alibiSlopes();
        if (slopes != null && slopes.length != heads) {
            throw new IllegalArgumentException("attention: " + slopes.length + " ALiBi slopes for " + heads + " heads");
        }
        if (n == 0 || heads == 0 || headDim == 0) {
            return;
        }
        AttentionMetadata meta = AttentionMetadata.of(layout, params, kh.n());
        LaunchGeometry.AttentionPlan plan = LaunchGeometry.attention(n, heads, kvHeads, headDim, meta.maxKeys(),
                gpu.multiprocessors(), options.maxSplits(), options.splitMinKeys());
        long partial = plan.splits() > 1 ? pool.allocate(4 * plan.partialFloats(n, heads, headDim)) : 0L;
        try (UploadRing.Uploaded up = uploads.upload(meta.querySeq(), meta.queryPos(), meta.contextLengths(),
                meta.tableOffsets(), meta.tables(), slopes)) {
            launch(Kernel.attention(kCache.dtype()), plan.launch(),
                    qh.address(), qh.rowStride(), qh.headStride(),
                    kh.address(), kh.rowStride(), kh.headStride(),
                    vh.address(), vh.rowStride(), vh.headStride(),
                    oh.address(), oh.rowStride(), oh.headStride(),
                    up.address(0), up.address(1), up.address(2), up.address(3), up.address(4),
                    n, heads, kvHeads, headDim, plan.headsPerBlock(), plan.tileKeys(), layout.blockSize(),
                    params.scale(), params.causal() ? 1 : 0, params.slidingWindow(), up.address(5),
                    params.logitSoftcap(), plan.splits(), partial);
            if (plan.splits() > 1) {
                launch(Kernel.ATTENTION_COMBINE, LaunchGeometry.attentionCombine(n, heads), partial, n, heads, headDim,
                        plan.splits(), oh.address(), oh.rowStride(), oh.headStride());
            }
        } finally {
            if (partial != 0) {
                pool.release(partial);
            }
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        try {
            stream.synchronize();
        } finally {
            closed = true;
            allocations.clear();
            try {
                stream.close();
                uploads.close();
                pool.close();
            } finally {
                args.close();
                gpu.close();
            }
        }
    }
}
