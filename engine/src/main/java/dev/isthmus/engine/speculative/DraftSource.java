package dev.isthmus.engine.speculative;

import dev.isthmus.api.DType;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.SamplingTransform;
import dev.isthmus.engine.tokenizer.Tokenizer;

/** Where proposals come from: a draft model ({@link DraftModel}) or the context itself ({@link NgramLookup}). */
public interface DraftSource {
    /**
     * Checks that this source proposes token ids of the target's vocabulary.
     *
     * @param targetLogits the width of the target's logits (its output rows, possibly padded past the
     *                     tokenizer's vocabulary)
     * @throws IncompatibleVocabularyException saying how the vocabularies differ
     */
    default void checkCompatible(Tokenizer target, int targetLogits) {
    }

    /**
     * A drafter for one generation.
     *
     * @param capacity positions the generation may use (prompt plus new tokens); a drafter never needs
     *                 more, as it is never asked to propose past them
     * @param sampling the generation's sampling parameters; a drafter that samples uses the same
     *                 {@link SamplingTransform}, so that its distributions are comparable with the target's
     */
    Drafter open(int capacity, SamplingParams sampling);

    /**
     * Drafters for many concurrent generations that propose together (a serving engine's batch). A pool may
     * drop the state of drafters it has not asked lately to make room; they rebuild it when next asked. By
     * default the drafters are this source's own, asked one after another.
     *
     * @param sequences generations whose drafters keep state at once
     * @param capacity  positions a generation may use
     * @param positions KV positions a draft model's pool holds in all (a bound on its memory)
     * @param kvType    the dtype of a draft model's KV cache
     */
    default DraftPool openPool(int sequences, int capacity, int positions, DType kvType) {
        return new SequentialDraftPool(this, capacity);
    }

    /** For logs and benchmark tables, e.g. {@code draft model stories260K-q8_0.gguf}. */
    String description();
}
