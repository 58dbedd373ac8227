package dev.isthmus.cli;

import dev.isthmus.api.DType;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.serving.Engine;
import dev.isthmus.engine.serving.EngineConfig;
import dev.isthmus.server.ChatTemplate;
import dev.isthmus.server.OpenAiServer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code isthmus serve}: the OpenAI-compatible HTTP server with in-flight batching. */
@Command(name = "serve", description = {"Serve a model over an OpenAI-compatible HTTP API (/v1/completions, "
        + "/v1/chat/completions, /v1/models, /health, /metrics) with in-flight batching over a paged KV cache.",
        "With --draft-model or --lookup-ngram every decoding sequence speculates: its own drafter proposes up to "
                + "--draft-max tokens, the model verifies all sequences' proposals in one batched pass, and greedy "
                + "output stays exactly the model's (sampled output keeps its distribution). Acceptance shows in "
                + "/metrics and in usage.completion_tokens_details."})
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelChoice modelChoice;

    @Mixin
    BackendChoice backendChoice;

    @Mixin
    SpeculationChoice speculation;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "Port, 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--max-batch", defaultValue = "16", description = "Sequences in flight at once (default: ${DEFAULT-VALUE}).")
    int maxBatch;

    @Option(names = "--batch-tokens", defaultValue = "512", description = "Tokens per forward pass; longer prompts are "
            + "prefilled in chunks (default: ${DEFAULT-VALUE}).")
    int batchTokens;

    @Option(names = "--max-queue", defaultValue = "64", description = "Requests waiting beyond the batch before answering "
            + "429 (default: ${DEFAULT-VALUE}).")
    int maxQueue;

    @Option(names = "--kv-memory", defaultValue = "0", paramLabel = "MiB", description = "KV cache budget in MiB; 0: "
            + "enough for --max-batch full contexts, at most 1 GiB (default: ${DEFAULT-VALUE}).")
    long kvMiB;

    @Option(names = "--cache-type", defaultValue = "F16", description = "KV cache dtype: F32, F16, BF16 (default: ${DEFAULT-VALUE}).")
    DType cacheType;

    @Option(names = "--block-size", defaultValue = "16", description = "KV positions per block (default: ${DEFAULT-VALUE}).")
    int blockSize;

    @Option(names = "--no-prefix-cache", description = "Do not share the KV blocks of identical prompt prefixes.")
    boolean noPrefixCache;

    @Option(names = "--model-id", description = "Model id in the API (default: general.name or the file name).")
    String modelId;

    @Option(names = "--max-body", defaultValue = "1048576", paramLabel = "BYTES", description = "Largest request body "
            + "(default: ${DEFAULT-VALUE}).")
    long maxBody;

    @Override
    public Integer call() throws Exception {
        EngineConfig config = new EngineConfig(maxBatch, Math.max(batchTokens, maxBatch), maxQueue, blockSize,
                kvMiB << 20, cacheType, !noPrefixCache);
        try (Backend backend = backendChoice.open();
             Model model = Model.open(modelChoice.modelPath(), modelChoice.tokenizerPath(), backend);
             SpeculationChoice.Speculation spec = speculation.enabled() ? speculation.open(backend, model) : null;
             Engine engine = Engine.start(model.transformer(), model.tokenizer(), config,
                     spec == null ? null : spec.serving())) {
            String id = modelId != null ? modelId
                    : model.file().metadata().getString("general.name", modelChoice.modelPath().getFileName().toString());
            ChatTemplate template = ChatTemplate.forModel(model, w -> System.err.println("isthmus: " + w));
            try (OpenAiServer server = OpenAiServer.start(engine, template,
                    new OpenAiServer.Config(host, port, id, maxBody))) {
                System.err.printf("isthmus: serving %s on http://%s:%d/v1 (%s, batch %d, KV pool %d positions%s)%n",
                        id, host, server.port(), backend.name(), maxBatch, engine.kvCapacityTokens(),
                        spec == null ? "" : ", speculation with " + spec.generator.drafts().description() + " up to "
                                + speculation.draftMax + " tokens a step");
                CountDownLatch stop = new CountDownLatch(1);
                Runtime.getRuntime().addShutdownHook(new Thread(stop::countDown));
                stop.await();
            }
        }
        return 0;
    }
}
