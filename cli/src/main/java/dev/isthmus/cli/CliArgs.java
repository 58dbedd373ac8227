package dev.isthmus.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Checks of required options done in the command rather than by picocli, so that a missing or bad value is
 * one line ({@code isthmus: ...}) like every other user error, not a usage dump.
 */
final class CliArgs {
    private CliArgs() {
    }

    static String required(String value, String option) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException("missing " + option + " (see --help)");
        }
        return value;
    }

    /** The output path, whose directory must exist; the file itself is replaced only once complete. */
    static Path writableOutput(Path output, String option) {
        if (output == null) {
            throw new IllegalArgumentException("missing " + option + " FILE.gguf (see --help)");
        }
        Path dir = output.toAbsolutePath().getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new IllegalArgumentException("cannot write " + output + ": no directory " + dir);
        }
        if (Files.isDirectory(output)) {
            throw new IllegalArgumentException("cannot write " + output + ": it is a directory");
        }
        return output;
    }
}
