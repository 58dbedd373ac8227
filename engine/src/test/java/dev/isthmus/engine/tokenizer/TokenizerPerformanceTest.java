package dev.isthmus.engine.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.engine.format.Metadata;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.junit.jupiter.api.Test;

/**
 * Guards against accidentally quadratic code. Times are this thread's CPU time, so other processes on
 * the machine do not count; the limits are several times what a cold JVM needs, so they catch
 * blow-ups, not noise. The measured times are printed.
 */
class TokenizerPerformanceTest {
    private static long cpuNanos() {
        return ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
    }

    @Test
    void buildingTheLlama3VocabularyIsFast() {
        Metadata metadata = Vocabs.ggufMetadata(Vocabs.vocabFile("llama-bpe"));
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            long start = cpuNanos();
            Tokenizer tokenizer = Tokenizers.fromMetadata(metadata);
            best = Math.min(best, cpuNanos() - start);
            assertEquals(128256, tokenizer.vocabSize());
        }
        System.out.printf("llama-bpe (128256 tokens, 280147 merges): built in %.0f ms of CPU%n", best / 1e6);
        assertTrue(best < 2_000_000_000L, "building took " + best / 1e6 + " ms");
    }

    @Test
    void encodingLargeInputsIsFast() throws IOException {
        String inputs = Files.readString(Vocabs.file("tokenizer-vectors/ggml-vocab-llama-bpe.gguf.inp"), StandardCharsets.UTF_8);
        String large = inputs.repeat(100); // ~190 KB of mixed scripts, emoji, whitespace runs and digits
        String oneWord = "a".repeat(50_000) + "🦙".repeat(5_000); // one pre-token / one SentencePiece symbol run
        for (String family : TokenizerVectorsTest.FAMILIES) {
            Tokenizer tokenizer = Vocabs.vocab(family);
            tokenizer.encode(inputs, false, false); // warm up
            long start = cpuNanos();
            int[] ids = tokenizer.encode(large, false, false);
            long mixed = cpuNanos() - start;
            start = cpuNanos();
            int[] word = tokenizer.encode(oneWord, false, false);
            long single = cpuNanos() - start;
            System.out.printf("%-15s %7d chars -> %6d tokens in %4.0f ms; %d-char word -> %d tokens in %4.0f ms (CPU)%n",
                    family, large.length(), ids.length, mixed / 1e6, oneWord.length(), word.length, single / 1e6);
            assertTrue(mixed < 5_000_000_000L && single < 5_000_000_000L, family + " too slow");
        }
    }
}
