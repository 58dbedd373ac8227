package dev.isthmus.cli;

import dev.isthmus.api.discovery.BackendUnavailableException;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.discovery.Capabilities;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code isthmus backends}: providers, availability, priorities, the selection, and fallbacks. */
@Command(name = "backends", description = "List backends: availability (with reasons), priority, which one is "
        + "selected, and which ops fall back to cpu.")
final class BackendsCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        List<Backends.Candidate> all = Backends.candidates();
        String selected = null;
        String error = null;
        try {
            selected = Backends.select().name();
        } catch (BackendUnavailableException e) {
            error = e.getMessage();
        }
        out.printf("%-3s %-10s %8s  %-11s %s%n", "", "BACKEND", "PRIORITY", "STATUS", "DETAIL");
        for (Backends.Candidate c : all) {
            out.printf("%-3s %-10s %8d  %-11s %s%n", c.name().equals(selected) ? "*" : "", c.name(),
                    c.provider().priority(), c.availability().available() ? "available" : "unavailable",
                    c.availability().detail());
        }
        for (Backends.Candidate c : all) {
            if (c.availability().available() && !c.name().equals("cpu")) {
                out.println(fallbackLine(c));
            }
        }
        if (error != null) {
            spec.commandLine().getErr().println("isthmus: " + error);
            return 2;
        }
        out.println("selected: " + selected + Backends.requestedName().map(n -> " (requested)").orElse(
                " (highest priority available; override with -D" + Backends.PROPERTY + "=NAME or "
                        + Backends.ENV + ")"));
        return 0;
    }

    private static String fallbackLine(Backends.Candidate c) {
        try (Backend b = c.provider().create(BackendOptions.defaults())) {
            List<Capabilities.Pair> gaps = Capabilities.gaps(b);
            return c.name() + ": " + (gaps.isEmpty() ? "supports every op and dtype"
                    : "falls back to cpu for " + gaps);
        } catch (RuntimeException e) {
            return c.name() + ": could not be created: " + UserErrors.describe(e);
        }
    }
}
