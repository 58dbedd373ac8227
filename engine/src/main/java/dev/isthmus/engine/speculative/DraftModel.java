package dev.isthmus.engine.speculative;

import dev.isthmus.api.DType;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.SamplingTransform;
import dev.isthmus.engine.tokenizer.Tokenizer;

/**
 * A small model with the target's vocabulary that proposes tokens one forward pass at a time, through the same
 * {@link SamplingTransform} as the target: greedily (argmax) when the generation is greedy, otherwise by
 * drawing from its distribution {@code q}, which it hands to the verifier. Drafting stops early when the
 * draft is unsure (its most likely token below {@code pMin}; greedy: under a plain softmax of its adjusted
 * logits) or proposes an end-of-generation token.
 *
 * <p>Each drafter keeps a KV cache of the tokens it has evaluated; on every proposal it keeps the longest
 * prefix shared with the accepted context and truncates the rest, so rejected proposals are rolled back.
 * A {@link #openPool pool} keeps the caches of many generations in one paged cache and drafts for all of them
 * in shared forward passes. The model is borrowed, not owned: closing a drafter or pool releases only caches.
 */
public final class DraftModel implements DraftSource {
    private final Transformer model;
    private final Tokenizer tokenizer;
    private final double pMin;
    private final String name;

    /**
     * @param pMin stop drafting where the draft's most likely token has a probability below this (0: never)
     */
    public DraftModel(Transformer model, Tokenizer tokenizer, double pMin, String name) {
        if (!(pMin >= 0 && pMin <= 1)) {
            throw new IllegalArgumentException("draft p-min must be in [0, 1], got " + pMin);
        }
        this.model = model;
        this.tokenizer = tokenizer;
        this.pMin = pMin;
        this.name = name;
    }

    public DraftModel(Model draft, double pMin) {
        this(draft.transformer(), draft.tokenizer(), pMin, draft.file().path().getFileName().toString());
    }

    @Override
    public void checkCompatible(Tokenizer target, int targetLogits) {
        Vocabularies.checkCompatible(target, targetLogits, tokenizer, model.config().vocabSize());
    }

    @Override
    public Drafter open(int capacity, SamplingParams sampling) {
        // One generation alone: a pool of one sequence with room for all its positions, closed with the drafter.
        return new ModelDraftPool(model, tokenizer, pMin, 1, capacity, capacity, DType.F32).openOwner(sampling);
    }

    /** Drafters whose forward passes cover all the generations asked at once (see {@link ModelDraftPool}). */
    @Override
    public DraftPool openPool(int sequences, int capacity, int positions, DType kvType) {
        return new ModelDraftPool(model, tokenizer, pMin, sequences, capacity, positions, kvType);
    }

    @Override
    public String description() {
        return "draft model " + name;
    }
}
