package dev.isthmus.backend.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Fatbin parsing of hand-made containers, and the errors for damaged or missing kernel resources. */
class FatbinFormatTest {

    /** A fatbin with one entry of {@code kind} for {@code arch} holding {@code payload}. */
    static byte[] fatbin(int kind, int arch, byte[] payload, long flags) {
        int entryHeader = 64;
        ByteBuffer b = ByteBuffer.allocate(16 + entryHeader + payload.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(Fatbin.MAGIC).putShort((short) 1).putShort((short) 16).putLong(entryHeader + payload.length);
        b.putShort((short) kind).putShort((short) 0x101).putInt(entryHeader).putLong(payload.length);
        b.putInt(0).putInt(0).putShort((short) 0).putShort((short) 9).putInt(arch);
        b.putInt(0).putInt(0).putLong(flags).putLong(0).putLong(0);
        b.put(payload);
        return b.array();
    }

    @Test
    void parsesAPtxEntryAndItsParameters() {
        String ptx = ".version 9.0\n.target sm_90\n.visible .entry k1(\n.param .u64 k1_param_0,\n.param .f32 k1_param_1\n)\n"
                + "{ ret; }\n.visible .entry k2()\n{ ret; }\n";
        Fatbin f = Fatbin.parse(fatbin(1, 90, ptx.getBytes(StandardCharsets.US_ASCII), 0x11));
        assertEquals(1, f.entries().size());
        Fatbin.Entry e = f.entry(Fatbin.Kind.PTX, 90).orElseThrow();
        assertFalse(e.compressed());
        Map<String, List<String>> entries = Fatbin.ptxEntries(f.ptx(e));
        assertEquals(Map.of("k1", List.of("u64", "f32"), "k2", List.of()), entries);
    }

    @Test
    void rejectsAWrongMagicWithTheValueFound() {
        byte[] b = fatbin(1, 90, new byte[8], 0);
        b[0] = 0x7F;
        Fatbin.FormatException e = assertThrows(Fatbin.FormatException.class, () -> Fatbin.parse(b));
        assertTrue(e.getMessage().startsWith("not a CUDA fatbin: magic 0xBA55ED7F"), e.getMessage());
    }

    @Test
    void rejectsShortTruncatedAndEmptyFiles() {
        assertTrue(assertThrows(Fatbin.FormatException.class, () -> Fatbin.parse(new byte[5])).getMessage()
                .contains("shorter than its 16-byte header"));
        byte[] full = fatbin(2, 80, new byte[100], 0);
        byte[] cut = java.util.Arrays.copyOf(full, full.length - 10);
        assertTrue(assertThrows(Fatbin.FormatException.class, () -> Fatbin.parse(cut)).getMessage()
                .startsWith("truncated fatbin"));
        ByteBuffer empty = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        empty.putInt(Fatbin.MAGIC).putShort((short) 1).putShort((short) 16).putLong(0);
        assertEquals("fatbin has no entries",
                assertThrows(Fatbin.FormatException.class, () -> Fatbin.parse(empty.array())).getMessage());
    }

    @Test
    void rejectsAnEntryRunningPastTheEndAndUnknownKinds() {
        byte[] b = fatbin(2, 80, new byte[16], 0);
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(16 + 8, 1 << 20);
        assertTrue(assertThrows(Fatbin.FormatException.class, () -> Fatbin.parse(b)).getMessage()
                .contains("runs past the end"));
        byte[] k = fatbin(7, 80, new byte[16], 0);
        assertTrue(assertThrows(Fatbin.FormatException.class, () -> Fatbin.parse(k)).getMessage()
                .contains("unknown kind 7"));
    }

    @Test
    void aCompressedEntryIsReportedNotMisread() {
        Fatbin f = Fatbin.parse(fatbin(1, 90, new byte[16], 0x8011));
        Fatbin.Entry e = f.entries().get(0);
        assertTrue(e.compressed());
        assertTrue(assertThrows(Fatbin.FormatException.class, () -> f.ptx(e)).getMessage().contains("--no-compress"));
    }

    @Test
    void anElfEntryThatIsNotElfIsRejected() {
        Fatbin f = Fatbin.parse(fatbin(2, 80, new byte[64], 0));
        assertTrue(assertThrows(Fatbin.FormatException.class, () -> f.elfFunctions(f.entries().get(0))).getMessage()
                .contains("ELF magic"));
    }

    private static ClassLoader resources(Path dir) throws IOException {
        return new URLClassLoader(new URL[] {dir.toUri().toURL()}, null);
    }

    @Test
    void aDamagedFatbinResourceGivesAClearError(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path res = Files.createDirectories(dir.resolve(KernelResources.DIR));
        Files.writeString(res.resolve("kernels.properties"), "fatbin=present\ncuda.version=13.0\n");
        Files.write(res.resolve("isthmus_kernels.fatbin"), "this is not a fatbin".getBytes(StandardCharsets.US_ASCII));
        KernelResources k = KernelResources.load(resources(dir));
        IllegalStateException e = assertThrows(IllegalStateException.class, k::fatbin);
        assertTrue(e.getMessage().startsWith("CUDA kernels in dev/isthmus/backend/cuda/isthmus_kernels.fatbin are "
                + "damaged: not a CUDA fatbin: magic"), e.getMessage());
    }

    @Test
    void aMissingFatbinResourceGivesAClearError(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path res = Files.createDirectories(dir.resolve(KernelResources.DIR));
        Files.writeString(res.resolve("kernels.properties"), "fatbin=present\n");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> KernelResources.load(resources(dir)).fatbin());
        assertTrue(e.getMessage().contains("is not on the class path"), e.getMessage());
    }

    @Test
    void aBuildWithoutNvccSaysSo(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path res = Files.createDirectories(dir.resolve(KernelResources.DIR));
        Files.writeString(res.resolve("kernels.properties"),
                "fatbin=absent\nfatbin.reason=built without CUDA kernels: no nvcc found\n");
        KernelResources k = KernelResources.load(resources(dir));
        assertFalse(k.hasFatbin());
        assertEquals("built without CUDA kernels: no nvcc found",
                assertThrows(IllegalStateException.class, k::fatbin).getMessage());
        KernelResources none = KernelResources.load(resources(Files.createDirectories(dir.resolve("empty"))));
        assertTrue(none.fatbinAbsenceReason().startsWith("built without CUDA kernels"), none.fatbinAbsenceReason());
    }
}
