package dev.isthmus.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.engine.generation.StopReason;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.serving.Completion;
import dev.isthmus.engine.serving.Engine;
import dev.isthmus.engine.serving.EngineOverloadedException;
import dev.isthmus.engine.serving.Request;
import dev.isthmus.engine.serving.Submission;
import dev.isthmus.engine.serving.Token;
import dev.isthmus.engine.tokenizer.Tokenizer;
import io.helidon.http.HeaderNames;
import io.helidon.http.Status;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * An OpenAI-compatible HTTP server over an {@link Engine}: {@code /v1/completions},
 * {@code /v1/chat/completions} (both with SSE streaming), {@code /v1/models}, {@code /health} and
 * {@code /metrics} (Prometheus text). Requests run on virtual threads (Helidon SE); each becomes one
 * engine submission, so concurrent requests share batches.
 *
 * <p>Errors have OpenAI's body {@code {"error": {"message", "type", "param", "code"}}}: 400 for bad JSON,
 * bad parameters and prompts beyond the context ({@code context_length_exceeded}), 404 for an unknown
 * model ({@code model_not_found}) or path, 413 for a body over the limit, 429 with {@code Retry-After}
 * when the engine's admission queue is full. A streaming client that disconnects cancels its sequence
 * (the next write fails; while a request waits for its first token the server writes SSE comments to find
 * out), which frees its KV blocks.
 *
 * <p>With a speculating engine, {@code usage.completion_tokens_details} carries the proposed tokens the model
 * accepted and rejected ({@code accepted_prediction_tokens}, {@code rejected_prediction_tokens}, as OpenAI
 * reports predicted outputs), and {@code /metrics} the engine's totals.
 */
public final class OpenAiServer implements AutoCloseable {
    /** Server settings. */
    public record Config(String host, int port, String modelId, long maxBodyBytes) {
        public Config {
            if (host == null || host.isBlank() || port < 0 || port > 65535 || maxBodyBytes <= 0) {
                throw new IllegalArgumentException("bad server settings: host '" + host + "', port " + port
                        + ", body limit " + maxBodyBytes);
            }
        }
    }

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final String ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    private static final long KEEPALIVE_MILLIS = 500;

    private final Engine engine;
    private final Config config;
    private final ChatTemplate chatTemplate;
    private final long created = System.currentTimeMillis() / 1000;
    private final SecureRandom random = new SecureRandom();
    private final WebServer server;

    private OpenAiServer(Engine engine, ChatTemplate template, Config config) {
        this.engine = engine;
        this.config = config;
        this.chatTemplate = template;
        this.server = WebServer.builder()
                .host(config.host())
                .port(config.port())
                .routing(this::routing)
                .build();
    }

    /**
     * Starts serving. The engine stays the caller's.
     *
     * @param template the chat template (see {@link ChatTemplate#forModel})
     */
    public static OpenAiServer start(Engine engine, ChatTemplate template, Config config) {
        OpenAiServer s = new OpenAiServer(engine, template, config);
        s.server.start();
        return s;
    }

    /** The port listened on (useful with port 0). */
    public int port() {
        return server.port();
    }

    @Override
    public void close() {
        server.stop();
    }

    private void routing(HttpRouting.Builder r) {
        r.get("/health", (req, res) -> handle(res, () -> sendJson(res, 200, MAPPER.createObjectNode().put("status", "ok"))))
                .get("/metrics", (req, res) -> handle(res, () -> {
                    res.header(HeaderNames.CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
                    res.send(PrometheusMetrics.render(engine).getBytes(StandardCharsets.UTF_8));
                }))
                .get("/v1/models", (req, res) -> handle(res, () -> {
                    ObjectNode list = MAPPER.createObjectNode().put("object", "list");
                    list.putArray("data").add(modelObject());
                    sendJson(res, 200, list);
                }))
                .get("/v1/models/{id}", (req, res) -> handle(res, () -> {
                    String id = req.path().pathParameters().get("id");
                    if (!config.modelId().equals(id)) {
                        throw ApiError.unknownModel(id);
                    }
                    sendJson(res, 200, modelObject());
                }))
                .post("/v1/completions", (req, res) -> handle(res, () -> completions(req, res, false)))
                .post("/v1/chat/completions", (req, res) -> handle(res, () -> completions(req, res, true)))
                .any((req, res) -> handle(res, () -> {
                    throw ApiError.notFound(req.prologue().method().text(), req.path().path());
                }));
    }

    private ObjectNode modelObject() {
        return MAPPER.createObjectNode().put("id", config.modelId()).put("object", "model").put("created", created)
                .put("owned_by", "isthmus");
    }

    private interface Action {
        void run() throws Exception;
    }

    private void handle(ServerResponse res, Action action) {
        try {
            action.run();
        } catch (ApiError e) {
            sendError(res, e);
        } catch (Exception | Error e) {
            sendError(res, ApiError.server(e.toString()));
        }
    }

    // ---------------------------------------------------------------- completions

    private record Prepared(Request request, int promptTokens, boolean stream, boolean includeUsage, String echo) {
    }

    private void completions(ServerRequest req, ServerResponse res, boolean chat) throws Exception {
        JsonNode body = readJson(req);
        Prepared p = prepare(body, chat);
        Submission submission;
        try {
            submission = engine.submit(p.request());
        } catch (EngineOverloadedException e) {
            throw ApiError.overloaded("Too many requests are waiting (" + e.getMessage() + "); retry after "
                    + e.retryAfterSeconds() + " s.", e.retryAfterSeconds());
        } catch (IllegalArgumentException e) {
            throw ApiError.invalid(e.getMessage(), chat ? "messages" : "prompt", "context_length_exceeded");
        }
        String id = (chat ? "chatcmpl-" : "cmpl-") + randomId();
        long now = System.currentTimeMillis() / 1000;
        if (p.stream()) {
            stream(res, submission, p, chat, id, now);
        } else {
            Completion c;
            try {
                c = submission.completion().get();
            } catch (ExecutionException e) {
                throw ApiError.server("generation failed: " + e.getCause());
            } catch (InterruptedException e) {
                submission.cancel();
                throw e;
            }
            ObjectNode out = MAPPER.createObjectNode();
            out.put("id", id).put("object", chat ? "chat.completion" : "text_completion").put("created", now)
                    .put("model", config.modelId());
            ObjectNode choice = out.putArray("choices").addObject().put("index", 0);
            if (chat) {
                choice.putObject("message").put("role", "assistant").put("content", c.text()).putNull("refusal");
                choice.putNull("logprobs");
                choice.put("finish_reason", finishReason(c.reason()));
            } else {
                choice.put("text", (p.echo() != null ? p.echo() : "") + c.text());
                choice.putNull("logprobs");
                choice.put("finish_reason", finishReason(c.reason()));
            }
            out.set("usage", usage(p.promptTokens(), c));
            out.put("system_fingerprint", fingerprint());
            sendJson(res, 200, out);
        }
    }

    private Prepared prepare(JsonNode body, boolean chat) {
        String model = Json.string(body, "model");
        if (model != null && !model.equals(config.modelId())) {
            throw ApiError.unknownModel(model);
        }
        Integer n = Json.integer(body, "n");
        if (n != null && n != 1) {
            throw ApiError.invalid("Only n=1 is supported.", "n");
        }
        Integer bestOf = Json.integer(body, "best_of");
        if (bestOf != null && bestOf != 1) {
            throw ApiError.invalid("Only best_of=1 is supported.", "best_of");
        }
        JsonNode logprobs = body.get("logprobs");
        if (logprobs != null && !logprobs.isNull() && !(logprobs.isBoolean() && !logprobs.asBoolean())) {
            throw ApiError.invalid("logprobs are not supported.", "logprobs");
        }
        if (Json.present(body, "suffix")) {
            throw ApiError.invalid("suffix is not supported.", "suffix");
        }
        Tokenizer tok = engine.tokenizer();
        int[] prompt;
        String echo = null;
        String promptParam = chat ? "messages" : "prompt";
        if (chat) {
            String text = renderChat(body);
            String bosText = tok.bos() >= 0 ? tok.piece(tok.bos()) : null;
            boolean addBos = tok.addBosByDefault() && !(bosText != null && text.startsWith(bosText));
            prompt = tok.encode(text, addBos, true);
        } else {
            JsonNode pn = body.get("prompt");
            if (pn == null || pn.isNull()) {
                throw ApiError.invalid("you must provide a prompt parameter", "prompt");
            }
            if (pn.isArray() && pn.size() == 1 && (pn.get(0).isTextual() || pn.get(0).isArray())) {
                pn = pn.get(0);
            }
            if (pn.isTextual()) {
                prompt = tok.encode(pn.asText(), tok.addBosByDefault(), true);
                if (Boolean.TRUE.equals(Json.bool(body, "echo"))) {
                    echo = pn.asText();
                }
            } else if (pn.isArray() && pn.size() > 0 && pn.get(0).isIntegralNumber()) {
                prompt = new int[pn.size()];
                for (int i = 0; i < prompt.length; i++) {
                    JsonNode t = pn.get(i);
                    if (!t.isIntegralNumber() || t.asInt() < 0 || t.asInt() >= tok.vocabSize()) {
                        throw ApiError.invalid("Invalid 'prompt': token " + t + " is not in the vocabulary.", "prompt");
                    }
                    prompt[i] = t.asInt();
                }
                if (Boolean.TRUE.equals(Json.bool(body, "echo"))) {
                    echo = tok.decode(prompt);
                }
            } else if (pn.isArray() && pn.size() > 1) {
                throw ApiError.invalid("Only one prompt per request is supported.", "prompt");
            } else {
                throw Json.wrongType("prompt", "a string, an array of strings, or an array of tokens", pn);
            }
        }
        if (prompt.length == 0) {
            throw ApiError.invalid("The prompt is empty.", promptParam);
        }
        int ctx = engine.contextLength();
        Integer maxTokens = Json.integer(body, chat && Json.present(body, "max_completion_tokens")
                ? "max_completion_tokens" : "max_tokens");
        if (maxTokens != null && maxTokens < 1) {
            throw ApiError.invalid("Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but "
                    + "got " + maxTokens + " instead.", "max_tokens", "integer_below_min_value");
        }
        if (prompt.length >= ctx) {
            throw ApiError.contextLength(ctx, prompt.length, 0, promptParam);
        }
        if (maxTokens != null && prompt.length + maxTokens > ctx) {
            throw ApiError.contextLength(ctx, prompt.length, maxTokens, promptParam);
        }
        int limit = maxTokens != null ? maxTokens : chat ? ctx - prompt.length : Math.min(16, ctx - prompt.length);

        Double temperature = Json.number(body, "temperature", 0, 2);
        Double topP = Json.number(body, "top_p", 0, 1);
        Integer topK = Json.integer(body, "top_k");
        Double minP = Json.number(body, "min_p", 0, 1);
        Double presence = Json.number(body, "presence_penalty", -2, 2);
        Double frequency = Json.number(body, "frequency_penalty", -2, 2);
        Double repeat = Json.number(body, "repeat_penalty", 0.0001, 10);
        Long seed = Json.longValue(body, "seed");
        Map<Integer, Float> bias = new HashMap<>();
        JsonNode lb = body.get("logit_bias");
        if (lb != null && !lb.isNull()) {
            if (!lb.isObject()) {
                throw Json.wrongType("logit_bias", "an object", lb);
            }
            for (Map.Entry<String, JsonNode> e : lb.properties()) {
                int id;
                try {
                    id = Integer.parseInt(e.getKey());
                } catch (NumberFormatException ex) {
                    throw ApiError.invalid("Invalid 'logit_bias': key '" + e.getKey() + "' is not a token id.",
                            "logit_bias");
                }
                if (!e.getValue().isNumber() || e.getValue().asDouble() < -100 || e.getValue().asDouble() > 100) {
                    throw ApiError.invalid("Invalid 'logit_bias': values must be numbers in [-100, 100].", "logit_bias");
                }
                double v = e.getValue().asDouble();
                bias.put(id, v <= -100 ? Float.NEGATIVE_INFINITY : (float) v);
            }
        }
        if (topK != null && topK < 0) {
            throw ApiError.invalid("Invalid 'top_k': must be ≥ 0.", "top_k");
        }
        double t = temperature != null ? temperature : 1.0;
        SamplingParams sampling = new SamplingParams((float) t, topK != null ? topK : 0,
                topP != null && topP > 0 ? topP.floatValue() : 1f, minP != null ? minP.floatValue() : 0f,
                repeat != null ? repeat.floatValue() : 1f, presence != null ? presence.floatValue() : 0f,
                frequency != null ? frequency.floatValue() : 0f, -1,
                seed != null ? seed : random.nextLong(), bias);
        List<String> stop = Json.stop(body);
        boolean ignoreEos = Boolean.TRUE.equals(Json.bool(body, "ignore_eos"));
        boolean stream = Boolean.TRUE.equals(Json.bool(body, "stream"));
        boolean includeUsage = false;
        JsonNode so = body.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!so.isObject()) {
                throw Json.wrongType("stream_options", "an object", so);
            }
            if (!stream) {
                throw ApiError.invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                        "stream_options");
            }
            includeUsage = Boolean.TRUE.equals(Json.bool(so, "include_usage"));
        }
        return new Prepared(new Request(prompt, limit, sampling, stop, ignoreEos), prompt.length, stream,
                includeUsage, echo);
    }

    private String renderChat(JsonNode body) {
        JsonNode messages = body.get("messages");
        if (messages == null || messages.isNull()) {
            throw ApiError.invalid("Missing required parameter: 'messages'.", "messages");
        }
        if (!messages.isArray()) {
            throw Json.wrongType("messages", "an array", messages);
        }
        if (messages.isEmpty()) {
            throw ApiError.invalid("Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                    + "got an empty array instead.", "messages", "empty_array");
        }
        List<Map<String, Object>> list = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String param = "messages[" + i + "]";
            if (!m.isObject()) {
                throw Json.wrongType(param, "an object", m);
            }
            String role = Json.string(m, "role");
            if (role == null) {
                throw ApiError.invalid("Missing required parameter: '" + param + ".role'.", param + ".role");
            }
            if (!List.of("system", "developer", "user", "assistant", "tool").contains(role)) {
                throw ApiError.invalid("Invalid value: '" + role + "'. Supported values are: 'system', 'developer', "
                        + "'user', 'assistant' and 'tool'.", param + ".role", "invalid_value");
            }
            JsonNode content = m.get("content");
            String text;
            if (content == null || content.isNull()) {
                text = "";
            } else if (content.isTextual()) {
                text = content.asText();
            } else if (content.isArray()) {
                StringBuilder b = new StringBuilder();
                for (JsonNode part : content) {
                    if (!part.isObject() || !"text".equals(part.path("type").asText())) {
                        throw ApiError.invalid("Only text content parts are supported.", param + ".content");
                    }
                    b.append(part.path("text").asText());
                }
                text = b.toString();
            } else {
                throw Json.wrongType(param + ".content", "a string or an array of content parts", content);
            }
            Map<String, Object> msg = new HashMap<>();
            msg.put("role", "developer".equals(role) ? "system" : role);
            msg.put("content", text);
            if (m.hasNonNull("name")) {
                msg.put("name", m.get("name").asText());
            }
            list.add(msg);
        }
        try {
            return chatTemplate.render(list, true);
        } catch (ChatTemplate.TemplateException e) {
            throw ApiError.invalid("The chat template rejected the messages: " + e.getMessage(), "messages");
        }
    }

    // ---------------------------------------------------------------- streaming

    private void stream(ServerResponse res, Submission submission, Prepared p, boolean chat, String id, long now)
            throws InterruptedException {
        LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
        Object done = new Object();
        submission.subscribe(new Flow.Subscriber<Token>() {
            @Override
            public void onSubscribe(Flow.Subscription s) {
                s.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(Token item) {
                events.add(item);
            }

            @Override
            public void onError(Throwable t) {
                events.add(t);
            }

            @Override
            public void onComplete() {
                events.add(done);
            }
        });
        res.status(Status.OK_200);
        res.header(HeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        res.header(HeaderNames.CACHE_CONTROL, "no-cache");
        try (OutputStream out = res.outputStream()) {
            String object = chat ? "chat.completion.chunk" : "text_completion";
            if (chat) {
                ObjectNode first = chunk(id, object, now, p.includeUsage());
                ObjectNode c = first.putArray("choices").addObject().put("index", 0);
                c.putObject("delta").put("role", "assistant").put("content", "");
                c.putNull("logprobs");
                c.putNull("finish_reason");
                write(out, first);
            } else if (p.echo() != null && !p.echo().isEmpty()) {
                write(out, textChunk(id, object, now, p, p.echo()));
            }
            while (true) {
                Object e = events.poll(KEEPALIVE_MILLIS, TimeUnit.MILLISECONDS);
                if (e == null) {
                    out.write(": keep-alive\n\n".getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                    continue;
                }
                if (e instanceof Token t) {
                    if (t.text().isEmpty()) {
                        continue;
                    }
                    if (chat) {
                        ObjectNode ch = chunk(id, object, now, p.includeUsage());
                        ObjectNode c = ch.putArray("choices").addObject().put("index", 0);
                        c.putObject("delta").put("content", t.text());
                        c.putNull("logprobs");
                        c.putNull("finish_reason");
                        write(out, ch);
                    } else {
                        write(out, textChunk(id, object, now, p, t.text()));
                    }
                } else if (e instanceof Throwable t) {
                    if (!(t instanceof CancellationException)) {
                        ObjectNode err = MAPPER.createObjectNode();
                        ApiError a = ApiError.server("generation failed: " + t);
                        err.set("error", errorObject(a));
                        write(out, err);
                    }
                    break;
                } else {
                    Completion c = submission.completion().join();
                    ObjectNode last = chunk(id, object, now, p.includeUsage());
                    ObjectNode ch = last.putArray("choices").addObject().put("index", 0);
                    if (chat) {
                        ch.putObject("delta");
                    } else {
                        ch.put("text", "");
                    }
                    ch.putNull("logprobs");
                    ch.put("finish_reason", finishReason(c.reason()));
                    write(out, last);
                    if (p.includeUsage()) {
                        ObjectNode u = chunk(id, object, now, false);
                        u.putArray("choices");
                        u.set("usage", usage(p.promptTokens(), c));
                        write(out, u);
                    }
                    out.write("data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII));
                    out.flush();
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            // The client went away (or the connection broke): stop generating and free the blocks.
            submission.cancel();
        } finally {
            if (!submission.completion().isDone()) {
                submission.cancel();
            }
        }
    }

    private ObjectNode textChunk(String id, String object, long now, Prepared p, String text) {
        ObjectNode ch = chunk(id, object, now, p.includeUsage());
        ObjectNode c = ch.putArray("choices").addObject().put("index", 0);
        c.put("text", text);
        c.putNull("logprobs");
        c.putNull("finish_reason");
        return ch;
    }

    private ObjectNode chunk(String id, String object, long now, boolean usageNull) {
        ObjectNode ch = MAPPER.createObjectNode();
        ch.put("id", id).put("object", object).put("created", now).put("model", config.modelId())
                .put("system_fingerprint", fingerprint());
        if (usageNull) {
            ch.putNull("usage");
        }
        return ch;
    }

    private static void write(OutputStream out, JsonNode event) throws IOException {
        out.write(("data: " + MAPPER.writeValueAsString(event) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    // ---------------------------------------------------------------- helpers

    private JsonNode readJson(ServerRequest req) {
        long limit = config.maxBodyBytes();
        var declared = req.headers().contentLength();
        InputStream in = req.content().inputStream();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try {
            if (declared.isPresent() && declared.getAsLong() > limit) {
                drain(in, 64L << 20);
                throw ApiError.tooLarge(limit);
            }
            byte[] chunk = new byte[8192];
            int n;
            while ((n = in.read(chunk)) > 0) {
                if (buf.size() + n > limit) {
                    drain(in, 64L << 20);
                    throw ApiError.tooLarge(limit);
                }
                buf.write(chunk, 0, n);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            JsonNode node = MAPPER.readTree(buf.toByteArray());
            if (node == null || !node.isObject()) {
                throw ApiError.badJson();
            }
            return node;
        } catch (JsonProcessingException e) {
            throw ApiError.badJson();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void drain(InputStream in, long max) throws IOException {
        byte[] sink = new byte[8192];
        long total = 0;
        int n;
        while (total < max && (n = in.read(sink)) > 0) {
            total += n;
        }
    }

    private ObjectNode usage(int promptTokens, Completion c) {
        ObjectNode u = MAPPER.createObjectNode();
        u.put("prompt_tokens", promptTokens).put("completion_tokens", c.tokens().length)
                .put("total_tokens", promptTokens + c.tokens().length);
        u.putObject("prompt_tokens_details").put("cached_tokens", c.cachedPromptTokens());
        if (engine.speculative()) {
            // OpenAI's fields for predicted outputs, which are speculation with a prediction as the draft.
            u.putObject("completion_tokens_details").put("accepted_prediction_tokens", c.acceptedDraftTokens())
                    .put("rejected_prediction_tokens", c.draftedTokens() - c.acceptedDraftTokens());
        }
        return u;
    }

    static String finishReason(StopReason r) {
        return switch (r) {
            case END_OF_TEXT, STOP_STRING -> "stop";
            case MAX_TOKENS, CONTEXT_FULL -> "length";
        };
    }

    private static String fingerprint() {
        return "isthmus-0.1.0";
    }

    private String randomId() {
        StringBuilder b = new StringBuilder(24);
        for (int i = 0; i < 24; i++) {
            b.append(ALPHABET.charAt(random.nextInt(ALPHABET.length())));
        }
        return b.toString();
    }

    static ObjectNode errorObject(ApiError e) {
        ObjectNode o = MAPPER.createObjectNode();
        o.put("message", e.getMessage()).put("type", e.type);
        if (e.param != null) {
            o.put("param", e.param);
        } else {
            o.putNull("param");
        }
        if (e.code != null) {
            o.put("code", e.code);
        } else {
            o.putNull("code");
        }
        return o;
    }

    private static void sendError(ServerResponse res, ApiError e) {
        if (res.isSent()) {
            return;
        }
        ObjectNode body = MAPPER.createObjectNode();
        body.set("error", errorObject(e));
        if (e.retryAfterSeconds > 0) {
            res.header(HeaderNames.RETRY_AFTER, Integer.toString(e.retryAfterSeconds));
        }
        try {
            sendJson(res, e.status, body);
        } catch (RuntimeException ignored) {
            // the connection is gone
        }
    }

    private static void sendJson(ServerResponse res, int status, JsonNode body) {
        res.status(Status.create(status));
        res.header(HeaderNames.CONTENT_TYPE, "application/json");
        try {
            res.send(MAPPER.writeValueAsBytes(body));
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }
}
