package dev.isthmus.conformance;

import java.util.Arrays;

/**
 * The comparison of a backend's output with the reference: the NMSE, a hard failure (NaN/Inf mismatch,
 * wrong index, wrong shape) if any, and a description of the worst element for humans.
 */
final class Outcome {
    final double nmse;
    /** Non-null when the case fails whatever the NMSE. */
    final String failure;
    /** The element with the largest absolute error, for the failure message. */
    final String worst;

    private Outcome(double nmse, String failure, String worst) {
        this.nmse = nmse;
        this.failure = failure;
        this.worst = worst;
    }

    static Outcome fail(String failure) {
        return new Outcome(Double.NaN, failure, "");
    }

    static Outcome exactMatch() {
        return new Outcome(0, null, "");
    }

    /**
     * NMSE = Σ(e−a)² / Σe² of {@code actual} against {@code expected}; any NaN or infinity in one that is not
     * the same in the other is a hard failure.
     *
     * @param cols the row length, to name the worst element by row and column
     */
    static Outcome compare(String what, double[] expected, double[] actual, int cols) {
        if (expected.length != actual.length) {
            return fail(what + " has " + actual.length + " elements, expected " + expected.length);
        }
        double num = 0;
        double den = 0;
        int worst = -1;
        double worstErr = -1;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual[i];
            if (!Double.isFinite(e) || !Double.isFinite(a)) {
                if (Double.isNaN(e) && Double.isNaN(a) || e == a) {
                    continue;
                }
                return fail(what + at(i, cols) + " is " + a + ", expected " + e + " (NaN/Inf mismatch)");
            }
            double d = a - e;
            num += d * d;
            den += e * e;
            if (Math.abs(d) > worstErr) {
                worstErr = Math.abs(d);
                worst = i;
            }
        }
        double nmse = den > 0 ? num / den : num == 0 ? 0 : Double.POSITIVE_INFINITY;
        String w = worst < 0 ? "" : "worst " + what + at(worst, cols) + ": expected " + expected[worst]
                + ", got " + actual[worst];
        return new Outcome(nmse, null, w);
    }

    /** Exact equality of index lists (argmax, top-k). */
    static Outcome exact(String what, int[] expected, int[] actual) {
        if (actual == null) {
            return fail(what + " is null");
        }
        if (!Arrays.equals(expected, actual)) {
            if (expected.length != actual.length) {
                return fail(what + " has " + actual.length + " entries, expected " + expected.length);
            }
            for (int i = 0; i < expected.length; i++) {
                if (expected[i] != actual[i]) {
                    return fail(what + "[" + i + "] is " + actual[i] + ", expected " + expected[i]);
                }
            }
        }
        return exactMatch();
    }

    /** Both outcomes: the larger NMSE, the first failure. */
    Outcome and(Outcome other) {
        if (failure != null) {
            return this;
        }
        if (other.failure != null) {
            return other;
        }
        return other.nmse > nmse ? other : this;
    }

    private static String at(int i, int cols) {
        return cols > 0 ? "[" + i / cols + "," + i % cols + "]" : "[" + i + "]";
    }
}
