package dev.isthmus.api.discovery;

import dev.isthmus.api.spi.Availability;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.api.spi.BackendProvider;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.stream.Collectors;

/**
 * Finds backends with {@link ServiceLoader} and picks one.
 *
 * <p>A backend named by the caller, by the system property {@value #PROPERTY} or by the environment
 * variable {@value #ENV} (in that order) must exist and be available: there is no silent fallback when a
 * user asked for a specific backend. With no name, the available provider of highest priority wins.
 */
public final class Backends {
    /** System property naming the backend to use. */
    public static final String PROPERTY = "isthmus.backend";
    /** Environment variable naming the backend to use. */
    public static final String ENV = "ISTHMUS_BACKEND";

    private Backends() {
    }

    /** A provider and the answer of its probe. */
    public record Candidate(BackendProvider provider, Availability availability) {
        public String name() {
            return provider.name();
        }
    }

    /** Every provider on the class path with its probe, highest priority first. */
    public static List<Candidate> candidates() {
        return providers().stream().map(p -> new Candidate(p, safeProbe(p))).toList();
    }

    /** Every provider on the class path, highest priority first, not probed. */
    private static List<BackendProvider> providers() {
        List<BackendProvider> list = new ArrayList<>();
        for (ServiceLoader.Provider<BackendProvider> p : ServiceLoader.load(BackendProvider.class).stream().toList()) {
            list.add(p.get());
        }
        list.sort(Comparator.comparingInt(BackendProvider::priority).reversed().thenComparing(BackendProvider::name));
        return list;
    }

    private static Availability safeProbe(BackendProvider provider) {
        try {
            return provider.probe();
        } catch (RuntimeException | LinkageError e) {
            return Availability.unavailable("probe failed: " + e);
        }
    }

    /** The backend name requested by system property or environment, if any. */
    public static Optional<String> requestedName() {
        String name = System.getProperty(PROPERTY);
        if (name == null || name.isBlank()) {
            name = System.getenv(ENV);
        }
        return name == null || name.isBlank() ? Optional.empty() : Optional.of(name.trim());
    }

    /** Selects by {@link #requestedName()}, or the best available provider. */
    public static Candidate select() {
        return select(requestedName().orElse(null));
    }

    /**
     * Selects the provider called {@code name}, or with {@code null} the available provider of highest
     * priority.
     *
     * @throws BackendUnavailableException naming the backend and the known ones if it is unknown, or with
     *                                     its probe's reason if it is unavailable
     */
    public static Candidate select(String name) {
        // Probe only what the choice needs: a probe may load a native library (and keep its pages resident).
        List<BackendProvider> all = providers();
        if (name == null) {
            for (BackendProvider p : all) {
                Availability a = safeProbe(p);
                if (a.available()) {
                    return new Candidate(p, a);
                }
            }
            throw new BackendUnavailableException("no backend is available: " + describe(candidates()));
        }
        BackendProvider provider = all.stream().filter(p -> p.name().equalsIgnoreCase(name)).findFirst()
                .orElseThrow(() -> new BackendUnavailableException(
                        "unknown backend '" + name + "'; known backends: " + describe(candidates())));
        Availability a = safeProbe(provider);
        if (!a.available()) {
            throw new BackendUnavailableException(
                    "backend '" + provider.name() + "' is unavailable: " + a.detail());
        }
        return new Candidate(provider, a);
    }

    /** Creates the backend chosen by {@link #select()}. */
    public static Backend open(BackendOptions options) {
        return select().provider().create(options);
    }

    /** Creates the backend chosen by {@link #select(String)}. */
    public static Backend open(String name, BackendOptions options) {
        return select(name).provider().create(options);
    }

    /** The name of the always-available host backend that {@link FallbackBackend} runs missing ops on. */
    public static final String FALLBACK = "cpu";

    /**
     * Creates the backend chosen by {@link #select(String)} (by {@link #requestedName()} when {@code name} is
     * null) and, if it lacks some op × dtype of {@link Capabilities#matrix()}, wraps it in a
     * {@link FallbackBackend} over the {@value #FALLBACK} backend.
     */
    public static Backend openWithFallback(String name, BackendOptions options) {
        Candidate chosen = name == null ? select() : select(name);
        Backend primary = chosen.provider().create(options);
        if (chosen.name().equals(FALLBACK) || Capabilities.gaps(primary).isEmpty()) {
            return primary;
        }
        try {
            return new FallbackBackend(primary, select(FALLBACK).provider().create(options));
        } catch (RuntimeException e) {
            primary.close();
            throw e;
        }
    }

    private static String describe(List<Candidate> all) {
        if (all.isEmpty()) {
            return "(none on the class path)";
        }
        return all.stream().map(c -> c.name() + (c.availability().available() ? " (available)"
                        : " (unavailable: " + c.availability().detail() + ")"))
                .collect(Collectors.joining(", "));
    }
}
