package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.format.WeightFormat;
import dev.isthmus.backend.cpu.format.WeightFormats;
import dev.isthmus.backend.cpu.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;

/** EMBEDDING_LOOKUP: {@code out[i] = table[ids[i]]} decoded to F32. */
public final class EmbeddingLookup {
    private static final String OP = "embeddingLookup";
    private static final long MIN_CHUNK_ELEMENTS = 1 << 16;

    private EmbeddingLookup() {
    }

    public static void run(WorkerPool pool, Tensor table, int[] ids, Tensor out) {
        Check.operand(OP, "table", table);
        Check.notNull(OP, "ids", ids);
        Check.operand(OP, "out", out, DType.F32);
        if (!WeightFormats.supports(table.dtype())) {
            throw Check.fail(OP, "table " + Check.describe(table) + " has a dtype the CPU backend cannot decode");
        }
        if (out.rows() != ids.length || out.cols() != table.cols()) {
            throw Check.fail(OP, "out " + Check.describe(out) + " must be [" + ids.length + ", " + table.cols()
                    + "] for " + ids.length + " ids into table " + Check.describe(table));
        }
        long vocabulary = table.rows();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocabulary) {
                throw Check.fail(OP, "ids[" + i + "] = " + ids[i] + " is outside table " + Check.describe(table));
            }
        }
        WeightFormat format = WeightFormats.of(table.dtype());
        int cols = (int) table.cols();
        MemorySegment in = table.segment();
        MemorySegment dst = out.segment();
        pool.parallelFor(ids.length, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int i = from; i < to; i++) {
                format.dequantize(in, table.rowOffset(ids[i]), dst, out.rowOffset(i), cols);
            }
        });
    }
}
