package dev.isthmus.cli;

import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;

/** Turns exceptions into one line for a person; stack traces only with {@code -Disthmus.debug=true}. */
final class UserErrors {
    private UserErrors() {
    }

    static String describe(Throwable e) {
        if (e instanceof UncheckedIOException u) {
            e = u.getCause();
        }
        if (e instanceof NoSuchFileException n) {
            return "no such file: " + n.getFile();
        }
        String m = e.getMessage();
        if (m == null || m.isBlank()) {
            return e.getClass().getSimpleName();
        }
        boolean ours = e.getClass().getName().startsWith("dev.isthmus.")
                || e instanceof IllegalArgumentException || e instanceof IllegalStateException
                || e instanceof java.io.IOException;
        return ours ? m : e.getClass().getSimpleName() + ": " + m;
    }
}
