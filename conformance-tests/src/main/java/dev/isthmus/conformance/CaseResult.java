package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;

/**
 * The result of one conformance case on one backend.
 *
 * @param op        the operator under test
 * @param dtype     the dtype the capability query was asked about (see {@link Op})
 * @param name      the case name, e.g. {@code matmul/Q4_K/n7_m33_k512}
 * @param status    PASS, FAIL, UNSUPPORTED or ERROR
 * @param nmse      normalized mean squared error against the float64 reference ({@code Σ(a−b)²/Σa²});
 *                  NaN when nothing was compared (UNSUPPORTED, ERROR, or a failure found before comparing)
 * @param threshold the largest NMSE that passes
 * @param message   empty on PASS; otherwise what went wrong, for humans
 */
public record CaseResult(Op op, DType dtype, String name, Status status, double nmse, double threshold,
                         String message) {

    /** How a case ended. Only PASS counts as passed; UNSUPPORTED is never a pass. */
    public enum Status {
        /** Ran, matched the reference within the threshold, wrote nothing outside its output. */
        PASS,
        /** Ran but produced a wrong result, a NaN/Inf mismatch, or wrote outside its output. */
        FAIL,
        /** {@code backend.supports(op, dtype)} answered false. */
        UNSUPPORTED,
        /** The backend threw. */
        ERROR
    }

    public boolean passed() {
        return status == Status.PASS;
    }

    /** FAIL or ERROR: what makes a conformance run fail. */
    public boolean failed() {
        return status == Status.FAIL || status == Status.ERROR;
    }

    @Override
    public String toString() {
        String s = status + " " + name;
        if (!Double.isNaN(nmse)) {
            s += String.format(" nmse=%.3g (threshold %.1g)", nmse, threshold);
        }
        return message.isEmpty() ? s : s + ": " + message;
    }
}
