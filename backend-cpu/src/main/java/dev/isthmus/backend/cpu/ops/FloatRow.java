package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.format.WeightFormats;
import dev.isthmus.backend.cpu.parallel.Scratch;

import java.lang.foreign.MemorySegment;

/**
 * A one-row parameter (norm weight or bias) as F32 in memory: the tensor itself when it is F32, else a
 * conversion into the calling thread's scratch, made once per call and only read by the workers.
 *
 * @param segment where the floats are
 * @param offset  byte offset of the first float
 */
record FloatRow(MemorySegment segment, long offset) {
    static final DType[] DTYPES = {DType.F32, DType.F16, DType.BF16};

    static FloatRow of(Tensor t, int scratchSlot) {
        if (t.dtype() == DType.F32) {
            return new FloatRow(t.segment(), t.rowOffset(0));
        }
        int cols = (int) t.cols();
        MemorySegment converted = Scratch.current().segment(scratchSlot, 4L * cols);
        WeightFormats.floatFormat(t.dtype()).dequantize(t.segment(), t.rowOffset(0), converted, 0, cols);
        return new FloatRow(converted, 0);
    }
}
