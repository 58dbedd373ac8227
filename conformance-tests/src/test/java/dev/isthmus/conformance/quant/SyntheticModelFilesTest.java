package dev.isthmus.conformance.quant;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.conformance.reference.Dequant;
import dev.isthmus.engine.format.TensorInfo;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.gguf.GgufFile;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.quant.QuantRecipe;
import dev.isthmus.engine.synth.SyntheticModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static dev.isthmus.conformance.golden.GoldenRuns.nmse;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Acceptance: files from {@code isthmus synth} are valid GGUF — every tensor, read back and decoded by the
 * independent float64 {@link Dequant}, is within its format's bound of the seeded floats it was made from
 * (regenerated from the seed) — and they load in Isthmus and generate on the CPU backend, with logits close
 * to those of the F32 file of the same seed.
 */
class SyntheticModelFilesTest {
    private static final long SEED = 20240917L;
    /** BOS and a few byte tokens ("The") and words: logits at the last position are compared across types. */
    private static final int[] PROMPT = {510, 84, 104, 101, 32, 200, 300};

    @TempDir
    static Path dir;
    private static Backend backend;
    private static float[] f32Logits;

    @BeforeAll
    static void openBackend() throws IOException {
        backend = Backends.open("cpu", BackendOptions.defaults());
        try (Model m = Model.open(synth("F32"), null, backend)) {
            f32Logits = logits(m);
        }
    }

    @AfterAll
    static void closeBackend() {
        backend.close();
    }

    private static Path synth(String recipe) throws IOException {
        Path file = dir.resolve("tiny-" + recipe + ".gguf");
        new SyntheticModel(SyntheticModel.Shape.TINY, SEED).write(file, QuantRecipe.named(recipe), 2, c -> { });
        return file;
    }

    @TestFactory
    Stream<DynamicTest> everyTypeIsValidAndRuns() {
        return QuantRecipe.names().stream().map(name -> DynamicTest.dynamicTest(name, () -> {
            Path file = synth(name);
            SyntheticModel model = new SyntheticModel(SyntheticModel.Shape.TINY, SEED);
            QuantRecipe recipe = QuantRecipe.named(name);
            Map<String, QuantRecipe.Choice> plan = recipe.plan(model.tensors()).stream()
                    .collect(Collectors.toMap(c -> c.tensor().name(), Function.identity()));
            double[] weightError = new double[2]; // sum of squared errors, sum of squares
            try (GgufFile g = GgufFile.open(file)) {
                assertEquals(3, g.version());
                assertEquals(recipe.fileType(), g.metadata().getLong("general.file_type", -1));
                assertEquals(model.tensors().stream().map(QuantRecipe.Tensor::name).toList(),
                        g.tensorInfos().stream().map(TensorInfo::name).toList());
                for (TensorInfo info : g.tensorInfos()) {
                    assertEquals(plan.get(info.name()).type(), info.dtype(), info.name());
                    checkTensor(model, g, info, weightError);
                }
            }
            try (Model m = Model.open(file, null, backend)) {
                // The engine's logits differ from the F32 file's about as the weights differ from the originals
                // (measured: NMSE ≈ 7 × the weights' relative MSE, the matrices on the path adding up), so a
                // backend misreading a layout — NMSE near 1 — cannot pass, while coarse types are allowed theirs.
                double weightMse = weightError[0] / weightError[1];
                double nmse = nmse(f32Logits, logits(m));
                assertTrue(nmse <= 15 * weightMse + 1e-9, name + ": logits NMSE against F32 " + nmse
                        + " for a weight relative MSE of " + weightMse);
                GenerationResult r = m.generator().generate("", GenerationParams.greedy(4), s -> { });
                assertTrue(r.tokens().length == 4 || m.tokenizer().isEndOfGeneration(r.tokens()[r.tokens().length - 1]),
                        "generated " + r.tokens().length + " tokens");
                for (int t : r.tokens()) {
                    assertTrue(t >= 0 && t < 512, "token " + t);
                }
            }
        }));
    }

    /** Every row of the tensor, decoded by the reference, against the row regenerated from the seed. */
    private static void checkTensor(SyntheticModel model, GgufFile g, TensorInfo info, double[] weightError) {
        Tensor t = g.tensor(info.name());
        byte[] bytes = t.segment().toArray(ValueLayout.JAVA_BYTE);
        int cols = Math.toIntExact(t.cols());
        int rows = Math.toIntExact(t.rows());
        double[][] decoded = Dequant.matrix(info.dtype(), bytes, 0, rows, cols);
        float[] original = new float[cols];
        int rowBytes = Math.toIntExact(info.dtype().rowBytes(cols));
        for (int r = 0; r < rows; r++) {
            model.row(info.name(), r, original);
            FormatBounds.checkRow(info.dtype(), info.name() + " row " + r, original, decoded[r], bytes, r * rowBytes);
            if (info.rank() == 2) {
                for (int c = 0; c < cols; c++) {
                    weightError[0] += (original[c] - decoded[r][c]) * (original[c] - decoded[r][c]);
                    weightError[1] += (double) original[c] * original[c];
                }
            }
        }
    }

    /**
     * Logits after the prompt, fed one token at a time: single-row forward passes are what generation runs, so
     * the backend's kernels for each type are compiled once per test (they are slow until the JIT has them).
     */
    private static float[] logits(Model m) {
        try (KvCache cache = m.transformer().newCache(1, PROMPT.length, DType.F32); Arena arena = Arena.ofConfined()) {
            Tensor out = null;
            for (int i = 0; i < PROMPT.length; i++) {
                out = m.transformer().forward(Batch.ofSequence(0, i, new int[] {PROMPT[i]}), cache);
            }
            Tensor host = Tensor.allocate(arena, DType.F32, out.shape());
            backend.copy(out, host);
            return host.toFloatArray();
        }
    }
}
