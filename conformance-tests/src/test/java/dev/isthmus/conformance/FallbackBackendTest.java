package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.discovery.Capabilities;
import dev.isthmus.api.discovery.FallbackBackend;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.model.Model;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A device backend that lacks some ops runs them on the CPU backend through {@link FallbackBackend}: the
 * conformance suite passes on the combination, and a whole model still generates the golden text.
 */
class FallbackBackendTest {
    private static final Set<Op> MISSING = Set.of(Op.ATTENTION, Op.ROPE, Op.SWIGLU);

    /** The scrambled-memory toy device, claiming not to support {@link #MISSING}. */
    private static Backend lackingDevice() {
        return new DelegatingBackend(new ToyBackend(true)) {
            @Override
            public boolean supports(Op op, DType... dtypes) {
                return !MISSING.contains(op) && delegate.supports(op, dtypes);
            }

            @Override
            public void close() {
                delegate.close();
            }
        };
    }

    private static FallbackBackend fallbackOverCpu() {
        Backend cpu = Backends.select("cpu").provider().create(BackendOptions.defaults());
        return new FallbackBackend(lackingDevice(), cpu);
    }

    @Test
    void missingOpsAreListedAsGaps() {
        try (Backend device = lackingDevice()) {
            List<Capabilities.Pair> gaps = Capabilities.gaps(device);
            assertTrue(gaps.contains(new Capabilities.Pair(Op.ATTENTION, DType.F16)), gaps.toString());
            assertTrue(gaps.contains(new Capabilities.Pair(Op.ROPE, DType.F32)), gaps.toString());
            assertEquals(5, gaps.size(), gaps.toString());
        }
    }

    @Test
    void conformanceSuitePassesThroughTheFallback() {
        try (FallbackBackend backend = fallbackOverCpu()) {
            List<TestCase> cases = ConformanceSuite.cases().stream().filter(c -> MISSING.contains(c.op())).toList();
            ConformanceReport report = new ConformanceReport(backend.name(),
                    ConformanceSuite.runAll(backend, cases, r -> { }));
            assertTrue(report.allPassed(), report.format());
            assertEquals(0, report.count(CaseResult.Status.UNSUPPORTED), report.format());
            assertTrue(backend.fallbacks().contains(new Capabilities.Pair(Op.ATTENTION, DType.BF16)));
        }
    }

    @Test
    void goldenTextThroughDeviceAndFallback() throws IOException {
        String expected = Files.readString(SharedData.file("golden/stories260K.greedy200.expected.txt"));
        try (FallbackBackend backend = fallbackOverCpu();
             Model m = Model.open(SharedData.file("models/stories260K.gguf"), null, backend)) {
            String text = m.generator().generate("", GenerationParams.greedy(200), s -> { }).text();
            assertEquals(expected, text);
            assertEquals(Set.of(new Capabilities.Pair(Op.ATTENTION, DType.F32), new Capabilities.Pair(Op.ROPE, DType.F32),
                    new Capabilities.Pair(Op.SWIGLU, DType.F32)), Set.copyOf(backend.fallbacks()));
        }
    }
}
