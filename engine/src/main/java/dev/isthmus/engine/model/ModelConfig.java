package dev.isthmus.engine.model;

import dev.isthmus.api.RopeLayout;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFormatException;

import java.util.Locale;

/**
 * The hyper-parameters of a decoder-only transformer, read from GGUF-style metadata
 * ({@code {arch}.embedding_length} and friends).
 *
 * @param architecture    {@code general.architecture}
 * @param dim             embedding width
 * @param layers          transformer blocks
 * @param heads           query heads
 * @param kvHeads         key/value heads (fewer than {@code heads}: GQA; one: MQA)
 * @param headDim         width of one head
 * @param ffnDim          hidden width of the feed-forward network
 * @param vocabSize       rows of the embedding table
 * @param contextLength   positions the model was trained for
 * @param norm            RMSNorm or LayerNorm
 * @param normEps         epsilon of the norms
 * @param positions       rotary or ALiBi
 * @param ropeLayout      pairing of rotated dimensions
 * @param ropeDims        rotated dimensions per head
 * @param ropeTheta       RoPE base frequency
 * @param ropeFreqScale   linear RoPE scaling (1 for none)
 * @param activation      FFN kind
 * @param slidingWindow   attention window (0: none)
 */
public record ModelConfig(String architecture, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
                          int vocabSize, int contextLength, Norm norm, float normEps, Positions positions,
                          RopeLayout ropeLayout, int ropeDims, float ropeTheta, float ropeFreqScale,
                          Activation activation, int slidingWindow) {

    /** Normalization before attention and FFN. */
    public enum Norm { RMS, LAYER }

    /** How positions enter attention. */
    public enum Positions { ROPE, ALIBI }

    /** The feed-forward network. */
    public enum Activation {
        /** {@code down(silu(gate(x)) * up(x))}: Llama, Mistral, Qwen2. */
        SWIGLU
    }

    /**
     * Reads the config of a supported architecture.
     *
     * @param vocabRows rows of {@code token_embd.weight}, used when the metadata has no vocabulary size
     * @throws ModelFormatException naming the key or architecture that is missing or unsupported
     */
    public static ModelConfig from(Metadata m, int vocabRows, String source) {
        String arch = m.require("general.architecture");
        RopeLayout layout = switch (arch) {
            case "llama", "mistral" -> RopeLayout.NORMAL;
            case "qwen2" -> RopeLayout.NEOX;
            default -> throw new ModelFormatException(source + ": unsupported architecture '" + arch
                    + "' (supported: llama, mistral, qwen2)");
        };
        int dim = required(m, source, arch + ".embedding_length");
        int layers = required(m, source, arch + ".block_count");
        int heads = required(m, source, arch + ".attention.head_count");
        int kvHeads = m.getInt(arch + ".attention.head_count_kv", heads);
        int headDim = m.getInt(arch + ".attention.key_length", heads > 0 ? dim / heads : 0);
        int ffnDim = required(m, source, arch + ".feed_forward_length");
        int vocab = m.getInt(arch + ".vocab_size", vocabRows);
        int ctx = m.getInt(arch + ".context_length", 2048);
        float eps = m.getFloat(arch + ".attention.layer_norm_rms_epsilon", 1e-5f);
        int ropeDims = m.getInt(arch + ".rope.dimension_count", headDim);
        float theta = m.getFloat(arch + ".rope.freq_base", 10000f);
        float freqScale = 1f;
        String scaling = m.getString(arch + ".rope.scaling.type", "none").toLowerCase(Locale.ROOT);
        if (scaling.equals("linear")) {
            float factor = m.getFloat(arch + ".rope.scaling.factor", 1f);
            freqScale = factor > 0 ? 1f / factor : 1f;
        } else if (!scaling.equals("none") && !scaling.equals("llama3")) {
            throw new ModelFormatException(source + ": unsupported rope scaling '" + scaling
                    + "' in " + arch + ".rope.scaling.type");
        }
        int window = m.getInt(arch + ".attention.sliding_window", 0);
        ModelConfig c = new ModelConfig(arch, dim, layers, heads, kvHeads, headDim, ffnDim, vocab, ctx,
                Norm.RMS, eps, Positions.ROPE, layout, ropeDims, theta, freqScale, Activation.SWIGLU, window);
        c.validate(source);
        return c;
    }

    private static int required(Metadata m, String source, String key) {
        if (!m.has(key)) {
            throw new ModelFormatException(source + ": missing metadata key '" + key + "'");
        }
        return m.getInt(key, 0);
    }

    private void validate(String source) {
        check(source, dim > 0, "embedding_length", dim);
        check(source, layers > 0, "block_count", layers);
        check(source, heads > 0, "attention.head_count", heads);
        check(source, kvHeads > 0 && heads % kvHeads == 0, "attention.head_count_kv (must divide " + heads + ")", kvHeads);
        check(source, headDim > 0, "attention.key_length", headDim);
        check(source, ffnDim > 0, "feed_forward_length", ffnDim);
        check(source, vocabSize > 0, "vocab_size", vocabSize);
        check(source, contextLength > 0, "context_length", contextLength);
        check(source, ropeDims > 0 && ropeDims % 2 == 0 && ropeDims <= headDim,
                "rope.dimension_count (even, at most " + headDim + ")", ropeDims);
        check(source, normEps > 0 && Float.isFinite(normEps), "attention.layer_norm_rms_epsilon", normEps);
        check(source, ropeTheta > 0 && Float.isFinite(ropeTheta), "rope.freq_base", ropeTheta);
        check(source, slidingWindow >= 0, "attention.sliding_window", slidingWindow);
    }

    private void check(String source, boolean ok, String key, Object value) {
        if (!ok) {
            throw new ModelFormatException(source + ": invalid " + architecture + "." + key + ": " + value);
        }
    }

    /** Width of the key (and value) projections: {@code kvHeads * headDim}. */
    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Width of the query projection: {@code heads * headDim}. */
    public int qDim() {
        return heads * headDim;
    }
}
