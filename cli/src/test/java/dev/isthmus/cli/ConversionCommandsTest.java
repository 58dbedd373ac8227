package dev.isthmus.cli;

import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.gguf.GgufFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static dev.isthmus.cli.CliRun.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code isthmus synth} and {@code isthmus quantize} as a user runs them. */
class ConversionCommandsTest {
    private static void assertOneLineError(CliRun r, String expected) {
        assertEquals(1, r.exit(), r.out() + r.err());
        assertTrue(r.err().startsWith("isthmus: "), r.err());
        assertTrue(r.err().contains(expected), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    @Test
    void synthWritesARunnableModel(@TempDir Path dir) {
        Path file = dir.resolve("tiny.gguf");
        CliRun r = run("synth", "--shape", "tiny", "--dtype", "Q4_K_M", "--seed", "3", "-o", file.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().startsWith(file + ": "), r.out());
        assertTrue(r.out().contains(" bytes "), r.out());
        try (GgufFile g = GgufFile.open(file)) {
            assertEquals(15, g.metadata().getLong("general.file_type", -1));
            assertEquals(3, g.metadata().getLong("isthmus.synthetic.seed", -1));
        }
        CliRun run = run("run", "-m", file.toString(), "-p", "Hello", "-n", "4", "--temp", "0");
        assertEquals(0, run.exit(), run.err());
    }

    @Test
    void quantizeConvertsStories260K(@TempDir Path dir) {
        Path file = dir.resolve("q8.gguf");
        CliRun r = run("quantize", "-m", SharedData.file("models/stories260K.gguf").toString(), "-o", file.toString(),
                "--type", "q8_0");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("5 tensors fell back"), r.out()); // ffn_down's rows of 172 become F16
        CliRun info = run("info", "-m", file.toString());
        assertEquals(0, info.exit(), info.err());
        assertTrue(info.out().contains("Q8_0"), info.out());
        assertTrue(info.out().contains("general.file_type = 7"), info.out());
    }

    @Test
    void badArgumentsAreOneClearLine(@TempDir Path dir) {
        String out = dir.resolve("x.gguf").toString();
        assertOneLineError(run("synth", "--dtype", "Q8_0", "-o", out), "missing --shape");
        assertOneLineError(run("synth", "--shape", "huge", "--dtype", "Q8_0", "-o", out),
                "unknown shape 'huge' (one of: llama-3.2-1b, tinyllama-1.1b, tiny)");
        assertOneLineError(run("synth", "--shape", "tiny", "--dtype", "Q9_0", "-o", out), "unknown type 'Q9_0'");
        assertOneLineError(run("synth", "--shape", "tiny", "--dtype", "Q8_0"), "missing -o");
        assertOneLineError(run("synth", "--shape", "tiny", "--dtype", "Q8_0", "-o", dir.resolve("no/such/dir.gguf").toString()),
                "no directory");
        assertOneLineError(run("quantize", "-m", SharedData.file("models/stories260K.gguf").toString(), "-o", out),
                "missing --type");
        assertOneLineError(run("quantize", "-m", dir.resolve("missing.gguf").toString(), "-o", out, "--type", "Q4_0"),
                "no such file");
        assertFalse(Files.exists(dir.resolve("x.gguf")));
    }
}
