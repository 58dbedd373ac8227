package dev.isthmus.backend.onednn;

import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.api.spi.BackendProvider;

import java.util.ServiceLoader;

/**
 * Finds the {@code cpu} backend on the class path (by its {@link BackendProvider} name, without a compile-time
 * dependency) for the work oneDNN does not do well or at all.
 */
final class CpuDelegate {
    static final String NAME = "cpu";

    private CpuDelegate() {
    }

    /** Whether a provider named {@value #NAME} is on the class path (not whether it is available). */
    static boolean present() {
        try {
            return ServiceLoader.load(BackendProvider.class, CpuDelegate.class.getClassLoader()).stream()
                    .anyMatch(p -> p.get().name().equals(NAME));
        } catch (RuntimeException | java.util.ServiceConfigurationError | LinkageError e) {
            return false;
        }
    }

    /** A new CPU backend with {@code options}, or null if none is on the class path or it is unavailable. */
    static Backend open(BackendOptions options) {
        try {
            for (ServiceLoader.Provider<BackendProvider> p : ServiceLoader.load(BackendProvider.class,
                    CpuDelegate.class.getClassLoader()).stream().toList()) {
                BackendProvider provider = p.get();
                if (provider.name().equals(NAME) && provider.probe().available()) {
                    return provider.create(options);
                }
            }
        } catch (RuntimeException | java.util.ServiceConfigurationError | LinkageError e) {
            // Without it, onednn offers only its own operators; FallbackBackend covers the rest if it can.
        }
        return null;
    }
}
