package dev.isthmus.conformance;

import dev.isthmus.api.spi.Backend;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicTest;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The conformance suite as dynamic tests, for a test class that runs it on backends it opens: one dynamic
 * test per case, where FAIL and ERROR fail the test with the NMSE or message and UNSUPPORTED aborts it
 * (reported as skipped, never as passed). The test class keeps one instance in a static field and calls
 * {@link #reportAndClose()} from its {@code @AfterAll}.
 */
public final class ConformanceRuns {
    private final List<Backend> opened = Collections.synchronizedList(new ArrayList<>());
    private final Map<String, List<CaseResult>> resultsBySuite = Collections.synchronizedMap(new LinkedHashMap<>());

    /**
     * The cases that {@code cases} accepts, run on {@code backend}, in a container named {@code name}. The
     * backend is closed by {@link #reportAndClose()}.
     */
    public DynamicContainer suite(String name, Backend backend, Predicate<TestCase> cases) {
        opened.add(backend);
        List<CaseResult> results = Collections.synchronizedList(new ArrayList<>());
        resultsBySuite.put(name, results);
        return DynamicContainer.dynamicContainer(name, ConformanceSuite.cases().stream()
                .filter(cases)
                .map(tc -> DynamicTest.dynamicTest(tc.name(), () -> {
                    CaseResult r = ConformanceSuite.run(backend, tc);
                    results.add(r);
                    switch (r.status()) {
                        case PASS -> { }
                        case UNSUPPORTED -> Assumptions.abort(r.message());
                        case FAIL, ERROR -> fail(r.toString());
                    }
                })));
    }

    /** Prints the report of each suite that ran cases, then closes the backends. */
    public void reportAndClose() {
        try {
            resultsBySuite.forEach((name, results) -> {
                if (!results.isEmpty()) {
                    System.out.println(new ConformanceReport(name, results).format());
                }
            });
        } finally {
            opened.forEach(Backend::close);
            opened.clear();
            resultsBySuite.clear();
        }
    }
}
