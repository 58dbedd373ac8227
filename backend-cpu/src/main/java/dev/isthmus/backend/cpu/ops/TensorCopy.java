package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/** Backend.copy on the host: same dtype and shape, row by row unless both sides are dense. */
public final class TensorCopy {
    private static final String OP = "copy";

    private TensorCopy() {
    }

    public static void run(Tensor src, Tensor dst) {
        Check.operand(OP, "src", src);
        Check.operand(OP, "dst", dst);
        if (src.dtype() != dst.dtype() || !Arrays.equals(src.shape(), dst.shape())) {
            throw Check.fail(OP, "src " + Check.describe(src) + " and dst " + Check.describe(dst)
                    + " differ in dtype or shape");
        }
        if (src.isContiguous() && dst.isContiguous()) {
            long bytes = src.rowBytes() * src.rows();
            MemorySegment.copy(src.segment(), 0, dst.segment(), 0, bytes);
            return;
        }
        long rowBytes = src.rowBytes();
        for (long r = 0, rows = src.rows(); r < rows; r++) {
            MemorySegment.copy(src.segment(), src.rowOffset(r), dst.segment(), dst.rowOffset(r), rowBytes);
        }
    }
}
