package dev.isthmus.conformance;

import dev.isthmus.api.DType;
import dev.isthmus.api.Op;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The results of a conformance run, as a per-op × dtype table and a list of failures.
 *
 * <pre>{@code
 * ConformanceReport report = new ConformanceReport(backend.name(), ConformanceSuite.runAll(backend, r -> {}));
 * System.out.print(report.format());
 * System.exit(report.allPassed() ? 0 : 1);
 * }</pre>
 */
public final class ConformanceReport {
    private final String backendName;
    private final List<CaseResult> results;

    public ConformanceReport(String backendName, List<CaseResult> results) {
        this.backendName = backendName;
        this.results = List.copyOf(results);
    }

    public String backendName() {
        return backendName;
    }

    public List<CaseResult> results() {
        return results;
    }

    /** True if no case FAILed or ERRORed (UNSUPPORTED cases are not failures, but not passes either). */
    public boolean allPassed() {
        return results.stream().noneMatch(CaseResult::failed);
    }

    /** The FAIL and ERROR results, in run order. */
    public List<CaseResult> failures() {
        return results.stream().filter(CaseResult::failed).toList();
    }

    public long count(CaseResult.Status status) {
        return results.stream().filter(r -> r.status() == status).count();
    }

    /** One line of the table: the cases of one op for one dtype. */
    public record Row(Op op, DType dtype, int cases, int pass, int fail, int unsupported, int error,
                      double worstNmse, double threshold) {
    }

    /** The table: one row per op × dtype that has results, ops in SPI order, dtypes in {@link DType} order. */
    public List<Row> rows() {
        Map<String, List<CaseResult>> groups = new LinkedHashMap<>();
        results.stream()
                .sorted(Comparator.comparing(CaseResult::op).thenComparing(CaseResult::dtype))
                .forEach(r -> groups.computeIfAbsent(r.op() + "/" + r.dtype(), k -> new ArrayList<>()).add(r));
        List<Row> rows = new ArrayList<>();
        for (List<CaseResult> g : groups.values()) {
            int pass = 0;
            int fail = 0;
            int unsupported = 0;
            int error = 0;
            double worst = Double.NaN;
            double threshold = 0;
            for (CaseResult r : g) {
                switch (r.status()) {
                    case PASS -> pass++;
                    case FAIL -> fail++;
                    case UNSUPPORTED -> unsupported++;
                    case ERROR -> error++;
                }
                if (!Double.isNaN(r.nmse()) && (Double.isNaN(worst) || r.nmse() > worst)) {
                    worst = r.nmse();
                }
                threshold = Math.max(threshold, r.threshold());
            }
            CaseResult first = g.getFirst();
            rows.add(new Row(first.op(), first.dtype(), g.size(), pass, fail, unsupported, error, worst, threshold));
        }
        return rows;
    }

    /** The table, a summary line and the failures with their NMSE and message. */
    public String format() {
        StringBuilder sb = new StringBuilder();
        sb.append("Conformance of backend '").append(backendName).append("'\n\n");
        String fmt = "%-17s %-6s %6s %6s %6s %6s %6s %11s %10s%n";
        sb.append(String.format(Locale.ROOT, fmt, "op", "dtype", "cases", "pass", "fail", "unsup", "error",
                "worst NMSE", "threshold"));
        for (Row r : rows()) {
            sb.append(String.format(Locale.ROOT, fmt, r.op(), r.dtype(), r.cases(), r.pass(), r.fail(),
                    r.unsupported(), r.error(),
                    Double.isNaN(r.worstNmse()) ? "-" : String.format(Locale.ROOT, "%.2e", r.worstNmse()),
                    r.op() == Op.ARGMAX ? "exact" : String.format(Locale.ROOT, "%.0e", r.threshold())));
        }
        sb.append(String.format(Locale.ROOT, "%n%d cases: %d passed, %d failed, %d unsupported, %d errors -> %s%n",
                results.size(), count(CaseResult.Status.PASS), count(CaseResult.Status.FAIL),
                count(CaseResult.Status.UNSUPPORTED), count(CaseResult.Status.ERROR),
                allPassed() ? "CONFORMANT" : "NOT CONFORMANT"));
        List<CaseResult> failures = failures();
        if (!failures.isEmpty()) {
            sb.append("\nFailures:\n");
            for (CaseResult r : failures) {
                sb.append("  ").append(r.status()).append(' ').append(r.name());
                if (!Double.isNaN(r.nmse())) {
                    sb.append(String.format(Locale.ROOT, "  nmse=%.3e (threshold %.0e)", r.nmse(), r.threshold()));
                }
                sb.append("\n      ").append(r.message()).append('\n');
            }
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return format();
    }
}
