package dev.isthmus.backend.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;

import static dev.isthmus.bindings.onednn.dnnl_h.*;

/**
 * {@code out[n, m] = x[n, k] · w[m, k]ᵀ} with oneDNN's matmul primitive.
 *
 * <p>oneDNN sees the weights as its {@code [k, m]} "B" matrix, which a GGUF {@code [m, k]} tensor is in the
 * {@code ba} layout. Each weight is converted once into the layout the primitive asks for
 * ({@code format_tag_any}), and kept in the {@link WeightCache}; primitives are cached per shape. The paths:
 *
 * <table>
 *   <caption>matmul paths</caption>
 *   <tr><th>weights</th><th>activations</th><th>packed weights</th><th>math</th></tr>
 *   <tr><td>F32</td><td>f32</td><td>f32</td><td>f32 (AVX-512)</td></tr>
 *   <tr><td>F16, fewer than {@code bf16MinRows} rows</td><td>f32</td><td>f16</td><td>f32 (exact products)</td></tr>
 *   <tr><td>F16 from {@code bf16MinRows} rows, BF16</td><td>bf16</td><td>bf16</td><td>AMX bf16, f32 accumulation</td></tr>
 *   <tr><td>Q8_0, Q4_0, Q5_0</td><td>bf16</td><td>bf16 ({@code d · q} rounded once)</td><td>AMX bf16</td></tr>
 *   <tr><td>Q8_0, Q4_0, Q5_0 with {@code quantWeights=s8}</td><td>bf16</td><td>s8 + f16 scale per 32</td>
 *   <td>decompressed to bf16 in the kernel, AMX: half the memory, about 30% slower</td></tr>
 * </table>
 * Activations that go bf16 are converted by a reorder primitive (round to nearest even) into scratch memory.
 * With {@code f32Bf16} F32 weights take the bf16 path too from {@code bf16MinRows} rows.
 */
final class MatMul implements AutoCloseable {
    /** A kind of computation: the data types of activations and packed weights. */
    enum Kind {
        F32(false), F16(false), BF16(true), S8(true);

        final boolean bf16Source;

        Kind(boolean bf16Source) {
            this.bf16Source = bf16Source;
        }

        int weightType() {
            return switch (this) {
                case F32 -> dnnl_f32();
                case F16 -> dnnl_f16();
                case BF16 -> dnnl_bf16();
                case S8 -> dnnl_s8();
            };
        }
    }

    /** A cached primitive and the packed-weights descriptor it wants (owned). */
    private record Plan(Kind kind, Dnnl.Primitive primitive, MemorySegment weightsMd, boolean scaled) {
    }

    private static final int GROUP = 32;
    /** Multiply-adds from which a matmul runs on all threads (below: one, no OpenMP fork). */
    static final long PARALLEL_MACS = 1L << 20;
    /** Elements from which the activation conversion runs on all threads. */
    static final long PARALLEL_ELEMENTS = 1L << 16;

    private final Dnnl dnnl;
    private final WeightCache weights;
    private final Scratch scratch;
    private final int bf16MinRows;
    private final boolean f32Bf16;
    private final boolean quantBf16;
    private final Map<LongKey, Plan> plans = new HashMap<>();
    private final Map<LongKey, Dnnl.Primitive> toBf16 = new HashMap<>();
    private final Map<Kind, String> implementations = new EnumMap<>(Kind.class);

    MatMul(Dnnl dnnl, WeightCache weights, Scratch scratch, int bf16MinRows, boolean f32Bf16, boolean quantBf16) {
        this.dnnl = dnnl;
        this.weights = weights;
        this.scratch = scratch;
        this.bf16MinRows = bf16MinRows;
        this.f32Bf16 = f32Bf16;
        this.quantBf16 = quantBf16;
    }

    /**
     * The implementation oneDNN picks for each kind on this CPU (a small probe shape), or the reason it has
     * none; kinds whose only implementation is a reference one are not offered.
     */
    Map<Kind, String> probeImplementations() {
        if (implementations.isEmpty()) {
            for (Kind k : Kind.values()) {
                String impl;
                try {
                    Plan plan = createPlan(k, 1, 64, 16, 64, 16);
                    plans.put(new LongKey(k.ordinal(), 1, 64, 16, 64, 16), plan);
                    impl = plan.primitive().implementation();
                } catch (RuntimeException e) {
                    impl = "unavailable: " + e.getMessage();
                }
                implementations.put(k, impl);
            }
        }
        return implementations;
    }

    /** Whether a kind has an optimized (non-reference) implementation here. */
    boolean usable(Kind k) {
        String impl = probeImplementations().get(k);
        return impl != null && !impl.startsWith("unavailable") && !impl.startsWith("ref");
    }

    /** The kinds {@code w} may take, for the capability query. */
    boolean supports(DType w) {
        return switch (w) {
            case F32 -> usable(Kind.F32) && (!f32Bf16 || usable(Kind.BF16));
            case F16 -> usable(Kind.F16) && usable(Kind.BF16);
            case BF16 -> usable(Kind.BF16);
            case Q8_0, Q4_0, Q5_0 -> usable(quantBf16 ? Kind.BF16 : Kind.S8);
            default -> false;
        };
    }

    /** The computation for weights of dtype {@code w} and {@code n} activation rows. */
    Kind kind(DType w, long n) {
        return switch (w) {
            case F32 -> f32Bf16 && n >= bf16MinRows ? Kind.BF16 : Kind.F32;
            case F16 -> n >= bf16MinRows ? Kind.BF16 : Kind.F16;
            case BF16 -> Kind.BF16;
            case Q8_0, Q4_0, Q5_0 -> quantBf16 ? Kind.BF16 : Kind.S8;
            default -> throw new IllegalArgumentException("onednn matmul does not support " + w + " weights");
        };
    }

    void run(Tensor x, Tensor w, Tensor out) {
        if (x.dtype() != DType.F32 || out.dtype() != DType.F32) {
            throw new IllegalArgumentException("matmul needs F32 x and out, got " + x + " and " + out);
        }
        long n = x.rows();
        long k = x.cols();
        long m = w.rows();
        if (w.cols() != k || out.cols() != m || out.rows() != n) {
            throw new IllegalArgumentException("matmul shapes do not fit: x " + x + ", w " + w + ", out " + out);
        }
        if (n == 0 || m == 0) {
            return;
        }
        if (k == 0) {
            fillZero(out);
            return;
        }
        long wStride = Dnnl.uniformRowStride(w);
        if (wStride < 0) {
            throw new IllegalArgumentException("matmul weights must have evenly spaced rows: " + w);
        }
        Kind kind = kind(w.dtype(), n);

        // Activations: f32 rows as they are (evenly spaced), or a contiguous copy.
        MemorySegment xData = x.segment();
        long xStride = Dnnl.uniformRowStride(x);
        if (xStride < 0) {
            xData = scratch.get(Scratch.X_COPY, n * k * 4);
            copyRows(x, xData);
            xStride = k * 4;
        }
        MemorySegment outData = out.segment();
        long outStride = Dnnl.uniformRowStride(out);
        boolean copyOut = outStride < 0;
        if (copyOut) {
            outData = scratch.get(Scratch.OUT_COPY, n * m * 4);
            outStride = m * 4;
        }
        long xs = n == 1 ? k : xStride / 4;
        long os = n == 1 ? m : outStride / 4;

        MemorySegment src = xData;
        long srcStride = xs;
        if (kind.bf16Source) {
            src = scratch.get(Scratch.SRC_BF16, n * k * 2);
            toBf16(n, k, xs).execute(xData, src);
            srcStride = k;
        }
        LongKey key = new LongKey(kind.ordinal(), n, k, m, srcStride, os);
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = createPlan(kind, n, k, m, srcStride, os);
            plans.put(key, plan);
        }
        WeightCache.Entry entry = weights.get(w, e -> initScales(e, kind, w, wStride));
        Plan p = plan;
        MemorySegment packed = entry.packed(p.weightsMd(), (md, target) -> pack(kind, w, wStride, entry, md, target));
        if (p.scaled()) {
            p.primitive().execute(src, packed, outData, entry.scales);
        } else {
            p.primitive().execute(src, packed, outData);
        }
        if (copyOut) {
            for (long r = 0; r < n; r++) {
                MemorySegment.copy(outData, r * m * 4, out.segment(), out.rowOffset(r), m * 4);
            }
        }
    }

    private Plan createPlan(Kind kind, long n, long k, long m, long srcStride, long dstStride) {
        int srcType = kind.bf16Source ? dnnl_bf16() : dnnl_f32();
        boolean scaled = kind == Kind.S8;
        MemorySegment srcMd = Dnnl.md(srcType, new long[] {n, k}, new long[] {srcStride, 1});
        MemorySegment anyMd = Dnnl.mdWithTag(kind.weightType(), new long[] {k, m}, dnnl_format_tag_any());
        MemorySegment dstMd = Dnnl.md(dnnl_f32(), new long[] {n, m}, new long[] {dstStride, 1});
        MemorySegment scalesMd = scaled ? scalesMd(k, m) : null;
        MemorySegment attr = MemorySegment.NULL;
        dnnl.useThreads(dnnl.threadsFor(n * k * m, PARALLEL_MACS));
        try (Arena a = Arena.ofConfined()) {
            if (scaled) {
                MemorySegment p = a.allocate(ValueLayout.ADDRESS);
                Dnnl.check(dnnl_primitive_attr_create(p), "dnnl_primitive_attr_create");
                attr = p.get(ValueLayout.ADDRESS, 0);
                // Integer weights are decompressed to bf16 and multiplied on AMX.
                Dnnl.check(dnnl_primitive_attr_set_fpmath_mode_v2(attr, dnnl_fpmath_mode_bf16(), 1),
                        "dnnl_primitive_attr_set_fpmath_mode_v2");
                MemorySegment groups = a.allocateFrom(ValueLayout.JAVA_LONG, GROUP, 1);
                Dnnl.check(dnnl_primitive_attr_set_scales(attr, DNNL_ARG_WEIGHTS(), 3, 2, groups, dnnl_f16()),
                        "dnnl_primitive_attr_set_scales");
            }
            MemorySegment pdp = a.allocate(ValueLayout.ADDRESS);
            Dnnl.check(dnnl_matmul_primitive_desc_create(pdp, dnnl.engine, srcMd, anyMd, MemorySegment.NULL, dstMd,
                    attr), "dnnl_matmul_primitive_desc_create(" + kind + ", n=" + n + ", k=" + k + ", m=" + m + ")");
            MemorySegment pd = Dnnl.pdOut(pdp);
            MemorySegment weightsMd = Dnnl.cloneMd(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md(), 0));
            Dnnl.Primitive prim = scaled
                    ? dnnl.primitive(pd, new int[] {DNNL_ARG_SRC(), DNNL_ARG_WEIGHTS(), DNNL_ARG_DST(),
                            DNNL_ARG_ATTR_SCALES() | DNNL_ARG_WEIGHTS()},
                            new MemorySegment[] {srcMd, weightsMd, dstMd, scalesMd})
                    : dnnl.primitive(pd, new int[] {DNNL_ARG_SRC(), DNNL_ARG_WEIGHTS(), DNNL_ARG_DST()},
                            new MemorySegment[] {srcMd, weightsMd, dstMd});
            return new Plan(kind, prim, weightsMd, scaled);
        } finally {
            if (!attr.equals(MemorySegment.NULL)) {
                dnnl_primitive_attr_destroy(attr);
            }
            Dnnl.destroyMd(srcMd);
            Dnnl.destroyMd(anyMd);
            Dnnl.destroyMd(dstMd);
            Dnnl.destroyMd(scalesMd);
        }
    }

    private static MemorySegment scalesMd(long k, long m) {
        return Dnnl.md(dnnl_f16(), new long[] {k / GROUP, m}, new long[] {m, 1});
    }

    /** The f32 → bf16 conversion of {@code n} rows of {@code k} activations, {@code xs} elements apart. */
    private Dnnl.Primitive toBf16(long n, long k, long xs) {
        LongKey key = new LongKey(n, k, xs);
        Dnnl.Primitive p = toBf16.get(key);
        if (p == null) {
            MemorySegment from = Dnnl.md(dnnl_f32(), new long[] {n, k}, new long[] {xs, 1});
            MemorySegment to = Dnnl.md(dnnl_bf16(), new long[] {n, k}, new long[] {k, 1});
            dnnl.useThreads(dnnl.threadsFor(n * k, PARALLEL_ELEMENTS));
            try (Arena a = Arena.ofConfined()) {
                MemorySegment pdp = a.allocate(ValueLayout.ADDRESS);
                Dnnl.check(dnnl_reorder_primitive_desc_create(pdp, from, dnnl.engine, to, dnnl.engine,
                        MemorySegment.NULL), "dnnl_reorder_primitive_desc_create(f32 -> bf16)");
                p = dnnl.primitive(Dnnl.pdOut(pdp), new int[] {DNNL_ARG_FROM(), DNNL_ARG_TO()},
                        new MemorySegment[] {from, to});
            } finally {
                Dnnl.destroyMd(from);
                Dnnl.destroyMd(to);
            }
            toBf16.put(key, p);
        }
        return p;
    }

    /**
     * For integer kinds, unpacks the block scales into the new entry, and the integers into temporary memory
     * that the first packing consumes.
     */
    private static WeightCache.Entry initScales(WeightCache.Entry e, Kind kind, Tensor w, long wStride) {
        if (kind == Kind.S8) {
            int m = Math.toIntExact(w.rows());
            int k = Math.toIntExact(w.cols());
            e.scales = e.allocate(WeightPacking.scaleBytes(w.dtype(), m, k));
            e.unpacked = e.temporary(WeightPacking.quantBytes(w.dtype(), m, k));
            WeightPacking.unpack(w.dtype(), w.segment(), wStride, m, k, e.unpacked, e.scales);
        }
        return e;
    }

    /** Converts {@code w} into the layout {@code md} at {@code target}. */
    private void pack(Kind kind, Tensor w, long wStride, WeightCache.Entry entry, MemorySegment md,
                      MemorySegment target) {
        long m = w.rows();
        long k = w.cols();
        if (kind == Kind.S8) {
            if (entry.unpacked == null) {
                // A second layout of the same weights: unpack again (the scales come out the same).
                entry.unpacked = entry.temporary(WeightPacking.quantBytes(w.dtype(), m, k));
                try (Arena tmp = Arena.ofConfined()) {
                    MemorySegment scales = tmp.allocate(WeightPacking.scaleBytes(w.dtype(), m, k), 64);
                    WeightPacking.unpack(w.dtype(), w.segment(), wStride, Math.toIntExact(m), Math.toIntExact(k),
                            entry.unpacked, scales);
                }
            }
            MemorySegment from = Dnnl.mdWithTag(dnnl_s8(), new long[] {k, m}, dnnl_ba());
            try {
                dnnl.reorder(from, entry.unpacked, md, target);
            } finally {
                Dnnl.destroyMd(from);
                entry.releaseTemporary();
            }
            return;
        }
        if (w.dtype().isQuantized()) {
            // Block formats as bf16: each d · q rounded once, as the decompressing kernel would round it too.
            try (Arena tmp = Arena.ofShared()) {
                MemorySegment plain = tmp.allocate(m * k * 2, 64);
                WeightPacking.toBf16(w.dtype(), w.segment(), wStride, Math.toIntExact(m), Math.toIntExact(k), plain);
                MemorySegment from = Dnnl.mdWithTag(dnnl_bf16(), new long[] {k, m}, dnnl_ba());
                try {
                    dnnl.reorder(from, plain, md, target);
                } finally {
                    Dnnl.destroyMd(from);
                }
            }
            return;
        }
        long elem = w.dtype().blockBytes();
        MemorySegment from = Dnnl.md(Dnnl.dataType(w.dtype()), new long[] {k, m}, new long[] {1, wStride / elem});
        try {
            dnnl.reorder(from, w.segment(), md, target);
        } finally {
            Dnnl.destroyMd(from);
        }
    }

    private static void copyRows(Tensor x, MemorySegment to) {
        long bytes = x.rowBytes();
        for (long r = 0; r < x.rows(); r++) {
            MemorySegment.copy(x.segment(), x.rowOffset(r), to, r * bytes, bytes);
        }
    }

    private static void fillZero(Tensor out) {
        for (long r = 0; r < out.rows(); r++) {
            out.segment().asSlice(out.rowOffset(r), out.rowBytes()).fill((byte) 0);
        }
    }

    int planCount() {
        return plans.size();
    }

    @Override
    public void close() {
        for (Plan p : plans.values()) {
            Dnnl.destroyMd(p.weightsMd());
        }
        plans.clear();
        toBf16.clear();
    }
}
