package dev.isthmus.engine.tokenizer;

import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFormatException;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The token table of a {@code tokenizer.ggml.*} vocabulary: texts, scores, attributes, special ids
 * and the end-of-generation set, with llama.cpp's rules for what the metadata leaves unsaid.
 */
final class Vocabulary {
    // Attribute bits, as llama.cpp keeps them: a token can gain CONTROL on top of its GGUF type.
    static final int UNKNOWN = 1;
    static final int UNUSED = 1 << 1;
    static final int NORMAL = 1 << 2;
    static final int CONTROL = 1 << 3;
    static final int USER_DEFINED = 1 << 4;
    static final int BYTE = 1 << 5;
    static final int LSTRIP = 1 << 7;
    static final int RSTRIP = 1 << 8;

    static final String KEY_TOKENS = "tokenizer.ggml.tokens";
    static final String KEY_SCORES = "tokenizer.ggml.scores";
    static final String KEY_TOKEN_TYPE = "tokenizer.ggml.token_type";

    /** Token texts that end generation whatever their declared type (llama.cpp's list). */
    private static final Set<String> END_OF_GENERATION_TEXTS = Set.of(
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
            "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
            "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
            "<｜end▁of▁sentence｜>", "[e~[");
    private static final Set<String> END_OF_TURN_TEXTS = Set.of(
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
            "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>");
    private static final Set<String> END_OF_MESSAGE_TEXTS = Set.of("<|eom_id|>");
    // FIM pad/repo/file-separator tokens end generation in llama.cpp (infill stops at them).
    private static final Set<String> FIM_PAD_TEXTS = Set.of("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]");
    private static final Set<String> FIM_REPO_TEXTS = Set.of("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>");
    private static final Set<String> FIM_SEPARATOR_TEXTS = Set.of("<|file_sep|>");

    /** Special ids and the BOS policy a tokenizer model implies when the metadata is silent. */
    record Defaults(int bos, int eos, int unk, boolean addBos) {
    }

    private final String[] texts;
    private final float[] scores;
    private final int[] attributes;
    private final TokenIndex index;
    private final int bos;
    private final int eos;
    private final int eot;
    private final int eom;
    private final int unk;
    private final boolean addBos;
    private final BitSet endOfGeneration = new BitSet();
    /** CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first: the order input is split by. */
    private final int[] specialTokens;

    Vocabulary(Metadata metadata, Defaults defaults) {
        texts = metadata.getStringArray(KEY_TOKENS);
        if (texts == null || texts.length == 0) {
            throw new ModelFormatException("metadata key '" + KEY_TOKENS + "' is missing or empty");
        }
        int n = texts.length;
        scores = optionalArray(metadata.getFloatArray(KEY_SCORES), n, KEY_SCORES);
        int[] types = optionalArray(metadata.getIntArray(KEY_TOKEN_TYPE), n, KEY_TOKEN_TYPE);

        for (int i = 0; i < n; i++) {
            if (texts[i].isEmpty()) {
                texts[i] = "[EMPTY_" + i + "]"; // as llama.cpp, so that no lookup or split ever matches ""
            }
        }
        index = new TokenIndex(texts);

        bos = tokenId(metadata, "tokenizer.ggml.bos_token_id", defaults.bos());
        eos = tokenId(metadata, "tokenizer.ggml.eos_token_id", defaults.eos());
        unk = tokenId(metadata, "tokenizer.ggml.unknown_token_id", defaults.unk());
        addBos = metadata.getBool("tokenizer.ggml.add_bos_token", defaults.addBos());

        attributes = new int[n];
        for (int i = 0; i < n; i++) {
            attributes[i] = types != null ? attributesOf(TokenType.fromGgufCode(types[i])) : inferredAttributes(i);
        }

        int eotId = tokenId(metadata, "tokenizer.ggml.eot_token_id", -1);
        int eomId = tokenId(metadata, "tokenizer.ggml.eom_token_id", -1);
        int fimPad = tokenId(metadata, "tokenizer.ggml.fim_pad_token_id", -1);
        int fimRepo = tokenId(metadata, "tokenizer.ggml.fim_rep_token_id", -1);
        int fimSeparator = tokenId(metadata, "tokenizer.ggml.fim_sep_token_id", -1);
        // llama.cpp recognises these tokens by their text when the converter did not name them, and
        // makes them CONTROL so they are neither printed nor tokenized from plain text.
        if (eotId < 0) {
            eotId = findControlByText(END_OF_TURN_TEXTS);
        }
        if (eomId < 0) {
            eomId = findControlByText(END_OF_MESSAGE_TEXTS);
        }
        if (fimPad < 0) {
            fimPad = findControlByText(FIM_PAD_TEXTS);
        }
        if (fimRepo < 0) {
            fimRepo = findControlByText(FIM_REPO_TEXTS);
        }
        if (fimSeparator < 0) {
            fimSeparator = findControlByText(FIM_SEPARATOR_TEXTS);
        }
        eot = eotId;
        eom = eomId;
        for (int id : new int[] {fimPad, fimRepo, fimSeparator, eos, eot, eom}) {
            if (id >= 0) {
                endOfGeneration.set(id);
            }
        }
        for (String text : END_OF_GENERATION_TEXTS) {
            int id = index.find(text);
            if (id >= 0) {
                endOfGeneration.set(id);
                attributes[id] |= CONTROL;
            }
        }
        applyEndOfGenerationWorkarounds();

        specialTokens = collectSpecialTokens();
        applyNameSpecificAttributes(metadata.getString("general.name", ""));
    }

    private static <T> T optionalArray(T array, int n, String key) {
        if (array != null && java.lang.reflect.Array.getLength(array) < n) {
            throw new ModelFormatException("metadata key '" + key + "' has " + java.lang.reflect.Array.getLength(array)
                    + " entries for " + n + " tokens");
        }
        return array;
    }

    /** A special id from the metadata if present and in range, else the default (if in range), else -1. */
    private int tokenId(Metadata metadata, String key, int fallback) {
        long id = metadata.getLong(key, fallback);
        if (id >= 0 && id < texts.length) {
            return (int) id;
        }
        return fallback >= 0 && fallback < texts.length ? fallback : -1;
    }

    private static int attributesOf(TokenType type) {
        return switch (type) {
            case NORMAL -> NORMAL;
            case UNKNOWN -> UNKNOWN;
            case CONTROL -> CONTROL;
            case USER_DEFINED -> USER_DEFINED;
            case UNUSED -> UNUSED;
            case BYTE -> BYTE;
            case UNDEFINED -> 0;
        };
    }

    /**
     * Attributes for a vocabulary without {@code token_type} (llama2.c's tokenizer.bin): byte
     * tokens are recognised by their {@code <0xXX>} spelling, BOS/EOS are control, UNK unknown.
     */
    private int inferredAttributes(int id) {
        if (id == unk) {
            return UNKNOWN;
        }
        if (id == bos || id == eos) {
            return CONTROL;
        }
        return isByteTokenText(texts[id]) ? BYTE : NORMAL;
    }

    static boolean isByteTokenText(String text) {
        return text.length() == 6 && text.startsWith("<0x") && text.endsWith(">")
                && Character.digit(text.charAt(3), 16) >= 0 && Character.digit(text.charAt(4), 16) >= 0;
    }

    /** The lowest id whose text is one of {@code candidates}, made CONTROL; -1 if none. */
    private int findControlByText(Set<String> candidates) {
        int first = -1;
        for (String text : candidates) {
            int id = index.find(text);
            if (id >= 0 && (first < 0 || id < first)) {
                first = id;
            }
        }
        if (first >= 0) {
            attributes[first] |= CONTROL;
        }
        return first;
    }

    /** llama.cpp's exceptions for vocabularies where a name on the list is not really the end. */
    private void applyEndOfGenerationWorkarounds() {
        int end = endOfGenerationId("<|end|>");
        boolean harmony = endOfGenerationId("<|return|>") >= 0 && endOfGenerationId("<|call|>") >= 0;
        boolean solar = endOfGenerationId("<|calls|>") >= 0 && endOfGenerationId("<|flush|>") >= 0;
        if (end >= 0 && (harmony || solar)) {
            endOfGeneration.clear(end);
            attributes[end] = USER_DEFINED;
        }
        int closingS = endOfGenerationId("</s>");
        if (closingS >= 0 && endOfGenerationId("<|tool_response>") >= 0) {
            endOfGeneration.clear(closingS);
            attributes[closingS] = NORMAL;
        }
    }

    private int endOfGenerationId(String text) {
        int id = index.find(text);
        return id >= 0 && endOfGeneration.get(id) ? id : -1;
    }

    private int[] collectSpecialTokens() {
        List<Integer> special = new ArrayList<>();
        for (int i = 0; i < texts.length; i++) {
            if ((attributes[i] & (CONTROL | USER_DEFINED | UNKNOWN)) != 0) {
                special.add(i);
            }
        }
        // Longest first, so that a special token containing another one wins; ties by id to be deterministic.
        special.sort(Comparator.<Integer>comparingInt(i -> texts[i].length()).reversed().thenComparingInt(i -> i));
        return special.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Phi-3's added tokens swallow the whitespace after them (rstrip in its tokenizer.json). */
    private void applyNameSpecificAttributes(String modelName) {
        String name = modelName.toLowerCase(Locale.ROOT);
        if (name.contains("phi-3") || name.contains("phi3")) {
            for (int id : specialTokens) {
                attributes[id] |= RSTRIP;
            }
            setAttribute("</s>", RSTRIP, true);
            for (String text : new String[] {"<unk>", "<s>", "<|endoftext|>"}) {
                setAttribute(text, RSTRIP, false);
            }
        }
    }

    private void setAttribute(String text, int attribute, boolean value) {
        int id = index.find(text);
        if (id >= 0) {
            attributes[id] = value ? attributes[id] | attribute : attributes[id] & ~attribute;
        }
    }

    int size() {
        return texts.length;
    }

    String text(int id) {
        return texts[id];
    }

    float score(int id) {
        return scores == null ? 0f : scores[id];
    }

    int attributes(int id) {
        return attributes[id];
    }

    boolean has(int id, int attribute) {
        return (attributes[id] & attribute) != 0;
    }

    /** The id of a token text, or -1. */
    int id(String text) {
        return index.find(text);
    }

    /** The id of the token text {@code s[start, end)}, or -1. */
    int id(CharSequence s, int start, int end) {
        return index.find(s, start, end);
    }

    TokenIndex index() {
        return index;
    }

    int bos() {
        return bos;
    }

    int eos() {
        return eos;
    }

    int eot() {
        return eot;
    }

    int eom() {
        return eom;
    }

    int unk() {
        return unk;
    }

    boolean addBos() {
        return addBos;
    }

    boolean isEndOfGeneration(int id) {
        return id >= 0 && endOfGeneration.get(id);
    }

    int[] specialTokens() {
        return specialTokens;
    }

    TokenType type(int id) {
        int a = attributes[id];
        if ((a & CONTROL) != 0) {
            return TokenType.CONTROL;
        }
        if ((a & USER_DEFINED) != 0) {
            return TokenType.USER_DEFINED;
        }
        if ((a & UNKNOWN) != 0) {
            return TokenType.UNKNOWN;
        }
        if ((a & BYTE) != 0) {
            return TokenType.BYTE;
        }
        if ((a & UNUSED) != 0) {
            return TokenType.UNUSED;
        }
        return (a & NORMAL) != 0 ? TokenType.NORMAL : TokenType.UNDEFINED;
    }

    void checkId(int id) {
        if (id < 0 || id >= texts.length) {
            throw new IndexOutOfBoundsException("token id " + id + " outside the vocabulary [0, " + texts.length + ")");
        }
    }
}
