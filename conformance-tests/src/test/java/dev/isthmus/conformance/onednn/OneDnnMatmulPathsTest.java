package dev.isthmus.conformance.onednn;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.backend.onednn.OneDnnBackendProvider;
import dev.isthmus.conformance.CaseResult;
import dev.isthmus.conformance.ConformanceReport;
import dev.isthmus.conformance.ConformanceSuite;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the onednn backend claims for block-quantized weights ({@code Q8_0}, {@code Q4_0}, {@code Q5_0}): every
 * MATMUL case of the suite (plain, views, fused Q/K/V and SwiGLU entry points) on each of its three matmul paths,
 * with the CPU backend's kernels switched off so that the 1- and 2-row cases run on oneDNN too. Each path must
 * pass the suite (NMSE ≤ {@value #SUITE}) and stay within its own, tighter bound:
 * <ul>
 *   <li>{@code quantWeights=int8} (the default): weights re-quantized to s8 with one scale per output channel,
 *       activations quantized to s8 per row (the suite's uniform activations need neither mixing nor a second
 *       term), AMX int8. Not exact: NMSE ≤ {@value #INT8}; measured worst 1.2e-4 (Q4_0).</li>
 *   <li>{@code quantWeights=bf16}: weights exactly, rounded once to bf16; bf16 activations: NMSE ≤ {@value #BF16}.</li>
 *   <li>{@code quantWeights=s8}: exact s8 weights with their per-32 scales, decompressed to bf16 in the kernel;
 *       bf16 activations: NMSE ≤ {@value #BF16}.</li>
 * </ul>
 * The suite's default run ({@code BackendConformanceTest}) covers the backend as it is shipped (int8, with the CPU
 * kernels for 1-2 rows).
 */
class OneDnnMatmulPathsTest {
    static final double SUITE = 5e-4;
    static final double INT8 = 2e-4;
    static final double BF16 = 5e-5;

    private static final Set<DType> BLOCK_FORMATS = Set.of(DType.Q8_0, DType.Q4_0, DType.Q5_0);
    /** The backends opened for the paths, with the results of their cases, reported and closed after all. */
    private static final List<Run> RUNS = Collections.synchronizedList(new ArrayList<>());

    private record Run(String quantWeights, double bound, Backend backend, List<CaseResult> results) {
    }

    @TestFactory
    List<DynamicNode> blockFormatMatmulsOnEachPath() {
        OneDnnBackendProvider provider = new OneDnnBackendProvider();
        if (!provider.probe().available()) {
            return List.of(DynamicTest.dynamicTest("onednn", () -> Assumptions.abort(provider.probe().detail())));
        }
        assertEquals(SUITE, ConformanceSuite.threshold(Op.MATMUL), "the suite's bound this test refines");
        List<DynamicNode> nodes = new ArrayList<>();
        for (String quantWeights : List.of("int8", "bf16", "s8")) {
            Run run = new Run(quantWeights, quantWeights.equals("int8") ? INT8 : BF16, provider.create(
                    new BackendOptions(0, Map.of("quantWeights", quantWeights, "cpuDelegate", "false"))),
                    Collections.synchronizedList(new ArrayList<>()));
            RUNS.add(run);
            nodes.add(DynamicContainer.dynamicContainer("onednn quantWeights=" + quantWeights, ConformanceSuite.cases()
                    .stream()
                    .filter(c -> c.op() == Op.MATMUL && BLOCK_FORMATS.contains(c.dtype()))
                    .map(c -> DynamicTest.dynamicTest(c.name(), () -> {
                        CaseResult r = ConformanceSuite.run(run.backend(), c);
                        run.results().add(r);
                        assertEquals(CaseResult.Status.PASS, r.status(), r::toString);
                        assertTrue(r.nmse() <= run.bound(), () -> r.name() + ": NMSE " + r.nmse() + " above the "
                                + quantWeights + " path's " + run.bound());
                    }))));
        }
        return nodes;
    }

    @AfterAll
    static void reportAndClose() {
        for (Run run : RUNS) {
            System.out.println(new ConformanceReport("onednn quantWeights=" + run.quantWeights(), run.results())
                    .format());
            run.backend().close();
        }
        RUNS.clear();
    }
}
