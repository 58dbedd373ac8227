package dev.isthmus.conformance.cuda;

import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.discovery.FallbackBackend;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.backend.cuda.CudaBackendProvider;
import dev.isthmus.backend.cuda.KernelResources;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.model.Model;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.Map;

import static dev.isthmus.conformance.golden.GoldenRuns.floats;
import static dev.isthmus.conformance.golden.GoldenRuns.ids;
import static dev.isthmus.conformance.golden.GoldenRuns.lineIds;
import static dev.isthmus.conformance.golden.GoldenRuns.logits;
import static dev.isthmus.conformance.golden.GoldenRuns.nmse;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole models through the CUDA backend on the kernel emulator (with CPU fallback for what it lacks, i.e.
 * nothing these models use), against the goldens of independent engines. The emulator is slow, so this checks
 * single forward passes and the start of the greedy generation; {@code scripts/gpu-check.sh} runs the complete
 * {@code ModelGoldenTest} on a GPU.
 */
class EmulatedCudaGoldenTest {
    private static final double LOGITS_NMSE = 1e-6;

    @org.junit.jupiter.api.BeforeAll
    static void requireEmulator() {
        String why = KernelResources.load().emulatorAbsenceReason();
        org.junit.jupiter.api.Assumptions.assumeTrue(why == null, why);
    }

    private static Backend open(Map<String, String> properties) {
        Backend cuda = CudaBackendProvider.emulated(CudaBackendProvider.options(properties));
        Backend cpu = Backends.select("cpu").provider().create(BackendOptions.defaults());
        return FallbackBackend.wrapIfNeeded(cuda, cpu);
    }

    @Test
    void stories260kLogitsAfterBosMatchLlamaCpp() throws IOException {
        float[] expected = floats(SharedData.file("golden/stories260K.bos-pos0.logits.f32"));
        try (Backend b = open(Map.of()); Model m = Model.open(SharedData.file("models/stories260K.gguf"), null, b)) {
            double nmse = nmse(expected, logits(m, b, 1));
            assertTrue(nmse <= LOGITS_NMSE, "NMSE " + nmse);
        }
    }

    @Test
    void stories260kGreedyGenerationStartsLikeTheGolden() throws IOException {
        greedyStart(Map.of());
    }

    @Test
    void stories260kGreedyGenerationWithCudaGraphsStartsLikeTheGolden() throws IOException {
        greedyStart(Map.of("cuda.graphs", "true"));
    }

    private static void greedyStart(Map<String, String> properties) throws IOException {
        int n = 24;
        int[] golden = ids(Files.readString(SharedData.file("golden/stories260K.greedy200.ids.json")), "generated_ids");
        String text = Files.readString(SharedData.file("golden/stories260K.greedy200.expected.txt"));
        try (Backend b = open(properties); Model m = Model.open(SharedData.file("models/stories260K.gguf"), null, b)) {
            GenerationResult r = m.generator().generate("", GenerationParams.greedy(n), s -> { });
            assertArrayEquals(Arrays.copyOf(golden, n), r.tokens());
            assertTrue(text.startsWith(r.text()), "'" + r.text() + "' does not start the golden text");
            if (b instanceof FallbackBackend f) {
                assertEquals(java.util.List.of(), f.fallbacks(), "a supported op fell back to the CPU");
            }
        }
    }

    @Test
    void llama2TinyRandomPromptLogitsMatchLlamaCppWithKernelsAndWithCublas() throws IOException {
        String golden = Files.readString(SharedData.file("golden/llama-2-tiny-random.hello-world.greedy16.txt"));
        int[] promptIds = lineIds(golden, "prompt_ids");
        float[] expected = floats(SharedData.file("golden/llama-2-tiny-random.hello-world.logits.f32"));
        // F16 weights: the 3-row prompt through the F16 matvec kernel, then through (emulated) cuBLAS with the
        // activations converted to F16 as for tensor cores.
        for (Map<String, String> p : java.util.List.of(Map.<String, String>of(), Map.of("cuda.gemm.minRows", "2"))) {
            try (Backend b = open(p);
                 Model m = Model.open(SharedData.file("models/llama-2-tiny-random.gguf"), null, b)) {
                double nmse = nmse(expected, logits(m, b, promptIds));
                assertTrue(nmse <= LOGITS_NMSE, p + ": NMSE " + nmse);
            }
        }
    }
}
