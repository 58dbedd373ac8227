package dev.isthmus.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.serving.EngineConfig;
import dev.isthmus.engine.serving.SpeculationConfig;
import dev.isthmus.engine.serving.Stories;
import dev.isthmus.engine.speculative.DraftModel;
import dev.isthmus.engine.speculative.IncompatibleVocabularyException;
import dev.isthmus.engine.speculative.NgramLookup;
import dev.isthmus.engine.speculative.SpeculativeParams;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code isthmus serve --draft-model} and {@code --lookup-ngram}: concurrent greedy requests (completions and
 * chat, streamed and not) must return exactly the text a server without speculation returns, with the
 * acceptance in {@code /metrics} and {@code usage}.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SpeculativeServingTest {
    private static final int REQUESTS = 8;

    private static Stories stories;
    private static final List<String> bodies = new ArrayList<>();
    private static final List<String> paths = new ArrayList<>();
    /** Each request's text from a server that does not speculate, asked one request at a time. */
    private static final List<String> plainTexts = new ArrayList<>();
    private static String plainMetrics;
    private static JsonNode plainUsage;

    @BeforeAll
    static void servePlainly() {
        stories = new Stories();
        List<String> prompts = Stories.prompts(REQUESTS, 2027);
        for (int i = 0; i < REQUESTS; i++) {
            boolean chat = i % 4 >= 2;
            ObjectNode r = TestServer.JSON.createObjectNode().put("model", TestServer.MODEL).put("temperature", 0)
                    .put("max_tokens", 40 + 15 * i).put("stream", i % 2 == 1);
            if (chat) {
                r.putArray("messages").addObject().put("role", "user").put("content", prompts.get(i));
            } else {
                r.put("prompt", prompts.get(i));
            }
            bodies.add(r.toString());
            paths.add(chat ? "/v1/chat/completions" : "/v1/completions");
        }
        try (TestServer plain = new TestServer(stories, config(), 1 << 20)) {
            for (int i = 0; i < REQUESTS; i++) {
                plainTexts.add(text(plain, i));
            }
            plainUsage = plain.post(paths.getFirst(), bodies.getFirst()).body().get("usage");
            plainMetrics = plain.get("/metrics").raw().body();
        }
    }

    @AfterAll
    static void close() {
        stories.close();
    }

    /** The defaults of {@code isthmus serve} (F16 KV cache), with a batch for all the requests. */
    private static EngineConfig config() {
        return EngineConfig.defaults().withMaxBatch(REQUESTS);
    }

    private static String text(TestServer server, int i) {
        if (bodies.get(i).contains("\"stream\":true")) {
            return TestServer.text(server.stream(paths.get(i), bodies.get(i)));
        }
        TestServer.Reply r = server.post(paths.get(i), bodies.get(i));
        assertEquals(200, r.status(), r.raw().body());
        JsonNode choice = r.body().path("choices").get(0);
        JsonNode details = r.body().at("/usage/completion_tokens_details");
        assertEquals(server.engine.speculative(), details.path("accepted_prediction_tokens").isInt(),
                "prediction tokens in usage iff the server speculates: " + r.body());
        return choice.has("text") ? choice.get("text").asText() : choice.path("message").path("content").asText();
    }

    /** A Prometheus counter's value in a {@code /metrics} body. */
    private static long counter(String metrics, String name) {
        Matcher m = Pattern.compile("(?m)^" + name + " (\\d+)$").matcher(metrics);
        assertTrue(m.find(), name + " in\n" + metrics);
        return Long.parseLong(m.group(1));
    }

    private static void assertServesThePlainTextsConcurrently(SpeculationConfig speculation) throws Exception {
        try (TestServer server = new TestServer(stories, config(), speculation, 1 << 20)) {
            CountDownLatch go = new CountDownLatch(1);
            List<Future<String>> texts = new ArrayList<>();
            try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
                for (int i = 0; i < REQUESTS; i++) {
                    int k = i;
                    texts.add(clients.submit(() -> {
                        go.await();
                        return text(server, k);
                    }));
                }
                go.countDown();
                for (int i = 0; i < REQUESTS; i++) {
                    assertEquals(plainTexts.get(i), texts.get(i).get(60, TimeUnit.SECONDS), "request " + i + " "
                            + bodies.get(i));
                }
            }
            server.awaitIdle();
            String metrics = server.get("/metrics").raw().body();
            long drafted = counter(metrics, "isthmus_speculative_draft_tokens_total");
            long accepted = counter(metrics, "isthmus_speculative_accepted_tokens_total");
            assertTrue(accepted > 0 && drafted >= accepted, "drafted " + drafted + ", accepted " + accepted);
            assertTrue(counter(metrics, "isthmus_speculative_drafts_total") > 0);
            assertEquals(0, server.engine.stats().kv().used(), "every KV block back in the pool");
        }
    }

    @Test
    void aDraftModelServesThePlainGreedyTexts() throws Exception {
        // As `serve --draft-model Q8` with the default --draft-max 16 and --draft-p-min 0.75.
        assertServesThePlainTextsConcurrently(new SpeculationConfig(new DraftModel(stories.draft(), 0.75),
                SpeculativeParams.DEFAULTS));
    }

    @Test
    void ngramLookupServesThePlainGreedyTexts() throws Exception {
        assertServesThePlainTextsConcurrently(new SpeculationConfig(new NgramLookup(3), SpeculativeParams.DEFAULTS));
    }

    @Test
    void aServerWithoutSpeculationReportsNone() {
        assertFalse(plainMetrics.contains("isthmus_speculative"), plainMetrics);
        assertTrue(plainUsage.path("completion_tokens_details").isMissingNode(), plainUsage.toString());
    }

    @Test
    void aDraftWithAnotherVocabularyIsRefusedAtStartup() {
        try (Model other = Model.open(SharedData.file("models/llama-2-tiny-random.gguf"), null, stories.backend)) {
            SpeculationConfig spec = new SpeculationConfig(new DraftModel(other, 0), SpeculativeParams.DEFAULTS);
            IncompatibleVocabularyException e = assertThrows(IncompatibleVocabularyException.class,
                    () -> new TestServer(stories, config(), spec, 1 << 20).close());
            assertEquals("draft vocabulary differs from the target's: the target has 512 tokens, the draft 32000; "
                    + "speculative decoding needs a draft model with the target's tokenizer", e.getMessage());
        }
    }
}
