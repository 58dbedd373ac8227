package dev.isthmus.conformance;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Op;
import dev.isthmus.api.Rope;
import dev.isthmus.api.RopeLayout;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Capabilities;
import dev.isthmus.conformance.Workspace.Access;
import dev.isthmus.conformance.reference.ReferenceOps;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/** ROPE, COPY_ROWS and ATTENTION: the operators that deal in positions and KV caches. */
final class PositionalCases {
    private PositionalCases() {
    }

    static void addTo(CaseList list) {
        rope(list);
        for (DType t : Capabilities.matrix().get(Op.COPY_ROWS)) {
            copyRows(list, t);
        }
        for (DType t : Capabilities.matrix().get(Op.ATTENTION)) {
            attention(list, t);
        }
    }

    // ---- ROPE -------------------------------------------------------------------------------------

    /**
     * @param positions fixed positions, or null for {@code n} random positions below {@code maxPos}
     * @param factors   whether to use random per-pair frequency factors in [1, 8] (Llama 3 style)
     * @param view      x as a row range of a larger [n + 5, heads, headDim] tensor
     */
    private record RopeSpec(String name, RopeLayout layout, int n, int heads, int headDim, int dims, float theta,
                            float freqScale, boolean factors, int[] positions, int maxPos, boolean view) {
    }

    private static void rope(CaseList list) {
        RopeLayout normal = RopeLayout.NORMAL;
        RopeLayout neox = RopeLayout.NEOX;
        List<RopeSpec> specs = List.of(
                new RopeSpec("normal_n1_h4_hd64_pos0", normal, 1, 4, 64, 64, 10000, 1, false, new int[] {0}, 0, false),
                new RopeSpec("normal_n5_h8_hd128_pos0to4", normal, 5, 8, 128, 128, 10000, 1, false,
                        new int[] {0, 1, 2, 3, 4}, 0, false),
                new RopeSpec("neox_n7_h2_hd64_random4000", neox, 7, 2, 64, 64, 10000, 1, false, null, 4000, false),
                new RopeSpec("neox_n5_h3_hd80_dims32_partial", neox, 5, 3, 80, 32, 10000, 1, false, null, 2048, false),
                new RopeSpec("normal_n3_h2_hd64_dims16_partial", normal, 3, 2, 64, 16, 10000, 1, false, null, 512, false),
                new RopeSpec("normal_n4_h4_hd64_freqscale0.25", normal, 4, 4, 64, 64, 10000, 0.25f, false,
                        new int[] {1000, 2047, 3000, 4095}, 0, false),
                new RopeSpec("normal_n6_h4_hd128_theta500000_factors", normal, 6, 4, 128, 128, 500000, 1, true,
                        null, 4096, false),
                new RopeSpec("neox_n3_h2_hd96_dims64_factors_scale0.5", neox, 3, 2, 96, 64, 1000000, 0.5f, true,
                        null, 3000, false),
                new RopeSpec("normal_n16_h1_hd2_minimal", normal, 16, 1, 2, 2, 10000, 1, false, null, 100, false),
                new RopeSpec("neox_n2_h5_hd6_dims4", neox, 2, 5, 6, 4, 10000, 1, false, new int[] {7, 1234}, 0, false),
                new RopeSpec("normal_n6_h2_hd64_mixed_positions", normal, 6, 2, 64, 64, 10000, 1, false,
                        new int[] {3000, 0, 17, 4095, 1, 1}, 0, false),
                new RopeSpec("neox_n4_h2_hd64_view", neox, 4, 2, 64, 64, 10000, 1, false, null, 1000, true));
        for (RopeSpec spec : specs) {
            list.add(Op.ROPE, DType.F32, spec.name(), ropeBody(spec));
        }
    }

    private static CaseBody ropeBody(RopeSpec sp) {
        return (ws, r) -> {
            int per = sp.heads() * sp.headDim();
            float[] xf = Data.uniform(r, sp.n() * per, -1, 1);
            int[] positions = sp.positions();
            if (positions == null) {
                positions = new int[sp.n()];
                for (int i = 0; i < positions.length; i++) {
                    positions[i] = r.nextInt(sp.maxPos());
                }
            }
            float[] factors = null;
            if (sp.factors()) {
                factors = new float[sp.dims() / 2];
                for (int i = 0; i < factors.length; i++) {
                    factors[i] = (float) (1 + 7 * r.nextDouble());
                }
            }
            Rope rope = new Rope(sp.layout(), sp.dims(), sp.theta(), sp.freqScale(), factors);
            double[][][] expected = ReferenceOps.rope(Data.cube(Data.toDouble(xf), sp.n(), sp.heads(), sp.headDim()),
                    positions, rope);
            Tensor x;
            if (sp.view()) {
                float[] parent = Data.uniform(r, (sp.n() + 5) * per, -1, 1);
                System.arraycopy(xf, 0, parent, 3 * per, xf.length);
                x = ws.view("x", Access.IN_PLACE, DType.F32, Data.f32(parent),
                        new long[] {sp.n() + 5, sp.heads(), sp.headDim()}, 3, sp.n());
            } else {
                x = ws.inPlace("x", DType.F32, Data.f32(xf), sp.n(), sp.heads(), sp.headDim());
            }
            ws.backend().rope(x, positions.clone(), rope);
            ws.verify();
            return Outcome.compare("x", Data.flatten(expected), ws.read(x), sp.headDim());
        };
    }

    // ---- COPY_ROWS --------------------------------------------------------------------------------

    private static void copyRows(CaseList list, DType t) {
        list.add(Op.COPY_ROWS, t, "n1_slots4_cols1", copyRowsBody(t, 1, 4, new long[] {1}, false, false));
        list.add(Op.COPY_ROWS, t, "n5_slots16_cols33", copyRowsBody(t, 5, 16, new long[] {33}, false, false));
        list.add(Op.COPY_ROWS, t, "n7_slots300_cols128_scattered", copyRowsBody(t, 7, 300, new long[] {128}, false, false));
        list.add(Op.COPY_ROWS, t, "n16_slots64_cols64", copyRowsBody(t, 16, 64, new long[] {64}, false, false));
        // The KV-cache shape: rows are slots of [slots, kvHeads, headDim], src is [n, kvHeads, headDim].
        list.add(Op.COPY_ROWS, t, "kv3d_n3_slots40_kvh2_hd64", copyRowsBody(t, 3, 40, new long[] {2, 64}, false, false));
        // dst as one layer of a [3 * slots, cols] allocation.
        list.add(Op.COPY_ROWS, t, "layer_view_n4_slots32_cols64", copyRowsBody(t, 4, 32, new long[] {64}, true, false));
        // Every value exactly halfway between two neighbours of the destination type: round half to even.
        list.add(Op.COPY_ROWS, t, "n4_slots8_cols256_ties", copyRowsBody(t, 4, 8, new long[] {256}, false, true));
    }

    private static CaseBody copyRowsBody(DType t, int n, int slots, long[] inner, boolean layerView, boolean ties) {
        return (ws, r) -> {
            int per = Math.toIntExact(Data.product(inner, 0, inner.length));
            float[] src = ties ? halfwayValues(t, r, n * per) : Data.uniform(r, n * per, -3, 3);
            float[] before = Data.uniform(r, slots * per, -3, 3);
            byte[] dstBytes = Data.encode(t, before);
            double[][] dstValues = Data.rows(Data.decode(t, dstBytes, slots * per), per);
            int[] rows = Data.distinct(r, n, slots);
            double[][] expected = ReferenceOps.copyRows(dstValues, Data.rows(src, per), rows, t);

            Tensor s = ws.input("src", DType.F32, Data.f32(src), prepend(n, inner));
            Tensor dst;
            if (layerView) {
                byte[] parent = Data.encode(t, Data.uniform(r, 3 * slots * per, -3, 3));
                System.arraycopy(dstBytes, 0, parent, dstBytes.length, dstBytes.length);
                dst = ws.view("dst", Access.IN_PLACE, t, parent, prepend(3L * slots, inner), slots, slots);
            } else {
                dst = ws.inPlace("dst", t, dstBytes, prepend(slots, inner));
            }
            ws.backend().copyRows(s, dst, rows.clone());
            ws.verify();
            return Outcome.compare("dst", Data.flatten(expected), ws.read(dst), per);
        };
    }

    private static long[] prepend(long first, long[] rest) {
        long[] s = new long[rest.length + 1];
        s[0] = first;
        System.arraycopy(rest, 0, s, 1, rest.length);
        return s;
    }

    /**
     * F32 values each exactly halfway between two adjacent values of {@code t} (for F32 itself: ordinary
     * random values), half of them with an even lower neighbour, so that ties-to-even differs from both
     * truncation and ties-away-from-zero.
     */
    private static float[] halfwayValues(DType t, SplittableRandom r, int count) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            float x = (float) (r.nextDouble() * 6 - 3);
            v[i] = switch (t) {
                case F16 -> {
                    short lo = Float.floatToFloat16(x);
                    float a = Float.float16ToFloat(lo);
                    float b = Float.float16ToFloat((short) (lo + 1));
                    yield (a + b) / 2;
                }
                case BF16 -> {
                    int lo = Float.floatToRawIntBits(x) & 0xFFFF0000;
                    float a = Float.intBitsToFloat(lo);
                    float b = Float.intBitsToFloat(lo + 0x10000);
                    yield (a + b) / 2;
                }
                default -> x;
            };
        }
        return v;
    }

    // ---- ATTENTION --------------------------------------------------------------------------------

    /**
     * One attention scenario.
     *
     * @param contexts   per sequence, its context length
     * @param queries    per sequence, the positions of its query rows
     * @param blockSize  slots per cache block; 0 for one contiguous block per sequence of {@code capacity} slots
     * @param capacity   for contiguous layouts: the cache's slots (may exceed the context)
     * @param scaleMul   multiplier of the usual {@code 1/sqrt(headDim)} scale
     * @param interleave mix the query rows of different sequences (round robin) instead of grouping them
     * @param views      caches as layer 1 of a three-layer allocation; q and out as row ranges
     * @param shared     for paged layouts, how many leading blocks every sequence shares with sequence 0
     *                   (prefix caching: one cached prompt, several continuations)
     */
    private record AttnSpec(String name, int heads, int kvHeads, int headDim, int[] contexts, int[][] queries,
                            int blockSize, int capacity, boolean causal, int window, boolean alibi, float softcap,
                            float scaleMul, boolean interleave, boolean views, int shared) {
        AttnSpec(String name, int heads, int kvHeads, int headDim, int[] contexts, int[][] queries, int blockSize,
                 int capacity, boolean causal, int window, boolean alibi, float softcap, float scaleMul,
                 boolean interleave, boolean views) {
            this(name, heads, kvHeads, headDim, contexts, queries, blockSize, capacity, causal, window, alibi,
                    softcap, scaleMul, interleave, views, 0);
        }
    }

    private static int[] range(int from, int toExclusive) {
        int[] a = new int[toExclusive - from];
        for (int i = 0; i < a.length; i++) {
            a[i] = from + i;
        }
        return a;
    }

    private static List<AttnSpec> attentionSpecs() {
        List<AttnSpec> s = new ArrayList<>();
        s.add(new AttnSpec("decode_ctx1_h4_hd64", 4, 4, 64, new int[] {1}, new int[][] {{0}},
                0, 8, true, 0, false, 0, 1, false, false));
        s.add(new AttnSpec("prefill_ctx5_h4_hd64", 4, 4, 64, new int[] {5}, new int[][] {range(0, 5)},
                0, 5, true, 0, false, 0, 1, false, false));
        s.add(new AttnSpec("decode_ctx67_gqa4_hd128", 8, 2, 128, new int[] {67}, new int[][] {{66}},
                0, 80, true, 0, false, 0, 1, false, false));
        s.add(new AttnSpec("prefill16_ctx313_gqa8_hd64", 8, 1, 64, new int[] {313}, new int[][] {range(297, 313)},
                0, 320, true, 0, false, 0, 1, false, false));
        s.add(new AttnSpec("paged3_bs16_gqa4_ctx5_67_310", 8, 2, 64, new int[] {5, 67, 310},
                new int[][] {{4, 3}, {66}, range(300, 310)}, 16, 0, true, 0, false, 0, 1, true, false));
        s.add(new AttnSpec("decode_batch12_paged_bs16", 4, 2, 64,
                new int[] {1, 2, 17, 33, 300, 5, 64, 65, 129, 7, 250, 40},
                new int[][] {{0}, {1}, {16}, {32}, {299}, {4}, {63}, {64}, {128}, {6}, {249}, {39}},
                16, 0, true, 0, false, 0, 1, false, false));
        s.add(new AttnSpec("window8_prefill10_ctx40", 4, 2, 64, new int[] {40}, new int[][] {range(30, 40)},
                0, 48, true, 8, false, 0, 1, false, false));
        s.add(new AttnSpec("window64_paged_bs32_ctx300_130", 4, 4, 64, new int[] {300, 130},
                new int[][] {range(295, 300), {129}}, 32, 0, true, 64, false, 0, 1, true, false));
        s.add(new AttnSpec("alibi_h8_ctx67", 8, 8, 64, new int[] {67}, new int[][] {range(60, 67)},
                0, 67, true, 0, true, 0, 1, false, false));
        s.add(new AttnSpec("softcap5_scale4_ctx67", 4, 4, 64, new int[] {67}, new int[][] {range(63, 67)},
                0, 70, true, 0, false, 5, 4, false, false));
        s.add(new AttnSpec("noncausal_paged_bs4_ctx20_7", 4, 2, 64, new int[] {20, 7},
                new int[][] {{0, 3, 19}, {2, 6}}, 4, 0, false, 0, false, 0, 1, true, false));
        s.add(new AttnSpec("noncausal_window16_ctx50", 4, 4, 64, new int[] {50}, new int[][] {{10, 25, 49}},
                0, 50, false, 16, false, 0, 1, false, false));
        s.add(new AttnSpec("hd80_gqa2_ctx33", 4, 2, 80, new int[] {33}, new int[][] {range(30, 33)},
                0, 40, true, 0, false, 0, 1, false, false));
        s.add(new AttnSpec("hd256_gqa2_ctx20", 2, 1, 256, new int[] {20}, new int[][] {{19}},
                0, 24, true, 0, false, 0, 1, false, false));
        s.add(new AttnSpec("mixed_paged_window32_alibi_softcap20", 8, 2, 64, new int[] {45, 310, 1},
                new int[][] {range(40, 45), range(305, 310), {0}}, 16, 0, true, 32, true, 20, 2, true, false));
        s.add(new AttnSpec("shared_prefix_2blocks_bs16_3seq", 4, 1, 64, new int[] {40, 37, 70},
                new int[][] {{39}, range(32, 37), {69}}, 16, 0, true, 0, false, 0, 1, true, false, 2));
        s.add(new AttnSpec("layer_views_paged_bs8", 4, 2, 64, new int[] {30, 9},
                new int[][] {range(27, 30), {8}}, 8, 0, true, 0, false, 0, 1, true, true));
        return s;
    }

    private static void attention(CaseList list, DType t) {
        for (AttnSpec spec : attentionSpecs()) {
            list.add(Op.ATTENTION, t, spec.name(), attentionBody(t, spec));
        }
    }

    private static CaseBody attentionBody(DType t, AttnSpec sp) {
        return (ws, r) -> {
            int seqs = sp.contexts().length;
            // Cache layout: contiguous (one block per sequence, one after another) or paged with the
            // blocks of all sequences shuffled over a pool with two spare blocks.
            int blockSize;
            int[][] tables = new int[seqs][];
            int slots;
            if (sp.blockSize() == 0) {
                blockSize = sp.capacity();
                for (int q = 0; q < seqs; q++) {
                    tables[q] = new int[] {q};
                }
                slots = seqs * blockSize;
            } else {
                blockSize = sp.blockSize();
                int total = 2;
                for (int q = 0; q < seqs; q++) {
                    total += (sp.contexts()[q] + blockSize - 1) / blockSize - (q > 0 ? sp.shared() : 0);
                }
                int[] pool = Data.permutation(r, total);
                int next = 0;
                for (int q = 0; q < seqs; q++) {
                    tables[q] = new int[(sp.contexts()[q] + blockSize - 1) / blockSize];
                    for (int b = 0; b < tables[q].length; b++) {
                        tables[q][b] = q > 0 && b < sp.shared() ? tables[0][b] : pool[next++];
                    }
                }
                slots = total * blockSize;
            }
            List<int[]> rows = new ArrayList<>();
            if (sp.interleave()) {
                for (int i = 0; ; i++) {
                    boolean any = false;
                    for (int q = 0; q < seqs; q++) {
                        if (i < sp.queries()[q].length) {
                            rows.add(new int[] {q, sp.queries()[q][i]});
                            any = true;
                        }
                    }
                    if (!any) {
                        break;
                    }
                }
            } else {
                for (int q = 0; q < seqs; q++) {
                    for (int p : sp.queries()[q]) {
                        rows.add(new int[] {q, p});
                    }
                }
            }
            int n = rows.size();
            int[] querySeq = new int[n];
            int[] queryPos = new int[n];
            for (int i = 0; i < n; i++) {
                querySeq[i] = rows.get(i)[0];
                queryPos[i] = rows.get(i)[1];
            }
            KvLayout layout = new KvLayout(blockSize, tables, sp.contexts().clone(), querySeq, queryPos);

            int hd = sp.headDim();
            int kvh = sp.kvHeads();
            int perSlot = kvh * hd;
            // Slots holding a sequence's positions get keys in [-2, 2] and values in [-1, 1]; every other slot
            // holds large garbage, so reading a slot outside the layout changes the result visibly.
            boolean[] used = new boolean[slots];
            for (int q = 0; q < seqs; q++) {
                for (int j = 0; j < sp.contexts()[q]; j++) {
                    used[layout.slot(q, j)] = true;
                }
            }
            float[] kf = new float[slots * perSlot];
            float[] vf = new float[slots * perSlot];
            for (int slot = 0; slot < slots; slot++) {
                double kr = used[slot] ? 2 : 30;
                double vr = used[slot] ? 1 : 30;
                for (int e = 0; e < perSlot; e++) {
                    kf[slot * perSlot + e] = (float) (kr * (2 * r.nextDouble() - 1));
                    vf[slot * perSlot + e] = (float) (vr * (2 * r.nextDouble() - 1));
                }
            }
            byte[] kb = Data.encode(t, kf);
            byte[] vb = Data.encode(t, vf);
            float[] qf = Data.uniform(r, n * sp.heads() * hd, -2, 2);

            float[] slopes = null;
            if (sp.alibi()) {
                slopes = new float[sp.heads()];
                for (int h = 0; h < slopes.length; h++) {
                    slopes[h] = (float) Math.pow(2, -8.0 * (h + 1) / sp.heads());
                }
            }
            Attention params = new Attention((float) (sp.scaleMul() / Math.sqrt(hd)), sp.causal(), sp.window(),
                    slopes, sp.softcap());

            double[][][] expected = ReferenceOps.attention(
                    Data.cube(Data.toDouble(qf), n, sp.heads(), hd),
                    Data.cube(Data.decode(t, kb, slots * perSlot), slots, kvh, hd),
                    Data.cube(Data.decode(t, vb, slots * perSlot), slots, kvh, hd),
                    layout, params);

            Tensor q;
            Tensor k;
            Tensor v;
            Tensor out;
            if (sp.views()) {
                int perRow = sp.heads() * hd;
                float[] qParent = Data.uniform(r, (n + 3) * perRow, -2, 2);
                System.arraycopy(qf, 0, qParent, 2 * perRow, qf.length);
                q = ws.view("q", Access.INPUT, DType.F32, Data.f32(qParent), new long[] {n + 3, sp.heads(), hd}, 2, n);
                k = ws.view("kCache", Access.INPUT, t, layers(t, r, kb), new long[] {3L * slots, kvh, hd}, slots, slots);
                v = ws.view("vCache", Access.INPUT, t, layers(t, r, vb), new long[] {3L * slots, kvh, hd}, slots, slots);
                out = ws.view("out", Access.OUTPUT, DType.F32, Data.f32(Data.uniform(r, (n + 2) * perRow, -1, 1)),
                        new long[] {n + 2, sp.heads(), hd}, 1, n);
            } else {
                q = ws.input("q", DType.F32, Data.f32(qf), n, sp.heads(), hd);
                k = ws.input("kCache", t, kb, slots, kvh, hd);
                v = ws.input("vCache", t, vb, slots, kvh, hd);
                out = ws.output("out", DType.F32, n, sp.heads(), hd);
            }
            ws.backend().attention(q, k, v, layout, params, out);
            ws.verify();
            return Outcome.compare("out", Data.flatten(expected), ws.read(out), hd);
        };
    }

    /** Three layers of cache: random garbage, then {@code layer1}, then garbage. */
    private static byte[] layers(DType t, SplittableRandom r, byte[] layer1) {
        byte[] all = new byte[3 * layer1.length];
        byte[] garbage = Data.encode(t, Data.uniform(r, 2 * layer1.length / (t == DType.F32 ? 4 : 2), -30, 30));
        System.arraycopy(garbage, 0, all, 0, layer1.length);
        System.arraycopy(layer1, 0, all, layer1.length, layer1.length);
        System.arraycopy(garbage, layer1.length, all, 2 * layer1.length, layer1.length);
        return all;
    }
}
