package dev.isthmus.backend.cuda;

import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.Tensor;

import java.util.Arrays;

/**
 * Turns tensors into the (device address, byte strides) arguments of the kernels, checking what the kernels
 * assume: the tensor is on this backend's device, its rows are evenly spaced (so one stride describes them),
 * and its address and strides are aligned for its element type (4 bytes for F32, 2 for F16, BF16 and the
 * block formats, whose f16 fields the kernels read as 16-bit words).
 */
final class TensorArgs {
    private TensorArgs() {
    }

    /**
     * A tensor seen as a matrix of {@code rows} rows of {@code cols} elements, row {@code r} at
     * {@code address + r * stride}.
     */
    record Rows(long address, long stride, long rows, long cols, DType dtype) {
    }

    /** An F32 {@code [n, heads, headDim]} tensor: head {@code h} of row {@code i} at {@code address + i * rowStride + h * headStride}. */
    record Heads(long address, long rowStride, long headStride, long n, long heads, long headDim) {
    }

    /** Alignment the kernels need for the data of {@code t}. */
    static int alignment(DType t) {
        return t == DType.F32 || t == DType.I32 ? 4 : t == DType.I8 ? 1 : 2;
    }

    static void requireDevice(Tensor t, Device device, String name) {
        if (!t.device().equals(device)) {
            throw new IllegalArgumentException(name + " " + t + " is not on " + device.name()
                    + (t.device().hostAccessible() ? "; copy it there with Backend.copy first" : ""));
        }
    }

    private static void requireAligned(String name, Tensor t, long address, long... strides) {
        int a = alignment(t.dtype());
        if (address % a != 0) {
            throw new IllegalArgumentException(name + " " + t + " starts at 0x" + Long.toHexString(address)
                    + ", not " + a + "-byte aligned as the CUDA kernels need for " + t.dtype());
        }
        for (long s : strides) {
            if (s % a != 0) {
                throw new IllegalArgumentException(name + " " + t + " has a stride of " + s
                        + " bytes, not a multiple of " + a + " as the CUDA kernels need for " + t.dtype());
            }
        }
    }

    /**
     * The tensor as evenly spaced rows.
     *
     * @throws IllegalArgumentException if it is on another device, its rows are not evenly spaced, or misaligned
     */
    static Rows rows(Tensor t, Device device, String name) {
        requireDevice(t, device, name);
        int rank = t.rank();
        long rows = t.rows();
        long stride;
        if (rank == 1) {
            stride = t.rowBytes();
        } else {
            stride = t.stride(rank - 2);
            long expected = stride;
            for (int i = rank - 3; i >= 0; i--) {
                expected *= t.dim(i + 1);
                if (t.dim(i) > 1 && t.stride(i) != expected) {
                    throw new IllegalArgumentException(name + " " + t + " with strides " + strides(t)
                            + " is not evenly spaced rows; the CUDA backend needs one row stride");
                }
            }
        }
        long address = t.segment().address();
        requireAligned(name, t, address, stride);
        return new Rows(address, stride, rows, t.cols(), t.dtype());
    }

    /**
     * The tensor as its outermost dimension, each entry a contiguous block of the remaining dimensions (e.g. the
     * slots of a {@code [slots, kvHeads, headDim]} cache): {@code rows = dim(0)}, {@code cols} = the remaining
     * elements.
     */
    static Rows outer(Tensor t, Device device, String name) {
        requireDevice(t, device, name);
        int rank = t.rank();
        if (rank == 1) {
            return rows(t, device, name);
        }
        long expected = t.rowBytes();
        for (int i = rank - 2; i >= 1; i--) {
            if (t.dim(i) > 1 && t.stride(i) != expected) {
                throw new IllegalArgumentException(name + " " + t + " with strides " + strides(t)
                        + " is not contiguous below its outermost dimension");
            }
            expected *= t.dim(i);
        }
        long inner = t.elementCount() / Math.max(1, t.dim(0));
        if (t.dim(0) == 0) {
            inner = 1;
            for (int i = 1; i < rank; i++) {
                inner *= t.dim(i);
            }
        }
        long address = t.segment().address();
        long stride = t.stride(0);
        requireAligned(name, t, address, stride);
        return new Rows(address, stride, t.dim(0), inner, t.dtype());
    }

    /** A rank-3 F32 tensor of query/output heads. */
    static Heads heads(Tensor t, Device device, String name) {
        requireDevice(t, device, name);
        if (t.rank() != 3) {
            throw new IllegalArgumentException(name + " " + t + " must be [n, heads, headDim]");
        }
        long address = t.segment().address();
        requireAligned(name, t, address, t.stride(0), t.stride(1));
        return new Heads(address, t.stride(0), t.stride(1), t.dim(0), t.dim(1), t.dim(2));
    }

    /** Requires the same shape. */
    static void requireSameShape(Tensor a, Tensor b, String what) {
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException(what + ": shapes differ, " + a + " and " + b);
        }
    }

    static void requireDType(Tensor t, DType dtype, String name) {
        if (t.dtype() != dtype) {
            throw new IllegalArgumentException(name + " " + t + " must be " + dtype);
        }
    }

    private static String strides(Tensor t) {
        long[] s = new long[t.rank()];
        for (int i = 0; i < s.length; i++) {
            s[i] = t.stride(i);
        }
        return Arrays.toString(s);
    }
}
