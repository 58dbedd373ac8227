package dev.isthmus.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * llama.cpp's tokenizer test vectors: every string of {@code ggml-vocab-NAME.gguf.inp} must tokenize
 * (no BOS, special tokens not parsed) to exactly the ids on the same line of {@code .out}.
 */
class TokenizerVectorsTest {
    static final String SEPARATOR = "\n__ggml_vocab_test__\n";
    static final int CASES_PER_FAMILY = 46;

    record Case(String input, int[] expected) {
    }

    /** The cases of one family, split as llama.cpp's test-tokenizer-0 splits them. */
    static List<Case> cases(String family) throws IOException {
        Path inp = Vocabs.file("tokenizer-vectors/ggml-vocab-" + family + ".gguf.inp");
        Path out = Vocabs.file("tokenizer-vectors/ggml-vocab-" + family + ".gguf.out");
        String raw = Files.readString(inp, StandardCharsets.UTF_8);
        List<String> inputs = new ArrayList<>();
        int position = 0;
        while (position < raw.length()) {
            int next = raw.indexOf(SEPARATOR, position);
            if (next < 0) {
                inputs.add(raw.substring(position));
                break;
            }
            inputs.add(raw.substring(position, next));
            position = next + SEPARATOR.length();
        }
        List<String> lines = Files.readAllLines(out, StandardCharsets.UTF_8);
        assertEquals(inputs.size(), lines.size(), family + ": .inp and .out have different numbers of cases");
        List<Case> cases = new ArrayList<>();
        for (int i = 0; i < inputs.size(); i++) {
            String line = lines.get(i).strip();
            int[] ids = line.isEmpty() ? new int[0] : Arrays.stream(line.split(" ")).mapToInt(Integer::parseInt).toArray();
            cases.add(new Case(inputs.get(i), ids));
        }
        return cases;
    }

    static final String[] FAMILIES = {
        "llama-spm", "llama-bpe", "gpt-2", "qwen2", "phi-3", "falcon", "starcoder", "deepseek-coder", "mpt"
    };

    static String[] families() {
        return FAMILIES;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("families")
    void reproducesEveryVector(String family) throws IOException {
        Tokenizer tokenizer = Vocabs.vocab(family);
        List<Case> cases = cases(family);
        assertEquals(CASES_PER_FAMILY, cases.size(), family + ": number of test cases");
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < cases.size(); i++) {
            Case c = cases.get(i);
            int[] actual = tokenizer.encode(c.input(), false, false);
            if (!Arrays.equals(c.expected(), actual)) {
                failures.add("case " + i + " " + quote(c.input()) + "\n  expected " + Arrays.toString(c.expected())
                        + "\n  actual   " + Arrays.toString(actual));
            }
        }
        System.out.printf("%s: %d/%d vectors pass%n", family, cases.size() - failures.size(), cases.size());
        assertEquals(List.of(), failures, family + ": " + failures.size() + " of " + cases.size() + " vectors differ");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("families")
    void decodeReturnsTheEncodedText(String family) throws IOException {
        Tokenizer tokenizer = Vocabs.vocab(family);
        for (Case c : cases(family)) {
            assertEquals(c.input(), tokenizer.decode(tokenizer.encode(c.input(), false, false)), family + " without BOS");
            assertEquals(c.input(), tokenizer.decode(tokenizer.encode(c.input(), true, false)), family + " with BOS");
            assertEquals(c.input(), tokenizer.decode(c.expected()), family + " expected ids");
        }
    }

    static String quote(String s) {
        StringBuilder sb = new StringBuilder("\"");
        s.codePoints().forEach(cp -> {
            if (cp == '\n') {
                sb.append("\\n");
            } else if (cp == '\t') {
                sb.append("\\t");
            } else if (cp < 0x20) {
                sb.append(String.format("\\u%04x", cp));
            } else {
                sb.appendCodePoint(cp);
            }
        });
        return sb.append('"').toString();
    }
}
