package dev.isthmus.engine.serving;

import dev.isthmus.api.DType;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.generation.StopReason;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.sampling.SamplingParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class EngineTest {
    private static Stories stories;

    @BeforeAll
    static void open() {
        stories = new Stories();
    }

    @AfterAll
    static void close() {
        stories.close();
    }

    private static EngineConfig f32() {
        return EngineConfig.defaults().withKvMemory(16, 0, DType.F32);
    }

    private static GenerationResult alone(String prompt, GenerationParams params) {
        return stories.model.generator().generate(prompt, params, s -> { });
    }

    @Test
    void singleRequestReproducesTheGoldenText() throws Exception {
        String expected = Files.readString(SharedData.file("golden/stories260K.greedy200.expected.txt"));
        try (Engine engine = Engine.start(stories.model, f32())) {
            Completion c = engine.complete(Request.greedy(engine.tokenize("", null, false), 200)).get();
            assertEquals(expected, c.text());
            assertEquals(200, c.tokens().length);
            assertEquals(StopReason.MAX_TOKENS, c.reason());
        }
    }

    @Test
    void concurrentRequestsEqualEachRunAlone() throws Exception {
        List<String> prompts = Stories.prompts(16, 7);
        List<GenerationResult> refs = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            refs.add(alone(prompts.get(i), GenerationParams.greedy(10 + 6 * i)));
        }
        try (Engine engine = Engine.start(stories.model, f32().withMaxBatch(8).withMaxBatchTokens(64))) {
            List<Submission> subs = new ArrayList<>();
            List<Collector> collectors = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                GenerationParams p = GenerationParams.greedy(10 + 6 * i);
                Submission s = engine.submit(Request.of(engine.tokenize(prompts.get(i), null, false), p));
                Collector c = new Collector();
                s.subscribe(c);
                subs.add(s);
                collectors.add(c);
            }
            for (int i = 0; i < prompts.size(); i++) {
                Completion c = subs.get(i).completion().get();
                GenerationResult ref = refs.get(i);
                assertArrayEquals(ref.tokens(), c.tokens(), "request " + i + ": " + prompts.get(i));
                assertEquals(ref.text(), c.text());
                collectors.get(i).done.await(10, TimeUnit.SECONDS);
                assertEquals(c.text(), collectors.get(i).text.toString(), "streamed text of request " + i);
                assertStreamedIds(c, collectors.get(i));
            }
            awaitIdle(engine);
            assertEquals(0, engine.stats().kv().used(), "every KV block back in the pool");
        }
    }

    @Test
    void preemptionUnderATinyPoolKeepsTheOutput() throws Exception {
        List<String> prompts = Stories.prompts(8, 11);
        List<int[]> refs = new ArrayList<>();
        for (String p : prompts) {
            refs.add(alone(p, GenerationParams.greedy(60)).tokens());
        }
        var cfg = stories.model.config();
        long blockBytes = KvCache.Options.bytesPerBlock(cfg.layers(), cfg.kvDim(), 4, DType.F32);
        EngineConfig tiny = f32().withMaxBatch(8).withKvMemory(4, blockBytes * 40, DType.F32);
        try (Engine engine = Engine.start(stories.model, tiny)) {
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (String p : prompts) {
                futures.add(engine.complete(Request.of(engine.tokenize(p, null, false), GenerationParams.greedy(60))));
            }
            for (int i = 0; i < prompts.size(); i++) {
                Completion c = futures.get(i).get();
                assertArrayEquals(refs.get(i), c.tokens(),
                        "request " + i);
            }
            awaitIdle(engine);
            assertTrue(engine.stats().preemptions() > 0, "the pool was too small for all: " + engine.stats());
            assertEquals(0, engine.stats().kv().used());
        }
    }

    @Test
    void sixteenRequestsShareOneSystemPromptsBlocks() throws Exception {
        StringBuilder text = new StringBuilder();
        for (String p : Stories.prompts(40, 99)) {
            text.append(p).append(' ');
        }
        int[] all = stories.model.tokenizer().encode(text.toString(), true, false);
        int[] system = java.util.Arrays.copyOf(all, 256);
        try (Engine engine = Engine.start(stories.model, f32())) {
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            List<int[]> prompts = new ArrayList<>();
            for (int i = 0; i < 16; i++) {
                int[] user = stories.model.tokenizer().encode(" Tom said " + i + " times hello", false, false);
                int[] prompt = java.util.Arrays.copyOf(system, 256 + user.length);
                System.arraycopy(user, 0, prompt, 256, user.length);
                prompts.add(prompt);
                futures.add(engine.complete(Request.greedy(prompt, 8)));
            }
            long expectedAllocated = 16; // the system prompt's blocks, once
            for (int i = 0; i < 16; i++) {
                Completion c = futures.get(i).get();
                int cached = prompts.get(i).length + c.tokens().length - 1;
                expectedAllocated += (cached + 15) / 16 - 16;
                assertEquals(i == 0 ? 0 : 256, c.cachedPromptTokens(), "request " + i);
            }
            awaitIdle(engine);
            KvCache.Stats kv = engine.stats().kv();
            assertEquals(15 * 16, kv.prefixHitBlocks(), "15 requests took the prefix's 16 blocks: " + kv);
            assertEquals(expectedAllocated, kv.allocated(), "the prefix was computed once: " + kv);
            assertEquals(0, kv.used());
        }
    }

    @Test
    void seededSamplingDoesNotDependOnTheBatch() throws Exception {
        List<String> prompts = Stories.prompts(6, 3);
        SamplingParams sampling = SamplingParams.defaults(42);
        List<int[]> refs = new ArrayList<>();
        for (String p : prompts) {
            refs.add(alone(p, new GenerationParams(40, sampling, List.of(), null, false)).tokens());
        }
        try (Engine engine = Engine.start(stories.model, f32())) {
            List<CompletableFuture<Completion>> futures = new ArrayList<>();
            for (String p : prompts) {
                futures.add(engine.complete(new Request(engine.tokenize(p, null, false), 40, sampling, List.of(), false)));
            }
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(refs.get(i), futures.get(i).get().tokens(), "request " + i);
            }
        }
    }

    @Test
    void stopStringsCutTheTextAsTheGeneratorDoes() throws Exception {
        GenerationParams p = new GenerationParams(100, SamplingParams.greedy(), List.of("Lily"), null, false);
        GenerationResult ref = alone("Once upon a time", p);
        try (Engine engine = Engine.start(stories.model, f32())) {
            Submission s = engine.submit(Request.of(engine.tokenize("Once upon a time", null, false), p));
            Collector col = new Collector();
            s.subscribe(col);
            Completion c = s.completion().get();
            assertEquals(ref.text(), c.text());
            assertEquals(StopReason.STOP_STRING, c.reason());
            assertTrue(col.done.await(5, TimeUnit.SECONDS));
            assertEquals(c.text(), col.text.toString());
        }
    }

    @Test
    void cancellationStopsTheSequenceAndFreesItsBlocks() throws Exception {
        try (Engine engine = Engine.start(stories.model, f32())) {
            Request r = new Request(engine.tokenize("Once upon a time", null, false), 1900, SamplingParams.greedy(),
                    List.of(), true);
            Submission s = engine.submit(r);
            Collector col = new Collector();
            col.cancelAfter = 5;
            s.subscribe(col);
            assertThrows(CancellationException.class, () -> s.completion().join());
            awaitIdle(engine);
            assertEquals(0, engine.stats().kv().used());
            assertTrue(engine.stats().generatedTokens() < 1900);
        }
    }

    @Test
    void aFullQueueRefusesWithRetryAfter() {
        try (Engine engine = Engine.start(stories.model, f32().withMaxBatch(1).withMaxQueue(2))) {
            Request r = new Request(engine.tokenize("Once", null, false), 1500, SamplingParams.greedy(), List.of(), true);
            List<Submission> accepted = new ArrayList<>();
            EngineOverloadedException refused = null;
            for (int i = 0; i < 5 && refused == null; i++) {
                try {
                    accepted.add(engine.submit(r));
                } catch (EngineOverloadedException e) {
                    refused = e;
                }
            }
            assertTrue(refused != null, "five long requests fit a queue of two behind a batch of one");
            assertTrue(refused.retryAfterSeconds() >= 1);
            assertEquals(1, engine.stats().rejected());
            accepted.forEach(Submission::cancel);
        }
    }

    @Test
    void promptsBeyondTheContextAreRefused() {
        try (Engine engine = Engine.start(stories.model, f32())) {
            int[] tooLong = new int[engine.contextLength()];
            java.util.Arrays.fill(tooLong, 300);
            assertThrows(IllegalArgumentException.class, () -> engine.submit(Request.greedy(tooLong, 1)));
        }
    }

    static void assertStreamedIds(Completion c, Collector col) {
        List<Integer> ids = new ArrayList<>();
        for (Token t : col.tokens) {
            if (t.id() != Token.NONE) {
                assertEquals(ids.size(), t.index(), "token indices are consecutive");
                ids.add(t.id());
            }
        }
        int expected = c.reason() == StopReason.END_OF_TEXT ? c.tokens().length - 1 : c.tokens().length;
        assertEquals(expected, ids.size(), "each generated token streamed once");
        for (int i = 0; i < ids.size(); i++) {
            assertEquals(c.tokens()[i], ids.get(i));
        }
    }

    static void awaitIdle(Engine engine) throws InterruptedException {
        for (int i = 0; i < 500 && (engine.stats().running() > 0 || engine.stats().waiting() > 0
                || engine.stats().kv().used() > 0); i++) {
            Thread.sleep(10);
        }
    }

    /** Collects a stream with bounded demand (two at a time), optionally cancelling after some tokens. */
    static final class Collector implements Flow.Subscriber<Token> {
        final List<Token> tokens = new CopyOnWriteArrayList<>();
        final StringBuilder text = new StringBuilder();
        final CountDownLatch done = new CountDownLatch(1);
        volatile Throwable error;
        int cancelAfter = -1;
        private Flow.Subscription subscription;
        private int pending;

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            pending = 2;
            s.request(2);
        }

        @Override
        public void onNext(Token item) {
            tokens.add(item);
            synchronized (text) {
                text.append(item.text());
            }
            if (tokens.size() == cancelAfter) {
                subscription.cancel();
                done.countDown();
                return;
            }
            if (--pending == 0) {
                pending = 2;
                subscription.request(2);
            }
        }

        @Override
        public void onError(Throwable t) {
            error = t;
            done.countDown();
        }

        @Override
        public void onComplete() {
            done.countDown();
        }
    }
}
