package dev.isthmus.cli;

import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.model.ModelConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.lang.reflect.Array;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code isthmus info}: what a model file holds. */
@Command(name = "info", description = "Show a model's architecture, hyper-parameters, tensors (shapes, dtypes) and metadata.")
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelChoice modelChoice;

    @Option(names = "--tensors", description = "List every tensor (default: a summary per dtype).")
    boolean allTensors;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try (ModelFile file = ModelFiles.open(modelChoice.modelPath(), modelChoice.tokenizerPath())) {
            Metadata m = file.metadata();
            out.printf("file:         %s (%s)%n", file.path(), file.format());
            out.printf("architecture: %s%n", m.getString("general.architecture", "?"));
            out.printf("name:         %s%n", m.getString("general.name", "?"));
            if (file.hasTensor("token_embd.weight")) {
                try {
                    ModelConfig c = ModelConfig.from(m, Math.toIntExact(file.tensor("token_embd.weight").dim(0)),
                            file.path().toString());
                    out.printf("config:       %s%n", c);
                } catch (RuntimeException e) {
                    out.printf("config:       not runnable: %s%n", UserErrors.describe(e));
                }
            }
            long params = 0;
            long bytes = 0;
            Map<String, long[]> byType = new TreeMap<>();
            for (TensorInfo t : file.tensorInfos()) {
                params += t.elementCount();
                bytes += t.byteSize();
                long[] agg = byType.computeIfAbsent(t.dtype().name(), k -> new long[2]);
                agg[0]++;
                agg[1] += t.byteSize();
            }
            out.printf("tensors:      %d, %,d parameters, %,d bytes%n", file.tensorInfos().size(), params, bytes);
            byType.forEach((t, agg) -> out.printf("  %-6s %4d tensors %,14d bytes%n", t, agg[0], agg[1]));
            if (allTensors) {
                for (TensorInfo t : file.tensorInfos()) {
                    out.printf("  %-40s %-5s %s%n", t.name(), t.dtype(), Arrays.toString(t.shape()));
                }
            }
            out.println("metadata:");
            m.asMap().forEach((k, v) -> out.printf("  %s = %s%n", k, summarize(v)));
        }
        out.flush();
        return 0;
    }

    private static String summarize(Object v) {
        if (v != null && v.getClass().isArray()) {
            int n = Array.getLength(v);
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < Math.min(n, 8); i++) {
                sb.append(i > 0 ? ", " : "").append(summarize(Array.get(v, i)));
            }
            return sb.append(n > 8 ? ", … (" + n + " items)]" : "]").toString();
        }
        if (v instanceof String s) {
            String shown = s.length() > 80 ? s.substring(0, 80) + "…" : s;
            return '"' + shown.replace("\n", "\\n") + '"';
        }
        return String.valueOf(v);
    }
}
