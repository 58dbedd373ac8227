package dev.isthmus.conformance;

import dev.isthmus.api.Op;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The suite against a backend that is right by construction (it computes with the reference itself), on the
 * host and on a fake device whose memory Java must not read directly: every case must pass, so the harness
 * raises no false alarms and moves device data only through {@code Backend.copy}.
 */
class HarnessSelfTest {

    @Test
    void everyCaseHasAUniqueNameAndSeed() {
        List<TestCase> cases = ConformanceSuite.cases();
        assertTrue(cases.size() > 300, "only " + cases.size() + " cases");
        assertEquals(cases.size(), cases.stream().map(TestCase::name).distinct().count());
        assertEquals(cases.size(), cases.stream().map(TestCase::seed).distinct().count());
        Map<String, Long> perOp = cases.stream().collect(Collectors.groupingBy(c -> c.op().name(), Collectors.counting()));
        assertEquals(Op.values().length, perOp.size(), "every op has cases: " + perOp);
    }

    @Test
    void referenceBackedHostBackendPassesEverything() {
        assertAllPass(new ToyBackend(false));
    }

    @Test
    void referenceBackedDeviceBackendPassesEverything() {
        assertAllPass(new ToyBackend(true));
    }

    private static void assertAllPass(ToyBackend backend) {
        try (backend) {
            List<CaseResult> results = ConformanceSuite.runAll(backend, r -> { });
            ConformanceReport report = new ConformanceReport(backend.name(), results);
            assertTrue(report.allPassed(), report::format);
            assertEquals(results.size(), report.count(CaseResult.Status.PASS), report::format);
        }
    }
}
