package dev.isthmus.conformance;

import dev.isthmus.api.Op;
import dev.isthmus.api.spi.Backend;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * The conformance suite every backend must pass: each operator of the {@link Backend} SPI, for each dtype of
 * {@link dev.isthmus.api.discovery.Capabilities#matrix()}, over many shapes, compared with an independent
 * float64 reference ({@link dev.isthmus.conformance.reference.ReferenceOps}), in the manner of ggml's
 * {@code test-backend-ops}.
 *
 * <h2>Running it against your backend</h2>
 * <ul>
 *   <li>From the command line: {@code ./isthmus conformance --backend NAME} prints the per-op table of
 *       {@link ConformanceReport} and exits non-zero if any case FAILs or ERRORs.</li>
 *   <li>With Maven: put your backend's jar (with its {@code META-INF/services/dev.isthmus.api.spi.BackendProvider}
 *       entry) on the test class path of {@code conformance-tests} (a test-scope dependency in its pom) and run
 *       {@code ./mvnw verify -pl conformance-tests}. Every available backend found by
 *       {@link dev.isthmus.api.discovery.Backends#candidates()} gets one JUnit test per case; add
 *       {@code -Disthmus.backend=NAME} to run only yours. UNSUPPORTED cases show as skipped, never as passed.</li>
 *   <li>From code: {@code ConformanceReport report = new ConformanceReport(backend.name(),
 *       ConformanceSuite.runAll(backend, result -> {}))}, then {@link ConformanceReport#allPassed()} and
 *       {@link ConformanceReport#format()}.</li>
 * </ul>
 *
 * <h2>What a case checks</h2>
 * Inputs come from a seed derived from the case name, so every run and every backend sees the same data.
 * Tensors are created with {@link Backend#allocate} (data moved with {@link Backend#copy} when the device is
 * not host-accessible), each in the middle of a larger allocation filled with a random guard pattern; many
 * cases also pass views (row ranges of larger tensors) and aliased outputs where the SPI allows them.
 * A case FAILs when
 * <ul>
 *   <li>a NaN or infinity appears where the reference has none (or the reverse);</li>
 *   <li>the NMSE {@code Σ(ref − out)² / Σ ref²} exceeds the op's {@link #threshold(Op) threshold};</li>
 *   <li>an index result (argmax, top-k indices) differs at all;</li>
 *   <li>the op wrote any byte outside its output, or changed any byte of an input.</li>
 * </ul>
 * A case whose {@code backend.supports(op, dtype)} is false is UNSUPPORTED; an exception from the backend is
 * an ERROR carrying the exception's message.
 */
public final class ConformanceSuite {
    private static final List<TestCase> CASES = build();

    private ConformanceSuite() {
    }

    private static List<TestCase> build() {
        CaseList list = new CaseList();
        MatrixCases.addTo(list);
        ElementwiseCases.addTo(list);
        PositionalCases.addTo(list);
        SelectionCases.addTo(list);
        return list.toList();
    }

    /** Every case, grouped by operator in SPI order. The list is the same on every call. */
    public static List<TestCase> cases() {
        return CASES;
    }

    /**
     * The largest NMSE that passes for {@code op}: 5e-4 for MATMUL and ATTENTION (which may quantize
     * activations or use half-precision arithmetic), 1e-6 for SOFTMAX, 1e-7 otherwise. ARGMAX and the indices
     * of TOP_K must match exactly.
     */
    public static double threshold(Op op) {
        return switch (op) {
            case MATMUL, ATTENTION -> 5e-4;
            case SOFTMAX -> 1e-6;
            case ARGMAX -> 0;
            default -> 1e-7;
        };
    }

    /** Runs one case on {@code backend}; never throws for anything the backend does. */
    public static CaseResult run(Backend backend, TestCase c) {
        double threshold = c.threshold();
        try {
            if (!backend.supports(c.op(), c.dtype())) {
                return result(c, CaseResult.Status.UNSUPPORTED, Double.NaN,
                        backend.name() + " does not support " + c.op() + "(" + c.dtype() + ")");
            }
        } catch (RuntimeException | Error e) {
            return result(c, CaseResult.Status.ERROR, Double.NaN, "supports() threw " + describe(e));
        }
        Workspace ws = new Workspace(backend, c.seed());
        CaseResult result;
        try {
            Outcome o = c.body().run(ws, new SplittableRandom(c.seed()));
            if (o.failure != null) {
                result = result(c, CaseResult.Status.FAIL, o.nmse, o.failure);
            } else if (!(o.nmse <= threshold)) {
                result = result(c, CaseResult.Status.FAIL, o.nmse,
                        String.format("NMSE %.3g > %.1g; %s", o.nmse, threshold, o.worst));
            } else {
                result = result(c, CaseResult.Status.PASS, o.nmse, "");
            }
        } catch (CaseFailure f) {
            result = result(c, CaseResult.Status.FAIL, Double.NaN, f.getMessage());
        } catch (RuntimeException | LinkageError | AssertionError | StackOverflowError | OutOfMemoryError e) {
            result = result(c, CaseResult.Status.ERROR, Double.NaN, describe(e));
        }
        try {
            ws.close();
        } catch (RuntimeException e) {
            if (result.status() != CaseResult.Status.ERROR) {
                result = result(c, CaseResult.Status.ERROR, result.nmse(), "release() threw " + describe(e));
            }
        }
        return result;
    }

    /** Runs every case on {@code backend}, reporting each result to {@code progress} as it finishes. */
    public static List<CaseResult> runAll(Backend backend, Consumer<CaseResult> progress) {
        return runAll(backend, cases(), progress);
    }

    /** Runs the given cases (e.g. a filtered {@link #cases()}) on {@code backend}. */
    public static List<CaseResult> runAll(Backend backend, List<TestCase> cases, Consumer<CaseResult> progress) {
        List<CaseResult> results = new ArrayList<>(cases.size());
        for (TestCase c : cases) {
            CaseResult r = run(backend, c);
            results.add(r);
            progress.accept(r);
        }
        return results;
    }

    private static CaseResult result(TestCase c, CaseResult.Status status, double nmse, String message) {
        return new CaseResult(c.op(), c.dtype(), c.name(), status, nmse, c.threshold(), message);
    }

    private static String describe(Throwable t) {
        String m = t.getMessage();
        String s = t.getClass().getName() + (m == null ? "" : ": " + m);
        StackTraceElement[] trace = t.getStackTrace();
        return trace.length == 0 ? s : s + " (at " + trace[0] + ")";
    }
}
