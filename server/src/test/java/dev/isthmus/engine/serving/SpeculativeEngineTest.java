package dev.isthmus.engine.serving;

import dev.isthmus.api.DType;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.generation.StopReason;
import dev.isthmus.engine.gguf.GgufType;
import dev.isthmus.engine.gguf.GgufWriter;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.speculative.DraftModel;
import dev.isthmus.engine.speculative.NgramLookup;
import dev.isthmus.engine.speculative.SpeculationStats;
import dev.isthmus.engine.speculative.SpeculativeParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding inside the batching engine: greedy output must be token for token what plain generation
 * gives, under concurrency, preemption, stop strings, token limits and the end of the context; proposals must be
 * accepted and rolled back without leaking KV blocks.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SpeculativeEngineTest {
    private final Stories stories = new Stories();

    @AfterAll
    void close() {
        stories.close();
    }

    private static EngineConfig f32() {
        return EngineConfig.defaults().withKvMemory(16, 0, DType.F32);
    }

    private SpeculationConfig draftModel(int draftMax) {
        return new SpeculationConfig(new DraftModel(stories.draft(), 0), new SpeculativeParams(draftMax, 0));
    }

    private static Engine start(Model model, EngineConfig config, SpeculationConfig speculation) {
        return Engine.start(model.transformer(), model.tokenizer(), config, speculation);
    }

    private static GenerationResult plain(Model model, String prompt, GenerationParams params) {
        return model.generator().generate(prompt, params, s -> { });
    }

    /** Greedy parameters with end-of-text banned, so that a generation runs to its length. */
    private GenerationParams greedyToLength(int n) {
        SamplingParams greedy = new SamplingParams(0f, 0, 1f, 0f, 1f, 0f, 0f, 64, 0,
                Map.of(stories.model.tokenizer().eos(), Float.NEGATIVE_INFINITY));
        return new GenerationParams(n, greedy, List.of(), null, false);
    }

    /** Submits every prompt at once and checks each result and stream against plain generation. */
    private SpeculationStats assertConcurrentGreedyIsPlain(Engine engine, List<String> prompts,
                                                                  List<GenerationParams> params) throws Exception {
        List<GenerationResult> refs = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            refs.add(plain(stories.model, prompts.get(i), params.get(i)));
        }
        List<Submission> subs = new ArrayList<>();
        List<EngineTest.Collector> collectors = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            Submission s = engine.submit(Request.of(engine.tokenize(prompts.get(i), null, false), params.get(i)));
            EngineTest.Collector c = new EngineTest.Collector();
            s.subscribe(c);
            subs.add(s);
            collectors.add(c);
        }
        long accepted = 0;
        for (int i = 0; i < prompts.size(); i++) {
            Completion c = subs.get(i).completion().get();
            String what = "request " + i + ": " + prompts.get(i);
            assertArrayEquals(refs.get(i).tokens(), c.tokens(), what);
            assertEquals(refs.get(i).text(), c.text(), what);
            assertEquals(refs.get(i).reason(), c.reason(), what);
            assertTrue(collectors.get(i).done.await(10, TimeUnit.SECONDS));
            assertEquals(c.text(), collectors.get(i).text.toString(), "streamed text of " + what);
            EngineTest.assertStreamedIds(c, collectors.get(i));
            assertTrue(c.acceptedDraftTokens() <= c.draftedTokens(), what);
            accepted += c.acceptedDraftTokens();
        }
        EngineTest.awaitIdle(engine);
        EngineStats stats = engine.stats();
        assertEquals(0, stats.kv().used(), "every KV block back in the pool: " + stats);
        assertEquals(accepted, stats.speculation().accepted(), "the requests' accepted tokens add up");
        return stats.speculation();
    }

    @Test
    void aLoneGreedyRequestIsTheGoldenTextInFewerPasses() throws Exception {
        String expected = Files.readString(SharedData.file("golden/stories260K.greedy200.expected.txt"));
        try (Engine engine = start(stories.model, f32(), draftModel(8))) {
            Completion c = engine.complete(Request.greedy(engine.tokenize("", null, false), 200)).get();
            assertEquals(expected, c.text());
            EngineStats stats = engine.stats();
            assertTrue(stats.steps() * 2 < 200, "a draft this close to the model saves most passes: " + stats);
            assertTrue(stats.speculation().acceptanceRate() > 0.5, "acceptance " + stats.speculation());
            assertEquals(c.draftedTokens(), stats.speculation().drafted());
        }
    }

    @Test
    void concurrentGreedyRequestsWithADraftModelAreThePlainOutputs() throws Exception {
        List<String> prompts = Stories.prompts(12, 5);
        List<GenerationParams> params = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            params.add(i % 3 == 0 ? greedyToLength(40 + 7 * i) : GenerationParams.greedy(20 + 9 * i));
        }
        // A budget of 96 rows for up to 8 sequences: proposals are cut to what the prompts leave.
        try (Engine engine = start(stories.model, f32().withMaxBatch(8).withMaxBatchTokens(96), draftModel(6))) {
            SpeculationStats s = assertConcurrentGreedyIsPlain(engine, prompts, params);
            assertTrue(s.accepted() > 0 && s.drafted() >= s.accepted(), s.toString());
        }
    }

    @Test
    void concurrentGreedyRequestsWithNgramLookupAreThePlainOutputs() throws Exception {
        List<String> prompts = Stories.prompts(10, 17);
        List<GenerationParams> params = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            params.add(greedyToLength(60 + 10 * i));
        }
        SpeculationConfig ngram = new SpeculationConfig(new NgramLookup(3), new SpeculativeParams(4, 0));
        try (Engine engine = start(stories.model, f32().withMaxBatch(4), ngram)) {
            SpeculationStats s = assertConcurrentGreedyIsPlain(engine, prompts, params);
            assertTrue(s.accepted() > 0, "n-gram lookup never accepted: " + s);
        }
    }

    @Test
    void preemptionUnderATinyPoolKeepsTheOutput() throws Exception {
        List<String> prompts = Stories.prompts(8, 11);
        List<GenerationParams> params = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            params.add(greedyToLength(60));
        }
        var cfg = stories.model.config();
        long blockBytes = KvCache.Options.bytesPerBlock(cfg.layers(), cfg.kvDim(), 4, DType.F32);
        EngineConfig tiny = f32().withMaxBatch(8).withKvMemory(4, blockBytes * 40, DType.F32);
        try (Engine engine = start(stories.model, tiny, draftModel(8))) {
            SpeculationStats s = assertConcurrentGreedyIsPlain(engine, prompts, params);
            assertTrue(engine.stats().preemptions() > 0, "the pool was too small for all: " + engine.stats());
            assertTrue(s.accepted() > 0, s.toString());
        }
    }

    @Test
    void stopStringsAndTokenLimitsEndAsInPlainGeneration() throws Exception {
        List<GenerationParams> cases = List.of(
                new GenerationParams(200, SamplingParams.greedy(), List.of("park", "."), null, false),
                new GenerationParams(200, SamplingParams.greedy(), List.of("Lily"), null, false),
                GenerationParams.greedy(1), GenerationParams.greedy(2), GenerationParams.greedy(3),
                GenerationParams.greedy(200));
        List<String> prompts = new ArrayList<>();
        cases.forEach(c -> prompts.add("Once upon a time"));
        try (Engine engine = start(stories.model, f32(), draftModel(16))) {
            assertConcurrentGreedyIsPlain(engine, prompts, cases);
        }
    }

    @Test
    void generationRunsToTheEndOfTheContextAsPlainGeneration(@TempDir Path dir) throws Exception {
        Path shortPath = dir.resolve("stories260K-ctx96.gguf");
        try (ModelFile in = ModelFiles.open(SharedData.file("models/stories260K.gguf"), null)) {
            GgufWriter.copyOf(in).put("llama.context_length", 96, GgufType.UINT32).write(shortPath);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        try (Model shortContext = Model.open(shortPath, null, stories.backend);
             Engine engine = start(shortContext, f32(), draftModel(16))) {
            for (String prompt : List.of("Once upon a time", "Lily and Tom went to the park and played")) {
                GenerationParams params = greedyToLength(200);
                GenerationResult ref = plain(shortContext, prompt, params);
                Completion c = engine.complete(Request.of(engine.tokenize(prompt, null, false), params)).get();
                assertEquals(StopReason.CONTEXT_FULL, ref.reason());
                assertEquals(ref.reason(), c.reason());
                assertArrayEquals(ref.tokens(), c.tokens(), prompt);
            }
        }
    }

    /**
     * Sampling verifies by the rejection rule with the draft's own distributions: a draft that is the model itself
     * (same p and q up to rounding) is accepted nearly always. Which tokens a seed gives depends on how many
     * tokens each step proposed, so it is not compared with other runs.
     */
    @Test
    void samplingWithTheModelAsItsOwnDraftAcceptsNearlyEverything() throws Exception {
        List<String> prompts = Stories.prompts(6, 23);
        SpeculationConfig self = new SpeculationConfig(new DraftModel(stories.model, 0), new SpeculativeParams(5, 0));
        try (Engine engine = start(stories.model, f32(), self)) {
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                GenerationParams params = new GenerationParams(60, SamplingParams.defaults(100 + i), List.of(), null,
                        false);
                futures.add(engine.complete(Request.of(engine.tokenize(prompts.get(i), null, false), params)));
            }
            for (CompletableFuture<Completion> f : futures) {
                Completion c = f.get();
                assertTrue(c.reason() == StopReason.MAX_TOKENS || c.reason() == StopReason.END_OF_TEXT, c.reason()
                        .toString());
            }
            SpeculationStats s = engine.stats().speculation();
            assertTrue(s.drafted() > 100, s.toString());
            assertTrue(s.acceptanceRate() > 0.95, "acceptance " + s);
        }
    }

    @Test
    void cancellingASpeculatingRequestFreesItsBlocks() throws Exception {
        try (Engine engine = start(stories.model, f32(), draftModel(8))) {
            Request r = new Request(engine.tokenize("Once upon a time", null, false), 1900, SamplingParams.greedy(),
                    List.of(), true);
            Submission s = engine.submit(r);
            EngineTest.Collector col = new EngineTest.Collector();
            col.cancelAfter = 30;
            s.subscribe(col);
            assertThrows(CancellationException.class, () -> s.completion().join());
            // The engine goes on: a new request after the cancelled one is the plain output.
            GenerationResult ref = plain(stories.model, "Lily", GenerationParams.greedy(50));
            Completion next = engine.complete(Request.of(engine.tokenize("Lily", null, false),
                    GenerationParams.greedy(50))).get();
            assertArrayEquals(ref.tokens(), next.tokens());
            EngineTest.awaitIdle(engine);
            assertEquals(0, engine.stats().kv().used());
        }
    }
}
