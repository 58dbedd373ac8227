package dev.isthmus.conformance.golden;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.api.spi.Backend;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.model.Model;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the whole-model golden tests share: reading the goldens of independent engines (raw little-endian F32
 * logits, token ids in JSON or in {@code key: 1 2 3} lines), running a model's forward pass to its logits, and
 * comparing logits by NMSE.
 */
public final class GoldenRuns {
    private GoldenRuns() {
    }

    /** Logits at the last of {@code tokens}, evaluated from position 0 in one batch. */
    public static float[] logits(Model m, Backend backend, int... tokens) {
        try (KvCache cache = m.transformer().newCache(1, tokens.length, DType.F32); Arena arena = Arena.ofConfined()) {
            Tensor out = m.transformer().forward(Batch.ofSequence(0, 0, tokens), cache);
            Tensor host = Tensor.allocate(arena, DType.F32, out.shape());
            backend.copy(out, host);
            return host.toFloatArray();
        }
    }

    /** Normalized mean squared error of {@code actual} against {@code expected}; fails if their lengths differ. */
    public static double nmse(float[] expected, float[] actual) {
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

    /** A file of little-endian F32 values. */
    public static float[] floats(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }

    /** The integer array {@code "key": [...]} of a golden JSON file; fails if there is none. */
    public static int[] ids(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*\\[([^\\]]*)]").matcher(json);
        assertTrue(m.find(), "no " + key + " in golden JSON");
        return Arrays.stream(m.group(1).split(",")).map(String::trim).filter(s -> !s.isEmpty())
                .mapToInt(Integer::parseInt).toArray();
    }

    /** The integers of the line {@code key: 1 2 3} of a golden text file; fails if there is none. */
    public static int[] lineIds(String golden, String key) {
        for (String line : golden.split("\n")) {
            if (line.startsWith(key + ":")) {
                return Arrays.stream(line.substring(key.length() + 1).trim().split("\\s+"))
                        .mapToInt(Integer::parseInt).toArray();
            }
        }
        throw new AssertionError("no " + key + " line in golden file");
    }
}
