package dev.isthmus.engine.quant;

import dev.isthmus.api.DType;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Which type each tensor of a model gets when the whole model is converted to one "file type", as
 * {@code llama-quantize} names them.
 *
 * <p>Only weight matrices are converted: tensors of rank ≥ 2 whose name ends in {@code weight} and is not a
 * norm ({@code *_norm.weight}). Everything else — norms, biases, other 1-D tensors — keeps its type.
 *
 * <ul>
 *   <li><b>Single types</b> ({@code F32}, {@code F16}, {@code BF16}, {@code Q8_0}, {@code Q4_0}, {@code Q4_1},
 *       {@code Q5_0}, {@code Q5_1}, {@code Q2_K}, {@code Q3_K}, {@code Q4_K}, {@code Q5_K}, {@code Q6_K}): every
 *       weight matrix, {@code token_embd} and {@code output} included, gets that type, like
 *       {@code llama-quantize --pure}, so that a benchmark measures that type's kernels alone.</li>
 *   <li><b>Mixtures</b> {@code Q4_K_M} and {@code Q5_K_M}, llama.cpp's recipes for Llama-style models: Q6_K for
 *       {@code output.weight} (or, with tied embeddings, for {@code token_embd.weight}, which then serves as
 *       the output), and for {@code attn_v} and {@code ffn_down} in the layers llama.cpp's
 *       {@code use_more_bits} picks — the first and last eighth of the layers and every third layer in
 *       between; Q4_K (Q5_K) for every other matrix, an untied {@code token_embd} included.</li>
 * </ul>
 *
 * <p>A row length that the chosen type's blocks do not divide falls back as in llama.cpp: Q2_K and Q3_K to
 * Q4_0, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0 (for the output tensor of a mixture, straight to Q8_0), and
 * to F16 when even 32 does not divide it. {@link Choice#fellBack()} reports it.
 */
public final class QuantRecipe {
    /** A tensor to place: its name, shape (outermost first, the row is the innermost dimension) and current type. */
    public record Tensor(String name, long[] shape, DType source) {
        public Tensor {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(source, "source");
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        long rowLength() {
            return shape.length == 0 ? 1 : shape[shape.length - 1];
        }
    }

    /**
     * The type chosen for one tensor.
     *
     * @param tensor the tensor
     * @param type   the type it is written in
     * @param wanted the type the recipe asked for before falling back for the row length (equal to {@code type}
     *               unless it fell back)
     */
    public record Choice(Tensor tensor, DType type, DType wanted) {
        /** True if the tensor's row length forced a type other than the recipe's. */
        public boolean fellBack() {
            return type != wanted;
        }

        /** True if the tensor changes type (false: its bytes are copied as they are). */
        public boolean converts() {
            return type != tensor.source();
        }
    }

    private static final Map<String, QuantRecipe> BY_NAME = new LinkedHashMap<>();

    static {
        // general.file_type values are llama.cpp's llama_ftype; single K types take the _S label, as
        // llama-quantize --pure writes them.
        add("F32", DType.F32, false, 0);
        add("F16", DType.F16, false, 1);
        add("BF16", DType.BF16, false, 32);
        add("Q8_0", DType.Q8_0, false, 7);
        add("Q4_0", DType.Q4_0, false, 2);
        add("Q4_1", DType.Q4_1, false, 3);
        add("Q5_0", DType.Q5_0, false, 8);
        add("Q5_1", DType.Q5_1, false, 9);
        add("Q2_K", DType.Q2_K, false, 10);
        add("Q3_K", DType.Q3_K, false, 11);
        add("Q4_K", DType.Q4_K, false, 14);
        add("Q5_K", DType.Q5_K, false, 16);
        add("Q6_K", DType.Q6_K, false, 18);
        add("Q4_K_M", DType.Q4_K, true, 15);
        add("Q5_K_M", DType.Q5_K, true, 17);
    }

    private static void add(String name, DType base, boolean mixture, int fileType) {
        BY_NAME.put(name, new QuantRecipe(name, base, mixture, fileType));
    }

    private final String name;
    private final DType base;
    private final boolean mixture;
    private final int fileType;

    private QuantRecipe(String name, DType base, boolean mixture, int fileType) {
        this.name = name;
        this.base = base;
        this.mixture = mixture;
        this.fileType = fileType;
    }

    /** Every recipe name, in a sensible order for help texts. */
    public static List<String> names() {
        return List.copyOf(BY_NAME.keySet());
    }

    /**
     * The recipe of that name (case-insensitive).
     *
     * @throws IllegalArgumentException naming the valid names if there is none
     */
    public static QuantRecipe named(String name) {
        QuantRecipe r = name == null ? null : BY_NAME.get(name.toUpperCase(Locale.ROOT));
        if (r == null) {
            throw new IllegalArgumentException("unknown type '" + name + "' (one of: " + String.join(", ", names()) + ")");
        }
        return r;
    }

    /** The name as {@code llama-quantize} spells it, e.g. {@code Q4_K_M}. */
    public String name() {
        return name;
    }

    /** The type of most weight matrices. */
    public DType baseType() {
        return base;
    }

    /** True for Q4_K_M and Q5_K_M. */
    public boolean isMixture() {
        return mixture;
    }

    /** The {@code general.file_type} value llama.cpp writes for this recipe (its {@code llama_ftype}). */
    public int fileType() {
        return fileType;
    }

    /** The type of every tensor, in the given order. */
    public List<Choice> plan(List<Tensor> tensors) {
        boolean tied = tensors.stream().noneMatch(t -> t.name().equals("output.weight"));
        int attnV = (int) tensors.stream().filter(t -> t.name().contains("attn_v.weight")).count();
        int ffnDown = (int) tensors.stream().filter(t -> t.name().contains("ffn_down")).count();
        int iAttnV = 0;
        int iFfnDown = 0;
        List<Choice> out = new ArrayList<>(tensors.size());
        for (Tensor t : tensors) {
            if (!isWeightMatrix(t)) {
                out.add(new Choice(t, t.source(), t.source()));
                continue;
            }
            DType wanted = base;
            if (mixture) {
                String n = t.name();
                if (n.equals("output.weight") || (tied && n.equals("token_embd.weight"))) {
                    wanted = t.rowLength() % DType.Q6_K.blockSize() == 0 ? DType.Q6_K : DType.Q8_0;
                } else if (n.contains("attn_v.weight")) {
                    wanted = useMoreBits(iAttnV++, attnV) ? DType.Q6_K : base;
                } else if (n.contains("ffn_down")) {
                    wanted = useMoreBits(iFfnDown++, ffnDown) ? DType.Q6_K : base;
                }
            }
            out.add(new Choice(t, fit(wanted, t.rowLength()), wanted));
        }
        return out;
    }

    /** llama.cpp's choice of layers that get more bits: the first and last eighth, and every third one between. */
    static boolean useMoreBits(int layer, int layers) {
        return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
    }

    private static boolean isWeightMatrix(Tensor t) {
        return t.shape.length >= 2 && t.name().endsWith("weight") && !t.name().contains("_norm.weight");
    }

    /** {@code wanted}, or the type llama.cpp falls back to when its blocks do not divide the row. */
    static DType fit(DType wanted, long rowLength) {
        if (rowLength % wanted.blockSize() == 0) {
            return wanted;
        }
        DType fallback = switch (wanted) {
            case Q2_K, Q3_K -> DType.Q4_0;
            case Q4_K -> DType.Q5_0;
            case Q5_K -> DType.Q5_1;
            case Q6_K, Q8_K -> DType.Q8_0;
            default -> DType.F16;
        };
        return rowLength % fallback.blockSize() == 0 ? fallback : DType.F16;
    }

    @Override
    public String toString() {
        return name;
    }
}
