package dev.isthmus.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.gguf.GgufFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Finds the shared test data (system property {@code isthmus.shared}) and caches tokenizers built from it. */
final class SharedData {
    private static final Map<String, Tokenizer> TOKENIZERS = new ConcurrentHashMap<>();

    private SharedData() {
    }

    /** The shared folder; fails (never skips) the test when it is missing. */
    static Path root() {
        String property = System.getProperty("isthmus.shared");
        // Outside Maven, the module directory is the working directory and the project root its parent.
        Path root = property != null ? Path.of(property) : Path.of("..", "..", "shared");
        assertTrue(Files.isDirectory(root), "shared test data not found at " + root.toAbsolutePath()
                + " (set -Disthmus.shared=/path/to/shared)");
        return root;
    }

    static Path file(String relative) {
        Path file = root().resolve(relative);
        assertTrue(Files.isRegularFile(file), "missing shared test file " + file.toAbsolutePath());
        return file;
    }

    static Path vocabFile(String family) {
        return file("tokenizer-vectors/ggml-vocab-" + family + ".gguf");
    }

    static Metadata ggufMetadata(Path file) {
        try (GgufFile gguf = GgufFile.open(file)) {
            return gguf.metadata();
        }
    }

    /** The tokenizer of a vocabulary-test family, built once per test run. */
    static Tokenizer vocab(String family) {
        return TOKENIZERS.computeIfAbsent(family, f -> Tokenizers.fromMetadata(ggufMetadata(vocabFile(f))));
    }
}
