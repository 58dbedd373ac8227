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

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Request and response shapes against fixtures written from the OpenAI API reference; errors; limits. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OpenAiProtocolTest {
    private static final Set<String> PINNED = Set.of("object", "role", "type", "code");
    private static final long MAX_BODY = 64 * 1024;
    private static Stories stories;
    private static TestServer server;

    @BeforeAll
    static void start() {
        stories = new Stories();
        server = new TestServer(stories, EngineConfig.defaults().withKvMemory(16, 0, DType.F32), MAX_BODY);
    }

    @AfterAll
    static void stop() {
        server.close();
        stories.close();
    }

    static JsonNode fixture(String name) {
        try (InputStream in = OpenAiProtocolTest.class.getResourceAsStream("/fixtures/" + name)) {
            assertNotNull(in, "fixture " + name);
            return TestServer.JSON.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String requestFixture(String name) {
        ObjectNode r = (ObjectNode) fixture(name);
        r.put("model", TestServer.MODEL);
        return r.toString();
    }

    /** Every field of {@code expected} is in {@code actual} with the same JSON type; pinned fields also by value. */
    static void assertShape(JsonNode expected, JsonNode actual, String path) {
        assertNotNull(actual, path + " is missing");
        if (expected.isObject()) {
            assertTrue(actual.isObject(), path + " should be an object: " + actual);
            for (Map.Entry<String, JsonNode> e : expected.properties()) {
                String p = path + "." + e.getKey();
                assertTrue(actual.has(e.getKey()), p + " is missing in " + actual);
                assertShape(e.getValue(), actual.get(e.getKey()), p);
                if (PINNED.contains(e.getKey())) {
                    assertEquals(e.getValue(), actual.get(e.getKey()), p);
                }
            }
        } else if (expected.isArray()) {
            assertTrue(actual.isArray(), path + " should be an array: " + actual);
            assertEquals(expected.isEmpty(), actual.isEmpty(), path + " emptiness");
            for (JsonNode a : actual) {
                assertShape(expected.get(0), a, path + "[]");
            }
        } else {
            assertEquals(expected.getNodeType(), actual.getNodeType(), path + " type: " + actual);
            if (expected.isNumber()) {
                assertEquals(expected.isIntegralNumber(), actual.isIntegralNumber(), path + " integral: " + actual);
            }
        }
    }

    @Test
    void completionsMatchTheReference() {
        TestServer.Reply r = server.post("/v1/completions", requestFixture("completions.request.json"));
        assertEquals(200, r.status(), r.raw().body());
        assertShape(fixture("completions.response.json"), r.body(), "$");
        assertEquals(TestServer.MODEL, r.body().get("model").asText());
        assertTrue(r.body().get("id").asText().startsWith("cmpl-"));
        JsonNode usage = r.body().get("usage");
        assertEquals(usage.get("prompt_tokens").asInt() + usage.get("completion_tokens").asInt(),
                usage.get("total_tokens").asInt());
        assertEquals(7, usage.get("completion_tokens").asInt());
        assertEquals("length", r.body().at("/choices/0/finish_reason").asText());
    }

    @Test
    void completionStreamChunksMatchTheReference() {
        List<JsonNode> events = server.stream("/v1/completions", requestFixture("completions.stream.request.json"));
        assertTrue(events.size() >= 2);
        for (JsonNode e : events.subList(0, events.size() - 1)) {
            assertShape(fixture("completions.chunk.json"), e, "$");
        }
        ObjectNode last = (ObjectNode) fixture("completions.chunk.json");
        ((ObjectNode) last.get("choices").get(0)).put("finish_reason", "length");
        assertShape(last, events.getLast(), "last");
        assertEquals("length", events.getLast().at("/choices/0/finish_reason").asText());
        String whole = server.post("/v1/completions", requestFixture("completions.request.json")).body()
                .at("/choices/0/text").asText();
        assertEquals(whole, TestServer.text(events), "streamed text equals the non-streamed text");
    }

    @Test
    void chatCompletionsMatchTheReference() {
        TestServer.Reply r = server.post("/v1/chat/completions", requestFixture("chat.request.json"));
        assertEquals(200, r.status(), r.raw().body());
        assertShape(fixture("chat.response.json"), r.body(), "$");
        assertTrue(r.body().get("id").asText().startsWith("chatcmpl-"));
        assertTrue(r.body().at("/usage/completion_tokens").asInt() <= 20);
    }

    @Test
    void chatStreamChunksMatchTheReference() {
        // Greedy, so that the streamed and the whole answer can be compared.
        ObjectNode streamed = (ObjectNode) TestServer.JSON.valueToTree(fixture("chat.stream.request.json"));
        streamed.put("model", TestServer.MODEL).put("temperature", 0);
        ObjectNode plain = (ObjectNode) fixture("chat.request.json");
        plain.put("model", TestServer.MODEL).put("temperature", 0);
        List<JsonNode> events = server.stream("/v1/chat/completions", streamed.toString());
        assertTrue(events.size() >= 3, "role chunk, finish chunk and usage chunk at least");
        assertShape(fixture("chat.chunk.first.json"), events.getFirst(), "first");
        for (JsonNode e : events.subList(1, events.size() - 2)) {
            assertShape(fixture("chat.chunk.json"), e, "content");
        }
        assertShape(fixture("chat.chunk.last.json"), events.get(events.size() - 2), "last");
        JsonNode usage = events.getLast();
        assertShape(fixture("chat.chunk.usage.json"), usage, "usage");
        TestServer.Reply whole = server.post("/v1/chat/completions", plain.toString());
        assertEquals(whole.body().at("/choices/0/message/content").asText(), TestServer.text(events));
        assertEquals(whole.body().at("/usage/completion_tokens").asInt(), usage.at("/usage/completion_tokens").asInt());
    }

    @Test
    void modelsMatchTheReference() {
        TestServer.Reply r = server.get("/v1/models");
        assertEquals(200, r.status());
        assertShape(fixture("models.response.json"), r.body(), "$");
        assertEquals(TestServer.MODEL, r.body().at("/data/0/id").asText());
        assertEquals(200, server.get("/v1/models/" + TestServer.MODEL).status());
        assertError(server.get("/v1/models/nope"), 404, "error.model_not_found.json");
    }

    private static void assertError(TestServer.Reply r, int status, String fixture) {
        assertEquals(status, r.status(), r.raw().body());
        assertShape(fixture(fixture), r.body(), "$");
        assertFalse(r.body().at("/error/message").asText().isBlank());
    }

    @Test
    void badJsonIsA400() {
        assertError(server.post("/v1/chat/completions", "{\"model\": \"stories260K\", \"messages\": [}"), 400,
                "error.bad_json.json");
        assertError(server.post("/v1/completions", "not json at all"), 400, "error.bad_json.json");
    }

    @Test
    void unknownModelIsA404() {
        ObjectNode r = (ObjectNode) fixture("chat.request.json");
        r.put("model", "gpt-5-turbo");
        assertError(server.post("/v1/chat/completions", r.toString()), 404, "error.model_not_found.json");
    }

    @Test
    void tooLongPromptIsContextLengthExceeded() {
        StringBuilder prompt = new StringBuilder();
        for (int i = 0; i < 3000; i++) {
            prompt.append(" the dog");
        }
        ObjectNode chat = TestServer.JSON.createObjectNode().put("model", TestServer.MODEL);
        chat.putArray("messages").addObject().put("role", "user").put("content", prompt.toString());
        assertError(server.post("/v1/chat/completions", chat.toString()), 400, "error.context_length_exceeded.json");
        ObjectNode completion = TestServer.JSON.createObjectNode().put("model", TestServer.MODEL)
                .put("prompt", "Once upon a time").put("max_tokens", 5000);
        TestServer.Reply r = server.post("/v1/completions", completion.toString());
        assertEquals(400, r.status());
        assertEquals("context_length_exceeded", r.body().at("/error/code").asText());
        assertEquals("prompt", r.body().at("/error/param").asText());
    }

    @Test
    void oversizeBodyIsA413() {
        String big = "{\"model\":\"stories260K\",\"prompt\":\"" + "a".repeat((int) MAX_BODY * 2) + "\"}";
        assertError(server.post("/v1/completions", big), 413, "error.request_too_large.json");
        // The connection survives for the next request.
        assertEquals(200, server.get("/health").status());
    }

    @Test
    void badParametersAre400sNamingTheParameter() {
        TestServer.Reply r = server.post("/v1/completions",
                "{\"model\":\"stories260K\",\"prompt\":\"Hi\",\"temperature\":\"hot\"}");
        assertEquals(400, r.status());
        assertEquals("temperature", r.body().at("/error/param").asText());
        r = server.post("/v1/chat/completions", "{\"model\":\"stories260K\",\"messages\":[]}");
        assertEquals(400, r.status());
        assertEquals("messages", r.body().at("/error/param").asText());
        r = server.post("/v1/completions", "{\"model\":\"stories260K\",\"prompt\":\"Hi\",\"n\":3}");
        assertEquals(400, r.status());
        assertEquals(404, server.get("/v1/nothing").status());
    }

    @Test
    void healthAndMetrics() {
        server.post("/v1/completions", requestFixture("completions.request.json"));
        TestServer.Reply h = server.get("/health");
        assertEquals(200, h.status());
        assertEquals("ok", h.body().get("status").asText());
        TestServer.Reply m = server.get("/metrics");
        assertEquals(200, m.status());
        String text = m.raw().body();
        for (String metric : List.of("isthmus_queue_depth ", "isthmus_active_sequences ", "isthmus_kv_blocks_used ",
                "isthmus_kv_blocks_total ", "isthmus_generation_tokens_per_second ",
                "isthmus_time_to_first_token_seconds_bucket{le=\"+Inf\"} ", "isthmus_time_to_first_token_seconds_count ",
                "# TYPE isthmus_time_to_first_token_seconds histogram")) {
            assertTrue(text.contains(metric), metric + " in\n" + text);
        }
    }

    @Test
    void disconnectingCancelsTheSequenceAndFreesItsBlocks() throws Exception {
        server.awaitIdle();
        long before = server.engine.stats().generatedTokens();
        String body = TestServer.JSON.createObjectNode().put("model", TestServer.MODEL).put("prompt", "Once upon a time")
                .put("max_tokens", 1900).put("ignore_eos", true).put("stream", true).toString();
        HttpRequest req = HttpRequest.newBuilder(server.uri("/v1/completions")).timeout(Duration.ofSeconds(30))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
        HttpResponse<InputStream> r = server.client.send(req, HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        InputStream in = r.body();
        byte[] buf = new byte[256];
        int got = 0;
        while (got < 600) {
            int n = in.read(buf);
            if (n < 0) {
                fail("stream ended early");
            }
            got += n;
        }
        assertTrue(server.engine.stats().running() == 1 || server.engine.stats().kv().used() > 0);
        in.close();
        server.awaitIdle();
        var stats = server.engine.stats();
        assertEquals(0, stats.running(), "the sequence stopped");
        assertEquals(0, stats.kv().used(), "its blocks are back");
        assertTrue(stats.generatedTokens() - before < 1900, "generation stopped early");
    }
}
