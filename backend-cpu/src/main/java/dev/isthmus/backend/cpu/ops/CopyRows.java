package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.format.FloatFormat;
import dev.isthmus.backend.cpu.format.WeightFormats;
import dev.isthmus.backend.cpu.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * COPY_ROWS: {@code dst[rows[i]] = convert(src[i])}. The index addresses the outermost dimension when
 * {@code rows} has one entry per outer element of {@code src} (one token of a {@code [n, kvHeads,
 * headDim]} tensor into a {@code [slots, kvHeads, headDim]} cache), otherwise single matrix rows.
 */
public final class CopyRows {
    private static final String OP = "copyRows";
    private static final long MIN_CHUNK_ELEMENTS = 1 << 15;

    private CopyRows() {
    }

    public static void run(WorkerPool pool, Tensor src, Tensor dst, int[] rows) {
        Check.operand(OP, "src", src, DType.F32);
        Check.operand(OP, "dst", dst, FloatRow.DTYPES);
        Check.notNull(OP, "rows", rows);
        if (src.cols() != dst.cols()) {
            throw Check.fail(OP, "src " + Check.describe(src) + " and dst " + Check.describe(dst)
                    + " differ in row length");
        }
        int rowsPerItem;
        long dstItems;
        if (src.rank() >= 2 && dst.rank() >= 2 && rows.length == src.dim(0)
                && src.rows() / Math.max(1, src.dim(0)) == dst.rows() / Math.max(1, dst.dim(0))) {
            rowsPerItem = (int) (src.dim(0) == 0 ? 1 : src.rows() / src.dim(0));
            dstItems = dst.dim(0);
        } else if (rows.length == src.rows()) {
            rowsPerItem = 1;
            dstItems = dst.rows();
        } else {
            throw Check.fail(OP, rows.length + " destination rows for src " + Check.describe(src)
                    + " and dst " + Check.describe(dst));
        }
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] < 0 || rows[i] >= dstItems) {
                throw Check.fail(OP, "rows[" + i + "] = " + rows[i] + " is outside dst " + Check.describe(dst));
            }
        }
        FloatFormat format = WeightFormats.floatFormat(dst.dtype());
        int cols = (int) src.cols();
        MemorySegment in = src.segment();
        MemorySegment out = dst.segment();
        // Repeated destinations must be written in order (last one wins), so they stay on one thread.
        int grain = hasDuplicates(rows) ? rows.length
                : (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1L, (long) rowsPerItem * cols));
        pool.parallelFor(rows.length, grain, (from, to) -> {
            for (int i = from; i < to; i++) {
                for (int r = 0; r < rowsPerItem; r++) {
                    format.encode(in, src.rowOffset((long) i * rowsPerItem + r),
                            out, dst.rowOffset((long) rows[i] * rowsPerItem + r), cols);
                }
            }
        });
    }

    private static boolean hasDuplicates(int[] rows) {
        BitSet seen = new BitSet();
        for (int r : rows) {
            if (seen.get(r)) {
                return true;
            }
            seen.set(r);
        }
        return false;
    }
}
