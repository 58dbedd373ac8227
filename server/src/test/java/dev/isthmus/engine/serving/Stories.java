package dev.isthmus.engine.serving;

import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.quant.ModelQuantizer;
import dev.isthmus.engine.quant.QuantRecipe;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * stories260K on the CPU backend, opened once per test class, its Q8_0 quantization as a draft model, and
 * prompts of mixed lengths.
 */
public final class Stories implements AutoCloseable {
    public final Backend backend;
    public final Model model;
    private Model draft;
    private Path draftFile;

    public Stories() {
        // One worker thread: tests run beside other builds on small machines, where a pool's hand-offs cost more
        // than they give on a model this small.
        backend = Backends.open("cpu", new BackendOptions(1, java.util.Map.of()));
        model = Model.open(SharedData.file("models/stories260K.gguf"), null, backend);
    }

    /**
     * stories260K quantized to Q8_0 on the same backend: a draft model with the same vocabulary. Made on first use
     * in a temporary file (generated models are not committed), deleted by {@link #close}.
     */
    public Model draft() {
        if (draft == null) {
            try {
                draftFile = Files.createTempFile("stories260K-q8_0-", ".gguf");
                try (ModelFile in = ModelFiles.open(SharedData.file("models/stories260K.gguf"), null)) {
                    ModelQuantizer.quantize(in, draftFile, QuantRecipe.named("Q8_0"), false, 1, c -> { });
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            draft = Model.open(draftFile, null, backend);
        }
        return draft;
    }

    /** {@code n} prompts of 1 to ~60 words, deterministic. */
    public static List<String> prompts(int n, long seed) {
        String[] words = ("Once upon a time there was a little girl named Lily . She liked to play with her dog in "
                + "the park . One day the sun was shining and a big red ball rolled away , so Tom ran after it and "
                + "found a small cat under the tree").split(" ");
        SplittableRandom r = new SplittableRandom(seed);
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int len = 1 + r.nextInt(i % 4 == 0 ? 60 : 12);
            StringBuilder b = new StringBuilder();
            int start = r.nextInt(words.length);
            for (int w = 0; w < len; w++) {
                if (w > 0) {
                    b.append(' ');
                }
                b.append(words[(start + w) % words.length]);
            }
            prompts.add(b.toString());
        }
        return prompts;
    }

    @Override
    public void close() {
        if (draft != null) {
            draft.close();
        }
        model.close();
        backend.close();
        try {
            if (draftFile != null) {
                Files.deleteIfExists(draftFile);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
