package dev.isthmus.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.isthmus.engine.serving.Engine;
import dev.isthmus.engine.serving.EngineConfig;
import dev.isthmus.engine.serving.SpeculationConfig;
import dev.isthmus.engine.serving.Stories;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** stories260K behind an {@link OpenAiServer} on a loopback port, and an HTTP client for it. */
final class TestServer implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String MODEL = "stories260K";

    final Engine engine;
    final OpenAiServer server;
    final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    TestServer(Stories stories, EngineConfig config, long maxBody) {
        this(stories, config, null, maxBody);
    }

    /** A server whose engine speculates ({@code speculation == null}: does not). */
    TestServer(Stories stories, EngineConfig config, SpeculationConfig speculation, long maxBody) {
        engine = Engine.start(stories.model.transformer(), stories.model.tokenizer(), config, speculation);
        server = OpenAiServer.start(engine, ChatTemplate.forModel(stories.model, w -> { }),
                new OpenAiServer.Config("127.0.0.1", 0, MODEL, maxBody));
    }

    URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.port() + path);
    }

    record Reply(int status, JsonNode body, HttpResponse<String> raw) {
    }

    Reply post(String path, String body) {
        return send(HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build());
    }

    Reply get(String path) {
        return send(HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(30)).GET().build());
    }

    Reply send(HttpRequest request) {
        try {
            HttpResponse<String> r = client.send(request, HttpResponse.BodyHandlers.ofString());
            JsonNode body = null;
            String ct = r.headers().firstValue("content-type").orElse("");
            if (ct.startsWith("application/json")) {
                body = JSON.readTree(r.body());
            }
            return new Reply(r.statusCode(), body, r);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** The {@code data:} events of an SSE response up to {@code [DONE]} (excluded). */
    List<JsonNode> stream(String path, String body) {
        HttpRequest req = HttpRequest.newBuilder(uri(path)).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
        try {
            HttpResponse<Stream<String>> r = client.send(req, HttpResponse.BodyHandlers.ofLines());
            if (r.statusCode() != 200) {
                throw new AssertionError("status " + r.statusCode() + ": " + String.join("\n", r.body().toList()));
            }
            List<JsonNode> events = new ArrayList<>();
            boolean done = false;
            for (String line : (Iterable<String>) r.body()::iterator) {
                if (line.startsWith("data: ")) {
                    String data = line.substring(6);
                    if (data.equals("[DONE]")) {
                        done = true;
                        break;
                    }
                    events.add(JSON.readTree(data));
                }
            }
            if (!done) {
                throw new AssertionError("stream ended without [DONE]");
            }
            return events;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static String text(List<JsonNode> events) {
        StringBuilder b = new StringBuilder();
        for (JsonNode e : events) {
            for (JsonNode c : e.path("choices")) {
                if (c.has("text")) {
                    b.append(c.get("text").asText());
                } else if (c.path("delta").has("content")) {
                    b.append(c.path("delta").get("content").asText());
                }
            }
        }
        return b.toString();
    }

    void awaitIdle() throws InterruptedException {
        for (int i = 0; i < 1000; i++) {
            var s = engine.stats();
            if (s.running() == 0 && s.waiting() == 0 && s.kv().used() == 0) {
                return;
            }
            Thread.sleep(10);
        }
    }

    @Override
    public void close() {
        server.close();
        engine.close();
    }
}
