package dev.isthmus.api;

/**
 * The operator vocabulary of the SPI, used by the capability query
 * {@link dev.isthmus.api.spi.Backend#supports(Op, DType...)}.
 *
 * <p>Each constant documents which dtypes its capability query is about.
 */
public enum Op {
    /** {@code out = x · wᵀ}; dtypes: the weight's. */
    MATMUL,
    /** Block formats and half floats to F32; dtypes: the source's. */
    DEQUANTIZE,
    /** Rows of a table gathered by token id; dtypes: the table's. */
    EMBEDDING_LOOKUP,
    /** dtypes: the weight's. */
    RMS_NORM,
    /** dtypes: the weight's. */
    LAYER_NORM,
    /** Element-wise, with row broadcast; dtypes: F32. */
    ADD,
    /** Element-wise, with row broadcast; dtypes: F32. */
    MUL,
    /** Multiply by a scalar; dtypes: F32. */
    SCALE,
    /** dtypes: F32. */
    SILU,
    /** tanh approximation, as ggml and GPT-2; dtypes: F32. */
    GELU,
    /** {@code silu(gate) * up}, the gated FFN of Llama; dtypes: F32. */
    SWIGLU,
    /** Row-wise; dtypes: F32. */
    SOFTMAX,
    /** Rotary position embedding, in place; dtypes: F32. */
    ROPE,
    /** F32 rows scattered into a (KV cache) tensor; dtypes: the destination's. */
    COPY_ROWS,
    /** Fused scaled-dot-product attention over a KV cache; dtypes: the cache's. */
    ATTENTION,
    /** Index of the largest value of each row; dtypes: F32. */
    ARGMAX,
    /** The k largest values of each row and their indices; dtypes: F32. */
    TOP_K
}
