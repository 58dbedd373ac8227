package dev.isthmus.engine.gptq;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.ModelFormatException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * One GPTQ-quantized linear layer ({@code y = W x}, {@code W} of {@code out × in}) and its conversion to a weight
 * the engine's matmul runs directly.
 *
 * <p><b>GPTQ layout</b> (AutoGPTQ / GPTQModel, 4 bits): {@code qweight} I32 {@code [in/8, out]}, input row
 * {@code i} of output column {@code o} in bits {@code 4(i%8)..4(i%8)+3} of {@code qweight[i/8][o]};
 * {@code qzeros} I32 {@code [groups, out/8]}, zero of group {@code g} and column {@code o} in bits
 * {@code 4(o%8)..} of {@code qzeros[g][o/8]} (plus {@link GptqConfig#zeroOffset()}); {@code scales}
 * {@code [groups, out]} (F16, also F32/BF16); {@code g_idx} I32 {@code [in]}, the group of each input row
 * (absent: {@code i / group_size}). The weight is {@code W[o][i] = scale[g][o] · (q[i][o] − zero[g][o])} with
 * {@code g = g_idx[i]}.
 *
 * <p><b>Conversion.</b> ggml's Q4_1 block holds 32 consecutive inputs as {@code d·q + m} with F16 {@code d}, F16
 * {@code m} and 4-bit {@code q}, the same affine form. When every aligned run of 32 inputs lies in one group
 * (group sizes that are multiples of 32 and a trivial {@code g_idx}, i.e. no act-order), each block gets
 * {@code d = scale} (copied bit for bit from F16 scales) and {@code m = f16(−scale·zero)}, with the quantized
 * values unchanged: the only error is the F16 rounding of {@code m}, at most {@code 2^-11·|scale·zero|}
 * (≤ {@code scale/128}, 1/64 of GPTQ's own rounding step; zero for symmetric checkpoints, where
 * {@code zero = 8} makes {@code m} exact).
 *
 * <p><b>Act-order</b> ({@code desc_act}) scatters the groups over the inputs. Sorting the inputs by group
 * (stably) makes each group contiguous again; when the groups then fill whole blocks, the weight is stored as
 * Q4_1 over the permuted inputs and {@link Layout#inputOrder()} says which input each column reads:
 * {@code y = W' · x[inputOrder]}. That is exact only where the caller can permute its input for free, e.g. a
 * down projection whose input is the element-wise {@code silu(gate)·up}, by permuting gate's and up's rows
 * (see {@link #materialize}'s {@code rowOrder}). Otherwise, and for inputs not a multiple of 32, the layer is
 * dequantized to F16 (relative error at most 2^-11 per weight, 4× the bytes of int4): one layer at a time, never
 * the model up front.
 */
public final class GptqLinear {
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int BLOCK = 32;
    private static final int Q4_1_BYTES = 20;
    private static final int TILE = 64;

    /**
     * The engine weight a layer becomes.
     *
     * @param dtype      {@link DType#Q4_1} or {@link DType#F16}
     * @param inputOrder column {@code j} of the weight multiplies input {@code inputOrder[j]}; null for identity
     */
    public record Layout(DType dtype, int[] inputOrder) {
        /** True when the weight's columns are a permutation of the inputs. */
        public boolean permutesInput() {
            return inputOrder != null;
        }
    }

    private final String name;
    private final GptqConfig config;
    private final MemorySegment qweight;
    private final MemorySegment qzeros;
    private final MemorySegment scales;
    private final DType scaleType;
    private final int in;
    private final int out;
    private final int groups;
    private final int[] groupOf;

    /**
     * Validates the tensors of one layer.
     *
     * @param name   the layer (e.g. {@code model.layers.0.self_attn.q_proj}) for messages
     * @param gIdx   I32 {@code [in]}, or null for {@code i / group_size}
     * @throws ModelFormatException naming the tensor if a dtype, shape or value does not fit the others
     */
    public GptqLinear(String name, GptqConfig config, Tensor qweight, Tensor qzeros, Tensor scales, Tensor gIdx) {
        this.name = name;
        this.config = config;
        requireType(qweight, "qweight", DType.I32);
        requireType(qzeros, "qzeros", DType.I32);
        if (scales.dtype() != DType.F16 && scales.dtype() != DType.F32 && scales.dtype() != DType.BF16) {
            throw error("scales", "dtype " + scales.dtype() + " is not F16, BF16 or F32");
        }
        for (Tensor t : new Tensor[] {qweight, qzeros, scales}) {
            if (t.rank() != 2 || !t.isContiguous() || !t.device().hostAccessible()) {
                throw error(t == qweight ? "qweight" : t == qzeros ? "qzeros" : "scales",
                        "expected a 2-D host tensor, found " + t);
            }
        }
        long inL = qweight.dim(0) * 8;
        long outL = qweight.dim(1);
        if (inL > Integer.MAX_VALUE || outL > Integer.MAX_VALUE || inL == 0 || outL == 0) {
            throw error("qweight", "shape " + Arrays.toString(qweight.shape()) + " is not a usable [in/8, out]");
        }
        in = (int) inL;
        out = (int) outL;
        groups = Math.toIntExact(scales.dim(0));
        int expectedGroups = config.groupSize() < 0 ? 1 : (in + config.groupSize() - 1) / config.groupSize();
        if (scales.dim(1) != out || groups != expectedGroups) {
            throw error("scales", "shape " + Arrays.toString(scales.shape()) + ", expected [" + expectedGroups + ", "
                    + out + "] for qweight " + Arrays.toString(qweight.shape()) + " and group size " + config.groupSize());
        }
        if (out % 8 != 0 || qzeros.dim(0) != groups || qzeros.dim(1) != out / 8) {
            throw error("qzeros", "shape " + Arrays.toString(qzeros.shape()) + ", expected [" + groups + ", " + out
                    + "/8]");
        }
        groupOf = new int[in];
        if (gIdx != null) {
            requireType(gIdx, "g_idx", DType.I32);
            if (gIdx.elementCount() != in || !gIdx.isContiguous() || !gIdx.device().hostAccessible()) {
                throw error("g_idx", "shape " + Arrays.toString(gIdx.shape()) + ", expected [" + in + "]");
            }
            MemorySegment g = gIdx.segment();
            for (int i = 0; i < in; i++) {
                int v = g.get(LE_INT, 4L * i);
                if (v < 0 || v >= groups) {
                    throw error("g_idx", "element " + i + " is group " + v + ", outside [0, " + groups + ")");
                }
                groupOf[i] = v;
            }
        } else {
            int gs = config.groupSize() < 0 ? in : config.groupSize();
            for (int i = 0; i < in; i++) {
                groupOf[i] = i / gs;
            }
        }
        this.qweight = qweight.segment();
        this.qzeros = qzeros.segment();
        this.scales = scales.segment();
        this.scaleType = scales.dtype();
    }

    private static void requireType(Tensor t, String what, DType type) {
        if (t.dtype() != type) {
            throw new ModelFormatException(what + ": dtype " + t.dtype() + ", expected " + type);
        }
    }

    private ModelFormatException error(String tensor, String problem) {
        return new ModelFormatException("GPTQ tensor '" + name + "." + tensor + "': " + problem);
    }

    /** Input features. */
    public int in() {
        return in;
    }

    /** Output features. */
    public int out() {
        return out;
    }

    /** Groups of scales and zeros. */
    public int groups() {
        return groups;
    }

    /** A copy of each input's group ({@code g_idx}). */
    public int[] groupOfInput() {
        return groupOf.clone();
    }

    /**
     * The best weight for this layer: Q4_1 over the inputs in order when groups are block-aligned; else, if
     * {@code allowInputPermutation}, Q4_1 over the inputs sorted by group when that aligns them; else F16.
     */
    public Layout layout(boolean allowInputPermutation) {
        if (in % BLOCK == 0) {
            if (blocksUniform(null)) {
                return new Layout(DType.Q4_1, null);
            }
            if (allowInputPermutation) {
                Integer[] boxed = new Integer[in];
                Arrays.setAll(boxed, i -> i);
                Arrays.sort(boxed, (a, b) -> Integer.compare(groupOf[a], groupOf[b]));
                int[] order = Arrays.stream(boxed).mapToInt(Integer::intValue).toArray();
                if (blocksUniform(order)) {
                    return new Layout(DType.Q4_1, order);
                }
            }
        }
        return new Layout(DType.F16, null);
    }

    private boolean blocksUniform(int[] order) {
        for (int b = 0; b < in; b += BLOCK) {
            int g = groupOf[order == null ? b : order[b]];
            for (int t = 1; t < BLOCK; t++) {
                if (groupOf[order == null ? b + t : order[b + t]] != g) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * Builds the weight {@code [out, in]} in {@code arena}.
     *
     * @param layout   from {@link #layout}
     * @param rowOrder row {@code r} of the result is output {@code rowOrder[r]} (a permutation of the outputs,
     *                 e.g. RoPE's interleaving of q/k heads, or a following layer's input order); null for identity
     */
    public Tensor materialize(Layout layout, int[] rowOrder, Arena arena) {
        if (rowOrder != null) {
            checkPermutation(rowOrder, out, "rowOrder");
        }
        if (layout.inputOrder() != null) {
            checkPermutation(layout.inputOrder(), in, "inputOrder");
        }
        if (layout.dtype() != DType.Q4_1 && layout.dtype() != DType.F16) {
            throw new IllegalArgumentException("layout " + layout.dtype());
        }
        if (layout.dtype() == DType.F16 && layout.inputOrder() != null) {
            throw new IllegalArgumentException("an F16 layout keeps the inputs in order");
        }
        Tensor t = Tensor.allocate(arena, layout.dtype(), out, in);
        MemorySegment dst = t.segment();
        int tiles = (out + TILE - 1) / TILE;
        IntStream range = IntStream.range(0, tiles);
        // A confined arena's memory may only be written by this thread.
        if (dst.isAccessibleBy(Thread.ofVirtual().unstarted(() -> { }))) {
            range = range.parallel();
        }
        range.forEach(tile -> {
            byte[] q = new byte[in];
            short[] d = new short[groups];
            short[] m = new short[groups];
            float[] scale = new float[groups];
            int[] zero = new int[groups];
            for (int r = tile * TILE, end = Math.min(out, r + TILE); r < end; r++) {
                int o = rowOrder == null ? r : rowOrder[r];
                unpackColumn(o, q);
                for (int g = 0; g < groups; g++) {
                    scale[g] = scale(g, o);
                    zero[g] = zero(g, o);
                    d[g] = scaleType == DType.F16 ? scales.get(LE_SHORT, 2L * ((long) g * out + o))
                            : Float.floatToFloat16(scale[g]);
                    // f16·int with |int| ≤ 16 is exact in float; the only rounding is to F16 here.
                    m[g] = Float.floatToFloat16(-(Float.float16ToFloat(d[g]) * zero[g]));
                }
                if (layout.dtype() == DType.Q4_1) {
                    writeQ41Row(dst, r, q, d, m, layout.inputOrder());
                } else {
                    long base = 2L * r * in;
                    for (int i = 0; i < in; i++) {
                        int g = groupOf[i];
                        dst.set(LE_SHORT, base + 2L * i, Float.floatToFloat16(scale[g] * (q[i] - zero[g])));
                    }
                }
            }
        });
        return t;
    }

    private void writeQ41Row(MemorySegment dst, int r, byte[] q, short[] d, short[] m, int[] order) {
        long base = (long) r * (in / BLOCK) * Q4_1_BYTES;
        for (int b = 0; b < in / BLOCK; b++) {
            long block = base + (long) b * Q4_1_BYTES;
            int first = b * BLOCK;
            int g = groupOf[order == null ? first : order[first]];
            dst.set(LE_SHORT, block, d[g]);
            dst.set(LE_SHORT, block + 2, m[g]);
            for (int j = 0; j < BLOCK / 2; j++) {
                int lo = q[order == null ? first + j : order[first + j]];
                int hi = q[order == null ? first + j + 16 : order[first + j + 16]];
                dst.set(ValueLayout.JAVA_BYTE, block + 4 + j, (byte) (lo | hi << 4));
            }
        }
    }

    /** The 4-bit values of output {@code o} for every input. */
    private void unpackColumn(int o, byte[] q) {
        for (int c8 = 0; c8 < in / 8; c8++) {
            int w = qweight.get(LE_INT, 4L * ((long) c8 * out + o));
            for (int s = 0; s < 8; s++) {
                q[c8 * 8 + s] = (byte) ((w >>> (4 * s)) & 0xF);
            }
        }
    }

    /** The scale of group {@code g}, output {@code o}. */
    public float scale(int g, int o) {
        long idx = (long) g * out + o;
        return switch (scaleType) {
            case F16 -> Float.float16ToFloat(scales.get(LE_SHORT, 2 * idx));
            case BF16 -> Float.intBitsToFloat((scales.get(LE_SHORT, 2 * idx) & 0xFFFF) << 16);
            default -> scales.get(LE_FLOAT, 4 * idx);
        };
    }

    /** The zero point of group {@code g}, output {@code o} (stored value plus the format's offset). */
    public int zero(int g, int o) {
        int w = qzeros.get(LE_INT, 4L * ((long) g * (out / 8) + o / 8));
        return ((w >>> (4 * (o % 8))) & 0xF) + config.zeroOffset();
    }

    private static void checkPermutation(int[] p, int n, String what) {
        if (p.length != n) {
            throw new IllegalArgumentException(what + " has " + p.length + " entries, expected " + n);
        }
        boolean[] seen = new boolean[n];
        for (int v : p) {
            if (v < 0 || v >= n || seen[v]) {
                throw new IllegalArgumentException(what + " is not a permutation of 0.." + (n - 1));
            }
            seen[v] = true;
        }
    }

    @Override
    public String toString() {
        return "GptqLinear[" + name + ", " + out + "x" + in + ", " + groups + " groups]";
    }
}
