package dev.isthmus.engine.speculative;

/** A draft model whose token ids do not mean what the target's mean. */
public final class IncompatibleVocabularyException extends IllegalArgumentException {
    public IncompatibleVocabularyException(String message) {
        super(message);
    }
}
