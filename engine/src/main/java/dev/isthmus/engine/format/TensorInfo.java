package dev.isthmus.engine.format;

import dev.isthmus.api.DType;
import java.util.Arrays;
import java.util.Objects;

/**
 * Where one tensor of a model file lives.
 *
 * @param name     the tensor name (GGUF naming, e.g. {@code blk.0.attn_q.weight})
 * @param dtype    element type
 * @param shape    dimensions outermost first (the reverse of GGUF's {@code ne}); e.g.
 *                 {@code token_embd.weight} is {@code [vocab, dim]}
 * @param offset   absolute byte offset of the first element in the file
 * @param byteSize bytes the tensor occupies
 */
public record TensorInfo(String name, DType dtype, long[] shape, long offset, long byteSize) {
    public TensorInfo {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = shape.clone();
    }

    /** A copy of the shape, outermost first. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of dimensions. */
    public int rank() {
        return shape.length;
    }

    /** Total number of elements. */
    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype
                && Arrays.equals(shape, t.shape) && offset == t.offset && byteSize == t.byteSize;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), offset, byteSize);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " @" + offset + " (" + byteSize + " bytes)";
    }
}
