package dev.isthmus.engine.speculative;

import dev.isthmus.api.DType;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFiles;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.generation.StopReason;
import dev.isthmus.engine.gguf.GgufType;
import dev.isthmus.engine.gguf.GgufWriter;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.quant.ModelQuantizer;
import dev.isthmus.engine.quant.QuantRecipe;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.TokenHistory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Speculative decoding on a real model: stories260K F32 as the target, with its own Q8_0 quantization, itself,
 * and n-gram lookup as drafters. Greedy speculation must reproduce plain greedy generation token for token.
 *
 * <p>Lives in the cli module because it needs a backend on the classpath (the engine module has none).
 */
class SpeculativeModelTest {
    /** Prompt, length, and whether EOS is banned (so that the generation runs to its full length). */
    private record Case(String prompt, int length, boolean banEos) {
        GenerationParams params() {
            Map<Integer, Float> bias = banEos ? Map.of(eos, Float.NEGATIVE_INFINITY) : Map.of();
            return new GenerationParams(length, new SamplingParams(0f, 0, 1f, 0f, 1f, 0f, 0f, 64, 0, bias), List.of(),
                    null, false);
        }
    }

    private static final List<Case> CASES = List.of(
            new Case("", 200, false),
            new Case("", 256, true),
            new Case("Once upon a time", 256, false),
            new Case("Lily and Tom went to the park", 300, true),
            new Case("The little dog was sad because", 200, true));
    private static final Map<Case, GenerationResult> PLAIN = new ConcurrentHashMap<>();

    @TempDir
    static Path dir;
    private static Backend backend;
    private static Model target;
    private static Model q8;
    /** stories260K with a context of 96 tokens, to run into it. */
    private static Model shortContext;
    private static int eos;

    @BeforeAll
    static void open() throws IOException {
        // One thread: the model is tiny, and the machines that run the tests are often busy.
        backend = Backends.openWithFallback("cpu", new BackendOptions(1, Map.of()));
        Path f32 = SharedData.file("models/stories260K.gguf");
        Path q8Path = dir.resolve("stories260K-q8_0.gguf");
        try (ModelFile in = ModelFiles.open(f32, null)) {
            ModelQuantizer.quantize(in, q8Path, QuantRecipe.named("Q8_0"), false, 1, c -> { });
        }
        Path shortPath = dir.resolve("stories260K-ctx96.gguf");
        try (ModelFile in = ModelFiles.open(f32, null)) {
            GgufWriter.copyOf(in).put("llama.context_length", 96, GgufType.UINT32).write(shortPath);
        }
        target = Model.open(f32, null, backend);
        shortContext = Model.open(shortPath, null, backend);
        q8 = Model.open(q8Path, null, backend);
        assertTrue(q8.file().tensorInfos().stream().anyMatch(t -> t.dtype() == DType.Q8_0), "draft is not Q8_0");
        eos = target.tokenizer().eos();
    }

    @AfterAll
    static void close() {
        q8.close();
        shortContext.close();
        target.close();
        backend.close();
    }

    private static GenerationResult plain(Case c) {
        return PLAIN.computeIfAbsent(c, k -> target.generator().generate(k.prompt(), k.params(), t -> { }));
    }

    private static SpeculationStats assertGreedyIdentity(SpeculativeGenerator spec) {
        long drafted = 0;
        long accepted = 0;
        int fullLength = 0;
        for (Case c : CASES) {
            GenerationResult plain = plain(c);
            StringBuilder streamed = new StringBuilder();
            SpeculativeResult r = spec.generate(c.prompt(), c.params(), streamed::append);
            String what = spec.drafts().description() + ", " + c;
            assertArrayEquals(plain.tokens(), r.generation().tokens(), what);
            assertEquals(plain.text(), r.generation().text(), what);
            assertEquals(plain.text(), streamed.toString(), what);
            assertEquals(plain.reason(), r.generation().reason(), what);
            if (plain.tokens().length == c.length()) {
                fullLength++;
            }
            drafted += r.stats().drafted();
            accepted += r.stats().accepted();
        }
        assertTrue(fullLength >= 3, "too few generations reached their length");
        return new SpeculationStats(0, 0, drafted, accepted, 0, 0);
    }

    @Test
    void greedyWithQ8DraftIsTheTargetsGreedyOutput() {
        SpeculationStats s = assertGreedyIdentity(new SpeculativeGenerator(target.transformer(), target.tokenizer(),
                new DraftModel(q8, 0), SpeculativeParams.DEFAULTS));
        assertTrue(s.acceptanceRate() > 0.5, "Q8_0 draft acceptance " + s.acceptanceRate());
    }

    @Test
    void greedyWithItselfAsDraftAcceptsEverything() {
        SpeculationStats s = assertGreedyIdentity(new SpeculativeGenerator(target.transformer(), target.tokenizer(),
                new DraftModel(target, 0), new SpeculativeParams(8, 0)));
        assertTrue(s.drafted() > 800, "drafted only " + s.drafted());
        assertEquals(s.drafted(), s.accepted(), "self-drafting must be accepted in full");
    }

    @Test
    void greedyWithNgramLookupIsTheTargetsGreedyOutput() {
        SpeculationStats s = assertGreedyIdentity(SpeculativeGenerator.withNgramLookup(target, 3,
                new SpeculativeParams(4, 0)));
        assertTrue(s.accepted() > 0, "n-gram lookup never accepted");
    }

    @Test
    void greedyIdentityForDraftLengthsPMinAndDraftMin() {
        List<Case> cases = List.of(CASES.get(3));
        for (SpeculativeParams p : List.of(new SpeculativeParams(1, 0), new SpeculativeParams(3, 2),
                new SpeculativeParams(5, 5))) {
            for (double pMin : new double[] {0, 0.6}) {
                SpeculativeGenerator spec = new SpeculativeGenerator(target.transformer(), target.tokenizer(),
                        new DraftModel(q8, pMin), p);
                for (Case c : cases) {
                    SpeculativeResult r = spec.generate(c.prompt(), c.params(), s -> { });
                    assertArrayEquals(plain(c).tokens(), r.generation().tokens(), p + ", p-min " + pMin + ", " + c);
                }
            }
        }
    }

    @Test
    void stopStringsZeroTokensAndFullContextAsPlainGeneration() {
        SpeculativeGenerator spec = SpeculativeGenerator.withDraftModel(target, q8, 0, new SpeculativeParams(6, 0));
        List<GenerationParams> cases = new ArrayList<>();
        cases.add(new GenerationParams(200, SamplingParams.greedy(), List.of("park", "."), null, false));
        cases.add(new GenerationParams(200, SamplingParams.greedy(), List.of("Lily"), null, false));
        cases.add(GenerationParams.greedy(0));
        cases.add(GenerationParams.greedy(1));
        cases.add(GenerationParams.greedy(2));
        for (GenerationParams params : cases) {
            GenerationResult plain = target.generator().generate("Once upon a time", params, s -> { });
            SpeculativeResult r = spec.generate("Once upon a time", params, s -> { });
            assertArrayEquals(plain.tokens(), r.generation().tokens(), params.toString());
            assertEquals(plain.text(), r.generation().text(), params.toString());
            assertEquals(plain.reason(), r.generation().reason(), params.toString());
        }
        // A 96-token context: proposals shrink near its end, and generation ends as plain generation does.
        SpeculativeGenerator shortSpec = SpeculativeGenerator.withDraftModel(shortContext, q8, 0,
                SpeculativeParams.DEFAULTS);
        GenerationParams params = new Case("Once upon a time", 200, true).params();
        GenerationResult plain = shortContext.generator().generate("Once upon a time", params, s -> { });
        SpeculativeResult r = shortSpec.generate("Once upon a time", params, s -> { });
        assertEquals(StopReason.CONTEXT_FULL, plain.reason());
        assertArrayEquals(plain.tokens(), r.generation().tokens());
        assertEquals(plain.reason(), r.generation().reason());
    }

    @Test
    void samplingWithItselfAsDraftAcceptsNearlyEverything() {
        SpeculativeGenerator spec = new SpeculativeGenerator(target.transformer(), target.tokenizer(),
                new DraftModel(target, 0), new SpeculativeParams(6, 0));
        GenerationParams params = new GenerationParams(300, SamplingParams.defaults(5), List.of(), null, false);
        SpeculativeResult a = spec.generate("Once upon a time", params, s -> { });
        SpeculativeResult b = spec.generate("Once upon a time", params, s -> { });
        assertArrayEquals(a.generation().tokens(), b.generation().tokens(), "same seed, same tokens");
        assertTrue(a.stats().drafted() > 50);
        // p and q are the same model through the same transform; only batched-vs-single rounding differs.
        assertTrue(a.stats().acceptanceRate() > 0.97, "acceptance " + a.stats().acceptanceRate());
        SpeculativeResult ngram = SpeculativeGenerator.withNgramLookup(target, 2, SpeculativeParams.DEFAULTS)
                .generate("Once upon a time", params, s -> { });
        assertTrue(ngram.generation().tokens().length > 0);
    }

    @Test
    void targetCacheRollsBackRejectedTokens() {
        Transformer t = target.transformer();
        int vocab = t.config().vocabSize();
        int[] prompt = {1, 403, 407, 261, 378};
        int[] rejected = {30, 31, 32, 33, 34, 35};
        int[] after = {99, 100, 101};
        float[] expected;
        try (KvCache fresh = t.newCache(1, 64, DType.F32)) {
            t.forward(Batch.ofSequence(0, 0, prompt), fresh);
            expected = t.forward(Batch.ofSequenceAllLogits(0, prompt.length, after), fresh).toFloatArray();
        }
        try (KvCache cache = t.newCache(1, 64, DType.F32)) {
            t.forward(Batch.ofSequence(0, 0, prompt), cache);
            t.forward(Batch.ofSequenceAllLogits(0, prompt.length, rejected), cache);
            assertEquals(prompt.length + rejected.length, cache.length(0));
            cache.truncate(0, prompt.length);
            assertEquals(prompt.length, cache.length(0));
            float[] actual = t.forward(Batch.ofSequenceAllLogits(0, prompt.length, after), cache).toFloatArray();
            assertEquals(after.length * vocab, actual.length);
            assertArrayEquals(expected, actual, "logits after a rollback differ from a cache that never saw "
                    + "the rejected tokens");
        }
    }

    @Test
    void draftModelRollsBackToTheAcceptedContext() {
        DraftModel source = new DraftModel(q8, 0);
        int[] promptIds = target.tokenizer().encode("Once upon a time");
        try (Drafter drafter = source.open(256, SamplingParams.greedy())) {
            TokenHistory context = new TokenHistory(promptIds);
            drafter.prefill(context);
            Draft first = drafter.propose(context, 8);
            assertEquals(8, first.size());
            // Accept two tokens, then the target disagrees: the drafter must forget the other five it evaluated.
            context.add(first.token(0));
            context.add(first.token(1));
            context.add(first.token(2) == 42 ? 43 : 42);
            Draft second = drafter.propose(context, 8);
            // And again from further back than the cache holds (a shorter context).
            TokenHistory shorter = new TokenHistory(context.range(0, promptIds.length + 1));
            Draft third = drafter.propose(shorter, 8);
            try (Drafter fresh = source.open(256, SamplingParams.greedy())) {
                assertArrayEquals(fresh.propose(context, 8).tokens(), second.tokens());
            }
            try (Drafter fresh = source.open(256, SamplingParams.greedy())) {
                assertArrayEquals(fresh.propose(shorter, 8).tokens(), third.tokens());
            }
        }
    }

    @Test
    void incompatibleDraftIsRefused() {
        try (Model other = Model.open(SharedData.file("models/llama-2-tiny-random.gguf"), null, backend)) {
            IncompatibleVocabularyException e = assertThrows(IncompatibleVocabularyException.class,
                    () -> SpeculativeGenerator.withDraftModel(target, other, 0, SpeculativeParams.DEFAULTS));
            assertTrue(e.getMessage().contains("the target has 512 tokens, the draft 32000"), e.getMessage());
        }
    }
}
