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
 * <p>Priority {@value #PRIORITY}: below {@code cpu} (0), so it runs only when named ({@code --backend onednn}).
 * Its prefill multiplies in bf16 (AMX) from 16 rows on, so a batch's logits differ from one row's by bf16
 * rounding, and quantized weights are converted to bf16 on first use (2 bytes per weight); until those
 * trade-offs are measured on a quiet machine, the exact, memory-mapped CPU backend stays the default.
 */
public final class OneDnnBackendProvider implements BackendProvider {
    static final int PRIORITY = -10;

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
