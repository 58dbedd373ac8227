package dev.isthmus.engine.llama2c;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.MappedFile;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.format.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A llama2.c ({@code run.c}) float32 checkpoint, memory-mapped, presented like a GGUF llama model.
 *
 * <p>The file is a header of seven little-endian int32 — dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size (negative when the classifier is stored separately at the end), seq_len —
 * followed by float32 weights, each kind stacked over all layers: token embedding, attention norms,
 * wq, wk, wv, wo, ffn norms, w1, w2, w3, final norm, two legacy RoPE tables (skipped), and the
 * classifier if unshared. Tensors are exposed zero-copy under GGUF llama names and shapes
 * ({@code blk.N.attn_q.weight} = wq of layer N, [dim, dim]; {@code ffn_gate}/{@code ffn_down}/{@code ffn_up}
 * = w1/w2/w3); {@code output.weight} exists only when the classifier is unshared, as in GGUF files
 * where a missing output means "tied to token_embd". Metadata is synthesized with GGUF llama keys
 * (see {@link #metadata()}), including the vocabulary of a llama2.c {@code tokenizer.bin}.
 */
public final class Llama2cCheckpoint implements ModelFile {
    static final int HEADER_BYTES = 7 * 4;
    static final float ROPE_FREQ_BASE = 10000f;
    static final float RMS_EPS = 1e-5f;
    private static final Pattern BYTE_PIECE = Pattern.compile("<0x[0-9A-Fa-f]{2}>");
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * The checkpoint header.
     *
     * @param vocabSize        the vocabulary size (always positive here)
     * @param sharedClassifier true if the classifier is the token embedding (header vocab_size positive)
     */
    public record Config(int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize,
                         boolean sharedClassifier, int seqLen) {
        public int headSize() {
            return dim / nHeads;
        }

        public int kvDim() {
            return nKvHeads * headSize();
        }

        /**
         * Exact file size run.c expects: header plus every float.
         *
         * @throws ArithmeticException if it does not fit a long
         */
        public long expectedFileSize() {
            long l = nLayers;
            long d = dim;
            long perLayer = Math.addExact(Math.addExact(
                    Math.multiplyExact(2, d),                                      // attention and ffn norms
                    Math.multiplyExact(Math.multiplyExact(2, d), d)),              // wq, wo
                    Math.addExact(
                            Math.multiplyExact(Math.multiplyExact(2, d), kvDim()),  // wk, wv
                            Math.multiplyExact(Math.multiplyExact(3, d), hiddenDim))); // w1, w2, w3
            long embedding = Math.multiplyExact((long) vocabSize, d);
            long floats = Math.addExact(embedding, Math.multiplyExact(l, perLayer));
            floats = Math.addExact(floats, d);                                        // final norm
            floats = Math.addExact(floats, 2 * ((long) seqLen * headSize() / 2));   // freq_cis_real, freq_cis_imag
            if (!sharedClassifier) {
                floats = Math.addExact(floats, embedding);
            }
            return Math.addExact(HEADER_BYTES, Math.multiplyExact(4, floats));
        }
    }

    private final Path path;
    private final Config config;
    private final Arena arena;
    private final MemorySegment file;
    private final Metadata metadata;
    private final List<TensorInfo> tensors;
    private final Map<String, TensorInfo> byName;
    private volatile boolean closed;

    private Llama2cCheckpoint(Path path, Config config, Arena arena, MemorySegment file, Metadata metadata) {
        this.path = path;
        this.config = config;
        this.arena = arena;
        this.file = file;
        this.metadata = metadata;
        this.tensors = List.copyOf(layout(config));
        Map<String, TensorInfo> m = new HashMap<>();
        for (TensorInfo t : tensors) {
            m.put(t.name(), t);
        }
        this.byName = m;
    }

    /**
     * Opens a checkpoint with the vocabulary of {@code tokenizerBin}.
     *
     * @param tokenizerBin a llama2.c {@code tokenizer.bin} with at least the checkpoint's vocab_size
     *                     tokens; null opens the weights alone (metadata then has no tokenizer keys)
     * @throws ModelFormatException if either file is malformed or they do not fit together
     * @throws UncheckedIOException if a file cannot be read
     */
    public static Llama2cCheckpoint open(Path checkpoint, Path tokenizerBin) {
        Config c = readConfig(checkpoint);
        Metadata tokenizer = tokenizerBin == null ? null : readTokenizer(tokenizerBin, c.vocabSize());
        return MappedFile.open(checkpoint, (seg, arena) -> {
            if (seg.byteSize() != c.expectedFileSize()) {
                // Re-checked because the file may have changed since the header was read.
                throw sizeMismatch(checkpoint, c, seg.byteSize());
            }
            return new Llama2cCheckpoint(checkpoint, c, arena, seg, synthesize(checkpoint, c, tokenizer));
        });
    }

    /**
     * Reads and validates a checkpoint header: positive sizes, heads dividing dim, KV heads dividing
     * heads, an even head size, and a file size equal to exactly what the header implies.
     *
     * @throws ModelFormatException naming the file, the field and the value otherwise
     */
    public static Config readConfig(Path checkpoint) {
        long size;
        int[] h = new int[7];
        try (FileChannel ch = FileChannel.open(checkpoint, StandardOpenOption.READ)) {
            size = ch.size();
            if (size < HEADER_BYTES) {
                throw ModelFormatException.of(checkpoint, "llama2.c header",
                        "truncated: the file has " + size + " bytes, the header needs " + HEADER_BYTES);
            }
            ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            while (b.hasRemaining() && ch.read(b) >= 0) {
                // a channel may return fewer bytes than asked
            }
            if (b.hasRemaining()) {
                throw ModelFormatException.of(checkpoint, "llama2.c header", "truncated while reading");
            }
            b.flip().asIntBuffer().get(h);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + checkpoint + ": " + e.getMessage(), e);
        }
        String[] names = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
        for (int i = 0; i < 7; i++) {
            boolean ok = i == 5 ? h[i] != 0 && h[i] != Integer.MIN_VALUE : h[i] > 0;
            if (!ok) {
                throw ModelFormatException.of(checkpoint, "llama2.c header " + names[i],
                        h[i] + " is not a valid size" + (i == 5 ? " (must be non-zero)" : " (must be positive)"));
            }
        }
        int dim = h[0];
        int nHeads = h[3];
        int nKv = h[4];
        if (dim % nHeads != 0) {
            throw ModelFormatException.of(checkpoint, "llama2.c header n_heads", nHeads + " does not divide dim " + dim);
        }
        if (nKv > nHeads || nHeads % nKv != 0) {
            throw ModelFormatException.of(checkpoint, "llama2.c header n_kv_heads",
                    nKv + " does not divide n_heads " + nHeads);
        }
        if ((dim / nHeads) % 2 != 0) {
            throw ModelFormatException.of(checkpoint, "llama2.c header n_heads",
                    "head size " + dim + "/" + nHeads + " = " + dim / nHeads + " is odd; RoPE needs an even head size");
        }
        Config c = new Config(dim, h[1], h[2], nHeads, nKv, Math.abs(h[5]), h[5] > 0, h[6]);
        try {
            c.expectedFileSize();
        } catch (ArithmeticException e) {
            throw ModelFormatException.of(checkpoint, "llama2.c header", c + " implies a size beyond 2^63 bytes");
        }
        if (size != c.expectedFileSize()) {
            throw sizeMismatch(checkpoint, c, size);
        }
        return c;
    }

    private static ModelFormatException sizeMismatch(Path path, Config c, long size) {
        return ModelFormatException.of(path, "file size", size + " bytes, but the header (" + c
                + ") needs exactly " + c.expectedFileSize() + " bytes with a "
                + (c.sharedClassifier() ? "shared" : "separate") + " classifier");
    }

    /**
     * Reads the first {@code vocabSize} tokens of a llama2.c {@code tokenizer.bin} (int32
     * max_token_length, then per token float32 score, int32 length, bytes) as GGUF tokenizer metadata:
     * {@code tokenizer.ggml.model} "llama", {@code .tokens}, {@code .scores}, {@code .token_type},
     * {@code .bos_token_id} 1, {@code .eos_token_id} 2, {@code .unknown_token_id} 0,
     * {@code .add_bos_token} true and {@code .add_space_prefix} true.
     *
     * <p>Pieces are converted to the SentencePiece spelling that GGUF files use: llama2.c's export
     * replaced the word-boundary mark U+2581 by a space and wrote BOS/EOS as {@code "\n<s>\n"} and
     * {@code "\n</s>\n"}; this undoes both, which makes the result identical to the vocabulary of the
     * same model in GGUF.
     *
     * @throws ModelFormatException if the file is malformed or has fewer than {@code vocabSize} tokens
     */
    public static Metadata readTokenizer(Path tokenizerBin, int vocabSize) {
        if (vocabSize <= 0) {
            throw new IllegalArgumentException("vocabSize " + vocabSize);
        }
        try (Arena arena = Arena.ofConfined();
             FileChannel ch = FileChannel.open(tokenizerBin, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            if (size < 4) {
                throw ModelFormatException.of(tokenizerBin, "max_token_length", "truncated: the file has " + size + " bytes");
            }
            int maxLen = seg.get(LE_INT, 0);
            if (maxLen <= 0) {
                throw ModelFormatException.of(tokenizerBin, "max_token_length", maxLen + " is not positive");
            }
            // Each token takes at least 8 bytes (score + length): reject impossible counts before allocating.
            if ((size - 4) / 8 < vocabSize) {
                throw ModelFormatException.of(tokenizerBin, "vocabulary", "the file (" + size
                        + " bytes) is too small for " + vocabSize + " tokens");
            }
            String[] tokens = new String[vocabSize];
            float[] scores = new float[vocabSize];
            int[] types = new int[vocabSize];
            long pos = 4;
            for (int i = 0; i < vocabSize; i++) {
                if (size - pos < 8) {
                    throw ModelFormatException.of(tokenizerBin, "token #" + i,
                            "truncated at offset " + pos + ": the file holds only " + i + " of " + vocabSize + " tokens");
                }
                scores[i] = seg.get(LE_FLOAT, pos);
                int len = seg.get(LE_INT, pos + 4);
                pos += 8;
                if (len < 0 || len > maxLen) {
                    throw ModelFormatException.of(tokenizerBin, "token #" + i + " length",
                            len + " is not between 0 and max_token_length " + maxLen);
                }
                if (len > size - pos) {
                    throw ModelFormatException.of(tokenizerBin, "token #" + i + " length",
                            len + " bytes at offset " + pos + " extends past the end of the file (" + size + " bytes)");
                }
                byte[] b = new byte[len];
                MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, b, 0, len);
                pos += len;
                tokens[i] = piece(i, new String(b, StandardCharsets.UTF_8));
                types[i] = tokenType(i, tokens[i]);
            }
            LinkedHashMap<String, Object> m = new LinkedHashMap<>();
            m.put("tokenizer.ggml.model", "llama");
            m.put("tokenizer.ggml.tokens", tokens);
            m.put("tokenizer.ggml.scores", scores);
            m.put("tokenizer.ggml.token_type", types);
            m.put("tokenizer.ggml.bos_token_id", 1L);
            m.put("tokenizer.ggml.eos_token_id", 2L);
            m.put("tokenizer.ggml.unknown_token_id", 0L);
            m.put("tokenizer.ggml.add_bos_token", true);
            m.put("tokenizer.ggml.add_space_prefix", true);
            return new Metadata(m, tokenizerBin.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + tokenizerBin + ": " + e.getMessage(), e);
        }
    }

    private static String piece(int id, String s) {
        if ((id == 1 || id == 2) && (s.strip().equals("<s>") || s.strip().equals("</s>"))) {
            return s.strip();
        }
        return s.replace(' ', '\u2581');
    }

    /** GGUF token types: 1 normal, 2 unknown, 3 control, 6 byte. */
    private static int tokenType(int id, String piece) {
        if (id == 0) {
            return 2;
        }
        if (id == 1 || id == 2) {
            return 3;
        }
        return BYTE_PIECE.matcher(piece).matches() ? 6 : 1;
    }

    private static Metadata synthesize(Path path, Config c, Metadata tokenizer) {
        LinkedHashMap<String, Object> m = new LinkedHashMap<>();
        String name = path.getFileName().toString();
        int dot = name.lastIndexOf('.');
        m.put("general.architecture", "llama");
        m.put("general.name", dot > 0 ? name.substring(0, dot) : name);
        // Long because GGUF stores these as uint32, which the reader returns as Long.
        m.put("llama.context_length", (long) c.seqLen());
        m.put("llama.embedding_length", (long) c.dim());
        m.put("llama.block_count", (long) c.nLayers());
        m.put("llama.feed_forward_length", (long) c.hiddenDim());
        m.put("llama.attention.head_count", (long) c.nHeads());
        m.put("llama.attention.head_count_kv", (long) c.nKvHeads());
        m.put("llama.rope.dimension_count", (long) c.headSize());
        m.put("llama.rope.freq_base", ROPE_FREQ_BASE);
        m.put("llama.attention.layer_norm_rms_epsilon", RMS_EPS);
        m.put("llama.vocab_size", (long) c.vocabSize());
        if (tokenizer != null) {
            m.putAll(tokenizer.asMap());
        }
        return new Metadata(m, path.toString());
    }

    private static List<TensorInfo> layout(Config c) {
        List<TensorInfo> out = new ArrayList<>();
        long dim = c.dim();
        long hidden = c.hiddenDim();
        long kvDim = c.kvDim();
        int layers = c.nLayers();
        long[] pos = {HEADER_BYTES};
        TensorInfo embd = block(pos, "token_embd.weight", c.vocabSize(), dim);
        out.add(embd);
        perLayer(out, pos, layers, "attn_norm", dim);
        perLayer(out, pos, layers, "attn_q", dim, dim);
        perLayer(out, pos, layers, "attn_k", kvDim, dim);
        perLayer(out, pos, layers, "attn_v", kvDim, dim);
        perLayer(out, pos, layers, "attn_output", dim, dim);
        perLayer(out, pos, layers, "ffn_norm", dim);
        perLayer(out, pos, layers, "ffn_gate", hidden, dim);
        perLayer(out, pos, layers, "ffn_down", dim, hidden);
        perLayer(out, pos, layers, "ffn_up", hidden, dim);
        out.add(block(pos, "output_norm.weight", dim));
        pos[0] += 4L * 2 * ((long) c.seqLen() * c.headSize() / 2);
        if (!c.sharedClassifier()) {
            out.add(block(pos, "output.weight", c.vocabSize(), dim));
        }
        return out;
    }

    /** Layer-stacked weights: all layers of one kind follow each other. */
    private static void perLayer(List<TensorInfo> out, long[] pos, int layers, String kind, long... shape) {
        for (int l = 0; l < layers; l++) {
            out.add(block(pos, "blk." + l + "." + kind + ".weight", shape));
        }
    }

    private static TensorInfo block(long[] pos, String name, long... shape) {
        long bytes = Tensor.byteSizeOf(DType.F32, shape);
        TensorInfo t = new TensorInfo(name, DType.F32, shape, pos[0], bytes);
        pos[0] += bytes;
        return t;
    }

    /** The header. */
    public Config config() {
        return config;
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public String format() {
        return "llama2c";
    }

    /**
     * Synthesized GGUF llama metadata: {@code general.architecture} "llama", {@code general.name} (file
     * name without extension), {@code llama.context_length} (seq_len), {@code llama.embedding_length},
     * {@code llama.block_count}, {@code llama.feed_forward_length}, {@code llama.attention.head_count},
     * {@code llama.attention.head_count_kv}, {@code llama.rope.dimension_count} (head size),
     * {@code llama.rope.freq_base} 10000, {@code llama.attention.layer_norm_rms_epsilon} 1e-5,
     * {@code llama.vocab_size} (integers as Long, like GGUF's uint32), then the tokenizer keys of
     * {@link #readTokenizer}.
     */
    @Override
    public Metadata metadata() {
        return metadata;
    }

    @Override
    public List<TensorInfo> tensorInfos() {
        return tensors;
    }

    /** The info of a tensor, or null if there is none of that name. */
    public TensorInfo tensorInfo(String name) {
        return byName.get(name);
    }

    @Override
    public boolean hasTensor(String name) {
        return byName.containsKey(name);
    }

    @Override
    public Tensor tensor(String name) {
        TensorInfo t = byName.get(name);
        if (t == null) {
            throw ModelFormatException.of(path, "tensor '" + name + "'", "not in the checkpoint"
                    + (name.equals("output.weight") ? " (the classifier is shared with token_embd.weight)" : ""));
        }
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
        return Tensor.host(file.asSlice(t.offset(), t.byteSize()), t.dtype(), t.shape());
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "Llama2cCheckpoint[" + path + ", " + config + "]";
    }
}
