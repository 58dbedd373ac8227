package dev.isthmus.engine.generation;

import dev.isthmus.api.DType;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.HostLogits;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.sampling.Sampler;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.util.function.Consumer;

/** Generates text for one prompt at a time: prefill in chunks, then one token per forward pass. */
public final class Generator {
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
        return params.tokenize(tokenizer, prompt);
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
        int capacity = params.cacheCapacity(prompt, model.config().contextLength());
        Sampler sampler = new Sampler(params.sampling());
        for (int t : prompt) {
            sampler.accept(t);
        }
        GenerationOutput out = new GenerationOutput(tokenizer, params, prompt, sink);

        try (KvCache cache = model.newCache(1, capacity, DType.F32);
             HostLogits host = new HostLogits(model.backend(), model.config().vocabSize())) {
            long start = System.nanoTime();
            float[] logits = out.over() ? null : host.copy(model.prefill(prompt, cache));
            long promptNanos = System.nanoTime() - start;
            start = System.nanoTime();
            int pos = prompt.length;
            while (!out.over()) {
                int next = sampler.sample(logits);
                sampler.accept(next);
                if (!out.push(next)) {
                    break;
                }
                if (pos >= capacity) {
                    out.contextFull();
                    break;
                }
                logits = host.copy(model.forward(Batch.ofSequence(0, pos, next), cache));
                pos++;
            }
            out.finish();
            return out.result(promptNanos, System.nanoTime() - start);
        }
    }
}
