package dev.isthmus.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.api.DType;
import dev.isthmus.engine.serving.EngineConfig;
import dev.isthmus.engine.serving.Stories;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The acceptance test: 32 concurrent streaming requests over HTTP, each identical to itself run alone. */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ConcurrentStreamingTest {
    private static Stories stories;
    private static TestServer server;

    @BeforeAll
    static void start() {
        stories = new Stories();
        server = new TestServer(stories, EngineConfig.defaults().withMaxBatch(32).withMaxBatchTokens(256)
                .withKvMemory(16, 0, DType.F32), 1 << 20);
    }

    @AfterAll
    static void stop() {
        server.close();
        stories.close();
    }

    private static String request(String prompt, int maxTokens, boolean chat) {
        ObjectNode r = TestServer.JSON.createObjectNode().put("model", TestServer.MODEL).put("temperature", 0)
                .put("max_tokens", maxTokens).put("stream", true);
        if (chat) {
            r.putArray("messages").addObject().put("role", "user").put("content", prompt);
        } else {
            r.put("prompt", prompt);
        }
        return r.toString();
    }

    @Test
    void thirtyTwoConcurrentStreamsEqualEachRunAlone() throws Exception {
        List<String> prompts = Stories.prompts(32, 2026);
        List<String> bodies = new ArrayList<>();
        List<String> paths = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            boolean chat = i % 3 == 2;
            bodies.add(request(prompts.get(i), 8 + (i * 13) % 56, chat));
            paths.add(chat ? "/v1/chat/completions" : "/v1/completions");
        }
        // Alone: one at a time.
        List<String> alone = new ArrayList<>();
        for (int i = 0; i < bodies.size(); i++) {
            alone.add(TestServer.text(server.stream(paths.get(i), bodies.get(i))));
        }
        server.awaitIdle();
        long stepsBefore = server.engine.stats().steps();
        long tokensBefore = server.engine.stats().generatedTokens();

        // Together: 32 clients released at once.
        CountDownLatch go = new CountDownLatch(1);
        List<Future<List<JsonNode>>> futures = new ArrayList<>();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < bodies.size(); i++) {
                int k = i;
                futures.add(pool.submit(() -> {
                    go.await();
                    return server.stream(paths.get(k), bodies.get(k));
                }));
            }
            go.countDown();
            for (int i = 0; i < bodies.size(); i++) {
                List<JsonNode> events = futures.get(i).get(60, TimeUnit.SECONDS);
                assertEquals(alone.get(i), TestServer.text(events), "request " + i + " " + bodies.get(i));
                JsonNode last = events.getLast();
                assertTrue(last.path("choices").get(0).path("finish_reason").isTextual(), "ends with a finish reason");
                String id = events.getFirst().get("id").asText();
                for (JsonNode e : events) {
                    assertEquals(id, e.get("id").asText(), "one id per stream");
                }
            }
        }
        server.awaitIdle();
        var stats = server.engine.stats();
        assertEquals(0, stats.kv().used(), "all KV blocks back in the pool: " + stats);
        assertEquals(0, stats.running());
        long passes = stats.steps() - stepsBefore;
        long tokens = stats.generatedTokens() - tokensBefore;
        assertTrue(passes * 4 < tokens, "requests shared forward passes: " + passes + " passes for " + tokens
                + " tokens");
    }
}
