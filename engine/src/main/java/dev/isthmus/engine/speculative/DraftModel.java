package dev.isthmus.engine.speculative;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A small model with the target's vocabulary that proposes tokens one forward pass at a time, through the same
 * {@link SamplingTransform} as the target: greedily (argmax) when the generation is greedy, otherwise by
 * drawing from its distribution {@code q}, which it hands to the verifier. Drafting stops early when the
 * draft is unsure (its most likely token below {@code pMin}; greedy: under a plain softmax of its adjusted
 * logits) or proposes an end-of-generation token.
 *
 * <p>Each drafter keeps a KV cache of the tokens it has evaluated; on every proposal it keeps the longest
 * prefix shared with the accepted context and truncates the rest, so rejected proposals are rolled back.
 * The model is borrowed, not owned: closing a drafter releases only its cache.
 */
public final class DraftModel implements DraftSource {
    /** Tokens per forward pass while catching up with the context (the prompt, mostly). */
    private static final int PREFILL_CHUNK = 512;
    /** Mixed into the generation's seed so the draft's draws are independent of the verifier's. */
    private static final long SEED_MIX = 0x9E3779B97F4A7C15L;

    private final Transformer model;
    private final Tokenizer tokenizer;
    private final double pMin;
    private final String name;

    /**
     * @param pMin stop drafting where the draft's most likely token has a probability below this (0: never)
     */
    public DraftModel(Transformer model, Tokenizer tokenizer, double pMin, String name) {
        if (!(pMin >= 0 && pMin <= 1)) {
            throw new IllegalArgumentException("draft p-min must be in [0, 1], got " + pMin);
        }
        this.model = model;
        this.tokenizer = tokenizer;
        this.pMin = pMin;
        this.name = name;
    }

    public DraftModel(Model draft, double pMin) {
        this(draft.transformer(), draft.tokenizer(), pMin, draft.file().path().getFileName().toString());
    }

    @Override
    public void checkCompatible(Tokenizer target, int targetLogits) {
        Vocabularies.checkCompatible(target, targetLogits, tokenizer, model.config().vocabSize());
    }

    @Override
    public Drafter open(int capacity, SamplingParams sampling) {
        return new ModelDrafter(Math.min(capacity, model.config().contextLength()), sampling);
    }

    @Override
    public String description() {
        return "draft model " + name;
    }

    private final class ModelDrafter implements Drafter {
        private final int capacity;
        private final KvCache cache;
        private final SamplingTransform transform;
        private final SplittableRandom random;
        private final Arena arena = Arena.ofConfined();
        private final Tensor hostLogits;
        /** The tokens whose keys and values the cache holds, position by position. */
        private final TokenHistory cached = new TokenHistory();

        ModelDrafter(int capacity, SamplingParams sampling) {
            this.capacity = capacity;
            this.cache = model.newCache(1, capacity, DType.F32);
            this.transform = new SamplingTransform(sampling);
            this.random = new SplittableRandom(sampling.seed() ^ SEED_MIX);
            this.hostLogits = model.backend().device().hostAccessible() ? null
                    : Tensor.allocate(arena, DType.F32, 1, model.config().vocabSize());
        }

        @Override
        public void prefill(TokenHistory prompt) {
            if (prompt.size() > 1 && prompt.size() - 1 <= capacity) {
                catchUp(prompt, prompt.size() - 1);
            }
        }

        @Override
        public Draft propose(TokenHistory context, int max) {
            int n = context.size();
            // Draft token i is evaluated at position n + i (the last one is never evaluated): all must fit.
            max = Math.min(max, capacity - n + 1);
            if (max <= 0 || n == 0) {
                return Draft.EMPTY;
            }
            float[] logits = catchUp(context, n);
            TokenHistory history = context.copy();
            int[] tokens = new int[max];
            List<TokenDistribution> qs = transform.isGreedy() ? null : new ArrayList<>();
            int count = 0;
            while (count < max) {
                int token;
                if (transform.isGreedy()) {
                    token = transform.greedy(logits, history);
                    if (pMin > 0 && SamplingTransform.softmaxProbability(logits, token) < pMin) {
                        break;
                    }
                } else {
                    TokenDistribution q = transform.distribution(logits, history);
                    if (q.maxProbability() < pMin) {
                        break;
                    }
                    token = q.sample(random.nextDouble());
                    qs.add(q);
                }
                tokens[count++] = token;
                history.add(token);
                if (count == max || tokenizer.isEndOfGeneration(token)) {
                    break;
                }
                logits = forward(Batch.ofSequence(0, n + count - 1, token));
                cached.add(token);
            }
            int[] proposal = Arrays.copyOf(tokens, count);
            return new Draft(proposal, qs == null ? null : qs.toArray(TokenDistribution[]::new));
        }

        /**
         * Makes the cache hold exactly {@code context[0, upTo)}, reusing the longest prefix it already has and
         * evaluating the rest; returns the logits after the last token (evaluating at least that one).
         */
        private float[] catchUp(TokenHistory context, int upTo) {
            int keep = Math.min(cached.commonPrefix(context), upTo - 1);
            keep = Math.min(keep, cached.size());
            cache.truncate(0, keep);
            cached.truncate(keep);
            float[] logits = null;
            for (int from = keep; from < upTo; from += PREFILL_CHUNK) {
                int to = Math.min(upTo, from + PREFILL_CHUNK);
                logits = forward(Batch.ofSequence(0, from, context.range(from, to)));
                cached.addAll(context.array(), from, to);
            }
            return logits;
        }

        private float[] forward(Batch batch) {
            Tensor logits = model.forward(batch, cache);
            if (hostLogits == null) {
                return logits.toFloatArray();
            }
            model.backend().copy(logits, hostLogits);
            return hostLogits.toFloatArray();
        }

        @Override
        public void close() {
            try {
                cache.close();
            } finally {
                arena.close();
            }
        }
    }
}
