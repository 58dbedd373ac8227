package dev.isthmus.conformance;

import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

/**
 * Every conformance case on every available backend of the class path (or only the one named by
 * {@code -Disthmus.backend=NAME}): one dynamic test per backend × case. FAIL and ERROR fail the test with the
 * NMSE or message; UNSUPPORTED aborts it (reported as skipped, never as passed). With no available backend
 * the factory produces a failing test rather than passing vacuously.
 */
class BackendConformanceTest {
    private static final ConformanceRuns RUNS = new ConformanceRuns();

    @TestFactory
    List<DynamicNode> conformance() {
        List<Backends.Candidate> all = Backends.candidates();
        Optional<String> requested = Backends.requestedName();
        List<Backends.Candidate> chosen = requested
                .map(n -> all.stream().filter(c -> c.name().equalsIgnoreCase(n)).toList())
                .orElse(all);
        String known = all.isEmpty() ? "(none on the class path)" : all.stream()
                .map(c -> c.name() + (c.availability().available() ? " (available)"
                        : " (unavailable: " + c.availability().detail() + ")"))
                .collect(Collectors.joining(", "));

        List<DynamicNode> nodes = new ArrayList<>();
        List<Backends.Candidate> available = chosen.stream().filter(c -> c.availability().available()).toList();
        if (available.isEmpty()) {
            String what = requested.map(n -> "backend '" + n + "'").orElse("any backend");
            nodes.add(dynamicTest("no backend to test", () -> fail("conformance needs " + what
                    + " to be available; found: " + known)));
            return nodes;
        }
        for (Backends.Candidate c : chosen) {
            if (!c.availability().available()) {
                nodes.add(dynamicTest(c.name() + " is unavailable", () ->
                        Assumptions.abort(c.name() + " is unavailable: " + c.availability().detail())));
            }
        }
        for (Backends.Candidate c : available) {
            Backend backend;
            try {
                backend = c.provider().create(BackendOptions.defaults());
            } catch (RuntimeException | LinkageError e) {
                nodes.add(dynamicTest(c.name() + " can be created", () -> fail("creating " + c.name() + " failed", e)));
                continue;
            }
            nodes.add(RUNS.suite(c.name(), backend, tc -> true));
        }
        return nodes;
    }

    @AfterAll
    static void report() {
        RUNS.reportAndClose();
    }
}
