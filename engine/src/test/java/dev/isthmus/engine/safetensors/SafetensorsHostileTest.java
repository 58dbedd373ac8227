package dev.isthmus.engine.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.ModelFormatException;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Hostile and malformed safetensors files fail with a {@link ModelFormatException} naming the field. */
class SafetensorsHostileTest {
    private static final Path NAME = Path.of("hostile.safetensors");

    @TempDir
    Path dir;

    private static SafetensorsFile parse(byte[] bytes) {
        return SafetensorsFile.parse(NAME, MemorySegment.ofArray(bytes), null);
    }

    /** A file with this header text and this many data bytes. */
    private static byte[] file(String header, int dataBytes) {
        return HfFixtures.safetensorsBytes(header, List.of(new byte[dataBytes]));
    }

    private static void rejects(byte[] bytes, String... fragments) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> parse(bytes));
        assertTrue(e.getMessage().startsWith(NAME.toString()), e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "expected '" + f + "' in: " + e.getMessage());
        }
    }

    private static void rejects(String header, int dataBytes, String... fragments) {
        rejects(file(header, dataBytes), fragments);
    }

    @Test
    void validFileParses() {
        Map<String, HfFixtures.Data> t = new LinkedHashMap<>();
        t.put("a", HfFixtures.Data.f32(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        t.put("b", HfFixtures.Data.f16(new float[] {0.5f, -2}, 2));
        t.put("scalar", HfFixtures.Data.i32(new int[] {42}));
        t.put("empty", new HfFixtures.Data("BF16", new long[] {0, 4}, new byte[0]));
        byte[] bytes = HfFixtures.safetensorsBytes(HfFixtures.header(t, Map.of("format", "pt")).toString(),
                t.values().stream().map(HfFixtures.Data::bytes).toList());
        try (SafetensorsFile f = parse(bytes)) {
            assertEquals(List.of("a", "b", "scalar", "empty"), List.copyOf(f.entries().keySet()));
            assertEquals(Map.of("format", "pt"), f.metadata());
            Tensor a = f.tensor("a");
            assertEquals(DType.F32, a.dtype());
            assertArrayEquals(new long[] {2, 3}, a.shape());
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, a.toFloatArray());
            assertEquals(DType.F16, f.tensor("b").dtype());
            assertArrayEquals(new long[] {1}, f.entries().get("scalar").shape());
            assertEquals(0, f.entries().get("empty").byteSize());
        }
    }

    @Test
    void headerLength() {
        rejects(new byte[] {1, 2, 3}, "header length", "truncated");
        ByteBuffer huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE - 3);
        rejects(huge.array(), "header length", "exceeds the limit");
        ByteBuffer negative = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L);
        rejects(negative.array(), "header length", "18446744073709551615");
        ByteBuffer past = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(57);
        rejects(past.array(), "header length", "past the end");
        ByteBuffer big = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(SafetensorsFile.MAX_HEADER_BYTES + 1);
        rejects(big.array(), "header length", "limit");
    }

    @Test
    void badJson() {
        rejects("{\"a\": {\"dtype\": \"F32\", ", 0, "header", "invalid JSON");
        rejects("[1, 2, 3]", 0, "header", "does not start with '{'");
        rejects("{} trailing", 0, "header", "invalid JSON");
        rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "invalid JSON", "Duplicate");
        StringBuilder deep = new StringBuilder("{\"a\":");
        deep.append("[".repeat(1000)).append("]".repeat(1000)).append('}');
        rejects(deep.toString(), 0, "invalid JSON");
        rejects("{\"a\": 5}", 0, "tensor 'a'", "expected an object");
        rejects("{\"__metadata__\": {\"k\": 5}}", 0, "__metadata__.k", "expected a string");
    }

    @Test
    void fieldTypes() {
        rejects("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w' dtype", "expected a string");
        rejects("{\"w\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w' dtype", "unknown dtype");
        rejects("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'w' shape", "expected an array");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "tensor 'w' shape[0]");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "tensor 'w' shape[0]");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,4]}}", 4, "tensor 'w' shape[0]");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4, "tensor 'w' shape[0]");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "tensor 'w' data_offsets", "[begin, end]");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "tensor 'w' data_offsets", "before begin");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "tensor 'w' data_offsets[0]");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,2,3,4,5,6,7,8,9],\"data_offsets\":[0,4]}}", 4, "tensor 'w' shape",
                "dimensions");
    }

    @Test
    void offsetsPastTheEnd() {
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
                "tensor 'w' data_offsets", "past the end of the data (8 bytes");
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9223372036854775800,9223372036854775804]}}", 8,
                "tensor 'w' data_offsets", "past the end");
    }

    @Test
    void dtypeShapeMismatch() {
        rejects("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                "tensor 'w' data_offsets", "holds 8 bytes", "need 12");
        rejects("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
                "tensor 'w' data_offsets", "need 8");
        rejects("{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904, 4],\"data_offsets\":[0,8]}}", 8,
                "tensor 'w' shape", "63 bits");
        rejects("{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]}}", 8,
                "tensor 'w' shape", "63 bits");
    }

    @Test
    void overlapsHolesAndTrailingBytes() {
        rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tensor 'b' data_offsets", "overlaps tensor 'a'");
        rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "overlaps");
        rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a' data_offsets", "hole of 4 bytes");
        rejects("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "data", "end at 4", "8 data bytes");
    }

    @Test
    void unsupportedDtypeIsAnErrorOnlyWhenUsed() {
        byte[] bytes = file("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
        try (SafetensorsFile f = parse(bytes)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> f.tensor("w"));
            assertTrue(e.getMessage().contains("tensor 'w' dtype") && e.getMessage().contains("F64"), e.getMessage());
            e = assertThrows(ModelFormatException.class, () -> f.tensor("missing"));
            assertTrue(e.getMessage().contains("tensor 'missing'"), e.getMessage());
        }
    }

    /** Thousands of corruptions of a valid file: a valid parse or a ModelFormatException, nothing else. */
    @Test
    void randomCorruptionsNeverEscapeAsOtherExceptions() {
        Map<String, HfFixtures.Data> t = new LinkedHashMap<>();
        t.put("model.layers.0.self_attn.q_proj.weight", HfFixtures.Data.f32(new float[16], 4, 4));
        t.put("model.norm.weight", HfFixtures.Data.f16(new float[4], 4));
        byte[] good = HfFixtures.safetensorsBytes(HfFixtures.header(t, null).toString(),
                t.values().stream().map(HfFixtures.Data::bytes).toList());
        Random rnd = new Random(2024);
        int headerEnd = 8 + (int) ByteBuffer.wrap(good).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        int rejected = 0;
        for (int trial = 0; trial < 5000; trial++) {
            byte[] b = good.clone();
            int edits = 1 + rnd.nextInt(4);
            for (int k = 0; k < edits; k++) {
                int pos = rnd.nextInt(Math.min(b.length, headerEnd + 4));
                b[pos] = switch (rnd.nextInt(4)) {
                    case 0 -> (byte) rnd.nextInt(256);
                    case 1 -> (byte) "0123456789".charAt(rnd.nextInt(10));
                    case 2 -> (byte) "{}[],:\"-".charAt(rnd.nextInt(8));
                    default -> (byte) (b[pos] ^ (1 << rnd.nextInt(8)));
                };
            }
            if (rnd.nextInt(10) == 0) {
                b = java.util.Arrays.copyOf(b, rnd.nextInt(b.length));
            }
            try (SafetensorsFile f = parse(b)) {
                for (SafetensorsFile.Entry e : f.entries().values()) {
                    if (e.dtype().engineType() != null) {
                        f.tensor(e); // must be inside the file
                    }
                }
            } catch (ModelFormatException e) {
                rejected++;
            } catch (RuntimeException e) {
                fail("trial " + trial + ": " + e + " for header " + new String(b, 8,
                        Math.max(0, Math.min(b.length, headerEnd) - 8), StandardCharsets.UTF_8), e);
            }
        }
        assertTrue(rejected > 2500, rejected + " rejected");
    }

    @Test
    void detectionByContent() throws Exception {
        Path good = dir.resolve("x.bin");
        Files.write(good, file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4));
        assertTrue(SafetensorsFile.hasHeader(good));
        Path notJson = dir.resolve("y.bin");
        Files.write(notJson, ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN).putLong(8).put("[]      ".getBytes()).array());
        assertTrue(!SafetensorsFile.hasHeader(notJson));
        try (SafetensorsFile f = SafetensorsFile.open(good)) {
            assertEquals(1, f.entries().size());
        }
    }
}
