package dev.isthmus.backend.cpu.ops;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.backend.cpu.kernel.FloatKernels;
import dev.isthmus.backend.cpu.kernel.Lanes;
import dev.isthmus.backend.cpu.parallel.Scratch;
import dev.isthmus.backend.cpu.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * ATTENTION, fused in the flash-attention manner: keys are visited in tiles, each query head keeps a
 * running maximum, a running softmax denominator and an unnormalised output accumulator that is rescaled
 * when the maximum grows. Only one tile of scores exists at a time.
 *
 * <p>A task is one query row and a run of query heads that share a KV head (GQA), so each key and value
 * row is fetched once for the whole group; when that gives too few tasks to keep all threads busy, tasks
 * shrink to single heads.
 */
public final class FlashAttention {
    private static final String OP = "attention";
    private static final VectorSpecies<Float> F = Lanes.FLOATS;
    private static final int L = Lanes.COUNT;
    private static final int KEY_TILE = 64;
    private static final long MIN_CHUNK_WORK = 1 << 15;

    private FlashAttention() {
    }

    /** What one call needs, shared read-only by all tasks. */
    private record Problem(Tensor q, CacheView keys, CacheView values, KvLayout layout, Attention params,
                           Tensor out, int heads, int groupSize, int headsPerTask) {
    }

    public static void run(WorkerPool pool, Tensor q, Tensor kCache, Tensor vCache, KvLayout layout,
                           Attention params, Tensor out) {
        Check.operand(OP, "q", q, DType.F32);
        Check.operand(OP, "kCache", kCache, FloatRow.DTYPES);
        Check.operand(OP, "vCache", vCache, FloatRow.DTYPES);
        Check.operand(OP, "out", out, DType.F32);
        Check.notNull(OP, "layout", layout);
        Check.notNull(OP, "params", params);
        requireHeads("q", q);
        requireHeads("kCache", kCache);
        requireHeads("vCache", vCache);
        requireHeads("out", out);
        int n = layout.queries();
        int heads = (int) q.dim(-2);
        int headDim = (int) q.cols();
        if (q.rows() != (long) n * heads) {
            throw Check.fail(OP, "q " + Check.describe(q) + " must be [" + n + ", heads, headDim] for "
                    + n + " query rows in the layout");
        }
        CacheView keys = new CacheView(kCache);
        CacheView values = new CacheView(vCache);
        if (keys.headDim != headDim) {
            throw Check.fail(OP, "q " + Check.describe(q) + " and kCache " + Check.describe(kCache)
                    + " disagree on headDim");
        }
        if (values.kvHeads != keys.kvHeads || values.slots != keys.slots) {
            throw Check.fail(OP, "kCache " + Check.describe(kCache) + " and vCache " + Check.describe(vCache)
                    + " disagree on slots or kvHeads");
        }
        if (keys.kvHeads == 0 || heads % keys.kvHeads != 0) {
            throw Check.fail(OP, "q " + Check.describe(q) + " has " + heads + " heads, not a multiple of the "
                    + keys.kvHeads + " KV heads of kCache " + Check.describe(kCache));
        }
        if (out.rows() != q.rows() || out.dim(-2) != heads || out.cols() != values.headDim) {
            throw Check.fail(OP, "out " + Check.describe(out) + " must be [" + n + ", " + heads + ", "
                    + values.headDim + "] for q " + Check.describe(q) + " and vCache " + Check.describe(vCache));
        }
        Check.disjoint(OP, "out", out, "q", q);
        if (params.alibiSlopes() != null && params.alibiSlopes().length != heads) {
            throw Check.fail(OP, params.alibiSlopes().length + " ALiBi slopes for " + heads + " heads");
        }
        checkBlockTables(layout, keys.slots, kCache);

        if (NativeAttention.run(pool, q, kCache, vCache, layout, params, out)) {
            return;
        }
        int groupSize = heads / keys.kvHeads;
        int threads = pool.threads();
        int headsPerTask = (long) n * keys.kvHeads >= 2L * threads ? groupSize : 1;
        int tasks = n * (heads / headsPerTask);
        long keysPerRow = maxContext(layout);
        long workPerTask = Math.max(1, keysPerRow * (headDim + values.headDim) * headsPerTask);
        int grain = (int) Math.max(1, MIN_CHUNK_WORK / workPerTask);
        Problem problem = new Problem(q, keys, values, layout, params, out, heads, groupSize, headsPerTask);
        pool.parallelFor(tasks, grain, (from, to) -> {
            for (int t = from; t < to; t++) {
                int tasksPerRow = heads / headsPerTask;
                attend(problem, t / tasksPerRow, (t % tasksPerRow) * headsPerTask);
            }
        });
    }

    private static void requireHeads(String name, Tensor t) {
        if (t.rank() < 3) {
            throw Check.fail(OP, name + " " + Check.describe(t) + " must be [rows, heads, headDim]");
        }
    }

    private static long maxContext(KvLayout layout) {
        long max = 1;
        for (int c : layout.contextLengths()) {
            max = Math.max(max, c);
        }
        return max;
    }

    /** Every slot a query can reach must exist in the cache. */
    private static void checkBlockTables(KvLayout layout, long slots, Tensor kCache) {
        int bs = layout.blockSize();
        for (int s = 0; s < layout.blockTables().length; s++) {
            int ctx = layout.contextLengths()[s];
            int[] table = layout.blockTables()[s];
            for (int b = 0; (long) b * bs < ctx; b++) {
                long used = Math.min(bs, ctx - (long) b * bs);
                if (table[b] < 0 || (long) table[b] * bs + used > slots) {
                    throw Check.fail(OP, "sequence " + s + " maps positions " + ((long) b * bs) + ".."
                            + ((long) b * bs + used - 1) + " to block " + table[b] + " but kCache "
                            + Check.describe(kCache) + " has " + slots + " slots");
                }
            }
        }
    }

    /** Query row {@code row}, heads {@code firstHead .. firstHead + headsPerTask - 1}. */
    private static void attend(Problem p, int row, int firstHead) {
        KvLayout layout = p.layout;
        Attention params = p.params;
        CacheView keys = p.keys;
        CacheView values = p.values;
        int count = p.headsPerTask;
        int kvHead = firstHead / p.groupSize;
        int headDim = keys.headDim;
        int valueDim = values.headDim;
        int seq = layout.querySeq()[row];
        int pos = layout.queryPos()[row];
        int last = params.causal() ? pos : layout.contextLengths()[seq] - 1;
        int first = params.slidingWindow() > 0 ? Math.max(0, pos - params.slidingWindow() + 1) : 0;

        Scratch scratch = Scratch.current();
        float[] scores = scratch.floats(count * KEY_TILE);
        float[] state = scratch.moreFloats(2 * count); // running max at [h], running sum at [count + h]
        long[] offsets = scratch.longs(2 * KEY_TILE + count); // key rows, value rows, query rows
        long accBytes = 4L * count * valueDim;
        MemorySegment acc = scratch.segment(Scratch.PRIMARY, Math.max(accBytes, 4));
        acc.asSlice(0, accBytes).fill((byte) 0);
        MemorySegment qs = p.q.segment();
        for (int h = 0; h < count; h++) {
            offsets[2 * KEY_TILE + h] = p.q.rowOffset((long) row * p.heads + firstHead + h);
            state[h] = Float.NEGATIVE_INFINITY;
            state[count + h] = 0;
        }

        for (int tileStart = first; tileStart <= last; tileStart += KEY_TILE) {
            int tile = Math.min(KEY_TILE, last - tileStart + 1);
            for (int t = 0; t < tile; t++) {
                int slot = layout.slot(seq, tileStart + t);
                offsets[t] = keys.offset(slot, kvHead);
                offsets[KEY_TILE + t] = values.offset(slot, kvHead);
            }
            for (int h = 0; h < count; h++) {
                int base = h * KEY_TILE;
                long qOff = offsets[2 * KEY_TILE + h];
                float slope = params.alibiSlopes() == null ? 0f : params.alibiSlopes()[firstHead + h];
                float tileMax = Float.NEGATIVE_INFINITY;
                for (int t = 0; t < tile; t++) {
                    float s = params.scale() * keys.format.dot(keys.segment, offsets[t], qs, qOff, headDim);
                    if (params.logitSoftcap() > 0) {
                        s = (float) (params.logitSoftcap() * Math.tanh(s / params.logitSoftcap()));
                    }
                    if (slope != 0f) {
                        s += slope * (tileStart + t - pos);
                    }
                    scores[base + t] = s;
                    tileMax = Math.max(tileMax, s);
                }
                float oldMax = state[h];
                float newMax = Math.max(oldMax, tileMax);
                if (newMax > oldMax && state[count + h] != 0) {
                    float correction = (float) Math.exp(oldMax - newMax);
                    state[count + h] *= correction;
                    FloatKernels.scale(acc, 4L * h * valueDim, correction, acc, 4L * h * valueDim, valueDim);
                }
                state[h] = newMax;
                state[count + h] += exponentiate(scores, base, tile, newMax);
            }
            for (int t = 0; t < tile; t++) {
                long vOff = offsets[KEY_TILE + t];
                for (int h = 0; h < count; h++) {
                    values.format.scaleAdd(values.segment, vOff, scores[h * KEY_TILE + t], acc, 4L * h * valueDim,
                            valueDim);
                }
            }
        }

        MemorySegment out = p.out.segment();
        for (int h = 0; h < count; h++) {
            float sum = state[count + h];
            long outOff = p.out.rowOffset((long) row * p.heads + firstHead + h);
            FloatKernels.scale(acc, 4L * h * valueDim, sum == 0 ? 0f : 1f / sum, out, outOff, valueDim);
        }
    }

    /** Replaces {@code scores[base .. base+count)} by {@code exp(score - max)}; returns their sum. */
    private static float exponentiate(float[] scores, int base, int count, float max) {
        if (max == Float.NEGATIVE_INFINITY) {
            Arrays.fill(scores, base, base + count, 0f);
            return 0f;
        }
        FloatVector sums = FloatVector.zero(F);
        int t = 0;
        for (int upper = F.loopBound(count); t < upper; t += L) {
            FloatVector e = FloatVector.fromArray(F, scores, base + t).sub(max).lanewise(VectorOperators.EXP);
            e.intoArray(scores, base + t);
            sums = sums.add(e);
        }
        float sum = sums.reduceLanes(VectorOperators.ADD);
        for (; t < count; t++) {
            float e = (float) Math.exp(scores[base + t] - max);
            scores[base + t] = e;
            sum += e;
        }
        return sum;
    }
}
