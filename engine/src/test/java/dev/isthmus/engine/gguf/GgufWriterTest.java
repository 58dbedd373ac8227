package dev.isthmus.engine.gguf;

import dev.isthmus.engine.SharedData;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.TensorInfo;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufWriterTest {
    @TempDir
    Path dir;

    /** Every scalar type, every array element type, empty and nested arrays. */
    static GgufWriter everyValueType(GgufWriter w) {
        return w.put("general.architecture", "llama")
                .put("t.u8", 200, GgufType.UINT8)
                .put("t.i8", -5, GgufType.INT8)
                .put("t.u16", 60000, GgufType.UINT16)
                .put("t.i16", -30000, GgufType.INT16)
                .put("t.u32", 4_000_000_000L, GgufType.UINT32)
                .put("t.i32", -7)
                .put("t.f32", 1.25f)
                .put("t.bool", true)
                .put("t.string", "naïve ▁text 🦙")
                .put("t.u64", -1L, GgufType.UINT64)
                .put("t.i64", Long.MIN_VALUE)
                .put("t.f64", Math.PI)
                .put("a.u8", new int[] {0, 255, 7}, GgufType.UINT8)
                .put("a.i8", new int[] {-128, 127}, GgufType.INT8)
                .put("a.u16", new int[] {65535}, GgufType.UINT16)
                .put("a.i16", new int[] {-32768, 32767}, GgufType.INT16)
                .put("a.u32", new long[] {0, 4_294_967_295L})
                .put("a.i32", new int[] {Integer.MIN_VALUE, 0, Integer.MAX_VALUE})
                .put("a.f32", new float[] {0.5f, -0f, Float.MAX_VALUE})
                .put("a.bool", new boolean[] {true, false, true})
                .put("a.string", new String[] {"", "a", "<0x0A>", "日本"})
                .put("a.u64", new long[] {-1L, 5}, GgufType.UINT64)
                .put("a.i64", new long[] {Long.MIN_VALUE, Long.MAX_VALUE})
                .put("a.f64", new double[] {1e300, -2.5})
                .put("a.empty", new float[0])
                .put("a.nested", new Object[] {new int[] {1, 2}, new String[] {"x"}, new Object[] {new double[] {3}}});
    }

    @Test
    void roundTripsEveryValueTypeAndSeveralDtypes() throws IOException {
        Random rnd = new Random(1);
        try (Arena arena = Arena.ofConfined()) {
            Tensor f32 = Tensor.allocate(arena, DType.F32, 3, 5);
            float[] vals = new float[15];
            for (int i = 0; i < vals.length; i++) {
                vals[i] = (float) rnd.nextGaussian();
            }
            f32.copyFrom(vals);
            Map<String, MemorySegment> raw = new java.util.LinkedHashMap<>();
            raw.put("f16", random(arena, rnd, Tensor.byteSizeOf(DType.F16, 2, 4)));
            raw.put("q8", random(arena, rnd, Tensor.byteSizeOf(DType.Q8_0, 2, 64)));
            raw.put("q4k", random(arena, rnd, Tensor.byteSizeOf(DType.Q4_K, 1, 256)));
            raw.put("i32", random(arena, rnd, Tensor.byteSizeOf(DType.I32, 7)));
            raw.put("bf16", random(arena, rnd, Tensor.byteSizeOf(DType.BF16, 2, 3, 4)));
            MemorySegment streamed = random(arena, rnd, Tensor.byteSizeOf(DType.Q6_K, 2, 256));
            GgufWriter w = everyValueType(new GgufWriter())
                    .tensor("weights.f32", f32)
                    .tensor("w.f16", DType.F16, new long[] {2, 4}, raw.get("f16"))
                    .tensor("w.q8", DType.Q8_0, new long[] {2, 64}, raw.get("q8"))
                    .tensor("w.q4k", DType.Q4_K, new long[] {1, 256}, raw.get("q4k"))
                    .tensor("w.i32", DType.I32, new long[] {7}, raw.get("i32"))
                    .tensor("w.bf16", DType.BF16, new long[] {2, 3, 4}, raw.get("bf16"))
                    .tensor("w.q6k", DType.Q6_K, new long[] {2, 256},
                            target -> MemorySegment.copy(streamed, 0, target, 0, target.byteSize()));
            Path out = dir.resolve("all.gguf");
            w.write(out);
            try (GgufFile f = GgufFile.open(out)) {
                assertEquals(3, f.version());
                assertEquals(32, f.alignment());
                GgufWriter expected = everyValueType(new GgufWriter());
                Path ref = dir.resolve("meta-only.gguf");
                expected.write(ref);
                assertEquals(27, f.metadata().size());
                assertEquals(GgufType.UINT8, f.valueType("t.u8"));
                assertEquals(GgufType.INT8, f.valueType("t.i8"));
                assertEquals(GgufType.UINT16, f.valueType("t.u16"));
                assertEquals(GgufType.INT16, f.valueType("t.i16"));
                assertEquals(GgufType.UINT32, f.valueType("t.u32"));
                assertEquals(GgufType.INT32, f.valueType("t.i32"));
                assertEquals(GgufType.FLOAT32, f.valueType("t.f32"));
                assertEquals(GgufType.BOOL, f.valueType("t.bool"));
                assertEquals(GgufType.STRING, f.valueType("t.string"));
                assertEquals(GgufType.UINT64, f.valueType("t.u64"));
                assertEquals(GgufType.INT64, f.valueType("t.i64"));
                assertEquals(GgufType.FLOAT64, f.valueType("t.f64"));
                assertEquals(GgufType.UINT8, f.arrayElementType("a.u8"));
                assertEquals(GgufType.UINT32, f.arrayElementType("a.u32"));
                assertEquals(GgufType.INT64, f.arrayElementType("a.i64"));
                assertEquals(GgufType.ARRAY, f.arrayElementType("a.nested"));
                Metadata md = f.metadata();
                assertEquals(200, md.get("t.u8"));
                assertEquals(-5, md.get("t.i8"));
                assertEquals(60000, md.get("t.u16"));
                assertEquals(-30000, md.get("t.i16"));
                assertEquals(4_000_000_000L, md.get("t.u32"));
                assertEquals(-7, md.get("t.i32"));
                assertEquals(1.25f, md.get("t.f32"));
                assertEquals(true, md.get("t.bool"));
                assertEquals("naïve ▁text 🦙", md.get("t.string"));
                assertEquals(-1L, md.get("t.u64"));
                assertEquals(Long.MIN_VALUE, md.get("t.i64"));
                assertEquals(Math.PI, md.get("t.f64"));
                assertArrayEquals(new int[] {0, 255, 7}, (int[]) md.get("a.u8"));
                assertArrayEquals(new long[] {0, 4_294_967_295L}, (long[]) md.get("a.u32"));
                assertArrayEquals(new String[] {"", "a", "<0x0A>", "日本"}, (String[]) md.get("a.string"));
                assertArrayEquals(new boolean[] {true, false, true}, (boolean[]) md.get("a.bool"));
                assertArrayEquals(new float[0], (float[]) md.get("a.empty"));
                Object[] nested = (Object[]) md.get("a.nested");
                assertArrayEquals(new int[] {1, 2}, (int[]) nested[0]);
                assertArrayEquals(new double[] {3}, (double[]) ((Object[]) nested[2])[0]);
                try (GgufFile r = GgufFile.open(ref)) {
                    assertMetadataIdentical(r, f);
                }

                List<String> names = f.tensorInfos().stream().map(TensorInfo::name).toList();
                assertEquals(List.of("weights.f32", "w.f16", "w.q8", "w.q4k", "w.i32", "w.bf16", "w.q6k"), names);
                assertArrayEquals(vals, f.tensor("weights.f32").toFloatArray());
                assertArrayEquals(new long[] {3, 5}, f.tensorInfo("weights.f32").shape());
                assertArrayEquals(new long[] {2, 3, 4}, f.tensorInfo("w.bf16").shape());
                assertEquals(DType.Q4_K, f.tensorInfo("w.q4k").dtype());
                for (Map.Entry<String, MemorySegment> e : raw.entrySet()) {
                    assertEquals(-1, f.tensor("w." + e.getKey()).segment().mismatch(e.getValue()), e.getKey());
                }
                assertEquals(-1, f.tensor("w.q6k").segment().mismatch(streamed));
                for (TensorInfo t : f.tensorInfos()) {
                    assertEquals(0, (t.offset() - f.dataOffset()) % 32, t.name());
                }
            }
        }
    }

    @Test
    void honoursACustomAlignment() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            Path out = dir.resolve("aligned.gguf");
            new GgufWriter().alignment(256)
                    .tensor("a", Tensor.allocate(arena, DType.F32, 3))
                    .tensor("b", Tensor.allocate(arena, DType.F16, 5))
                    .tensor("c", Tensor.allocate(arena, DType.F32, 1))
                    .write(out);
            try (GgufFile f = GgufFile.open(out)) {
                assertEquals(256, f.alignment());
                assertEquals(GgufType.UINT32, f.valueType("general.alignment"));
                assertEquals(0, f.dataOffset() % 256);
                for (TensorInfo t : f.tensorInfos()) {
                    assertEquals(0, t.offset() % 256, t.name());
                }
                assertEquals(0, Files.size(out) % 256);
            }
        }
    }

    @Test
    void rejectsInvalidInputEarly() {
        GgufWriter w = new GgufWriter();
        assertThrows(IllegalArgumentException.class, () -> w.put("", 1));
        assertThrows(IllegalArgumentException.class, () -> w.put("k", 256, GgufType.UINT8));
        assertThrows(IllegalArgumentException.class, () -> w.put("k", -1L, GgufType.UINT32));
        assertThrows(IllegalArgumentException.class, () -> w.put("k", "s", GgufType.INT32));
        assertThrows(IllegalArgumentException.class, () -> w.put("k", new int[] {1, 300}, GgufType.UINT8));
        assertThrows(IllegalArgumentException.class, () -> w.put("k", new Object()));
        assertThrows(IllegalArgumentException.class, () -> w.put("k", new String[] {null}));
        assertThrows(IllegalArgumentException.class, () -> w.alignment(48));
        assertThrows(IllegalArgumentException.class, () -> w.put("general.alignment", 0));
        MemorySegment four = MemorySegment.ofArray(new byte[4]);
        assertThrows(IllegalArgumentException.class, () -> w.tensor("t", DType.F32, new long[] {2}, four));
        assertThrows(IllegalArgumentException.class, () -> w.tensor("t", DType.Q8_0, new long[] {16}, four));
        assertThrows(IllegalArgumentException.class, () -> w.tensor("t", DType.F32, new long[] {0}, four));
        assertThrows(IllegalArgumentException.class, () -> w.tensor("t", DType.F32, new long[] {1, 1, 1, 1, 1}, four));
        assertThrows(IllegalArgumentException.class, () -> w.tensor("x".repeat(65), DType.F32, new long[] {1}, four));
        w.tensor("t", DType.F32, new long[] {1}, four);
        assertThrows(IllegalArgumentException.class, () -> w.tensor("t", DType.F32, new long[] {1}, four));
    }

    @Test
    void failedWriteLeavesNoFile() throws IOException {
        Path out = dir.resolve("failed.gguf");
        GgufWriter w = new GgufWriter().tensor("t", DType.F32, new long[] {4}, target -> {
            throw new IOException("producer failed");
        });
        assertThrows(IOException.class, () -> w.write(out));
        assertFalse(Files.exists(out));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(0, s.count());
        }
    }

    @Test
    void rewritingRealModelsReadsBackIdentically() throws IOException {
        for (String name : List.of("models/stories260K.gguf", "models/llama-2-tiny-random.gguf",
                "tokenizer-vectors/ggml-vocab-llama-spm.gguf", "tokenizer-vectors/ggml-vocab-gpt-2.gguf")) {
            Path src = SharedData.file(name);
            Path out = dir.resolve("copy.gguf");
            try (GgufFile a = GgufFile.open(src)) {
                GgufWriter.copyOf(a).write(out);
                try (GgufFile b = GgufFile.open(out)) {
                    assertMetadataIdentical(a, b);
                    assertTensorsIdentical(a, b);
                }
                // These files were written by ggml; same layout rules give the same bytes.
                assertEquals(-1, Files.mismatch(src, out), name);
            }
        }
    }

    static void assertMetadataIdentical(GgufFile a, GgufFile b) {
        assertEquals(List.copyOf(a.metadata().asMap().keySet()), List.copyOf(b.metadata().asMap().keySet()));
        for (String k : a.metadata().asMap().keySet()) {
            assertTrue(Objects.deepEquals(a.metadata().get(k), b.metadata().get(k)), k);
            assertEquals(a.valueType(k), b.valueType(k), k);
            assertEquals(a.arrayElementType(k), b.arrayElementType(k), k);
        }
    }

    static void assertTensorsIdentical(GgufFile a, GgufFile b) {
        List<String> an = new ArrayList<>();
        a.tensorInfos().forEach(t -> an.add(t.name()));
        assertEquals(an, b.tensorInfos().stream().map(TensorInfo::name).toList());
        for (TensorInfo t : a.tensorInfos()) {
            TensorInfo u = b.tensorInfo(t.name());
            assertEquals(t.dtype(), u.dtype(), t.name());
            assertArrayEquals(t.shape(), u.shape(), t.name());
            assertEquals(-1, a.tensor(t.name()).segment().mismatch(b.tensor(t.name()).segment()), t.name());
        }
    }

    private static MemorySegment random(Arena arena, Random rnd, long bytes) {
        MemorySegment s = arena.allocate(bytes);
        for (long i = 0; i < bytes; i++) {
            s.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt());
        }
        return s;
    }
}
