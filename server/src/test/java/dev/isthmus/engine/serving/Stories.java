package dev.isthmus.engine.serving;

import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.model.Model;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** stories260K on the CPU backend, opened once per test class, and prompts of mixed lengths. */
public final class Stories implements AutoCloseable {
    public final Backend backend;
    public final Model model;

    public Stories() {
        // One worker thread: tests run beside other builds on small machines, where a pool's hand-offs cost more
        // than they give on a model this small.
        backend = Backends.open("cpu", new BackendOptions(1, java.util.Map.of()));
        model = Model.open(SharedData.file("models/stories260K.gguf"), null, backend);
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
        model.close();
        backend.close();
    }
}
