package dev.isthmus.cli;

import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.conformance.CaseResult;
import dev.isthmus.conformance.ConformanceReport;
import dev.isthmus.conformance.ConformanceSuite;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicInteger;

/** {@code isthmus conformance}: every op × dtype × shape against the float64 reference. */
@Command(name = "conformance", description = "Run the conformance suite on a backend (every op, dtype and shape "
        + "against a float64 reference) and print the per-op table. Exit code 1 on any failure.")
final class ConformanceCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    BackendChoice backendChoice;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Backends.Candidate chosen = backendChoice.name == null ? Backends.select() : Backends.select(backendChoice.name);
        try (Backend backend = chosen.provider().create(backendChoice.options())) {
            out.printf("conformance of backend '%s' (%s)%n", chosen.name(), chosen.availability().detail());
            out.flush();
            int total = ConformanceSuite.cases().size();
            AtomicInteger done = new AtomicInteger();
            List<CaseResult> results = ConformanceSuite.runAll(backend, r -> {
                int d = done.incrementAndGet();
                if (d % 50 == 0 || d == total) {
                    System.err.printf("\r%d/%d cases", d, total);
                }
            });
            System.err.println();
            ConformanceReport report = new ConformanceReport(chosen.name(), results);
            out.print(report.format());
            out.flush();
            return report.allPassed() ? 0 : 1;
        }
    }
}
