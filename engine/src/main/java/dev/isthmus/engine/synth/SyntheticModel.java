package dev.isthmus.engine.synth;

import dev.isthmus.api.DType;
import dev.isthmus.engine.gguf.GgufType;
import dev.isthmus.engine.gguf.GgufWriter;
import dev.isthmus.engine.quant.ModelQuantizer;
import dev.isthmus.engine.quant.QuantRecipe;
import dev.isthmus.engine.quant.Quantization;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * A Llama-architecture model with the tensor shapes of a real one and seeded random weights, written as a
 * runnable GGUF file of any {@link QuantRecipe}: for benchmarking kernels and memory traffic at real sizes
 * without downloading weights. It generates gibberish.
 *
 * <p>Weight matrices are normal with standard deviation {@link #WEIGHT_STD}; norm weights are 1. Element
 * {@code (r, c)} of a tensor depends only on the seed, the tensor's name and r (see {@link #row}), so
 * files of every type made from one seed hold the same model, and tests can regenerate any row. Rows are
 * generated and quantized on several threads straight into the mapped output file: a 2.5 GB model needs a
 * few megabytes of heap.
 *
 * <p>The vocabulary is byte-level BPE ({@code tokenizer.ggml.model} {@code gpt2}, pre-tokenizer
 * {@code llama-bpe}): the 256 bytes, merges learnt from a short English text, made-up words up to the
 * vocabulary size, then BOS and EOS. The metadata carries every {@code llama.*} key the engine needs, and
 * {@code isthmus.synthetic.shape} / {@code isthmus.synthetic.seed} to say what the file is.
 */
public final class SyntheticModel {
    /** Standard deviation of the weight matrices' elements. */
    public static final float WEIGHT_STD = 0.02f;
    public static final String KEY_SHAPE = "isthmus.synthetic.shape";
    public static final String KEY_SEED = "isthmus.synthetic.seed";

    /**
     * The hyper-parameters of a model to imitate.
     *
     * @param name           what {@code --shape} calls it
     * @param dim            embedding width
     * @param layers         transformer blocks
     * @param heads          query heads
     * @param kvHeads        key/value heads
     * @param ffnDim         feed-forward hidden width
     * @param vocabSize      tokens
     * @param tiedEmbeddings true if {@code token_embd.weight} doubles as the output matrix (no {@code output.weight})
     * @param ropeTheta      RoPE base frequency
     * @param contextLength  {@code llama.context_length}; the engine sizes its KV cache by the run, not by this
     * @param rmsEps         RMSNorm epsilon
     */
    public record Shape(String name, int dim, int layers, int heads, int kvHeads, int ffnDim, int vocabSize,
                        boolean tiedEmbeddings, float ropeTheta, int contextLength, float rmsEps) {
        /** Llama 3.2 1B: 1.24 billion parameters, 128k vocabulary, tied embeddings. */
        public static final Shape LLAMA_3_2_1B =
                new Shape("llama-3.2-1b", 2048, 16, 32, 8, 8192, 128256, true, 500000f, 131072, 1e-5f);
        /** TinyLlama 1.1B: 1.10 billion parameters, 32k vocabulary, separate output matrix. */
        public static final Shape TINYLLAMA_1_1B =
                new Shape("tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, false, 10000f, 2048, 1e-5f);
        /**
         * 1.4 million parameters for tests: rows of 256 and 512 so that every K-quant applies, grouped-query
         * attention and a separate output matrix, like the real shapes.
         */
        public static final Shape TINY = new Shape("tiny", 256, 2, 4, 2, 512, 512, false, 10000f, 2048, 1e-5f);

        public Shape {
            if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || dim % heads != 0
                    || ffnDim <= 0 || vocabSize < 258 || contextLength <= 0) {
                throw new IllegalArgumentException("inconsistent shape " + name);
            }
        }

        /** Every predefined shape. */
        public static List<Shape> all() {
            return List.of(LLAMA_3_2_1B, TINYLLAMA_1_1B, TINY);
        }

        /**
         * The predefined shape of that name (case-insensitive).
         *
         * @throws IllegalArgumentException naming the known shapes if there is none
         */
        public static Shape named(String name) {
            for (Shape s : all()) {
                if (s.name.equalsIgnoreCase(name)) {
                    return s;
                }
            }
            throw new IllegalArgumentException("unknown shape '" + name + "' (one of: "
                    + String.join(", ", all().stream().map(Shape::name).toList()) + ")");
        }

        /** Width of one attention head. */
        public int headDim() {
            return dim / heads;
        }

        /** Width of the key and value projections. */
        public int kvDim() {
            return kvHeads * headDim();
        }

        /** Elements of all tensors. */
        public long parameterCount() {
            long perLayer = 2L * dim + (long) dim * dim * 2 + 2L * kvDim() * dim + 3L * ffnDim * dim;
            return (long) vocabSize * dim * (tiedEmbeddings ? 1 : 2) + dim + layers * perLayer;
        }
    }

    private final Shape shape;
    private final long seed;
    private final List<QuantRecipe.Tensor> tensors;

    public SyntheticModel(Shape shape, long seed) {
        this.shape = shape;
        this.seed = seed;
        this.tensors = layout(shape);
    }

    /** The shape imitated. */
    public Shape shape() {
        return shape;
    }

    /** The seed every weight derives from. */
    public long seed() {
        return seed;
    }

    /** Every tensor in file order, all F32 before conversion; shapes are outermost first ({@code [rows, cols]}). */
    public List<QuantRecipe.Tensor> tensors() {
        return tensors;
    }

    private static List<QuantRecipe.Tensor> layout(Shape s) {
        List<QuantRecipe.Tensor> t = new ArrayList<>();
        t.add(tensor("token_embd.weight", s.vocabSize(), s.dim()));
        for (int l = 0; l < s.layers(); l++) {
            String p = "blk." + l + ".";
            t.add(tensor(p + "attn_norm.weight", s.dim()));
            t.add(tensor(p + "attn_q.weight", s.dim(), s.dim()));
            t.add(tensor(p + "attn_k.weight", s.kvDim(), s.dim()));
            t.add(tensor(p + "attn_v.weight", s.kvDim(), s.dim()));
            t.add(tensor(p + "attn_output.weight", s.dim(), s.dim()));
            t.add(tensor(p + "ffn_norm.weight", s.dim()));
            t.add(tensor(p + "ffn_gate.weight", s.ffnDim(), s.dim()));
            t.add(tensor(p + "ffn_up.weight", s.ffnDim(), s.dim()));
            t.add(tensor(p + "ffn_down.weight", s.dim(), s.ffnDim()));
        }
        t.add(tensor("output_norm.weight", s.dim()));
        if (!s.tiedEmbeddings()) {
            t.add(tensor("output.weight", s.vocabSize(), s.dim()));
        }
        return List.copyOf(t);
    }

    private static QuantRecipe.Tensor tensor(String name, long... shape) {
        return new QuantRecipe.Tensor(name, shape, DType.F32);
    }

    /**
     * Fills {@code dst} with row {@code row} of tensor {@code name} as generated (before any conversion): ones
     * for norms, else normal values of standard deviation {@link #WEIGHT_STD} from a generator seeded by the
     * seed, the name and the row alone. Thread-safe.
     *
     * @throws IllegalArgumentException if there is no such tensor, row, or {@code dst} is not one row long
     */
    public void row(String name, long row, float[] dst) {
        QuantRecipe.Tensor t = find(name);
        long[] shape = t.shape();
        long rows = shape.length == 1 ? 1 : shape[0];
        if (row < 0 || row >= rows || dst.length != shape[shape.length - 1]) {
            throw new IllegalArgumentException("tensor '" + name + "' " + Arrays.toString(shape) + ": no row " + row
                    + " of " + dst.length + " elements");
        }
        fillRow(name, shape.length == 1, row, dst);
    }

    private void fillRow(String name, boolean norm, long row, float[] dst) {
        if (norm) {
            Arrays.fill(dst, 1f);
            return;
        }
        SplittableRandom random = new SplittableRandom(mix(mix(seed ^ nameHash(name)) + row));
        for (int i = 0; i < dst.length; i++) {
            dst[i] = (float) (random.nextGaussian() * WEIGHT_STD);
        }
    }

    private QuantRecipe.Tensor find(String name) {
        for (QuantRecipe.Tensor t : tensors) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("no tensor '" + name + "' in shape " + shape.name());
    }

    /** FNV-1a of the UTF-8 name: stable across runs and JVMs, unlike identity hashes. */
    private static long nameHash(String name) {
        long h = 0xcbf29ce484222325L;
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            h = (h ^ (b & 0xFF)) * 0x100000001b3L;
        }
        return h;
    }

    /** SplitMix64's finalizer: neighbouring rows get unrelated generator seeds. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /**
     * A writer holding this model's metadata and tensors converted by {@code recipe}; nothing is generated
     * until {@link GgufWriter#write} reaches each tensor.
     *
     * @param threads  threads that generate and quantize each tensor's rows
     * @param onTensor told of each tensor just before its data is written, in file order
     */
    public GgufWriter writer(QuantRecipe recipe, int threads, Consumer<QuantRecipe.Choice> onTensor) {
        GgufWriter w = new GgufWriter();
        putMetadata(w, recipe);
        for (QuantRecipe.Choice c : recipe.plan(tensors)) {
            String name = c.tensor().name();
            long[] shape = c.tensor().shape();
            boolean norm = shape.length == 1;
            long rows = norm ? 1 : shape[0];
            int cols = Math.toIntExact(shape[shape.length - 1]);
            w.tensor(name, c.type(), shape, target -> {
                onTensor.accept(c);
                Quantization.quantizeRows(c.type(), rows, cols, (r, dst) -> fillRow(name, norm, r, dst), target, threads);
            });
        }
        return w;
    }

    /** Writes the model converted by {@code recipe} to {@code out} (replaced only once complete). */
    public void write(Path out, QuantRecipe recipe, int threads, Consumer<QuantRecipe.Choice> onTensor) throws IOException {
        writer(recipe, threads, onTensor).write(out);
    }

    private void putMetadata(GgufWriter w, QuantRecipe recipe) {
        String a = "llama.";
        w.put("general.architecture", "llama");
        w.put("general.name", "isthmus synthetic " + shape.name() + " " + recipe.name());
        w.put("general.description", String.format(Locale.ROOT,
                "random weights (normal, std %s; seed %d) with the shapes of %s: generates gibberish",
                WEIGHT_STD, seed, shape.name()));
        w.put("general.file_type", recipe.fileType(), GgufType.UINT32);
        w.put("general.quantization_version", ModelQuantizer.QUANTIZATION_VERSION, GgufType.UINT32);
        w.put(KEY_SHAPE, shape.name());
        w.put(KEY_SEED, seed, GgufType.UINT64);
        w.put(a + "vocab_size", shape.vocabSize(), GgufType.UINT32);
        w.put(a + "context_length", shape.contextLength(), GgufType.UINT32);
        w.put(a + "embedding_length", shape.dim(), GgufType.UINT32);
        w.put(a + "block_count", shape.layers(), GgufType.UINT32);
        w.put(a + "feed_forward_length", shape.ffnDim(), GgufType.UINT32);
        w.put(a + "rope.dimension_count", shape.headDim(), GgufType.UINT32);
        w.put(a + "attention.head_count", shape.heads(), GgufType.UINT32);
        w.put(a + "attention.head_count_kv", shape.kvHeads(), GgufType.UINT32);
        w.put(a + "attention.layer_norm_rms_epsilon", shape.rmsEps(), GgufType.FLOAT32);
        w.put(a + "rope.freq_base", shape.ropeTheta(), GgufType.FLOAT32);
        SyntheticVocabulary v = new SyntheticVocabulary(shape.vocabSize());
        w.put("tokenizer.ggml.model", "gpt2");
        w.put("tokenizer.ggml.pre", "llama-bpe");
        w.put("tokenizer.ggml.tokens", v.tokens);
        w.put("tokenizer.ggml.token_type", v.types, GgufType.INT32);
        w.put("tokenizer.ggml.merges", v.merges);
        w.put("tokenizer.ggml.bos_token_id", v.bos, GgufType.UINT32);
        w.put("tokenizer.ggml.eos_token_id", v.eos, GgufType.UINT32);
        w.put("tokenizer.ggml.add_bos_token", true);
    }
}
