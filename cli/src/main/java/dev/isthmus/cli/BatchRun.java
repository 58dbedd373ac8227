package dev.isthmus.cli;

import dev.isthmus.api.spi.Backend;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.serving.Completion;
import dev.isthmus.engine.serving.Engine;
import dev.isthmus.engine.serving.EngineConfig;
import dev.isthmus.engine.serving.Request;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;

/** {@code isthmus run --batch-file}: static batching, every prompt of a file (one per line) in one engine. */
final class BatchRun {
    private BatchRun() {
    }

    static int run(ModelChoice modelChoice, BackendChoice backendChoice, Path file, GenerationParams params,
                   int maxBatch) throws IOException {
        List<String> prompts = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (!line.isBlank()) {
                prompts.add(line);
            }
        }
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException(file + " has no prompts (one per line)");
        }
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        EngineConfig config = EngineConfig.defaults().withMaxBatch(Math.min(maxBatch, prompts.size()))
                .withMaxQueue(prompts.size());
        try (Backend backend = backendChoice.open();
             Model model = Model.open(modelChoice.modelPath(), modelChoice.tokenizerPath(), backend);
             Engine engine = Engine.start(model, config)) {
            long t0 = System.nanoTime();
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (String p : prompts) {
                futures.add(engine.complete(Request.of(model.generator().tokenize(p, params), params)));
            }
            long tokens = 0;
            for (int i = 0; i < prompts.size(); i++) {
                Completion c = futures.get(i).join();
                tokens += c.tokens().length;
                out.printf("--- %d ---%n%s%s%n", i + 1, prompts.get(i), c.text());
                out.flush();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.err.printf(Locale.ROOT, "[%s] %d prompts, batch %d: %d tokens generated in %.2f s, %.1f tok/s%n",
                    backend.name(), prompts.size(), config.maxBatch(), tokens, seconds, tokens / seconds);
        }
        return 0;
    }
}
