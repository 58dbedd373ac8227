package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** Collects cases, naming each {@code op/DTYPE/description} and refusing duplicate names. */
final class CaseList {
    private final List<TestCase> cases = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    void add(Op op, DType dtype, String description, CaseBody body) {
        String name = op.name().toLowerCase(Locale.ROOT) + "/" + dtype + "/" + description;
        if (!names.add(name)) {
            throw new IllegalStateException("duplicate conformance case " + name);
        }
        cases.add(new TestCase(op, dtype, name, ConformanceSuite.threshold(op), body));
    }

    List<TestCase> toList() {
        return List.copyOf(cases);
    }
}
