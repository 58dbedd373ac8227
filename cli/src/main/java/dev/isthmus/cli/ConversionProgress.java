package dev.isthmus.cli;

import dev.isthmus.engine.quant.QuantRecipe;

import java.util.Arrays;

/** One stderr line per tensor as a conversion reaches it: counter, name, types, shape, fallbacks. */
final class ConversionProgress {
    private final int total;
    private final long start = System.nanoTime();
    private int done;

    ConversionProgress(int total) {
        this.total = total;
    }

    void tensor(QuantRecipe.Choice c) {
        done++;
        QuantRecipe.Tensor t = c.tensor();
        String types = c.converts() ? t.source() + " -> " + c.type() : c.type() + " (copied)";
        System.err.printf("[%4d/%d %6.1fs] %-32s %-18s %s%s%n", done, total, (System.nanoTime() - start) / 1e9, t.name(),
                types, Arrays.toString(t.shape()),
                c.fellBack() ? "  (rows of " + t.shape()[t.shape().length - 1] + " do not fit " + c.wanted() + ")" : "");
    }
}
