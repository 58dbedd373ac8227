package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.conformance.reference.Dequant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Tensors of one case, created on the backend under test, each inside a larger I8 allocation whose
 * remaining bytes are a random guard pattern.
 *
 * <p>After the op, {@link #verify()} copies every allocation back and checks that inputs are byte-for-byte
 * unchanged and that outputs changed nothing outside their own bytes (neither the guard regions nor, for a
 * view, the rest of the parent tensor). Data moves with {@link Backend#copy} when the backend's device is not
 * host-accessible, and through the segment directly when it is.
 */
final class Workspace implements AutoCloseable {
    /** Guard bytes before and after every allocation: a multiple of 64 so that tensors stay aligned. */
    static final int GUARD = 256;

    /** How an op may use a tensor. */
    enum Access {
        /** Read only: every byte must be unchanged afterwards. */
        INPUT,
        /** Written by the op; starts as all-ones bytes (NaN in F32/F16/BF16) so unwritten elements show. */
        OUTPUT,
        /** Read and written (rope, aliased outputs, a cache receiving rows): starts with the given content. */
        IN_PLACE
    }

    private static final class Buffer {
        final String name;
        final Access access;
        final Tensor storage;
        final byte[] expected;
        final Tensor view;
        final int windowStart;
        final int windowEnd;
        byte[] actual;

        Buffer(String name, Access access, Tensor storage, byte[] expected, Tensor view, int windowStart,
               int windowEnd) {
            this.name = name;
            this.access = access;
            this.storage = storage;
            this.expected = expected;
            this.view = view;
            this.windowStart = windowStart;
            this.windowEnd = windowEnd;
        }
    }

    private final Backend backend;
    private final SplittableRandom guardRandom;
    private final Arena arena = Arena.ofConfined();
    private final List<Buffer> buffers = new ArrayList<>();
    private boolean verified;

    Workspace(Backend backend, long seed) {
        this.backend = backend;
        this.guardRandom = new SplittableRandom(seed ^ 0x5DEECE66DL);
    }

    Backend backend() {
        return backend;
    }

    /** A read-only tensor holding {@code content}. */
    Tensor input(String name, DType dtype, byte[] content, long... shape) {
        return place(name, Access.INPUT, dtype, content, shape, 0, -1);
    }

    /** An output tensor, poisoned with all-ones bytes before the op. */
    Tensor output(String name, DType dtype, long... shape) {
        return place(name, Access.OUTPUT, dtype, null, shape, 0, -1);
    }

    /** A tensor the op reads and writes, starting with {@code content}. */
    Tensor inPlace(String name, DType dtype, byte[] content, long... shape) {
        return place(name, Access.IN_PLACE, dtype, content, shape, 0, -1);
    }

    /**
     * The rows {@code [from, from + count)} of the outermost dimension of a parent tensor holding
     * {@code parentContent}: a view at an offset into a larger allocation. For outputs only the view's bytes
     * may change; the rest of the parent is checked like a guard region.
     */
    Tensor view(String name, Access access, DType dtype, byte[] parentContent, long[] parentShape, long from,
                long count) {
        return place(name, access, dtype, parentContent, parentShape, from, count);
    }

    private Tensor place(String name, Access access, DType dtype, byte[] content, long[] shape, long from,
                         long count) {
        int size = Math.toIntExact(Tensor.byteSizeOf(dtype, shape));
        if (content != null && content.length != size) {
            throw new IllegalArgumentException(name + ": " + content.length + " bytes for " + dtype
                    + Arrays.toString(shape) + " (" + size + " bytes)");
        }
        int total = GUARD + size + GUARD;
        byte[] expected = new byte[total];
        guardRandom.nextBytes(expected);
        if (content != null) {
            System.arraycopy(content, 0, expected, GUARD, size);
        }
        Tensor storage = backend.allocate(DType.I8, total);
        Tensor parent = Tensor.of(storage.segment().asSlice(GUARD, size), backend.device(), dtype, shape);
        Tensor view = count < 0 ? parent : parent.slice(from, count);
        int windowStart = Math.toIntExact(view.segment().address() - storage.segment().address());
        int windowEnd = windowStart + Math.toIntExact(view.segment().byteSize());
        if (access == Access.OUTPUT) {
            Arrays.fill(expected, windowStart, windowEnd, (byte) 0xFF);
        }
        Buffer buffer = new Buffer(name, access, storage, expected, view, windowStart, windowEnd);
        buffers.add(buffer);
        upload(buffer);
        return view;
    }

    private void upload(Buffer b) {
        if (backend.device().hostAccessible()) {
            MemorySegment.copy(b.expected, 0, b.storage.segment(), ValueLayout.JAVA_BYTE, 0, b.expected.length);
        } else {
            Tensor host = Tensor.allocate(arena, DType.I8, b.expected.length);
            MemorySegment.copy(b.expected, 0, host.segment(), ValueLayout.JAVA_BYTE, 0, b.expected.length);
            backend.copy(host, b.storage);
        }
    }

    private byte[] download(Buffer b) {
        byte[] bytes = new byte[b.expected.length];
        if (backend.device().hostAccessible()) {
            backend.synchronize();
            MemorySegment.copy(b.storage.segment(), ValueLayout.JAVA_BYTE, 0, bytes, 0, bytes.length);
        } else {
            Tensor host = Tensor.allocate(arena, DType.I8, bytes.length);
            backend.copy(b.storage, host);
            MemorySegment.copy(host.segment(), ValueLayout.JAVA_BYTE, 0, bytes, 0, bytes.length);
        }
        return bytes;
    }

    /**
     * Copies every allocation back and checks the rules.
     *
     * @throws CaseFailure naming the tensor and the first byte that should not have changed
     */
    void verify() {
        for (Buffer b : buffers) {
            b.actual = download(b);
        }
        verified = true;
        for (Buffer b : buffers) {
            boolean writable = b.access != Access.INPUT;
            for (int i = 0; i < b.expected.length; i++) {
                boolean inWindow = writable && i >= b.windowStart && i < b.windowEnd;
                if (!inWindow && b.actual[i] != b.expected[i]) {
                    throw new CaseFailure(describeViolation(b, i));
                }
            }
        }
    }

    private static String describeViolation(Buffer b, int i) {
        int size = b.expected.length - 2 * GUARD;
        if (b.access == Access.INPUT) {
            String where = i < GUARD ? (GUARD - i) + " byte(s) before it"
                    : i >= GUARD + size ? (i - GUARD - size) + " byte(s) past its end"
                    : "at byte " + (i - GUARD) + " of its " + size;
            return "modified its input '" + b.name + "' (" + where + ")";
        }
        if (i < b.windowStart) {
            return "wrote before the start of output '" + b.name + "' (at " + (b.windowStart - i)
                    + " byte(s) before it, " + (i >= GUARD ? "inside the parent tensor of the view)" : "in the guard region)");
        }
        return "wrote past the end of output '" + b.name + "' (at byte " + (i - b.windowEnd) + " after it, "
                + (i < GUARD + size ? "inside the parent tensor of the view)" : "in the guard region)");
    }

    /** The values of an output (or in-place) tensor after {@link #verify()}, row-major. */
    double[] read(Tensor t) {
        if (!verified) {
            throw new IllegalStateException("verify() first");
        }
        for (Buffer b : buffers) {
            if (b.view == t) {
                return Dequant.row(t.dtype(), b.actual, b.windowStart, Math.toIntExact(t.elementCount()));
            }
        }
        throw new IllegalArgumentException(t + " is not in this workspace");
    }

    @Override
    public void close() {
        RuntimeException failure = null;
        for (Buffer b : buffers) {
            try {
                backend.release(b.storage);
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                }
            }
        }
        buffers.clear();
        arena.close();
        if (failure != null) {
            throw failure;
        }
    }
}
