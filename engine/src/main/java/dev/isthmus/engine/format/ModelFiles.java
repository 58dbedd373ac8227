package dev.isthmus.engine.format;

import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.llama2c.Llama2cCheckpoint;
import dev.isthmus.engine.safetensors.SafetensorsModel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** Opens model files of any supported format, recognized by content rather than file name. */
public final class ModelFiles {
    private ModelFiles() {
    }

    /**
     * Opens a GGUF file (starts with the magic "GGUF"), a Hugging Face safetensors checkpoint (a directory with
     * {@code config.json}, or a file starting with a safetensors header; see {@link SafetensorsModel}) or a
     * llama2.c checkpoint (a header whose sizes are consistent and imply exactly the file's size).
     *
     * @param tokenizerOrNull a llama2.c {@code tokenizer.bin}; required for llama2.c checkpoints, ignored
     *                        for GGUF files, which carry their own vocabulary
     * @throws ModelFormatException if the format is not recognized, the file is malformed, or a llama2.c
     *                              checkpoint comes without a tokenizer
     * @throws UncheckedIOException if a file cannot be read
     */
    public static ModelFile open(Path model, Path tokenizerOrNull) {
        boolean gguf;
        try {
            if (java.nio.file.Files.isDirectory(model) || SafetensorsModel.isCheckpoint(model)) {
                return SafetensorsModel.open(model);
            }
            gguf = GgufFile.hasMagic(model);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + model + ": " + e.getMessage(), e);
        }
        if (gguf) {
            return GgufFile.open(model);
        }
        try {
            Llama2cCheckpoint.readConfig(model);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(model + ": unrecognized model format: no GGUF magic, and not a valid "
                    + "llama2.c checkpoint (" + e.getMessage() + ")", e);
        }
        if (tokenizerOrNull == null) {
            throw ModelFormatException.of(model, "tokenizer",
                    "a llama2.c checkpoint has no vocabulary; pass its tokenizer.bin as well");
        }
        return Llama2cCheckpoint.open(model, tokenizerOrNull);
    }
}
