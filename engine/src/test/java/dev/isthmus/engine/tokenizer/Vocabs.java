package dev.isthmus.engine.tokenizer;

import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.gguf.GgufFile;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The vocabularies of the shared tokenizer test vectors, with tokenizers built once per run. */
final class Vocabs {
    private static final Map<String, Tokenizer> TOKENIZERS = new ConcurrentHashMap<>();

    private Vocabs() {
    }

    static Path file(String relative) {
        return SharedData.file(relative);
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
