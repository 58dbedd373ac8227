package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.natives.NativeCpu;
import dev.isthmus.backend.cpu.parallel.RangeBody;
import dev.isthmus.backend.cpu.parallel.Scratch;
import dev.isthmus.backend.cpu.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ATTENTION through the C flash-attention kernel of {@link NativeCpu}: a task is one KV head and a block of
 * query rows; the query heads of the KV group and the rows of the block are processed together so each key
 * and value row is read and converted once per task and tile of 64 keys. Covers the common case (F32 or F16
 * caches, head sizes multiple of 16, no ALiBi, no soft-capping, rank-3 tensors); anything else returns false
 * and runs on the Java kernel.
 *
 * <p>Per-call bookkeeping (slot map, per-row key ranges) goes into the caller's {@link Scratch#SHARED2}
 * buffer; the job object is reused per calling thread.
 */
final class NativeAttention implements RangeBody {
    private static final ThreadLocal<NativeAttention> JOBS = ThreadLocal.withInitial(NativeAttention::new);
    private static final int MAX_QUERY_VECTORS = 64;

    private long q, qRow, qHead, out, oRow, oHead, k, kSlot, kHead, v, vSlot, vHead, rowInfo, slotMap, scratchBytes;
    private int kF16, vF16, heads, kvHeads, d, dv, n, rowsPerTask;
    private float scale;

    private NativeAttention() {
    }

    static boolean run(WorkerPool pool, Tensor qT, Tensor kT, Tensor vT, KvLayout layout, Attention params,
                       Tensor outT) {
        if (!NativeCpu.enabled() || params.alibiSlopes() != null || params.logitSoftcap() > 0) {
            return false;
        }
        if (qT.rank() != 3 || outT.rank() != 3 || kT.rank() != 3 || vT.rank() != 3) {
            return false;
        }
        if (!cacheType(kT.dtype()) || !cacheType(vT.dtype()) || !qT.segment().isNative()
                || !outT.segment().isNative() || !kT.segment().isNative() || !vT.segment().isNative()) {
            return false;
        }
        int heads = (int) qT.dim(1);
        int kvHeads = (int) kT.dim(1);
        int d = (int) qT.cols();
        int dv = (int) vT.cols();
        if (d % 16 != 0 || dv % 16 != 0 || d > 512 || dv > 512 || heads / kvHeads > MAX_QUERY_VECTORS) {
            return false;
        }
        int n = layout.queries();
        // Slot map of every sequence's positions, then (slot-map offset, first, last) per query row.
        int[] ctx = layout.contextLengths();
        long mapEntries = 0;
        for (int c : ctx) {
            mapEntries += c;
        }
        Scratch scratch = Scratch.current();
        MemorySegment info = scratch.segment(Scratch.SHARED2, 4L * (3L * n + mapEntries));
        long mapBase = 12L * n;
        int[] seqOffset = scratch.ints(ctx.length);
        int offset = 0;
        for (int s = 0; s < ctx.length; s++) {
            seqOffset[s] = offset;
            for (int pos = 0; pos < ctx[s]; pos++) {
                info.set(ValueLayout.JAVA_INT, mapBase + 4L * (offset + pos), layout.slot(s, pos));
            }
            offset += ctx[s];
        }
        for (int r = 0; r < n; r++) {
            int seq = layout.querySeq()[r];
            int pos = layout.queryPos()[r];
            int last = params.causal() ? pos : ctx[seq] - 1;
            int first = params.slidingWindow() > 0 ? Math.max(0, pos - params.slidingWindow() + 1) : 0;
            if (last >= ctx[seq]) {
                return false;
            }
            info.set(ValueLayout.JAVA_INT, 12L * r, seqOffset[seq]);
            info.set(ValueLayout.JAVA_INT, 12L * r + 4, first);
            info.set(ValueLayout.JAVA_INT, 12L * r + 8, last);
        }
        NativeAttention job = JOBS.get();
        job.q = qT.segment().address() + qT.rowOffset(0);
        job.qRow = qT.stride(0);
        job.qHead = qT.stride(1);
        job.out = outT.segment().address() + outT.rowOffset(0);
        job.oRow = outT.stride(0);
        job.oHead = outT.stride(1);
        job.k = kT.segment().address() + kT.rowOffset(0);
        job.kSlot = kT.stride(0);
        job.kHead = kT.stride(1);
        job.kF16 = kT.dtype() == DType.F16 ? 1 : 0;
        job.v = vT.segment().address() + vT.rowOffset(0);
        job.vSlot = vT.stride(0);
        job.vHead = vT.stride(1);
        job.vF16 = vT.dtype() == DType.F16 ? 1 : 0;
        job.heads = heads;
        job.kvHeads = kvHeads;
        job.d = d;
        job.dv = dv;
        job.scale = params.scale();
        job.rowInfo = info.address();
        job.slotMap = info.address() + mapBase;
        job.n = n;
        job.scratchBytes = NativeCpu.attentionScratchBytes(d, dv);
        // Enough tasks for the threads, each with as many rows of one KV group as the kernel takes at once.
        int group = heads / kvHeads;
        int rows = Math.max(1, MAX_QUERY_VECTORS / group);
        while (rows > 1 && (long) kvHeads * ((n + rows - 1) / rows) < 4L * pool.threads()) {
            rows /= 2;
        }
        job.rowsPerTask = rows;
        int tasks = kvHeads * ((n + rows - 1) / rows);
        pool.parallelFor(tasks, 1, job);
        return true;
    }

    private static boolean cacheType(DType t) {
        return t == DType.F16 || t == DType.F32;
    }

    @Override
    public void run(int from, int to) {
        long scratch = Scratch.current().segment(Scratch.PRIMARY, scratchBytes).address();
        NativeCpu.attention(q, qRow, qHead, out, oRow, oHead, k, kSlot, kHead, kF16, v, vSlot, vHead, vF16, heads,
                kvHeads, d, dv, scale, rowInfo, slotMap, n, rowsPerTask, from, to, scratch);
    }
}
