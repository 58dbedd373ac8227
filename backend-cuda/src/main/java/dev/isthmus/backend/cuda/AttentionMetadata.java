package dev.isthmus.backend.cuda;

import dev.isthmus.api.Attention;
import dev.isthmus.api.KvLayout;

/**
 * A {@link KvLayout} flattened into the int arrays the attention kernel reads (see attention.cu): per query row
 * its sequence and position, per sequence its context length and the offset of its block table in the
 * concatenation of all block tables.
 *
 * @param maxKeys the longest visible key range of any query row (sizes the flash-decoding split)
 */
record AttentionMetadata(int[] querySeq, int[] queryPos, int[] contextLengths, int[] tableOffsets, int[] tables,
                         int maxKeys) {

    /**
     * Flattens {@code layout}, checking that every position a query can see maps to a slot of a cache with
     * {@code slots} slots (the kernel does not bounds-check).
     *
     * @throws IndexOutOfBoundsException naming the sequence and block whose slots are outside the cache
     */
    static AttentionMetadata of(KvLayout layout, Attention params, long slots) {
        int seqs = layout.blockTables().length;
        int bs = layout.blockSize();
        int[] offsets = new int[seqs];
        int total = 0;
        for (int s = 0; s < seqs; s++) {
            offsets[s] = total;
            total = Math.addExact(total, layout.blockTables()[s].length);
        }
        int[] tables = new int[total];
        for (int s = 0; s < seqs; s++) {
            int[] t = layout.blockTables()[s];
            int ctx = layout.contextLengths()[s];
            int used = (int) ((ctx + (long) bs - 1) / bs);
            for (int b = 0; b < t.length; b++) {
                tables[offsets[s] + b] = t[b];
                if (b < used) {
                    long lastPos = Math.min(ctx - 1L - (long) b * bs, bs - 1L);
                    long lastSlot = (long) t[b] * bs + lastPos;
                    if (t[b] < 0 || lastSlot >= slots) {
                        throw new IndexOutOfBoundsException("sequence " + s + " block " + b + " is cache block " + t[b]
                                + " (slots up to " + lastSlot + "), outside the cache's " + slots + " slots");
                    }
                }
            }
        }
        int maxKeys = 0;
        for (int i = 0; i < layout.queries(); i++) {
            int p = layout.queryPos()[i];
            int ctx = layout.contextLengths()[layout.querySeq()[i]];
            int hi = params.causal() ? Math.min(p + 1, ctx) : ctx;
            int lo = params.slidingWindow() > 0 ? Math.max(0, p - params.slidingWindow() + 1) : 0;
            maxKeys = Math.max(maxKeys, hi - lo);
        }
        return new AttentionMetadata(layout.querySeq().clone(), layout.queryPos().clone(),
                layout.contextLengths().clone(), offsets, tables, maxKeys);
    }
}
