package dev.isthmus.cli;

import dev.isthmus.api.spi.Backend;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.speculative.SpeculativeResult;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Consumer;

/** {@code isthmus run}: generate text from a prompt, streamed to stdout. */
@Command(name = "run", description = "Generate text from a prompt; tokens stream to stdout, speed goes to stderr.")
final class RunCommand implements Callable<Integer> {
    @Mixin
    ModelChoice modelChoice;

    @Mixin
    BackendChoice backendChoice;

    @Mixin
    SpeculationChoice speculation;

    @Option(names = {"-p", "--prompt"}, defaultValue = "", description = "Prompt text (default: empty, BOS only).")
    String prompt;

    @Option(names = {"-n", "--n-predict"}, defaultValue = "256", description = "Tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temp", defaultValue = "0.8", description = "Temperature; 0 is greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", defaultValue = "40", description = "Top-k, 0 disables (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", defaultValue = "0.95", description = "Top-p (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--min-p", defaultValue = "0.05", description = "Min-p (default: ${DEFAULT-VALUE}).")
    float minP;

    @Option(names = "--repeat-penalty", defaultValue = "1.0", description = "Repetition penalty (default: ${DEFAULT-VALUE}).")
    float repeatPenalty;

    @Option(names = "--presence-penalty", defaultValue = "0", description = "Presence penalty (default: ${DEFAULT-VALUE}).")
    float presencePenalty;

    @Option(names = "--frequency-penalty", defaultValue = "0", description = "Frequency penalty (default: ${DEFAULT-VALUE}).")
    float frequencyPenalty;

    @Option(names = "--repeat-last-n", defaultValue = "64", description = "Tokens the penalties look back at, -1 all (default: ${DEFAULT-VALUE}).")
    int penaltyLastN;

    @Option(names = {"-s", "--seed"}, description = "Random seed (default: time-based).")
    Long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "Stop when this text appears (repeatable).")
    List<String> stop = new ArrayList<>();

    @Option(names = "--logit-bias", paramLabel = "ID=BIAS", description = "Add BIAS to token ID's logit; -inf bans it (repeatable).")
    Map<Integer, String> logitBias = new HashMap<>();

    @Option(names = "--no-bos", description = "Do not add the BOS token.")
    boolean noBos;

    @Option(names = "--special", description = "Parse special-token texts in the prompt.")
    boolean special;

    @Option(names = "--batch-file", paramLabel = "FILE", description = "Static batching: generate for every line of "
            + "FILE as a prompt, all in one batch; results print in order.")
    java.nio.file.Path batchFile;

    @Option(names = "--max-batch", defaultValue = "64", description = "With --batch-file: sequences in flight at once "
            + "(default: ${DEFAULT-VALUE}).")
    int maxBatch;

    @Override
    public Integer call() throws java.io.IOException {
        SamplingParams sampling = new SamplingParams(temperature, topK, topP, minP, repeatPenalty, presencePenalty,
                frequencyPenalty, penaltyLastN, seed != null ? seed : System.nanoTime(), biases());
        GenerationParams params = new GenerationParams(maxTokens, sampling, stop, noBos ? Boolean.FALSE : null, special);
        if (batchFile != null) {
            return BatchRun.run(modelChoice, backendChoice, batchFile, params, maxBatch);
        }
        // Token text is UTF-8 whatever the platform charset; bytes pass through System.out unchanged.
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        try (Backend backend = backendChoice.open();
             Model model = Model.open(modelChoice.modelPath(), modelChoice.tokenizerPath(), backend)) {
            out.print(prompt);
            out.flush();
            Consumer<String> sink = piece -> {
                out.print(piece);
                out.flush();
            };
            GenerationResult r;
            String speculated = null;
            if (speculation.enabled()) {
                try (SpeculationChoice.Speculation spec = speculation.open(backend, model)) {
                    SpeculativeResult sr = spec.generator.generate(prompt, params, sink);
                    r = sr.generation();
                    speculated = spec.generator.drafts().description() + ": "
                            + SpeculationChoice.describe(sr.stats(), r.tokens().length);
                }
            } else {
                r = model.generator().generate(prompt, params, sink);
            }
            out.flush();
            System.err.printf("%n[%s] prompt: %d tokens, %.1f tok/s | generation: %d tokens, %.1f tok/s | stop: %s%n",
                    backend.name(), r.promptTokens().length, r.promptTokensPerSecond(), r.tokens().length,
                    r.generationTokensPerSecond(), r.reason().name().toLowerCase(java.util.Locale.ROOT));
            if (speculated != null) {
                System.err.println("speculation with " + speculated);
            }
        }
        return 0;
    }

    private Map<Integer, Float> biases() {
        Map<Integer, Float> m = new HashMap<>();
        logitBias.forEach((id, v) -> m.put(id, v.trim().equalsIgnoreCase("-inf")
                ? Float.NEGATIVE_INFINITY : Float.parseFloat(v)));
        return m;
    }
}
