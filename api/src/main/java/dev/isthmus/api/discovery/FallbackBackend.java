package dev.isthmus.api.discovery;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Op;
import dev.isthmus.api.Rope;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import dev.isthmus.api.spi.Backend;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * A backend that runs each op on {@code primary} when it supports it and otherwise on a host-memory
 * {@code fallback} (the CPU backend), as ggml's scheduler and ONNX Runtime's execution providers do.
 *
 * <p>When the primary's memory is not host memory, the operands of a fallen-back op are copied to the
 * host and the output copied back. Every op × dtype that falls back is logged once (logger
 * {@code dev.isthmus.fallback}) and listed by {@link #fallbacks()}.
 */
public final class FallbackBackend implements Backend {
    private static final System.Logger LOG = System.getLogger("dev.isthmus.fallback");

    private final Backend primary;
    private final Backend fallback;
    private final Set<Capabilities.Pair> seen = ConcurrentHashMap.newKeySet();

    /**
     * @throws IllegalArgumentException if the fallback's memory is not host memory
     */
    public FallbackBackend(Backend primary, Backend fallback) {
        if (!fallback.device().hostAccessible()) {
            throw new IllegalArgumentException("fallback backend " + fallback.name() + " must use host memory");
        }
        this.primary = primary;
        this.fallback = fallback;
    }

    /** Wraps {@code primary} only if some combination of {@link Capabilities#matrix()} needs a fallback. */
    public static Backend wrapIfNeeded(Backend primary, Backend fallback) {
        return Capabilities.gaps(primary).isEmpty() ? primary : new FallbackBackend(primary, fallback);
    }

    /** The op × dtype combinations that have fallen back so far. */
    public List<Capabilities.Pair> fallbacks() {
        return List.copyOf(seen);
    }

    public Backend primary() {
        return primary;
    }

    @Override
    public String name() {
        return primary.name() + "+" + fallback.name();
    }

    @Override
    public Device device() {
        return primary.device();
    }

    @Override
    public boolean supports(Op op, DType... dtypes) {
        return primary.supports(op, dtypes) || fallback.supports(op, dtypes);
    }

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        return primary.allocate(dtype, shape);
    }

    @Override
    public void release(Tensor tensor) {
        primary.release(tensor);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        primary.copy(src, dst);
    }

    @Override
    public void synchronize() {
        primary.synchronize();
    }

    private boolean onPrimary(Op op, DType dtype) {
        if (primary.supports(op, dtype)) {
            return true;
        }
        if (seen.add(new Capabilities.Pair(op, dtype))) {
            LOG.log(System.Logger.Level.INFO, "{0} lacks {1}({2}); running it on {3}",
                    primary.name(), op, dtype, fallback.name());
        }
        return false;
    }

    /**
     * Runs {@code body} on the fallback with host copies of {@code operands}; operands listed in
     * {@code outputs} are copied back afterwards.
     */
    private void onHost(List<Tensor> operands, List<Tensor> outputs, Consumer<Tensor[]> body) {
        if (primary.device().hostAccessible()) {
            body.accept(operands.toArray(Tensor[]::new));
            return;
        }
        List<Tensor> temps = new ArrayList<>();
        Tensor[] host = new Tensor[operands.size()];
        try {
            for (int i = 0; i < host.length; i++) {
                Tensor t = operands.get(i);
                if (t == null || t.device().hostAccessible()) {
                    host[i] = t;
                    continue;
                }
                host[i] = fallback.allocate(t.dtype(), t.shape());
                temps.add(host[i]);
                primary.copy(t, host[i]);
            }
            body.accept(host);
            for (int i = 0; i < host.length; i++) {
                Tensor t = operands.get(i);
                if (t != null && outputs.contains(t) && host[i] != t) {
                    primary.copy(host[i], t);
                }
            }
        } finally {
            temps.forEach(fallback::release);
        }
    }

    @Override
    public void matmul(Tensor x, Tensor w, Tensor out) {
        if (onPrimary(Op.MATMUL, w.dtype())) {
            primary.matmul(x, w, out);
        } else {
            onHost(Arrays.asList(x, w, out), List.of(out), t -> fallback.matmul(t[0], t[1], t[2]));
        }
    }

    @Override
    public void matmul(Tensor x, Tensor[] weights, Tensor[] outs) {
        boolean allOnPrimary = true;
        for (Tensor w : weights) {
            allOnPrimary &= onPrimary(Op.MATMUL, w.dtype());
        }
        if (allOnPrimary) {
            primary.matmul(x, weights, outs);
        } else {
            Backend.super.matmul(x, weights, outs);
        }
    }

    @Override
    public void matmulSwiglu(Tensor x, Tensor gate, Tensor up, Tensor out, Tensor upOut) {
        if (onPrimary(Op.MATMUL, gate.dtype()) && onPrimary(Op.MATMUL, up.dtype())
                && onPrimary(Op.SWIGLU, DType.F32)) {
            primary.matmulSwiglu(x, gate, up, out, upOut);
        } else {
            Backend.super.matmulSwiglu(x, gate, up, out, upOut);
        }
    }

    @Override
    public void dequantize(Tensor src, Tensor dst) {
        if (onPrimary(Op.DEQUANTIZE, src.dtype())) {
            primary.dequantize(src, dst);
        } else {
            onHost(Arrays.asList(src, dst), List.of(dst), t -> fallback.dequantize(t[0], t[1]));
        }
    }

    @Override
    public void embeddingLookup(Tensor table, int[] ids, Tensor out) {
        if (onPrimary(Op.EMBEDDING_LOOKUP, table.dtype())) {
            primary.embeddingLookup(table, ids, out);
        } else {
            onHost(Arrays.asList(table, out), List.of(out), t -> fallback.embeddingLookup(t[0], ids, t[1]));
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        if (onPrimary(Op.RMS_NORM, weight.dtype())) {
            primary.rmsNorm(x, weight, eps, out);
        } else {
            onHost(Arrays.asList(x, weight, out), List.of(out), t -> fallback.rmsNorm(t[0], t[1], eps, t[2]));
        }
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        if (onPrimary(Op.LAYER_NORM, weight == null ? DType.F32 : weight.dtype())) {
            primary.layerNorm(x, weight, bias, eps, out);
        } else {
            onHost(Arrays.asList(x, weight, bias, out), List.of(out),
                    t -> fallback.layerNorm(t[0], t[1], t[2], eps, t[3]));
        }
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        if (onPrimary(Op.ADD, DType.F32)) {
            primary.add(a, b, out);
        } else {
            onHost(Arrays.asList(a, b, out), List.of(out), t -> fallback.add(t[0], t[1], t[2]));
        }
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        if (onPrimary(Op.MUL, DType.F32)) {
            primary.mul(a, b, out);
        } else {
            onHost(Arrays.asList(a, b, out), List.of(out), t -> fallback.mul(t[0], t[1], t[2]));
        }
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        if (onPrimary(Op.SCALE, DType.F32)) {
            primary.scale(x, s, out);
        } else {
            onHost(Arrays.asList(x, out), List.of(out), t -> fallback.scale(t[0], s, t[1]));
        }
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        if (onPrimary(Op.SILU, DType.F32)) {
            primary.silu(x, out);
        } else {
            onHost(Arrays.asList(x, out), List.of(out), t -> fallback.silu(t[0], t[1]));
        }
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        if (onPrimary(Op.GELU, DType.F32)) {
            primary.gelu(x, out);
        } else {
            onHost(Arrays.asList(x, out), List.of(out), t -> fallback.gelu(t[0], t[1]));
        }
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        if (onPrimary(Op.SWIGLU, DType.F32)) {
            primary.swiglu(gate, up, out);
        } else {
            onHost(Arrays.asList(gate, up, out), List.of(out), t -> fallback.swiglu(t[0], t[1], t[2]));
        }
    }

    @Override
    public void softmax(Tensor x, Tensor out) {
        if (onPrimary(Op.SOFTMAX, DType.F32)) {
            primary.softmax(x, out);
        } else {
            onHost(Arrays.asList(x, out), List.of(out), t -> fallback.softmax(t[0], t[1]));
        }
    }

    @Override
    public void rope(Tensor x, int[] positions, Rope rope) {
        if (onPrimary(Op.ROPE, DType.F32)) {
            primary.rope(x, positions, rope);
        } else {
            onHost(List.of(x), List.of(x), t -> fallback.rope(t[0], positions, rope));
        }
    }

    @Override
    public void copyRows(Tensor src, Tensor dst, int[] rows) {
        if (onPrimary(Op.COPY_ROWS, dst.dtype())) {
            primary.copyRows(src, dst, rows);
        } else {
            onHost(Arrays.asList(src, dst), List.of(dst), t -> fallback.copyRows(t[0], t[1], rows));
        }
    }

    @Override
    public void attention(Tensor q, Tensor kCache, Tensor vCache, KvLayout layout, Attention params, Tensor out) {
        if (onPrimary(Op.ATTENTION, kCache.dtype())) {
            primary.attention(q, kCache, vCache, layout, params, out);
        } else {
            onHost(Arrays.asList(q, kCache, vCache, out), List.of(out),
                    t -> fallback.attention(t[0], t[1], t[2], layout, params, t[3]));
        }
    }

    @Override
    public int[] argmax(Tensor x) {
        if (onPrimary(Op.ARGMAX, DType.F32)) {
            return primary.argmax(x);
        }
        int[][] result = new int[1][];
        onHost(List.of(x), List.of(), t -> result[0] = fallback.argmax(t[0]));
        return result[0];
    }

    @Override
    public TopK topK(Tensor x, int k) {
        if (onPrimary(Op.TOP_K, DType.F32)) {
            return primary.topK(x, k);
        }
        TopK[] result = new TopK[1];
        onHost(List.of(x), List.of(), t -> result[0] = fallback.topK(t[0], k));
        return result[0];
    }

    @Override
    public void close() {
        try {
            primary.close();
        } finally {
            fallback.close();
        }
    }
}
