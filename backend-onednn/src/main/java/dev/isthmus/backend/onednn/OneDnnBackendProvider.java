package dev.isthmus.backend.onednn;

import dev.isthmus.api.spi.Availability;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.api.spi.BackendProvider;

import java.util.Optional;

/**
 * Provides the {@code onednn} backend when the {@code org.bytedeco:dnnl} linux-x86_64 natives jar is on the
 * class path: the first {@link #probe()} extracts and loads oneDNN (see {@link OneDnnNatives}) and reports its
 * version and ISA, or why it cannot.
 *
 * <p>Priority {@value #PRIORITY}: above {@code cpu} (0), so it is chosen by default where it is available.
 */
public final class OneDnnBackendProvider implements BackendProvider {
    static final int PRIORITY = 50;

    @Override
    public String name() {
        return OneDnnBackend.NAME;
    }

    @Override
    public int priority() {
        return PRIORITY;
    }

    @Override
    public Availability probe() {
        try {
            Optional<OneDnnNatives.Loaded> loaded = OneDnnNatives.load();
            return loaded.map(l -> Availability.available(l.describe() + (CpuDelegate.present()
                            ? "; attention, RoPE, KV-cache writes, embeddings, argmax/top-k and 1-2-row matmuls of "
                            + "block-quantized weights on the cpu backend's kernels" : "")))
                    .orElseGet(() -> Availability.unavailable(OneDnnNatives.failure()));
        } catch (RuntimeException | LinkageError e) {
            return Availability.unavailable("loading oneDNN failed: " + e);
        }
    }

    @Override
    public Backend create(BackendOptions options) {
        Optional<OneDnnNatives.Loaded> loaded = OneDnnNatives.load();
        if (loaded.isEmpty()) {
            throw new IllegalStateException("backend 'onednn' is unavailable: " + OneDnnNatives.failure());
        }
        return new OneDnnBackend(loaded.get(), options);
    }
}
