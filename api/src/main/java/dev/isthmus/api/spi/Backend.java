package dev.isthmus.api.spi;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.Device;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Op;
import dev.isthmus.api.Rope;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.TopK;

/**
 * A set of operators on one device: what a hardware vendor implements and what the transformer graph
 * calls.
 *
 * <p><b>Conventions.</b> Activations are F32 matrices {@code [rows, cols]} (any tensor is viewed as
 * {@link Tensor#rows()} × {@link Tensor#cols()}). A batch mixes rows of several sequences at different
 * positions: per-row metadata ({@code ids}, {@code positions}, {@link KvLayout}) comes as host arrays,
 * which a device backend uploads as it needs. Unless stated otherwise an output may alias an input of the
 * same shape, and an operator writes nothing outside its output. Operators may run asynchronously on
 * devices; {@link #copy} to the host and the methods returning host values synchronize.
 *
 * <p>Every operator must either work for every dtype combination for which {@link #supports} answers
 * true, or that query must answer false; the conformance suite holds a backend to this.
 */
public interface Backend extends AutoCloseable {

    /** The provider's name, e.g. {@code cpu}. */
    String name();

    /** Where tensors allocated by this backend live. */
    Device device();

    /** Whether {@code op} is implemented for these dtypes (see {@link Op} for which dtypes each op names). */
    boolean supports(Op op, DType... dtypes);

    /** A zero-filled tensor on this backend's device, freed by {@link #release} or {@link #close}. */
    Tensor allocate(DType dtype, long... shape);

    /** Frees a tensor from {@link #allocate}; other tensors are ignored. */
    void release(Tensor tensor);

    /**
     * Copies bytes between tensors of the same dtype and shape, where each is on the host or on this
     * backend's device (host↔device transfer is always this explicit call).
     */
    void copy(Tensor src, Tensor dst);

    /** Waits until all queued work has finished. */
    void synchronize();

    /**
     * Matrix product with the weights transposed: {@code out[n, m] = x[n, k] · w[m, k]ᵀ}. Quantized
     * weights are dequantized on the fly (fused), never materialized.
     *
     * @param x   F32 activations {@code [n, k]}
     * @param w   weights {@code [m, k]} in any supported dtype
     * @param out F32 {@code [n, m]}; must not alias {@code x}
     */
    void matmul(Tensor x, Tensor w, Tensor out);

    /**
     * Several products of the same activations, {@code outs[i] = x · weights[i]ᵀ} (e.g. the Q, K and V
     * projections). A backend may quantize or convert {@code x} once and run all the products in one pass; the
     * default runs {@link #matmul} for each.
     *
     * @param x       F32 activations {@code [n, k]}
     * @param weights weights {@code [m_i, k]}
     * @param outs    F32 {@code [n, m_i]}, one per weight; must not alias {@code x} or each other
     */
    default void matmul(Tensor x, Tensor[] weights, Tensor[] outs) {
        if (weights.length != outs.length) {
            throw new IllegalArgumentException("matmul: " + weights.length + " weights but " + outs.length
                    + " outputs");
        }
        for (int i = 0; i < weights.length; i++) {
            matmul(x, weights[i], outs[i]);
        }
    }

    /**
     * The SwiGLU feed-forward input {@code out = silu(x · gateᵀ) * (x · upᵀ)}. A backend may fuse the two
     * products and the activation; the default runs {@link #matmul} twice and {@link #swiglu}.
     *
     * @param x     F32 activations {@code [n, k]}
     * @param gate  weights {@code [m, k]}
     * @param up    weights {@code [m, k]}
     * @param out   F32 {@code [n, m]}; must not alias {@code x}
     * @param upOut F32 {@code [n, m]} scratch for {@code x · upᵀ} (its contents afterwards are unspecified);
     *              must not alias {@code x} or {@code out}
     */
    default void matmulSwiglu(Tensor x, Tensor gate, Tensor up, Tensor out, Tensor upOut) {
        matmul(x, gate, out);
        matmul(x, up, upOut);
        swiglu(out, upOut, out);
    }

    /** Converts {@code src} (any supported dtype) to F32 {@code dst} of the same shape. */
    void dequantize(Tensor src, Tensor dst);

    /** {@code out[i] = table[ids[i]]} as F32; the table may be quantized. */
    void embeddingLookup(Tensor table, int[] ids, Tensor out);

    /** {@code out = x / sqrt(mean(x²) + eps) * weight}, per row; {@code weight} has one row of {@code cols}. */
    void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out);

    /**
     * {@code out = (x - mean) / sqrt(var + eps) * weight + bias}, per row; {@code weight} and {@code bias}
     * may be {@code null} (meaning 1 and 0).
     */
    void layerNorm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor out);

    /** {@code out = a + b}; {@code b} has either the rows of {@code a} or a single row broadcast to all. */
    void add(Tensor a, Tensor b, Tensor out);

    /** {@code out = a * b} element-wise; {@code b} has either the rows of {@code a} or a single row. */
    void mul(Tensor a, Tensor b, Tensor out);

    /** {@code out = x * s}. */
    void scale(Tensor x, float s, Tensor out);

    /** {@code out = x * sigmoid(x)}. */
    void silu(Tensor x, Tensor out);

    /** GELU, tanh approximation: {@code 0.5x(1 + tanh(sqrt(2/π)(x + 0.044715x³)))}. */
    void gelu(Tensor x, Tensor out);

    /** Gated FFN fusion: {@code out = silu(gate) * up}. */
    void swiglu(Tensor gate, Tensor up, Tensor out);

    /** Row-wise {@code out = softmax(x)}. */
    void softmax(Tensor x, Tensor out);

    /**
     * Rotary position embedding in place.
     *
     * @param x         F32 {@code [n, heads, headDim]}
     * @param positions per row of {@code x} (per {@code n}), its position
     */
    void rope(Tensor x, int[] positions, Rope rope);

    /**
     * Scatters F32 rows into {@code dst}: {@code dst[rows[i]] = convert(src[i])}, e.g. new keys into a
     * KV cache whose dtype may be F32, F16 or BF16. The index is into the outermost dimension of both
     * tensors: for a cache {@code [slots, kvHeads, headDim]} it names a slot, and {@code src} is
     * {@code [rows.length, kvHeads, headDim]} (or the same data as {@code [rows.length, kvHeads * headDim]}).
     */
    void copyRows(Tensor src, Tensor dst, int[] rows);

    /**
     * Fused scaled-dot-product attention reading keys and values from a cache, for a batch of query rows
     * that may belong to different sequences at different positions. GQA/MQA: query head {@code h} reads
     * KV head {@code h / (heads / kvHeads)}.
     *
     * @param q      F32 {@code [n, heads, headDim]}
     * @param kCache {@code [slots, kvHeads, headDim]}
     * @param vCache {@code [slots, kvHeads, headDim]}
     * @param layout which slots each query row sees (and their positions)
     * @param out    F32 {@code [n, heads, headDim]}; must not alias {@code q}
     */
    void attention(Tensor q, Tensor kCache, Tensor vCache, KvLayout layout, Attention params, Tensor out);

    /** For each row of F32 {@code x}, the index of its largest value (lowest index on ties). */
    int[] argmax(Tensor x);

    /** For each row of F32 {@code x}, its {@code k} largest values and their indices. */
    TopK topK(Tensor x, int k);

    /** Frees everything this backend allocated. */
    @Override
    void close();
}
