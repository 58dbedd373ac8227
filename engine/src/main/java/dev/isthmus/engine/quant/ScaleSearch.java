package dev.isthmus.engine.quant;

import java.util.Arrays;

/**
 * The scale searches of ggml's K-quant reference quantizers, each fitting one sub-block of n elements.
 * They return the fitted scale and leave the chosen quants in {@code L}; all arithmetic is f32, as in ggml.
 *
 * <ul>
 *   <li>{@link #affine} (ggml's {@code make_qkx2_quants}): x ≈ scale · L - theMin with L in [0, nmax], for
 *       Q2_K, Q4_K and Q5_K. It tries {@code nstep + 1} candidate steps around (max - min) / nmax; for each it
 *       rounds, then solves the weighted least-squares fit of scale and min to those quants, and keeps the
 *       fit of least weighted error (squared, or absolute with {@code useMad}).</li>
 *   <li>{@link #symmetricRefined} ({@code make_q3_quants} with rmse): x ≈ scale · L with L in [-nmax, nmax - 1]
 *       for Q3_K; after rounding at the max-abs scale it moves single quants while that lowers the x²-weighted
 *       squared error, for up to five passes.</li>
 *   <li>{@link #symmetricSearch} ({@code make_qx_quants}, rmse type 1): the same form for Q6_K, trying 19 scales
 *       around nmax / max and keeping the best least-squares fit under x² weights.</li>
 * </ul>
 *
 * <p>Some sums are accumulated in another order than ggml's (two partial sums; an expanded squared error), so
 * a result can differ from ggml's in the last bits of a sum and, rarely, in a tie between candidates.
 *
 * <p>Not thread-safe: it keeps scratch arrays (one instance per quantizer).
 */
final class ScaleSearch {
    /** ggml's GROUP_MAX_EPS: sub-blocks whose largest magnitude is below this count as all zero. */
    static final float GROUP_MAX_EPS = 1e-15f;

    private final int[] aux = new int[32];
    private final float[] w2 = new float[32];
    private final float[] w3 = new float[32];
    /** The min that {@link #affine} fitted, as a non-negative amount to subtract (ggml's {@code the_min}). */
    float theMin;

    float affine(int n, int nmax, float[] x, int xo, float[] w, int[] L, int lo,
                 float rmin, float rdelta, int nstep, boolean useMad) {
        float min = x[xo];
        float max = x[xo];
        float sumW = w[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            float v = x[xo + i];
            min = Math.min(min, v);
            max = Math.max(max, v);
            sumW += w[i];
            sumX += w[i] * v;
        }
        if (min > 0) {
            min = 0; // the decoded min is subtracted, so it can only shift down: a positive min becomes 0
        }
        if (max == min) {
            for (int i = 0; i < n; i++) {
                L[lo + i] = 0;
            }
            theMin = -min;
            return 0;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = Bits.clamp(Bits.nearestInt(iscale * (x[xo + i] - min)), 0, nmax);
            L[lo + i] = l;
            float diff = scale * l + min - x[xo + i];
            bestError += w[i] * (useMad ? Math.abs(diff) : diff * diff);
        }
        float sumX2 = 0;
        if (!useMad) {
            for (int i = 0; i < n; i++) {
                sumX2 += w[i] * x[xo + i] * x[xo + i];
            }
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            // Two sets of partial sums (n is even) halve the chains of dependent additions that bound this loop.
            float sumL = 0;
            float sumL2 = 0;
            float sumXL = 0;
            float sumLb = 0;
            float sumL2b = 0;
            float sumXLb = 0;
            for (int i = 0; i < n; i += 2) {
                // Rounded around the best min so far: ggml updates min inside this loop, and so do we.
                int l = Bits.clamp(Bits.nearestInt(iscale * (x[xo + i] - min)), 0, nmax);
                int lb = Bits.clamp(Bits.nearestInt(iscale * (x[xo + i + 1] - min)), 0, nmax);
                aux[i] = l;
                aux[i + 1] = lb;
                float wl = w[i] * l;
                float wlb = w[i + 1] * lb;
                sumL += wl;
                sumL2 += wl * l;
                sumXL += wl * x[xo + i];
                sumLb += wlb;
                sumL2b += wlb * lb;
                sumXLb += wlb * x[xo + i + 1];
            }
            sumL += sumLb;
            sumL2 += sumL2b;
            sumXL += sumXLb;
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error;
                if (useMad) {
                    error = 0;
                    for (int i = 0; i < n; i++) {
                        error += w[i] * Math.abs(thisScale * aux[i] + thisMin - x[xo + i]);
                    }
                } else {
                    // sum w (s l + m - x)^2 expanded over the sums already at hand: the same value as ggml's
                    // second pass over the elements (up to f32 rounding) at a fraction of the cost.
                    error = thisScale * thisScale * sumL2 + 2 * thisScale * thisMin * sumL - 2 * thisScale * sumXL
                            + thisMin * thisMin * sumW - 2 * thisMin * sumX + sumX2;
                }
                if (error < bestError) {
                    for (int i = 0; i < n; i++) {
                        L[lo + i] = aux[i];
                    }
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /**
     * The element of largest magnitude, with its sign (the first of equal magnitudes; 0 if all are 0). ggml
     * scales symmetric quants by it, so that it maps to {@code -nmax} exactly.
     */
    static float signedMax(float[] x, int xo, int n) {
        float max = 0;
        float amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        return max;
    }

    /** Quants are left offset by {@code nmax}, i.e. in [0, 2 nmax - 1]. */
    float symmetricRefined(int n, int nmax, float[] x, int xo, int[] L, int lo) {
        float max = signedMax(x, xo, n);
        if (Math.abs(max) < GROUP_MAX_EPS) {
            Arrays.fill(L, lo, lo + n, 0);
            return 0;
        }
        float iscale = -nmax / max;
        float sumLX = 0;
        float sumL2 = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xo + i];
            int l = Bits.clamp(Bits.nearestInt(iscale * v), -nmax, nmax - 1);
            L[lo + i] = l;
            float w = v * v;
            sumLX += w * v * l;
            sumL2 += w * l * l;
        }
        for (int pass = 0; pass < 5; pass++) {
            int changed = 0;
            for (int i = 0; i < n; i++) {
                float v = x[xo + i];
                float w = v * v;
                int old = L[lo + i];
                float slx = sumLX - w * v * old;
                // As in ggml, a quant moves only while the fit's sum of w·x·l stays positive. With the scale's
                // sign chosen so that the largest magnitude maps to -nmax, that is the case when that element is
                // negative; sub-blocks whose largest magnitude is positive keep the plain rounding.
                if (slx > 0) {
                    // The quant that best fits this element if the others keep the current fit.
                    float sl2 = sumL2 - w * old * old;
                    int l = Bits.clamp(Bits.nearestInt(v * sl2 / slx), -nmax, nmax - 1);
                    if (l != old) {
                        slx += w * v * l;
                        sl2 += w * l * l;
                        // Keep it only if the fitted error, -sumLX^2 / sumL2, goes down.
                        if (sl2 > 0 && slx * slx * sumL2 > sumLX * sumLX * sl2) {
                            L[lo + i] = l;
                            sumLX = slx;
                            sumL2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) {
                break;
            }
        }
        for (int i = 0; i < n; i++) {
            L[lo + i] += nmax;
        }
        return sumL2 > 0 ? sumLX / sumL2 : 0;
    }

    /** Quants are left offset by {@code nmax}, i.e. in [0, 2 nmax - 1]. */
    float symmetricSearch(int n, int nmax, float[] x, int xo, int[] L, int lo) {
        float max = signedMax(x, xo, n);
        if (Math.abs(max) < GROUP_MAX_EPS) {
            Arrays.fill(L, lo, lo + n, 0);
            return 0;
        }
        for (int i = 0; i < n; i++) {
            float v = x[xo + i];
            w2[i] = v * v; // the x^2 weights (rmse type 1), and x^3 for the sum of w x l
            w3[i] = v * v * v;
        }
        float iscale = -nmax / max;
        float sumLX = 0;
        float sumL2 = 0;
        for (int i = 0; i < n; i++) {
            int l = Bits.clamp(Bits.nearestInt(iscale * x[xo + i]), -nmax, nmax - 1);
            L[lo + i] = l + nmax;
            sumLX += w3[i] * l;
            sumL2 += w2[i] * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0;
        float best = scale * sumLX;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) {
                continue;
            }
            iscale = -(nmax + 0.1f * is) / max;
            sumLX = 0;
            sumL2 = 0;
            float sumLXb = 0;
            float sumL2b = 0;
            for (int i = 0; i < n; i += 2) {
                int l = Bits.clamp(Bits.nearestInt(iscale * x[xo + i]), -nmax, nmax - 1);
                int lb = Bits.clamp(Bits.nearestInt(iscale * x[xo + i + 1]), -nmax, nmax - 1);
                float wl = w3[i] * l;
                float wlb = w3[i + 1] * lb;
                sumLX += wl;
                sumL2 += w2[i] * l * l;
                sumLXb += wlb;
                sumL2b += w2[i + 1] * lb * lb;
            }
            sumLX += sumLXb;
            sumL2 += sumL2b;
            // The least-squares error is sum(w x^2) - sumLX^2 / sumL2: larger sumLX^2 / sumL2 is better.
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
                for (int i = 0; i < n; i++) {
                    L[lo + i] = nmax + Bits.clamp(Bits.nearestInt(iscale * x[xo + i]), -nmax, nmax - 1);
                }
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }
}
