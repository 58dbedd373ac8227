package dev.isthmus.conformance;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Op;
import dev.isthmus.api.Rope;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;
import dev.isthmus.api.spi.Backend;

/** Forwards every call to another backend; subclasses override the ops they break. Never closes it. */
class DelegatingBackend implements Backend {
    protected final Backend delegate;

    DelegatingBackend(Backend delegate) {
        this.delegate = delegate;
    }

    @Override
    public String name() {
        return delegate.name() + "-decorated";
    }

    @Override
    public Device device() {
        return delegate.device();
    }

    @Override
    public boolean supports(Op op, DType... dtypes) {
        return delegate.supports(op, dtypes);
    }

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        return delegate.allocate(dtype, shape);
    }

    @Override
    public void release(Tensor tensor) {
        delegate.release(tensor);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        delegate.copy(src, dst);
    }

    @Override
    public void synchronize() {
        delegate.synchronize();
    }

    @Override
    public void matmul(Tensor x, Tensor w, Tensor out) {
        delegate.matmul(x, w, out);
    }

    @Override
    public void dequantize(Tensor src, Tensor dst) {
        delegate.dequantize(src, dst);
    }

    @Override
    public void embeddingLookup(Tensor table, int[] ids, Tensor out) {
        delegate.embeddingLookup(table, ids, out);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out) {
        delegate.rmsNorm(x, weight, eps, out);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out) {
        delegate.layerNorm(x, weight, bias, eps, out);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        delegate.add(a, b, out);
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        delegate.mul(a, b, out);
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        delegate.scale(x, s, out);
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        delegate.silu(x, out);
    }

    @Override
    public void gelu(Tensor x, Tensor out) {
        delegate.gelu(x, out);
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        delegate.swiglu(gate, up, out);
    }

    @Override
    public void softmax(Tensor x, Tensor out) {
        delegate.softmax(x, out);
    }

    @Override
    public void rope(Tensor x, int[] positions, Rope rope) {
        delegate.rope(x, positions, rope);
    }

    @Override
    public void copyRows(Tensor src, Tensor dst, int[] rows) {
        delegate.copyRows(src, dst, rows);
    }

    @Override
    public void attention(Tensor q, Tensor kCache, Tensor vCache, KvLayout layout, Attention params, Tensor out) {
        delegate.attention(q, kCache, vCache, layout, params, out);
    }

    @Override
    public int[] argmax(Tensor x) {
        return delegate.argmax(x);
    }

    @Override
    public TopK topK(Tensor x, int k) {
        return delegate.topK(x, k);
    }

    @Override
    public void close() {
    }
}
