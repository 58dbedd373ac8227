package dev.isthmus.engine.speculative;

import dev.isthmus.api.DType;
import dev.isthmus.engine.generation.GenerationOutput;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.HostLogits;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.SamplingTransform;
import dev.isthmus.engine.sampling.TokenHistory;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.util.function.Consumer;

/**
 * Generates like {@link dev.isthmus.engine.generation.Generator}, one prompt at a time, but speculatively: a
 * {@link Drafter} proposes up to {@code draftMax} tokens, the target evaluates the last accepted token and the
 * proposal in one forward pass with logits for every row, and the longest acceptable prefix is kept plus the
 * target's own token at the first disagreement (or after the whole proposal). The target's KV cache is then
 * truncated to the accepted tokens; the drafter rolls its own state back to the accepted context.
 *
 * <ul>
 *   <li>Greedy parameters (temperature ≤ 0): a draft token is accepted iff it is the target's argmax at its
 *       position (after bias and penalties), so the output is the target's greedy output token for token.</li>
 *   <li>Sampling: the standard rejection rule ({@link RejectionSampler}) with {@code p} and {@code q} from the
 *       same {@link SamplingTransform} (bias, penalties over the position's own history, top-k, top-p, min-p,
 *       temperature): every token is distributed exactly as plain sampling's. The draws differ from plain
 *       sampling with the same seed (the random stream is consumed differently), the distribution does
 *       not.</li>
 * </ul>
 *
 * <p>Not thread-safe: one generation at a time per instance (the target's scratch buffers are shared).
 */
public final class SpeculativeGenerator {
    private final Transformer target;
    private final Tokenizer tokenizer;
    private final DraftSource drafts;
    private final SpeculativeParams spec;

    /**
     * @throws IncompatibleVocabularyException if {@code drafts} proposes ids of another vocabulary
     */
    public SpeculativeGenerator(Transformer target, Tokenizer tokenizer, DraftSource drafts, SpeculativeParams spec) {
        drafts.checkCompatible(tokenizer, target.config().vocabSize());
        this.target = target;
        this.tokenizer = tokenizer;
        this.drafts = drafts;
        this.spec = spec;
    }

    /** Speculation with a draft model (both models belong to the caller). */
    public static SpeculativeGenerator withDraftModel(Model target, Model draft, double pMin, SpeculativeParams spec) {
        return new SpeculativeGenerator(target.transformer(), target.tokenizer(), new DraftModel(draft, pMin), spec);
    }

    /** Speculation by prompt lookup of n-grams of {@code n} tokens down to 1. */
    public static SpeculativeGenerator withNgramLookup(Model target, int n, SpeculativeParams spec) {
        return new SpeculativeGenerator(target.transformer(), target.tokenizer(), new NgramLookup(n), spec);
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public DraftSource drafts() {
        return drafts;
    }

    public SpeculativeParams params() {
        return spec;
    }

    /** Tokenizes {@code prompt} as {@link #generate(int[], GenerationParams, Consumer)} would. */
    public int[] tokenize(String prompt, GenerationParams params) {
        return params.tokenize(tokenizer, prompt);
    }

    /** Tokenizes the prompt and generates; {@code sink} receives the new text as it is produced. */
    public SpeculativeResult generate(String prompt, GenerationParams params, Consumer<String> sink) {
        return generate(tokenize(prompt, params), params, sink);
    }

    /**
     * Generates after the given prompt tokens.
     *
     * @throws IllegalArgumentException if the prompt is empty or does not fit the context window
     */
    public SpeculativeResult generate(int[] prompt, GenerationParams params, Consumer<String> sink) {
        int capacity = params.cacheCapacity(prompt, target.config().contextLength());
        int vocab = target.config().vocabSize();
        Verifier verifier = new Verifier(params.sampling());
        GenerationOutput out = new GenerationOutput(tokenizer, params, prompt, sink);
        TokenHistory context = new TokenHistory(prompt);
        int steps = 0;
        int proposals = 0;
        long drafted = 0;
        long accepted = 0;
        long draftNanos = 0;
        long verifyNanos = 0;

        try (KvCache cache = target.newCache(1, capacity, DType.F32);
             Drafter drafter = drafts.open(capacity, params.sampling());
             HostLogits host = new HostLogits(target.backend(), vocab)) {
            long start = System.nanoTime();
            float[] logits = null;
            if (!out.over()) {
                logits = host.copy(target.prefill(prompt, cache));
                drafter.prefill(context);
            }
            long promptNanos = System.nanoTime() - start;
            start = System.nanoTime();
            if (logits != null) {
                verifier.walk(logits, 0, vocab, Draft.EMPTY, context, out::push);
            }
            while (!out.over()) {
                int pos = context.size() - 1;
                if (pos >= capacity) {
                    out.contextFull();
                    break;
                }
                // Every accepted token must fit the budget (the target adds one of its own) and the cache.
                int k = Math.min(spec.draftMax(), Math.min(params.maxTokens() - out.count() - 1, capacity - 1 - pos));
                long t0 = System.nanoTime();
                Draft draft = k > 0 ? drafter.propose(context, k).prefix(k) : Draft.EMPTY;
                if (draft.size() < spec.draftMin()) {
                    draft = Draft.EMPTY;
                }
                long t1 = System.nanoTime();
                draftNanos += t1 - t0;

                int[] rows = new int[draft.size() + 1];
                rows[0] = context.get(pos);
                System.arraycopy(draft.tokens(), 0, rows, 1, draft.size());
                Batch batch = draft.isEmpty() ? Batch.ofSequence(0, pos, rows)
                        : Batch.ofSequenceAllLogits(0, pos, rows);
                float[] all = host.copy(target.forward(batch, cache));
                steps++;
                if (!draft.isEmpty()) {
                    proposals++;
                    drafted += draft.size();
                }
                int ok = verifier.walk(all, 0, vocab, draft, context, out::push);
                accepted += ok;
                // Keep the keys and values of `rows[0]` and the accepted proposals; forget the rejected ones.
                cache.truncate(0, pos + 1 + ok);
                verifyNanos += System.nanoTime() - t1;
            }
            out.finish();
            return new SpeculativeResult(out.result(promptNanos, System.nanoTime() - start),
                    new SpeculationStats(steps, proposals, drafted, accepted, draftNanos, verifyNanos));
        }
    }
}
