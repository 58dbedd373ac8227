package dev.isthmus.engine.format;

import java.nio.file.Path;

/**
 * A model file (or one of its values) is malformed, truncated, hostile or not what the caller needs.
 *
 * <p>Messages name the file, the field and the offending value, e.g.
 * {@code model.gguf: metadata key #12 'tokenizer.ggml.tokens' array length: 4611686018427387904 exceeds ...}.
 */
public class ModelFormatException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }

    /** {@code "<file>: <field>: <problem>"}; {@code file} may be null when the value has no file. */
    public static ModelFormatException of(Path file, String field, String problem) {
        return new ModelFormatException((file == null ? "" : file + ": ") + field + ": " + problem);
    }
}
