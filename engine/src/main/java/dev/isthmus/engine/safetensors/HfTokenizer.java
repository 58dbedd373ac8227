package dev.isthmus.engine.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.engine.format.ModelFormatException;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A Hugging Face {@code tokenizer.json} (with {@code tokenizer_config.json} when present) turned into the
 * {@code tokenizer.ggml.*} metadata that {@link dev.isthmus.engine.tokenizer.Tokenizers#fromMetadata} reads,
 * following llama.cpp's {@code convert_hf_to_gguf.py}:
 *
 * <ul>
 *   <li><b>Byte-level BPE</b> (a {@code ByteLevel} pre-tokenizer: GPT-2, Llama 3, Qwen2) becomes model
 *       {@code "gpt2"} with the vocabulary, the merges ({@code "a b"}, whether the file writes them as strings or
 *       pairs) and {@code tokenizer.ggml.pre} recognized from the split expression: Llama 3's is
 *       {@code "llama-bpe"} ({@code "smaug-bpe"} without {@code ignore_merges}), Qwen2's {@code "qwen2"}, none
 *       (the ByteLevel expression itself) {@code "gpt-2"}; any other expression is an error naming it.</li>
 *   <li><b>SentencePiece-style</b> vocabularies (BPE with byte fallback and a {@code ▁} Prepend normalizer or
 *       Metaspace pre-tokenizer, as Llama 2; or Unigram) become model {@code "llama"}. A Unigram vocabulary
 *       carries its scores. A BPE one does not, so scores are rebuilt from the merge ranks: the token made by
 *       the merge of rank {@code r} (its first, if several) scores {@code -r}, others 0. SentencePiece merges the
 *       highest-scoring pair first and Hugging Face's converter wrote merges in descending score order, so the
 *       merge order, and the tokenization, is the same (up to ties between equal original scores).</li>
 * </ul>
 *
 * <p>Token types: {@code added_tokens} marked special are control (3), other added tokens user-defined (4), the
 * unknown token 2, {@code <0xXX>} pieces of a byte-fallback vocabulary byte (6), ids the file leaves unused up to
 * the model's vocabulary size {@code [PAD<id>]} unused (5), the rest normal (1). BOS/EOS/UNK/PAD ids come from
 * {@code tokenizer_config.json}'s token texts, then the post-processor template, then {@code config.json}'s ids;
 * {@code add_bos_token} from {@code tokenizer_config.json}, else from whether the template starts with a special
 * token.
 */
public final class HfTokenizer {
    static final String LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final Pattern BYTE_PIECE = Pattern.compile("<0x[0-9A-Fa-f]{2}>");

    static final int NORMAL = 1;
    static final int UNKNOWN = 2;
    static final int CONTROL = 3;
    static final int USER_DEFINED = 4;
    static final int UNUSED = 5;
    static final int BYTE = 6;

    private HfTokenizer() {
    }

    /**
     * Reads {@code tokenizer.json} and, if it exists next to it, {@code tokenizer_config.json}.
     *
     * @param vocabSize  the model's vocabulary size (rows of the embedding; ids up to it that the tokenizer
     *                   leaves unused become {@code [PAD<id>]}), or -1 to use the tokenizer's own size
     * @param bosId      {@code config.json}'s BOS id, or -1
     * @param eosId      {@code config.json}'s EOS id, or -1
     * @throws ModelFormatException naming the file and field if the tokenizer is malformed or unsupported
     */
    public static LinkedHashMap<String, Object> read(Path tokenizerJson, int vocabSize, int bosId, int eosId) {
        Path configPath = tokenizerJson.resolveSibling("tokenizer_config.json");
        ObjectNode config = Files.isRegularFile(configPath) ? HfJson.readObject(configPath) : null;
        return convert(HfJson.readObject(tokenizerJson), config, vocabSize, bosId, eosId, tokenizerJson.toString());
    }

    /** {@link #read} on parsed JSON; {@code where} names the file in errors. */
    public static LinkedHashMap<String, Object> convert(ObjectNode tokenizer, ObjectNode tokenizerConfig, int vocabSize,
                                                        int bosId, int eosId, String where) {
        ObjectNode model = HfJson.optObject(tokenizer, "model", where);
        if (model == null) {
            throw HfJson.error(where, "model", "required field is missing");
        }
        String type = HfJson.optString(model, "type", model.has("merges") ? "BPE" : null, where + ": model");
        if (type == null) {
            throw HfJson.error(where, "model.type", "required field is missing");
        }
        Vocab v = switch (type) {
            case "BPE" -> bpeVocab(model, where);
            case "Unigram" -> unigramVocab(model, where);
            default -> throw HfJson.error(where, "model.type", "'" + type + "' is not supported (supported: BPE, Unigram)");
        };
        addAddedTokens(tokenizer, v, where);
        int n = v.maxId + 1;
        if (vocabSize > 0) {
            if (n > vocabSize) {
                throw HfJson.error(where, "vocabulary", "token id " + v.maxId + " does not fit the model's vocab_size "
                        + vocabSize);
            }
            n = vocabSize;
        }
        String[] tokens = new String[n];
        int[] types = new int[n];
        for (int i = 0; i < n; i++) {
            String t = v.pieces.get(i);
            if (t == null) {
                tokens[i] = "[PAD" + i + "]";
                types[i] = UNUSED;
            } else {
                tokens[i] = t;
                Boolean special = v.added.get(i);
                types[i] = special == null ? NORMAL : special ? CONTROL : USER_DEFINED;
            }
        }
        Map<String, Integer> ids = new HashMap<>();
        for (int i = n - 1; i >= 0; i--) {
            if (types[i] != UNUSED) {
                ids.put(tokens[i], i);
            }
        }

        boolean byteLevel = usesByteLevel(tokenizer.get("pre_tokenizer")) || isType(tokenizer.get("decoder"), "ByteLevel");
        LinkedHashMap<String, Object> m = new LinkedHashMap<>();
        Template template = template(tokenizer.get("post_processor"), ids);
        boolean addBosDefault;
        if (type.equals("BPE") && byteLevel) {
            m.put("tokenizer.ggml.model", "gpt2");
            m.put("tokenizer.ggml.pre", preTokenizerName(tokenizer, model, where));
            m.put("tokenizer.ggml.tokens", tokens);
            m.put("tokenizer.ggml.token_type", types);
            m.put("tokenizer.ggml.merges", v.merges);
            addBosDefault = false;
        } else {
            boolean byteFallback = HfJson.optBool(model, "byte_fallback", type.equals("Unigram"), where + ": model");
            float[] scores = new float[n];
            for (int i = 0; i < n; i++) {
                if (v.scores != null && i < v.scores.length && v.scores[i] != null) {
                    scores[i] = v.scores[i];
                }
                if (byteFallback && types[i] == NORMAL && BYTE_PIECE.matcher(tokens[i]).matches()) {
                    types[i] = BYTE;
                }
            }
            if (v.unk >= 0 && v.unk < n) {
                types[v.unk] = UNKNOWN;
                m.put("tokenizer.ggml.unknown_token_id", (long) v.unk);
            }
            m.put("tokenizer.ggml.model", "llama");
            m.put("tokenizer.ggml.tokens", tokens);
            m.put("tokenizer.ggml.scores", scores);
            m.put("tokenizer.ggml.token_type", types);
            m.put("tokenizer.ggml.add_space_prefix", addsSpacePrefix(tokenizer, where));
            addBosDefault = true;
        }

        int bos = specialId(tokenizerConfig, "bos_token", ids, where);
        int eos = specialId(tokenizerConfig, "eos_token", ids, where);
        int pad = specialId(tokenizerConfig, "pad_token", ids, where);
        if (bos < 0) {
            bos = template.bos >= 0 ? template.bos : bosId;
        }
        if (eos < 0) {
            eos = template.eos >= 0 ? template.eos : eosId;
        }
        for (Object[] kv : new Object[][] {{"bos", bos}, {"eos", eos}, {"padding", pad}}) {
            int id = (Integer) kv[1];
            if (id >= n) {
                throw HfJson.error(where, kv[0] + " token", "id " + id + " is outside the vocabulary of " + n);
            }
            if (id >= 0) {
                m.put("tokenizer.ggml." + kv[0] + "_token_id", (long) id);
            }
        }
        String cw = where.replace("tokenizer.json", "tokenizer_config.json");
        boolean addBos = tokenizerConfig != null && tokenizerConfig.hasNonNull("add_bos_token")
                ? HfJson.optBool(tokenizerConfig, "add_bos_token", false, cw)
                : template.known ? template.bos >= 0 : addBosDefault;
        boolean addEos = tokenizerConfig != null && tokenizerConfig.hasNonNull("add_eos_token")
                ? HfJson.optBool(tokenizerConfig, "add_eos_token", false, cw)
                : template.eos >= 0;
        m.put("tokenizer.ggml.add_bos_token", addBos);
        m.put("tokenizer.ggml.add_eos_token", addEos);
        return m;
    }

    /** Pieces by id, merges and (Unigram) scores. */
    private static final class Vocab {
        final Map<Integer, String> pieces = new HashMap<>();
        final Map<Integer, Boolean> added = new HashMap<>();
        Float[] scores;
        String[] merges = new String[0];
        int maxId = -1;
        int unk = -1;

        void put(int id, String piece) {
            pieces.put(id, piece);
            maxId = Math.max(maxId, id);
        }
    }

    private static Vocab bpeVocab(ObjectNode model, String where) {
        Vocab v = new Vocab();
        ObjectNode vocab = HfJson.optObject(model, "vocab", where + ": model");
        if (vocab == null) {
            throw HfJson.error(where, "model.vocab", "required field is missing");
        }
        Map<String, Integer> ids = new HashMap<>();
        for (Map.Entry<String, JsonNode> e : vocab.properties()) {
            int id = tokenId(e.getValue(), where, "model.vocab['" + e.getKey() + "']");
            if (v.pieces.containsKey(id)) {
                throw HfJson.error(where, "model.vocab['" + e.getKey() + "']", "id " + id + " is also '" + v.pieces.get(id) + "'");
            }
            v.put(id, e.getKey());
            ids.put(e.getKey(), id);
        }
        JsonNode merges = model.get("merges");
        if (merges != null && !merges.isNull()) {
            if (!merges.isArray()) {
                throw HfJson.error(where, "model.merges", "expected an array, found " + HfJson.describe(merges));
            }
            v.merges = new String[merges.size()];
            v.scores = new Float[v.maxId + 1];
            for (int r = 0; r < merges.size(); r++) {
                JsonNode mg = merges.get(r);
                String left;
                String right;
                if (mg.isTextual()) {
                    String s = mg.textValue();
                    int sp = s.indexOf(' ', 1);
                    if (sp < 0) {
                        throw HfJson.error(where, "model.merges[" + r + "]", "expected \"left right\", found " + HfJson.describe(mg));
                    }
                    left = s.substring(0, sp);
                    right = s.substring(sp + 1);
                    v.merges[r] = s;
                } else if (mg.isArray() && mg.size() == 2 && mg.get(0).isTextual() && mg.get(1).isTextual()) {
                    left = mg.get(0).textValue();
                    right = mg.get(1).textValue();
                    v.merges[r] = left + " " + right;
                } else {
                    throw HfJson.error(where, "model.merges[" + r + "]", "expected \"left right\" or [left, right], found "
                            + HfJson.describe(mg));
                }
                Integer made = ids.get(left + right);
                if (made != null && v.scores[made] == null) {
                    v.scores[made] = (float) -r;
                }
            }
        }
        String unk = HfJson.optString(model, "unk_token", null, where + ": model");
        if (unk != null && ids.containsKey(unk)) {
            v.unk = ids.get(unk);
        }
        return v;
    }

    private static Vocab unigramVocab(ObjectNode model, String where) {
        Vocab v = new Vocab();
        JsonNode vocab = model.get("vocab");
        if (!(vocab instanceof ArrayNode a)) {
            throw HfJson.error(where, "model.vocab", "expected an array of [piece, score], found " + HfJson.describe(vocab));
        }
        v.scores = new Float[a.size()];
        for (int i = 0; i < a.size(); i++) {
            JsonNode e = a.get(i);
            if (!e.isArray() || e.size() != 2 || !e.get(0).isTextual() || !e.get(1).isNumber()) {
                throw HfJson.error(where, "model.vocab[" + i + "]", "expected [piece, score], found " + HfJson.describe(e));
            }
            v.put(i, e.get(0).textValue());
            v.scores[i] = e.get(1).floatValue();
        }
        long unk = HfJson.optLong(model, "unk_id", -1, where + ": model");
        v.unk = unk >= 0 && unk < a.size() ? (int) unk : -1;
        return v;
    }

    private static void addAddedTokens(ObjectNode tokenizer, Vocab v, String where) {
        JsonNode added = tokenizer.get("added_tokens");
        if (added == null || added.isNull()) {
            return;
        }
        if (!added.isArray()) {
            throw HfJson.error(where, "added_tokens", "expected an array, found " + HfJson.describe(added));
        }
        for (int i = 0; i < added.size(); i++) {
            JsonNode t = added.get(i);
            String field = "added_tokens[" + i + "]";
            if (!(t instanceof ObjectNode o)) {
                throw HfJson.error(where, field, "expected an object, found " + HfJson.describe(t));
            }
            int id = tokenId(o.get("id"), where, field + ".id");
            String content = HfJson.optString(o, "content", null, where + ": " + field);
            if (content == null) {
                throw HfJson.error(where, field + ".content", "required field is missing");
            }
            String existing = v.pieces.get(id);
            if (existing != null && !existing.equals(content)) {
                throw HfJson.error(where, field, "id " + id + " is '" + content + "' but the model's vocabulary has '"
                        + existing + "' there");
            }
            v.put(id, content);
            v.added.put(id, HfJson.optBool(o, "special", false, where + ": " + field));
            if (v.scores != null && id >= v.scores.length) {
                v.scores = Arrays.copyOf(v.scores, id + 1);
            }
        }
    }

    private static int tokenId(JsonNode n, String where, String field) {
        long id = HfJson.nonNegativeLong(n, where, field);
        if (id > 16_000_000) {
            throw HfJson.error(where, field, "id " + id + " is implausibly large (more than 16M tokens)");
        }
        return (int) id;
    }

    private static boolean isType(JsonNode n, String type) {
        return n != null && n.isObject() && type.equals(n.path("type").asText(null));
    }

    /** The pre-tokenizer itself or one of a Sequence's. */
    private static List<JsonNode> parts(JsonNode n) {
        List<JsonNode> out = new ArrayList<>();
        if (n == null || !n.isObject()) {
            return out;
        }
        if (isType(n, "Sequence")) {
            JsonNode list = n.has("pretokenizers") ? n.get("pretokenizers") : n.has("normalizers")
                    ? n.get("normalizers") : n.get("processors");
            if (list != null && list.isArray()) {
                list.forEach(out::add);
            }
        } else {
            out.add(n);
        }
        return out;
    }

    private static boolean usesByteLevel(JsonNode pre) {
        return parts(pre).stream().anyMatch(p -> isType(p, "ByteLevel"));
    }

    private static String preTokenizerName(ObjectNode tokenizer, ObjectNode model, String where) {
        List<String> regexes = new ArrayList<>();
        boolean byteLevelRegex = false;
        for (JsonNode p : parts(tokenizer.get("pre_tokenizer"))) {
            if (isType(p, "Split")) {
                JsonNode pattern = p.path("pattern");
                String r = pattern.path("Regex").asText(null);
                if (r == null) {
                    r = pattern.path("String").asText(null);
                }
                regexes.add(r);
            } else if (isType(p, "ByteLevel")) {
                byteLevelRegex |= p.path("use_regex").asBoolean(true);
            } else if (!isType(p, "Digits") || !p.path("individual_digits").asBoolean(false)) {
                throw HfJson.error(where, "pre_tokenizer", "a " + p.path("type").asText("?")
                        + " pre-tokenizer is not supported in a byte-level BPE tokenizer");
            }
        }
        boolean ignoreMerges = HfJson.optBool(model, "ignore_merges", false, where + ": model");
        if (regexes.size() == 1 && !byteLevelRegex) {
            String r = regexes.get(0);
            if (LLAMA3_REGEX.equals(r)) {
                return ignoreMerges ? "llama-bpe" : "smaug-bpe";
            }
            if (QWEN2_REGEX.equals(r)) {
                return "qwen2";
            }
            throw HfJson.error(where, "pre_tokenizer", "split expression " + HfJson.describe(
                    com.fasterxml.jackson.databind.node.TextNode.valueOf(String.valueOf(r)))
                    + " is not one of the supported families (Llama 3, Qwen2, GPT-2)");
        }
        if (regexes.isEmpty() && byteLevelRegex) {
            return "gpt-2";
        }
        throw HfJson.error(where, "pre_tokenizer", "this combination of " + regexes.size()
                + " split expressions and a ByteLevel pre-tokenizer" + (byteLevelRegex ? " with" : " without")
                + " its own expression is not one of the supported families (Llama 3, Qwen2, GPT-2)");
    }

    /** SentencePiece's "add dummy prefix": a Prepend("▁") normalizer or a Metaspace that prepends. */
    private static boolean addsSpacePrefix(ObjectNode tokenizer, String where) {
        for (JsonNode n : parts(tokenizer.get("normalizer"))) {
            if (isType(n, "Prepend") && "\u2581".equals(n.path("prepend").asText(null))) {
                return true;
            }
        }
        for (JsonNode p : parts(tokenizer.get("pre_tokenizer"))) {
            if (isType(p, "Metaspace")) {
                String scheme = p.path("prepend_scheme").asText(null);
                if (scheme != null) {
                    return !scheme.equals("never");
                }
                return p.path("add_prefix_space").asBoolean(true);
            }
        }
        return false;
    }

    /** What a TemplateProcessing post-processor adds around a single sequence. */
    private record Template(boolean known, int bos, int eos) {
    }

    private static Template template(JsonNode post, Map<String, Integer> ids) {
        for (JsonNode p : parts(post)) {
            if (!isType(p, "TemplateProcessing")) {
                continue;
            }
            JsonNode single = p.path("single");
            int bos = -1;
            int eos = -1;
            boolean seenA = false;
            for (JsonNode item : single) {
                if (item.has("Sequence")) {
                    seenA = true;
                } else if (item.has("SpecialToken")) {
                    Integer id = ids.get(item.path("SpecialToken").path("id").asText(""));
                    if (id != null) {
                        if (seenA) {
                            eos = id;
                        } else {
                            bos = id;
                        }
                    }
                }
            }
            return new Template(true, bos, eos);
        }
        return new Template(false, -1, -1);
    }

    /** A special token's id from tokenizer_config.json ({@code "<s>"} or {@code {"content": "<s>"}}), or -1. */
    private static int specialId(ObjectNode config, String key, Map<String, Integer> ids, String where) {
        if (config == null) {
            return -1;
        }
        JsonNode n = config.get(key);
        if (n != null && n.isObject()) {
            n = n.get("content");
        }
        if (n == null || !n.isTextual()) {
            return -1;
        }
        Integer id = ids.get(n.textValue());
        return id == null ? -1 : id;
    }
}
