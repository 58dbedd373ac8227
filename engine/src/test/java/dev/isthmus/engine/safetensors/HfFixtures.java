package dev.isthmus.engine.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.TensorInfo;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Test fixtures written independently of the loader: safetensors files, and Hugging Face checkpoints re-laid
 * from a GGUF model (tensor names, q/k rows in HF's rotate-half order, config.json, and a tokenizer.json in the
 * shape Hugging Face's converters produce).
 */
public final class HfFixtures {
    public static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    private HfFixtures() {
    }

    /** One tensor to write: safetensors dtype name, shape, little-endian bytes. */
    public record Data(String dtype, long[] shape, byte[] bytes) {
        public static Data f32(float[] v, long... shape) {
            ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float x : v) {
                b.putFloat(x);
            }
            return new Data("F32", shape, b.array());
        }

        public static Data f16(float[] v, long... shape) {
            ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float x : v) {
                b.putShort(Float.floatToFloat16(x));
            }
            return new Data("F16", shape, b.array());
        }

        public static Data bf16(float[] v, long... shape) {
            ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float x : v) {
                int bits = Float.floatToRawIntBits(x);
                bits += 0x7FFF + ((bits >>> 16) & 1); // round to nearest even
                b.putShort((short) (bits >>> 16));
            }
            return new Data("BF16", shape, b.array());
        }

        public static Data i32(int[] v, long... shape) {
            ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (int x : v) {
                b.putInt(x);
            }
            return new Data("I32", shape, b.array());
        }

        /** In the given float dtype ("F32", "F16", "BF16"). */
        public static Data floats(String dtype, float[] v, long... shape) {
            return switch (dtype) {
                case "F32" -> f32(v, shape);
                case "F16" -> f16(v, shape);
                case "BF16" -> bf16(v, shape);
                default -> throw new IllegalArgumentException(dtype);
            };
        }
    }

    /** The header JSON a safetensors file of these tensors has (offsets in map order). */
    public static ObjectNode header(Map<String, Data> tensors, Map<String, String> metadata) {
        ObjectNode h = F.objectNode();
        if (metadata != null) {
            ObjectNode m = h.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long pos = 0;
        for (Map.Entry<String, Data> e : tensors.entrySet()) {
            ObjectNode t = h.putObject(e.getKey());
            t.put("dtype", e.getValue().dtype());
            ArrayNode shape = t.putArray("shape");
            for (long d : e.getValue().shape()) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(pos).add(pos + e.getValue().bytes().length);
            pos += e.getValue().bytes().length;
        }
        return h;
    }

    /** The bytes of a safetensors file: length, header padded with spaces to a multiple of 8, data. */
    public static byte[] safetensorsBytes(String headerJson, List<byte[]> data) {
        byte[] h = headerJson.getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        long size = 8L + padded + data.stream().mapToLong(d -> d.length).sum();
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(size)).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded);
        b.put(h);
        for (int i = h.length; i < padded; i++) {
            b.put((byte) ' ');
        }
        data.forEach(b::put);
        return b.array();
    }

    public static void writeSafetensors(Path file, Map<String, Data> tensors) throws IOException {
        byte[] bytes = safetensorsBytes(header(tensors, Map.of("format", "pt")).toString(),
                tensors.values().stream().map(Data::bytes).toList());
        try (OutputStream o = Files.newOutputStream(file)) {
            o.write(bytes);
        }
    }

    /** Writes tensors over {@code shards} files with an index (one file, {@code model.safetensors}, if 1). */
    public static void writeShards(Path dir, Map<String, Data> tensors, int shards) throws IOException {
        if (shards == 1) {
            writeSafetensors(dir.resolve("model.safetensors"), tensors);
            return;
        }
        List<Map<String, Data>> parts = new ArrayList<>();
        for (int i = 0; i < shards; i++) {
            parts.add(new LinkedHashMap<>());
        }
        int i = 0;
        for (Map.Entry<String, Data> e : tensors.entrySet()) {
            parts.get(Math.min(shards - 1, i++ * shards / tensors.size())).put(e.getKey(), e.getValue());
        }
        ObjectNode index = F.objectNode();
        index.putObject("metadata").put("total_size", tensors.values().stream().mapToLong(d -> d.bytes().length).sum());
        ObjectNode map = index.putObject("weight_map");
        for (int s = 0; s < shards; s++) {
            String name = String.format("model-%05d-of-%05d.safetensors", s + 1, shards);
            writeSafetensors(dir.resolve(name), parts.get(s));
            for (String t : parts.get(s).keySet()) {
                map.put(t, name);
            }
        }
        writeJson(dir.resolve("model.safetensors.index.json"), index);
    }

    /**
     * JSON text as UTF-8 bytes. (Jackson's own byte output writes characters outside the BMP as two 3-byte
     * surrogates unless told otherwise, which strict readers, ours included, reject.)
     */
    public static byte[] utf8(Object node) throws IOException {
        return JSON.writeValueAsString(node).getBytes(StandardCharsets.UTF_8);
    }

    public static void writeJson(Path file, Object node) throws IOException {
        Files.write(file, utf8(node));
    }

    // ---------------------------------------------------------------- GGUF model -> HF checkpoint

    /** HF row {@code h·d + j·d/2 + i} is GGUF row {@code h·d + 2i + j} (the inverse of llama.cpp's permute). */
    public static int[] hfRowsFromGguf(int heads, int headDim) {
        int[] hfToGguf = new int[heads * headDim];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < headDim / 2; i++) {
                for (int j = 0; j < 2; j++) {
                    hfToGguf[h * headDim + j * headDim / 2 + i] = h * headDim + 2 * i + j;
                }
            }
        }
        return hfToGguf;
    }

    /** HF name of a GGUF tensor name. */
    public static String hfName(String gguf) {
        switch (gguf) {
            case "token_embd.weight":
                return "model.embed_tokens.weight";
            case "output_norm.weight":
                return "model.norm.weight";
            case "output.weight":
                return "lm_head.weight";
            default:
                break;
        }
        String[] p = gguf.split("\\.");
        String layer = "model.layers." + p[1] + ".";
        String part = switch (p[2]) {
            case "attn_norm" -> "input_layernorm";
            case "ffn_norm" -> "post_attention_layernorm";
            case "attn_q" -> "self_attn.q_proj";
            case "attn_k" -> "self_attn.k_proj";
            case "attn_v" -> "self_attn.v_proj";
            case "attn_output" -> "self_attn.o_proj";
            case "ffn_gate" -> "mlp.gate_proj";
            case "ffn_up" -> "mlp.up_proj";
            case "ffn_down" -> "mlp.down_proj";
            default -> throw new IllegalArgumentException(gguf);
        };
        return layer + part + "." + p[3];
    }

    /** The F32 values of a GGUF model's tensor (F32 models only). */
    public static float[] floats(ModelFile m, String name) {
        Tensor t = m.tensor(name);
        if (t.dtype() != DType.F32) {
            throw new IllegalArgumentException(name + " is " + t.dtype());
        }
        return t.toFloatArray();
    }

    /** Rows of a row-major matrix reordered: row r of the result is row {@code from[r]} of {@code v}. */
    public static float[] rows(float[] v, int cols, int[] from) {
        float[] out = new float[v.length];
        for (int r = 0; r < from.length; r++) {
            System.arraycopy(v, from[r] * cols, out, r * cols, cols);
        }
        return out;
    }

    /** The HF tensors of an F32 llama GGUF model, in {@code dtype}, q/k rows un-permuted to HF's layout. */
    public static LinkedHashMap<String, Data> hfTensors(ModelFile gguf, String dtype) {
        Metadata m = gguf.metadata();
        int heads = m.getInt("llama.attention.head_count", 0);
        int kvHeads = m.getInt("llama.attention.head_count_kv", heads);
        int dim = m.getInt("llama.embedding_length", 0);
        int headDim = dim / heads;
        LinkedHashMap<String, Data> out = new LinkedHashMap<>();
        List<TensorInfo> infos = new ArrayList<>(gguf.tensorInfos());
        infos.sort(Comparator.comparing(t -> hfName(t.name())));
        for (TensorInfo t : infos) {
            float[] v = floats(gguf, t.name());
            long[] shape = t.shape();
            if (t.name().endsWith("attn_q.weight")) {
                v = rows(v, (int) shape[1], hfRowsFromGguf(heads, headDim));
            } else if (t.name().endsWith("attn_k.weight")) {
                v = rows(v, (int) shape[1], hfRowsFromGguf(kvHeads, headDim));
            }
            out.put(hfName(t.name()), Data.floats(dtype, v, shape));
        }
        return out;
    }

    /** config.json of a llama GGUF model. */
    public static ObjectNode config(Metadata m, int vocab) {
        ObjectNode c = F.objectNode();
        c.putArray("architectures").add("LlamaForCausalLM");
        c.put("model_type", "llama");
        c.put("hidden_size", m.getInt("llama.embedding_length", 0));
        c.put("intermediate_size", m.getInt("llama.feed_forward_length", 0));
        c.put("num_hidden_layers", m.getInt("llama.block_count", 0));
        c.put("num_attention_heads", m.getInt("llama.attention.head_count", 0));
        c.put("num_key_value_heads", m.getInt("llama.attention.head_count_kv", 0));
        c.put("max_position_embeddings", m.getInt("llama.context_length", 0));
        c.put("rms_norm_eps", (double) m.getFloat("llama.attention.layer_norm_rms_epsilon", 1e-5f));
        c.put("rope_theta", (double) m.getFloat("llama.rope.freq_base", 10000f));
        c.put("vocab_size", vocab);
        c.put("hidden_act", "silu");
        c.put("tie_word_embeddings", false);
        c.put("bos_token_id", 1);
        c.put("eos_token_id", 2);
        c.put("torch_dtype", "float32");
        return c;
    }

    /** Writes a whole HF checkpoint of an F32 llama GGUF model (SentencePiece vocabulary) into {@code dir}. */
    public static Path checkpointFromGguf(ModelFile gguf, Path dir, String dtype, int shards) throws IOException {
        Files.createDirectories(dir);
        Metadata m = gguf.metadata();
        int vocab = (int) gguf.tensor("token_embd.weight").dim(0);
        writeJson(dir.resolve("config.json"), config(m, vocab));
        writeJson(dir.resolve("tokenizer.json"), spmTokenizerJson(m));
        ObjectNode tc = F.objectNode();
        tc.put("add_bos_token", true);
        tc.put("add_eos_token", false);
        tc.put("bos_token", "<s>");
        tc.put("eos_token", "</s>");
        tc.put("unk_token", "<unk>");
        writeJson(dir.resolve("tokenizer_config.json"), tc);
        writeShards(dir, hfTensors(gguf, dtype), shards);
        return dir;
    }

    // ---------------------------------------------------------------- tokenizer.json in HF's converter shapes

    private static ObjectNode addedToken(int id, String content, boolean special) {
        ObjectNode t = F.objectNode();
        t.put("id", id);
        t.put("content", content);
        t.put("single_word", false);
        t.put("lstrip", false);
        t.put("rstrip", false);
        t.put("normalized", !special);
        t.put("special", special);
        return t;
    }

    /**
     * A SentencePiece vocabulary (GGUF "llama") as transformers' {@code LlamaConverter} writes it: BPE with byte
     * fallback, merges for every split of every piece into two pieces, ordered by the merged piece's score
     * (descending, stable), Prepend/Replace normalizer, a BOS template.
     */
    public static ObjectNode spmTokenizerJson(Metadata m) {
        String[] tokens = m.getStringArray("tokenizer.ggml.tokens");
        float[] scores = m.getFloatArray("tokenizer.ggml.scores");
        int[] types = m.getIntArray("tokenizer.ggml.token_type");
        Map<String, Integer> ids = new HashMap<>();
        for (int i = 0; i < tokens.length; i++) {
            ids.putIfAbsent(tokens[i], i);
        }
        ObjectNode root = F.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int i = 0; i < tokens.length; i++) {
            if (types[i] == 2 || types[i] == 3) {
                added.add(addedToken(i, tokens[i], true));
            }
        }
        ObjectNode norm = root.putObject("normalizer");
        norm.put("type", "Sequence");
        ArrayNode ns = norm.putArray("normalizers");
        ns.addObject().put("type", "Prepend").put("prepend", "\u2581");
        ObjectNode rep = ns.addObject().put("type", "Replace");
        rep.putObject("pattern").put("String", " ");
        rep.put("content", "\u2581");
        root.putNull("pre_tokenizer");
        ObjectNode post = root.putObject("post_processor");
        post.put("type", "TemplateProcessing");
        ArrayNode single = post.putArray("single");
        single.addObject().putObject("SpecialToken").put("id", tokens[1]).put("type_id", 0);
        single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ObjectNode dec = root.putObject("decoder");
        dec.put("type", "Sequence");
        ArrayNode ds = dec.putArray("decoders");
        ObjectNode r2 = ds.addObject().put("type", "Replace");
        r2.putObject("pattern").put("String", "\u2581");
        r2.put("content", " ");
        ds.addObject().put("type", "ByteFallback");
        ds.addObject().put("type", "Fuse");
        ds.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.put("unk_token", tokens[0]);
        model.put("fuse_unk", true);
        model.put("byte_fallback", true);
        ObjectNode vocab = model.putObject("vocab");
        for (int i = 0; i < tokens.length; i++) {
            vocab.put(tokens[i], i);
        }
        // SentencePieceExtractor.extract(vocab_scores): per piece, its splits sorted by the ids of the halves;
        // all of them stably sorted by the piece's score, highest first.
        record Merge(String l, String r, float score) {
        }
        List<Merge> merges = new ArrayList<>();
        for (int p = 0; p < tokens.length; p++) {
            String piece = tokens[p];
            List<Merge> local = new ArrayList<>();
            for (int k = 1; k < piece.length(); k++) {
                if (Character.isLowSurrogate(piece.charAt(k))) {
                    continue;
                }
                String l = piece.substring(0, k);
                String r = piece.substring(k);
                if (ids.containsKey(l) && ids.containsKey(r)) {
                    local.add(new Merge(l, r, scores[p]));
                }
            }
            local.sort(Comparator.<Merge>comparingInt(x -> ids.get(x.l())).thenComparingInt(x -> ids.get(x.r())));
            merges.addAll(local);
        }
        merges.sort(Comparator.comparingDouble((Merge x) -> x.score()).reversed());
        ArrayNode ms = model.putArray("merges");
        for (Merge x : merges) {
            ms.add(x.l() + " " + x.r());
        }
        return root;
    }

    /**
     * A byte-level BPE vocabulary (GGUF "gpt2") as Hugging Face ships it for the family named by GGUF's
     * {@code tokenizer.ggml.pre}: control tokens as special added tokens, user-defined as plain added tokens,
     * unused ids left out; merges as strings, or as pairs when {@code pairMerges}.
     */
    public static ObjectNode bpeTokenizerJson(Metadata m, boolean pairMerges) {
        String[] tokens = m.getStringArray("tokenizer.ggml.tokens");
        int[] types = m.getIntArray("tokenizer.ggml.token_type");
        String[] merges = m.getStringArray("tokenizer.ggml.merges");
        String pre = m.getString("tokenizer.ggml.pre", "gpt-2");
        ObjectNode root = F.objectNode();
        root.put("version", "1.0");
        ArrayNode added = root.putArray("added_tokens");
        for (int i = 0; i < tokens.length; i++) {
            if (types[i] == 3 || types[i] == 4) {
                added.add(addedToken(i, tokens[i], types[i] == 3));
            }
        }
        if (pre.equals("qwen2")) {
            root.putObject("normalizer").put("type", "NFC");
        } else {
            root.putNull("normalizer");
        }
        if (pre.equals("gpt-2")) {
            root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
                    .put("trim_offsets", true).put("use_regex", true);
        } else {
            String regex = switch (pre) {
                case "llama-bpe" -> HfTokenizer.LLAMA3_REGEX;
                case "qwen2" -> HfTokenizer.QWEN2_REGEX;
                default -> throw new IllegalArgumentException(pre);
            };
            ObjectNode seq = root.putObject("pre_tokenizer");
            seq.put("type", "Sequence");
            ArrayNode list = seq.putArray("pretokenizers");
            ObjectNode split = list.addObject().put("type", "Split");
            split.putObject("pattern").put("Regex", regex);
            split.put("behavior", "Isolated").put("invert", false);
            list.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("trim_offsets", false)
                    .put("use_regex", false);
        }
        root.putObject("post_processor").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", false).put("use_regex", false);
        root.putObject("decoder").put("type", "ByteLevel");
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.put("byte_fallback", false);
        model.put("ignore_merges", pre.equals("llama-bpe"));
        ObjectNode vocab = model.putObject("vocab");
        for (int i = 0; i < tokens.length; i++) {
            if (types[i] == 1) {
                vocab.put(tokens[i], i);
            }
        }
        ArrayNode ms = model.putArray("merges");
        for (String mg : merges) {
            if (pairMerges) {
                int sp = mg.indexOf(' ', 1);
                ms.addArray().add(mg.substring(0, sp)).add(mg.substring(sp + 1));
            } else {
                ms.add(mg);
            }
        }
        return root;
    }

    /** Reads an F32 host tensor's bytes (for comparisons). */
    public static byte[] bytes(Tensor t) {
        MemorySegment s = t.segment();
        byte[] out = new byte[Math.toIntExact(s.byteSize())];
        MemorySegment.copy(s, ValueLayout.JAVA_BYTE, 0, out, 0, out.length);
        return out;
    }
}
