package dev.isthmus.engine.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.format.TensorInfo;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Corrupted, truncated and malicious GGUF files must all be rejected with a {@link ModelFormatException}
 * that names the problem — never another exception type, an out-of-memory error or a crash.
 */
class GgufHostileTest {
    private static final long HUGE = 1L << 62;
    private static final int F32 = 0;
    private static final int STRING = 8;
    private static final int ARRAY = 9;

    @TempDir
    Path dir;
    private Path file;

    @BeforeEach
    void setUp() {
        file = dir.resolve("hostile.gguf");
    }

    // ---- header ----

    @Test
    void badHeaders() throws IOException {
        expect(new byte[0], "header magic", "truncated");
        expect("GGU".getBytes(), "header magic", "truncated");
        expect("GGML\3\0\0\0".getBytes(), "header magic", "'GGML'");
        expect(new byte[] {0x7f, 'E', 'L', 'F', 2, 1, 1, 0}, "header magic", "'\\x7fELF'");
        expect(RawGguf.header(1, 0, 0).toBytes(), "header version", "version 1 is not supported");
        expect(RawGguf.header(4, 0, 0).toBytes(), "header version", "unsupported GGUF version 4");
        expect(RawGguf.header(0xFFFF_FFFFL, 0, 0).toBytes(), "header version", "4294967295");
        expect(RawGguf.header(0x0300_0000L, 0, 0).toBytes(), "header version", "big-endian");
        expect(RawGguf.header(3, 0, 0).toBytes().length == 24 ? Arrays.copyOf(RawGguf.header(3, 0, 0).toBytes(), 12) : null,
                "header tensor count", "truncated");
        expect(Arrays.copyOf(RawGguf.header(3, 0, 0).toBytes(), 20), "header metadata key/value count", "truncated");
        expect(RawGguf.header(3, HUGE, 0).toBytes(), "header tensor count", "4611686018427387904");
        expect(RawGguf.header(3, -1, 0).toBytes(), "header tensor count", "18446744073709551615");
        expect(RawGguf.header(3, 0, HUGE).zeros(64).toBytes(), "header metadata key/value count", "4611686018427387904");
        expect(RawGguf.header(3, 0, 1000).zeros(64).toBytes(), "header metadata key/value count", "1000");
    }

    @Test
    void minimalFilesAreValid() throws IOException {
        Files.write(file, RawGguf.header(2, 0, 0).toBytes());
        try (GgufFile f = GgufFile.open(file)) {
            assertEquals(2, f.version());
            assertEquals(0, f.metadata().size());
        }
        Files.write(file, RawGguf.header(3, 1, 0).tensorInfo("t", new long[] {4}, F32, 0).padTo(32).zeros(16).toBytes());
        try (GgufFile f = GgufFile.open(file)) {
            assertEquals(4, f.tensor("t").toFloatArray().length);
        }
    }

    // ---- metadata ----

    @Test
    void badKeys() throws IOException {
        expect(RawGguf.header(3, 0, 1).u64(HUGE).zeros(16).toBytes(), "metadata key #0 name length", "4611686018427387904");
        expect(RawGguf.header(3, 0, 1).u64(70_000).zeros(70_010).toBytes(), "metadata key #0 name length", "70000",
                "limit of 65535");
        expect(RawGguf.header(3, 0, 1).u64(0).u32(4).u32(1).toBytes(), "metadata key #0 name", "empty key");
        expect(RawGguf.header(3, 0, 1).u64(2).bytes(new byte[] {(byte) 0xC3, 0x28}).u32(4).u32(1).toBytes(),
                "metadata key #0 name", "invalid UTF-8");
        expect(RawGguf.header(3, 0, 2).key("k", 4).u32(1).key("k", 5).u32(2).toBytes(), "metadata key #1 'k'",
                "duplicate key");
        expect(RawGguf.header(3, 0, 2).key("a".repeat(16), 4).u32(1).toBytes(), "metadata key #1 name length",
                "truncated");
    }

    @Test
    void badValues() throws IOException {
        expect(RawGguf.header(3, 0, 1).key("k", 13).u32(0).toBytes(), "metadata key #0 'k' value type",
                "unknown value type 13");
        expect(RawGguf.header(3, 0, 1).key("k", 0xFFFF_FFFFL).u32(0).toBytes(), "metadata key #0 'k' value type",
                "4294967295");
        expect(RawGguf.header(3, 0, 1).key("k", STRING).u64(HUGE).zeros(8).toBytes(), "metadata key #0 'k' length",
                "4611686018427387904");
        expect(RawGguf.header(3, 0, 1).key("k", STRING).u64(-1).toBytes(), "metadata key #0 'k' length",
                "18446744073709551615");
        expect(RawGguf.header(3, 0, 1).key("k", STRING).u64(10).bytes("abc".getBytes()).toBytes(),
                "metadata key #0 'k' length", "10");
        expect(RawGguf.header(3, 0, 1).key("k", 7).u8(2).toBytes(), "metadata key #0 'k'", "bool value 2");
        expect(RawGguf.header(3, 0, 1).key("k", 10).u32(1).toBytes(), "metadata key #0 'k'", "truncated");
        expect(RawGguf.header(3, 0, 1).key("kkkk", 6).toBytes(), "metadata key #0 'kkkk'", "truncated");
        expect(RawGguf.header(3, 0, 1).key("kkkk", 0).toBytes(), "metadata key #0 'kkkk'", "truncated");
        // Too short for even one pair: rejected by the count check before any pair is read.
        expect(RawGguf.header(3, 0, 1).key("k", 0).toBytes(), "header metadata key/value count", "cannot fit");
    }

    @Test
    void badArrays() throws IOException {
        String tokens = "metadata key #0 'tokenizer.ggml.tokens'";
        expect(RawGguf.header(3, 0, 1).key("tokenizer.ggml.tokens", ARRAY).u32(99).u64(1).toBytes(),
                tokens + " array element type", "unknown value type 99");
        expect(RawGguf.header(3, 0, 1).key("tokenizer.ggml.tokens", ARRAY).u32(STRING).u64(HUGE).zeros(64).toBytes(),
                tokens + " array length", "4611686018427387904");
        expect(RawGguf.header(3, 0, 1).key("tokenizer.ggml.tokens", ARRAY).u32(STRING).u64(-1).zeros(64).toBytes(),
                tokens + " array length", "18446744073709551615");
        for (int type : new int[] {0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, ARRAY}) {
            expect(RawGguf.header(3, 0, 1).key("k", ARRAY).u32(type).u64(HUGE).zeros(64).toBytes(),
                    "metadata key #0 'k' array length", "4611686018427387904");
            expect(RawGguf.header(3, 0, 1).key("k", ARRAY).u32(type).u64(100).zeros(11).toBytes(),
                    "metadata key #0 'k' array length", "100");
        }
        expect(RawGguf.header(3, 0, 1).key("tokenizer.ggml.tokens", ARRAY).u32(STRING).u64(3).str("a").u64(HUGE)
                .zeros(32).toBytes(), tokens + " element #1 length", "4611686018427387904");
        expect(RawGguf.header(3, 0, 1).key("tokenizer.ggml.tokens", ARRAY).u32(STRING).u64(2).str("a").toBytes(),
                tokens + " array length", "2");
        expect(RawGguf.header(3, 0, 1).key("k", ARRAY).u32(7).u64(3).u8(1).u8(0).u8(5).toBytes(),
                "metadata key #0 'k' element #2", "bool value 5");
        RawGguf nested = RawGguf.header(3, 0, 1).key("k", ARRAY);
        for (int i = 0; i < 10; i++) {
            nested.u32(ARRAY).u64(1);
        }
        expect(nested.u32(0).u64(0).toBytes(), "metadata key #0 'k'", "nested");
        expect(RawGguf.header(3, 0, 1).key("k", ARRAY).u32(ARRAY).u64(2).u32(0).u64(1).u8(1).u32(77).u64(0).toBytes(),
                "metadata key #0 'k' element #1 array element type", "77");
    }

    @Test
    void badAlignment() throws IOException {
        expect(RawGguf.header(3, 0, 1).key("general.alignment", 4).u32(48).toBytes(), "general.alignment", "48",
                "power of two");
        expect(RawGguf.header(3, 0, 1).key("general.alignment", 4).u32(0).toBytes(), "general.alignment", "0",
                "power of two");
        expect(RawGguf.header(3, 0, 1).key("general.alignment", 11).u64(1L << 40).toBytes(), "general.alignment",
                "1099511627776");
        expect(RawGguf.header(3, 0, 1).key("general.alignment", 5).u32(-32).toBytes(), "general.alignment", "-32");
        expect(RawGguf.header(3, 0, 1).key("general.alignment", STRING).str("32").toBytes(), "general.alignment",
                "expected an integer");
        // With alignment 64, an offset of 32 is misaligned.
        expect(RawGguf.header(3, 2, 1).key("general.alignment", 4).u32(64)
                .tensorInfo("a", new long[] {4}, F32, 0).tensorInfo("b", new long[] {4}, F32, 32).padTo(64).zeros(128)
                .toBytes(), "tensor 'b' offset", "32", "alignment 64");
    }

    // ---- tensor infos ----

    private static byte[] oneTensor(String name, long[] ne, long type, long offset, int dataBytes) {
        return RawGguf.header(3, 1, 0).tensorInfo(name, ne, type, offset).padTo(32).zeros(dataBytes).toBytes();
    }

    @Test
    void badTensorInfos() throws IOException {
        String t = "tensor 'blk.0.attn_q.weight'";
        String q = "blk.0.attn_q.weight";
        expect(oneTensor(q, new long[0], F32, 0, 64), t + " dimension count", "0");
        expect(oneTensor(q, new long[] {1, 1, 1, 1, 1}, F32, 0, 64), t + " dimension count", "5");
        expect(RawGguf.header(3, 1, 0).str(q).u32(0xFFFF_FFFFL).zeros(8).toBytes(), t + " dimension count",
                "4294967295");
        expect(oneTensor(q, new long[] {4, 0}, F32, 0, 64), t + " dimension 1", "0 is not a positive size");
        expect(oneTensor(q, new long[] {4, Long.MIN_VALUE}, F32, 0, 64), t + " dimension 1", "9223372036854775808");
        expect(oneTensor(q, new long[] {-4}, F32, 0, 64), t + " dimension 0", "18446744073709551612");
        expect(oneTensor(q, new long[] {1L << 40, 1L << 40, 1L << 40}, F32, 0, 64), t + " shape", "overflows");
        expect(oneTensor(q, new long[] {Long.MAX_VALUE}, F32, 0, 64), t + " shape", "overflows");
        expect(oneTensor(q, new long[] {33, 2}, DType.Q8_0.ggmlId(), 0, 128), t + " dimension 0", "33",
                "block size 32");
        expect(oneTensor(q, new long[] {128}, DType.Q4_K.ggmlId(), 0, 512), t + " dimension 0", "block size 256");
        expect(oneTensor(q, new long[] {4}, 4, 0, 64), t + " type", "unsupported ggml type id 4");
        expect(oneTensor(q, new long[] {4}, 99, 0, 64), t + " type", "unsupported ggml type id 99");
        expect(oneTensor(q, new long[] {4}, 0xFFFF_FFFFL, 0, 64), t + " type", "4294967295");
        expect(oneTensor(q, new long[] {4}, F32, 16, 64), t + " offset", "16", "alignment 32");
        expect(oneTensor(q, new long[] {4}, F32, 1024, 64), t + " offset", "1024", "extends past the end");
        expect(oneTensor(q, new long[] {32}, F32, 0, 64), t + " offset", "128 bytes extends past the end");
        expect(oneTensor(q, new long[] {4}, F32, Long.MAX_VALUE - 31, 64), t + " offset", "9223372036854775776",
                "extends past the end");
        expect(oneTensor(q, new long[] {4}, F32, -32, 64), t + " offset", "18446744073709551584");
        expect(oneTensor(q, new long[] {1L << 60}, F32, 0, 64), t + " offset", "extends past the end");
        expect(oneTensor("", new long[] {4}, F32, 0, 64), "tensor #0 name", "empty");
        expect(oneTensor("x".repeat(65), new long[] {4}, F32, 0, 64), "tensor #0 name length", "65", "limit of 64");
        expect(RawGguf.header(3, 1, 0).u64(HUGE).zeros(64).toBytes(), "tensor #0 name length", "4611686018427387904");
        expect(RawGguf.header(3, 1, 0).str(q).u32(2).u64(4).toBytes(), t + " dimension 1", "truncated");
        expect(RawGguf.header(3, 1, 0).str(q).u32(1).u64(4).u32(0).toBytes(), t + " offset", "truncated");
    }

    @Test
    void overlappingAndDuplicateTensors() throws IOException {
        expect(RawGguf.header(3, 2, 0).tensorInfo("a", new long[] {16}, F32, 0).tensorInfo("b", new long[] {16}, F32, 32)
                .padTo(32).zeros(256).toBytes(), "tensor 'b' offset", "overlaps tensor 'a'");
        // Declared out of order: still caught.
        expect(RawGguf.header(3, 2, 0).tensorInfo("a", new long[] {16}, F32, 64).tensorInfo("b", new long[] {32}, F32, 0)
                .padTo(32).zeros(256).toBytes(), "tensor 'a' offset", "overlaps tensor 'b'");
        expect(RawGguf.header(3, 2, 0).tensorInfo("a", new long[] {4}, F32, 0).tensorInfo("b", new long[] {4}, F32, 0)
                .padTo(32).zeros(64).toBytes(), "overlaps");
        expect(RawGguf.header(3, 2, 0).tensorInfo("a", new long[] {4}, F32, 0).tensorInfo("a", new long[] {4}, F32, 32)
                .padTo(32).zeros(64).toBytes(), "tensor 'a'", "duplicate tensor name", "#0", "#1");
    }

    // ---- systematic corruption of a valid file ----

    /** A small valid file with metadata of many types and three tensors. */
    private byte[] smallValidFile() throws IOException {
        Path p = dir.resolve("valid.gguf");
        try (Arena arena = Arena.ofConfined()) {
            Tensor a = Tensor.allocate(arena, DType.F32, 2, 4);
            a.copyFrom(new float[] {1, 2, 3, 4, 5, 6, 7, 8});
            new GgufWriter()
                    .put("general.architecture", "llama")
                    .put("llama.block_count", 1L)
                    .put("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                    .put("tokenizer.ggml.add_bos_token", true)
                    .put("tokenizer.ggml.tokens", new String[] {"<unk>", "<s>", "</s>", "▁a", "b"})
                    .put("tokenizer.ggml.scores", new float[] {0, 0, 0, -1, -2})
                    .put("tokenizer.ggml.token_type", new int[] {2, 3, 3, 1, 1}, GgufType.UINT8)
                    .put("x.nested", new Object[] {new long[] {1, 2}, new String[] {"q"}})
                    .put("x.i64", -5L)
                    .tensor("a", a)
                    .tensor("q", DType.Q8_0, new long[] {1, 32}, MemorySegment(34))
                    .tensor("h", DType.F16, new long[] {3}, MemorySegment(6))
                    .write(p);
        }
        return Files.readAllBytes(p);
    }

    private static java.lang.foreign.MemorySegment MemorySegment(int bytes) {
        byte[] b = new byte[bytes];
        for (int i = 0; i < bytes; i++) {
            b[i] = (byte) (i * 7 + 1);
        }
        return java.lang.foreign.MemorySegment.ofArray(b);
    }

    @Test
    void truncationAtEveryByte() throws IOException {
        byte[] valid = smallValidFile();
        long lastTensorEnd;
        Files.write(file, valid);
        try (GgufFile f = GgufFile.open(file)) {
            lastTensorEnd = f.tensorInfos().stream().mapToLong(t -> t.offset() + t.byteSize()).max().orElseThrow();
        }
        for (int len = 0; len < valid.length; len++) {
            byte[] cut = Arrays.copyOf(valid, len);
            if (len < lastTensorEnd) {
                ModelFormatException e = rejectInMemory(cut, "length " + len);
                String m = e.getMessage();
                assertTrue(m.contains("truncated") || m.contains("extends past the end") || m.contains("cannot fit")
                        || m.contains("left in the file"),
                        "length " + len + ": " + m);
            } else {
                GgufFile.parse(file, java.lang.foreign.MemorySegment.ofArray(cut), null).close();
            }
        }
    }

    @Test
    void corruptionOfEveryHeaderByte() throws IOException {
        byte[] valid = smallValidFile();
        Files.write(file, valid);
        int headerEnd;
        try (GgufFile f = GgufFile.open(file)) {
            headerEnd = (int) f.dataOffset();
        }
        int opened = 0;
        int rejected = 0;
        for (int pos = 0; pos < headerEnd; pos++) {
            int orig = valid[pos] & 0xFF;
            for (int v : new int[] {0x00, 0xFF, 0x80, 0x7F, orig ^ 0x01, orig ^ 0x40, (orig + 32) & 0xFF}) {
                if (v == orig) {
                    continue;
                }
                byte[] bad = valid.clone();
                bad[pos] = (byte) v;
                if (openOrReject(bad, "byte " + pos + " = " + v)) {
                    opened++;
                } else {
                    rejected++;
                }
            }
        }
        // Wide fields: plant huge or negative 32- and 64-bit values at every offset.
        for (int pos = 0; pos + 8 <= headerEnd; pos++) {
            for (long v : new long[] {HUGE, -1L, Long.MIN_VALUE, 0xFFFF_FFFFL, 1L << 31}) {
                byte[] bad = valid.clone();
                ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putLong(pos, v);
                if (openOrReject(bad, "u64 at " + pos + " = " + v)) {
                    opened++;
                } else {
                    rejected++;
                }
                bad = valid.clone();
                ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putInt(pos, (int) v);
                if (openOrReject(bad, "u32 at " + pos + " = " + (int) v)) {
                    opened++;
                } else {
                    rejected++;
                }
            }
        }
        assertTrue(rejected > opened, "rejected " + rejected + ", opened " + opened);
    }

    /**
     * Parses {@code bytes} (in memory: the sweeps run thousands of variants): true if valid, and then every
     * value and tensor must be usable; false if properly rejected.
     */
    private boolean openOrReject(byte[] bytes, String what) {
        try (GgufFile f = GgufFile.parse(file, java.lang.foreign.MemorySegment.ofArray(bytes), null)) {
            Metadata md = f.metadata();
            for (String k : md.asMap().keySet()) {
                Metadata.describe(md.get(k));
            }
            for (TensorInfo t : f.tensorInfos()) {
                var seg = f.tensor(t.name()).segment();
                seg.get(ValueLayout.JAVA_BYTE, 0);
                seg.get(ValueLayout.JAVA_BYTE, seg.byteSize() - 1);
                assertTrue(t.offset() + t.byteSize() <= bytes.length, what);
            }
            return true;
        } catch (ModelFormatException e) {
            checkMessage(e, what);
            return false;
        } catch (RuntimeException | Error e) {
            fail(what + ": expected ModelFormatException, got " + e, e);
            return false;
        }
    }

    // ---- helpers ----

    private ModelFormatException rejectInMemory(byte[] bytes, String what) {
        try (GgufFile f = GgufFile.parse(file, java.lang.foreign.MemorySegment.ofArray(bytes), null)) {
            fail(what + ": accepted a hostile file: " + f);
            return null;
        } catch (ModelFormatException e) {
            checkMessage(e, what);
            return e;
        } catch (RuntimeException | Error e) {
            fail(what + ": expected ModelFormatException, got " + e, e);
            return null;
        }
    }

    private void expect(byte[] bytes, String... parts) throws IOException {
        ModelFormatException e = expectAny(bytes);
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), () -> "message lacks \"" + p + "\": " + e.getMessage());
        }
    }

    private ModelFormatException expectAny(byte[] bytes) throws IOException {
        Files.write(file, bytes);
        try (GgufFile f = GgufFile.open(file)) {
            fail("accepted a hostile file: " + f);
            return null;
        } catch (ModelFormatException e) {
            checkMessage(e, "");
            return e;
        } catch (RuntimeException | Error e) {
            fail("expected ModelFormatException, got " + e, e);
            return null;
        }
    }

    private void checkMessage(ModelFormatException e, String what) {
        // A cause means the parser's safety net caught an unexpected exception: a bug to fix.
        assertNull(e.getCause(), () -> what + ": unexpected internal exception: " + e.getMessage());
        assertTrue(e.getMessage().startsWith(file.toString() + ": "), () -> what + ": message does not name the file: "
                + e.getMessage());
    }
}
