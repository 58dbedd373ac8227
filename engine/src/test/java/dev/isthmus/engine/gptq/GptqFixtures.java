package dev.isthmus.engine.gptq;

import dev.isthmus.engine.safetensors.HfFixtures;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Random;

/**
 * GPTQ packing written in the test, from the AutoGPTQ conventions, independently of {@link GptqLinear}:
 * round-to-nearest quantization of known float weights per (group, output column), packed as {@code qweight}
 * I32 {@code [in/8, out]}, {@code qzeros} I32 {@code [groups, out/8]} (stored as {@code zero - offset}),
 * {@code scales} F16 {@code [groups, out]} and {@code g_idx} I32 {@code [in]}; plus the float64 weights those
 * tensors mean, {@code scale · (q − zero)}.
 */
final class GptqFixtures {
    private GptqFixtures() {
    }

    /** A packed layer and the exact weights it encodes. */
    record Packed(int in, int out, int groups, int[] qweight, int[] qzeros, short[] scales, int[] gIdx,
                  double[][] weight, double[][] mError) {
        float scale(int g, int o) {
            return Float.float16ToFloat(scales[g * out + o]);
        }

        LinkedHashMap<String, HfFixtures.Data> tensors(String prefix, boolean withGIdx) {
            LinkedHashMap<String, HfFixtures.Data> t = new LinkedHashMap<>();
            t.put(prefix + ".qweight", HfFixtures.Data.i32(qweight, in / 8, out));
            t.put(prefix + ".qzeros", HfFixtures.Data.i32(qzeros, groups, out / 8));
            byte[] s = new byte[2 * scales.length];
            for (int i = 0; i < scales.length; i++) {
                s[2 * i] = (byte) scales[i];
                s[2 * i + 1] = (byte) (scales[i] >> 8);
            }
            t.put(prefix + ".scales", new HfFixtures.Data("F16", new long[] {groups, out}, s));
            if (withGIdx) {
                t.put(prefix + ".g_idx", HfFixtures.Data.i32(gIdx, in));
            }
            return t;
        }

        /** The dequantized weights as float32 row-major [out, in] (exact: f16 × small integer). */
        float[] weightF32() {
            float[] w = new float[out * in];
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    w[o * in + i] = (float) weight[o][i];
                }
            }
            return w;
        }
    }

    /** {@code g_idx} of a plain (non act-order) checkpoint. */
    static int[] trivialGroups(int in, int groupSize) {
        int[] g = new int[in];
        for (int i = 0; i < in; i++) {
            g[i] = groupSize < 0 ? 0 : i / groupSize;
        }
        return g;
    }

    /** Act-order {@code g_idx}: each group's columns scattered by a random permutation. */
    static int[] actOrderGroups(int in, int groupSize, Random rnd) {
        int[] perm = new int[in];
        Arrays.setAll(perm, i -> i);
        for (int i = in - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        int[] g = new int[in];
        for (int k = 0; k < in; k++) {
            g[perm[k]] = k / groupSize;
        }
        return g;
    }

    static double[][] randomWeights(int out, int in, double std, Random rnd) {
        double[][] w = new double[out][in];
        for (double[] row : w) {
            for (int i = 0; i < in; i++) {
                row[i] = rnd.nextGaussian() * std;
            }
        }
        return w;
    }

    /**
     * Quantizes {@code w} [out][in] with 4 bits.
     *
     * @param sym        zero point 8 and a scale from the largest magnitude, else min/max asymmetric
     * @param zeroOffset 1 for AutoGPTQ's original format (zeros stored minus one), 0 for gptq_v2
     */
    static Packed pack(double[][] w, int[] gIdx, int groups, boolean sym, int zeroOffset) {
        int out = w.length;
        int in = w[0].length;
        short[] scales = new short[groups * out];
        int[] zeros = new int[groups * out];
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                double min = 0;
                double max = 0;
                for (int i = 0; i < in; i++) {
                    if (gIdx[i] == g) {
                        min = Math.min(min, w[o][i]);
                        max = Math.max(max, w[o][i]);
                    }
                }
                double scale;
                int zero;
                if (sym) {
                    scale = Math.max(Math.abs(min), Math.abs(max)) * 2 / 15;
                    zero = 8;
                } else {
                    scale = (max - min) / 15;
                    zero = (int) Math.round(-min / Math.max(scale, 1e-12));
                }
                // AutoGPTQ's original format cannot store zero 0 (it is written as zero - 1).
                zero = Math.max(zeroOffset, Math.min(15, zero));
                scales[g * out + o] = Float.floatToFloat16((float) Math.max(scale, 1e-6));
                zeros[g * out + o] = zero;
            }
        }
        int[] qweight = new int[in / 8 * out];
        int[] qzeros = new int[groups * out / 8];
        double[][] deq = new double[out][in];
        double[][] mError = new double[out][in];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                int g = gIdx[i];
                double s = Float.float16ToFloat(scales[g * out + o]);
                int z = zeros[g * out + o];
                int q = (int) Math.max(0, Math.min(15, Math.round(w[o][i] / s) + z));
                qweight[(i / 8) * out + o] |= q << (4 * (i % 8));
                deq[o][i] = s * (q - z);
                // Q4_1 stores m = f16(-s·z): its rounding is the one error the repacking may add.
                mError[o][i] = Math.abs(s * z) * Math.pow(2, -11) + Math.pow(2, -25);
            }
        }
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                qzeros[g * (out / 8) + o / 8] |= (zeros[g * out + o] - zeroOffset) << (4 * (o % 8));
            }
        }
        return new Packed(in, out, groups, qweight, qzeros, scales, gIdx, deq, mError);
    }
}
