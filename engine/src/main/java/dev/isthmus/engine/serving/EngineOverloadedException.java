package dev.isthmus.engine.serving;

/** The admission queue is full; the request was not accepted. Try again after {@link #retryAfterSeconds()}. */
public final class EngineOverloadedException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int retryAfterSeconds;

    public EngineOverloadedException(String message, int retryAfterSeconds) {
        super(message);
        this.retryAfterSeconds = retryAfterSeconds;
    }

    public int retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
