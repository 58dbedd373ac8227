package dev.isthmus.engine.generation;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.sampling.Sampler;
import dev.isthmus.engine.tokenizer.StreamingDecoder;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.function.Consumer;

/** Generates text for one prompt at a time: prefill in chunks, then one token per forward pass. */
public final class Generator {
    /** Prompt tokens per forward pass during prefill. */
    private static final int PREFILL_CHUNK = 512;

    private final Transformer model;
    private final Tokenizer tokenizer;

    public Generator(Transformer model, Tokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** Tokenizes {@code prompt} as {@link #generate(int[], GenerationParams, Consumer)} would. */
    public int[] tokenize(String prompt, GenerationParams params) {
        boolean addBos = params.addBos() != null ? params.addBos() : tokenizer.addBosByDefault();
        return tokenizer.encode(prompt, addBos, params.parseSpecial());
    }

    /** Tokenizes the prompt and generates; {@code sink} receives the new text as it is produced. */
    public GenerationResult generate(String prompt, GenerationParams params, Consumer<String> sink) {
        return generate(tokenize(prompt, params), params, sink);
    }

    /**
     * Generates after the given prompt tokens.
     *
     * @throws IllegalArgumentException if the prompt is empty or does not fit the context window
     */
    public GenerationResult generate(int[] prompt, GenerationParams params, Consumer<String> sink) {
        int ctx = model.config().contextLength();
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt: nothing to condition on (add BOS or some text)");
        }
        if (prompt.length >= ctx) {
            throw new IllegalArgumentException("prompt of " + prompt.length
                    + " tokens does not fit the context window of " + ctx);
        }
        int capacity = (int) Math.min(ctx, (long) prompt.length + params.maxTokens());
        Sampler sampler = new Sampler(params.sampling());
        for (int t : prompt) {
            sampler.accept(t);
        }
        StreamingDecoder decoder = new StreamingDecoder(tokenizer, prompt[prompt.length - 1] == tokenizer.bos());
        StopMatcher stops = new StopMatcher(params.stop());
        StringBuilder text = new StringBuilder();
        int[] generated = new int[params.maxTokens()];
        int count = 0;
        StopReason reason = StopReason.MAX_TOKENS;

        try (KvCache cache = model.newCache(1, capacity, DType.F32); Arena arena = Arena.ofConfined()) {
            Tensor hostLogits = model.backend().device().hostAccessible() ? null
                    : Tensor.allocate(arena, DType.F32, 1, model.config().vocabSize());
            long start = System.nanoTime();
            float[] logits = null;
            for (int from = 0; from < prompt.length && params.maxTokens() > 0; from += PREFILL_CHUNK) {
                int[] chunk = Arrays.copyOfRange(prompt, from, Math.min(prompt.length, from + PREFILL_CHUNK));
                logits = toHost(model.forward(Batch.ofSequence(0, from, chunk), cache), hostLogits);
            }
            long promptNanos = System.nanoTime() - start;
            start = System.nanoTime();
            int pos = prompt.length;
            while (count < params.maxTokens()) {
                int next = sampler.sample(logits);
                sampler.accept(next);
                generated[count++] = next;
                if (tokenizer.isEndOfGeneration(next)) {
                    reason = StopReason.END_OF_TEXT;
                    break;
                }
                emit(stops.push(decoder.push(next)), text, sink);
                if (stops.stopped()) {
                    reason = StopReason.STOP_STRING;
                    break;
                }
                if (count == params.maxTokens()) {
                    break;
                }
                if (pos >= capacity) {
                    reason = StopReason.CONTEXT_FULL;
                    break;
                }
                logits = toHost(model.forward(Batch.ofSequence(0, pos, next), cache), hostLogits);
                pos++;
            }
            if (!stops.stopped()) {
                emit(stops.push(decoder.flush()), text, sink);
                emit(stops.flush(), text, sink);
            }
            return new GenerationResult(text.toString(), prompt, Arrays.copyOf(generated, count), reason,
                    promptNanos, System.nanoTime() - start);
        }
    }

    private float[] toHost(Tensor logits, Tensor hostLogits) {
        if (hostLogits == null) {
            return logits.toFloatArray();
        }
        model.backend().copy(logits, hostLogits);
        return hostLogits.toFloatArray();
    }

    private static void emit(String piece, StringBuilder text, Consumer<String> sink) {
        if (!piece.isEmpty()) {
            text.append(piece);
            sink.accept(piece);
        }
    }
}
