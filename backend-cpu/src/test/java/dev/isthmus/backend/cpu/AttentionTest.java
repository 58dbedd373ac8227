package dev.isthmus.backend.cpu;

import dev.isthmus.api.Attention;
import dev.isthmus.api.DType;
import dev.isthmus.api.KvLayout;
import dev.isthmus.api.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AttentionTest {
    @RegisterExtension
    static final CpuBackendFixture cpu = CpuBackendFixture.withDefaults();

    @Test
    void oneKeyReturnsItsValueRow() {
        Tensor q = TestData.f32(cpu.arena(), new float[] {1, 2, 3, 4}, 1, 1, 4);
        Tensor k = TestData.f32(cpu.arena(), new float[] {5, 6, 7, 8}, 1, 1, 4);
        Tensor v = TestData.f32(cpu.arena(), new float[] {0.5f, -1, 2, 9}, 1, 1, 4);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 1, 1, 4);
        cpu.backend().attention(q, k, v, KvLayout.contiguous(1, 0, 1), Attention.causal(4), out);
        assertArrayEquals(new float[] {0.5f, -1, 2, 9}, out.toFloatArray());
    }

    @Test
    void equalScoresAverageTheValues() {
        Tensor q = TestData.f32(cpu.arena(), new float[] {0, 0}, 1, 1, 2);
        Tensor k = TestData.f32(cpu.arena(), new float[] {1, 2, 3, 4}, 2, 1, 2);
        Tensor v = TestData.f32(cpu.arena(), new float[] {2, 4, 6, 8}, 2, 1, 2);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 1, 1, 2);
        cpu.backend().attention(q, k, v, KvLayout.contiguous(2, 1, 1), Attention.causal(2), out);
        assertArrayEquals(new float[] {4, 6}, out.toFloatArray(), 1e-6f);
    }

    private static float roundTrip(DType type, float v) {
        return switch (type) {
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(v));
            case BF16 -> {
                int bits = Float.floatToIntBits(v);
                bits += 0x7FFF + ((bits >>> 16) & 1);
                yield Float.intBitsToFloat(bits & 0xFFFF0000);
            }
            default -> v;
        };
    }

    private record Case(Attention params, int contextA, int contextB) {
    }

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16"})
    void pagedGroupedAttentionMatchesTheReference(DType cacheType) {
        check(cacheType, 4, 2, 16);
    }

    /** Llama-3.2-1B's head size and a GQA group of 4 (the native kernel's register-blocked path). */
    @ParameterizedTest
    @EnumSource(names = {"F32", "F16"})
    void llamaShapedGroupsMatchTheReference(DType cacheType) {
        check(cacheType, 8, 2, 64);
    }

    private void check(DType cacheType, int heads, int kvHeads, int headDim) {
        Random random = new Random(11 + cacheType.ordinal() + headDim);
        int blockSize = 4;
        float[] slopes = new float[heads];
        for (int h = 0; h < heads; h++) {
            slopes[h] = (float) Math.pow(0.5, h + 1); // 0.5, 0.25, 0.125, ...
        }
        Case[] cases = {
                new Case(Attention.causal(headDim), 150, 9),
                new Case(new Attention(0.3f, false, 0, null, 0f), 70, 5),
                new Case(new Attention(0.25f, true, 5, null, 0f), 90, 12),
                new Case(new Attention(0.25f, true, 0, slopes, 0f), 30, 7),
                new Case(new Attention(0.5f, true, 0, null, 2.5f), 20, 20),
        };
        for (Case c : cases) {
            int blocksA = (c.contextA + blockSize - 1) / blockSize;
            int blocksB = (c.contextB + blockSize - 1) / blockSize;
            int slots = (blocksA + blocksB + 3) * blockSize;
            // Sequence A takes the odd blocks from the end, sequence B the first ones: a scattered layout.
            int[] tableA = new int[blocksA];
            for (int b = 0; b < blocksA; b++) {
                tableA[b] = slots / blockSize - 1 - b;
            }
            int[] tableB = new int[blocksB];
            for (int b = 0; b < blocksB; b++) {
                tableB[b] = b;
            }
            // a decode row per sequence, one in the middle of A, and a prefill-like run of 7 rows of A
            int[] querySeq = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
            int[] queryPos = {c.contextA - 1, c.contextB - 1, c.contextA / 2, c.contextA - 7, c.contextA - 6,
                    c.contextA - 5, c.contextA - 4, c.contextA - 3, c.contextA - 2, c.contextA - 1};
            KvLayout layout = new KvLayout(blockSize, new int[][] {tableA, tableB},
                    new int[] {c.contextA, c.contextB}, querySeq, queryPos);

            float[] kv = TestData.randomFloats(random, slots * kvHeads * headDim);
            float[] vv = TestData.randomFloats(random, slots * kvHeads * headDim);
            Tensor kSrc = TestData.f32(cpu.arena(), kv, slots, kvHeads, headDim);
            Tensor vSrc = TestData.f32(cpu.arena(), vv, slots, kvHeads, headDim);
            Tensor kCache = Tensor.allocate(cpu.arena(), cacheType, slots, kvHeads, headDim);
            Tensor vCache = Tensor.allocate(cpu.arena(), cacheType, slots, kvHeads, headDim);
            int[] all = new int[slots];
            for (int s = 0; s < slots; s++) {
                all[s] = s;
            }
            cpu.backend().copyRows(kSrc, kCache, all);
            cpu.backend().copyRows(vSrc, vCache, all);
            for (int i = 0; i < kv.length; i++) {
                kv[i] = roundTrip(cacheType, kv[i]);
                vv[i] = roundTrip(cacheType, vv[i]);
            }

            int n = querySeq.length;
            float[] qv = TestData.randomFloats(random, n * heads * headDim);
            Tensor q = TestData.f32(cpu.arena(), qv, n, heads, headDim);
            Tensor out = Tensor.allocate(cpu.arena(), DType.F32, n, heads, headDim);
            cpu.backend().attention(q, kCache, vCache, layout, c.params, out);
            float[] got = out.toFloatArray();

            Attention p = c.params;
            for (int i = 0; i < n; i++) {
                int seq = querySeq[i];
                int pos = queryPos[i];
                for (int h = 0; h < heads; h++) {
                    int kvh = h / (heads / kvHeads);
                    int ctx = layout.contextLengths()[seq];
                    double[] scores = new double[ctx];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < ctx; j++) {
                        boolean visible = (!p.causal() || j <= pos)
                                && (p.slidingWindow() <= 0 || j > pos - p.slidingWindow());
                        if (!visible) {
                            scores[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        int base = (layout.slot(seq, j) * kvHeads + kvh) * headDim;
                        double dot = 0;
                        for (int d = 0; d < headDim; d++) {
                            dot += qv[(i * heads + h) * headDim + d] * kv[base + d];
                        }
                        double s = p.scale() * dot;
                        if (p.logitSoftcap() > 0) {
                            s = p.logitSoftcap() * Math.tanh(s / p.logitSoftcap());
                        }
                        if (p.alibiSlopes() != null) {
                            s += p.alibiSlopes()[h] * (j - pos);
                        }
                        scores[j] = s;
                        max = Math.max(max, s);
                    }
                    double total = 0;
                    double[] expected = new double[headDim];
                    for (int j = 0; j < ctx; j++) {
                        double wgt = Math.exp(scores[j] - max);
                        total += wgt;
                        if (wgt == 0) {
                            continue;
                        }
                        int base = (layout.slot(seq, j) * kvHeads + kvh) * headDim;
                        for (int d = 0; d < headDim; d++) {
                            expected[d] += wgt * vv[base + d];
                        }
                    }
                    for (int d = 0; d < headDim; d++) {
                        assertEquals(expected[d] / total, got[(i * heads + h) * headDim + d], 2e-5,
                                cacheType + " " + p + " row " + i + " head " + h + " dim " + d);
                    }
                }
            }
        }
    }

    @Test
    void inconsistentShapesAndLayoutsAreRejected() {
        Tensor q = Tensor.allocate(cpu.arena(), DType.F32, 1, 3, 4);
        Tensor k = Tensor.allocate(cpu.arena(), DType.F32, 8, 2, 4);
        Tensor out = Tensor.allocate(cpu.arena(), DType.F32, 1, 3, 4);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> cpu.backend().attention(q, k, k, KvLayout.contiguous(8, 0, 1), Attention.causal(4), out));
        assertTrue(e.getMessage().startsWith("attention: q F32[1, 3, 4] has 3 heads"), e.getMessage());

        Tensor q2 = Tensor.allocate(cpu.arena(), DType.F32, 1, 2, 4);
        Tensor out2 = Tensor.allocate(cpu.arena(), DType.F32, 1, 2, 4);
        KvLayout tooLong = new KvLayout(4, new int[][] {{0, 5}}, new int[] {8}, new int[] {0}, new int[] {7});
        e = assertThrows(IllegalArgumentException.class,
                () -> cpu.backend().attention(q2, k, k, tooLong, Attention.causal(4), out2));
        assertTrue(e.getMessage().contains("8 slots"), e.getMessage());
    }
}
