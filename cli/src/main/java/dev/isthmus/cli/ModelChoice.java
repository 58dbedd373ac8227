package dev.isthmus.cli;

import dev.isthmus.engine.hub.ModelLocator;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code -m MODEL} and {@code -z TOKENIZER}, shared by the commands that load a model. */
final class ModelChoice {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL",
            description = "GGUF file, Hugging Face checkpoint (directory with config.json and safetensors), llama2.c checkpoint, or hf:OWNER/REPO/PATH/IN/REPO.")
    String model;

    @Option(names = {"-z", "--tokenizer"}, paramLabel = "FILE",
            description = "llama2.c tokenizer.bin (needed with a llama2.c checkpoint).")
    String tokenizer;

    Path modelPath() {
        return ModelLocator.fromEnvironment(System.err).resolve(model);
    }

    Path tokenizerPath() {
        return tokenizer == null ? null : ModelLocator.fromEnvironment(System.err).resolve(tokenizer);
    }
}
