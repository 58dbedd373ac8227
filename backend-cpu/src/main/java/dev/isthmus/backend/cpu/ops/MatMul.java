package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.format.WeightFormat;
import dev.isthmus.backend.cpu.format.WeightFormats;
import dev.isthmus.backend.cpu.kernel.FloatKernels;
import dev.isthmus.backend.cpu.kernel.LittleEndian;
import dev.isthmus.backend.cpu.parallel.RangeBody;
import dev.isthmus.backend.cpu.parallel.Scratch;
import dev.isthmus.backend.cpu.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;

/**
 * {@code out[n, m] = x[n, k] · w[m, k]ᵀ} with the weights decoded on the fly.
 *
 * <p>Work is split over weight rows, so each thread streams its own part of the weight matrix exactly
 * once per call (or per panel pass). With few activation rows every output is a fused
 * {@link WeightFormat#dot}, decoding each block in registers. With more rows a small panel of weight rows
 * is decoded into a per-thread buffer (never the whole matrix) and multiplied four weight rows by four
 * activation rows at a time, so decoding and weight traffic are shared across the batch and every loaded
 * vector feeds four FMAs.
 */
public final class MatMul {
    private static final String OP = "matmul";
    /** From this many activation rows on, decoding a panel once beats a fused dot per row. */
    private static final int PANEL_MIN_ROWS = 4;
    /** Size of the decoded weight panel: fits in L2 next to a tile of activations. */
    private static final long PANEL_BYTES = 128 * 1024;
    private static final int MAX_PANEL_ROWS = 16;
    /** Multiply-adds below which a chunk is not worth handing to another thread. */
    private static final long MIN_CHUNK_WORK = 1 << 15;

    private MatMul() {
    }

    public static void run(WorkerPool pool, Tensor x, Tensor w, Tensor out) {
        check(x, w, out);
        if (x.rows() == 0 || w.rows() == 0) {
            return;
        }
        if (NativeMatMul.run(pool, x, w, out)) {
            return;
        }
        runJava(pool, x, w, out);
    }

    /** {@code outs[i] = x · weights[i]ᵀ} for every i, in one pass where the C kernels take all the weights. */
    public static void runAll(WorkerPool pool, Tensor x, Tensor[] weights, Tensor[] outs) {
        if (weights.length != outs.length) {
            throw Check.fail(OP, weights.length + " weights but " + outs.length + " outputs");
        }
        for (int i = 0; i < weights.length; i++) {
            check(x, weights[i], outs[i]);
            for (int j = 0; j < i; j++) {
                Check.disjoint(OP, "outs[" + i + "]", outs[i], "outs[" + j + "]", outs[j]);
            }
        }
        if (x.rows() == 0 || NativeMatMul.runAll(pool, x, weights, outs)) {
            return;
        }
        for (int i = 0; i < weights.length; i++) {
            run(pool, x, weights[i], outs[i]);
        }
    }

    /**
     * {@code out = silu(x · gateᵀ) * (x · upᵀ)}; {@code upOut} (the shape of {@code out}) receives intermediate
     * products.
     */
    public static void runSwiglu(WorkerPool pool, Tensor x, Tensor gate, Tensor up, Tensor out, Tensor upOut) {
        check(x, gate, out);
        check(x, up, upOut);
        if (gate.rows() != up.rows()) {
            throw Check.fail(OP, "gate " + Check.describe(gate) + " and up " + Check.describe(up)
                    + " must have the same rows");
        }
        Check.disjoint(OP, "out", out, "upOut", upOut);
        if (x.rows() == 0 || gate.rows() == 0) {
            return;
        }
        if (NativeMatMul.runSwiglu(pool, x, gate, up, out, upOut)) {
            return;
        }
        run(pool, x, gate, out);
        run(pool, x, up, upOut);
        SwiGlu.run(pool, out, upOut, out);
    }

    private static void check(Tensor x, Tensor w, Tensor out) {
        Check.operand(OP, "x", x, DType.F32);
        Check.operand(OP, "w", w);
        Check.operand(OP, "out", out, DType.F32);
        if (!WeightFormats.supports(w.dtype())) {
            throw Check.fail(OP, "w " + Check.describe(w) + " has a dtype the CPU backend cannot multiply");
        }
        if (x.cols() != w.cols()) {
            throw Check.fail(OP, "x " + Check.describe(x) + " and w " + Check.describe(w) + " disagree on k");
        }
        if (out.rows() != x.rows() || out.cols() != w.rows()) {
            throw Check.fail(OP, "out " + Check.describe(out) + " must be [" + x.rows() + ", " + w.rows()
                    + "] for x " + Check.describe(x) + " and w " + Check.describe(w));
        }
        Check.disjoint(OP, "out", out, "x", x);
    }

    private static void runJava(WorkerPool pool, Tensor x, Tensor w, Tensor out) {
        int n = (int) x.rows();
        int k = (int) x.cols();
        int m = (int) w.rows();
        long[] xRows = rowOffsets(x, n);
        long[] outRows = rowOffsets(out, n);
        WeightFormat format = WeightFormats.of(w.dtype());
        int grain = (int) Math.max(1, MIN_CHUNK_WORK / Math.max(1L, (long) k * n));
        RangeBody body = n < PANEL_MIN_ROWS
                ? fusedRows(format, x.segment(), xRows, w, out.segment(), outRows, k)
                : decodedPanels(format, x.segment(), xRows, w, out.segment(), outRows, k);
        pool.parallelFor(m, grain, body);
    }

    private static long[] rowOffsets(Tensor t, int rows) {
        long[] offsets = new long[rows];
        for (int i = 0; i < rows; i++) {
            offsets[i] = t.rowOffset(i);
        }
        return offsets;
    }

    private static RangeBody fusedRows(WeightFormat format, MemorySegment x, long[] xRows, Tensor w,
                                       MemorySegment out, long[] outRows, int k) {
        MemorySegment weights = w.segment();
        return (from, to) -> {
            for (int r = from; r < to; r++) {
                long wRow = w.rowOffset(r);
                for (int i = 0; i < xRows.length; i++) {
                    LittleEndian.f32(out, outRows[i] + 4L * r, format.dot(weights, wRow, x, xRows[i], k));
                }
            }
        };
    }

    private static RangeBody decodedPanels(WeightFormat format, MemorySegment x, long[] xRows, Tensor w,
                                           MemorySegment out, long[] outRows, int k) {
        MemorySegment weights = w.segment();
        boolean alreadyF32 = format.dtype() == DType.F32;
        int panelRows = Math.clamp(PANEL_BYTES / (4L * Math.max(k, 1)), 1, MAX_PANEL_ROWS);
        int n = xRows.length;
        return (from, to) -> {
            Scratch scratch = Scratch.current();
            MemorySegment panel = alreadyF32 ? weights : scratch.segment(Scratch.PRIMARY, 4L * k * panelRows);
            long[] panelOffsets = scratch.longs(panelRows);
            float[] results = scratch.floats(16);
            for (int first = from; first < to; first += panelRows) {
                int rows = Math.min(panelRows, to - first);
                for (int r = 0; r < rows; r++) {
                    if (alreadyF32) {
                        panelOffsets[r] = w.rowOffset(first + r);
                    } else {
                        panelOffsets[r] = 4L * k * r;
                        format.dequantize(weights, w.rowOffset(first + r), panel, panelOffsets[r], k);
                    }
                }
                int i = 0;
                for (; i + 4 <= n; i += 4) {
                    int r = 0;
                    for (; r + 4 <= rows; r += 4) {
                        FloatKernels.dot4x4(panel, panelOffsets[r], panelOffsets[r + 1], panelOffsets[r + 2],
                                panelOffsets[r + 3], x, xRows[i], xRows[i + 1], xRows[i + 2], xRows[i + 3], k,
                                results, 0);
                        for (int q = 0; q < 4; q++) {
                            long col = 4L * (first + r + q);
                            for (int t = 0; t < 4; t++) {
                                LittleEndian.f32(out, outRows[i + t] + col, results[4 * q + t]);
                            }
                        }
                    }
                    for (; r < rows; r++) {
                        FloatKernels.dot4(panel, panelOffsets[r], x, xRows[i], xRows[i + 1], xRows[i + 2],
                                xRows[i + 3], k, results, 0);
                        long col = 4L * (first + r);
                        for (int t = 0; t < 4; t++) {
                            LittleEndian.f32(out, outRows[i + t] + col, results[t]);
                        }
                    }
                }
                for (; i < n; i++) {
                    for (int r = 0; r < rows; r++) {
                        LittleEndian.f32(out, outRows[i] + 4L * (first + r),
                                FloatKernels.dot(panel, panelOffsets[r], x, xRows[i], k));
                    }
                }
            }
        };
    }
}
