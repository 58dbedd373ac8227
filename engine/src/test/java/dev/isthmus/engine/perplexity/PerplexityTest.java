package dev.isthmus.engine.perplexity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.api.DType;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.model.Model;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Sliding-window perplexity of stories260K on a short text written for this test (stories.txt). */
class PerplexityTest {
    static Backend backend;
    static Model model;
    static String text;
    /** The first story (about 290 tokens): enough windows at context 64, quick to evaluate. */
    static String part;

    @BeforeAll
    static void open() throws IOException {
        backend = Backends.open("cpu", new BackendOptions(1, java.util.Map.of()));
        model = Model.open(SharedData.file("models/stories260K.gguf"), null, backend);
        try (InputStream in = PerplexityTest.class.getResourceAsStream("stories.txt")) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        part = text.substring(0, text.indexOf("\n\n"));
    }

    @AfterAll
    static void close() {
        model.close();
        backend.close();
    }

    /**
     * The definition computed directly: each window from an empty cache in one pass with every row's logits,
     * its first token BOS, the log-softmax of the last {@code stride} predictions in double.
     */
    static double[] direct(Transformer t, int[] tokens, int bos, int ctx, int stride) {
        double sum = 0;
        long n = 0;
        for (int start = 0; start + ctx <= tokens.length; start += stride) {
            int[] w = Arrays.copyOfRange(tokens, start, start + ctx);
            w[0] = bos;
            float[] all;
            try (KvCache cache = t.newCache(1, ctx, DType.F32)) {
                all = t.forward(Batch.ofSequenceAllLogits(0, 0, w), cache).toFloatArray();
            }
            int vocab = all.length / ctx;
            for (int p = ctx - stride; p < ctx; p++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) {
                    max = Math.max(max, all[(p - 1) * vocab + v]);
                }
                double z = 0;
                for (int v = 0; v < vocab; v++) {
                    z += Math.exp(all[(p - 1) * vocab + v] - max);
                }
                sum += -(all[(p - 1) * vocab + w[p]] - max - Math.log(z));
                n++;
            }
        }
        return new double[] {Math.exp(sum / n), n};
    }

    @Test
    void matchesTheDirectComputationAndIsSane() {
        int[] tokens = model.tokenizer().encode(part, true, false);
        assertTrue(tokens.length > 250, tokens.length + " tokens");
        List<Perplexity.Result> progress = new ArrayList<>();
        Perplexity.Result r = Perplexity.evaluate(model, part, Perplexity.Options.of(64), progress::add);
        int windows = (tokens.length - 64) / 32 + 1;
        assertEquals(tokens.length, r.tokens());
        assertEquals(windows, r.windows());
        assertEquals(windows, progress.size());
        assertEquals(32L * windows, r.scored());

        double[] d = direct(model.transformer(), tokens, model.tokenizer().bos(), 64, 32);
        assertEquals(d[1], r.scored());
        assertEquals(d[0], r.perplexity(), 1e-4 * d[0], "perplexity vs direct computation");

        // A trained model on a children's story: far better than the 512-token uniform guess, and not degenerate.
        assertTrue(r.perplexity() > 1.5 && r.perplexity() < 20, "perplexity " + r.perplexity());
        assertTrue(r.perplexityError() > 0 && r.perplexityError() < 0.2 * r.perplexity(), "error " + r.perplexityError());
        System.out.printf("stories260K: PPL %.4f +/- %.4f over %d tokens in %d windows%n", r.perplexity(),
                r.perplexityError(), r.scored(), r.windows());
    }

    @Test
    void shuffledWordsAreLessLikely() {
        List<String> words = new ArrayList<>(Arrays.asList(part.split(" ")));
        Collections.shuffle(words, new Random(5));
        Perplexity.Options o = Perplexity.Options.of(64);
        double real = Perplexity.evaluate(model, part, o, null).perplexity();
        double shuffled = Perplexity.evaluate(model, String.join(" ", words), o, null).perplexity();
        assertTrue(shuffled > 1.5 * real, "shuffled " + shuffled + " vs " + real);
    }

    @Test
    void otherStridesBatchesAndErrors() {
        int[] tokens = Arrays.copyOf(model.tokenizer().encode(part, true, false), 200);
        // Several forward passes per window (batches of 16) and a stride that is not half the context.
        Perplexity.Result r = Perplexity.evaluate(model.transformer(), tokens, 1, new Perplexity.Options(48, 40, 16), null);
        double[] d = direct(model.transformer(), tokens, 1, 48, 40);
        assertEquals(d[0], r.perplexity(), 1e-4 * d[0]);
        assertEquals((200 - 48) / 40 + 1, r.windows());
        assertEquals(40L * r.windows(), r.scored());

        assertThrows(IllegalArgumentException.class, () -> new Perplexity.Options(128, 128, 8));
        assertThrows(IllegalArgumentException.class, () -> new Perplexity.Options(1, 1, 8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Perplexity.evaluate(model, "Once upon a time.", Perplexity.Options.of(128), null));
        assertTrue(e.getMessage().contains("fewer than one window"), e.getMessage());
        assertEquals(0, Perplexity.windows(127, Perplexity.Options.of(128)));
        assertEquals(1, Perplexity.windows(128, Perplexity.Options.of(128)));
        assertEquals(2, Perplexity.windows(192, Perplexity.Options.of(128)));
    }
}
