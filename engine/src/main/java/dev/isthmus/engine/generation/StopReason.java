package dev.isthmus.engine.generation;

/** Why generation ended. */
public enum StopReason {
    /** The model produced an end-of-generation token. */
    END_OF_TEXT,
    /** A stop string appeared. */
    STOP_STRING,
    /** The token budget ran out. */
    MAX_TOKENS,
    /** The context window is full. */
    CONTEXT_FULL
}
