package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.TokenHistory;

import java.util.Arrays;
import java.util.List;

/**
 * The pool of a source whose drafters gain nothing from proposing together (n-gram lookup): every drafter is
 * the source's own, asked one after another.
 */
final class SequentialDraftPool implements DraftPool {
    private final DraftSource source;
    private final int capacity;

    SequentialDraftPool(DraftSource source, int capacity) {
        this.source = source;
        this.capacity = capacity;
    }

    @Override
    public Drafter open(SamplingParams sampling) {
        return source.open(capacity, sampling);
    }

    @Override
    public Draft[] propose(List<Drafter> drafters, List<TokenHistory> contexts, int[] max) {
        if (drafters.size() != contexts.size() || drafters.size() != max.length) {
            throw new IllegalArgumentException(drafters.size() + " drafters, " + contexts.size() + " contexts, "
                    + max.length + " limits");
        }
        Draft[] drafts = new Draft[max.length];
        Arrays.fill(drafts, Draft.EMPTY);
        for (int i = 0; i < max.length; i++) {
            if (max[i] > 0) {
                drafts[i] = drafters.get(i).propose(contexts.get(i), max[i]).prefix(max[i]);
            }
        }
        return drafts;
    }

    @Override
    public void close() {
    }
}
