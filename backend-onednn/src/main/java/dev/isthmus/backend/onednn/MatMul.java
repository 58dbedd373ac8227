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
 *   <tr><td>Q8_0, Q4_0, Q5_0 ({@code quantWeights=int8}, the default)</td><td>s8, one scale per row</td>
 *   <td>s8 re-quantized with one f32 scale per output channel</td><td>AMX int8, s32 accumulation</td></tr>
 *   <tr><td>Q8_0, Q4_0, Q5_0 with {@code quantWeights=bf16}</td><td>bf16</td><td>bf16 ({@code d · q} rounded
 *   once)</td><td>AMX bf16</td></tr>
 *   <tr><td>Q8_0, Q4_0, Q5_0 with {@code quantWeights=s8}</td><td>bf16</td><td>s8 + f16 scale per 32</td>
 *   <td>decompressed to bf16 in the kernel, AMX: half the memory, about 30% slower</td></tr>
 * </table>
 * Activations that go bf16 are converted by a reorder primitive (round to nearest even) into scratch memory;
 * activations that go s8 are quantized per row by {@link ActivationQuantizer}, and the primitive applies both
 * scales to its s32 products: the weights' per channel, the activations' per row (a binary post-op). When one
 * s8 term of the activations would be too coarse ({@code int8MaxNoise}; heavy-tailed rows such as SwiGLU outputs)
 * they are mixed by {@link Rotation} if that helps (with the weights in their mixed form, converted when first
 * needed), and if it does not help enough their rounding error is quantized too and a second primitive with the
 * same weights adds its product. Several
 * weights of one call ({@link #run(Tensor, Tensor[], Tensor[])}) share the converted activations. With
 * {@code f32Bf16} F32 weights take the bf16 path too from {@code bf16MinRows} rows.
 *
 * <p>The int8 path is about twice as fast as bf16 on AMX but not exact: re-quantizing a row of 32-element
 * blocks with one scale costs the blocks with smaller scales bits, and per-row activation scales are coarser
 * than ggml's per-32 ones (NMSE around 1.4e-4 against a float64 reference on Gaussian-like activations, where
 * bf16 is around 5e-6).
 */
final class MatMul implements AutoCloseable {
    /** A kind of computation: the data types of activations and packed weights. */
    enum Kind {
        F32, F16, BF16, S8, INT8;

        int sourceType() {
            return switch (this) {
                case F32, F16 -> dnnl_f32();
                case BF16, S8 -> dnnl_bf16();
                case INT8 -> dnnl_s8();
            };
        }

        int weightType() {
            return switch (this) {
                case F32 -> dnnl_f32();
                case F16 -> dnnl_f16();
                case BF16 -> dnnl_bf16();
                case S8, INT8 -> dnnl_s8();
            };
        }
    }

    /** How block-quantized weights are multiplied ({@code quantWeights}). */
    enum QuantMath {
        /** Re-quantized to s8 per output channel, activations to s8 per row: AMX int8. */
        INT8(Kind.INT8),
        /** Exactly as bf16: AMX bf16. */
        BF16(Kind.BF16),
        /** Exactly as s8 with per-32 scales, decompressed to bf16 in the kernel. */
        S8(Kind.S8);

        final Kind kind;

        QuantMath(Kind kind) {
            this.kind = kind;
        }
    }

    /** A cached primitive and the packed-weights descriptor it wants (owned). */
    private record Plan(Dnnl.Primitive primitive, MemorySegment weightsMd) {
    }

    private static final int GROUP = 32;
    /** Multiply-adds from which a matmul runs on all threads (below: one, no OpenMP fork). */
    static final long PARALLEL_MACS = 1L << 20;
    /** Elements from which the activation conversion runs on all threads. */
    static final long PARALLEL_ELEMENTS = 1L << 16;
    /**
     * The default expected noise of s8 activations (relative to their signal) above which the int8 path tries
     * them mixed by {@link Rotation}, and if still above adds the product of their quantized rounding error
     * (twice the multiply-adds, noise about 2e-8). One term: about 7e-5 for Gaussian rows of 2048; 7e-4 for
     * heavy-tailed SwiGLU outputs, 1.4e-4 once mixed.
     */
    static final double INT8_MAX_NOISE = 2e-4;

    private final Dnnl dnnl;
    private final WeightCache weights;
    private final Scratch scratch;
    private final int bf16MinRows;
    private final boolean f32Bf16;
    private final QuantMath quantMath;
    private final double int8MaxNoise;
    private final Map<LongKey, Plan> plans = new HashMap<>();
    private final Map<LongKey, Dnnl.Primitive> toBf16 = new HashMap<>();
    private final Map<Kind, String> implementations = new EnumMap<>(Kind.class);

    /** @param int8MaxNoise see {@link #INT8_MAX_NOISE} (the default) */
    MatMul(Dnnl dnnl, WeightCache weights, Scratch scratch, int bf16MinRows, boolean f32Bf16, QuantMath quantMath,
           double int8MaxNoise) {
        this.dnnl = dnnl;
        this.weights = weights;
        this.scratch = scratch;
        this.bf16MinRows = bf16MinRows;
        this.f32Bf16 = f32Bf16;
        this.quantMath = quantMath;
        this.int8MaxNoise = int8MaxNoise;
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
                    Plan plan = plan(k, 1, 64, 16, 64, 16, false);
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
            case Q8_0, Q4_0, Q5_0 -> usable(quantMath.kind);
            default -> false;
        };
    }

    /** The computation for weights of dtype {@code w} and {@code n} activation rows. */
    Kind kind(DType w, long n) {
        return switch (w) {
            case F32 -> f32Bf16 && n >= bf16MinRows ? Kind.BF16 : Kind.F32;
            case F16 -> n >= bf16MinRows ? Kind.BF16 : Kind.F16;
            case BF16 -> Kind.BF16;
            case Q8_0, Q4_0, Q5_0 -> quantMath.kind;
            default -> throw new IllegalArgumentException("onednn matmul does not support " + w + " weights");
        };
    }

    void run(Tensor x, Tensor w, Tensor out) {
        run(x, new Tensor[] {w}, new Tensor[] {out});
    }

    /** {@code outs[i] = x · weights[i]ᵀ}, with {@code x} converted or quantized once for all of them. */
    void run(Tensor x, Tensor[] ws, Tensor[] outs) {
        if (ws.length != outs.length) {
            throw new IllegalArgumentException("matmul: " + ws.length + " weights but " + outs.length + " outputs");
        }
        if (x.dtype() != DType.F32) {
            throw new IllegalArgumentException("matmul needs F32 x, got " + x);
        }
        for (int i = 0; i < ws.length; i++) {
            Tensor w = ws[i];
            Tensor out = outs[i];
            if (out.dtype() != DType.F32 || w.cols() != x.cols() || out.cols() != w.rows() || out.rows() != x.rows()) {
                throw new IllegalArgumentException("matmul shapes do not fit: x " + x + ", w " + w + ", out " + out);
            }
            if (Dnnl.uniformRowStride(w) < 0) {
                throw new IllegalArgumentException("matmul weights must have evenly spaced rows: " + w);
            }
        }
        if (x.rows() == 0) {
            return;
        }
        Activations a = new Activations(x);
        for (int i = 0; i < ws.length; i++) {
            if (ws[i].rows() == 0) {
                continue;
            }
            if (x.cols() == 0) {
                fillZero(outs[i]);
            } else {
                multiply(a, ws[i], outs[i]);
            }
        }
    }

    /** The activations of one call, converted into the form each kind needs at most once. */
    private final class Activations {
        final long n;
        final long k;
        /** f32 rows, {@link #f32Stride} elements apart: {@code x} itself, or a contiguous copy. */
        final MemorySegment f32;
        final long f32Stride;
        private MemorySegment bf16;
        /** Whether the int8 kind quantizes the rows mixed by {@link Rotation}: then its weights are mixed too. */
        private boolean mixed;
        private MemorySegment s8;
        /** The per-row scales of {@link #s8}. */
        private MemorySegment rowScales;
        /** The expected relative noise of {@link #s8}. */
        private double noise;
        /** The rounding error of {@link #s8} as s8, and its per-row scales, when {@link #noise} asks for it. */
        private MemorySegment residual;
        private MemorySegment residualScales;

        Activations(Tensor x) {
            n = x.rows();
            k = x.cols();
            long stride = Dnnl.uniformRowStride(x);
            if (stride < 0) {
                f32 = scratch.get(Scratch.X_COPY, n * k * 4);
                copyRows(x, f32);
                stride = k * 4;
            } else {
                f32 = x.segment();
            }
            f32Stride = n == 1 ? k : stride / 4;
        }

        /** The source operand of {@code kind}, with {@link #stride} elements between rows. */
        MemorySegment source(Kind kind) {
            return switch (kind) {
                case F32, F16 -> f32;
                case BF16, S8 -> {
                    if (bf16 == null) {
                        bf16 = scratch.get(Scratch.SRC_BF16, n * k * 2);
                        toBf16(n, k, f32Stride).execute(f32, bf16);
                    }
                    yield bf16;
                }
                case INT8 -> {
                    if (s8 == null) {
                        quantize();
                    }
                    yield s8;
                }
            };
        }

        /**
         * Quantizes the rows as they are, or mixed by {@link Rotation} when one s8 term would be too coarse and
         * mixing lowers its noise (heavy-tailed rows; rows with repeated parts, such as the attention outputs of
         * query heads that share a key/value head, get noisier mixed). The choice is made on a sample of rows.
         */
        private void quantize() {
            int rows = Math.toIntExact(n);
            int cols = Math.toIntExact(k);
            long stride = f32Stride * 4;
            if (Rotation.applies(k)) {
                double plain = ActivationQuantizer.noise(f32, stride, rows, cols, false);
                mixed = plain > int8MaxNoise && ActivationQuantizer.noise(f32, stride, rows, cols, true) < plain;
            }
            s8 = scratch.get(Scratch.SRC_S8, n * k);
            rowScales = scratch.get(Scratch.ROW_SCALES, n * 4);
            noise = ActivationQuantizer.quantize(f32, stride, rows, cols, mixed, parallel(), s8, rowScales);
        }

        /** Whether the Java work on these activations is worth splitting among threads. */
        private boolean parallel() {
            return dnnl.maxThreads() > 1 && n * k >= PARALLEL_ELEMENTS;
        }

        /** The s8 rounding error of {@link #source}({@code INT8}) if one term is too coarse, else null. */
        MemorySegment residual() {
            if (residual == null && noise > int8MaxNoise) {
                residual = scratch.get(Scratch.RESIDUAL_S8, n * k);
                residualScales = scratch.get(Scratch.RESIDUAL_SCALES, n * 4);
                ActivationQuantizer.quantizeResidual(f32, f32Stride * 4, Math.toIntExact(n), Math.toIntExact(k),
                        mixed, parallel(), s8, rowScales, residual, residualScales);
            }
            return residual;
        }

        long stride(Kind kind) {
            return kind == Kind.F32 || kind == Kind.F16 ? f32Stride : k;
        }

        /** Whether the weights of {@code kind} must be the {@link Rotation}-mixed ones. */
        boolean mixed(Kind kind) {
            return kind == Kind.INT8 && mixed;
        }
    }

    private void multiply(Activations a, Tensor w, Tensor out) {
        long n = a.n;
        long k = a.k;
        long m = w.rows();
        long wStride = Dnnl.uniformRowStride(w);
        Kind kind = kind(w.dtype(), n);
        MemorySegment outData = out.segment();
        long outStride = Dnnl.uniformRowStride(out);
        boolean copyOut = outStride < 0;
        if (copyOut) {
            outData = scratch.get(Scratch.OUT_COPY, n * m * 4);
            outStride = m * 4;
        }
        long os = n == 1 ? m : outStride / 4;
        MemorySegment src = a.source(kind);
        long srcStride = a.stride(kind);
        Plan plan = plan(kind, n, k, m, srcStride, os, false);
        boolean mixed = a.mixed(kind);
        WeightCache.Entry entry = weights.get(w, mixed, e -> initScales(e, kind, mixed, w, wStride));
        MemorySegment packed = entry.packed(plan.weightsMd(),
                (md, target) -> pack(kind, mixed, w, wStride, entry, md, target));
        switch (kind) {
            case F32, F16, BF16 -> plan.primitive().execute(src, packed, outData);
            case S8 -> plan.primitive().execute(src, packed, outData, entry.scales);
            case INT8 -> {
                plan.primitive().execute(src, packed, outData, entry.scales, a.rowScales);
                MemorySegment residual = a.residual();
                if (residual != null) {
                    // The accumulating primitive asks for the same layout, so this finds the same packed weights.
                    Plan add = plan(kind, n, k, m, srcStride, os, true);
                    MemorySegment addPacked = entry.packed(add.weightsMd(),
                            (md, target) -> pack(kind, mixed, w, wStride, entry, md, target));
                    add.primitive().execute(residual, addPacked, outData, entry.scales, a.residualScales);
                }
            }
        }
        if (copyOut) {
            for (long r = 0; r < n; r++) {
                MemorySegment.copy(outData, r * m * 4, out.segment(), out.rowOffset(r), m * 4);
            }
        }
    }

    /** The cached primitive of {@link #createPlan}, created on first use. */
    private Plan plan(Kind kind, long n, long k, long m, long srcStride, long dstStride, boolean accumulate) {
        LongKey key = new LongKey(kind.ordinal(), n, k, m, srcStride, dstStride, accumulate ? 1 : 0);
        Plan plan = plans.get(key);
        if (plan == null) {
            plan = createPlan(kind, n, k, m, srcStride, dstStride, accumulate);
            plans.put(key, plan);
        }
        return plan;
    }

    /**
     * A matmul primitive of {@code kind} for {@code n} rows ({@code srcStride} elements apart), {@code k} inputs
     * and {@code m} outputs ({@code dstStride} elements apart); with {@code accumulate} (int8 only) it adds its
     * product to the destination.
     *
     * <p>The int8 kind is described in 3-D, {@code [1, n, k] · [1, k, m]}, because its per-row activation scales
     * are applied by a binary-multiply post-op with a {@code [1, n, 1]} operand: oneDNN's AMX kernel takes that
     * as a per-channel broadcast, but sends the same {@code [n, 1]} operand of a 2-D matmul (and per-row source
     * scales) to its reference implementation.
     */
    private Plan createPlan(Kind kind, long n, long k, long m, long srcStride, long dstStride, boolean accumulate) {
        boolean int8 = kind == Kind.INT8;
        MemorySegment srcMd = int8
                ? Dnnl.md(dnnl_s8(), new long[] {1, n, k}, new long[] {n * srcStride, srcStride, 1})
                : Dnnl.md(kind.sourceType(), new long[] {n, k}, new long[] {srcStride, 1});
        MemorySegment anyMd = Dnnl.mdWithTag(kind.weightType(), int8 ? new long[] {1, k, m} : new long[] {k, m},
                dnnl_format_tag_any());
        MemorySegment dstMd = int8
                ? Dnnl.md(dnnl_f32(), new long[] {1, n, m}, new long[] {n * dstStride, dstStride, 1})
                : Dnnl.md(dnnl_f32(), new long[] {n, m}, new long[] {dstStride, 1});
        MemorySegment scalesMd = kind == Kind.S8 ? groupScalesMd(k, m)
                : int8 ? Dnnl.md(dnnl_f32(), new long[] {m}, new long[] {1}) : null;
        MemorySegment rowScalesMd = int8 ? Dnnl.md(dnnl_f32(), new long[] {1, n, 1}, new long[] {n, 1, 1}) : null;
        MemorySegment attr = MemorySegment.NULL;
        MemorySegment postOps = MemorySegment.NULL;
        dnnl.useThreads(dnnl.threadsFor(n * k * m, PARALLEL_MACS));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            if (kind == Kind.S8 || int8) {
                Dnnl.check(dnnl_primitive_attr_create(p), "dnnl_primitive_attr_create");
                attr = p.get(ValueLayout.ADDRESS, 0);
            }
            if (kind == Kind.S8) {
                // Integer weights are decompressed to bf16 and multiplied on AMX.
                Dnnl.check(dnnl_primitive_attr_set_fpmath_mode_v2(attr, dnnl_fpmath_mode_bf16(), 1),
                        "dnnl_primitive_attr_set_fpmath_mode_v2");
                MemorySegment groups = a.allocateFrom(ValueLayout.JAVA_LONG, GROUP, 1);
                Dnnl.check(dnnl_primitive_attr_set_scales(attr, DNNL_ARG_WEIGHTS(), 3, 2, groups, dnnl_f16()),
                        "dnnl_primitive_attr_set_scales");
            } else if (int8) {
                // One f32 scale per output channel: mask bit 2, the m dimension of the [1, k, m] weights.
                Dnnl.check(dnnl_primitive_attr_set_scales(attr, DNNL_ARG_WEIGHTS(), 1 << 2, 0, MemorySegment.NULL,
                        dnnl_f32()), "dnnl_primitive_attr_set_scales");
                Dnnl.check(dnnl_post_ops_create(p), "dnnl_post_ops_create");
                postOps = p.get(ValueLayout.ADDRESS, 0);
                Dnnl.check(dnnl_post_ops_append_binary(postOps, dnnl_binary_mul(), rowScalesMd),
                        "dnnl_post_ops_append_binary");
                if (accumulate) {
                    Dnnl.check(dnnl_post_ops_append_sum(postOps, 1, 0, dnnl_data_type_undef()),
                            "dnnl_post_ops_append_sum");
                }
                Dnnl.check(dnnl_primitive_attr_set_post_ops(attr, postOps), "dnnl_primitive_attr_set_post_ops");
            }
            MemorySegment pdp = a.allocate(ValueLayout.ADDRESS);
            Dnnl.check(dnnl_matmul_primitive_desc_create(pdp, dnnl.engine, srcMd, anyMd, MemorySegment.NULL, dstMd,
                    attr), "dnnl_matmul_primitive_desc_create(" + kind + ", n=" + n + ", k=" + k + ", m=" + m + ")");
            MemorySegment pd = Dnnl.pdOut(pdp);
            MemorySegment weightsMd = Dnnl.cloneMd(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md(), 0));
            int[] args = {DNNL_ARG_SRC(), DNNL_ARG_WEIGHTS(), DNNL_ARG_DST()};
            MemorySegment[] mds = {srcMd, weightsMd, dstMd};
            if (kind == Kind.S8) {
                args = new int[] {DNNL_ARG_SRC(), DNNL_ARG_WEIGHTS(), DNNL_ARG_DST(),
                        DNNL_ARG_ATTR_SCALES() | DNNL_ARG_WEIGHTS()};
                mds = new MemorySegment[] {srcMd, weightsMd, dstMd, scalesMd};
            } else if (int8) {
                // DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1: the operand of post-op 0.
                args = new int[] {DNNL_ARG_SRC(), DNNL_ARG_WEIGHTS(), DNNL_ARG_DST(),
                        DNNL_ARG_ATTR_SCALES() | DNNL_ARG_WEIGHTS(),
                        DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE() | DNNL_ARG_SRC_1()};
                mds = new MemorySegment[] {srcMd, weightsMd, dstMd, scalesMd, rowScalesMd};
            }
            return new Plan(dnnl.primitive(pd, args, mds), weightsMd);
        } finally {
            if (!postOps.equals(MemorySegment.NULL)) {
                dnnl_post_ops_destroy(postOps);
            }
            if (!attr.equals(MemorySegment.NULL)) {
                dnnl_primitive_attr_destroy(attr);
            }
            Dnnl.destroyMd(srcMd);
            Dnnl.destroyMd(anyMd);
            Dnnl.destroyMd(dstMd);
            Dnnl.destroyMd(scalesMd);
            Dnnl.destroyMd(rowScalesMd);
        }
    }

    private static MemorySegment groupScalesMd(long k, long m) {
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
     * For integer kinds, computes the scales into the new entry, and the integers into temporary memory that
     * the first packing consumes.
     */
    private static WeightCache.Entry initScales(WeightCache.Entry e, Kind kind, boolean mixed, Tensor w,
                                                long wStride) {
        if (kind == Kind.S8 || kind == Kind.INT8) {
            e.scales = e.allocate(scaleBytes(kind, w));
            e.unpacked = e.temporary(WeightPacking.quantBytes(w.dtype(), w.rows(), w.cols()));
            integers(kind, mixed, w, wStride, e.unpacked, e.scales);
        }
        return e;
    }

    private static long scaleBytes(Kind kind, Tensor w) {
        return kind == Kind.INT8 ? w.rows() * 4 : WeightPacking.scaleBytes(w.dtype(), w.rows(), w.cols());
    }

    /**
     * The s8 integers of {@code w} in row-major {@code [m, k]} order and their scales, for an integer kind
     * ({@code mixed}: of the int8 kind's {@link Rotation}-mixed form).
     */
    private static void integers(Kind kind, boolean mixed, Tensor w, long wStride, MemorySegment quant,
                                 MemorySegment scales) {
        int m = Math.toIntExact(w.rows());
        int k = Math.toIntExact(w.cols());
        if (kind == Kind.INT8) {
            WeightPacking.toChannelS8(w.dtype(), w.segment(), wStride, m, k, mixed, quant, scales);
        } else {
            WeightPacking.unpack(w.dtype(), w.segment(), wStride, m, k, quant, scales);
        }
    }

    /** Converts {@code w} ({@code mixed}: its mixed form) into the layout {@code md} at {@code target}. */
    private void pack(Kind kind, boolean mixed, Tensor w, long wStride, WeightCache.Entry entry, MemorySegment md,
                      MemorySegment target) {
        long m = w.rows();
        long k = w.cols();
        if (kind == Kind.S8 || kind == Kind.INT8) {
            if (entry.unpacked == null) {
                // A second layout of the same weights: convert again (the scales come out the same).
                entry.unpacked = entry.temporary(WeightPacking.quantBytes(w.dtype(), m, k));
                // Shared: the conversion writes the scales from several threads.
                try (Arena tmp = Arena.ofShared()) {
                    integers(kind, mixed, w, wStride, entry.unpacked, tmp.allocate(scaleBytes(kind, w), 64));
                }
            }
            // Row-major [m, k] integers: the ba layout of [k, m] (of [1, k, m] for the 3-D int8 primitive).
            MemorySegment from = kind == Kind.INT8
                    ? Dnnl.md(dnnl_s8(), new long[] {1, k, m}, new long[] {k * m, 1, k})
                    : Dnnl.mdWithTag(dnnl_s8(), new long[] {k, m}, dnnl_ba());
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
