package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

import static dev.isthmus.bindings.onednn.dnnl_h.*;

/**
 * The row-wise and element-wise operators as oneDNN primitives, cached per shape and strides: RMS and layer
 * normalization ({@code layer_normalization} with {@code rms_norm}), add and multiply with row broadcast and
 * scaling by a scalar ({@code binary}), SiLU and GELU ({@code eltwise} swish and gelu_tanh), SwiGLU (swish
 * with a binary-multiply post-op) and softmax ({@code softmax} accurate). All in f32.
 *
 * <p>Tensors are described to oneDNN with their own dims and strides, so views need no copies. An output may
 * be its (first) input; for add and multiply an output that is the second operand is handled by swapping
 * the operands, which commute.
 */
final class Elementwise implements AutoCloseable {
    private static final int RMS_NORM = 1;
    private static final int LAYER_NORM = 2;
    private static final int BINARY = 3;
    private static final int ELTWISE = 4;
    private static final int SOFTMAX = 6;

    /** Elements from which an operator runs on all threads (below: one, no OpenMP fork). */
    static final long PARALLEL_ELEMENTS = 1L << 16;

    private final Dnnl dnnl;
    private final Scratch scratch;
    private final Map<LongKey, Dnnl.Primitive> cache = new HashMap<>();
    /** Per operator, the implementation oneDNN chose for the last primitive created (for diagnostics). */
    private final Map<String, String> implementations = new java.util.TreeMap<>();

    Elementwise(Dnnl dnnl, Scratch scratch) {
        this.dnnl = dnnl;
        this.scratch = scratch;
    }

    int cached() {
        return cache.size();
    }

    Map<String, String> implementations() {
        return Map.copyOf(implementations);
    }

    private void created(String op, Dnnl.Primitive p) {
        implementations.put(op, p.implementation());
    }

    // ---- normalization ---------------------------------------------------------------------------

    void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        norm(RMS_NORM, x, weight, null, eps, out);
    }

    void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        norm(LAYER_NORM, x, weight, bias, eps, out);
    }

    private void norm(int op, Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        requireF32(x, out);
        long cols = x.cols();
        if (weight != null) {
            requireVector(weight, cols, "weight");
        }
        if (bias != null) {
            requireVector(bias, cols, "bias");
        }
        if (x.elementCount() == 0) {
            return;
        }
        long[] dims = x.shape();
        int flags = (op == RMS_NORM ? dnnl_rms_norm() : 0) | (weight != null ? dnnl_use_scale() : 0)
                | (bias != null ? dnnl_use_shift() : 0);
        LongKey key = key(op, x, dims).add(flags).add(Float.floatToRawIntBits(eps)).add(stridesAs(out, dims)).build();
        Dnnl.Primitive p = cache.get(key);
        if (p == null) {
            dnnl.useThreads(dnnl.threadsFor(x.elementCount(), PARALLEL_ELEMENTS));
            MemorySegment src = Dnnl.md(x);
            MemorySegment dst = mdAs(out, dims);
            MemorySegment vec = Dnnl.md(dnnl_f32(), new long[] {cols}, new long[] {1});
            try (Arena a = Arena.ofConfined()) {
                MemorySegment pdp = a.allocate(ValueLayout.ADDRESS);
                Dnnl.check(dnnl_layer_normalization_forward_primitive_desc_create_v2(pdp, dnnl.engine,
                        dnnl_forward_inference(), src, dst, MemorySegment.NULL, dnnl_f32(), eps, flags,
                        MemorySegment.NULL), "dnnl_layer_normalization_forward_primitive_desc_create_v2");
                p = dnnl.primitive(Dnnl.pdOut(pdp),
                        new int[] {DNNL_ARG_SRC(), DNNL_ARG_DST(), DNNL_ARG_SCALE(), DNNL_ARG_SHIFT()},
                        new MemorySegment[] {src, dst, vec, vec});
            } finally {
                Dnnl.destroyMd(src);
                Dnnl.destroyMd(dst);
                Dnnl.destroyMd(vec);
            }
            cache.put(key, p);
            created(op == RMS_NORM ? "rmsNorm" : "layerNorm", p);
        }
        p.execute(x.segment(), out.segment(), weight == null ? MemorySegment.NULL : weight.segment(),
                bias == null ? MemorySegment.NULL : bias.segment());
    }

    // ---- binary -----------------------------------------------------------------------------------

    void add(Tensor a, Tensor b, Tensor out) {
        binary(dnnl_binary_add(), a, b, out);
    }

    void mul(Tensor a, Tensor b, Tensor out) {
        binary(dnnl_binary_mul(), a, b, out);
    }

    private void binary(int alg, Tensor a, Tensor b, Tensor out) {
        requireF32(a, out);
        if (b.dtype() != DType.F32 || b.cols() != a.cols() || (b.rows() != a.rows() && b.rows() != 1)) {
            throw new IllegalArgumentException("b must be F32 with the rows of a or one row: a " + a + ", b " + b);
        }
        if (out.rows() != a.rows() || out.cols() != a.cols()) {
            throw new IllegalArgumentException("out " + out + " does not fit a " + a);
        }
        if (a.elementCount() == 0) {
            return;
        }
        if (b.rows() == a.rows() && b.rows() > 1 && sameStart(out, b) && !sameStart(out, a)) {
            Tensor t = a;
            a = b;
            b = t;
        }
        long[] dims = a.shape();
        boolean broadcast = b.rows() == 1 && a.rows() > 1;
        LongKey key = key(BINARY, a, dims).add(alg).add(broadcast ? new long[0] : stridesAs(b, dims))
                .add(stridesAs(out, dims)).build();
        Dnnl.Primitive p = cache.get(key);
        if (p == null) {
            dnnl.useThreads(dnnl.threadsFor(a.elementCount(), PARALLEL_ELEMENTS));
            MemorySegment src0 = Dnnl.md(a);
            MemorySegment src1 = broadcast ? rowMd(dims) : mdAs(b, dims);
            MemorySegment dst = mdAs(out, dims);
            p = createBinary(alg, src0, src1, dst);
            cache.put(key, p);
            created(alg == dnnl_binary_add() ? "add" : "mul", p);
        }
        p.execute(a.segment(), b.segment(), out.segment());
    }

    void scale(Tensor x, float s, Tensor out) {
        requireF32(x, out);
        if (out.rows() != x.rows() || out.cols() != x.cols()) {
            throw new IllegalArgumentException("out " + out + " does not fit x " + x);
        }
        if (x.elementCount() == 0) {
            return;
        }
        long[] dims = x.shape();
        LongKey key = key(BINARY, x, dims).add(-1).add(stridesAs(out, dims)).build();
        Dnnl.Primitive p = cache.get(key);
        if (p == null) {
            dnnl.useThreads(dnnl.threadsFor(x.elementCount(), PARALLEL_ELEMENTS));
            long[] ones = new long[dims.length];
            Arrays.fill(ones, 1);
            p = createBinary(dnnl_binary_mul(), Dnnl.md(x), Dnnl.md(dnnl_f32(), ones, ones), mdAs(out, dims));
            cache.put(key, p);
            created("scale", p);
        }
        MemorySegment scalar = scratch.get(Scratch.SCALAR, 4);
        scalar.set(ValueLayout.JAVA_FLOAT, 0, s);
        p.execute(x.segment(), scalar, out.segment());
    }

    /** Creates a binary primitive; destroys the three descriptors. */
    private Dnnl.Primitive createBinary(int alg, MemorySegment src0, MemorySegment src1, MemorySegment dst) {
        try (Arena ar = Arena.ofConfined()) {
            MemorySegment pdp = ar.allocate(ValueLayout.ADDRESS);
            Dnnl.check(dnnl_binary_primitive_desc_create(pdp, dnnl.engine, alg, src0, src1, dst, MemorySegment.NULL),
                    "dnnl_binary_primitive_desc_create");
            return dnnl.primitive(Dnnl.pdOut(pdp), new int[] {DNNL_ARG_SRC(), DNNL_ARG_SRC_1(), DNNL_ARG_DST()},
                    new MemorySegment[] {src0, src1, dst});
        } finally {
            Dnnl.destroyMd(src0);
            Dnnl.destroyMd(src1);
            Dnnl.destroyMd(dst);
        }
    }

    // ---- eltwise, swiglu, softmax -----------------------------------------------------------------

    void silu(Tensor x, Tensor out) {
        eltwise(dnnl_eltwise_swish(), 1f, x, out);
    }

    void gelu(Tensor x, Tensor out) {
        eltwise(dnnl_eltwise_gelu_tanh(), 0f, x, out);
    }

    private void eltwise(int alg, float alpha, Tensor x, Tensor out) {
        requireF32(x, out);
        requireSameMatrix(x, out);
        if (x.elementCount() == 0) {
            return;
        }
        long[] dims = x.shape();
        LongKey key = key(ELTWISE, x, dims).add(alg).add(stridesAs(out, dims)).build();
        Dnnl.Primitive p = cache.get(key);
        if (p == null) {
            dnnl.useThreads(dnnl.threadsFor(x.elementCount(), PARALLEL_ELEMENTS));
            MemorySegment src = Dnnl.md(x);
            MemorySegment dst = mdAs(out, dims);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment pdp = a.allocate(ValueLayout.ADDRESS);
                Dnnl.check(dnnl_eltwise_forward_primitive_desc_create(pdp, dnnl.engine, dnnl_forward_inference(), alg,
                        src, dst, alpha, 0f, MemorySegment.NULL), "dnnl_eltwise_forward_primitive_desc_create");
                p = dnnl.primitive(Dnnl.pdOut(pdp), new int[] {DNNL_ARG_SRC(), DNNL_ARG_DST()},
                        new MemorySegment[] {src, dst});
            } finally {
                Dnnl.destroyMd(src);
                Dnnl.destroyMd(dst);
            }
            cache.put(key, p);
            created(alg == dnnl_eltwise_swish() ? "silu" : "gelu", p);
        }
        p.execute(x.segment(), out.segment());
    }

    /**
     * {@code silu(gate) * up} as two JIT primitives, swish then multiply (oneDNN 3.11 has only a reference
     * implementation of swish with a binary post-op); through scratch memory when {@code out} is {@code up}.
     */
    void swiglu(Tensor gate, Tensor up, Tensor out) {
        requireF32(gate, out);
        requireF32(up, out);
        requireSameMatrix(gate, up);
        requireSameMatrix(gate, out);
        if (gate.elementCount() == 0) {
            return;
        }
        Tensor activated = out;
        if (sameStart(out, up) && !sameStart(out, gate)) {
            long[] shape = gate.shape();
            activated = Tensor.host(scratch.get(Scratch.X_COPY, gate.elementCount() * 4), DType.F32, shape);
        }
        eltwise(dnnl_eltwise_swish(), 1f, gate, activated);
        binary(dnnl_binary_mul(), activated, up, out);
    }

    void softmax(Tensor x, Tensor out) {
        requireF32(x, out);
        requireSameMatrix(x, out);
        if (x.elementCount() == 0) {
            return;
        }
        long[] dims = x.shape();
        LongKey key = key(SOFTMAX, x, dims).add(stridesAs(out, dims)).build();
        Dnnl.Primitive p = cache.get(key);
        if (p == null) {
            dnnl.useThreads(dnnl.threadsFor(x.elementCount(), PARALLEL_ELEMENTS));
            MemorySegment src = Dnnl.md(x);
            MemorySegment dst = mdAs(out, dims);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment pdp = a.allocate(ValueLayout.ADDRESS);
                Dnnl.check(dnnl_softmax_forward_primitive_desc_create(pdp, dnnl.engine, dnnl_forward_inference(),
                        dnnl_softmax_accurate(), src, dst, dims.length - 1, MemorySegment.NULL),
                        "dnnl_softmax_forward_primitive_desc_create");
                p = dnnl.primitive(Dnnl.pdOut(pdp), new int[] {DNNL_ARG_SRC(), DNNL_ARG_DST()},
                        new MemorySegment[] {src, dst});
            } finally {
                Dnnl.destroyMd(src);
                Dnnl.destroyMd(dst);
            }
            cache.put(key, p);
            created("softmax", p);
        }
        p.execute(x.segment(), out.segment());
    }

    // ---- descriptors ------------------------------------------------------------------------------

    /** {@code t} described with {@code dims} (its own shape, or the same rows × cols as evenly spaced rows). */
    private static MemorySegment mdAs(Tensor t, long[] dims) {
        return Dnnl.md(dnnl_f32(), dims, stridesAs(t, dims));
    }

    /** A single row broadcast over {@code dims}. */
    private static MemorySegment rowMd(long[] dims) {
        long[] d = new long[dims.length];
        long[] s = new long[dims.length];
        Arrays.fill(d, 1);
        d[dims.length - 1] = dims[dims.length - 1];
        for (int i = 0; i < dims.length; i++) {
            s[i] = i == dims.length - 1 ? 1 : dims[dims.length - 1];
        }
        return Dnnl.md(dnnl_f32(), d, s);
    }

    private static long[] stridesAs(Tensor t, long[] dims) {
        if (Arrays.equals(t.shape(), dims)) {
            return Dnnl.elementStrides(t);
        }
        long rowStride = Dnnl.uniformRowStride(t);
        if (rowStride < 0) {
            throw new IllegalArgumentException(t + " has unevenly spaced rows and another shape than "
                    + Arrays.toString(dims));
        }
        long[] s = new long[dims.length];
        s[dims.length - 1] = 1;
        if (dims.length > 1) {
            s[dims.length - 2] = rowStride / 4;
            for (int i = dims.length - 3; i >= 0; i--) {
                s[i] = s[i + 1] * dims[i + 1];
            }
        }
        return s;
    }

    /** The start of a cache key: the op, the first input's dims and strides. */
    private static LongKey.Builder key(int op, Tensor t, long[] dims) {
        return new LongKey.Builder().add(op).add(dims).add(Dnnl.elementStrides(t));
    }

    private static boolean sameStart(Tensor x, Tensor y) {
        return x.segment().address() == y.segment().address();
    }

    private static void requireF32(Tensor x, Tensor out) {
        if (x.dtype() != DType.F32 || out.dtype() != DType.F32) {
            throw new IllegalArgumentException("onednn needs F32 tensors, got " + x + " and " + out);
        }
    }

    private static void requireSameMatrix(Tensor x, Tensor y) {
        if (x.rows() != y.rows() || x.cols() != y.cols()) {
            throw new IllegalArgumentException(y + " does not have the shape of " + x);
        }
    }

    private static void requireVector(Tensor v, long cols, String what) {
        if (v.dtype() != DType.F32 || v.rows() != 1 || v.cols() != cols) {
            throw new IllegalArgumentException(what + " must be one F32 row of " + cols + ", got " + v);
        }
    }

    @Override
    public void close() {
        cache.clear();
    }
}
