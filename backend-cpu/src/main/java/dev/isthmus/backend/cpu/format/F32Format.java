package dev.isthmus.backend.cpu.format;

import dev.isthmus.api.DType;
import dev.isthmus.backend.cpu.kernel.FloatKernels;

import java.lang.foreign.MemorySegment;

/** F32 rows: decoding is a copy. */
public final class F32Format implements FloatFormat {

    @Override
    public DType dtype() {
        return DType.F32;
    }

    @Override
    public void dequantize(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        MemorySegment.copy(src, srcOffset, dst, dstOffset, 4L * count);
    }

    @Override
    public float dot(MemorySegment w, long wOffset, MemorySegment x, long xOffset, int count) {
        return FloatKernels.dot(w, wOffset, x, xOffset, count);
    }

    @Override
    public void scaleAdd(MemorySegment v, long vOffset, float weight, MemorySegment acc, long accOffset, int count) {
        FloatKernels.scaleAdd(v, vOffset, weight, acc, accOffset, count);
    }

    @Override
    public void encode(MemorySegment src, long srcOffset, MemorySegment dst, long dstOffset, int count) {
        MemorySegment.copy(src, srcOffset, dst, dstOffset, 4L * count);
    }
}
