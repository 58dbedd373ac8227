package dev.isthmus.cli;

import dev.isthmus.api.DType;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.cli.bench.PeakMemory;
import dev.isthmus.cli.bench.Roofline;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.hub.ModelLocator;
import dev.isthmus.engine.model.Model;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code isthmus bench}: llama-bench-style prompt processing (ppN) and token generation (tgN) speed, and
 * with {@code --roofline} this machine's bandwidth and FMA limits and the decode bound they imply.
 */
@Command(name = "bench", description = "Measure prompt processing (pp) and generation (tg) tokens/s, llama-bench "
        + "style (median of --reps after a warm-up), with peak RSS; --roofline measures read bandwidth and FMA rate. "
        + "With --draft-model or --lookup-ngram: -n tokens generated from --prompt-text with and without speculation, "
        + "acceptance rate and speedup.")
final class BenchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-m", "--model"}, paramLabel = "MODEL", description = "GGUF file or hf: reference.")
    String model;

    @Mixin
    BackendChoice backendChoice;

    @Mixin
    SpeculationChoice speculation;

    @Option(names = "--prompt-text", paramLabel = "TEXT", defaultValue = "Once upon a time", description = "With "
            + "--draft-model or --lookup-ngram: the prompt generated from (default: ${DEFAULT-VALUE}).")
    String promptText;

    @Option(names = "--temp", defaultValue = "0", description = "With --draft-model or --lookup-ngram: temperature, "
            + "0 is greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = {"-p", "--n-prompt"}, defaultValue = "512", description = "Prompt tokens, 0 skips pp (default: ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = {"-n", "--n-gen"}, defaultValue = "128", description = "Generated tokens, 0 skips tg (default: ${DEFAULT-VALUE}).")
    int genTokens;

    @Option(names = "--reps", defaultValue = "3", description = "Measured repetitions (default: ${DEFAULT-VALUE}).")
    int reps;

    @Option(names = "--cache-type", defaultValue = "F16", description = "KV cache dtype: F32, F16, BF16 (default: ${DEFAULT-VALUE}).")
    DType cacheType;

    @Option(names = "--concurrency", split = ",", paramLabel = "N,N,...", description = "Serving benchmark: at each "
            + "level, N requests of -p prompt and -n generated tokens at once through the batching engine; aggregate "
            + "decode tok/s and time-to-first-token percentiles.")
    java.util.List<Integer> concurrency;

    @Option(names = "--roofline", description = "Measure read bandwidth and FP32 FMA rate; with -m also the decode bound.")
    boolean roofline;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        int threads = backendChoice.options().effectiveThreads();
        Roofline.Limits limits = null;
        if (roofline) {
            limits = Roofline.measure(threads, 1L << 30, 3);
            out.printf(Locale.ROOT, "roofline (Java, %d threads): read bandwidth %.1f GB/s, FP32 FMA %.0f GFLOP/s%n",
                    limits.threads(), limits.readGBps(), limits.fmaGflops());
            out.flush();
        }
        if (model == null) {
            if (!roofline) {
                throw new IllegalArgumentException("bench needs -m MODEL (or --roofline)");
            }
            return 0;
        }
        Path path = ModelLocator.fromEnvironment(System.err).resolve(model);
        try (Backend backend = backendChoice.open(); Model m = Model.open(path, null, backend)) {
            if (concurrency != null && !concurrency.isEmpty()) {
                ServingBench.run(out, m, path.getFileName().toString(), concurrency, promptTokens, genTokens, reps,
                        cacheType);
                return 0;
            }
            if (speculation.enabled()) {
                try (SpeculationChoice.Speculation spec = speculation.open(backend, m)) {
                    SpeculativeBench.run(out, m, spec.generator, speculation, path.getFileName().toString(),
                            promptText, genTokens, temperature, reps);
                }
                return 0;
            }
            long weightBytes = weightBytesPerToken(m.file());
            if (limits != null) {
                out.printf(Locale.ROOT, "decode bound: %.1f tok/s (%.2f GB of weights read per token)%n",
                        limits.readGBps() * 1e9 / weightBytes, weightBytes / 1e9);
            }
            double pp = promptTokens > 0 ? median(() -> prompt(m.transformer())) : Double.NaN;
            double tg = genTokens > 0 ? median(() -> generate(m.transformer())) : Double.NaN;
            out.println("| model | size | dtype | backend | threads | pp" + promptTokens + " t/s | tg" + genTokens
                    + " t/s | peak RSS |");
            out.println("|---|---|---|---|---|---|---|---|");
            out.printf(Locale.ROOT, "| %s | %.2f GB | %s | %s | %d | %s | %s | %.2f GB |%n",
                    m.file().metadata().getString("general.name", path.getFileName().toString()),
                    Files.size(path) / 1e9, dominantDtype(m.file()), backend.name(), threads,
                    format(pp), format(tg), PeakMemory.peakRssBytes() / 1e9);
        }
        out.flush();
        return 0;
    }

    private interface Run {
        double tokensPerSecond();
    }

    private double median(Run run) {
        run.tokensPerSecond();
        double[] v = new double[reps];
        for (int i = 0; i < reps; i++) {
            v[i] = run.tokensPerSecond();
        }
        Arrays.sort(v);
        return reps % 2 == 1 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2;
    }

    private double prompt(Transformer t) {
        int[] tokens = randomTokens(t, promptTokens);
        try (KvCache cache = t.newCache(1, promptTokens, cacheType)) {
            long t0 = System.nanoTime();
            t.forward(Batch.ofSequence(0, 0, tokens), cache);
            t.backend().synchronize();
            return promptTokens / ((System.nanoTime() - t0) / 1e9);
        }
    }

    private double generate(Transformer t) {
        int[] tokens = randomTokens(t, genTokens);
        try (KvCache cache = t.newCache(1, genTokens, cacheType)) {
            long t0 = System.nanoTime();
            for (int i = 0; i < genTokens; i++) {
                t.forward(Batch.ofSequence(0, i, tokens[i]), cache);
            }
            t.backend().synchronize();
            return genTokens / ((System.nanoTime() - t0) / 1e9);
        }
    }

    private static int[] randomTokens(Transformer t, int n) {
        SplittableRandom r = new SplittableRandom(1234);
        return r.ints(n, 0, t.config().vocabSize()).toArray();
    }

    /** Bytes a decode step reads: every weight, but only one row of an untied embedding table. */
    static long weightBytesPerToken(ModelFile f) {
        boolean tied = !f.hasTensor("output.weight");
        long bytes = 0;
        for (TensorInfo t : f.tensorInfos()) {
            boolean embedding = t.name().equals("token_embd.weight");
            bytes += embedding && !tied ? t.byteSize() / t.shape()[0] : t.byteSize();
        }
        return bytes;
    }

    private static String dominantDtype(ModelFile f) {
        Map<DType, Long> bytes = new EnumMap<>(DType.class);
        for (TensorInfo t : f.tensorInfos()) {
            bytes.merge(t.dtype(), t.byteSize(), Long::sum);
        }
        DType top = bytes.entrySet().stream().max(Map.Entry.comparingByValue()).orElseThrow().getKey();
        long quantizedTypes = bytes.keySet().stream().filter(DType::isQuantized).count();
        return quantizedTypes > 1 ? top + " (mixed)" : top.toString();
    }

    private static String format(double v) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, "%.2f", v);
    }
}
