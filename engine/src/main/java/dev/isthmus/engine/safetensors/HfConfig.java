package dev.isthmus.engine.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.engine.format.ModelFormatException;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;

/**
 * A Hugging Face {@code config.json} of a supported decoder (model_type {@code llama}, {@code mistral} or
 * {@code qwen2}) and the GGUF-style metadata it implies, as llama.cpp's {@code convert_hf_to_gguf.py} writes it.
 *
 * <p>Llama and Mistral become GGUF architecture {@code llama}: their HF q/k projections are in the rotate-half
 * (NEOX) layout, so {@link #permuteQk()} is true and the loader permutes their rows into GGUF's interleaved
 * layout. Qwen2 stays {@code qwen2}, whose GGUF layout is NEOX already.
 *
 * @param architecture  the GGUF architecture
 * @param modelType     config.json {@code model_type}
 * @param heads         {@code num_attention_heads}
 * @param kvHeads       {@code num_key_value_heads} (default: heads)
 * @param headDim       {@code head_dim} (default: hidden_size / heads)
 * @param layers        {@code num_hidden_layers}
 * @param vocabSize     {@code vocab_size}
 * @param tiedEmbeddings {@code tie_word_embeddings}
 * @param permuteQk     whether q/k rows go from the NEOX to the interleaved RoPE layout
 * @param ropeFreqs     Llama 3 RoPE frequency factors (GGUF tensor {@code rope_freqs.weight}), or null
 * @param bosTokenId    {@code bos_token_id} (first of a list), or -1
 * @param eosTokenId    {@code eos_token_id} (first of a list), or -1
 * @param metadata      the GGUF metadata, integers as Long and reals as Float like the GGUF reader gives them
 * @param json          the whole config.json
 */
public record HfConfig(String architecture, String modelType, int heads, int kvHeads, int headDim, int layers,
                       int vocabSize, boolean tiedEmbeddings, boolean permuteQk, float[] ropeFreqs,
                       int bosTokenId, int eosTokenId, LinkedHashMap<String, Object> metadata, ObjectNode json) {

    /**
     * Reads {@code config.json}.
     *
     * @param name {@code general.name}
     * @throws ModelFormatException naming the file and the field if it is invalid or describes an unsupported model
     */
    public static HfConfig read(Path configJson, String name) {
        return parse(HfJson.readObject(configJson), configJson.toString(), name);
    }

    /** Interprets a parsed config.json; {@code where} names it in errors. */
    public static HfConfig parse(ObjectNode c, String where, String name) {
        String modelType = HfJson.optString(c, "model_type", null, where);
        if (modelType == null) {
            throw HfJson.error(where, "model_type", "required field is missing");
        }
        String arch;
        boolean permute;
        switch (modelType) {
            case "llama", "mistral" -> {
                arch = "llama";
                permute = true;
            }
            case "qwen2" -> {
                arch = "qwen2";
                permute = false;
            }
            default -> throw HfJson.error(where, "model_type", "'" + modelType
                    + "' is not supported (supported: llama, mistral, qwen2)");
        }
        String act = HfJson.optString(c, "hidden_act", "silu", where);
        if (!act.equals("silu")) {
            throw HfJson.error(where, "hidden_act", "'" + act + "' is not supported (supported: silu)");
        }
        int hidden = HfJson.positiveInt(c, "hidden_size", where);
        int layers = HfJson.positiveInt(c, "num_hidden_layers", where);
        int heads = HfJson.positiveInt(c, "num_attention_heads", where);
        int kvHeads = c.hasNonNull("num_key_value_heads") ? HfJson.positiveInt(c, "num_key_value_heads", where) : heads;
        if (heads % kvHeads != 0) {
            throw HfJson.error(where, "num_key_value_heads", kvHeads + " does not divide num_attention_heads " + heads);
        }
        int headDim;
        if (c.hasNonNull("head_dim")) {
            headDim = HfJson.positiveInt(c, "head_dim", where);
        } else {
            if (hidden % heads != 0) {
                throw HfJson.error(where, "num_attention_heads", heads + " does not divide hidden_size " + hidden);
            }
            headDim = hidden / heads;
        }
        if (headDim % 2 != 0) {
            throw HfJson.error(where, "head_dim", headDim + " is odd; RoPE needs an even head size");
        }
        int ffn = HfJson.positiveInt(c, "intermediate_size", where);
        int vocab = HfJson.positiveInt(c, "vocab_size", where);
        int ctx = c.hasNonNull("max_position_embeddings") ? HfJson.positiveInt(c, "max_position_embeddings", where) : 2048;
        double eps = HfJson.optDouble(c, "rms_norm_eps", 1e-6, where);
        if (!(eps > 0) || !Double.isFinite(eps)) {
            throw HfJson.error(where, "rms_norm_eps", eps + " is not a positive number");
        }
        double theta = HfJson.optDouble(c, "rope_theta", 10000, where);
        if (!(theta > 0) || !Double.isFinite(theta)) {
            throw HfJson.error(where, "rope_theta", theta + " is not a positive number");
        }
        boolean tied = HfJson.optBool(c, "tie_word_embeddings", false, where);
        for (String flag : new String[] {"mlp_bias"}) {
            if (HfJson.optBool(c, flag, false, where)) {
                throw HfJson.error(where, flag, "true is not supported (the graph has no feed-forward biases)");
            }
        }
        if (HfJson.optBool(c, "use_sliding_window", false, where)) {
            throw HfJson.error(where, "use_sliding_window", "true is not supported (per-layer sliding windows)");
        }

        LinkedHashMap<String, Object> m = new LinkedHashMap<>();
        m.put("general.architecture", arch);
        m.put("general.name", name);
        m.put(arch + ".context_length", (long) ctx);
        m.put(arch + ".embedding_length", (long) hidden);
        m.put(arch + ".block_count", (long) layers);
        m.put(arch + ".feed_forward_length", (long) ffn);
        m.put(arch + ".attention.head_count", (long) heads);
        m.put(arch + ".attention.head_count_kv", (long) kvHeads);
        m.put(arch + ".rope.dimension_count", (long) headDim);
        if (headDim * heads != hidden) {
            m.put(arch + ".attention.key_length", (long) headDim);
            m.put(arch + ".attention.value_length", (long) headDim);
        }
        m.put(arch + ".rope.freq_base", (float) theta);
        m.put(arch + ".attention.layer_norm_rms_epsilon", (float) eps);
        m.put(arch + ".vocab_size", (long) vocab);
        if (modelType.equals("mistral") && c.hasNonNull("sliding_window")) {
            long w = HfJson.optLong(c, "sliding_window", 0, where);
            if (w <= 0 || w > Integer.MAX_VALUE) {
                throw HfJson.error(where, "sliding_window", w + " is not a positive 32-bit integer");
            }
            if (w < ctx) {
                m.put(arch + ".attention.sliding_window", w);
            }
        }
        float[] ropeFreqs = ropeScaling(c, where, m, arch, headDim, theta);
        return new HfConfig(arch, modelType, heads, kvHeads, headDim, layers, vocab, tied, permute, ropeFreqs,
                tokenId(c, "bos_token_id", where), tokenId(c, "eos_token_id", where), m, c);
    }

    /** Linear scaling becomes metadata; Llama 3's becomes per-pair frequency factors, as llama.cpp computes them. */
    private static float[] ropeScaling(ObjectNode c, String where, LinkedHashMap<String, Object> m, String arch,
                                       int headDim, double theta) {
        ObjectNode s = HfJson.optObject(c, "rope_scaling", where);
        if (s == null) {
            return null;
        }
        String w = where + ": rope_scaling";
        String type = HfJson.optString(s, "rope_type", HfJson.optString(s, "type", "default", w), w).toLowerCase(Locale.ROOT);
        switch (type) {
            case "default" -> {
                return null;
            }
            case "linear" -> {
                double factor = HfJson.optDouble(s, "factor", 1, w);
                if (!(factor > 0)) {
                    throw HfJson.error(w, "factor", factor + " is not positive");
                }
                m.put(arch + ".rope.scaling.type", "linear");
                m.put(arch + ".rope.scaling.factor", (float) factor);
                return null;
            }
            case "llama3" -> {
                double factor = HfJson.optDouble(s, "factor", 8, w);
                double low = HfJson.optDouble(s, "low_freq_factor", 1, w);
                double high = HfJson.optDouble(s, "high_freq_factor", 4, w);
                double oldCtx = HfJson.optDouble(s, "original_max_position_embeddings", 8192, w);
                if (!(factor > 0) || !(low > 0) || !(high > low) || !(oldCtx > 0)) {
                    throw HfJson.error(w, "factor", "inconsistent llama3 scaling " + s);
                }
                // convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors), in float32 as torch computes it there.
                float[] out = new float[headDim / 2];
                float lowWavelen = (float) (oldCtx / low);
                float highWavelen = (float) (oldCtx / high);
                for (int i = 0; i < out.length; i++) {
                    float freq = 1f / (float) Math.pow((float) theta, (float) (2 * i) / headDim);
                    float wavelen = (float) (2 * Math.PI) / freq;
                    if (wavelen < highWavelen) {
                        out[i] = 1;
                    } else if (wavelen > lowWavelen) {
                        out[i] = (float) factor;
                    } else {
                        float smooth = (float) ((oldCtx / wavelen - low) / (high - low));
                        out[i] = 1f / ((1 - smooth) / (float) factor + smooth);
                    }
                }
                return out;
            }
            default -> throw HfJson.error(w, "rope_type", "'" + type + "' is not supported (supported: default, linear, llama3)");
        }
    }

    private static int tokenId(ObjectNode c, String key, String where) {
        JsonNode n = c.get(key);
        if (n != null && n.isArray()) {
            n = n.isEmpty() ? null : n.get(0);
        }
        if (n == null || n.isNull()) {
            return -1;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt() || n.intValue() < 0) {
            throw HfJson.error(where, key, "expected a token id, found " + HfJson.describe(n));
        }
        return n.intValue();
    }

    /** The GGUF name of the metadata key {@code suffix} of this architecture, e.g. {@code llama.block_count}. */
    public String key(String suffix) {
        return architecture + "." + suffix;
    }
}
