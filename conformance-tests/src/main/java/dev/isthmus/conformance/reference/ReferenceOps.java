package dev.isthmus.conformance.reference;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;

import java.util.Arrays;

/**
 * Float64 reference implementations of every operator of {@link dev.isthmus.api.spi.Backend}, written as
 * plain loops straight from the SPI's Javadoc. Matrices are {@code double[rows][cols]}; per-head tensors
 * {@code [n, heads, headDim]} are {@code double[n][heads][headDim]}. Inputs are never modified.
 *
 * <p>Readable over fast: these run once per conformance case, on small shapes.
 */
public final class ReferenceOps {
    private ReferenceOps() {
    }

    /** {@code out[i][j] = Σ_k x[i][k] · w[j][k]} (weights stored one output feature per row). */
    public static double[][] matmul(double[][] x, double[][] w) {
        int n = x.length;
        int m = w.length;
        double[][] out = new double[n][m];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                if (x[i].length != w[j].length) {
                    throw new IllegalArgumentException("matmul: x has " + x[i].length + " columns, w " + w[j].length);
                }
                double sum = 0;
                for (int k = 0; k < x[i].length; k++) {
                    sum += x[i][k] * w[j][k];
                }
                out[i][j] = sum;
            }
        }
        return out;
    }

    /** {@code out[i] = table[ids[i]]}. */
    public static double[][] embeddingLookup(double[][] table, int[] ids) {
        double[][] out = new double[ids.length][];
        for (int i = 0; i < ids.length; i++) {
            out[i] = table[ids[i]].clone();
        }
        return out;
    }

    /** {@code out = x / sqrt(mean(x²) + eps) · weight}, per row. */
    public static double[][] rmsNorm(double[][] x, double[] weight, double eps) {
        double[][] out = new double[x.length][];
        for (int r = 0; r < x.length; r++) {
            double sumSq = 0;
            for (double v : x[r]) {
                sumSq += v * v;
            }
            double inv = 1 / Math.sqrt(sumSq / x[r].length + eps);
            out[r] = new double[x[r].length];
            for (int c = 0; c < x[r].length; c++) {
                out[r][c] = x[r][c] * inv * weight[c];
            }
        }
        return out;
    }

    /** {@code out = (x - mean) / sqrt(var + eps) · weight + bias}, per row (population variance). */
    public static double[][] layerNorm(double[][] x, double[] weight, double[] bias, double eps) {
        double[][] out = new double[x.length][];
        for (int r = 0; r < x.length; r++) {
            int n = x[r].length;
            double mean = 0;
            for (double v : x[r]) {
                mean += v;
            }
            mean /= n;
            double var = 0;
            for (double v : x[r]) {
                var += (v - mean) * (v - mean);
            }
            var /= n;
            double inv = 1 / Math.sqrt(var + eps);
            out[r] = new double[n];
            for (int c = 0; c < n; c++) {
                double y = (x[r][c] - mean) * inv;
                if (weight != null) {
                    y *= weight[c];
                }
                if (bias != null) {
                    y += bias[c];
                }
                out[r][c] = y;
            }
        }
        return out;
    }

    /** {@code a + b}, {@code b} having the rows of {@code a} or one row broadcast to all. */
    public static double[][] add(double[][] a, double[][] b) {
        double[][] out = new double[a.length][];
        for (int r = 0; r < a.length; r++) {
            double[] br = broadcastRow(a, b, r);
            out[r] = new double[a[r].length];
            for (int c = 0; c < a[r].length; c++) {
                out[r][c] = a[r][c] + br[c];
            }
        }
        return out;
    }

    /** {@code a · b} element-wise, {@code b} having the rows of {@code a} or one row broadcast to all. */
    public static double[][] mul(double[][] a, double[][] b) {
        double[][] out = new double[a.length][];
        for (int r = 0; r < a.length; r++) {
            double[] br = broadcastRow(a, b, r);
            out[r] = new double[a[r].length];
            for (int c = 0; c < a[r].length; c++) {
                out[r][c] = a[r][c] * br[c];
            }
        }
        return out;
    }

    private static double[] broadcastRow(double[][] a, double[][] b, int r) {
        if (b.length != 1 && b.length != a.length) {
            throw new IllegalArgumentException("b has " + b.length + " rows, a " + a.length);
        }
        return b.length == 1 ? b[0] : b[r];
    }

    /** {@code x · s}. */
    public static double[][] scale(double[][] x, double s) {
        return map(x, v -> v * s);
    }

    /** {@code x · sigmoid(x) = x / (1 + e^-x)}. */
    public static double[][] silu(double[][] x) {
        return map(x, ReferenceOps::silu);
    }

    /** GELU, tanh approximation: {@code 0.5x(1 + tanh(sqrt(2/π)(x + 0.044715x³)))}. */
    public static double[][] gelu(double[][] x) {
        return map(x, v -> 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
    }

    /** {@code silu(gate) · up}. */
    public static double[][] swiglu(double[][] gate, double[][] up) {
        double[][] out = new double[gate.length][];
        for (int r = 0; r < gate.length; r++) {
            out[r] = new double[gate[r].length];
            for (int c = 0; c < gate[r].length; c++) {
                out[r][c] = silu(gate[r][c]) * up[r][c];
            }
        }
        return out;
    }

    private static double silu(double v) {
        return v / (1 + Math.exp(-v));
    }

    /** Row-wise {@code e^(x - max) / Σ e^(x - max)}. */
    public static double[][] softmax(double[][] x) {
        double[][] out = new double[x.length][];
        for (int r = 0; r < x.length; r++) {
            out[r] = softmax(x[r]);
        }
        return out;
    }

    private static double[] softmax(double[] row) {
        double max = Double.NEGATIVE_INFINITY;
        for (double v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        double[] out = new double[row.length];
        for (int c = 0; c < row.length; c++) {
            out[c] = Math.exp(row[c] - max);
            sum += out[c];
        }
        for (int c = 0; c < row.length; c++) {
            out[c] /= sum;
        }
        return out;
    }

    /**
     * Rotary position embedding of {@code x[n][heads][headDim]} (a new array is returned). Pair {@code i}
     * ({@code i < dims/2}) is {@code (2i, 2i+1)} for {@link RopeLayout#NORMAL} and {@code (i, i + dims/2)}
     * for {@link RopeLayout#NEOX}; it is rotated by {@code p · freqScale · theta^(-2i/dims) / freqFactors[i]}:
     * {@code (a, b) → (a cos φ - b sin φ, a sin φ + b cos φ)}. Dimensions from {@code dims} on are copied.
     */
    public static double[][][] rope(double[][][] x, int[] positions, Rope rope) {
        int dims = rope.dims();
        double[][][] out = new double[x.length][][];
        for (int t = 0; t < x.length; t++) {
            out[t] = new double[x[t].length][];
            for (int h = 0; h < x[t].length; h++) {
                double[] in = x[t][h];
                if (dims > in.length) {
                    throw new IllegalArgumentException("rope dims " + dims + " > head size " + in.length);
                }
                double[] o = in.clone();
                for (int i = 0; i < dims / 2; i++) {
                    double freq = Math.pow(rope.theta(), -2.0 * i / dims);
                    double factor = rope.freqFactors() == null ? 1.0 : rope.freqFactors()[i];
                    double angle = positions[t] * (double) rope.freqScale() * freq / factor;
                    int ia = rope.layout() == RopeLayout.NORMAL ? 2 * i : i;
                    int ib = rope.layout() == RopeLayout.NORMAL ? 2 * i + 1 : i + dims / 2;
                    double a = in[ia];
                    double b = in[ib];
                    o[ia] = a * Math.cos(angle) - b * Math.sin(angle);
                    o[ib] = a * Math.sin(angle) + b * Math.cos(angle);
                }
                out[t][h] = o;
            }
        }
        return out;
    }

    /**
     * {@code dst} after {@code dst[rows[i]] = convert(src[i])}: each value of {@code src} rounded to
     * {@code dstType} (F32, F16 or BF16). Rows of {@code dst} not named in {@code rows} are unchanged. The
     * values of {@code src} are F32 values (given as doubles).
     */
    public static double[][] copyRows(double[][] dst, double[][] src, int[] rows, DType dstType) {
        double[][] out = new double[dst.length][];
        for (int r = 0; r < dst.length; r++) {
            out[r] = dst[r].clone();
        }
        for (int i = 0; i < rows.length; i++) {
            for (int c = 0; c < src[i].length; c++) {
                out[rows[i]][c] = roundTo(dstType, (float) src[i][c]);
            }
        }
        return out;
    }

    /** {@code v} as stored in {@code type} (F32, F16 or BF16) and read back. */
    public static double roundTo(DType type, float v) {
        return switch (type) {
            case F32 -> v;
            case F16 -> HalfFloats.roundToF16(v);
            case BF16 -> HalfFloats.roundToBf16(v);
            default -> throw new IllegalArgumentException("no rounding to " + type);
        };
    }

    /**
     * Fused attention over a paged KV cache, per {@link Attention} and {@link KvLayout}: for query row
     * {@code i} of sequence {@code s} at position {@code p} and query head {@code h} (reading KV head
     * {@code h / (heads / kvHeads)}), key position {@code j < contextLengths[s]} is visible if
     * ({@code !causal || j ≤ p}) and ({@code slidingWindow == 0 || j > p - slidingWindow}); its score is
     * {@code scale · q·k}, then {@code softcap · tanh(score / softcap)} when a softcap is set, then
     * {@code + slope_h · (j - p)} with ALiBi; the output is the softmax-weighted sum of the visible values.
     *
     * @param q      {@code [n][heads][headDim]}
     * @param kCache {@code [slots][kvHeads][headDim]}
     * @param vCache {@code [slots][kvHeads][headDim]}
     */
    public static double[][][] attention(double[][][] q, double[][][] kCache, double[][][] vCache,
                                         KvLayout layout, Attention params) {
        int n = q.length;
        double[][][] out = new double[n][][];
        for (int i = 0; i < n; i++) {
            int seq = layout.querySeq()[i];
            int p = layout.queryPos()[i];
            int context = layout.contextLengths()[seq];
            int heads = q[i].length;
            out[i] = new double[heads][];
            for (int h = 0; h < heads; h++) {
                int kvHeads = kCache[0].length;
                if (heads % kvHeads != 0) {
                    throw new IllegalArgumentException(heads + " query heads for " + kvHeads + " KV heads");
                }
                int kvHead = h / (heads / kvHeads);
                int headDim = q[i][h].length;

                double[] scores = new double[context];
                boolean[] visible = new boolean[context];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < context; j++) {
                    visible[j] = (!params.causal() || j <= p)
                            && (params.slidingWindow() == 0 || j > p - params.slidingWindow());
                    if (!visible[j]) {
                        continue;
                    }
                    double[] k = kCache[layout.slot(seq, j)][kvHead];
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) {
                        dot += q[i][h][d] * k[d];
                    }
                    double s = params.scale() * dot;
                    if (params.logitSoftcap() > 0) {
                        s = params.logitSoftcap() * Math.tanh(s / params.logitSoftcap());
                    }
                    if (params.alibiSlopes() != null) {
                        s += params.alibiSlopes()[h] * (double) (j - p);
                    }
                    scores[j] = s;
                    max = Math.max(max, s);
                }
                double sum = 0;
                double[] o = new double[headDim];
                for (int j = 0; j < context; j++) {
                    if (!visible[j]) {
                        continue;
                    }
                    double w = Math.exp(scores[j] - max);
                    sum += w;
                    double[] v = vCache[layout.slot(seq, j)][kvHead];
                    for (int d = 0; d < headDim; d++) {
                        o[d] += w * v[d];
                    }
                }
                for (int d = 0; d < headDim; d++) {
                    o[d] /= sum;
                }
                out[i][h] = o;
            }
        }
        return out;
    }

    /** Per row, the index of the largest value, the lowest such index on ties. */
    public static int[] argmax(double[][] x) {
        int[] out = new int[x.length];
        for (int r = 0; r < x.length; r++) {
            int best = 0;
            for (int c = 1; c < x[r].length; c++) {
                if (x[r][c] > x[r][best]) {
                    best = c;
                }
            }
            out[r] = best;
        }
        return out;
    }

    /** Per row, the indices of the {@code k} largest values, largest first, lower index first on ties. */
    public static int[][] topKIndices(double[][] x, int k) {
        int[][] out = new int[x.length][];
        for (int r = 0; r < x.length; r++) {
            double[] row = x[r];
            Integer[] order = new Integer[row.length];
            for (int c = 0; c < row.length; c++) {
                order[c] = c;
            }
            // Numeric comparison (so -0.0 ties with 0.0), then the lower index first.
            Arrays.sort(order, (a, b) -> row[a] > row[b] ? -1 : row[a] < row[b] ? 1 : Integer.compare(a, b));
            out[r] = new int[k];
            for (int i = 0; i < k; i++) {
                out[r][i] = order[i];
            }
        }
        return out;
    }

    private interface DoubleOp {
        double apply(double v);
    }

    private static double[][] map(double[][] x, DoubleOp f) {
        double[][] out = new double[x.length][];
        for (int r = 0; r < x.length; r++) {
            out[r] = new double[x[r].length];
            for (int c = 0; c < x[r].length; c++) {
                out[r][c] = f.apply(x[r][c]);
            }
        }
        return out;
    }
}
