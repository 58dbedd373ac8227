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
 * Its prefill multiplies F16 weights in bf16 and block-quantized ones in int8 (AMX), so a batch's logits differ
 * from one row's by bf16 rounding, or by re-quantization to one scale per weight row and activation row, and it
 * keeps a converted copy of the weights (1 byte per quantized weight, 2 per F16 one) next to the mapped file;
 * with those trade-offs the exact, memory-mapped CPU backend stays the default.
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
                            ? "; attention, RoPE, KV-cache writes, embeddings, argmax/top-k, 1-2-row matmuls and row "
                            + "operators on the cpu backend's kernels" : "")))
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
