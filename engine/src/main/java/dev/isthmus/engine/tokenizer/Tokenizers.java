package dev.isthmus.engine.tokenizer;

import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFormatException;
import java.util.LinkedHashMap;
import java.util.Map;

/** Builds the {@link Tokenizer} a model's {@code tokenizer.ggml.*} metadata describes. */
public final class Tokenizers {
    /** A BPE pre-tokenizer family and the llama.cpp settings that come with it. */
    private record BpeFamily(PreTokenizer preTokenizer, boolean ignoreMerges, boolean addBos) {
    }

    /** {@code tokenizer.ggml.pre} values, grouped as llama.cpp groups them. */
    private static final Map<String, BpeFamily> BPE_FAMILIES = new LinkedHashMap<>();

    static {
        BpeFamily llama3 = new BpeFamily(PreTokenizer.LLAMA3, true, true);
        for (String name : new String[] {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"}) {
            BPE_FAMILIES.put(name, llama3);
        }
        BpeFamily llama3Regex = new BpeFamily(PreTokenizer.LLAMA3, false, false);
        BPE_FAMILIES.put("dbrx", llama3Regex);
        BPE_FAMILIES.put("smaug-bpe", llama3Regex);
        BpeFamily gpt2 = new BpeFamily(PreTokenizer.GPT2, false, false);
        for (String name : new String[] {"gpt-2", "phi-2", "mpt", "olmo", "jais", "gigachat", "exaone4", "trillion", "mellum"}) {
            BPE_FAMILIES.put(name, gpt2);
        }
        BpeFamily qwen2 = new BpeFamily(PreTokenizer.QWEN2, false, false);
        for (String name : new String[] {"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan"}) {
            BPE_FAMILIES.put(name, qwen2);
        }
        BpeFamily starcoder = new BpeFamily(PreTokenizer.STARCODER, false, false);
        for (String name : new String[] {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"}) {
            BPE_FAMILIES.put(name, starcoder);
        }
        BPE_FAMILIES.put("falcon", new BpeFamily(PreTokenizer.FALCON, false, false));
        BPE_FAMILIES.put("deepseek-coder", new BpeFamily(PreTokenizer.DEEPSEEK_CODER, false, false));
        BPE_FAMILIES.put("default", new BpeFamily(PreTokenizer.DEFAULT, false, false));
    }

    private Tokenizers() {
    }

    /**
     * The tokenizer for a vocabulary: {@code tokenizer.ggml.model} {@code "llama"} is SentencePiece,
     * {@code "gpt2"} byte-level BPE with {@code tokenizer.ggml.merges} and the pre-tokenizer named by
     * {@code tokenizer.ggml.pre} (absent means llama.cpp's {@code "default"}).
     *
     * <p>Building one is cheap enough to do per model load (well under a second for a 128k-token,
     * 280k-merge vocabulary).
     *
     * @throws ModelFormatException naming the value if the model or pre-tokenizer is not supported, or
     *     naming the key if the vocabulary is missing or inconsistent
     */
    public static Tokenizer fromMetadata(Metadata metadata) {
        String model = metadata.getString("tokenizer.ggml.model", null);
        if (model == null) {
            throw new ModelFormatException("metadata key 'tokenizer.ggml.model' is missing: the file has no tokenizer");
        }
        return switch (model) {
            case "llama" -> new SpmTokenizer(
                    new Vocabulary(metadata, new Vocabulary.Defaults(1, 2, 0, true)),
                    metadata.getBool("tokenizer.ggml.add_space_prefix", true));
            case "gpt2" -> bpe(metadata);
            default -> throw new ModelFormatException("unsupported tokenizer.ggml.model '" + model
                    + "' (supported: 'llama' (SentencePiece), 'gpt2' (byte-level BPE))");
        };
    }

    private static Tokenizer bpe(Metadata metadata) {
        String pre = metadata.getString("tokenizer.ggml.pre", "default");
        BpeFamily family = BPE_FAMILIES.get(pre);
        if (family == null) {
            throw new ModelFormatException("unsupported tokenizer.ggml.pre '" + pre + "' for tokenizer.ggml.model 'gpt2' (supported: "
                    + String.join(", ", BPE_FAMILIES.keySet()) + ")");
        }
        String[] merges = metadata.getStringArray("tokenizer.ggml.merges");
        if (merges == null) {
            throw new ModelFormatException("metadata key 'tokenizer.ggml.merges' is missing: a 'gpt2' tokenizer needs its BPE merges");
        }
        Vocabulary vocabulary = new Vocabulary(metadata, new Vocabulary.Defaults(-1, -1, -1, family.addBos()));
        return new BpeTokenizer(vocabulary, merges, family.preTokenizer(), family.ignoreMerges());
    }
}
