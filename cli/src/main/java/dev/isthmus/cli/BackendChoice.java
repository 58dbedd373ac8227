package dev.isthmus.cli;

import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import picocli.CommandLine.Option;

import java.util.Map;

/** {@code --backend} and {@code --threads}, shared by the commands that compute. */
final class BackendChoice {
    @Option(names = "--backend", paramLabel = "NAME",
            description = "Backend to run on (default: -Disthmus.backend, ISTHMUS_BACKEND, or the best available).")
    String name;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Worker threads (default: one per core).")
    int threads;

    BackendOptions options() {
        return new BackendOptions(threads, Map.of());
    }

    /** Opens the chosen backend, with CPU fallback for the ops it lacks. */
    Backend open() {
        return Backends.openWithFallback(name, options());
    }
}
