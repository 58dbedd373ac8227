package dev.isthmus.cli;

import dev.isthmus.engine.SharedData;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The isthmus command as a user runs it, in process. */
class CliTest {
    @AfterEach
    void clearBackendProperty() {
        System.clearProperty("isthmus.backend");
    }

    /** {@code isthmus args}, with what the command writes to {@code System.out} (generated text, reports). */
    private static CliRun run(String... args) {
        return CliRun.runWithSystemOut(args);
    }

    /** A subcommand's help must not run it, nor fail on its required options (run, bench, serve need -m). */
    @ParameterizedTest
    @ValueSource(strings = {"backends", "conformance", "run", "tokenize", "info", "bench", "synth", "quantize",
            "perplexity", "serve"})
    void everySubcommandPrintsItsHelp(String command) {
        CliRun r = run(command, "--help");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith("Usage: isthmus " + command), r.out());
        assertTrue(r.out().contains("-h, --help"), r.out());
    }

    @Test
    void backendsListsCpuAsAvailable() {
        CliRun r = run("backends");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("\\*?\\s+cpu\\s+0\\s+available\\s+.*")), r.out());
        assertTrue(r.out().contains("selected: "), r.out());
    }

    @Test
    void requestedBackendIsSelected() {
        System.setProperty("isthmus.backend", "cpu");
        CliRun r = run("backends");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("\\*\\s+cpu\\s+0\\s+available\\s+.*")), r.out());
        assertTrue(r.out().contains("selected: cpu (requested)"), r.out());
    }

    @Test
    void unknownBackendNamesItAndListsTheKnownOnes() {
        System.setProperty("isthmus.backend", "nope");
        CliRun r = run("backends");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("unknown backend 'nope'"), r.err());
        assertTrue(r.err().contains("known backends: "), r.err());
        assertTrue(r.err().contains("cpu (available)"), r.err());
    }

    @Test
    void runPrintsLlama2cGoldenTextExactly() throws IOException {
        byte[] expected = Files.readAllBytes(SharedData.file("golden/stories260K.greedy200.expected.txt"));
        CliRun r = run("run", "-m", SharedData.file("models/stories260K.gguf").toString(),
                "-n", "200", "--temp", "0", "-p", "");
        assertEquals(0, r.exit(), r.err());
        assertEquals(new String(expected, StandardCharsets.UTF_8), r.out());
        assertEquals(464, r.out().getBytes(StandardCharsets.UTF_8).length);
    }

    @Test
    void runAcceptsLlama2cCheckpoints() throws IOException {
        String expected = Files.readString(SharedData.file("golden/stories260K.greedy200.expected.txt"));
        CliRun r = run("run", "-m", SharedData.file("llama2c/stories260K.bin").toString(),
                "-z", SharedData.file("llama2c/tok512.bin").toString(), "-n", "200", "--temp", "0");
        assertEquals(0, r.exit(), r.err());
        assertEquals(expected, r.out());
    }

    @Test
    void seededSamplingIsReproducible() {
        String model = SharedData.file("models/stories260K.gguf").toString();
        CliRun a = run("run", "-m", model, "-n", "40", "--temp", "1.0", "--seed", "42", "-p", "Once");
        CliRun b = run("run", "-m", model, "-n", "40", "--temp", "1.0", "--seed", "42", "-p", "Once");
        CliRun c = run("run", "-m", model, "-n", "40", "--temp", "1.0", "--seed", "43", "-p", "Once");
        assertEquals(0, a.exit(), a.err());
        assertEquals(a.out(), b.out());
        assertFalse(a.out().equals(c.out()), "different seeds gave the same 40 tokens");
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama-spm", "llama-bpe", "gpt-2", "qwen2", "phi-3", "falcon", "starcoder",
            "deepseek-coder", "mpt"})
    void tokenizeVectorsReproducesLlamaCppOutput(String family) throws IOException {
        Path vocab = SharedData.file("tokenizer-vectors/ggml-vocab-" + family + ".gguf");
        String expected = Files.readString(SharedData.file("tokenizer-vectors/ggml-vocab-" + family + ".gguf.out"));
        CliRun r = run("tokenize", "-m", vocab.toString(), "--vectors", vocab + ".inp");
        assertEquals(0, r.exit(), r.err());
        assertEquals(expected, r.out());
    }

    @Test
    void infoDescribesTheModel() {
        CliRun r = run("info", "-m", SharedData.file("models/llama-2-tiny-random.gguf").toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("architecture: llama"), r.out());
        assertTrue(r.out().contains("F16"), r.out());
        assertTrue(r.out().contains("tokenizer.ggml.tokens = [\"<unk>\", \"<s>\", \"</s>\""), r.out());
    }

    @Test
    void conformanceOnCpuPrintsThePerOpTableAndPasses() {
        CliRun r = run("conformance", "--backend", "cpu");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("MATMUL"), r.out());
        assertTrue(r.out().contains("ATTENTION"), r.out());
        assertTrue(r.out().contains("CONFORMANT"), r.out());
    }

    @Test
    void badModelFileIsOneClearLine(@TempDir Path dir) throws IOException {
        Path bad = dir.resolve("bad.gguf");
        Files.write(bad, new byte[] {'G', 'G', 'U', 'F', 3, 0, 0, 0, 1});
        CliRun r = run("run", "-m", bad.toString(), "-n", "1");
        assertEquals(1, r.exit());
        assertTrue(r.err().startsWith("isthmus: "), r.err());
        assertTrue(r.err().contains("bad.gguf"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }
}
