package dev.isthmus.cli;

import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.quant.ModelQuantizer;
import dev.isthmus.engine.quant.QuantRecipe;
import dev.isthmus.engine.quant.Quantization;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code isthmus quantize}: convert a model to a GGUF file of another type, like llama-quantize. */
@Command(name = "quantize", description = {
        "Convert a model's weight matrices to another type and write a GGUF file; metadata is copied and",
        "general.file_type set as llama.cpp sets it. Norms and other 1-D tensors keep their type. Rows that a",
        "type's blocks do not divide fall back as in llama.cpp (e.g. Q4_K -> Q5_0, Q6_K -> Q8_0)."})
final class QuantizeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelChoice modelChoice;

    @Option(names = {"-o", "--output"}, paramLabel = "OUT.gguf", description = "Required: the file to write.")
    Path output;

    @Option(names = "--type", paramLabel = "TYPE", description = "Required: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
            + "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q4_K_M or Q5_K_M.")
    String type;

    @Option(names = "--allow-requantize", description = "Also convert tensors that are already quantized.")
    boolean allowRequantize;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Threads (default: one per core).")
    int threads;

    @Override
    public Integer call() throws IOException {
        QuantRecipe recipe = QuantRecipe.named(CliArgs.required(type, "--type"));
        Path out = CliArgs.writableOutput(output, "-o");
        Path in = modelChoice.modelPath();
        if (Files.exists(out) && Files.isSameFile(in, out)) {
            throw new IllegalArgumentException("output " + out + " is the input file");
        }
        long start = System.nanoTime();
        List<QuantRecipe.Choice> plan;
        try (ModelFile model = ModelFiles.open(in, modelChoice.tokenizerPath())) {
            ConversionProgress progress = new ConversionProgress(model.tensorInfos().size());
            System.err.printf("quantize %s -> %s as %s%n", in, out, recipe.name());
            plan = ModelQuantizer.quantize(model, out, recipe, allowRequantize,
                    threads > 0 ? threads : Quantization.defaultThreads(), progress::tensor);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long fallbacks = plan.stream().filter(QuantRecipe.Choice::fellBack).count();
        PrintWriter pw = spec.commandLine().getOut();
        pw.printf("%s: %,d bytes (%.2f GiB) in %.1f s%s%n", out, Files.size(out), Files.size(out) / (double) (1L << 30),
                seconds, fallbacks == 0 ? "" : "; " + fallbacks + " tensors fell back to another type for their row length");
        pw.flush();
        return 0;
    }
}
