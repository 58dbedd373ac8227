package dev.isthmus.server;

import dev.isthmus.api.DType;
import dev.isthmus.engine.serving.EngineConfig;
import dev.isthmus.engine.serving.Stories;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Beyond the admission queue: 429 with Retry-After and an OpenAI error body. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AdmissionTest {
    @Test
    void beyondTheQueueIsA429WithRetryAfter() throws Exception {
        try (Stories stories = new Stories();
             TestServer server = new TestServer(stories, EngineConfig.defaults().withMaxBatch(1).withMaxQueue(1)
                     .withKvMemory(16, 0, DType.F32), 1 << 20)) {
            String longRequest = TestServer.JSON.createObjectNode().put("model", TestServer.MODEL)
                    .put("prompt", "Once").put("max_tokens", 200).put("ignore_eos", true).toString();
            List<CompletableFuture<TestServer.Reply>> replies = new ArrayList<>();
            ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor();
            for (int i = 0; i < 4; i++) {
                replies.add(CompletableFuture.supplyAsync(() -> server.post("/v1/completions", longRequest), clients));
            }
            TestServer.Reply refused = null;
            int ok = 0;
            for (CompletableFuture<TestServer.Reply> f : replies) {
                TestServer.Reply r = f.get(50, TimeUnit.SECONDS);
                if (r.status() == 429) {
                    refused = r;
                } else {
                    assertEquals(200, r.status(), r.raw().body());
                    ok++;
                }
            }
            clients.close();
            assertTrue(ok >= 1, "the first request is served");
            assertTrue(refused != null, "one running and one queued request fill the server");
            assertEquals("rate_limit_exceeded", refused.body().at("/error/code").asText());
            assertEquals("requests", refused.body().at("/error/type").asText());
            OpenAiProtocolTest.assertShape(OpenAiProtocolTest.fixture("error.rate_limit_exceeded.json"),
                    refused.body(), "$");
            int retry = Integer.parseInt(refused.raw().headers().firstValue("retry-after").orElseThrow());
            assertTrue(retry >= 1);
        }
    }
}
