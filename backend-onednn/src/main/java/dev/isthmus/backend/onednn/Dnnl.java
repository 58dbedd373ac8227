package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.bindings.onednn.dnnl_exec_arg_t;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static dev.isthmus.bindings.onednn.dnnl_h.*;

/**
 * One oneDNN CPU engine and stream, the primitives created on them, and small helpers over the jextract
 * bindings: memory descriptors from tensors, status checks, primitive creation and execution.
 *
 * <p>Not thread-safe: the backend serializes calls.
 */
@SuppressWarnings("restricted") // FFM: reading pointers oneDNN returns, loading its libraries
final class Dnnl implements AutoCloseable {
    final MemorySegment engine;
    final MemorySegment stream;
    /** Lives as long as this object: exec-argument arrays, the engine/stream handles. */
    final Arena arena = Arena.ofShared();
    private final List<Primitive> primitives = new ArrayList<>();
    private final java.util.function.IntConsumer setOmpThreads;
    private final int maxThreads;
    private Thread teamOwner;
    private int teamSize;

    /**
     * @param setOmpThreads sets the OpenMP team size of the calling thread ({@code omp_set_num_threads})
     * @param maxThreads    the most threads a primitive may use
     */
    Dnnl(java.util.function.IntConsumer setOmpThreads, int maxThreads) {
        this.setOmpThreads = setOmpThreads;
        this.maxThreads = Math.max(1, maxThreads);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(dnnl_engine_create(p, dnnl_cpu(), 0), "dnnl_engine_create");
            engine = p.get(ValueLayout.ADDRESS, 0);
            check(dnnl_stream_create(p, engine, dnnl_stream_default_flags()), "dnnl_stream_create");
            stream = p.get(ValueLayout.ADDRESS, 0);
        }
    }

    /** The most threads a primitive may use. */
    int maxThreads() {
        return maxThreads;
    }

    /**
     * Threads for a primitive doing about {@code work} units (multiply-adds, elements): one below
     * {@code threshold}, where forking a team costs more than it saves (and, on a loaded machine, far more),
     * else all.
     */
    int threadsFor(long work, long threshold) {
        return work < threshold ? 1 : maxThreads;
    }

    /**
     * Sizes the calling thread's OpenMP team. oneDNN fixes a primitive's thread count when its descriptor is
     * created, so this precedes both creation and execution.
     */
    void useThreads(int threads) {
        Thread current = Thread.currentThread();
        if (current != teamOwner || threads != teamSize) {
            setOmpThreads.accept(threads);
            teamOwner = current;
            teamSize = threads;
        }
    }

    /** Throws with oneDNN's name for {@code status} unless it is {@code dnnl_success}. */
    static void check(int status, String what) {
        if (status != dnnl_success()) {
            throw new IllegalStateException(what + " failed: " + statusName(status));
        }
    }

    static String statusName(int status) {
        MemorySegment s = dnnl_status2str(status);
        return s.equals(MemorySegment.NULL) ? "status " + status : s.reinterpret(64).getString(0);
    }

    /** The oneDNN data type of an element type (plain types only). */
    static int dataType(DType t) {
        return switch (t) {
            case F32 -> dnnl_f32();
            case F16 -> dnnl_f16();
            case BF16 -> dnnl_bf16();
            case I8 -> dnnl_s8();
            case I32 -> dnnl_s32();
            default -> throw new IllegalArgumentException("no oneDNN data type for " + t);
        };
    }

    /** A memory descriptor with explicit dims and strides (in elements); the caller destroys it. */
    static MemorySegment md(int dataType, long[] dims, long[] strides) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            MemorySegment d = a.allocateFrom(ValueLayout.JAVA_LONG, dims);
            MemorySegment s = a.allocateFrom(ValueLayout.JAVA_LONG, strides);
            check(dnnl_memory_desc_create_with_strides(p, dims.length, d, dataType, s),
                    "dnnl_memory_desc_create_with_strides");
            return p.get(ValueLayout.ADDRESS, 0);
        }
    }

    /** A memory descriptor with a format tag (e.g. {@code dnnl_format_tag_any}); the caller destroys it. */
    static MemorySegment mdWithTag(int dataType, long[] dims, int tag) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            MemorySegment d = a.allocateFrom(ValueLayout.JAVA_LONG, dims);
            check(dnnl_memory_desc_create_with_tag(p, dims.length, d, dataType, tag), "dnnl_memory_desc_create_with_tag");
            return p.get(ValueLayout.ADDRESS, 0);
        }
    }

    /** A copy of a descriptor owned by a primitive descriptor; the caller destroys it. */
    static MemorySegment cloneMd(MemorySegment md) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(dnnl_memory_desc_clone(p, md), "dnnl_memory_desc_clone");
            return p.get(ValueLayout.ADDRESS, 0);
        }
    }

    static void destroyMd(MemorySegment md) {
        if (md != null && !md.equals(MemorySegment.NULL)) {
            dnnl_memory_desc_destroy(md);
        }
    }

    /** Element strides of a tensor of a plain dtype: its shape and its byte strides divided by the element size. */
    static long[] elementStrides(Tensor t) {
        long size = t.dtype().blockBytes();
        long[] s = new long[t.rank()];
        for (int i = 0; i < s.length; i++) {
            long b = t.stride(i);
            if (b % size != 0) {
                throw new IllegalArgumentException("stride " + b + " of " + t + " is not a multiple of its element size");
            }
            s[i] = b / size;
        }
        return s;
    }

    /** A descriptor of a plain-dtype tensor as it lies in memory (any rank, any strides); the caller destroys it. */
    static MemorySegment md(Tensor t) {
        return md(dataType(t.dtype()), t.shape(), elementStrides(t));
    }

    /**
     * The byte stride between consecutive rows when {@code t} is seen as a {@link Tensor#rows()} ×
     * {@link Tensor#cols()} matrix, or -1 if its rows are not evenly spaced.
     */
    static long uniformRowStride(Tensor t) {
        long rowStride = -1;
        long span = 0;
        for (int i = t.rank() - 2; i >= 0; i--) {
            long d = t.dim(i);
            if (d == 1) {
                continue;
            }
            if (rowStride < 0) {
                rowStride = t.stride(i);
            } else if (t.stride(i) != span) {
                return -1;
            }
            span = d * t.stride(i);
        }
        return rowStride < 0 ? t.rowBytes() : rowStride;
    }

    /**
     * Creates a primitive from {@code pd} (which it then owns) with one memory object per argument, each
     * described by {@code mds[i]} (not owned) and bound to its data at execution. It runs on the team size
     * set by the last {@link #useThreads} (the one {@code pd} was created with).
     */
    Primitive primitive(MemorySegment pd, int[] args, MemorySegment[] mds) {
        Primitive p = new Primitive(this, pd, args, mds, teamSize);
        primitives.add(p);
        return p;
    }

    /** A primitive descriptor's implementation name, e.g. {@code brg_matmul:avx10_1_512_amx}. */
    static String implementation(MemorySegment pd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ValueLayout.ADDRESS);
            check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str(), 0, out), "dnnl_primitive_desc_query");
            return out.get(ValueLayout.ADDRESS, 0).reinterpret(256).getString(0);
        }
    }

    /** Reads a {@code dnnl_primitive_desc_t} out-parameter after a successful create call. */
    static MemorySegment pdOut(MemorySegment p) {
        return p.get(ValueLayout.ADDRESS, 0);
    }

    /** Executes a one-off reorder from {@code srcMd} at {@code src} to {@code dstMd} at {@code dst}, on all threads. */
    void reorder(MemorySegment srcMd, MemorySegment src, MemorySegment dstMd, MemorySegment dst) {
        useThreads(maxThreads);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            check(dnnl_reorder_primitive_desc_create(p, srcMd, engine, dstMd, engine, MemorySegment.NULL),
                    "dnnl_reorder_primitive_desc_create");
            try (Primitive r = new Primitive(this, pdOut(p), new int[] {DNNL_ARG_FROM(), DNNL_ARG_TO()},
                    new MemorySegment[] {srcMd, dstMd}, teamSize)) {
                r.execute(src, dst);
            }
        }
    }

    /** Number of primitives created on this engine (cached ones included). */
    int primitiveCount() {
        return primitives.size();
    }

    @Override
    public void close() {
        for (Primitive p : primitives) {
            p.close();
        }
        primitives.clear();
        dnnl_stream_destroy(stream);
        dnnl_engine_destroy(engine);
        arena.close();
    }

    /** A primitive with its memory objects and its argument array, executed with fresh data pointers. */
    static final class Primitive implements AutoCloseable {
        private final Dnnl owner;
        final MemorySegment pd;
        private final MemorySegment primitive;
        private final MemorySegment[] memories;
        private final MemorySegment args;
        private final int count;
        private final int threads;
        private boolean closed;

        private Primitive(Dnnl owner, MemorySegment pd, int[] argIds, MemorySegment[] mds, int threads) {
            this.owner = owner;
            this.pd = pd;
            this.count = argIds.length;
            this.threads = Math.max(1, threads);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment p = a.allocate(ValueLayout.ADDRESS);
                int status = dnnl_primitive_create(p, pd);
                if (status != dnnl_success()) {
                    dnnl_primitive_desc_destroy(pd);
                    check(status, "dnnl_primitive_create");
                }
                primitive = p.get(ValueLayout.ADDRESS, 0);
                memories = new MemorySegment[count];
                for (int i = 0; i < count; i++) {
                    check(dnnl_memory_create(p, mds[i], owner.engine, MemorySegment.NULL), "dnnl_memory_create");
                    memories[i] = p.get(ValueLayout.ADDRESS, 0);
                }
            }
            args = dnnl_exec_arg_t.allocateArray(count, owner.arena);
            for (int i = 0; i < count; i++) {
                MemorySegment e = dnnl_exec_arg_t.asSlice(args, i);
                dnnl_exec_arg_t.arg(e, argIds[i]);
                dnnl_exec_arg_t.memory(e, memories[i]);
            }
        }

        /** Binds {@code data[i]} to argument {@code i} and runs the primitive on the stream. */
        void execute(MemorySegment... data) {
            owner.useThreads(threads);
            for (int i = 0; i < count; i++) {
                check(dnnl_memory_set_data_handle(memories[i], data[i]), "dnnl_memory_set_data_handle");
            }
            check(dnnl_primitive_execute(primitive, owner.stream, count, args), "dnnl_primitive_execute");
        }

        String implementation() {
            return Dnnl.implementation(pd);
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            for (MemorySegment m : memories) {
                dnnl_memory_destroy(m);
            }
            dnnl_primitive_destroy(primitive);
            dnnl_primitive_desc_destroy(pd);
        }
    }
}
