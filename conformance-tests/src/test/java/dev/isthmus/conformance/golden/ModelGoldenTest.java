package dev.isthmus.conformance.golden;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.discovery.Backends;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.api.spi.BackendOptions;
import dev.isthmus.engine.SharedData;
import dev.isthmus.engine.generation.GenerationParams;
import dev.isthmus.engine.generation.GenerationResult;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.model.Model;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

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

    /** Logits at the last of {@code tokens}, evaluated from position 0 in one batch. */
    private static float[] logits(Model m, Backend backend, int... tokens) {
        try (KvCache cache = m.transformer().newCache(1, tokens.length, DType.F32); Arena arena = Arena.ofConfined()) {
            Tensor out = m.transformer().forward(Batch.ofSequence(0, 0, tokens), cache);
            Tensor host = Tensor.allocate(arena, DType.F32, out.shape());
            backend.copy(out, host);
            return host.toFloatArray();
        }
    }

    private static double nmse(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        double num = 0;
        double den = 0;
        for (int i = 0; i < expected.length; i++) {
            double d = (double) expected[i] - actual[i];
            num += d * d;
            den += (double) expected[i] * expected[i];
        }
        return num / den;
    }

    private static float[] floats(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }

    private static int[] ids(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*\\[([^\\]]*)]").matcher(json);
        assertTrue(m.find(), "no " + key + " in golden JSON");
        return Arrays.stream(m.group(1).split(",")).map(String::trim).filter(s -> !s.isEmpty())
                .mapToInt(Integer::parseInt).toArray();
    }

    private static int[] lineIds(String golden, String key) {
        for (String line : golden.split("\n")) {
            if (line.startsWith(key + ":")) {
                return Arrays.stream(line.substring(key.length() + 1).trim().split("\\s+"))
                        .mapToInt(Integer::parseInt).toArray();
            }
        }
        throw new AssertionError("no " + key + " line in golden file");
    }
}
