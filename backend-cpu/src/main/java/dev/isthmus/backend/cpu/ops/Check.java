package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;

import java.util.Arrays;

/**
 * Up-front validation of operator arguments: every failure is an {@link IllegalArgumentException} that
 * names the op, the operand and the shapes involved, instead of an index error deep inside a kernel.
 */
final class Check {
    private Check() {
    }

    /** {@code F32[3, 64]}. */
    static String describe(Tensor t) {
        return t == null ? "null" : t.dtype() + Arrays.toString(t.shape());
    }

    static IllegalArgumentException fail(String op, String message) {
        return new IllegalArgumentException(op + ": " + message);
    }

    /** Non-null, host-accessible, of one of {@code allowed} dtypes, with int-sized rows and columns. */
    static void operand(String op, String name, Tensor t, DType... allowed) {
        if (t == null) {
            throw fail(op, name + " is null");
        }
        if (!t.device().hostAccessible()) {
            throw fail(op, name + " " + describe(t) + " is on " + t.device().name()
                    + ", which the CPU backend cannot read; copy it to the host first");
        }
        if (allowed.length > 0 && !Arrays.asList(allowed).contains(t.dtype())) {
            throw fail(op, name + " " + describe(t) + " must be "
                    + (allowed.length == 1 ? allowed[0] : "one of " + Arrays.toString(allowed)));
        }
        if (t.cols() > Integer.MAX_VALUE || t.rows() > Integer.MAX_VALUE) {
            throw fail(op, name + " " + describe(t) + " is too large");
        }
    }

    /** Same rows and columns (the matrix view) as {@code ref}. */
    static void sameShape(String op, String refName, Tensor ref, String name, Tensor t) {
        if (t.rows() != ref.rows() || t.cols() != ref.cols()) {
            throw fail(op, refName + " " + describe(ref) + " and " + name + " " + describe(t) + " differ in shape");
        }
    }

    /** A single row of {@code cols} elements, e.g. a norm weight. */
    static void vectorOf(String op, String name, Tensor t, String refName, Tensor ref) {
        if (t.cols() != ref.cols() || t.rows() != 1) {
            throw fail(op, name + " " + describe(t) + " must be one row of " + ref.cols()
                    + " to match " + refName + " " + describe(ref));
        }
    }

    /** {@code t} shares no bytes with {@code other}. */
    static void disjoint(String op, String name, Tensor t, String otherName, Tensor other) {
        if (t.segment().asOverlappingSlice(other.segment()).isPresent()) {
            throw fail(op, name + " " + describe(t) + " must not alias " + otherName + " " + describe(other));
        }
    }

    static void notNull(String op, String name, Object o) {
        if (o == null) {
            throw fail(op, name + " is null");
        }
    }
}
