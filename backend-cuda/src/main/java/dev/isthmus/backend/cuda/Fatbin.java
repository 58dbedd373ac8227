package dev.isthmus.backend.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A parsed CUDA fat binary (what {@code nvcc -fatbin} writes and {@code cuModuleLoadData} loads): which code it
 * holds for which GPU architectures, the function symbols of each ELF (cubin) and the entries of each PTX.
 *
 * <p>Layout (little-endian; reverse-engineered by the community from cuobjdump and checked against nvcc 13
 * output): a 16-byte header {@code u32 magic 0xBA55ED50, u16 version 1, u16 headerSize 16, u64 payloadSize}, then
 * entries back to back until {@code 16 + payloadSize}. An entry header is {@code u16 kind (1 = PTX, 2 = ELF),
 * u16 attributes, u32 headerSize, u64 payloadSize, u32, u32, u16 minor, u16 major, u32 arch (e.g. 80), ...,
 * u64 flags at offset 40 (bit 13: LZ4-, bit 15: ZSTD-compressed)}, followed by {@code payloadSize} bytes of code.
 */
public final class Fatbin {
    /** The fat binary magic number. */
    public static final int MAGIC = 0xBA55ED50;
    static final int HEADER_BYTES = 16;
    static final int MIN_ENTRY_HEADER = 64;
    /** Flag bits of an entry whose payload is compressed (LZ4, ZSTD: nvcc's default for PTX; the build passes
     * --no-compress). */
    static final long FLAG_COMPRESSED = 0x2000 | 0x8000;

    /** Kind of code in an entry. */
    public enum Kind { PTX, ELF }

    /** One entry: its kind, the architecture it is for (80 = sm_80 / compute_80) and its payload's position. */
    public record Entry(Kind kind, int arch, int offset, int size, boolean compressed) {
        @Override
        public String toString() {
            return (kind == Kind.PTX ? "PTX compute_" : "ELF sm_") + arch + (compressed ? " (compressed)" : "");
        }
    }

    /** Thrown for bytes that are not a well-formed fat binary; the message says what is wrong and where. */
    public static final class FormatException extends RuntimeException {
        @java.io.Serial
        private static final long serialVersionUID = 1L;

        public FormatException(String message) {
            super(message);
        }
    }

    private final byte[] bytes;
    private final List<Entry> entries;

    private Fatbin(byte[] bytes, List<Entry> entries) {
        this.bytes = bytes;
        this.entries = entries;
    }

    /**
     * Parses {@code bytes}.
     *
     * @throws FormatException if the magic, version, sizes or entry headers are wrong
     */
    public static Fatbin parse(byte[] bytes) {
        if (bytes.length < HEADER_BYTES) {
            throw new FormatException("not a CUDA fatbin: " + bytes.length + " bytes, shorter than its 16-byte header");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int magic = b.getInt(0);
        if (magic != MAGIC) {
            throw new FormatException(String.format("not a CUDA fatbin: magic 0x%08X at offset 0, expected 0x%08X",
                    magic, MAGIC));
        }
        int version = Short.toUnsignedInt(b.getShort(4));
        int headerSize = Short.toUnsignedInt(b.getShort(6));
        if (version != 1 || headerSize != HEADER_BYTES) {
            throw new FormatException("unsupported fatbin version " + version + " with a " + headerSize
                    + "-byte header (expected version 1, 16 bytes)");
        }
        long payload = b.getLong(8);
        if (payload < 0 || HEADER_BYTES + payload > bytes.length) {
            throw new FormatException("truncated fatbin: header announces " + payload + " bytes of entries, file has "
                    + (bytes.length - HEADER_BYTES));
        }
        int end = (int) (HEADER_BYTES + payload);
        List<Entry> entries = new ArrayList<>();
        int pos = HEADER_BYTES;
        while (pos < end) {
            if (end - pos < MIN_ENTRY_HEADER) {
                throw new FormatException("truncated fatbin entry header at offset " + pos);
            }
            int kindCode = Short.toUnsignedInt(b.getShort(pos));
            int entryHeader = b.getInt(pos + 4);
            long size = b.getLong(pos + 8);
            int arch = b.getInt(pos + 28);
            long flags = b.getLong(pos + 40);
            if (entryHeader < MIN_ENTRY_HEADER || size < 0 || (long) pos + entryHeader + size > end) {
                throw new FormatException("fatbin entry at offset " + pos + " (header " + entryHeader + " bytes, payload "
                        + size + " bytes) runs past the end of the fatbin at " + end);
            }
            Kind kind = switch (kindCode) {
                case 1 -> Kind.PTX;
                case 2 -> Kind.ELF;
                default -> throw new FormatException("fatbin entry at offset " + pos + " has unknown kind " + kindCode);
            };
            entries.add(new Entry(kind, arch, pos + entryHeader, (int) size, (flags & FLAG_COMPRESSED) != 0));
            pos += entryHeader + (int) size;
        }
        if (entries.isEmpty()) {
            throw new FormatException("fatbin has no entries");
        }
        return new Fatbin(bytes, List.copyOf(entries));
    }

    public List<Entry> entries() {
        return entries;
    }

    /** The entry of {@code kind} for {@code arch}, if any. */
    public java.util.Optional<Entry> entry(Kind kind, int arch) {
        return entries.stream().filter(e -> e.kind() == kind && e.arch() == arch).findFirst();
    }

    private byte[] payload(Entry e) {
        if (e.compressed()) {
            throw new FormatException(e + " is compressed; build the fatbin with nvcc --no-compress to inspect it");
        }
        byte[] p = new byte[e.size()];
        System.arraycopy(bytes, e.offset(), p, 0, e.size());
        return p;
    }

    /** The names of the global functions (kernels) in the ELF entry {@code e}. */
    public List<String> elfFunctions(Entry e) {
        if (e.kind() != Kind.ELF) {
            throw new IllegalArgumentException(e + " is not an ELF entry");
        }
        return Elf.globalFunctions(payload(e));
    }

    /** The PTX text of {@code e}, without trailing NUL padding. */
    public String ptx(Entry e) {
        if (e.kind() != Kind.PTX) {
            throw new IllegalArgumentException(e + " is not a PTX entry");
        }
        String s = new String(payload(e), StandardCharsets.US_ASCII);
        int nul = s.indexOf('\0');
        return nul < 0 ? s : s.substring(0, nul);
    }

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([A-Za-z_$][\\w$]*)\\s*\\(([^)]*)\\)");
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+\\.(\\w+)");

    /**
     * The {@code .entry} functions of a PTX text with the type of each parameter ({@code u64}, {@code u32},
     * {@code f32}, ...), in order.
     */
    public static Map<String, List<String>> ptxEntries(String ptx) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(ptx);
        while (m.find()) {
            List<String> types = new ArrayList<>();
            Matcher p = PARAM.matcher(m.group(2));
            while (p.find()) {
                types.add(p.group(1));
            }
            out.put(m.group(1), types);
        }
        return out;
    }
}
