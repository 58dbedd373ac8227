package dev.isthmus.cli;

import dev.isthmus.engine.quant.QuantRecipe;
import dev.isthmus.engine.quant.Quantization;
import dev.isthmus.engine.synth.SyntheticModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code isthmus synth}: a runnable model with real shapes and seeded random weights, for benchmarks. */
@Command(name = "synth", description = {
        "Write a Llama-architecture GGUF with the shapes of a real model and seeded random weights",
        "(normal, std 0.02), converted to any type. Loads and runs like the real thing; generates gibberish."})
final class SynthCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--shape", paramLabel = "SHAPE", description = "Required: llama-3.2-1b, tinyllama-1.1b or tiny.")
    String shape;

    @Option(names = "--dtype", paramLabel = "TYPE", description = "Required: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
            + "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q4_K_M or Q5_K_M.")
    String dtype;

    @Option(names = {"-s", "--seed"}, defaultValue = "42", description = "Random seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE.gguf", description = "Required: the file to write.")
    Path output;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Threads (default: one per core).")
    int threads;

    @Override
    public Integer call() throws IOException {
        SyntheticModel.Shape s = SyntheticModel.Shape.named(CliArgs.required(shape, "--shape"));
        QuantRecipe recipe = QuantRecipe.named(CliArgs.required(dtype, "--dtype"));
        Path out = CliArgs.writableOutput(output, "-o");
        SyntheticModel model = new SyntheticModel(s, seed);
        ConversionProgress progress = new ConversionProgress(model.tensors().size());
        System.err.printf("synth %s (%,d parameters) as %s, seed %d -> %s%n", s.name(), s.parameterCount(),
                recipe.name(), seed, out);
        long start = System.nanoTime();
        model.write(out, recipe, threads > 0 ? threads : Quantization.defaultThreads(), progress::tensor);
        double seconds = (System.nanoTime() - start) / 1e9;
        PrintWriter pw = spec.commandLine().getOut();
        pw.printf("%s: %,d bytes (%.2f GiB) in %.1f s%n", out, Files.size(out), Files.size(out) / (double) (1L << 30),
                seconds);
        pw.flush();
        return 0;
    }
}
