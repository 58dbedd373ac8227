package dev.isthmus.cli;

import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.tokenizer.Tokenizer;
import dev.isthmus.engine.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/** {@code isthmus tokenize}: token ids of a text, or of llama.cpp's tokenizer test vectors. */
@Command(name = "tokenize", description = "Print the token ids of a text, or with --vectors of every case of a "
        + "llama.cpp .inp file (one line per case, no BOS, special tokens not parsed: the .out format).")
final class TokenizeCommand implements Callable<Integer> {
    /** The line that separates cases in llama.cpp's .inp files. */
    static final String CASE_SEPARATOR = "__ggml_vocab_test__";

    @Spec
    CommandSpec spec;

    @Mixin
    ModelChoice modelChoice;

    @Option(names = {"-p", "--prompt"}, description = "Text to tokenize (default: standard input).")
    String prompt;

    @Option(names = "--no-bos", description = "Do not add the BOS token.")
    boolean noBos;

    @Option(names = "--special", description = "Parse special-token texts.")
    boolean special;

    @Option(names = "--vectors", paramLabel = "FILE.inp", description = "llama.cpp tokenizer test input file.")
    Path vectors;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        try (ModelFile file = ModelFiles.open(modelChoice.modelPath(), modelChoice.tokenizerPath())) {
            Tokenizer tokenizer = Tokenizers.fromMetadata(file.metadata());
            if (vectors != null) {
                for (String c : readCases(vectors)) {
                    out.println(ids(tokenizer.encode(c, false, false)));
                }
            } else {
                String text = prompt != null ? prompt : new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
                out.println(ids(tokenizer.encode(text, !noBos && tokenizer.addBosByDefault(), special)));
            }
        }
        out.flush();
        return 0;
    }

    /** The cases of a .inp file: each text is followed by a line {@value #CASE_SEPARATOR}. */
    static List<String> readCases(Path inp) throws IOException {
        String all = Files.readString(inp, StandardCharsets.UTF_8);
        String sep = "\n" + CASE_SEPARATOR + "\n";
        List<String> cases = new ArrayList<>(Arrays.asList(all.split(Pattern.quote(sep), -1)));
        if (cases.get(cases.size() - 1).isEmpty()) {
            cases.remove(cases.size() - 1);
        }
        return cases;
    }

    private static String ids(int[] ids) {
        return Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(" ", " ", ""))
                .stripTrailing();
    }
}
