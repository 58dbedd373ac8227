package dev.isthmus.backend.cuda;

/**
 * Grid and block sizes of every kernel, computed on the host. Each method states the thread mapping the
 * kernel (see the GEOMETRY comment of its .cu file) expects; kernels are grid-stride in y, so clamping gridDim.y
 * to {@link Launch#MAX_GRID_YZ} never loses rows.
 */
public final class LaunchGeometry {
    private LaunchGeometry() {
    }

    /** Threads per block of the element-per-thread kernels. */
    public static final int ELEMENT_THREADS = 256;
    /** Threads per block of the group-per-thread dequantization kernels. */
    public static final int GROUP_THREADS = 128;
    /** Threads of a matvec block: four warps, one output feature each. */
    public static final int MATVEC_THREADS = 128;
    /** Activation rows a matvec warp handles at once (MV_ROWS in matvec.cu). */
    public static final int MATVEC_ROWS = 8;
    /** Largest block of the row-reduction kernels. */
    public static final int ROWWISE_MAX_THREADS = 256;
    /** Threads of an attention block. */
    public static final int ATTENTION_THREADS = 128;
    /** Positions of a K/V tile in shared memory (ATT_TILE in attention.cu; also the stride of the score rows). */
    public static final int ATTENTION_TILE = 32;
    /** Outputs one attention thread accumulates (ATT_ACC in attention.cu). */
    public static final int ATTENTION_ACC = 16;

    static int ceilDiv(long a, long b) {
        return Math.toIntExact((a + b - 1) / b);
    }

    static int clampY(long rows) {
        return (int) Math.max(1, Math.min(rows, Launch.MAX_GRID_YZ));
    }

    /** Rows of a 2-D problem: at least one block even for zero rows (the kernel then does nothing). */
    private static int gridX(long units, int threads) {
        return Math.max(1, ceilDiv(Math.max(units, 1), threads));
    }

    /** {@code isthmus_rows_q*}: one thread per 32-element group, a block row per matrix row. */
    public static Launch rowsQuantized(long rows, long groups) {
        return Launch.of(gridX(groups, GROUP_THREADS), clampY(rows), GROUP_THREADS);
    }

    /** Element-per-thread kernels (rows_f*, copy_rows_*, add, mul, swiglu, scale, silu, gelu). */
    public static Launch elementwise(long rows, long cols) {
        return Launch.of(gridX(cols, ELEMENT_THREADS), clampY(rows), ELEMENT_THREADS);
    }

    /** Block-per-row reductions (rms_norm, layer_norm, softmax, argmax): a multiple of 32 threads, at most 256. */
    public static Launch rowwise(long rows, long cols) {
        int threads = (int) Math.min(ROWWISE_MAX_THREADS, Math.max(32, (cols + 31) / 32 * 32));
        return Launch.of(clampY(rows), 1, threads);
    }

    /** {@code isthmus_matvec_*}: four output features per block, chunks of 8 activation rows in y. */
    public static Launch matvec(long n, long m) {
        return Launch.of(gridX(m, MATVEC_THREADS / 32), clampY(ceilDiv(Math.max(n, 1), MATVEC_ROWS)), MATVEC_THREADS);
    }

    /** {@code isthmus_rope}: one block per (row, head), threads over the rotated pairs. */
    public static Launch rope(long n, long heads, int dims) {
        int pairs = dims / 2;
        int threads = Math.min(128, Math.max(32, (pairs + 31) / 32 * 32));
        return Launch.of(clampY(n * heads), 1, threads);
    }

    /** {@code isthmus_attention_combine}: one block per (row, head). */
    public static Launch attentionCombine(long n, long heads) {
        return Launch.of(clampY(n * heads), 1, ATTENTION_THREADS);
    }

    /**
     * The launch of an attention kernel and the parameters it implies.
     *
     * @param launch        grid (kvHeads × head groups, rows, splits), 128 threads, dynamic shared memory
     * @param headsPerBlock query heads (of one KV head) per block
     * @param tileKeys      key positions per tile (≤ 32)
     * @param splits        key ranges per row processed by different blocks (1: no combine pass)
     */
    public record AttentionPlan(Launch launch, int headsPerBlock, int tileKeys, int splits) {
        /** Floats of the partial-result buffer {@code [n, heads, splits, headDim + 2]} (0 when splits == 1). */
        public long partialFloats(long n, long heads, long headDim) {
            return splits == 1 ? 0 : n * heads * splits * (headDim + 2);
        }
    }

    /** Floats of dynamic shared memory an attention block uses (layout in attention.cu). */
    public static long attentionSharedFloats(int headsPerBlock, int headDim) {
        return (long) headsPerBlock * headDim + (long) ATTENTION_TILE * (headDim + 1)
                + (long) headsPerBlock * ATTENTION_TILE + 3L * headsPerBlock;
    }

    /** {@link #attention(int, int, int, int, int, int, int, int)} with the default split threshold of 512 keys. */
    public static AttentionPlan attention(int n, int heads, int kvHeads, int headDim, int maxKeys,
                                          int multiprocessors, int maxSplits) {
        return attention(n, heads, kvHeads, headDim, maxKeys, multiprocessors, maxSplits, 512);
    }

    /**
     * Plans an attention launch.
     *
     * <p>Query heads sharing a KV head go into one block (up to what its threads' accumulators and 48 KiB of
     * shared memory hold), so each K/V tile is read once for all of them. When the blocks would not fill the
     * device ({@code < 2 × multiprocessors}) and the longest visible key range is long, each row's keys are split
     * over several blocks (flash decoding) and merged by {@code isthmus_attention_combine}.
     *
     * @param maxKeys      the longest visible key range of any query row (it bounds useful splits)
     * @param splitMinKeys rows shorter than this are not split; each split gets at least half of it
     * @throws IllegalArgumentException if the head size cannot fit in shared memory or the accumulators
     */
    public static AttentionPlan attention(int n, int heads, int kvHeads, int headDim, int maxKeys,
                                          int multiprocessors, int maxSplits, int splitMinKeys) {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException(heads + " query heads for " + kvHeads + " KV heads");
        }
        int group = heads / kvHeads;
        int maxByAcc = (ATTENTION_THREADS * ATTENTION_ACC) / headDim;
        if (maxByAcc < 1) {
            throw new IllegalArgumentException("head size " + headDim + " exceeds the attention kernel's "
                    + ATTENTION_THREADS * ATTENTION_ACC);
        }
        int hpb = Math.min(Math.min(group, maxByAcc), 32);
        while (hpb > 1 && attentionSharedFloats(hpb, headDim) * 4 > Launch.MAX_SHARED_BYTES) {
            hpb--;
        }
        int tileKeys = ATTENTION_TILE;
        if (attentionSharedFloats(hpb, headDim) * 4 > Launch.MAX_SHARED_BYTES) {
            // The K/V tile alone is too big: the shared layout keeps 32 padded rows, so the head size is the limit.
            throw new IllegalArgumentException("head size " + headDim + " needs "
                    + attentionSharedFloats(1, headDim) * 4 + " bytes of shared memory per attention block");
        }
        int groupBlocks = ceilDiv(group, hpb);
        long gridX = (long) kvHeads * groupBlocks;
        long blocks = gridX * n;
        int splits = 1;
        if (maxSplits > 1 && blocks < 2L * multiprocessors && maxKeys >= splitMinKeys) {
            splits = Math.min(Math.min(maxSplits, ceilDiv(2L * multiprocessors, blocks)),
                    ceilDiv(maxKeys, splitMinKeys / 2));
            splits = Math.max(1, Math.min(splits, Launch.MAX_GRID_YZ));
        }
        int shared = Math.toIntExact(attentionSharedFloats(hpb, headDim) * 4);
        Launch launch = new Launch(Math.toIntExact(gridX), clampY(n), splits, ATTENTION_THREADS, 1, 1, shared);
        return new AttentionPlan(launch, hpb, tileKeys, splits);
    }
}
