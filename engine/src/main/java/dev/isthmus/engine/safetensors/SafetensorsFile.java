package dev.isthmus.engine.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.MappedFile;
import dev.isthmus.engine.format.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@code .safetensors} file, memory-mapped: an 8-byte little-endian header length {@code N}, {@code N}
 * bytes of UTF-8 JSON mapping tensor names to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (plus an
 * optional {@code "__metadata__"} object of strings), then the data, offsets relative to its start.
 *
 * <p>{@link #open} validates the whole header before any tensor byte is touched, as the reference (Rust)
 * implementation does: a header length within the file and at most {@link #MAX_HEADER_BYTES}, valid JSON
 * without duplicate keys, a known dtype, non-negative dimensions whose product times the element size equals
 * {@code end - begin} without overflow, and offsets that tile the data exactly (sorted by begin, each tensor
 * starts where the previous one ended, the first at 0, the last ends at the end of the file: no overlap, no
 * hole, nothing after). A violation is a {@link ModelFormatException} naming the file, the tensor and the field.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The reference implementation's limit on the JSON header (100 MB). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;
    public static final String METADATA_KEY = "__metadata__";

    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * One tensor of the header.
     *
     * @param shape  dimensions outermost first (a scalar, shape {@code []}, is given as {@code [1]})
     * @param offset absolute byte offset in the file
     */
    public record Entry(String name, SafetensorsDType dtype, long[] shape, long offset, long byteSize) {
        public Entry {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        public long elementCount() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        @Override
        public String toString() {
            return name + " " + dtype + Arrays.toString(shape) + " @" + offset;
        }
    }

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;
    private volatile boolean closed;

    private SafetensorsFile(Path path, Arena arena, MemorySegment file, Map<String, Entry> entries,
                            Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.entries = Collections.unmodifiableMap(entries);
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    /**
     * Maps and validates a safetensors file.
     *
     * @throws ModelFormatException if it is not a valid safetensors file
     * @throws UncheckedIOException if it cannot be read
     */
    public static SafetensorsFile open(Path path) {
        return MappedFile.open(path, (seg, arena) -> parse(path, seg, arena));
    }

    /**
     * Validates safetensors bytes already in memory; {@code arena} (may be null) is closed by {@link #close()}.
     * Package-private so that tests can try many hostile variants without touching the disk.
     */
    static SafetensorsFile parse(Path path, MemorySegment seg, Arena arena) {
        String where = path.toString();
        long size = seg.byteSize();
        if (size < 8) {
            throw HfJson.error(where, "header length", "truncated: the file has " + size + " bytes, the length needs 8");
        }
        long n = seg.get(LE_LONG, 0);
        if (n < 0 || n > MAX_HEADER_BYTES) {
            throw HfJson.error(where, "header length", Long.toUnsignedString(n) + " bytes exceeds the limit of "
                    + MAX_HEADER_BYTES + " bytes");
        }
        if (n > size - 8) {
            throw HfJson.error(where, "header length", n + " bytes extends past the end of the file ("
                    + size + " bytes)");
        }
        if (n < 2) {
            throw HfJson.error(where, "header", n + " bytes cannot hold a JSON object");
        }
        byte[] json = new byte[(int) n];
        MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, 8, json, 0, (int) n);
        if (json[0] != '{') {
            throw HfJson.error(where, "header", "does not start with '{' (found byte 0x"
                    + Integer.toHexString(json[0] & 0xFF) + ")");
        }
        ObjectNode header = HfJson.parseObject(json, where + ": header");
        long dataStart = 8 + n;
        long dataSize = size - dataStart;

        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Entry> entries = new LinkedHashMap<>();
        List<long[]> ranges = new ArrayList<>();
        List<String> rangeNames = new ArrayList<>();
        for (Map.Entry<String, JsonNode> e : header.properties()) {
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals(METADATA_KEY)) {
                readMetadata(where, v, metadata);
                continue;
            }
            String field = "tensor '" + name + "'";
            if (name.isEmpty()) {
                throw HfJson.error(where, "tensor name", "empty");
            }
            if (!(v instanceof ObjectNode o)) {
                throw HfJson.error(where, field, "expected an object, found " + HfJson.describe(v));
            }
            JsonNode dt = o.get("dtype");
            if (dt == null || !dt.isTextual()) {
                throw HfJson.error(where, field + " dtype", "expected a string, found " + HfJson.describe(dt));
            }
            SafetensorsDType dtype = SafetensorsDType.parse(dt.textValue());
            if (dtype == null) {
                throw HfJson.error(where, field + " dtype", "unknown dtype " + HfJson.describe(dt)
                        + " (known: " + Arrays.toString(SafetensorsDType.values()) + ")");
            }
            JsonNode sh = o.get("shape");
            if (sh == null || !sh.isArray()) {
                throw HfJson.error(where, field + " shape", "expected an array, found " + HfJson.describe(sh));
            }
            if (sh.size() > 8) {
                throw HfJson.error(where, field + " shape", sh.size() + " dimensions is more than 8");
            }
            long[] shape = new long[Math.max(1, sh.size())];
            Arrays.fill(shape, 1);
            long elements = 1;
            for (int i = 0; i < sh.size(); i++) {
                shape[i] = HfJson.nonNegativeLong(sh.get(i), where, field + " shape[" + i + "]");
                try {
                    elements = Math.multiplyExact(elements, shape[i]);
                } catch (ArithmeticException x) {
                    throw HfJson.error(where, field + " shape", sh + " has more elements than fit 63 bits");
                }
            }
            JsonNode off = o.get("data_offsets");
            if (off == null || !off.isArray() || off.size() != 2) {
                throw HfJson.error(where, field + " data_offsets", "expected [begin, end], found " + HfJson.describe(off));
            }
            long begin = HfJson.nonNegativeLong(off.get(0), where, field + " data_offsets[0]");
            long end = HfJson.nonNegativeLong(off.get(1), where, field + " data_offsets[1]");
            if (end < begin) {
                throw HfJson.error(where, field + " data_offsets", "end " + end + " is before begin " + begin);
            }
            if (end > dataSize) {
                throw HfJson.error(where, field + " data_offsets", "[" + begin + ", " + end
                        + "] extends past the end of the data (" + dataSize + " bytes after the header)");
            }
            long expected;
            try {
                expected = Math.multiplyExact(elements, dtype.bytes());
            } catch (ArithmeticException x) {
                throw HfJson.error(where, field + " shape", sh + " of " + dtype + " is more bytes than fit 63 bits");
            }
            if (end - begin != expected) {
                throw HfJson.error(where, field + " data_offsets", "[" + begin + ", " + end + "] holds "
                        + (end - begin) + " bytes, but dtype " + dtype + " and shape " + sh + " need " + expected);
            }
            entries.put(name, new Entry(name, dtype, shape, dataStart + begin, end - begin));
            ranges.add(new long[] {begin, end});
            rangeNames.add(name);
        }
        checkTiling(where, ranges, rangeNames, dataSize);
        return new SafetensorsFile(path, arena, seg, entries, metadata);
    }

    private static void readMetadata(String where, JsonNode v, Map<String, String> out) {
        if (v.isNull()) {
            return;
        }
        if (!(v instanceof ObjectNode o)) {
            throw HfJson.error(where, METADATA_KEY, "expected an object of strings, found " + HfJson.describe(v));
        }
        for (Map.Entry<String, JsonNode> e : o.properties()) {
            if (!e.getValue().isTextual()) {
                throw HfJson.error(where, METADATA_KEY + "." + e.getKey(), "expected a string, found "
                        + HfJson.describe(e.getValue()));
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
    }

    /** Sorted by begin (empty tensors first), the ranges must follow each other from 0 to the end of the data. */
    private static void checkTiling(String where, List<long[]> ranges, List<String> names, long dataSize) {
        Integer[] order = new Integer[ranges.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.<Integer>comparingLong(i -> ranges.get(i)[0]).thenComparingLong(i -> ranges.get(i)[1]));
        long pos = 0;
        String previous = null;
        for (int i : order) {
            long[] r = ranges.get(i);
            String field = "tensor '" + names.get(i) + "' data_offsets";
            if (r[0] < pos) {
                throw HfJson.error(where, field, "[" + r[0] + ", " + r[1] + "] overlaps tensor '" + previous
                        + "', which ends at " + pos);
            }
            if (r[0] > pos) {
                throw HfJson.error(where, field, "[" + r[0] + ", " + r[1] + "] leaves a hole of " + (r[0] - pos)
                        + " bytes after " + (previous == null ? "the header" : "tensor '" + previous + "'"));
            }
            pos = r[1];
            if (r[1] > r[0]) {
                previous = names.get(i);
            }
        }
        if (pos != dataSize) {
            throw HfJson.error(where, "data", "the tensors end at " + pos + " but the file has " + dataSize
                    + " data bytes after the header");
        }
    }

    /**
     * True if the file looks like safetensors: at least 10 bytes, a header length that fits the file and the
     * limit, and a header starting with {@code '{'}. Cheap; {@link #open} does the real validation.
     */
    public static boolean hasHeader(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 10) {
                return false;
            }
            ByteBuffer b = ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN);
            while (b.hasRemaining() && ch.read(b) >= 0) {
                // a channel may return fewer bytes than asked
            }
            if (b.hasRemaining()) {
                return false;
            }
            long n = b.getLong(0);
            return n >= 2 && n <= MAX_HEADER_BYTES && n <= size - 8 && b.get(8) == '{';
        }
    }

    public Path path() {
        return path;
    }

    /** The tensors by name, in header order. */
    public Map<String, Entry> entries() {
        return entries;
    }

    /** The {@code __metadata__} strings (empty if none). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The bytes of a tensor, a view of the mapping. */
    public MemorySegment bytes(Entry e) {
        checkOpen();
        return file.asSlice(e.offset(), e.byteSize());
    }

    /**
     * A host tensor over the mapping (zero copy).
     *
     * @throws ModelFormatException naming the tensor if there is none of that name or the engine has no type
     *                              for its dtype
     */
    public Tensor tensor(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw HfJson.error(path.toString(), "tensor '" + name + "'", "not in the file");
        }
        return tensor(e);
    }

    /** A host tensor over the mapping (zero copy). */
    public Tensor tensor(Entry e) {
        DType t = e.dtype().engineType();
        if (t == null) {
            throw HfJson.error(path.toString(), "tensor '" + e.name() + "' dtype", e.dtype()
                    + " is not supported (supported: F32, F16, BF16, I32, I8)");
        }
        return Tensor.host(bytes(e), t, e.shape());
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            if (arena != null) {
                arena.close();
            }
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + path + ", " + entries.size() + " tensors]";
    }
}
