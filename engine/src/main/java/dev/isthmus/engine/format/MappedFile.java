package dev.isthmus.engine.format;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Maps a model file read-only for a reader that parses it in place and serves its tensors from the mapping. */
public final class MappedFile {
    /** Builds a reader over the mapped bytes; from then on the reader owns {@code arena} and closes it. */
    @FunctionalInterface
    public interface Reader<T> {
        T read(MemorySegment bytes, Arena arena);
    }

    private MappedFile() {
    }

    /**
     * Maps the whole file into a shared arena (readers are used from any thread) and hands it to
     * {@code reader}. If mapping or reading fails, the arena is closed, so a rejected file holds no mapping.
     *
     * @throws UncheckedIOException if the file cannot be read
     */
    public static <T> T open(Path path, Reader<T> reader) {
        Arena arena = Arena.ofShared();
        try {
            MemorySegment bytes;
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                bytes = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            }
            return reader.read(bytes, arena);
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException("cannot read " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }
}
