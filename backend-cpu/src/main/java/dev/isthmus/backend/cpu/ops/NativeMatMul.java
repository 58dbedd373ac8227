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
 * <p>The job object is reused per calling thread (the caller waits for its job), so a call allocates nothing.
 */
final class NativeMatMul implements RangeBody {
    static final int TILE = 16;
    /** From this many activation rows on, the C side multiplies tiles instead of fused dot products. */
    static final int SMALL_N = 4;
    /** Multiply-adds below which a chunk is not worth handing to another thread. */
    private static final long MIN_CHUNK_WORK = 1 << 16;
    private static final ThreadLocal<NativeMatMul> JOBS = ThreadLocal.withInitial(NativeMatMul::new);

    private boolean quantizing;
    private int code, kind, n, m, k;
    private long w, ws, x, xs, xq, xqs, out, os, scratchBytes;

    private NativeMatMul() {
    }

    /** Runs the product natively and returns true, or returns false (nothing done) for the Java kernels. */
    static boolean run(WorkerPool pool, Tensor xT, Tensor wT, Tensor outT, int n, int m, int k) {
        if (!NativeCpu.enabled()) {
            return false;
        }
        int code = NativeCpu.dtypeCode(wT.dtype());
        if (code == 0 || !xT.segment().isNative() || !wT.segment().isNative() || !outT.segment().isNative()) {
            return false;
        }
        long ws = uniformStride(wT, m);
        long xs = uniformStride(xT, n);
        long os = uniformStride(outT, n);
        if (ws < 0 || xs < 0 || os < 0) {
            return false;
        }
        NativeMatMul job = JOBS.get();
        job.code = code;
        int kind = NativeCpu.quantKind(code);
        // fewer than SMALL_N rows run fused dot products, which read the decode extension of kind 0
        job.kind = kind < 0 ? kind : kind | (n < SMALL_N ? 16 : 0);
        job.n = n;
        job.m = m;
        job.k = k;
        job.w = wT.segment().address() + wT.rowOffset(0);
        job.ws = ws;
        job.x = xT.segment().address() + xT.rowOffset(0);
        job.xs = xs;
        job.out = outT.segment().address() + outT.rowOffset(0);
        job.os = os;
        job.scratchBytes = NativeCpu.scratchBytes(code, k);
        if (job.kind >= 0) {
            job.xqs = NativeCpu.quantRowBytes(job.kind, k);
            job.xq = Scratch.current().segment(Scratch.SHARED, job.xqs * n).address();
            job.quantizing = true;
            pool.parallelFor(n, Math.max(1, (1 << 15) / k), job);
        } else {
            job.xq = 0;
            job.xqs = 0;
        }
        job.quantizing = false;
        int tiles = (m + TILE - 1) / TILE;
        pool.parallelFor(tiles, (int) Math.max(1, MIN_CHUNK_WORK / ((long) TILE * k * n)), job);
        return true;
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
        NativeCpu.matmul(code, w, ws, from * TILE, Math.min(m, to * TILE), xq, xqs, x, xs, n, k, out, os, scratch);
    }
}
