package dev.isthmus.conformance.golden;

import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.model.Model;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static dev.isthmus.conformance.golden.GoldenRuns.floats;
import static dev.isthmus.conformance.golden.GoldenRuns.ids;
import static dev.isthmus.conformance.golden.GoldenRuns.lineIds;
import static dev.isthmus.conformance.golden.GoldenRuns.logits;
import static dev.isthmus.conformance.golden.GoldenRuns.nmse;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole-model goldens: the graph on every available backend must reproduce what independent engines
 * (llama2.c, llama.cpp) produce for the real tiny models in {@code ../shared}.
 */
class ModelGoldenTest {
    /** NMSE bound of logits against llama.cpp's. */
    private static final double LOGITS_NMSE = 1e-6;

    @TestFactory
    Stream<DynamicContainer> everyAvailableBackend() {
        List<Backends.Candidate> available = Backends.candidates().stream()
                .filter(c -> c.availability().available()).toList();
        assertFalse(available.isEmpty(), "no backend available: the goldens would test nothing");
        return available.stream().map(c -> DynamicContainer.dynamicContainer(c.name(), Stream.of(
                DynamicTest.dynamicTest("stories260K.gguf greedy 200 = llama2.c's text",
                        () -> greedyText(c, SharedData.file("models/stories260K.gguf"), null)),
                DynamicTest.dynamicTest("llama2.c stories260K.bin greedy 200 = llama2.c's text",
                        () -> greedyText(c, SharedData.file("llama2c/stories260K.bin"),
                                SharedData.file("llama2c/tok512.bin"))),
                DynamicTest.dynamicTest("stories260K greedy ids = golden ids", () -> greedyIds(c)),
                DynamicTest.dynamicTest("stories260K logits after BOS = llama.cpp's", () -> storiesLogits(c)),
                DynamicTest.dynamicTest("llama-2-tiny-random hello world = llama.cpp's", () -> tinyRandom(c)))));
    }

    private static Backend open(Backends.Candidate c) {
        return Backends.openWithFallback(c.name(), BackendOptions.defaults());
    }

    private static void greedyText(Backends.Candidate c, Path model, Path tokenizer) throws IOException {
        String expected = Files.readString(SharedData.file("golden/stories260K.greedy200.expected.txt"));
        try (Backend backend = open(c); Model m = Model.open(model, tokenizer, backend)) {
            StringBuilder streamed = new StringBuilder();
            GenerationResult r = m.generator().generate("", GenerationParams.greedy(200), streamed::append);
            assertEquals(expected, r.text());
            assertEquals(expected, streamed.toString());
            assertArrayEquals(new int[] {1}, r.promptTokens());
        }
    }

    private static void greedyIds(Backends.Candidate c) throws IOException {
        int[] expected = ids(Files.readString(SharedData.file("golden/stories260K.greedy200.ids.json")),
                "generated_ids");
        assertEquals(200, expected.length);
        try (Backend backend = open(c); Model m = Model.open(SharedData.file("models/stories260K.gguf"), null, backend)) {
            GenerationResult r = m.generator().generate("", GenerationParams.greedy(200), s -> { });
            assertArrayEquals(expected, r.tokens());
        }
    }

    private static void storiesLogits(Backends.Candidate c) throws IOException {
        float[] expected = floats(SharedData.file("golden/stories260K.bos-pos0.logits.f32"));
        try (Backend backend = open(c); Model m = Model.open(SharedData.file("models/stories260K.gguf"), null, backend)) {
            float[] actual = logits(m, backend, 1);
            assertTrue(nmse(expected, actual) <= LOGITS_NMSE, "NMSE " + nmse(expected, actual));
        }
    }

    private static void tinyRandom(Backends.Candidate c) throws IOException {
        String golden = Files.readString(SharedData.file("golden/llama-2-tiny-random.hello-world.greedy16.txt"));
        int[] promptIds = lineIds(golden, "prompt_ids");
        int[] genIds = lineIds(golden, "gen_ids");
        String text = golden.substring(golden.indexOf("text: ") + "text: ".length()).stripTrailing();
        float[] expectedLogits = floats(SharedData.file("golden/llama-2-tiny-random.hello-world.logits.f32"));
        try (Backend backend = open(c);
             Model m = Model.open(SharedData.file("models/llama-2-tiny-random.gguf"), null, backend)) {
            GenerationResult r = m.generator().generate("Hello world", GenerationParams.greedy(16), s -> { });
            assertArrayEquals(promptIds, r.promptTokens());
            assertArrayEquals(genIds, r.tokens());
            assertEquals(text, r.text().stripTrailing());
            float[] actual = logits(m, backend, promptIds);
            assertTrue(nmse(expectedLogits, actual) <= LOGITS_NMSE, "NMSE " + nmse(expectedLogits, actual));
        }
    }
}
