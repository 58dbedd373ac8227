package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;

import java.nio.charset.StandardCharsets;

/**
 * One conformance case: an operator, the dtype its capability query names, fixed shapes and parameters,
 * and a seed derived from the name (so the inputs are the same on every run and every backend).
 */
public final class TestCase {
    private final Op op;
    private final DType dtype;
    private final String name;
    private final long seed;
    private final double threshold;
    private final CaseBody body;

    TestCase(Op op, DType dtype, String name, double threshold, CaseBody body) {
        this.op = op;
        this.dtype = dtype;
        this.name = name;
        this.seed = seedOf(name);
        this.threshold = threshold;
        this.body = body;
    }

    public Op op() {
        return op;
    }

    public DType dtype() {
        return dtype;
    }

    /** Unique and stable, e.g. {@code attention/F16/paged3_gqa4}. */
    public String name() {
        return name;
    }

    /** The seed of the case's inputs: a 64-bit FNV-1a hash of the name. */
    public long seed() {
        return seed;
    }

    /** The largest NMSE that passes. */
    public double threshold() {
        return threshold;
    }

    CaseBody body() {
        return body;
    }

    static long seedOf(String name) {
        long h = 0xcbf29ce484222325L;
        for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xFF;
            h *= 0x100000001b3L;
        }
        return h;
    }

    @Override
    public String toString() {
        return name;
    }
}
