package dev.isthmus.engine.safetensors;

import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hugging Face Llama/Mistral/Qwen2 tensor names and their GGUF names, as {@code convert_hf_to_gguf.py} maps
 * them ({@code model.layers.N.self_attn.q_proj.weight} is {@code blk.N.attn_q.weight}, and so on).
 */
public final class HfTensorNames {
    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d{1,6})\\.(.+)\\.(weight|bias)");
    private static final Map<String, String> GLOBAL = Map.of(
            "model.embed_tokens.weight", "token_embd.weight",
            "model.norm.weight", "output_norm.weight",
            "lm_head.weight", "output.weight");
    private static final Map<String, String> LAYER_PARTS = Map.ofEntries(
            Map.entry("input_layernorm", "attn_norm"),
            Map.entry("self_attn.q_proj", "attn_q"),
            Map.entry("self_attn.k_proj", "attn_k"),
            Map.entry("self_attn.v_proj", "attn_v"),
            Map.entry("self_attn.o_proj", "attn_output"),
            Map.entry("post_attention_layernorm", "ffn_norm"),
            Map.entry("mlp.gate_proj", "ffn_gate"),
            Map.entry("mlp.up_proj", "ffn_up"),
            Map.entry("mlp.down_proj", "ffn_down"));
    /** GGUF tensor kinds of a block, in the order they are listed. */
    static final List<String> KIND_ORDER = List.of("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
            "ffn_norm", "ffn_gate", "ffn_up", "ffn_down");

    private HfTensorNames() {
    }

    /** The GGUF name of an HF tensor, or null if it is not one the graph uses. */
    public static String toGguf(String hf) {
        String g = GLOBAL.get(hf);
        if (g != null) {
            return g;
        }
        Matcher m = LAYER.matcher(hf);
        if (!m.matches()) {
            return null;
        }
        String part = LAYER_PARTS.get(m.group(2));
        if (part == null) {
            return null;
        }
        return "blk." + Integer.parseInt(m.group(1)) + "." + part + "." + m.group(3);
    }

    /** Tensors that carry nothing the graph needs: RoPE tables that older checkpoints saved. */
    public static boolean isIgnored(String hf) {
        return hf.endsWith(".rotary_emb.inv_freq");
    }

    /**
     * The block index of a GGUF name ({@code blk.N.}), or -1.
     */
    static int layerOf(String gguf) {
        if (!gguf.startsWith("blk.")) {
            return -1;
        }
        int dot = gguf.indexOf('.', 4);
        return Integer.parseInt(gguf.substring(4, dot));
    }

    /** The kind of a GGUF block tensor ({@code attn_q} of {@code blk.3.attn_q.weight}). */
    static String kindOf(String gguf) {
        int a = gguf.indexOf('.', 4);
        int b = gguf.lastIndexOf('.');
        return gguf.substring(a + 1, b);
    }
}
