package dev.isthmus.engine.serving;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.generation.StopReason;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.lang.foreign.Arena;
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
    private Arena hostArena;
    private Tensor hostLogits;

    // Any thread.
    private final LongAdder requests = new LongAdder();
    private final LongAdder rejected = new LongAdder();
    private final LongAdder promptTokens = new LongAdder();
    private final LongAdder generatedTokens = new LongAdder();
    private final LongAdder preemptions = new LongAdder();
    private final LongAdder steps = new LongAdder();
    private final Histogram ttft = Histogram.latency();
    private final ArrayDeque<long[]> rateSamples = new ArrayDeque<>();
    private volatile int waitingCount;
    private volatile int runningCount;
    private volatile Throwable failure;

    private Engine(Transformer model, Tokenizer tokenizer, EngineConfig config) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.config = config;
        var c = model.config();
        long budget = config.kvMemoryBytes();
        if (budget == 0) {
            long perPosition = KvCache.Options.bytesPerBlock(c.layers(), c.kvDim(), 1, config.kvType());
            budget = Math.min(1L << 30, perPosition * config.maxBatch() * (long) c.contextLength());
        }
        KvCache.Options options = KvCache.Options.forBudget(budget, c.layers(), c.kvDim(), config.blockSize(),
                config.maxBatch(), c.contextLength(), config.kvType(), config.prefixSharing());
        this.cache = KvCache.paged(model, options);
        this.contextLength = c.contextLength();
        for (int s = 0; s < config.maxBatch(); s++) {
            freeSlots.add(s);
        }
        this.loop = Thread.ofPlatform().name("isthmus-engine").daemon().unstarted(this::run);
    }

    /** Starts an engine over a model's graph and tokenizer (the model stays the caller's). */
    public static Engine start(Transformer model, Tokenizer tokenizer, EngineConfig config) {
        Engine e = new Engine(model, tokenizer, config);
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

    /** Tokenizes a prompt ({@code addBos == null}: the vocabulary's default). */
    public int[] tokenize(String text, Boolean addBos, boolean parseSpecial) {
        return tokenizer.encode(text, addBos != null ? addBos : tokenizer.addBosByDefault(), parseSpecial);
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
                    System.nanoTime() - s.submitted, 0));
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
                tokensPerSecond());
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
            if (hostArena != null) {
                hostArena.close();
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
                s.submission.fail(new CancellationException("request cancelled"));
            }
        }
        for (Iterator<Sequence> it = running.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            if (s.submission.cancelRequested()) {
                it.remove();
                releaseSlot(s);
                s.submission.fail(new CancellationException("request cancelled"));
            }
        }
    }

    private record Planned(Sequence seq, int take) {
    }

    private void step() {
        int budget = config.maxBatchTokens();
        List<Planned> plan = new ArrayList<>();
        int blockSize = cache.blockSize();

        // 1. Running sequences: decodes first, then prompt chunks, each group oldest first.
        long step = ++stepCounter;
        List<Sequence> order = new ArrayList<>(running.size());
        for (Sequence s : running) {
            if (s.pending() == 1) {
                order.add(s);
            }
        }
        for (Sequence s : running) {
            if (s.pending() != 1) {
                order.add(s);
            }
        }
        for (Sequence s : order) {
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
                int fit = (cache.blocksOf(s.slot) + cache.freeBlocks()) * blockSize - s.computed;
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
            plan.add(new Planned(s, take));
            budget -= take;
        }

        // 2. Admission, first come first served, skipping requests whose prefix another sequence is computing.
        for (Iterator<Sequence> it = waiting.iterator(); it.hasNext() && budget > 0 && !freeSlots.isEmpty(); ) {
            Sequence s = it.next();
            if (prefixInFlight(s)) {
                continue;
            }
            int slot = freeSlots.peekFirst();
            int reused = cache.sharePrefix(slot, s.tokenArray());
            if (cache.blocksNeeded(slot, s.size + 1) > cache.freeBlocks()) {
                cache.undoSharePrefix(slot);
                if (running.isEmpty() && cache.blocksFor(s.size + 1) > cache.blocks()) {
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
            int take = Math.min(s.size - reused, budget);
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
            plan.add(new Planned(s, take));
            budget -= take;
        }
        waitingCount = waiting.size();
        runningCount = running.size();
        if (plan.isEmpty()) {
            LockSupport.parkNanos(this, 1_000_000L);
            return;
        }
        forward(plan);
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
            rows += p.take;
        }
        int[] tokens = new int[rows];
        int[] seqs = new int[rows];
        int[] positions = new int[rows];
        int[] logitRows = new int[plan.size()];
        Sequence[] sampled = new Sequence[plan.size()];
        int nLogits = 0;
        int r = 0;
        for (Planned p : plan) {
            Sequence s = p.seq;
            for (int j = 0; j < p.take; j++, r++) {
                tokens[r] = s.tokens[s.computed + j];
                seqs[r] = s.slot;
                positions[r] = s.computed + j;
            }
            if (s.computed + p.take == s.size) {
                logitRows[nLogits] = r - 1;
                sampled[nLogits++] = s;
            }
        }
        boolean dummyLogits = nLogits == 0;
        int[] wanted = dummyLogits ? new int[] {rows - 1} : Arrays.copyOf(logitRows, nLogits);
        Tensor logits = model.forward(new Batch(tokens, seqs, positions, wanted), cache);
        steps.increment();
        for (Planned p : plan) {
            p.seq.computed += p.take;
            if (p.seq.computed >= p.seq.promptLength || p.seq.computed >= p.seq.prefixHashes.length * cache.blockSize()) {
                releaseInflight(p.seq);
            }
        }
        if (dummyLogits) {
            return;
        }
        float[] host = toHost(logits, nLogits);
        int vocab = model.config().vocabSize();
        for (int i = 0; i < nLogits; i++) {
            Sequence s = sampled[i];
            float[] row = Arrays.copyOfRange(host, i * vocab, (i + 1) * vocab);
            int next = s.sampler.sample(row);
            s.sampler.accept(next);
            accept(s, next);
        }
        long now = System.nanoTime();
        synchronized (rateSamples) {
            rateSamples.addLast(new long[] {now, generatedTokens.sum()});
            while (rateSamples.size() > 2 && now - rateSamples.peekFirst()[0] > WINDOW_NANOS) {
                rateSamples.pollFirst();
            }
        }
    }

    private void accept(Sequence s, int next) {
        s.append(next);
        int index = s.generated++;
        generatedTokens.increment();
        if (index == 0) {
            s.firstToken = System.nanoTime();
            ttft.observe((s.firstToken - s.submitted) / 1e9);
        }
        if (!s.request.ignoreEos() && tokenizer.isEndOfGeneration(next)) {
            retire(s, StopReason.END_OF_TEXT);
            return;
        }
        String piece = s.stops.push(s.decoder.push(next));
        s.text.append(piece);
        s.submission.emit(new Token(index, next, piece));
        if (s.stops.stopped()) {
            retire(s, StopReason.STOP_STRING);
        } else if (s.generated >= s.request.maxTokens()) {
            retire(s, StopReason.MAX_TOKENS);
        } else if (s.size >= Math.min(contextLength, cache.capacity())) {
            retire(s, StopReason.CONTEXT_FULL);
        }
    }

    private void retire(Sequence s, StopReason reason) {
        running.remove(s);
        finish(s, reason);
    }

    /** Ends a sequence that is no longer in {@code running}. */
    private void finish(Sequence s, StopReason reason) {
        releaseSlot(s);
        if (!s.stops.stopped()) {
            String rest = s.stops.push(s.decoder.flush()) + s.stops.flush();
            if (!rest.isEmpty()) {
                s.text.append(rest);
                s.submission.emit(new Token(s.generated, Token.NONE, rest));
            }
        }
        long now = System.nanoTime();
        s.submission.complete(new Completion(s.text.toString(), Arrays.copyOf(s.tokens, s.promptLength),
                s.generatedTokens(), reason, s.cachedPromptTokens, s.admittedOnce ? s.admitted - s.submitted : 0,
                s.firstToken == 0 ? 0 : s.firstToken - s.submitted, now - s.submitted, s.preemptions));
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

    private float[] toHost(Tensor logits, int rows) {
        if (model.backend().device().hostAccessible()) {
            return logits.toFloatArray();
        }
        int vocab = model.config().vocabSize();
        if (hostLogits == null || hostLogits.dim(0) < rows) {
            if (hostArena != null) {
                hostArena.close();
            }
            hostArena = Arena.ofConfined();
            hostLogits = Tensor.allocate(hostArena, DType.F32, Math.max(rows, config.maxBatch()), vocab);
        }
        Tensor dst = hostLogits.slice(0, rows);
        model.backend().copy(logits, dst);
        return dst.toFloatArray();
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
