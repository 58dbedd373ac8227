package dev.isthmus.engine.model;

import dev.isthmus.api.spi.Backend;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.generation.Generator;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.tokenizer.Tokenizer;
import dev.isthmus.engine.tokenizer.Tokenizers;

import java.nio.file.Path;

/**
 * A model ready to run: its file (memory-mapped), its tokenizer, and its graph on a backend. Closing it
 * releases the graph's device memory and unmaps the file; the backend belongs to the caller.
 */
public final class Model implements AutoCloseable {
    private final ModelFile file;
    private final Tokenizer tokenizer;
    private final Transformer transformer;

    private Model(ModelFile file, Tokenizer tokenizer, Transformer transformer) {
        this.file = file;
        this.tokenizer = tokenizer;
        this.transformer = transformer;
    }

    /**
     * Opens a GGUF file or a llama2.c checkpoint (which needs {@code tokenizer}, a llama2.c
     * {@code tokenizer.bin}; for GGUF it may be null) on {@code backend}.
     */
    public static Model open(Path path, Path tokenizer, Backend backend) {
        ModelFile file = ModelFiles.open(path, tokenizer);
        try {
            Tokenizer tok = Tokenizers.fromMetadata(file.metadata());
            Transformer graph = Transformer.load(file, backend);
            return new Model(file, tok, graph);
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    public ModelFile file() {
        return file;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public Transformer transformer() {
        return transformer;
    }

    public ModelConfig config() {
        return transformer.config();
    }

    /** A generator for one prompt at a time. */
    public Generator generator() {
        return new Generator(transformer, tokenizer);
    }

    @Override
    public void close() {
        try {
            transformer.close();
        } finally {
            file.close();
        }
    }
}
