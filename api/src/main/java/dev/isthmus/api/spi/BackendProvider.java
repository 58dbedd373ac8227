package dev.isthmus.api.spi;

/**
 * The {@link java.util.ServiceLoader} entry point of a backend. Register an implementation in
 * {@code META-INF/services/dev.isthmus.api.spi.BackendProvider}.
 *
 * <p>Constructing a provider and calling {@link #name()}, {@link #priority()} and {@link #probe()} must be
 * cheap and must not fail: load native libraries lazily in {@code probe}, and report what went wrong
 * there.
 */
public interface BackendProvider {

    /** The name users select it by ({@code -Disthmus.backend=NAME}), lower case. */
    String name();

    /** Higher wins when no backend is named. The CPU backend, always available, has priority 0. */
    int priority();

    /** Whether this backend can run here, and if not, why (for humans). */
    Availability probe();

    /**
     * Creates a backend instance.
     *
     * @throws IllegalStateException with the probe's reason if the backend is unavailable
     */
    Backend create(BackendOptions options);
}
