package dev.isthmus.cli;

import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.safetensors.HfFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code isthmus perplexity}, and a Hugging Face checkpoint directory as {@code -m}, as a user runs them. */
class PerplexityCommandTest {
    private static final String TEXT = """
            Once upon a time, there was a little dog named Spot. Spot liked to run in the park. One day, Spot saw a \
            big red ball under a tree. He ran to the ball and pushed it with his nose. The ball rolled down the hill. \
            Spot ran after it and barked. A little girl named Sue caught the ball and laughed. "Is this your ball?" \
            she asked. Spot wagged his tail. Sue threw the ball, and Spot ran to get it. They played all day, and \
            when the sun went down, Spot was tired and happy. He went home and slept in his warm bed.
            """;
    private static final Pattern PPL = Pattern.compile("PPL = (\\d+\\.\\d{4}) \\+/- (\\d+\\.\\d{4}) .* (\\d+) windows of 64");

    /** {@code isthmus args}, with what the command writes to {@code System.out} (generated text, reports). */
    private static CliRun run(String... args) {
        return CliRun.runWithSystemOut(args);
    }

    private static double ppl(CliRun r) {
        assertEquals(0, r.exit(), r.err());
        Matcher m = PPL.matcher(r.out());
        assertTrue(m.find(), r.out());
        return Double.parseDouble(m.group(1));
    }

    @Test
    void ggufAndTheSameModelAsAHuggingFaceCheckpoint(@TempDir Path dir) throws IOException {
        Path text = Files.writeString(dir.resolve("story.txt"), TEXT);
        String gguf = SharedData.file("models/stories260K.gguf").toString();
        CliRun r = run("perplexity", "-m", gguf, "-f", text.toString(), "--ctx", "64", "-t", "1");
        double a = ppl(r);
        assertTrue(a > 1.2 && a < 30, r.out());

        Path hf;
        try (GgufFile g = GgufFile.open(Path.of(gguf))) {
            hf = HfFixtures.checkpointFromGguf(g, dir.resolve("stories260K-hf"), "F32", 2);
        }
        double b = ppl(run("perplexity", "-m", hf.toString(), "-f", text.toString(), "--ctx", "64", "-t", "1"));
        assertEquals(a, b, 1e-3);

        CliRun limited = run("perplexity", "-m", hf.toString(), "-f", text.toString(), "--ctx", "64", "--chunks", "2",
                "-t", "1");
        Matcher m = PPL.matcher(limited.out());
        assertTrue(m.find(), limited.out() + limited.err());
        assertEquals("2", m.group(3));

        CliRun runGguf = run("run", "-m", gguf, "-p", "Once upon a time", "-n", "24", "--temp", "0", "-t", "1");
        CliRun runHf = run("run", "-m", hf.toString(), "-p", "Once upon a time", "-n", "24", "--temp", "0", "-t", "1");
        assertEquals(0, runHf.exit(), runHf.err());
        assertEquals(runGguf.out(), runHf.out());

        CliRun info = run("info", "-m", hf.toString());
        assertEquals(0, info.exit(), info.err());
        assertTrue(info.out().contains("(safetensors)") && info.out().contains("tokenizer.ggml.model = \"llama\""),
                info.out());
    }

    /** {@code quantize} reads the checkpoint through the same ModelFile: the same GGUF tensors as from the GGUF. */
    @Test
    void quantizeReadsAHuggingFaceCheckpoint(@TempDir Path dir) throws IOException {
        Path gguf = SharedData.file("models/stories260K.gguf");
        Path hf;
        try (GgufFile g = GgufFile.open(gguf)) {
            hf = HfFixtures.checkpointFromGguf(g, dir.resolve("hf"), "F32", 2);
        }
        Path a = dir.resolve("a.gguf");
        Path b = dir.resolve("b.gguf");
        CliRun ra = run("quantize", "-m", gguf.toString(), "-o", a.toString(), "--type", "Q8_0", "-t", "1");
        CliRun rb = run("quantize", "-m", hf.toString(), "-o", b.toString(), "--type", "Q8_0", "-t", "1");
        assertEquals(0, ra.exit(), ra.err());
        assertEquals(0, rb.exit(), rb.err());
        try (GgufFile fa = GgufFile.open(a); GgufFile fb = GgufFile.open(b)) {
            assertEquals(fa.tensorInfos().size(), fb.tensorInfos().size());
            for (var t : fa.tensorInfos()) {
                var u = fb.tensorInfo(t.name());
                assertEquals(t.dtype(), u.dtype(), t.name());
                assertEquals(java.util.Arrays.toString(t.shape()), java.util.Arrays.toString(u.shape()), t.name());
                assertEquals(-1, fa.tensor(t.name()).segment().mismatch(fb.tensor(t.name()).segment()), t.name());
            }
            assertEquals(fa.metadata().getStringArray("tokenizer.ggml.tokens").length,
                    fb.metadata().getStringArray("tokenizer.ggml.tokens").length);
        }
    }

    @Test
    void errorsAreOneLine(@TempDir Path dir) throws IOException {
        String gguf = SharedData.file("models/stories260K.gguf").toString();
        CliRun r = run("perplexity", "-m", gguf);
        assertEquals(1, r.exit());
        assertTrue(r.err().startsWith("isthmus: missing -f"), r.err());
        Path tiny = Files.writeString(dir.resolve("tiny.txt"), "Once upon a time.");
        r = run("perplexity", "-m", gguf, "-f", tiny.toString(), "--ctx", "64");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("fewer than one window of 64"), r.err());
        r = run("perplexity", "-m", gguf, "-f", tiny.toString(), "--ctx", "64", "--stride", "64");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("stride"), r.err());
    }
}
