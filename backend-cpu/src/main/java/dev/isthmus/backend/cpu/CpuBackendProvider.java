package dev.isthmus.backend.cpu;

import dev.isthmus.api.spi.Availability;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.api.spi.BackendProvider;

/**
 * The {@code cpu} backend: pure Java on the Vector API, always available, lowest priority so that any
 * available accelerator wins when no backend is named.
 */
public final class CpuBackendProvider implements BackendProvider {
    /** The name users select this backend by. */
    public static final String NAME = "cpu";

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public Availability probe() {
        try {
            return Availability.available(CpuBackend.describeHardware(BackendOptions.defaults().effectiveThreads()));
        } catch (LinkageError e) {
            // Without --add-modules jdk.incubator.vector the kernels cannot load.
            return Availability.unavailable("the Java Vector API is not available (run with --add-modules "
                    + "jdk.incubator.vector): " + e);
        }
    }

    @Override
    public Backend create(BackendOptions options) {
        Availability availability = probe();
        if (!availability.available()) {
            throw new IllegalStateException(availability.detail());
        }
        return new CpuBackend(options == null ? BackendOptions.defaults() : options);
    }
}
