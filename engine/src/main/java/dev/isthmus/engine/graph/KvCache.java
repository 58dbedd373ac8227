package dev.isthmus.engine.graph;

import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;

import java.util.Arrays;

/**
 * Keys and values of past positions, per layer, for a fixed number of sequences with a contiguous
 * region of {@code capacity} slots each (sequence {@code s}, position {@code p} is slot
 * {@code s * capacity + p}).
 */
public final class KvCache implements AutoCloseable {
    private final Backend backend;
    private final int sequences;
    private final int capacity;
    private final int kvHeads;
    private final int headDim;
    private final Tensor[] keys;
    private final Tensor[] values;
    private final int[] lengths;

    /**
     * @param dtype F32, F16 or BF16 (what the backend supports for {@code COPY_ROWS} and {@code ATTENTION})
     */
    public KvCache(Backend backend, int layers, int kvHeads, int headDim, int sequences, int capacity, DType dtype) {
        if (sequences <= 0 || capacity <= 0) {
            throw new IllegalArgumentException("KV cache needs at least one sequence and one slot");
        }
        this.backend = backend;
        this.sequences = sequences;
        this.capacity = capacity;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.keys = new Tensor[layers];
        this.values = new Tensor[layers];
        long slots = (long) sequences * capacity;
        for (int l = 0; l < layers; l++) {
            keys[l] = backend.allocate(dtype, slots, (long) kvHeads * headDim);
            values[l] = backend.allocate(dtype, slots, (long) kvHeads * headDim);
        }
        this.lengths = new int[sequences];
    }

    public int capacity() {
        return capacity;
    }

    public int sequences() {
        return sequences;
    }

    /** Positions currently held for sequence {@code seq}. */
    public int length(int seq) {
        return lengths[seq];
    }

    /** Forgets positions from {@code length} on (rollback after rejected speculative tokens, or reuse). */
    public void truncate(int seq, int length) {
        if (length < 0 || length > lengths[seq]) {
            throw new IllegalArgumentException("cannot truncate sequence " + seq + " of length " + lengths[seq]
                    + " to " + length);
        }
        lengths[seq] = length;
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

    /** Cache slots of the batch's rows; checks that every position fits. */
    int[] slots(Batch batch) {
        int[] slots = new int[batch.size()];
        for (int i = 0; i < slots.length; i++) {
            int s = batch.seqs()[i];
            int p = batch.positions()[i];
            if (s < 0 || s >= sequences) {
                throw new IllegalArgumentException("sequence " + s + " outside the cache's " + sequences);
            }
            if (p < 0 || p >= capacity) {
                throw new IllegalArgumentException("position " + p + " of sequence " + s
                        + " exceeds the context of " + capacity + " tokens");
            }
            slots[i] = s * capacity + p;
        }
        return slots;
    }

    /** Records the batch's positions as cached and returns the attention layout for it. */
    KvLayout commit(Batch batch) {
        for (int i = 0; i < batch.size(); i++) {
            int s = batch.seqs()[i];
            lengths[s] = Math.max(lengths[s], batch.positions()[i] + 1);
        }
        int[][] tables = new int[sequences][];
        for (int s = 0; s < sequences; s++) {
            tables[s] = new int[] {s};
        }
        return new KvLayout(capacity, tables, Arrays.copyOf(lengths, sequences), batch.seqs(), batch.positions());
    }

    @Override
    public void close() {
        for (int l = 0; l < keys.length; l++) {
            backend.release(keys[l]);
            backend.release(values[l]);
        }
    }
}
