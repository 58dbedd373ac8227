package dev.isthmus.conformance.quant;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.conformance.golden.GoldenRuns;
import dev.isthmus.conformance.reference.Dequant;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.quant.ModelQuantizer;
import dev.isthmus.engine.quant.QuantRecipe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code isthmus quantize} of the real F32 stories260K (dim 64, FFN 172) and generation with the result.
 *
 * <p>Its rows of 64 fit 32-element blocks but no 256-element K-quant block, and {@code ffn_down}'s rows of
 * 172 fit neither: as in llama.cpp, K-quants fall back (Q4_K → Q5_0, Q6_K → Q8_0, ...), and where even 32
 * does not divide the row the tensor becomes F16 (where llama.cpp gives up for Q8_0/Q4_0 targets).
 */
class QuantizeStoriesTest {
    @TempDir
    static Path dir;
    private static Backend backend;
    private static int[] goldenIds;

    @BeforeAll
    static void setUp() throws IOException {
        backend = Backends.open("cpu", BackendOptions.defaults());
        goldenIds = GoldenRuns.ids(Files.readString(SharedData.file("golden/stories260K.greedy200.ids.json")),
                "generated_ids");
    }

    @AfterAll
    static void tearDown() {
        backend.close();
    }

    private static Path quantize(String recipe) throws IOException {
        Path out = dir.resolve("stories260K-" + recipe + ".gguf");
        try (GgufFile in = GgufFile.open(SharedData.file("models/stories260K.gguf"))) {
            ModelQuantizer.quantize(in, out, QuantRecipe.named(recipe), false, 2, c -> { });
        }
        return out;
    }

    private static int[] greedy(Path model, int n) {
        try (Model m = Model.open(model, null, backend)) {
            GenerationResult r = m.generator().generate("", GenerationParams.greedy(n), s -> { });
            return r.tokens();
        }
    }

    private static int commonPrefix(int[] a, int[] b) {
        int n = 0;
        while (n < Math.min(a.length, b.length) && a[n] == b[n]) {
            n++;
        }
        return n;
    }

    /** Tensor types, metadata, and every tensor within its format's bound of the F32 original. */
    private static void checkFile(Path out, String recipe, DType matrices) throws IOException {
        try (GgufFile in = GgufFile.open(SharedData.file("models/stories260K.gguf")); GgufFile q = GgufFile.open(out)) {
            assertEquals(in.tensorInfos().stream().map(TensorInfo::name).toList(),
                    q.tensorInfos().stream().map(TensorInfo::name).toList());
            assertEquals(QuantRecipe.named(recipe).fileType(), q.metadata().getLong("general.file_type", -1));
            assertEquals(2, q.metadata().getLong("general.quantization_version", -1));
            for (String key : in.metadata().asMap().keySet()) {
                if (!key.equals("general.file_type")) {
                    assertTrue(q.metadata().has(key), "metadata key " + key + " lost");
                    assertEquals(in.valueType(key), q.valueType(key), key);
                }
            }
            for (TensorInfo t : q.tensorInfos()) {
                DType expected = t.rank() == 1 ? DType.F32 : t.shape()[1] == 172 ? DType.F16 : matrices;
                assertEquals(expected, t.dtype(), t.name());
                float[] original = in.tensor(t.name()).toFloatArray();
                Tensor qt = q.tensor(t.name());
                byte[] bytes = qt.segment().toArray(ValueLayout.JAVA_BYTE);
                int cols = Math.toIntExact(qt.cols());
                int rowBytes = Math.toIntExact(t.dtype().rowBytes(cols));
                for (int r = 0; r < qt.rows(); r++) {
                    double[] decoded = Dequant.row(t.dtype(), bytes, r * rowBytes, cols);
                    FormatBounds.checkRow(t.dtype(), t.name() + " row " + r,
                            Arrays.copyOfRange(original, r * cols, (r + 1) * cols), decoded, bytes, r * rowBytes);
                }
            }
        }
    }

    /**
     * Q8_0 changes the greedy text of this 260K-parameter model only late: the first 100 of llama2.c's 200
     * golden tokens are reproduced exactly (measured: 114 are, the first difference is token 115).
     */
    @Test
    void q8_0KeepsTheGoldenTextForAHundredTokens() throws IOException {
        Path out = quantize("Q8_0");
        checkFile(out, "Q8_0", DType.Q8_0);
        int[] ids = greedy(out, 120);
        int same = commonPrefix(goldenIds, ids);
        assertTrue(same >= 100, "Q8_0 matches the golden ids for only " + same + " tokens");
    }

    /**
     * Q4_0 is coarse for a model this small: the text stays fluent and starts like the golden one, but diverges
     * after some 30 tokens (measured: 27 equal).
     */
    @Test
    void q4_0StartsLikeTheGoldenText() throws IOException {
        Path out = quantize("Q4_0");
        checkFile(out, "Q4_0", DType.Q4_0);
        int[] ids = greedy(out, 60);
        assertEquals(60, ids.length);
        int same = commonPrefix(goldenIds, ids);
        assertTrue(same >= 20, "Q4_0 matches the golden ids for only " + same + " tokens");
    }

    /**
     * Q4_K_M: every K-quant falls back for rows of 64 (Q4_K → Q5_0, Q6_K → Q8_0); the text keeps the golden one
     * for 50 tokens (measured: 73).
     */
    @Test
    void kQuantsFallBackForRowsOf64() throws IOException {
        Path out = quantize("Q4_K_M");
        try (GgufFile q = GgufFile.open(out)) {
            assertEquals(DType.Q8_0, q.tensorInfo("output.weight").dtype()); // a mixture's output: Q8_0 when Q6_K cannot
            assertEquals(DType.Q5_0, q.tensorInfo("token_embd.weight").dtype());
            // use_more_bits of 5 layers picks 2 ((2 - 5/8) % 3 == 2) and 4 (>= 7·5/8): those want Q6_K
            assertEquals(DType.Q8_0, q.tensorInfo("blk.2.attn_v.weight").dtype());
            assertEquals(DType.Q8_0, q.tensorInfo("blk.4.attn_v.weight").dtype());
            assertEquals(DType.Q5_0, q.tensorInfo("blk.0.attn_v.weight").dtype()); // wants Q4_K
            assertEquals(DType.F16, q.tensorInfo("blk.2.ffn_down.weight").dtype()); // rows of 172
            assertEquals(DType.F32, q.tensorInfo("blk.2.ffn_norm.weight").dtype());
        }
        int[] ids = greedy(out, 60);
        int same = commonPrefix(goldenIds, ids);
        assertTrue(same >= 50, "Q4_K_M matches the golden ids for only " + same + " tokens");
    }

    /** F16 rounding of the weights leaves all 200 golden tokens as they are. */
    @Test
    void f16KeepsTheWholeGoldenText() throws IOException {
        Path out = quantize("F16");
        checkFile(out, "F16", DType.F16);
        int[] ids = greedy(out, 200);
        assertEquals(200, commonPrefix(goldenIds, ids));
    }

    @Test
    void quantizedInputNeedsPermission() throws IOException {
        Path q8 = quantize("Q8_0");
        try (GgufFile in = GgufFile.open(q8)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ModelQuantizer.quantize(in, dir.resolve("twice.gguf"), QuantRecipe.named("Q4_0"), false, 1, c -> { }));
            assertTrue(e.getMessage().contains("already Q8_0"), e.getMessage());
            List<QuantRecipe.Choice> plan = ModelQuantizer.quantize(in, dir.resolve("twice.gguf"), QuantRecipe.named("Q4_0"),
                    true, 1, c -> { });
            assertTrue(plan.stream().anyMatch(c -> c.tensor().source() == DType.Q8_0 && c.type() == DType.Q4_0));
        }
        assertTrue(greedy(dir.resolve("twice.gguf"), 10).length == 10);
    }
}
