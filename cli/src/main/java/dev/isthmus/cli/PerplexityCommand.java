package dev.isthmus.cli;

import dev.isthmus.api.spi.Backend;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.perplexity.Perplexity;
import dev.isthmus.engine.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code isthmus perplexity}: the sliding-window perplexity of a model on a text file. */
@Command(name = "perplexity", description = {
        "Perplexity of a model on a text: the text is tokenized once (with BOS if the model adds it) and cut into",
        "windows of --ctx tokens, one every --stride tokens (default ctx/2), each evaluated from an empty cache",
        "with its first token replaced by BOS; the last --stride tokens of each window are scored.",
        "PPL = exp(mean negative log-likelihood); +/- is PPL times the standard error of that mean.",
        "Progress per window ([window]running PPL) goes to stderr, the result to stdout."})
final class PerplexityCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelChoice modelChoice;

    @Mixin
    BackendChoice backendChoice;

    @Option(names = {"-f", "--file"}, paramLabel = "TEXT", description = "Required: the UTF-8 text file to score.")
    Path file;

    @Option(names = {"-c", "--ctx"}, defaultValue = "512", paramLabel = "N",
            description = "Tokens per window (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--stride", paramLabel = "N", description = "Tokens between windows, and scored per window (default: ctx/2).")
    Integer stride;

    @Option(names = {"-b", "--batch-size"}, defaultValue = "512", paramLabel = "N",
            description = "Tokens per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--chunks", paramLabel = "N", description = "Evaluate at most N windows (default: all).")
    Integer chunks;

    @Override
    public Integer call() throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("missing -f TEXT (see --help)");
        }
        String text = Files.readString(file, StandardCharsets.UTF_8);
        Perplexity.Options options = new Perplexity.Options(context, stride != null ? stride : Math.max(1, context / 2),
                Math.min(batchSize, context));
        PrintWriter out = spec.commandLine().getOut();
        try (Backend backend = backendChoice.open();
             Model model = Model.open(modelChoice.modelPath(), modelChoice.tokenizerPath(), backend)) {
            Tokenizer tok = model.tokenizer();
            boolean addBos = tok.addBosByDefault() && tok.bos() >= 0;
            int[] tokens = tok.encode(text, addBos, false);
            if (chunks != null) {
                if (chunks < 1) {
                    throw new IllegalArgumentException("--chunks must be positive, got " + chunks);
                }
                long keep = (long) (chunks - 1) * options.stride() + options.context();
                tokens = Arrays.copyOf(tokens, (int) Math.min(tokens.length, keep));
            }
            System.err.printf("perplexity: %s, %d tokens, context %d, stride %d, %d windows on %s%n", file,
                    tokens.length, options.context(), options.stride(), Perplexity.windows(tokens.length, options),
                    backend.name());
            Perplexity.Result r = Perplexity.evaluate(model.transformer(), tokens, addBos ? tok.bos() : -1, options,
                    p -> System.err.printf(Locale.ROOT, "[%d]%.4f,", p.windows(), p.perplexity()));
            System.err.println();
            out.printf(Locale.ROOT, "PPL = %.4f +/- %.4f (mean NLL %.5f nats over %d tokens; %d windows of %d, stride %d;"
                            + " %.1f s)%n", r.perplexity(), r.perplexityError(), r.meanNll(), r.scored(), r.windows(),
                    options.context(), options.stride(), r.seconds());
            out.flush();
        }
        return 0;
    }
}
