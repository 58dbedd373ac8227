package dev.isthmus.engine.graph;

import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * Keys and values of past positions, per layer, in a pool of fixed-size blocks (vLLM's PagedAttention):
 * each sequence has a block table mapping its positions to blocks, so sequences grow without a
 * contiguous reservation and blocks return to the pool when a sequence ends.
 *
 * <p><b>Prefix sharing.</b> When a block fills up with known tokens it is registered under a hash of the
 * whole token prefix it ends (the parent's hash and the block's tokens, both verified on lookup). A new
 * sequence whose prompt starts with the same tokens takes those blocks with {@link #sharePrefix} instead
 * of recomputing them; blocks are reference-counted, and a write into a block that another sequence
 * also holds copies it first (copy-on-write, e.g. after {@link #fork} or {@link #truncate}). A registered
 * block whose last holder lets go stays in the pool as <i>cached</i>: still findable by its prefix, and
 * reused for new data (least recently released first) only when no never-used block is left.
 *
 * <p><b>Reservation.</b> {@link #reserve} gives a sequence the blocks for a given length or answers false
 * (taking nothing), which is how a scheduler learns that it must wait or preempt; a forward pass over a
 * position without a block takes one on the fly and fails if the pool is empty.
 *
 * <p>The caches of {@link Transformer#newCache} ({@code sequences × capacity}) are this pool sized so
 * that every sequence can reach {@code capacity} positions. Not thread-safe: one thread drives a cache;
 * {@link #stats()} may be read from any thread.
 */
public final class KvCache implements AutoCloseable {
    /** Blocks per sequence in a cache of {@link Transformer#newCache} are at most this many positions. */
    private static final int LEGACY_BLOCK_SIZE = 32;

    /**
     * Shape of a paged cache.
     *
     * @param blockSize     positions per block
     * @param blocks        blocks in the pool
     * @param maxSequences  sequence indices {@code 0 .. maxSequences-1} that may hold blocks
     * @param maxPositions  positions a sequence may reach (the model's context window)
     * @param dtype         F32, F16 or BF16 (what the backend supports for {@code COPY_ROWS} and {@code ATTENTION})
     * @param prefixSharing whether full blocks are registered for {@link #sharePrefix}
     */
    public record Options(int blockSize, int blocks, int maxSequences, int maxPositions, DType dtype,
                          boolean prefixSharing) {
        public Options {
            if (blockSize <= 0 || blocks <= 0 || maxSequences <= 0 || maxPositions <= 0) {
                throw new IllegalArgumentException("KV cache needs positive block size, blocks, sequences and positions: "
                        + blockSize + ", " + blocks + ", " + maxSequences + ", " + maxPositions);
            }
        }

        /**
         * Options whose pool fits in {@code budgetBytes} of cache memory, for a model of {@code layers}
         * layers with {@code kvDim} key (and value) elements per position.
         */
        public static Options forBudget(long budgetBytes, int layers, int kvDim, int blockSize, int maxSequences,
                                        int maxPositions, DType dtype, boolean prefixSharing) {
            long perBlock = bytesPerBlock(layers, kvDim, blockSize, dtype);
            long blocks = budgetBytes / perBlock;
            if (blocks < 1) {
                throw new IllegalArgumentException("a KV budget of " + budgetBytes + " bytes holds no block of "
                        + perBlock + " bytes");
            }
            return new Options(blockSize, (int) Math.min(Integer.MAX_VALUE / blockSize, blocks), maxSequences,
                    maxPositions, dtype, prefixSharing);
        }

        /** Bytes of one block: keys and values of every layer. */
        public static long bytesPerBlock(int layers, int kvDim, int blockSize, DType dtype) {
            return 2L * layers * dtype.rowBytes((long) kvDim * blockSize);
        }
    }

    /**
     * Pool counters.
     *
     * @param blocks           blocks in the pool
     * @param used             blocks held by at least one sequence
     * @param cached           unheld blocks that still hold a registered prefix (reusable, evictable)
     * @param allocated        blocks ever taken from the pool for new data (fresh computation)
     * @param prefixHitBlocks  blocks ever taken by {@link #sharePrefix} instead of being computed
     * @param evictions        cached blocks reused for new data
     * @param copiesOnWrite    shared blocks copied before a write
     * @param registered       blocks currently findable by prefix
     */
    public record Stats(int blocks, int used, int cached, long allocated, long prefixHitBlocks, long evictions,
                        long copiesOnWrite, int registered) {
        /** Blocks holding no data of any sequence (never used, or cached but unheld). */
        public int free() {
            return blocks - used;
        }
    }

    private final Backend backend;
    private final int kvHeads;
    private final int headDim;
    private final int blockSize;
    private final int blockCount;
    private final int sequences;
    private final int maxPositions;
    private final boolean prefixSharing;
    private final Tensor[] keys;
    private final Tensor[] values;

    // Per block.
    private final int[] refCount;
    private final long[] blockHash;       // chain hash of a registered block
    private final long[] blockParentHash; // chain hash of the registered block's parent (0 for the first)
    private final int[][] blockTokens;    // tokens of a registered block, null if unregistered
    private final ArrayDeque<Integer> free = new ArrayDeque<>();
    private final LinkedHashSet<Integer> cachedLru = new LinkedHashSet<>();
    private final Map<Long, Integer> prefixIndex = new HashMap<>();

    // Per sequence.
    private final int[][] tables;
    private final int[] tableSizes;
    private final int[] lengths;
    private final int[][] seqTokens;
    private final long[][] chainHashes;   // per full block, the chain hash of the prefix it ends
    private final int[] hashedBlocks;     // leading full blocks whose chain hash is known

    private volatile Stats stats;
    private long allocated;
    private long prefixHits;
    private long evictions;
    private long copies;

    /**
     * A cache for {@code sequences} sequences of up to {@code capacity} tokens each (the pool holds
     * exactly enough blocks for all of them at full length).
     *
     * @param dtype F32, F16 or BF16 (what the backend supports for {@code COPY_ROWS} and {@code ATTENTION})
     */
    public KvCache(Backend backend, int layers, int kvHeads, int headDim, int sequences, int capacity, DType dtype) {
        this(backend, layers, kvHeads, headDim, legacyOptions(sequences, capacity, dtype));
    }

    /** A paged cache. */
    public KvCache(Backend backend, int layers, int kvHeads, int headDim, Options options) {
        this.backend = backend;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.blockSize = options.blockSize();
        this.blockCount = options.blocks();
        this.sequences = options.maxSequences();
        this.maxPositions = options.maxPositions();
        this.prefixSharing = options.prefixSharing();
        this.keys = new Tensor[layers];
        this.values = new Tensor[layers];
        long slots = (long) blockCount * blockSize;
        try {
            for (int l = 0; l < layers; l++) {
                keys[l] = backend.allocate(options.dtype(), slots, (long) kvHeads * headDim);
                values[l] = backend.allocate(options.dtype(), slots, (long) kvHeads * headDim);
            }
        } catch (RuntimeException | OutOfMemoryError e) {
            close();
            throw e;
        }
        refCount = new int[blockCount];
        blockHash = new long[blockCount];
        blockParentHash = new long[blockCount];
        blockTokens = new int[blockCount][];
        for (int b = 0; b < blockCount; b++) {
            free.add(b);
        }
        int maxBlocksPerSeq = (maxPositions + blockSize - 1) / blockSize;
        tables = new int[sequences][];
        tableSizes = new int[sequences];
        lengths = new int[sequences];
        seqTokens = new int[sequences][];
        chainHashes = new long[sequences][];
        hashedBlocks = new int[sequences];
        for (int s = 0; s < sequences; s++) {
            tables[s] = new int[Math.min(maxBlocksPerSeq, 8)];
            seqTokens[s] = new int[Math.min(maxPositions, 64)];
            chainHashes[s] = new long[Math.min(maxBlocksPerSeq, 8)];
        }
        publishStats();
    }

    /** A paged cache fitting {@code model} (its layers and KV heads), on the model's backend. */
    public static KvCache paged(Transformer model, Options options) {
        var c = model.config();
        return new KvCache(model.backend(), c.layers(), c.kvHeads(), c.headDim(), options);
    }

    private static Options legacyOptions(int sequences, int capacity, DType dtype) {
        if (sequences <= 0 || capacity <= 0) {
            throw new IllegalArgumentException("KV cache needs at least one sequence and one slot");
        }
        int bs = Math.min(capacity, LEGACY_BLOCK_SIZE);
        int perSeq = (capacity + bs - 1) / bs;
        return new Options(bs, Math.multiplyExact(sequences, perSeq), sequences, capacity, dtype, false);
    }

    /** Positions a sequence may reach. */
    public int capacity() {
        return maxPositions;
    }

    /** Sequence indices this cache serves. */
    public int sequences() {
        return sequences;
    }

    public int blockSize() {
        return blockSize;
    }

    /** Blocks in the pool. */
    public int blocks() {
        return blockCount;
    }

    /** Blocks that can be taken for new data now (never used, or cached and unheld). */
    public int freeBlocks() {
        return free.size() + cachedLru.size();
    }

    /** The pool's counters, as of the last change (safe to read from any thread). */
    public Stats stats() {
        return stats;
    }

    /** Positions currently held for sequence {@code seq}. */
    public int length(int seq) {
        checkSeq(seq);
        return lengths[seq];
    }

    /** Blocks a sequence holds. */
    public int blocksOf(int seq) {
        checkSeq(seq);
        return tableSizes[seq];
    }

    /**
     * Positions {@code seq} could hold with the blocks it has and every free one: the longest length
     * {@link #reserve} can grant it now (before the {@link #capacity()} limit).
     */
    public int reachableLength(int seq) {
        return (blocksOf(seq) + freeBlocks()) * blockSize();
    }

    /** Blocks {@code seq} would have to take from the pool to hold {@code length} positions. */
    public int blocksNeeded(int seq, int length) {
        checkSeq(seq);
        return Math.max(0, blocksFor(length) - tableSizes[seq]);
    }

    /** Blocks holding {@code length} positions. */
    public int blocksFor(int length) {
        return (length + blockSize - 1) / blockSize;
    }

    /**
     * Makes sure {@code seq} has blocks for positions {@code 0 .. length-1}.
     *
     * @return false, taking nothing, if the pool has too few free blocks
     * @throws IllegalArgumentException if {@code length} exceeds {@link #capacity()}
     */
    public boolean reserve(int seq, int length) {
        checkSeq(seq);
        if (length > maxPositions) {
            throw new IllegalArgumentException("position " + (length - 1) + " of sequence " + seq
                    + " exceeds the context of " + maxPositions + " tokens");
        }
        int need = blocksNeeded(seq, length);
        if (need > freeBlocks()) {
            return false;
        }
        for (int i = 0; i < need; i++) {
            appendBlock(seq, takeBlock());
        }
        publishStats();
        return true;
    }

    /**
     * Gives the empty sequence {@code seq} the registered blocks that hold a prefix of {@code tokens}:
     * whole blocks only, and never the block of the last token (whose logits the caller needs computed).
     *
     * @return positions now cached for {@code seq} (a multiple of {@link #blockSize()}); the caller
     * continues from there
     */
    public int sharePrefix(int seq, int[] tokens) {
        checkSeq(seq);
        if (lengths[seq] != 0 || tableSizes[seq] != 0) {
            throw new IllegalStateException("sequence " + seq + " is not empty");
        }
        if (!prefixSharing) {
            return 0;
        }
        int shareable = Math.max(0, tokens.length - 1) / blockSize;
        long parent = 0;
        int b = 0;
        for (; b < shareable; b++) {
            long h = chainHash(parent, tokens, b * blockSize);
            Integer block = prefixIndex.get(h);
            if (block == null || blockParentHash[block] != parent
                    || !Arrays.equals(blockTokens[block], 0, blockSize, tokens, b * blockSize, (b + 1) * blockSize)) {
                break;
            }
            if (refCount[block] == 0) {
                cachedLru.remove(block);
            }
            refCount[block]++;
            appendBlock(seq, block);
            ensureHashCapacity(seq, b + 1);
            chainHashes[seq][b] = h;
            parent = h;
        }
        int n = b * blockSize;
        ensureTokenCapacity(seq, n);
        System.arraycopy(tokens, 0, seqTokens[seq], 0, n);
        lengths[seq] = n;
        hashedBlocks[seq] = b;
        prefixHits += b;
        publishStats();
        return n;
    }

    /**
     * Returns the blocks {@link #sharePrefix} gave a sequence that then never ran (e.g. it could not be
     * admitted after all), without counting them as prefix hits.
     */
    public void undoSharePrefix(int seq) {
        checkSeq(seq);
        prefixHits -= Math.min(prefixHits, hashedBlocks[seq]);
        release(seq);
    }

    /**
     * How many leading whole blocks of {@code tokens} (excluding the block of the last token) are
     * registered now, i.e. what {@link #sharePrefix} would give.
     */
    public int cachedPrefixBlocks(int[] tokens) {
        if (!prefixSharing) {
            return 0;
        }
        long[] hashes = prefixHashes(tokens);
        long parent = 0;
        for (int b = 0; b < hashes.length; b++) {
            Integer block = prefixIndex.get(hashes[b]);
            if (block == null || blockParentHash[block] != parent
                    || !Arrays.equals(blockTokens[block], 0, blockSize, tokens, b * blockSize, (b + 1) * blockSize)) {
                return b;
            }
            parent = hashes[b];
        }
        return hashes.length;
    }

    /**
     * Chain hashes of the whole blocks of {@code tokens} before the block of its last token (the keys
     * under which {@link #sharePrefix} looks them up; equal hashes mean, barring collisions, equal prefixes).
     */
    public long[] prefixHashes(int[] tokens) {
        int shareable = Math.max(0, tokens.length - 1) / blockSize;
        long[] h = new long[shareable];
        long parent = 0;
        for (int b = 0; b < shareable; b++) {
            parent = h[b] = chainHash(parent, tokens, b * blockSize);
        }
        return h;
    }

    /**
     * Makes {@code dst} (empty) a copy of {@code src} sharing all its blocks; a later write by either
     * into a shared block copies that block first.
     */
    public void fork(int src, int dst) {
        checkSeq(src);
        checkSeq(dst);
        if (lengths[dst] != 0 || tableSizes[dst] != 0) {
            throw new IllegalStateException("sequence " + dst + " is not empty");
        }
        for (int i = 0; i < tableSizes[src]; i++) {
            int block = tables[src][i];
            if (refCount[block] == 0) {
                cachedLru.remove(block);
            }
            refCount[block]++;
            appendBlock(dst, block);
        }
        ensureTokenCapacity(dst, lengths[src]);
        System.arraycopy(seqTokens[src], 0, seqTokens[dst], 0, lengths[src]);
        lengths[dst] = lengths[src];
        ensureHashCapacity(dst, hashedBlocks[src]);
        System.arraycopy(chainHashes[src], 0, chainHashes[dst], 0, hashedBlocks[src]);
        hashedBlocks[dst] = hashedBlocks[src];
        publishStats();
    }

    /** Forgets positions from {@code length} on (rollback after rejected speculative tokens, or reuse). */
    public void truncate(int seq, int length) {
        checkSeq(seq);
        if (length < 0 || length > lengths[seq]) {
            throw new IllegalArgumentException("cannot truncate sequence " + seq + " of length " + lengths[seq]
                    + " to " + length);
        }
        lengths[seq] = length;
        hashedBlocks[seq] = Math.min(hashedBlocks[seq], length / blockSize);
        int keep = blocksFor(length);
        while (tableSizes[seq] > keep) {
            releaseBlock(tables[seq][--tableSizes[seq]]);
        }
        // A block cut in the middle will be overwritten from the cut on: stop offering it under its old prefix now,
        // so that no sequence takes it before that write and forces a copy no reservation counted.
        if (length % blockSize != 0 && refCount[tables[seq][keep - 1]] == 1) {
            unregister(tables[seq][keep - 1]);
        }
        publishStats();
    }

    /** Returns all of a sequence's blocks to the pool; the sequence is empty afterwards. */
    public void release(int seq) {
        truncate(seq, 0);
    }

    /** Layer {@code l}'s keys as rows of {@code kvHeads * headDim}, for {@code copyRows}. */
    Tensor keyRows(int l) {
        return keys[l];
    }

    Tensor valueRows(int l) {
        return values[l];
    }

    /** Layer {@code l}'s keys as {@code [slots, kvHeads, headDim]}, for {@code attention}. */
    Tensor keyHeads(int l) {
        return keys[l].reshape(keys[l].dim(0), kvHeads, headDim);
    }

    Tensor valueHeads(int l) {
        return values[l].reshape(values[l].dim(0), kvHeads, headDim);
    }

    /**
     * Cache slots of the batch's rows: checks that every position fits, takes missing blocks from the
     * pool, and copies shared blocks about to be written (copy-on-write).
     *
     * @throws IllegalStateException if the pool has no block left for a position
     */
    int[] slots(Batch batch) {
        int[] slots = new int[batch.size()];
        for (int i = 0; i < slots.length; i++) {
            int s = batch.seqs()[i];
            int p = batch.positions()[i];
            if (s < 0 || s >= sequences) {
                throw new IllegalArgumentException("sequence " + s + " outside the cache's " + sequences);
            }
            if (p < 0 || p >= maxPositions) {
                throw new IllegalArgumentException("position " + p + " of sequence " + s
                        + " exceeds the context of " + maxPositions + " tokens");
            }
            int b = p / blockSize;
            while (tableSizes[s] <= b) {
                if (freeBlocks() == 0) {
                    throw new IllegalStateException("KV cache pool exhausted: all " + blockCount + " blocks of "
                            + blockSize + " positions are in use (reserve blocks before the forward pass)");
                }
                appendBlock(s, takeBlock());
            }
            int block = tables[s][b];
            if (refCount[block] > 1) {
                block = copyOnWrite(s, b);
            } else if (blockTokens[block] != null) {
                unregister(block); // its contents are about to change
            }
            // A rewrite of a position invalidates the chain hashes from its block on.
            if (b < hashedBlocks[s] && p < lengths[s]) {
                hashedBlocks[s] = b;
            }
            slots[i] = block * blockSize + p % blockSize;
        }
        publishStats();
        return slots;
    }

    /** Records the batch's positions as cached, registers filled blocks, and returns the attention layout. */
    KvLayout commit(Batch batch) {
        int[] local = new int[batch.size()];
        int[] order = new int[batch.size()];
        int distinct = 0;
        Map<Integer, Integer> index = new HashMap<>();
        for (int i = 0; i < batch.size(); i++) {
            int s = batch.seqs()[i];
            int p = batch.positions()[i];
            ensureTokenCapacity(s, p + 1);
            seqTokens[s][p] = batch.tokens()[i];
            lengths[s] = Math.max(lengths[s], p + 1);
            Integer li = index.get(s);
            if (li == null) {
                li = distinct;
                index.put(s, li);
                order[distinct++] = s;
            }
            local[i] = li;
        }
        int[][] tablesOut = new int[distinct][];
        int[] contexts = new int[distinct];
        for (int i = 0; i < distinct; i++) {
            int s = order[i];
            tablesOut[i] = Arrays.copyOf(tables[s], tableSizes[s]);
            contexts[i] = lengths[s];
            if (prefixSharing) {
                registerFullBlocks(s);
            }
        }
        publishStats();
        return new KvLayout(blockSize, tablesOut, contexts, local, batch.positions());
    }

    private void registerFullBlocks(int s) {
        int full = lengths[s] / blockSize;
        ensureHashCapacity(s, full);
        for (int b = hashedBlocks[s]; b < full; b++) {
            long parent = b == 0 ? 0 : chainHashes[s][b - 1];
            long h = chainHash(parent, seqTokens[s], b * blockSize);
            chainHashes[s][b] = h;
            int block = tables[s][b];
            if (blockTokens[block] == null && !prefixIndex.containsKey(h)) {
                prefixIndex.put(h, block);
                blockHash[block] = h;
                blockParentHash[block] = parent;
                blockTokens[block] = Arrays.copyOfRange(seqTokens[s], b * blockSize, (b + 1) * blockSize);
            }
        }
        hashedBlocks[s] = Math.max(hashedBlocks[s], full);
    }

    private long chainHash(long parent, int[] tokens, int from) {
        long h = parent * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L;
        for (int i = from; i < from + blockSize; i++) {
            h = (h ^ tokens[i]) * 0xFF51AFD7ED558CCDL;
            h ^= h >>> 29;
        }
        h ^= h >>> 32;
        return h == 0 ? 1 : h;
    }

    private int takeBlock() {
        Integer b = free.pollFirst();
        if (b == null) {
            var it = cachedLru.iterator();
            b = it.next();
            it.remove();
            unregister(b);
            evictions++;
        }
        refCount[b] = 1;
        allocated++;
        return b;
    }

    private void releaseBlock(int block) {
        if (--refCount[block] == 0) {
            if (blockTokens[block] != null) {
                cachedLru.add(block);
            } else {
                free.addLast(block);
            }
        }
    }

    private void unregister(int block) {
        if (blockTokens[block] != null) {
            prefixIndex.remove(blockHash[block], block);
            blockTokens[block] = null;
            if (refCount[block] == 0 && cachedLru.remove(block)) {
                free.addLast(block);
            }
        }
    }

    private int copyOnWrite(int s, int b) {
        int old = tables[s][b];
        if (freeBlocks() == 0) {
            throw new IllegalStateException("KV cache pool exhausted: no block left to copy a shared block into");
        }
        int fresh = takeBlock();
        for (int l = 0; l < keys.length; l++) {
            backend.copy(keys[l].slice((long) old * blockSize, blockSize), keys[l].slice((long) fresh * blockSize, blockSize));
            backend.copy(values[l].slice((long) old * blockSize, blockSize), values[l].slice((long) fresh * blockSize, blockSize));
        }
        refCount[old]--;
        tables[s][b] = fresh;
        copies++;
        return fresh;
    }

    private void appendBlock(int seq, int block) {
        if (tableSizes[seq] == tables[seq].length) {
            tables[seq] = Arrays.copyOf(tables[seq], tables[seq].length * 2);
        }
        tables[seq][tableSizes[seq]++] = block;
    }

    private void ensureTokenCapacity(int seq, int n) {
        if (n > seqTokens[seq].length) {
            seqTokens[seq] = Arrays.copyOf(seqTokens[seq], Math.max(n, Math.min(maxPositions, seqTokens[seq].length * 2)));
        }
    }

    private void ensureHashCapacity(int seq, int n) {
        if (n > chainHashes[seq].length) {
            chainHashes[seq] = Arrays.copyOf(chainHashes[seq], Math.max(n, chainHashes[seq].length * 2));
        }
    }

    private void checkSeq(int seq) {
        if (seq < 0 || seq >= sequences) {
            throw new IllegalArgumentException("sequence " + seq + " outside the cache's " + sequences);
        }
    }

    private void publishStats() {
        int used = blockCount - free.size() - cachedLru.size();
        stats = new Stats(blockCount, used, cachedLru.size(), allocated, prefixHits, evictions, copies,
                prefixIndex.size());
    }

    @Override
    public void close() {
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] != null) {
                backend.release(keys[l]);
            }
            if (values[l] != null) {
                backend.release(values[l]);
            }
        }
    }
}
