package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.natives.NativeCpu;
import dev.isthmus.backend.cpu.parallel.RangeBody;
import dev.isthmus.backend.cpu.parallel.Scratch;
import dev.isthmus.backend.cpu.parallel.WorkerPool;

/**
 * MATMUL through the C kernels of {@link NativeCpu} when they are enabled and know the weight dtype: the
 * activations are quantized to 8 bits once per call (in parallel over rows, into the caller's
 * {@link Scratch#SHARED} buffer that every worker then reads), and the weight rows are split into tiles of 16
 * over the worker pool, one downcall per chunk of tiles.
 *
 * <p>Several weights multiplied by the same activations (the Q, K and V projections) are one call: one
 * quantization, and one parallel pass over the tiles of all of them, so the small K and V matrices do not each
 * pay a dispatch and a ragged end. The SwiGLU gate and up products are one call too, with the activation applied
 * by the thread that computed each output.
 *
 * <p>The job object is reused per calling thread (the caller waits for its job), so a call allocates nothing.
 */
final class NativeMatMul implements RangeBody {
    static final int TILE = 16;
    /**
     * From this many activation rows on, the C side multiplies tiles instead of fused dot products (Q8_0, Q4_0,
     * F16; the K-quants, whose activations need no decode extension, from 4); mirrored in kernels_avx512.c.
     */
    static final int SMALL_N = 16;
    static final int MAX_PARTS = 3;
    /** Multiply-adds below which a chunk is not worth handing to another thread. */
    private static final long MIN_CHUNK_WORK = 1 << 16;
    private static final ThreadLocal<NativeMatMul> JOBS = ThreadLocal.withInitial(NativeMatMul::new);

    private boolean quantizing;
    private boolean swiglu;
    private int kind, n, k, parts;
    private long x, xs, xq, xqs, scratchBytes;
    private long up, upOut, us;
    private final int[] code = new int[MAX_PARTS];
    private final int[] m = new int[MAX_PARTS];
    /** Tile index where part i starts; tileStart[parts] is the total. */
    private final int[] tileStart = new int[MAX_PARTS + 1];
    private final long[] w = new long[MAX_PARTS];
    private final long[] ws = new long[MAX_PARTS];
    private final long[] out = new long[MAX_PARTS];
    private final long[] os = new long[MAX_PARTS];

    private NativeMatMul() {
    }

    /** Runs {@code out = x · wᵀ} natively and returns true, or returns false (nothing done) for the Java kernels. */
    static boolean run(WorkerPool pool, Tensor xT, Tensor wT, Tensor outT) {
        NativeMatMul job = JOBS.get();
        if (!job.prepare(xT, 1) || !job.addPart(0, wT, outT)) {
            return false;
        }
        job.execute(pool);
        return true;
    }

    /**
     * Runs {@code outs[i] = x · weights[i]ᵀ} for all i natively and returns true, or returns false (nothing done)
     * unless the C kernels take every weight with one kind of quantized activations.
     */
    static boolean runAll(WorkerPool pool, Tensor xT, Tensor[] weights, Tensor[] outs) {
        NativeMatMul job = JOBS.get();
        if (weights.length > MAX_PARTS || !job.prepare(xT, weights.length)) {
            return false;
        }
        for (int i = 0; i < weights.length; i++) {
            if (!job.addPart(i, weights[i], outs[i])) {
                return false;
            }
        }
        job.execute(pool);
        return true;
    }

    /**
     * Runs {@code out = silu(x · gateᵀ) * (x · upᵀ)} natively ({@code upOut} receives intermediate products) and
     * returns true, or returns false (nothing done) for the Java kernels.
     */
    static boolean runSwiglu(WorkerPool pool, Tensor xT, Tensor gate, Tensor upT, Tensor outT, Tensor upOutT) {
        NativeMatMul job = JOBS.get();
        if (gate.dtype() != upT.dtype() || !job.prepare(xT, 1) || !job.addPart(0, gate, outT)) {
            return false;
        }
        long upStride = uniformStride(upT, job.m[0]);
        long upOutStride = uniformStride(upOutT, job.n);
        if (upStride != job.ws[0] || upOutStride < 0 || !upT.segment().isNative() || !upOutT.segment().isNative()) {
            return false;
        }
        job.swiglu = true;
        job.up = upT.segment().address() + upT.rowOffset(0);
        job.upOut = upOutT.segment().address() + upOutT.rowOffset(0);
        job.us = upOutStride;
        job.execute(pool);
        return true;
    }

    private boolean prepare(Tensor xT, int partCount) {
        if (!NativeCpu.enabled() || !xT.segment().isNative()) {
            return false;
        }
        n = (int) xT.rows();
        k = (int) xT.cols();
        xs = uniformStride(xT, n);
        if (xs < 0) {
            return false;
        }
        x = xT.segment().address() + xT.rowOffset(0);
        parts = partCount;
        swiglu = false;
        tileStart[0] = 0;
        return true;
    }

    private boolean addPart(int i, Tensor wT, Tensor outT) {
        int c = NativeCpu.dtypeCode(wT.dtype());
        if (c == 0 || !wT.segment().isNative() || !outT.segment().isNative()) {
            return false;
        }
        int rows = (int) wT.rows();
        long wStride = uniformStride(wT, rows);
        long outStride = uniformStride(outT, n);
        if (wStride < 0 || outStride < 0) {
            return false;
        }
        // fewer than SMALL_N rows run fused dot products, which read the decode extension of kind 0
        int partKind = NativeCpu.quantKind(c);
        partKind = partKind != 0 ? partKind : n < SMALL_N ? 16 : 0;
        if (i == 0) {
            kind = partKind;
            scratchBytes = 0;
        } else if (partKind != kind) {
            return false;
        }
        code[i] = c;
        m[i] = rows;
        w[i] = wT.segment().address() + wT.rowOffset(0);
        ws[i] = wStride;
        out[i] = outT.segment().address() + outT.rowOffset(0);
        os[i] = outStride;
        tileStart[i + 1] = tileStart[i] + (rows + TILE - 1) / TILE;
        scratchBytes = Math.max(scratchBytes, NativeCpu.scratchBytes(c, k));
        return true;
    }

    private void execute(WorkerPool pool) {
        if (kind >= 0) {
            xqs = NativeCpu.quantRowBytes(kind, k);
            xq = Scratch.current().segment(Scratch.SHARED, xqs * n).address();
            quantizing = true;
            pool.parallelFor(n, Math.max(1, (1 << 15) / k), this);
        } else {
            xq = 0;
            xqs = 0;
        }
        quantizing = false;
        long tileWork = (long) TILE * k * n * (swiglu ? 2 : 1);
        pool.parallelFor(tileStart[parts], (int) Math.max(1, MIN_CHUNK_WORK / tileWork), this);
    }

    /** Byte stride between consecutive rows, or -1 if the rows are not evenly spaced. */
    private static long uniformStride(Tensor t, int rows) {
        if (rows <= 1 || t.isContiguous()) {
            return t.rowBytes();
        }
        if (t.rank() == 2) {
            return t.stride(0);
        }
        long first = t.rowOffset(0);
        long stride = t.rowOffset(1) - first;
        for (int r = 2; r < rows; r++) {
            if (t.rowOffset(r) != first + r * stride) {
                return -1;
            }
        }
        return stride;
    }

    @Override
    public void run(int from, int to) {
        if (quantizing) {
            NativeCpu.quantize(kind, x, xs, from, to, k, xq, xqs);
            return;
        }
        long scratch = Scratch.current().segment(Scratch.PRIMARY, scratchBytes).address();
        // a chunk of tiles may span parts: one downcall per part it touches
        for (int i = 0; i < parts && from < to; i++) {
            int lo = Math.max(from, tileStart[i]);
            int hi = Math.min(to, tileStart[i + 1]);
            if (lo >= hi) {
                continue;
            }
            int r0 = (lo - tileStart[i]) * TILE;
            int r1 = Math.min(m[i], (hi - tileStart[i]) * TILE);
            if (swiglu) {
                NativeCpu.matmulSwiglu(code[i], w[i], up, ws[i], r0, r1, xq, xqs, x, xs, n, k, out[i], os[i], upOut,
                        us, scratch);
            } else {
                NativeCpu.matmul(code[i], w[i], ws[i], r0, r1, xq, xqs, x, xs, n, k, out[i], os[i], scratch);
            }
        }
    }
}
