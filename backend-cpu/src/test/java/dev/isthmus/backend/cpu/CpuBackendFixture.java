package dev.isthmus.backend.cpu;

import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.lang.foreign.Arena;
import java.util.Map;

/**
 * One CPU backend and one shared arena for a whole test class: opened before its first test, closed after its last.
 * Register it as {@code @RegisterExtension static final CpuBackendFixture cpu = CpuBackendFixture.withDefaults();}.
 */
final class CpuBackendFixture implements BeforeAllCallback, AfterAllCallback {
    private final BackendOptions options;
    private Backend backend;
    private Arena arena;

    private CpuBackendFixture(BackendOptions options) {
        this.options = options;
    }

    /** A backend with {@link BackendOptions#defaults()}. */
    static CpuBackendFixture withDefaults() {
        return new CpuBackendFixture(BackendOptions.defaults());
    }

    /** A backend with {@code threads} worker threads and no properties. */
    static CpuBackendFixture withThreads(int threads) {
        return new CpuBackendFixture(new BackendOptions(threads, Map.of()));
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        backend = new CpuBackendProvider().create(options);
        arena = Arena.ofShared();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        backend.close();
        arena.close();
    }

    Backend backend() {
        return backend;
    }

    Arena arena() {
        return arena;
    }
}
