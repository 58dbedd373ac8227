package dev.isthmus.engine.speculative;

import dev.isthmus.api.DType;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.HostLogits;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.SamplingTransform;
import dev.isthmus.engine.sampling.TokenDistribution;
import dev.isthmus.engine.sampling.TokenHistory;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The drafters of a {@link DraftModel}, sharing one paged KV cache: each drafter holds one of its sequences while
 * it has state, and a call to {@link #propose} evaluates all of its drafters' uncached context tokens together
 * (in passes of at most {@value Transformer#PREFILL_CHUNK} rows, as the target's prefill), then one draft
 * position of every drafter still drafting per forward pass.
 *
 * <p>A drafter keeps the tokens its sequence holds; on every proposal it keeps the longest prefix shared with
 * the accepted context and truncates the rest, so rejected proposals are rolled back. When sequences or blocks
 * run short, drafters not asked in the current call lose their state, least recently asked first (they
 * re-evaluate their context when next asked); a drafter that still finds no room proposes fewer tokens or
 * none. Prefix sharing stays off: a drafter's cache is truncated into blocks it filled with rejected drafts,
 * and a block shared meanwhile would need a copy its reservation did not count.
 */
final class ModelDraftPool implements DraftPool {
    /** Mixed into a generation's seed so the draft's draws are independent of the verifier's. */
    private static final long SEED_MIX = 0x9E3779B97F4A7C15L;
    /** KV positions per block of the pool's cache. */
    private static final int BLOCK_SIZE = 16;

    private final Transformer model;
    private final Tokenizer tokenizer;
    private final double pMin;
    private final int capacity;
    private final int vocab;
    private final KvCache cache;
    private final HostLogits host;
    private final ArrayDeque<Integer> freeSequences = new ArrayDeque<>();
    private final List<Member> holders = new ArrayList<>();
    private long clock;

    /**
     * @param sequences drafters that hold state at once
     * @param capacity  positions a generation may use (at most the draft's context window)
     * @param positions KV positions of the cache in all (at least room for one generation's capacity)
     */
    ModelDraftPool(Transformer model, Tokenizer tokenizer, double pMin, int sequences, int capacity, int positions,
                   DType kvType) {
        if (sequences < 1 || capacity < 1) {
            throw new IllegalArgumentException("a draft pool needs at least one sequence and one position, got "
                    + sequences + " and " + capacity);
        }
        this.model = model;
        this.tokenizer = tokenizer;
        this.pMin = pMin;
        this.capacity = Math.min(capacity, model.config().contextLength());
        this.vocab = model.config().vocabSize();
        int blockSize = Math.min(BLOCK_SIZE, this.capacity);
        int blocks = (int) ((Math.max(positions, this.capacity) + (long) blockSize - 1) / blockSize);
        this.cache = KvCache.paged(model, new KvCache.Options(blockSize, blocks, sequences, this.capacity, kvType,
                false));
        this.host = new HostLogits(model.backend(), vocab);
        for (int s = 0; s < sequences; s++) {
            freeSequences.add(s);
        }
    }

    @Override
    public Drafter open(SamplingParams sampling) {
        return new Member(sampling, false);
    }

    /** A drafter that closes this pool when it is closed (one generation alone). */
    Drafter openOwner(SamplingParams sampling) {
        return new Member(sampling, true);
    }

    @Override
    public Draft[] propose(List<Drafter> drafters, List<TokenHistory> contexts, int[] max) {
        if (drafters.size() != contexts.size() || drafters.size() != max.length) {
            throw new IllegalArgumentException(drafters.size() + " drafters, " + contexts.size() + " contexts, "
                    + max.length + " limits");
        }
        int n = max.length;
        long now = ++clock;
        Member[] members = new Member[n];
        for (int i = 0; i < n; i++) {
            members[i] = own(drafters.get(i), now);
        }
        int[] limit = new int[n];
        for (int i = 0; i < n; i++) {
            limit[i] = members[i].prepare(contexts.get(i), max[i], now);
        }
        return draft(members, contexts, limit, catchUp(members, contexts, limit));
    }

    private Member own(Drafter d, long now) {
        if (!(d instanceof Member m) || m.pool() != this) {
            throw new IllegalArgumentException("a drafter of another pool: " + d);
        }
        if (m.lastUsed == now) {
            throw new IllegalArgumentException("the same drafter twice in one call");
        }
        m.lastUsed = now;
        return m;
    }

    /**
     * Makes every active drafter's sequence hold its whole context and returns the logits after it, per drafter
     * ({@code null} where {@code limit} is 0).
     */
    private float[][] catchUp(Member[] members, List<TokenHistory> contexts, int[] limit) {
        float[][] logits = new float[members.length][];
        Rows rows = new Rows(Transformer.PREFILL_CHUNK);
        for (int i = 0; i < members.length; i++) {
            if (limit[i] == 0) {
                continue;
            }
            Member m = members[i];
            TokenHistory context = contexts.get(i);
            int from = m.cached.size();
            for (int p = from; p < context.size(); p++) {
                rows.add(context.get(p), m.seq, p, p == context.size() - 1 ? i : -1);
                if (rows.size == rows.tokens.length) {
                    run(rows, logits);
                }
            }
            m.cached.addAll(context, from);
        }
        run(rows, logits);
        return logits;
    }

    /** Draws every active drafter's proposal, one position of all of them per forward pass. */
    private Draft[] draft(Member[] members, List<TokenHistory> contexts, int[] limit, float[][] logits) {
        int n = members.length;
        Draft[] drafts = new Draft[n];
        Arrays.fill(drafts, Draft.EMPTY);
        TokenHistory[] histories = new TokenHistory[n];
        int[][] tokens = new int[n][];
        int[] count = new int[n];
        List<List<TokenDistribution>> qs = new ArrayList<>();
        boolean[] drafting = new boolean[n];
        for (int i = 0; i < n; i++) {
            drafting[i] = limit[i] > 0;
            histories[i] = drafting[i] ? contexts.get(i).copy() : null;
            tokens[i] = new int[limit[i]];
            qs.add(drafting[i] && !members[i].transform.isGreedy() ? new ArrayList<>() : null);
        }
        Rows rows = new Rows(n);
        do {
            for (int i = 0; i < n; i++) {
                if (!drafting[i]) {
                    continue;
                }
                Member m = members[i];
                int token = m.choose(logits[i], histories[i], qs.get(i));
                if (token < 0) {
                    drafting[i] = false;
                    continue;
                }
                tokens[i][count[i]++] = token;
                histories[i].add(token);
                // The last token of a proposal is never evaluated: nothing follows it.
                if (count[i] == limit[i] || tokenizer.isEndOfGeneration(token)) {
                    drafting[i] = false;
                    continue;
                }
                rows.add(token, m.seq, contexts.get(i).size() + count[i] - 1, i);
                m.cached.add(token);
            }
        } while (run(rows, logits));
        for (int i = 0; i < n; i++) {
            if (count[i] > 0) {
                List<TokenDistribution> q = qs.get(i);
                drafts[i] = new Draft(Arrays.copyOf(tokens[i], count[i]),
                        q == null ? null : q.toArray(TokenDistribution[]::new));
            }
        }
        return drafts;
    }

    /** Runs the rows (if any) through the draft, storing each owner's logits; false if there were none. */
    private boolean run(Rows rows, float[][] logits) {
        if (rows.size == 0) {
            return false;
        }
        int wanted = 0;
        for (int r = 0; r < rows.size; r++) {
            wanted += rows.owners[r] >= 0 ? 1 : 0;
        }
        int[] logitRows = new int[Math.max(1, wanted)];
        logitRows[0] = rows.size - 1; // a pass must produce some logits, even if only catching up
        for (int r = 0, j = 0; r < rows.size; r++) {
            if (rows.owners[r] >= 0) {
                logitRows[j++] = r;
            }
        }
        Batch batch = new Batch(Arrays.copyOf(rows.tokens, rows.size), Arrays.copyOf(rows.seqs, rows.size),
                Arrays.copyOf(rows.positions, rows.size), logitRows);
        float[] all = host.copy(model.forward(batch, cache));
        for (int j = 0; j < wanted; j++) {
            logits[rows.owners[logitRows[j]]] = Arrays.copyOfRange(all, j * vocab, (j + 1) * vocab);
        }
        rows.size = 0;
        return true;
    }

    /** Frees a cache sequence for {@code now}'s call, taking one from the least recently asked other drafter. */
    private boolean evictOther(long now) {
        Member victim = null;
        for (Member m : holders) {
            if (m.lastUsed != now && (victim == null || m.lastUsed < victim.lastUsed)) {
                victim = m;
            }
        }
        if (victim == null) {
            return false;
        }
        victim.release();
        return true;
    }

    @Override
    public void close() {
        try {
            cache.close();
        } finally {
            host.close();
        }
    }

    /** The rows of one forward pass of the draft, and per row the drafter whose logits it gives (-1: none). */
    private static final class Rows {
        final int[] tokens;
        final int[] seqs;
        final int[] positions;
        final int[] owners;
        int size;

        Rows(int capacity) {
            tokens = new int[capacity];
            seqs = new int[capacity];
            positions = new int[capacity];
            owners = new int[capacity];
        }

        void add(int token, int seq, int position, int owner) {
            tokens[size] = token;
            seqs[size] = seq;
            positions[size] = position;
            owners[size++] = owner;
        }
    }

    /** One generation's drafter: its sampling, and the cache sequence it holds (if any) with the tokens in it. */
    private final class Member implements Drafter {
        private final SamplingTransform transform;
        private final SplittableRandom random;
        private final boolean ownsPool;
        /** The tokens whose keys and values the sequence holds, position by position. */
        private final TokenHistory cached = new TokenHistory();
        private int seq = -1;
        private long lastUsed;

        Member(SamplingParams sampling, boolean ownsPool) {
            this.transform = new SamplingTransform(sampling);
            this.random = new SplittableRandom(sampling.seed() ^ SEED_MIX);
            this.ownsPool = ownsPool;
        }

        ModelDraftPool pool() {
            return ModelDraftPool.this;
        }

        @Override
        public void prefill(TokenHistory prompt) {
            int n = prompt.size() - 1;
            if (n > 0 && n <= capacity) {
                TokenHistory head = new TokenHistory(prompt.range(0, n));
                long now = ++clock;
                lastUsed = now;
                int[] limit = {prepare(head, 1, now)};
                catchUp(new Member[] {this}, List.of(head), limit);
            }
        }

        @Override
        public Draft propose(TokenHistory context, int max) {
            return ModelDraftPool.this.propose(List.of(this), List.of(context), new int[] {max})[0];
        }

        /**
         * Makes the sequence hold the longest cached prefix of {@code context} (at most all but its last token)
         * with blocks for the rest and for the draft positions to evaluate.
         *
         * @return tokens this drafter may propose now (0: none)
         */
        int prepare(TokenHistory context, int max, long now) {
            int size = context.size();
            // Draft token i is evaluated at position size + i (the last one never is): all must fit.
            int m = Math.min(max, capacity - size + 1);
            if (m <= 0 || size == 0 || (seq < 0 && !acquire(now))) {
                return 0;
            }
            int keep = Math.min(cached.commonPrefix(context), size - 1);
            cache.truncate(seq, keep);
            cached.truncate(keep);
            while (!cache.reserve(seq, size + m - 1)) {
                if (!evictOther(now)) {
                    int fit = cache.reachableLength(seq) - size + 1;
                    if (fit <= 0) {
                        release();
                        return 0;
                    }
                    m = Math.min(m, fit);
                }
            }
            return m;
        }

        private boolean acquire(long now) {
            if (freeSequences.isEmpty() && !evictOther(now)) {
                return false;
            }
            seq = freeSequences.poll();
            holders.add(this);
            return true;
        }

        /** The next draft token from the draft's logits, or -1 where the draft is too unsure to go on. */
        int choose(float[] logits, TokenHistory history, List<TokenDistribution> qs) {
            if (transform.isGreedy()) {
                int token = transform.greedy(logits, history);
                return pMin > 0 && SamplingTransform.softmaxProbability(logits, token) < pMin ? -1 : token;
            }
            TokenDistribution q = transform.distribution(logits, history);
            if (q.maxProbability() < pMin) {
                return -1;
            }
            qs.add(q);
            return q.sample(random.nextDouble());
        }

        /** Gives the sequence back; the next proposal starts from an empty cache. */
        void release() {
            if (seq >= 0) {
                cache.release(seq);
                freeSequences.add(seq);
                holders.remove(this);
                seq = -1;
                cached.truncate(0);
            }
        }

        @Override
        public void close() {
            release();
            if (ownsPool) {
                ModelDraftPool.this.close();
            }
        }
    }
}
