package dev.isthmus.api;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * An n-dimensional array over a {@link MemorySegment}.
 *
 * <p>The shape lists dimensions outermost first; the innermost (last) dimension is always contiguous,
 * which is what lets block-quantized rows be addressed at all. Every other dimension has a byte
 * stride, so a tensor may be a view into a larger allocation (a slice of rows, one head of a cache).
 * A matrix of {@code m} rows and {@code k} columns has shape {@code [m, k]}; weights are stored the
 * way GGUF stores them, one output feature per row.
 *
 * <p>A tensor does not own its memory: an {@link Arena}, a memory-mapped file or a backend's
 * allocator does. The {@link #device() device} says whether Java may dereference the segment.
 */
public final class Tensor {
    private final MemorySegment data;
    private final DType dtype;
    private final long[] shape;
    private final long[] strides;
    private final Device device;

    private Tensor(MemorySegment data, DType dtype, long[] shape, long[] strides, Device device) {
        this.data = data;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.device = device;
    }

    /**
     * A contiguous tensor over {@code data}.
     *
     * @throws IllegalArgumentException if the shape is empty or negative, the innermost dimension is not
     *                                  a multiple of the block size, or {@code data} is too small
     */
    public static Tensor of(MemorySegment data, Device device, DType dtype, long... shape) {
        long[] s = shape.clone();
        long[] st = contiguousStrides(dtype, s);
        long need = byteSizeOf(dtype, s);
        if (data.byteSize() < need) {
            throw new IllegalArgumentException("segment of " + data.byteSize() + " bytes is too small for "
                    + dtype + Arrays.toString(s) + " (" + need + " bytes)");
        }
        return new Tensor(data.asSlice(0, need), dtype, s, st, device);
    }

    /** A contiguous host tensor over {@code data}. */
    public static Tensor host(MemorySegment data, DType dtype, long... shape) {
        return of(data, Device.HOST, dtype, shape);
    }

    /** A zero-filled contiguous host tensor allocated from {@code arena}, 64-byte aligned. */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        long bytes = byteSizeOf(dtype, shape);
        return host(arena.allocate(Math.max(bytes, 1), 64).asSlice(0, bytes), dtype, shape);
    }

    /** Bytes a contiguous tensor of this dtype and shape occupies. */
    public static long byteSizeOf(DType dtype, long... shape) {
        contiguousStrides(dtype, shape);
        long bytes = dtype.rowBytes(shape[shape.length - 1]);
        for (int i = 0; i < shape.length - 1; i++) {
            bytes = Math.multiplyExact(bytes, shape[i]);
        }
        return bytes;
    }

    private static long[] contiguousStrides(DType dtype, long[] shape) {
        if (shape.length == 0) {
            throw new IllegalArgumentException("a tensor needs at least one dimension");
        }
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            }
        }
        long[] strides = new long[shape.length];
        strides[shape.length - 1] = dtype.blockBytes();
        long inner = dtype.rowBytes(shape[shape.length - 1]);
        for (int i = shape.length - 2; i >= 0; i--) {
            strides[i] = inner;
            inner = Math.multiplyExact(inner, shape[i]);
        }
        return strides;
    }

    /** The memory; a device address wrapped as a segment when the device is not host-accessible. */
    public MemorySegment segment() {
        return data;
    }

    public DType dtype() {
        return dtype;
    }

    public Device device() {
        return device;
    }

    public int rank() {
        return shape.length;
    }

    /** A copy of the shape, outermost first. */
    public long[] shape() {
        return shape.clone();
    }

    /** Size of dimension {@code i}; negative {@code i} counts from the innermost. */
    public long dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    /** Byte stride of dimension {@code i} (for the innermost: bytes per block). */
    public long stride(int i) {
        return strides[i < 0 ? strides.length + i : i];
    }

    /** The innermost dimension. */
    public long cols() {
        return shape[shape.length - 1];
    }

    /** The product of all but the innermost dimension: the number of rows when viewed as a matrix. */
    public long rows() {
        long r = 1;
        for (int i = 0; i < shape.length - 1; i++) {
            r *= shape[i];
        }
        return r;
    }

    /** Total number of elements. */
    public long elementCount() {
        return rows() * cols();
    }

    /** Bytes of one row of the innermost dimension. */
    public long rowBytes() {
        return dtype.rowBytes(cols());
    }

    /** True if rows follow each other with no gaps, so the tensor is one dense block of bytes. */
    public boolean isContiguous() {
        long expected = rowBytes();
        for (int i = shape.length - 2; i >= 0; i--) {
            if (shape[i] > 1 && strides[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    /** Byte offset of row {@code r} when viewed as a matrix of {@link #rows()} × {@link #cols()}. */
    public long rowOffset(long r) {
        long off = 0;
        for (int i = shape.length - 2; i >= 0; i--) {
            long idx = r % shape[i];
            r /= shape[i];
            off += idx * strides[i];
        }
        return off;
    }

    /**
     * The slice {@code [from, from + count)} of the outermost dimension, sharing memory.
     *
     * @throws IndexOutOfBoundsException if the range is outside the dimension
     */
    public Tensor slice(long from, long count) {
        if (from < 0 || count < 0 || from + count > shape[0]) {
            throw new IndexOutOfBoundsException(
                    "slice [" + from + ", " + (from + count) + ") of dimension of size " + shape[0]);
        }
        long[] s = shape.clone();
        s[0] = count;
        long offset;
        long length;
        if (shape.length == 1) {
            if (from % dtype.blockSize() != 0 || count % dtype.blockSize() != 0) {
                throw new IllegalArgumentException("slice of a " + dtype + " vector must be block aligned");
            }
            offset = from / dtype.blockSize() * dtype.blockBytes();
            length = count / dtype.blockSize() * dtype.blockBytes();
        } else {
            offset = from * strides[0];
            length = count == 0 ? 0 : (count - 1) * strides[0] + extentOfInner();
        }
        return new Tensor(data.asSlice(offset, length), dtype, s, strides.clone(), device);
    }

    private long extentOfInner() {
        long extent = rowBytes();
        for (int i = shape.length - 2; i >= 1; i--) {
            extent += (shape[i] - 1) * strides[i];
        }
        return extent;
    }

    /**
     * The same contiguous bytes seen with another shape of the same element count.
     *
     * @throws IllegalStateException    if this tensor is not contiguous
     * @throws IllegalArgumentException if the element counts differ
     */
    public Tensor reshape(long... newShape) {
        if (!isContiguous()) {
            throw new IllegalStateException("reshape of a non-contiguous tensor " + this);
        }
        long n = 1;
        for (long d : newShape) {
            n *= d;
        }
        if (n != elementCount()) {
            throw new IllegalArgumentException("cannot reshape " + this + " to " + Arrays.toString(newShape));
        }
        return of(data, device, dtype, newShape);
    }

    /** Reads an F32 element of a host tensor by row and column. */
    public float getFloat(long row, long col) {
        requireHost(DType.F32);
        return data.get(ValueLayout.JAVA_FLOAT_UNALIGNED, rowOffset(row) + col * 4);
    }

    /** Writes an F32 element of a host tensor by row and column. */
    public void setFloat(long row, long col, float value) {
        requireHost(DType.F32);
        data.set(ValueLayout.JAVA_FLOAT_UNALIGNED, rowOffset(row) + col * 4, value);
    }

    /** Copies a host F32 tensor into a new array, row by row. */
    public float[] toFloatArray() {
        requireHost(DType.F32);
        long rows = rows();
        int cols = Math.toIntExact(cols());
        float[] out = new float[Math.toIntExact(rows * cols)];
        for (long r = 0; r < rows; r++) {
            MemorySegment.copy(data, ValueLayout.JAVA_FLOAT_UNALIGNED, rowOffset(r), out, (int) (r * cols), cols);
        }
        return out;
    }

    /** Copies {@code values} into a host F32 tensor, row by row. */
    public void copyFrom(float[] values) {
        requireHost(DType.F32);
        long rows = rows();
        int cols = Math.toIntExact(cols());
        if (values.length != rows * cols) {
            throw new IllegalArgumentException(values.length + " values for " + this);
        }
        for (long r = 0; r < rows; r++) {
            MemorySegment.copy(values, (int) (r * cols), data, ValueLayout.JAVA_FLOAT_UNALIGNED, rowOffset(r), cols);
        }
    }

    private void requireHost(DType expected) {
        if (!device.hostAccessible()) {
            throw new IllegalStateException(this + " is not host-accessible; copy it to the host first");
        }
        if (dtype != expected) {
            throw new IllegalStateException(this + " is not " + expected);
        }
    }

    @Override
    public String toString() {
        return dtype + Arrays.toString(shape) + "@" + device.name();
    }
}
