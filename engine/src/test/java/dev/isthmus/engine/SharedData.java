package dev.isthmus.engine;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Locates the shared test data (models, goldens, vocabularies: system property {@code isthmus.shared});
 * tests fail, never skip, when it is missing. Other modules use it through the engine's test jar.
 */
public final class SharedData {
    private SharedData() {
    }

    public static Path root() {
        String prop = System.getProperty("isthmus.shared");
        Path p = prop != null ? Path.of(prop) : Path.of("..", "..", "shared");
        if (!Files.isDirectory(p)) {
            fail("shared test data not found at " + p.toAbsolutePath()
                    + " (set -Disthmus.shared=/path/to/shared)");
        }
        return p;
    }

    /** A file under the shared folder, which must exist. */
    public static Path file(String relative) {
        Path p = root().resolve(relative);
        if (!Files.isRegularFile(p)) {
            fail("shared test file missing: " + p.toAbsolutePath());
        }
        return p;
    }
}
