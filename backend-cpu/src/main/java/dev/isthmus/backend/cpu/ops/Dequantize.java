package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.format.WeightFormat;
import dev.isthmus.backend.cpu.format.WeightFormats;
import dev.isthmus.backend.cpu.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;

/** DEQUANTIZE: any supported dtype to F32 of the same shape, row by row. */
public final class Dequantize {
    private static final String OP = "dequantize";
    private static final long MIN_CHUNK_ELEMENTS = 1 << 16;

    private Dequantize() {
    }

    public static void run(WorkerPool pool, Tensor src, Tensor dst) {
        Check.operand(OP, "src", src);
        Check.operand(OP, "dst", dst, DType.F32);
        if (!WeightFormats.supports(src.dtype())) {
            throw Check.fail(OP, "src " + Check.describe(src) + " has a dtype the CPU backend cannot decode");
        }
        Check.sameShape(OP, "src", src, "dst", dst);
        WeightFormat format = WeightFormats.of(src.dtype());
        int rows = (int) src.rows();
        int cols = (int) src.cols();
        MemorySegment in = src.segment();
        MemorySegment out = dst.segment();
        pool.parallelFor(rows, (int) Math.max(1, MIN_CHUNK_ELEMENTS / Math.max(1, cols)), (from, to) -> {
            for (int r = from; r < to; r++) {
                format.dequantize(in, src.rowOffset(r), out, dst.rowOffset(r), cols);
            }
        });
    }
}
