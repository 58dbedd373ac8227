package dev.isthmus.api.discovery;

import dev.isthmus.api.spi.Availability;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.api.spi.BackendProvider;

/** Providers registered through the test class path's META-INF/services. */
final class FakeProviders {
    private FakeProviders() {
    }

    /** Available, low priority. */
    public static final class Slow implements BackendProvider {
        @Override
        public String name() {
            return "slow";
        }

        @Override
        public int priority() {
            return 1;
        }

        @Override
        public Availability probe() {
            return Availability.available("always");
        }

        @Override
        public Backend create(BackendOptions options) {
            throw new UnsupportedOperationException("not needed by the tests");
        }
    }

    /** Unavailable, high priority: must never be picked. */
    public static final class Gpu implements BackendProvider {
        @Override
        public String name() {
            return "gpu";
        }

        @Override
        public int priority() {
            return 100;
        }

        @Override
        public Availability probe() {
            return Availability.unavailable("no device found");
        }

        @Override
        public Backend create(BackendOptions options) {
            throw new IllegalStateException("unavailable");
        }
    }

    /** A probe that throws must not break discovery. */
    public static final class Crashing implements BackendProvider {
        @Override
        public String name() {
            return "crashing";
        }

        @Override
        public int priority() {
            return 50;
        }

        @Override
        public Availability probe() {
            throw new UnsatisfiedLinkError("libnothing.so: cannot open shared object file");
        }

        @Override
        public Backend create(BackendOptions options) {
            throw new IllegalStateException("unavailable");
        }
    }
}
