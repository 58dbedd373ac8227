package dev.isthmus.engine.serving;

import dev.isthmus.api.Tensor;
import dev.isthmus.engine.generation.StopReason;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.HostLogits;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.sampling.TokenHistory;
import dev.isthmus.engine.speculative.Draft;
import dev.isthmus.engine.speculative.DraftPool;
import dev.isthmus.engine.speculative.Drafter;
import dev.isthmus.engine.speculative.IncompatibleVocabularyException;
import dev.isthmus.engine.speculative.SpeculationStats;
import dev.isthmus.engine.speculative.SpeculativeParams;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * Serves many generation requests at once with in-flight (continuous) batching over a paged KV cache.
 *
 * <p>One engine thread runs a step loop. Each step it (1) takes new submissions and cancellations,
 * (2) plans a batch under a token budget: one row for every decoding sequence, the next chunk of every
 * prefilling sequence, then admits waiting requests (taking shared prompt-prefix blocks from the cache)
 * while sequences, budget and KV blocks allow, (3) runs one forward pass over all those rows — sequences
 * at different positions — (4) samples a token for each sequence whose rows reached its end, with its own
 * {@link dev.isthmus.engine.sampling.Sampler}, streams it, and (5) retires finished sequences, returning
 * their blocks. When a sequence needs a block and the pool is empty, the most recently admitted sequence
 * is preempted: its blocks are freed and it goes back to the front of the queue, to be recomputed from its
 * prompt and the tokens generated so far (which are not streamed again).
 *
 * <p><b>Speculative decoding</b> ({@link SpeculationConfig}): after planning, the budget and free KV blocks left
 * go to proposals for the decoding sequences, oldest first: each gets up to {@code draftMax} tokens from its own
 * drafter (a draft model's drafters share a {@link DraftPool} and draft together), and its rows in the pass are
 * its last token followed by the proposal, with logits for all of them. Each sequence then accepts the longest
 * agreeing prefix plus the model's own next token ({@link dev.isthmus.engine.speculative.Verifier}: greedy
 * exactly, sampling by the rejection rule), and its cache is truncated to the accepted positions. Draft tokens
 * never preempt a sequence or delay an admission: they only use what is left.
 *
 * <p>Static batching is submitting a list at once; dynamic batching is submitting as requests arrive.
 * The engine owns its KV cache, not the model.
 */
public final class Engine implements AutoCloseable {
    private static final long WINDOW_NANOS = 10_000_000_000L;

    private final Transformer model;
    private final Tokenizer tokenizer;
    private final EngineConfig config;
    private final KvCache cache;
    private final int contextLength;
    private final HostLogits hostLogits;
    /** Null without speculation, as is {@link #drafts}. */
    private final SpeculativeParams spec;
    private final Thread loop;
    private final ExecutorService delivery = Executors.newVirtualThreadPerTaskExecutor();
    private final ConcurrentLinkedQueue<Sequence> inbox = new ConcurrentLinkedQueue<>();
    private final AtomicInteger queued = new AtomicInteger();
    private volatile boolean closed;

    // Engine thread only.
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    private final ArrayDeque<Integer> freeSlots = new ArrayDeque<>();
    private final Map<Long, Sequence> inflightPrefixes = new HashMap<>();
    private long admissions;
    private long stepCounter;
    private final DraftPool drafts;

    // Any thread.
    private final LongAdder requests = new LongAdder();
    private final LongAdder rejected = new LongAdder();
    private final LongAdder promptTokens = new LongAdder();
    private final LongAdder generatedTokens = new LongAdder();
    private final LongAdder preemptions = new LongAdder();
    private final LongAdder steps = new LongAdder();
    /** Written by the engine thread only; null without speculation. */
    private volatile SpeculationStats speculated;
    private final Histogram ttft = Histogram.latency();
    private final ArrayDeque<long[]> rateSamples = new ArrayDeque<>();
    private volatile int waitingCount;
    private volatile int runningCount;
    private volatile Throwable failure;

    private Engine(Transformer model, Tokenizer tokenizer, EngineConfig config, SpeculationConfig speculation) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.config = config;
        var c = model.config();
        if (speculation != null) {
            speculation.drafts().checkCompatible(tokenizer, c.vocabSize());
        }
        long budget = config.kvMemoryBytes();
        if (budget == 0) {
            long perPosition = KvCache.Options.bytesPerBlock(c.layers(), c.kvDim(), 1, config.kvType());
            budget = Math.min(1L << 30, perPosition * config.maxBatch() * (long) c.contextLength());
        }
        KvCache.Options options = KvCache.Options.forBudget(budget, c.layers(), c.kvDim(), config.blockSize(),
                config.maxBatch(), c.contextLength(), config.kvType(), config.prefixSharing());
        this.cache = KvCache.paged(model, options);
        this.contextLength = c.contextLength();
        this.hostLogits = new HostLogits(model.backend(), c.vocabSize());
        this.spec = speculation == null ? null : speculation.params();
        this.speculated = speculation == null ? null : SpeculationStats.NONE;
        try {
            this.drafts = speculation == null ? null : openDrafts(speculation);
        } catch (RuntimeException | OutOfMemoryError e) {
            cache.close();
            throw e;
        }
        for (int s = 0; s < config.maxBatch(); s++) {
            freeSlots.add(s);
        }
        this.loop = Thread.ofPlatform().name("isthmus-engine").daemon().unstarted(this::run);
    }

    /**
     * The drafters' pool: a draft model's holds as many positions as the model's pool, plus every sequence's
     * draft positions and a partly filled block.
     */
    private DraftPool openDrafts(SpeculationConfig speculation) {
        long positions = (long) kvCapacityTokens()
                + (long) config.maxBatch() * (speculation.params().draftMax() + blockSize());
        return speculation.drafts().openPool(config.maxBatch(), contextLength,
                (int) Math.min(Integer.MAX_VALUE, positions), config.kvType());
    }

    /** Starts an engine over a model's graph and tokenizer (the model stays the caller's). */
    public static Engine start(Transformer model, Tokenizer tokenizer, EngineConfig config) {
        return start(model, tokenizer, config, null);
    }

    /**
     * Starts an engine that decodes speculatively ({@code speculation == null}: plainly). Greedy requests get
     * exactly the model's greedy tokens, sampled ones tokens distributed as the model's.
     *
     * @throws IncompatibleVocabularyException if a draft model's vocabulary is not the model's
     */
    public static Engine start(Transformer model, Tokenizer tokenizer, EngineConfig config,
                               SpeculationConfig speculation) {
        Engine e = new Engine(model, tokenizer, config, speculation);
        e.loop.start();
        return e;
    }

    public static Engine start(Model model, EngineConfig config) {
        return start(model.transformer(), model.tokenizer(), config);
    }

    public EngineConfig config() {
        return config;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The model's context window in tokens. */
    public int contextLength() {
        return contextLength;
    }

    /** KV positions the pool holds in all (a sequence can never grow beyond it). */
    public int kvCapacityTokens() {
        return cache.blocks() * cache.blockSize();
    }

    private int blockSize() {
        return cache.blockSize();
    }

    /** Whether the engine decodes speculatively. */
    public boolean speculative() {
        return spec != null;
    }

    /** Tokenizes a prompt ({@code addBos == null}: the vocabulary's default). */
    public int[] tokenize(String text, Boolean addBos, boolean parseSpecial) {
        return tokenizer.encode(text, addBos, parseSpecial);
    }

    /**
     * Accepts a request. Its tokens stream from the returned publisher; its result completes
     * {@link Submission#completion()}.
     *
     * @throws IllegalArgumentException   if the prompt does not fit the context window or the KV pool
     * @throws EngineOverloadedException  if {@link EngineConfig#maxQueue()} requests are already waiting
     * @throws IllegalStateException      if the engine is closed or has failed
     */
    public Submission submit(Request request) {
        if (closed) {
            throw new IllegalStateException("engine is closed");
        }
        if (failure != null) {
            throw new IllegalStateException("engine failed: " + failure, failure);
        }
        int n = request.prompt().length;
        if (n >= contextLength) {
            throw new IllegalArgumentException("prompt of " + n + " tokens does not fit the context window of "
                    + contextLength);
        }
        if (cache.blocksFor(n + 1) > cache.blocks()) {
            throw new IllegalArgumentException("prompt of " + n + " tokens does not fit the KV cache of "
                    + kvCapacityTokens() + " positions");
        }
        if (queued.incrementAndGet() > config.maxQueue()) {
            queued.decrementAndGet();
            rejected.increment();
            throw new EngineOverloadedException("admission queue full: " + config.maxQueue()
                    + " requests are waiting", retryAfterSeconds());
        }
        requests.increment();
        promptTokens.add(n);
        Submission submission = new Submission(request, delivery, this::wakeUp);
        Sequence s = new Sequence(submission, tokenizer, System.nanoTime());
        if (request.maxTokens() == 0) {
            queued.decrementAndGet();
            submission.complete(new Completion("", request.prompt(), new int[0], StopReason.MAX_TOKENS, 0, 0, 0,
                    System.nanoTime() - s.submitted, 0, 0, 0));
            return submission;
        }
        inbox.add(s);
        wakeUp();
        return submission;
    }

    /** Submits and returns the completion future (cancelling the future cancels the request). */
    public CompletableFuture<Completion> complete(Request request) {
        return submit(request).completion();
    }

    /** A snapshot of the engine's counters (any thread). */
    public EngineStats stats() {
        return new EngineStats(waitingCount + inbox.size(), runningCount, cache.stats(), requests.sum(),
                rejected.sum(), promptTokens.sum(), generatedTokens.sum(), preemptions.sum(), steps.sum(),
                tokensPerSecond(), speculated);
    }

    /** Time to first token of every request so far, in seconds. */
    public Histogram timeToFirstToken() {
        return ttft;
    }

    private int retryAfterSeconds() {
        double rate = tokensPerSecond();
        if (rate <= 0) {
            return 1;
        }
        // Roughly the time for the running sequences to produce a queue's worth of tokens.
        return (int) Math.max(1, Math.min(60, Math.ceil(config.maxQueue() * 16 / rate)));
    }

    private double tokensPerSecond() {
        synchronized (rateSamples) {
            if (rateSamples.size() < 2) {
                return 0;
            }
            long[] first = rateSamples.peekFirst();
            long[] last = rateSamples.peekLast();
            long dt = last[0] - first[0];
            return dt <= 0 ? 0 : (last[1] - first[1]) * 1e9 / dt;
        }
    }

    private void wakeUp() {
        LockSupport.unpark(loop);
    }

    // ---------------------------------------------------------------- engine thread

    private void run() {
        try {
            while (!closed) {
                takeInbox();
                handleCancellations();
                waitingCount = waiting.size();
                runningCount = running.size();
                if (running.isEmpty() && waiting.isEmpty()) {
                    if (inbox.isEmpty() && !closed) {
                        LockSupport.parkNanos(this, 100_000_000L);
                    }
                    continue;
                }
                step();
            }
            failAll(new CancellationException("engine closed"));
        } catch (Throwable t) {
            failure = t;
            failAll(t);
        } finally {
            waitingCount = 0;
            runningCount = 0;
            hostLogits.close();
            if (drafts != null) {
                drafts.close();
            }
        }
    }

    private void takeInbox() {
        Sequence s;
        while ((s = inbox.poll()) != null) {
            s.prefixHashes = config.prefixSharing() ? cache.prefixHashes(s.tokenArray()) : new long[0];
            waiting.addLast(s);
        }
    }

    private void handleCancellations() {
        for (Iterator<Sequence> it = waiting.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            if (s.submission.cancelRequested()) {
                it.remove();
                if (s.countedInQueue) {
                    queued.decrementAndGet();
                    s.countedInQueue = false;
                }
                s.closeDrafter();
                s.submission.fail(new CancellationException("request cancelled"));
            }
        }
        for (Iterator<Sequence> it = running.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            if (s.submission.cancelRequested()) {
                it.remove();
                releaseSlot(s);
                s.closeDrafter();
                s.submission.fail(new CancellationException("request cancelled"));
            }
        }
    }

    /**
     * A sequence's rows in the next pass: {@code take} of its own tokens from {@code computed}, then the proposal
     * ({@code null}: the sequence was not offered any; {@link Draft#EMPTY}: it was, and got none).
     */
    private record Planned(Sequence seq, int take, Draft draft) {
        int rows() {
            return take + (draft == null ? 0 : draft.size());
        }
    }

    private void step() {
        List<Planned> plan = new ArrayList<>();
        long step = ++stepCounter;

        // 1. Running sequences: decodes first, then prompt chunks, each group oldest first.
        List<Sequence> decodes = new ArrayList<>(running.size());
        List<Sequence> chunks = new ArrayList<>();
        for (Sequence s : running) {
            (s.pending() == 1 ? decodes : chunks).add(s);
        }
        int budget = planRunning(decodes, plan, config.maxBatchTokens(), step);
        budget = planRunning(chunks, plan, budget, step);

        // 2. Admission, first come first served, skipping requests whose prefix another sequence is computing.
        budget = admit(plan, budget);
        waitingCount = waiting.size();
        runningCount = running.size();
        if (plan.isEmpty()) {
            LockSupport.parkNanos(this, 1_000_000L);
            return;
        }
        // 3. Proposals for the decoding sequences, from what is left.
        long proposalStart = System.nanoTime();
        boolean verifying = spec != null && propose(plan, budget);
        long forwardStart = System.nanoTime();
        forward(plan);
        if (spec != null) {
            speculated = speculated.plus(new SpeculationStats(0, 0, 0, 0, forwardStart - proposalStart,
                    verifying ? System.nanoTime() - forwardStart : 0));
        }
    }

    /** Plans the next rows of running sequences within the budget, preempting for KV blocks; returns the rest. */
    private int planRunning(List<Sequence> sequences, List<Planned> plan, int budget, long step) {
        for (Sequence s : sequences) {
            if (budget == 0) {
                break;
            }
            if (s.slot < 0) {
                continue; // preempted earlier in this step
            }
            int take = Math.min(s.pending(), budget);
            boolean ok = cache.reserve(s.slot, s.computed + take);
            while (!ok) {
                Sequence victim = latestUnplanned(s, step);
                if (victim == null) {
                    break;
                }
                running.remove(victim);
                preempt(victim);
                ok = cache.reserve(s.slot, s.computed + take);
            }
            if (!ok) {
                int fit = cache.reachableLength(s.slot) - s.computed;
                if (fit > 0) {
                    take = Math.min(take, fit);
                    ok = cache.reserve(s.slot, s.computed + take);
                }
            }
            if (!ok) {
                running.remove(s);
                if (running.isEmpty()) {
                    // Alone and still out of blocks: the pool cannot hold this sequence any longer.
                    finish(s, StopReason.CONTEXT_FULL);
                } else {
                    preempt(s);
                }
                continue;
            }
            s.plannedStep = step;
            plan.add(new Planned(s, take, null));
            budget -= take;
        }
        return budget;
    }

    /** Admits waiting requests while slots, budget and KV blocks allow; returns the budget left. */
    private int admit(List<Planned> plan, int budget) {
        int blockSize = blockSize();
        for (Iterator<Sequence> it = waiting.iterator(); it.hasNext() && budget > 0 && !freeSlots.isEmpty(); ) {
            Sequence s = it.next();
            if (prefixInFlight(s)) {
                continue;
            }
            int slot = freeSlots.peekFirst();
            int reused = cache.sharePrefix(slot, s.tokenArray());
            if (cache.blocksNeeded(slot, s.size() + 1) > cache.freeBlocks()) {
                cache.undoSharePrefix(slot);
                if (running.isEmpty() && cache.blocksFor(s.size() + 1) > cache.blocks()) {
                    it.remove(); // grew beyond the whole pool while it ran
                    if (s.countedInQueue) {
                        s.countedInQueue = false;
                        queued.decrementAndGet();
                    }
                    finish(s, StopReason.CONTEXT_FULL);
                    continue;
                }
                break; // not enough memory for its prompt now; keep the order
            }
            int take = Math.min(s.size() - reused, budget);
            cache.reserve(slot, reused + take);
            freeSlots.pollFirst();
            it.remove();
            s.slot = slot;
            s.computed = reused;
            s.order = admissions++;
            if (!s.admittedOnce) {
                s.admittedOnce = true;
                s.admitted = System.nanoTime();
                s.cachedPromptTokens = Math.min(reused, s.promptLength);
            }
            if (s.countedInQueue) {
                s.countedInQueue = false;
                queued.decrementAndGet();
            }
            for (int b = reused / blockSize; b < s.prefixHashes.length; b++) {
                inflightPrefixes.putIfAbsent(s.prefixHashes[b], s);
            }
            running.add(s);
            plan.add(new Planned(s, take, null));
            budget -= take;
        }
        return budget;
    }

    /**
     * Offers proposals to the planned decodes, oldest first, each up to what the budget, its token limit, the
     * context and the free KV blocks allow (never preempting), and puts them into the plan.
     *
     * @return whether any proposal is not empty
     */
    private boolean propose(List<Planned> plan, int budget) {
        int limit = Math.min(contextLength, cache.capacity());
        List<Integer> at = new ArrayList<>();
        List<Drafter> drafters = new ArrayList<>();
        List<TokenHistory> contexts = new ArrayList<>();
        int[] max = new int[plan.size()];
        for (int i = 0; i < plan.size() && budget > 0; i++) {
            Sequence s = plan.get(i).seq;
            if (plan.get(i).take != 1 || s.pending() != 1 || s.generated == 0) {
                continue; // not decoding: prompt (or recomputation) rows
            }
            // Every accepted token must fit the request's budget (the model adds one of its own) and the context.
            int k = Math.min(Math.min(spec.draftMax(), budget),
                    Math.min(s.request.maxTokens() - s.generated - 1, limit - s.size()));
            if (k > 0 && !cache.reserve(s.slot, s.computed + 1 + k)) {
                k = Math.min(k, cache.reachableLength(s.slot) - s.computed - 1);
                if (k > 0) {
                    cache.reserve(s.slot, s.computed + 1 + k);
                }
            }
            if (k <= 0) {
                continue;
            }
            if (s.drafter == null) {
                s.drafter = drafts.open(s.request.sampling());
            }
            max[at.size()] = k;
            at.add(i);
            drafters.add(s.drafter);
            contexts.add(s.context);
            budget -= k;
        }
        if (at.isEmpty()) {
            return false;
        }
        Draft[] proposals = drafts.propose(drafters, contexts, Arrays.copyOf(max, at.size()));
        boolean any = false;
        for (int j = 0; j < at.size(); j++) {
            Draft d = proposals[j].size() < spec.draftMin() ? Draft.EMPTY : proposals[j];
            plan.set(at.get(j), new Planned(plan.get(at.get(j)).seq, 1, d));
            any |= !d.isEmpty();
        }
        return any;
    }

    /** The most recently admitted running sequence other than {@code s} not yet planned in this step. */
    private Sequence latestUnplanned(Sequence s, long step) {
        for (int i = running.size() - 1; i >= 0; i--) {
            Sequence c = running.get(i);
            if (c != s && c.plannedStep != step) {
                return c;
            }
        }
        return null;
    }

    private boolean prefixInFlight(Sequence s) {
        if (inflightPrefixes.isEmpty() || s.prefixHashes.length == 0) {
            return false;
        }
        int cached = cache.cachedPrefixBlocks(s.tokenArray());
        if (cached >= s.prefixHashes.length) {
            return false;
        }
        Sequence owner = inflightPrefixes.get(s.prefixHashes[cached]);
        return owner != null && owner != s;
    }

    private void forward(List<Planned> plan) {
        int rows = 0;
        for (Planned p : plan) {
            rows += p.rows();
        }
        int[] tokens = new int[rows];
        int[] seqs = new int[rows];
        int[] positions = new int[rows];
        int[] logitRows = new int[rows];
        List<Planned> sampled = new ArrayList<>();
        List<Integer> firstLogit = new ArrayList<>();
        int nLogits = 0;
        int r = 0;
        for (Planned p : plan) {
            Sequence s = p.seq;
            Draft draft = p.draft == null ? Draft.EMPTY : p.draft;
            for (int j = 0; j < p.rows(); j++, r++) {
                tokens[r] = j < p.take ? s.context.get(s.computed + j) : draft.token(j - p.take);
                seqs[r] = s.slot;
                positions[r] = s.computed + j;
            }
            if (s.computed + p.take == s.size()) {
                // The logits after its last token and after each proposed one.
                sampled.add(p);
                firstLogit.add(nLogits);
                for (int j = r - 1 - draft.size(); j < r; j++) {
                    logitRows[nLogits++] = j;
                }
            }
        }
        boolean dummyLogits = nLogits == 0;
        int[] wanted = dummyLogits ? new int[] {rows - 1} : Arrays.copyOf(logitRows, nLogits);
        Tensor logits = model.forward(new Batch(tokens, seqs, positions, wanted), cache);
        steps.increment();
        for (Planned p : plan) {
            p.seq.computed += p.take;
            if (p.seq.computed >= p.seq.promptLength || p.seq.computed >= p.seq.prefixHashes.length * blockSize()) {
                releaseInflight(p.seq);
            }
        }
        if (dummyLogits) {
            return;
        }
        float[] host = hostLogits.copy(logits);
        int vocab = model.config().vocabSize();
        for (int i = 0; i < sampled.size(); i++) {
            Planned p = sampled.get(i);
            Sequence s = p.seq;
            Draft draft = p.draft == null ? Draft.EMPTY : p.draft;
            int accepted = s.verifier.walk(host, firstLogit.get(i), vocab, draft, s.context, t -> accept(s, t));
            if (p.draft != null) {
                countProposal(s, draft, accepted);
            }
            if (s.ending != null) {
                retire(s, s.ending);
            }
        }
        long now = System.nanoTime();
        synchronized (rateSamples) {
            rateSamples.addLast(new long[] {now, generatedTokens.sum()});
            while (rateSamples.size() > 2 && now - rateSamples.peekFirst()[0] > WINDOW_NANOS) {
                rateSamples.pollFirst();
            }
        }
    }

    /** Counts a verified proposal and, if the sequence goes on, forgets the keys and values of rejected tokens. */
    private void countProposal(Sequence s, Draft draft, int accepted) {
        speculated = speculated.plus(new SpeculationStats(1, draft.isEmpty() ? 0 : 1, draft.size(), accepted, 0, 0));
        s.draftedTokens += draft.size();
        s.acceptedDraftTokens += accepted;
        if (s.ending == null) {
            s.computed += accepted;
            // Also returns the blocks reserved for draft positions the proposal did not use.
            cache.truncate(s.slot, s.computed);
        }
    }

    /**
     * Takes a settled token into the sequence (already in its context) and streams it; false if the sequence
     * ends with it ({@link Sequence#ending} says why; it retires once its step is counted).
     */
    private boolean accept(Sequence s, int next) {
        int index = s.generated++;
        generatedTokens.increment();
        if (index == 0) {
            s.firstToken = System.nanoTime();
            ttft.observe((s.firstToken - s.submitted) / 1e9);
        }
        if (!s.request.ignoreEos() && tokenizer.isEndOfGeneration(next)) {
            s.ending = StopReason.END_OF_TEXT;
            return false;
        }
        String piece = s.stops.push(s.decoder.push(next));
        s.text.append(piece);
        s.submission.emit(new Token(index, next, piece));
        if (s.stops.stopped()) {
            s.ending = StopReason.STOP_STRING;
        } else if (s.generated >= s.request.maxTokens()) {
            s.ending = StopReason.MAX_TOKENS;
        } else if (s.size() > Math.min(contextLength, cache.capacity())) {
            // The last position has been evaluated and its token drawn, as the generator does.
            s.ending = StopReason.CONTEXT_FULL;
        }
        return s.ending == null;
    }

    private void retire(Sequence s, StopReason reason) {
        running.remove(s);
        finish(s, reason);
    }

    /** Ends a sequence that is no longer in {@code running}. */
    private void finish(Sequence s, StopReason reason) {
        releaseSlot(s);
        s.closeDrafter();
        if (!s.stops.stopped()) {
            String rest = s.stops.push(s.decoder.flush()) + s.stops.flush();
            if (!rest.isEmpty()) {
                s.text.append(rest);
                s.submission.emit(new Token(s.generated, Token.NONE, rest));
            }
        }
        long now = System.nanoTime();
        s.submission.complete(new Completion(s.text.toString(), s.context.range(0, s.promptLength),
                s.generatedTokens(), reason, s.cachedPromptTokens, s.admittedOnce ? s.admitted - s.submitted : 0,
                s.firstToken == 0 ? 0 : s.firstToken - s.submitted, now - s.submitted, s.preemptions,
                s.draftedTokens, s.acceptedDraftTokens));
    }

    private void preempt(Sequence s) {
        releaseSlot(s);
        s.computed = 0;
        s.preemptions++;
        s.prefixHashes = config.prefixSharing() ? cache.prefixHashes(s.tokenArray()) : new long[0];
        preemptions.increment();
        waiting.addFirst(s);
    }

    private void releaseSlot(Sequence s) {
        releaseInflight(s);
        if (s.slot >= 0) {
            cache.release(s.slot);
            freeSlots.addLast(s.slot);
            s.slot = -1;
        }
    }

    private void releaseInflight(Sequence s) {
        if (!inflightPrefixes.isEmpty()) {
            inflightPrefixes.values().removeIf(owner -> owner == s);
        }
    }

    private void failAll(Throwable t) {
        Sequence s;
        while ((s = inbox.poll()) != null) {
            waiting.add(s);
        }
        for (Sequence w : waiting) {
            w.submission.fail(t);
        }
        waiting.clear();
        for (Sequence run : running) {
            releaseSlot(run);
            run.submission.fail(t);
        }
        running.clear();
        queued.set(0);
    }

    /** Stops the loop; requests not finished fail with {@link CancellationException}; frees the KV cache. */
    @Override
    public void close() {
        closed = true;
        LockSupport.unpark(loop);
        try {
            loop.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        cache.close();
        delivery.close();
    }
}
