package dev.isthmus.api.spi;

import java.util.Map;

/**
 * Options for {@link BackendProvider#create}.
 *
 * @param threads    worker threads for backends that run on CPU cores; 0 means one per available core
 * @param properties backend-specific settings, documented by each backend
 */
public record BackendOptions(int threads, Map<String, String> properties) {
    public BackendOptions {
        if (threads < 0) {
            throw new IllegalArgumentException("threads must be ≥ 0, got " + threads);
        }
        properties = Map.copyOf(properties);
    }

    /** Defaults: one thread per core, no properties. */
    public static BackendOptions defaults() {
        return new BackendOptions(0, Map.of());
    }

    /** The thread count to use: {@link #threads()} or the number of available processors. */
    public int effectiveThreads() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }
}
