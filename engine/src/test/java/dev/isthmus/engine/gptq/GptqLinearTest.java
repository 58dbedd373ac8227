package dev.isthmus.engine.gptq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.safetensors.HfFixtures;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * GPTQ layers packed by the test from known float weights, converted by {@link GptqLinear}, multiplied by the CPU
 * backend through the SPI ({@code matmul}), against a float64 matmul of the dequantized GPTQ weights computed
 * here. The tolerance is the bound the conversion documents (F16 rounding of Q4_1's minimum, or of each weight
 * for F16) plus float32 accumulation.
 */
class GptqLinearTest {
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static Backend backend;

    @BeforeAll
    static void open() {
        backend = Backends.open("cpu", new BackendOptions(1, java.util.Map.of()));
    }

    @AfterAll
    static void close() {
        backend.close();
    }

    private static Tensor i32(Arena arena, int[] v, long... shape) {
        MemorySegment s = arena.allocate(4L * v.length, 64);
        for (int i = 0; i < v.length; i++) {
            s.set(LE_INT, 4L * i, v[i]);
        }
        return Tensor.host(s, DType.I32, shape);
    }

    private static Tensor f16(Arena arena, short[] v, long... shape) {
        MemorySegment s = arena.allocate(2L * v.length, 64);
        for (int i = 0; i < v.length; i++) {
            s.set(LE_SHORT, 2L * i, v[i]);
        }
        return Tensor.host(s, DType.F16, shape);
    }

    private static GptqLinear linear(Arena arena, GptqFixtures.Packed p, GptqConfig c, boolean withGIdx) {
        return new GptqLinear("layer", c, i32(arena, p.qweight(), p.in() / 8, p.out()),
                i32(arena, p.qzeros(), p.groups(), p.out() / 8), f16(arena, p.scales(), p.groups(), p.out()),
                withGIdx ? i32(arena, p.gIdx(), p.in()) : null);
    }

    /**
     * Multiplies {@code x} by the converted weight through the backend and checks every output against the
     * float64 reference {@code Σ x[i]·W[o][i]}.
     *
     * @param rowOrder the row permutation the weight was built with, or null
     */
    private static void checkMatmul(GptqFixtures.Packed p, GptqLinear.Layout layout, Tensor w, int[] rowOrder,
                                    Random rnd) {
        int n = 3;
        double[][] x = new double[n][p.in()];
        float[] xs = new float[n * p.in()];
        for (int r = 0; r < n; r++) {
            for (int i = 0; i < p.in(); i++) {
                x[r][i] = (float) rnd.nextGaussian();
            }
        }
        // The engine's weight column j reads input inputOrder[j]: gather x accordingly (a permutation, no arithmetic).
        int[] order = layout.inputOrder();
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < p.in(); j++) {
                xs[r * p.in() + j] = (float) x[r][order == null ? j : order[j]];
            }
        }
        try (Arena arena = Arena.ofShared()) {
            Tensor xt = Tensor.allocate(arena, DType.F32, n, p.in());
            xt.copyFrom(xs);
            Tensor y = Tensor.allocate(arena, DType.F32, n, p.out());
            backend.matmul(xt, w, y);
            float[] got = y.toFloatArray();
            double worst = 0;
            for (int r = 0; r < n; r++) {
                for (int row = 0; row < p.out(); row++) {
                    int o = rowOrder == null ? row : rowOrder[row];
                    double ref = 0;
                    double bound = 1e-6;
                    for (int i = 0; i < p.in(); i++) {
                        double wi = p.weight()[o][i];
                        ref += x[r][i] * wi;
                        double weightError = layout.dtype() == DType.Q4_1 ? p.mError()[o][i]
                                : Math.abs(wi) * Math.pow(2, -11) + Math.pow(2, -25);
                        bound += Math.abs(x[r][i]) * (weightError + 2e-6 * Math.abs(wi));
                    }
                    double err = Math.abs(got[r * p.out() + row] - ref);
                    worst = Math.max(worst, err / bound);
                    assertTrue(err <= bound, "row " + r + " out " + row + ": " + got[r * p.out() + row] + " vs "
                            + ref + " (error " + err + " > bound " + bound + ")");
                }
            }
            assertTrue(worst <= 1, "worst error/bound " + worst);
        }
    }

    private static GptqConfig config(int groupSize, boolean descAct, boolean sym, int offset) {
        return new GptqConfig(4, groupSize, descAct, sym, offset);
    }

    @Test
    void plainGroupsRepackToQ41() {
        Random rnd = new Random(1);
        try (Arena arena = Arena.ofShared()) {
            // AutoGPTQ's original format, asymmetric, no g_idx tensor, group 128.
            double[][] w = GptqFixtures.randomWeights(64, 256, 0.05, rnd);
            GptqFixtures.Packed p = GptqFixtures.pack(w, GptqFixtures.trivialGroups(256, 128), 2, false, 1);
            GptqLinear l = linear(arena, p, config(128, false, false, 1), false);
            GptqLinear.Layout layout = l.layout(false);
            assertEquals(DType.Q4_1, layout.dtype());
            assertNull(layout.inputOrder());
            checkMatmul(p, layout, l.materialize(layout, null, arena), null, rnd);

            // Symmetric with an explicit trivial g_idx, group 32: m = -8·scale is exact.
            double[][] w2 = GptqFixtures.randomWeights(48, 128, 0.02, rnd);
            GptqFixtures.Packed p2 = GptqFixtures.pack(w2, GptqFixtures.trivialGroups(128, 32), 4, true, 1);
            GptqLinear l2 = linear(arena, p2, config(32, false, true, 1), true);
            GptqLinear.Layout layout2 = l2.layout(true);
            assertEquals(new GptqLinear.Layout(DType.Q4_1, null), layout2);
            checkMatmul(p2, layout2, l2.materialize(layout2, null, arena), null, rnd);

            // gptq_v2 zeros (no offset), one group over all inputs.
            double[][] w3 = GptqFixtures.randomWeights(16, 96, 0.1, rnd);
            GptqFixtures.Packed p3 = GptqFixtures.pack(w3, GptqFixtures.trivialGroups(96, -1), 1, false, 0);
            GptqLinear l3 = linear(arena, p3, config(-1, false, false, 0), false);
            GptqLinear.Layout layout3 = l3.layout(false);
            assertEquals(DType.Q4_1, layout3.dtype());
            checkMatmul(p3, layout3, l3.materialize(layout3, null, arena), null, rnd);
        }
    }

    @Test
    void actOrderPermutesInputsOrFallsBackToF16() {
        Random rnd = new Random(2);
        try (Arena arena = Arena.ofShared()) {
            double[][] w = GptqFixtures.randomWeights(64, 256, 0.05, rnd);
            int[] g = GptqFixtures.actOrderGroups(256, 64, rnd);
            GptqFixtures.Packed p = GptqFixtures.pack(w, g, 4, false, 1);
            GptqLinear l = linear(arena, p, config(64, true, false, 1), true);

            GptqLinear.Layout permuted = l.layout(true);
            assertEquals(DType.Q4_1, permuted.dtype());
            assertNotNull(permuted.inputOrder());
            int[] sorted = permuted.inputOrder().clone();
            Arrays.sort(sorted);
            for (int i = 0; i < sorted.length; i++) {
                assertEquals(i, sorted[i]);
            }
            for (int j = 0; j < 256; j++) {
                assertEquals(j / 64, g[permuted.inputOrder()[j]], "column " + j + " must be in group " + j / 64);
            }
            checkMatmul(p, permuted, l.materialize(permuted, null, arena), null, rnd);

            GptqLinear.Layout inOrder = l.layout(false);
            assertEquals(new GptqLinear.Layout(DType.F16, null), inOrder);
            checkMatmul(p, inOrder, l.materialize(inOrder, null, arena), null, rnd);
        }
    }

    @Test
    void groupsSmallerThanABlockBecomeF16() {
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofShared()) {
            double[][] w = GptqFixtures.randomWeights(32, 128, 0.05, rnd);
            GptqFixtures.Packed p = GptqFixtures.pack(w, GptqFixtures.trivialGroups(128, 16), 8, false, 1);
            GptqLinear l = linear(arena, p, config(16, false, false, 1), false);
            GptqLinear.Layout layout = l.layout(true);
            assertEquals(DType.F16, layout.dtype());
            checkMatmul(p, layout, l.materialize(layout, null, arena), null, rnd);
        }
    }

    @Test
    void rowOrderPermutesOutputs() {
        Random rnd = new Random(4);
        try (Arena arena = Arena.ofShared()) {
            double[][] w = GptqFixtures.randomWeights(64, 64, 0.05, rnd);
            GptqFixtures.Packed p = GptqFixtures.pack(w, GptqFixtures.trivialGroups(64, 32), 2, false, 1);
            GptqLinear l = linear(arena, p, config(32, false, false, 1), true);
            int[] rows = GptqFixtures.actOrderGroups(64, 1, rnd); // a random permutation of 0..63
            for (boolean q41 : new boolean[] {true, false}) {
                GptqLinear.Layout layout = q41 ? l.layout(false) : new GptqLinear.Layout(DType.F16, null);
                checkMatmul(p, layout, l.materialize(layout, rows, arena), rows, rnd);
            }
            assertThrows(IllegalArgumentException.class, () -> l.materialize(l.layout(false), new int[] {0, 0}, arena));
        }
    }

    /** Conversion into a confined arena runs on the calling thread only and gives the same bytes. */
    @Test
    void confinedArenaGivesTheSameBytes() {
        Random rnd = new Random(5);
        double[][] w = GptqFixtures.randomWeights(256, 64, 0.05, rnd);
        GptqFixtures.Packed p = GptqFixtures.pack(w, GptqFixtures.trivialGroups(64, 64), 1, false, 1);
        try (Arena shared = Arena.ofShared(); Arena confined = Arena.ofConfined()) {
            GptqLinear l = linear(shared, p, config(64, false, false, 1), false);
            byte[] a = HfFixtures.bytes(l.materialize(l.layout(false), null, shared));
            byte[] b = HfFixtures.bytes(l.materialize(l.layout(false), null, confined));
            assertTrue(Arrays.equals(a, b));
        }
    }

    @Test
    void malformedLayersNameTheTensor() {
        Random rnd = new Random(6);
        double[][] w = GptqFixtures.randomWeights(32, 64, 0.05, rnd);
        GptqFixtures.Packed p = GptqFixtures.pack(w, GptqFixtures.trivialGroups(64, 32), 2, false, 1);
        GptqConfig c = config(32, false, false, 1);
        try (Arena arena = Arena.ofShared()) {
            Tensor qw = i32(arena, p.qweight(), 8, 32);
            Tensor qz = i32(arena, p.qzeros(), 2, 4);
            Tensor sc = f16(arena, p.scales(), 2, 32);
            ModelFormatException e = assertThrows(ModelFormatException.class,
                    () -> new GptqLinear("L", c, qw, qz, f16(arena, p.scales(), 1, 64), null));
            assertTrue(e.getMessage().contains("L.scales"), e.getMessage());
            e = assertThrows(ModelFormatException.class, () -> new GptqLinear("L", c, qw, i32(arena, p.qzeros(), 1, 8), sc, null));
            assertTrue(e.getMessage().contains("L.qzeros"), e.getMessage());
            int[] badG = GptqFixtures.trivialGroups(64, 32);
            badG[7] = 2;
            e = assertThrows(ModelFormatException.class, () -> new GptqLinear("L", c, qw, qz, sc, i32(arena, badG, 64)));
            assertTrue(e.getMessage().contains("L.g_idx") && e.getMessage().contains("element 7"), e.getMessage());
            e = assertThrows(ModelFormatException.class, () -> new GptqLinear("L", config(16, false, false, 1), qw, qz, sc, null));
            assertTrue(e.getMessage().contains("L.scales") && e.getMessage().contains("group size 16"), e.getMessage());
        }
        ObjectNode q = HfFixtures.JSON.createObjectNode().put("bits", 8).put("group_size", 128);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GptqConfig.parse(q, "quantize_config.json"));
        assertTrue(e.getMessage().contains("quantize_config.json: bits"), e.getMessage());
        q.put("bits", 4).put("checkpoint_format", "marlin");
        e = assertThrows(ModelFormatException.class, () -> GptqConfig.parse(q, "quantize_config.json"));
        assertTrue(e.getMessage().contains("checkpoint_format"), e.getMessage());
        q.put("checkpoint_format", "gptq_v2").put("desc_act", true);
        assertEquals(new GptqConfig(4, 128, true, true, 0), GptqConfig.parse(q, "q"));
    }
}
