package dev.isthmus.engine.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.gptq.GptqConfig;
import dev.isthmus.engine.gptq.GptqLinear;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A Hugging Face checkpoint — {@code config.json}, {@code tokenizer.json} (optional), and safetensors weights
 * in one file or sharded as {@code model-0000X-of-0000N.safetensors} with {@code model.safetensors.index.json} —
 * presented as a GGUF-style {@link ModelFile}: GGUF tensor names and shapes, {@code llama.*}/{@code qwen2.*} and
 * {@code tokenizer.ggml.*} metadata (see {@link HfConfig}, {@link HfTokenizer}, {@link HfTensorNames}).
 *
 * <p><b>Tensors.</b> F32/F16/BF16 weights are zero-copy views of the mapped shards, except q/k projections of
 * Llama/Mistral: HF stores their rows in the rotate-half (NEOX) RoPE layout, and they are copied with rows
 * permuted into GGUF's interleaved layout exactly as {@code convert_hf_to_gguf.py} does (row
 * {@code h·d + 2i + j} of head size {@code d} is HF row {@code h·d + j·d/2 + i}), so that the graph's
 * {@link dev.isthmus.api.RopeLayout#NORMAL} rotation applies. Llama 3 RoPE scaling adds the computed
 * {@code rope_freqs.weight}. Biases the graph does not have (o_proj, MLP) must be all zero and are dropped.
 * GPTQ layers ({@code qweight}/{@code qzeros}/{@code scales}/{@code g_idx}, configured by
 * {@code quantize_config.json} or config.json's {@code quantization_config}) become Q4_1 or F16 weights as
 * {@link GptqLinear} describes; an act-order down projection's input permutation is folded into the rows of the
 * same block's gate and up projections. Copied and converted tensors are built on first use, one at a time,
 * and live until {@link #close()}; their {@link TensorInfo#offset()} is -1, others' is the offset in their shard.
 *
 * <p>Tensor names the graph does not know are an error (naming them) rather than silently dropped.
 */
public final class SafetensorsModel implements ModelFile {
    public static final String INDEX = "model.safetensors.index.json";
    public static final String SINGLE = "model.safetensors";
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final String[] GPTQ_PARTS = {"qweight", "qzeros", "scales", "g_idx"};

    /** How a GGUF tensor is obtained. */
    private sealed interface Source permits Direct, Permuted, Gptq, Floats {
    }

    private record Direct(SafetensorsFile file, SafetensorsFile.Entry entry) implements Source {
    }

    private record Permuted(SafetensorsFile file, SafetensorsFile.Entry entry, int[] rowOrder) implements Source {
    }

    private record Gptq(GptqLinear linear, GptqLinear.Layout layout, int[] rowOrder) implements Source {
    }

    private record Floats(float[] values) implements Source {
    }

    private final Path path;
    private final List<SafetensorsFile> shards;
    private final HfConfig config;
    private final GptqConfig gptq;
    private final Metadata metadata;
    private final Map<String, Source> sources;
    private final List<TensorInfo> infos;
    private final Map<String, TensorInfo> byName = new HashMap<>();
    private final Map<String, Tensor> built = new HashMap<>();
    private final Arena arena = Arena.ofShared();
    private volatile boolean closed;

    private SafetensorsModel(Path path, List<SafetensorsFile> shards, HfConfig config, GptqConfig gptq,
                             Metadata metadata, Map<String, Source> sources) {
        this.path = path;
        this.shards = shards;
        this.config = config;
        this.gptq = gptq;
        this.metadata = metadata;
        this.sources = sources;
        List<TensorInfo> list = new ArrayList<>();
        for (Map.Entry<String, Source> e : sources.entrySet()) {
            TensorInfo t = info(e.getKey(), e.getValue());
            list.add(t);
            byName.put(t.name(), t);
        }
        this.infos = List.copyOf(list);
    }

    /**
     * True if {@code path} is a checkpoint directory (with {@code config.json} and safetensors weights) or a
     * file that starts like safetensors.
     */
    public static boolean isCheckpoint(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            return Files.isRegularFile(path.resolve("config.json"))
                    && (Files.isRegularFile(path.resolve(INDEX)) || !listSafetensors(path).isEmpty());
        }
        return Files.isRegularFile(path) && SafetensorsFile.hasHeader(path);
    }

    /**
     * Opens a checkpoint directory, or a safetensors file whose directory holds {@code config.json} (a shard
     * listed in the directory's index opens the whole checkpoint).
     *
     * @throws ModelFormatException naming the file and the field if anything is malformed or unsupported
     * @throws UncheckedIOException if a file cannot be read
     */
    public static SafetensorsModel open(Path path) {
        Path dir;
        List<Path> files;
        try {
            if (Files.isDirectory(path)) {
                dir = path;
                files = null;
            } else {
                if (!Files.isRegularFile(path)) {
                    throw new NoSuchFileException(path.toString());
                }
                dir = path.toAbsolutePath().getParent();
                files = Files.isRegularFile(dir.resolve(INDEX)) ? null : List.of(path);
            }
            Path configPath = dir.resolve("config.json");
            if (!Files.isRegularFile(configPath)) {
                throw ModelFormatException.of(path, "config.json", "missing: a safetensors model needs its config.json in "
                        + dir);
            }
            String name = (Files.isDirectory(path) ? path : dir).toAbsolutePath().normalize().getFileName().toString();
            HfConfig config = HfConfig.read(configPath, name);
            Map<String, Path> weightMap = null;
            if (files == null) {
                if (Files.isRegularFile(dir.resolve(INDEX))) {
                    weightMap = readIndex(dir);
                    files = weightMap.values().stream().distinct().sorted().toList();
                } else if (Files.isRegularFile(dir.resolve(SINGLE))) {
                    files = List.of(dir.resolve(SINGLE));
                } else {
                    files = listSafetensors(dir);
                    if (files.isEmpty()) {
                        throw ModelFormatException.of(dir, "weights", "no " + INDEX + " and no .safetensors files");
                    }
                }
            }
            return open(path, dir, config, files, weightMap);
        } catch (IOException e) {
            throw new UncheckedIOException(e instanceof NoSuchFileException ? e.getMessage() : "cannot read " + path
                    + ": " + e.getMessage(), e);
        }
    }

    private static List<Path> listSafetensors(Path dir) throws IOException {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.safetensors")) {
            for (Path p : ds) {
                if (Files.isRegularFile(p)) {
                    out.add(p);
                }
            }
        }
        out.sort(Comparator.naturalOrder());
        return out;
    }

    /** {@code weight_map} of the index: tensor name → shard, each a plain file name inside {@code dir}. */
    private static Map<String, Path> readIndex(Path dir) {
        Path index = dir.resolve(INDEX);
        String where = index.toString();
        ObjectNode o = HfJson.readObject(index);
        ObjectNode map = HfJson.optObject(o, "weight_map", where);
        if (map == null) {
            throw HfJson.error(where, "weight_map", "required field is missing");
        }
        Map<String, Path> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            String field = "weight_map['" + e.getKey() + "']";
            if (!e.getValue().isTextual()) {
                throw HfJson.error(where, field, "expected a file name, found " + HfJson.describe(e.getValue()));
            }
            String file = e.getValue().textValue();
            if (file.isEmpty() || file.contains("/") || file.contains("\\") || file.equals(".") || file.equals("..")
                    || !file.endsWith(".safetensors")) {
                throw HfJson.error(where, field, "'" + file + "' is not a .safetensors file name in the checkpoint's directory");
            }
            out.put(e.getKey(), dir.resolve(file));
        }
        if (out.isEmpty()) {
            throw HfJson.error(where, "weight_map", "is empty");
        }
        return out;
    }

    private static SafetensorsModel open(Path path, Path dir, HfConfig config, List<Path> files,
                                         Map<String, Path> weightMap) {
        List<SafetensorsFile> shards = new ArrayList<>();
        try {
            Map<String, SafetensorsFile> owner = new LinkedHashMap<>();
            Map<Path, SafetensorsFile> byPath = new HashMap<>();
            for (Path f : files) {
                SafetensorsFile s = SafetensorsFile.open(f);
                shards.add(s);
                byPath.put(f, s);
                for (String n : s.entries().keySet()) {
                    SafetensorsFile prev = owner.putIfAbsent(n, s);
                    if (prev != null) {
                        throw ModelFormatException.of(f, "tensor '" + n + "'", "also in " + prev.path());
                    }
                }
            }
            if (weightMap != null) {
                for (Map.Entry<String, Path> e : weightMap.entrySet()) {
                    SafetensorsFile s = owner.get(e.getKey());
                    if (s == null || s != byPath.get(e.getValue())) {
                        throw ModelFormatException.of(dir.resolve(INDEX), "weight_map['" + e.getKey() + "']",
                                "the tensor is not in " + e.getValue().getFileName()
                                        + (s == null ? "" : " but in " + s.path().getFileName()));
                    }
                }
                for (String n : owner.keySet()) {
                    if (!weightMap.containsKey(n)) {
                        throw ModelFormatException.of(dir.resolve(INDEX), "weight_map",
                                "does not list tensor '" + n + "' of " + owner.get(n).path().getFileName());
                    }
                }
            }
            GptqConfig gptq = GptqConfig.find(dir, config.json());
            Map<String, Source> sources = plan(dir, config, gptq, owner);
            LinkedHashMap<String, Object> m = new LinkedHashMap<>(config.metadata());
            Path tokenizer = dir.resolve("tokenizer.json");
            if (Files.isRegularFile(tokenizer)) {
                m.putAll(HfTokenizer.read(tokenizer, config.vocabSize(), config.bosTokenId(), config.eosTokenId()));
            }
            return new SafetensorsModel(path, shards, config, gptq, new Metadata(m, path.toString()), sources);
        } catch (RuntimeException | Error e) {
            shards.forEach(SafetensorsFile::close);
            throw e;
        }
    }

    /** Every GGUF tensor and where it comes from, in GGUF order. */
    private static Map<String, Source> plan(Path dir, HfConfig config, GptqConfig gptq,
                                            Map<String, SafetensorsFile> owner) {
        Map<String, Source> global = new LinkedHashMap<>();
        TreeMap<Integer, Map<String, Source>> layers = new TreeMap<>();
        Map<String, GptqLinear> gptqLayers = new LinkedHashMap<>();
        for (Map.Entry<String, SafetensorsFile> e : owner.entrySet()) {
            String hf = e.getKey();
            SafetensorsFile file = e.getValue();
            if (HfTensorNames.isIgnored(hf)) {
                continue;
            }
            int dot = hf.lastIndexOf('.');
            String suffix = hf.substring(dot + 1);
            if (List.of(GPTQ_PARTS).contains(suffix)) {
                String prefix = hf.substring(0, dot);
                if (!suffix.equals("qweight")) {
                    if (!owner.containsKey(prefix + ".qweight")) {
                        throw ModelFormatException.of(file.path(), "tensor '" + hf + "'", "no " + prefix + ".qweight goes with it");
                    }
                    continue;
                }
                if (gptq == null) {
                    throw ModelFormatException.of(file.path(), "tensor '" + hf + "'",
                            "GPTQ weights, but neither quantize_config.json nor config.json's quantization_config says how they were quantized");
                }
                String gguf = HfTensorNames.toGguf(prefix + ".weight");
                if (gguf == null) {
                    throw unknown(file, hf);
                }
                SafetensorsFile.Entry gIdx = owner.containsKey(prefix + ".g_idx")
                        ? owner.get(prefix + ".g_idx").entries().get(prefix + ".g_idx") : null;
                for (String part : new String[] {"qzeros", "scales"}) {
                    if (!owner.containsKey(prefix + "." + part)) {
                        throw ModelFormatException.of(file.path(), "tensor '" + prefix + "." + part + "'",
                                "missing (GPTQ layer " + prefix + " has a qweight)");
                    }
                }
                if (gIdx == null && gptq.descAct()) {
                    throw ModelFormatException.of(file.path(), "tensor '" + prefix + ".g_idx'",
                            "missing, but desc_act (act-order) needs it");
                }
                gptqLayers.put(gguf, new GptqLinear(prefix, gptq, tensorOf(owner, prefix + ".qweight"),
                        tensorOf(owner, prefix + ".qzeros"), tensorOf(owner, prefix + ".scales"),
                        gIdx == null ? null : tensorOf(owner, prefix + ".g_idx")));
                continue;
            }
            String gguf = HfTensorNames.toGguf(hf);
            if (gguf == null) {
                throw unknown(file, hf);
            }
            SafetensorsFile.Entry entry = file.entries().get(hf);
            DType t = entry.dtype().engineType();
            if (t == null || !t.isFloatingPoint()) {
                throw ModelFormatException.of(file.path(), "tensor '" + hf + "' dtype", entry.dtype()
                        + " is not supported for weights (supported: F32, F16, BF16)");
            }
            int layer = HfTensorNames.layerOf(gguf);
            if (gguf.endsWith(".bias")) {
                String kind = HfTensorNames.kindOf(gguf);
                if (!kind.equals("attn_q") && !kind.equals("attn_k") && !kind.equals("attn_v")) {
                    requireZero(file, entry);
                    continue;
                }
            }
            (layer < 0 ? global : layers.computeIfAbsent(layer, k -> new LinkedHashMap<>()))
                    .put(gguf, new Direct(file, entry));
        }
        for (Map.Entry<String, GptqLinear> e : gptqLayers.entrySet()) {
            String gguf = e.getKey();
            int layer = HfTensorNames.layerOf(gguf);
            boolean down = layer >= 0 && HfTensorNames.kindOf(gguf).equals("ffn_down");
            Source s = new Gptq(e.getValue(), e.getValue().layout(down), null);
            (layer < 0 ? global : layers.computeIfAbsent(layer, k -> new LinkedHashMap<>())).put(gguf, s);
        }
        // Row orders: RoPE interleaving of q/k, and act-order down projections folded into gate/up.
        for (Map.Entry<Integer, Map<String, Source>> l : layers.entrySet()) {
            Map<String, Source> blk = l.getValue();
            String p = "blk." + l.getKey() + ".";
            if (config.permuteQk()) {
                int[] q = ropeRowOrder(config.heads(), config.headDim());
                int[] k = ropeRowOrder(config.kvHeads(), config.headDim());
                for (String n : new String[] {"attn_q.weight", "attn_q.bias"}) {
                    withRowOrder(blk, p + n, q);
                }
                for (String n : new String[] {"attn_k.weight", "attn_k.bias"}) {
                    withRowOrder(blk, p + n, k);
                }
            }
            if (blk.get(p + "ffn_down.weight") instanceof Gptq g && g.layout().permutesInput()) {
                int[] order = g.layout().inputOrder();
                for (String n : new String[] {"ffn_gate.weight", "ffn_up.weight"}) {
                    if (!blk.containsKey(p + n)) {
                        throw new ModelFormatException(dir + ": " + p + n + " is missing");
                    }
                    withRowOrder(blk, p + n, order);
                }
            }
        }
        if (!global.containsKey("output.weight") && !config.tiedEmbeddings()) {
            throw ModelFormatException.of(dir, "tensor 'lm_head.weight'", "missing, and config.json does not tie it to "
                    + "the embeddings (tie_word_embeddings)");
        }
        Map<String, Source> out = new LinkedHashMap<>();
        putIf(out, global, "token_embd.weight");
        if (config.ropeFreqs() != null) {
            out.put("rope_freqs.weight", new Floats(config.ropeFreqs()));
        }
        for (Map.Entry<Integer, Map<String, Source>> l : layers.entrySet()) {
            String p = "blk." + l.getKey() + ".";
            for (String kind : HfTensorNames.KIND_ORDER) {
                putIf(out, l.getValue(), p + kind + ".weight");
                putIf(out, l.getValue(), p + kind + ".bias");
            }
        }
        putIf(out, global, "output_norm.weight");
        putIf(out, global, "output.weight");
        return out;
    }

    private static void putIf(Map<String, Source> out, Map<String, Source> from, String name) {
        Source s = from.get(name);
        if (s != null) {
            out.put(name, s);
        }
    }

    private static void withRowOrder(Map<String, Source> blk, String name, int[] order) {
        Source s = blk.get(name);
        Source r = switch (s) {
            case null -> null;
            case Direct d -> new Permuted(d.file(), d.entry(), order);
            case Permuted p -> new Permuted(p.file(), p.entry(), compose(p.rowOrder(), order));
            case Gptq g -> new Gptq(g.linear(), g.layout(), g.rowOrder() == null ? order : compose(g.rowOrder(), order));
            case Floats f -> throw new IllegalStateException(name);
        };
        if (r != null) {
            blk.put(name, r);
        }
    }

    /** Applying {@code first} then {@code then}: row r of the result is source row first[then[r]]. */
    private static int[] compose(int[] first, int[] then) {
        int[] out = new int[then.length];
        for (int r = 0; r < then.length; r++) {
            out[r] = first[then[r]];
        }
        return out;
    }

    /**
     * GGUF row {@code h·d + 2i + j} is HF row {@code h·d + j·d/2 + i}: llama.cpp's {@code permute} in
     * {@code convert_hf_to_gguf.py}, which turns the rotate-half pairs {@code (i, i + d/2)} into adjacent ones.
     */
    public static int[] ropeRowOrder(int heads, int headDim) {
        int[] order = new int[heads * headDim];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < half; i++) {
                for (int j = 0; j < 2; j++) {
                    order[h * headDim + 2 * i + j] = h * headDim + j * half + i;
                }
            }
        }
        return order;
    }

    private static Tensor tensorOf(Map<String, SafetensorsFile> owner, String hf) {
        return owner.get(hf).tensor(hf);
    }

    private static ModelFormatException unknown(SafetensorsFile file, String hf) {
        return ModelFormatException.of(file.path(), "tensor '" + hf + "'",
                "not a tensor of a Llama/Mistral/Qwen2 decoder that the graph knows");
    }

    /** A bias the graph has no place for may exist only if it is zero. */
    private static void requireZero(SafetensorsFile file, SafetensorsFile.Entry e) {
        MemorySegment b = file.bytes(e);
        int size = e.dtype().bytes();
        for (long i = 0; i < e.byteSize(); i += size) {
            boolean zero = size == 4 ? (b.get(LE_INT, i) & 0x7FFF_FFFF) == 0 : (b.get(LE_SHORT, i) & 0x7FFF) == 0;
            if (!zero) {
                throw ModelFormatException.of(file.path(), "tensor '" + e.name() + "'",
                        "a non-zero bias is not supported on this layer");
            }
        }
    }

    private TensorInfo info(String name, Source s) {
        return switch (s) {
            case Direct d -> new TensorInfo(name, d.entry().dtype().engineType(), d.entry().shape(), d.entry().offset(),
                    d.entry().byteSize());
            case Permuted p -> new TensorInfo(name, p.entry().dtype().engineType(), p.entry().shape(), -1,
                    p.entry().byteSize());
            case Gptq g -> {
                long[] shape = {g.linear().out(), g.linear().in()};
                yield new TensorInfo(name, g.layout().dtype(), shape, -1, Tensor.byteSizeOf(g.layout().dtype(), shape));
            }
            case Floats f -> new TensorInfo(name, DType.F32, new long[] {f.values().length}, -1, 4L * f.values().length);
        };
    }

    /** The parsed config.json. */
    public HfConfig config() {
        return config;
    }

    /** The GPTQ config, or null if the checkpoint has none. */
    public GptqConfig gptqConfig() {
        return gptq;
    }

    /** The safetensors files. */
    public List<SafetensorsFile> shards() {
        return shards;
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public String format() {
        return sources.values().stream().anyMatch(s -> s instanceof Gptq) ? "safetensors-gptq" : "safetensors";
    }

    @Override
    public Metadata metadata() {
        return metadata;
    }

    @Override
    public List<TensorInfo> tensorInfos() {
        return infos;
    }

    @Override
    public boolean hasTensor(String name) {
        return sources.containsKey(name);
    }

    @Override
    public synchronized Tensor tensor(String name) {
        Source s = sources.get(name);
        if (s == null) {
            throw ModelFormatException.of(path, "tensor '" + name + "'", "not in the checkpoint"
                    + (name.equals("output.weight") ? " (the output is tied to token_embd.weight)" : ""));
        }
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
        Tensor t = built.get(name);
        if (t != null) {
            return t;
        }
        t = switch (s) {
            case Direct d -> d.file().tensor(d.entry());
            case Permuted p -> permutedCopy(p);
            case Gptq g -> g.linear().materialize(g.layout(), g.rowOrder(), arena);
            case Floats f -> {
                Tensor x = Tensor.allocate(arena, DType.F32, f.values().length);
                x.copyFrom(f.values());
                yield x;
            }
        };
        if (!(s instanceof Direct)) {
            built.put(name, t);
        }
        return t;
    }

    private Tensor permutedCopy(Permuted p) {
        Tensor src = p.file().tensor(p.entry());
        long rows = src.dim(0);
        if (rows != p.rowOrder().length) {
            throw ModelFormatException.of(p.file().path(), "tensor '" + p.entry().name() + "'", "has " + rows
                    + " rows, expected " + p.rowOrder().length + " (heads × head size)");
        }
        Tensor dst = Tensor.allocate(arena, src.dtype(), src.shape());
        long rowBytes = src.rank() == 1 ? src.dtype().blockBytes() : src.rowBytes();
        for (int r = 0; r < rows; r++) {
            MemorySegment.copy(src.segment(), rowBytes * p.rowOrder()[r], dst.segment(), rowBytes * r, rowBytes);
        }
        return dst;
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            built.clear();
            shards.forEach(SafetensorsFile::close);
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsModel[" + path + ", " + shards.size() + " files, " + infos.size() + " tensors"
                + (format().endsWith("gptq") ? ", GPTQ" : "") + "]";
    }
}
