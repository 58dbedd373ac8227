package dev.isthmus.cli;

import dev.isthmus.engine.SharedData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code run}, {@code bench} and {@code serve} with {@code --draft-model} and {@code --lookup-ngram}, in process. */
class SpeculativeCliTest {
    @TempDir
    static Path dir;
    private static String target;
    private static String draft;

    @BeforeAll
    static void quantizeDraft() {
        target = SharedData.file("models/stories260K.gguf").toString();
        draft = dir.resolve("stories260K-q8_0.gguf").toString();
        CliRun r = run("quantize", "-m", target, "-o", draft, "--type", "Q8_0", "-t", "1");
        assertEquals(0, r.exit(), r.err());
    }

    /**
     * {@code isthmus args}, with what the command writes to {@code System.out} and {@code System.err} (generated
     * text, speculation statistics).
     */
    private static CliRun run(String... args) {
        return CliRun.runWithSystemOutAndErr(args);
    }

    private static String golden() throws IOException {
        return Files.readString(SharedData.file("golden/stories260K.greedy200.expected.txt"));
    }

    @Test
    void runWithDraftModelPrintsTheGreedyGoldenText() throws IOException {
        CliRun r = run("run", "-m", target, "--draft-model", draft, "--draft-p-min", "0", "-n", "200", "--temp", "0",
                "-p", "", "-t", "1", "--backend", "cpu");
        assertEquals(0, r.exit(), r.err());
        assertEquals(golden(), r.out());
        assertTrue(r.err().contains("speculation with draft model stories260K-q8_0.gguf: "), r.err());
        assertTrue(r.err().matches("(?s).*\\d+ drafted, \\d+ accepted \\(\\d+\\.\\d%\\).*"), r.err());
    }

    @Test
    void runWithNgramLookupPrintsTheGreedyGoldenText() throws IOException {
        CliRun r = run("run", "-m", target, "--lookup-ngram", "3", "--draft-max", "4", "-n", "200", "--temp", "0",
                "-p", "", "-t", "1", "--backend", "cpu");
        assertEquals(0, r.exit(), r.err());
        assertEquals(golden(), r.out());
        assertTrue(r.err().contains("speculation with n-gram lookup (n = 3 .. 1): "), r.err());
    }

    @Test
    @Timeout(60) // a serve that started would never return
    void draftWithAnotherVocabularyIsAClearErrorOfRunAndServe() {
        String other = SharedData.file("models/llama-2-tiny-random.gguf").toString();
        for (String[] command : new String[][] {{"run", "-n", "5"}, {"serve", "--port", "0"}}) {
            CliRun r = run(command[0], "-m", target, "--draft-model", other, command[1], command[2], "-t", "1",
                    "--backend", "cpu");
            assertEquals(1, r.exit(), command[0]);
            assertTrue(r.err().contains("isthmus: draft vocabulary differs from the target's: the target has 512 "
                    + "tokens, the draft 32000; speculative decoding needs a draft model with the target's tokenizer"),
                    command[0] + ": " + r.err());
        }
    }

    @Test
    void serveHelpNamesTheSpeculationOptions() {
        CliRun r = run("serve", "--help");
        assertEquals(0, r.exit(), r.err());
        for (String option : new String[] {"--draft-model=MODEL", "--draft-max=K", "--draft-min=K", "--draft-p-min=P",
                "--lookup-ngram=N"}) {
            assertTrue(r.out().contains(option), option + " in\n" + r.out());
        }
    }

    @Test
    void draftModelAndLookupExcludeEachOther() {
        CliRun r = run("run", "-m", target, "--draft-model", draft, "--lookup-ngram", "2", "-n", "5", "-t", "1",
                "--backend", "cpu");
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("--draft-model and --lookup-ngram exclude each other"), r.err());
    }

    @Test
    void benchReportsAcceptanceAndSpeedup() {
        CliRun r = run("bench", "-m", target, "--draft-model", draft, "--draft-max", "8", "-n", "64", "--reps", "1",
                "-t", "1", "--backend", "cpu");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("| model | drafter | K | p-min | temp | tokens | acceptance |"), r.out());
        assertTrue(r.out().matches("(?s).*\\| stories260K\\.gguf \\| draft model stories260K-q8_0\\.gguf \\| 8 "
                + "\\| 0\\.75 "
                + "\\| 0\\.00 \\| 64 \\| \\d+\\.\\d% of \\d+ \\|.*\\| yes \\|.*"), r.out());
    }
}
