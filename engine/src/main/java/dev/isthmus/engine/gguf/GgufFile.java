package dev.isthmus.engine.gguf;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.MappedFile;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.format.TensorInfo;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF (version 2 or 3, little-endian) model file, memory-mapped.
 *
 * <p>{@link #open(Path)} parses and validates the whole header — magic, version, every metadata
 * value, every tensor info, alignment, and that each tensor lies aligned inside the data section
 * without overlapping another — before any tensor data is touched and before anything sized by the
 * file is allocated, so a hostile or truncated file yields a {@link ModelFormatException} that names
 * the file, the field and the value, never an arbitrary runtime exception or an out-of-memory error.
 *
 * <p>Tensors are host tensors over the mapping (zero copy) and are valid until {@link #close()}.
 * Shapes are outermost first, i.e. GGUF's {@code ne} reversed: {@code token_embd.weight} is
 * {@code [vocab, dim]}. Metadata values are represented as described in {@link Metadata}; the
 * original GGUF types are kept ({@link #valueType}, {@link #arrayElementType}) so that a
 * {@link GgufWriter} can reproduce them exactly.
 */
public final class GgufFile implements ModelFile {
    /** "GGUF" read as a little-endian uint32. */
    public static final int MAGIC = 0x46554747;
    public static final int DEFAULT_ALIGNMENT = 32;
    public static final String ALIGNMENT_KEY = "general.alignment";
    /** ggml tensors have at most four dimensions. */
    public static final int MAX_DIMS = 4;
    /** GGML_MAX_NAME: tensor names are at most 64 bytes. */
    public static final int MAX_TENSOR_NAME_BYTES = 64;
    /** The GGUF spec limits keys to 2^16 - 1 bytes. */
    public static final int MAX_KEY_BYTES = 65535;
    static final int MAX_ARRAY_DEPTH = 4;
    static final long MAX_ALIGNMENT = 1L << 30;
    /** Largest Java array the VM reliably allocates. */
    static final long MAX_JAVA_ARRAY = Integer.MAX_VALUE - 8;

    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble LE_DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final int version;
    private final long alignment;
    private final long dataOffset;
    private final Metadata metadata;
    private final Map<String, GgufType> valueTypes;
    private final Map<String, GgufType> elementTypes;
    private final List<TensorInfo> tensors;
    private final Map<String, TensorInfo> byName;
    private volatile boolean closed;

    private GgufFile(Path path, Arena arena, MemorySegment file, Parser p) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        this.version = p.version;
        this.alignment = p.alignment;
        this.dataOffset = p.dataOffset;
        this.metadata = new Metadata(p.values, path.toString());
        this.valueTypes = Collections.unmodifiableMap(p.valueTypes);
        this.elementTypes = Collections.unmodifiableMap(p.elementTypes);
        this.tensors = List.copyOf(p.tensors);
        Map<String, TensorInfo> m = new HashMap<>();
        for (TensorInfo t : tensors) {
            m.put(t.name(), t);
        }
        this.byName = m;
    }

    /**
     * Maps and validates a GGUF file.
     *
     * @throws ModelFormatException if the file is not a valid GGUF v2/v3 file
     * @throws UncheckedIOException if it cannot be read
     */
    public static GgufFile open(Path path) {
        return MappedFile.open(path, (seg, arena) -> parse(path, seg, arena));
    }

    /**
     * Parses GGUF bytes that are already in memory; {@code arena} (may be null) is closed by {@link #close()}.
     * Package-private so that tests can run thousands of corrupted variants without touching the disk.
     */
    static GgufFile parse(Path path, MemorySegment seg, Arena arena) {
        Parser p = new Parser(path, seg);
        p.parse();
        return new GgufFile(path, arena, seg, p);
    }

    /** True if the file starts with the GGUF magic. */
    public static boolean hasMagic(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
            while (b.hasRemaining() && ch.read(b) >= 0) {
                // keep reading: a channel may return fewer bytes than asked
            }
            return !b.hasRemaining() && b.getInt(0) == MAGIC;
        }
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public String format() {
        return "gguf";
    }

    /** 2 or 3. */
    public int version() {
        return version;
    }

    /** Alignment of tensor data (general.alignment, default 32). */
    public long alignment() {
        return alignment;
    }

    /** Absolute file offset of the data section. */
    public long dataOffset() {
        return dataOffset;
    }

    @Override
    public Metadata metadata() {
        return metadata;
    }

    /** The GGUF type a metadata value had in the file, or null if the key is absent. */
    public GgufType valueType(String key) {
        return valueTypes.get(key);
    }

    /** For an array value, its element type in the file; null if the key is absent or not an array. */
    public GgufType arrayElementType(String key) {
        return elementTypes.get(key);
    }

    @Override
    public List<TensorInfo> tensorInfos() {
        return tensors;
    }

    @Override
    public boolean hasTensor(String name) {
        return byName.containsKey(name);
    }

    /** The info of a tensor, or null if there is none of that name. */
    public TensorInfo tensorInfo(String name) {
        return byName.get(name);
    }

    @Override
    public Tensor tensor(String name) {
        TensorInfo t = byName.get(name);
        if (t == null) {
            throw ModelFormatException.of(path, "tensor '" + name + "'",
                    "not in the file (it has " + tensors.size() + " tensors)");
        }
        if (closed) {
            throw new IllegalStateException(path + " is closed");
        }
        return Tensor.host(file.asSlice(t.offset(), t.byteSize()), t.dtype(), t.shape());
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
        return "GgufFile[" + path + ", v" + version + ", " + metadata.size() + " keys, " + tensors.size() + " tensors]";
    }

    /** Parses the header with explicit bounds checks; every read names the field it reads. */
    private static final class Parser {
        private final Path path;
        private final MemorySegment seg;
        private final long size;
        private long pos;

        int version;
        long alignment = DEFAULT_ALIGNMENT;
        long dataOffset;
        final LinkedHashMap<String, Object> values = new LinkedHashMap<>();
        final Map<String, GgufType> valueTypes = new HashMap<>();
        final Map<String, GgufType> elementTypes = new HashMap<>();
        final List<TensorInfo> tensors = new ArrayList<>();

        Parser(Path path, MemorySegment seg) {
            this.path = path;
            this.seg = seg;
            this.size = seg.byteSize();
        }

        void parse() {
            try {
                header();
            } catch (ModelFormatException e) {
                throw e;
            } catch (RuntimeException e) {
                // A safety net for bugs in this parser: the contract is ModelFormatException only.
                throw new ModelFormatException(path + ": malformed GGUF at offset " + pos + ": " + e, e);
            }
        }

        private void header() {
            int magic = i32("header magic");
            if (magic != MAGIC) {
                throw error("header magic", "expected 'GGUF', found " + describeMagic(magic));
            }
            int v = i32("header version");
            if (v == 1) {
                throw error("header version", "GGUF version 1 is not supported (only versions 2 and 3); "
                        + "convert the model again with a current llama.cpp");
            }
            if (v == 0x02000000 || v == 0x03000000) {
                throw error("header version", "big-endian GGUF files are not supported");
            }
            if (v != 2 && v != 3) {
                throw error("header version", "unsupported GGUF version " + Integer.toUnsignedString(v)
                        + " (only versions 2 and 3)");
            }
            version = v;
            long tensorCount = u64("header tensor count");
            long kvCount = u64("header metadata key/value count");
            // Smallest possible tensor info: name length + 1-byte name + n_dims + one dim + type + offset.
            checkCount("header tensor count", tensorCount, 8 + 1 + 4 + 8 + 4 + 8);
            // Smallest possible pair: key length + 1-byte key + type + 1-byte value.
            checkCount("header metadata key/value count", kvCount, 8 + 1 + 4 + 1);

            for (long i = 0; i < kvCount; i++) {
                keyValue(i);
            }
            alignment();
            Map<String, Long> names = new HashMap<>();
            for (long i = 0; i < tensorCount; i++) {
                tensorInfo(i, names);
            }
            dataOffset = alignUp(pos, alignment);
            placeTensors();
        }

        private void checkCount(String field, long count, long minBytesEach) {
            long left = size - pos;
            if (count < 0 || count > left / minBytesEach) {
                throw error(field, Long.toUnsignedString(count) + " entries of at least " + minBytesEach
                        + " bytes each cannot fit in the " + left + " bytes left in the file");
            }
        }

        private void keyValue(long index) {
            String at = "metadata key #" + index;
            String key = string(at + " name", -1, MAX_KEY_BYTES, true);
            if (key.isEmpty()) {
                throw error(at + " name", "empty key");
            }
            String field = at + " '" + key + "'";
            if (values.containsKey(key)) {
                throw error(field, "duplicate key");
            }
            GgufType type = type(field + " value type");
            Object value;
            if (type == GgufType.ARRAY) {
                GgufType et = type(field + " array element type");
                value = arrayBody(et, field, 1);
                elementTypes.put(key, et);
            } else {
                value = scalarOrString(type, field, -1);
            }
            values.put(key, value);
            valueTypes.put(key, type);
        }

        private void alignment() {
            Object a = values.get(ALIGNMENT_KEY);
            if (a == null) {
                return;
            }
            String field = "metadata key '" + ALIGNMENT_KEY + "'";
            if (!(a instanceof Integer || a instanceof Long)) {
                throw error(field, "expected an integer, found " + Metadata.describe(a));
            }
            long v = ((Number) a).longValue();
            if (v <= 0 || Long.bitCount(v) != 1 || v > MAX_ALIGNMENT) {
                throw error(field, v + " is not a power of two between 1 and " + MAX_ALIGNMENT);
            }
            alignment = v;
        }

        private void tensorInfo(long index, Map<String, Long> names) {
            String at = "tensor #" + index;
            String name = string(at + " name", -1, MAX_TENSOR_NAME_BYTES, true);
            if (name.isEmpty()) {
                throw error(at + " name", "empty tensor name");
            }
            String field = "tensor '" + name + "'";
            Long first = names.putIfAbsent(name, index);
            if (first != null) {
                throw error(field, "duplicate tensor name (tensors #" + first + " and #" + index + ")");
            }
            long nDims = Integer.toUnsignedLong(i32(field + " dimension count"));
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw error(field + " dimension count", nDims + " is not between 1 and " + MAX_DIMS);
            }
            long[] ne = new long[(int) nDims];
            for (int d = 0; d < nDims; d++) {
                ne[d] = u64(field + " dimension " + d);
                if (ne[d] <= 0) {
                    throw error(field + " dimension " + d, Long.toUnsignedString(ne[d])
                            + " is not a positive size" + (ne[d] < 0 ? " (exceeds 2^63 - 1)" : ""));
                }
            }
            long typeId = Integer.toUnsignedLong(i32(field + " type"));
            DType dtype = dtype(typeId);
            if (dtype == null) {
                throw error(field + " type", "unsupported ggml type id " + typeId);
            }
            if (ne[0] % dtype.blockSize() != 0) {
                throw error(field + " dimension 0", ne[0] + " is not a multiple of the " + dtype
                        + " block size " + dtype.blockSize());
            }
            long bytes;
            try {
                bytes = dtype.rowBytes(ne[0]);
                for (int d = 1; d < nDims; d++) {
                    bytes = Math.multiplyExact(bytes, ne[d]);
                }
            } catch (ArithmeticException e) {
                throw error(field + " shape", "byte size of " + dtype + java.util.Arrays.toString(ne)
                        + " overflows 64 bits");
            }
            long offset = u64(field + " offset");
            if (offset < 0) {
                throw error(field + " offset", Long.toUnsignedString(offset) + " exceeds 2^63 - 1");
            }
            if (offset % alignment != 0) {
                throw error(field + " offset", Long.toUnsignedString(offset) + " is not a multiple of the alignment "
                        + alignment);
            }
            long[] shape = new long[(int) nDims];
            for (int d = 0; d < nDims; d++) {
                shape[d] = ne[(int) nDims - 1 - d];
            }
            // Absolute offsets are filled in once the data section start is known.
            tensors.add(new TensorInfo(name, dtype, shape, offset, bytes));
        }

        private void placeTensors() {
            long dataBytes = size - dataOffset;
            if (!tensors.isEmpty() && dataOffset > size) {
                throw error("data section", "truncated: starts at offset " + dataOffset
                        + ", past the end of the file (" + size + " bytes)");
            }
            for (int i = 0; i < tensors.size(); i++) {
                TensorInfo t = tensors.get(i);
                long rel = t.offset();
                if (rel > dataBytes || t.byteSize() > dataBytes - rel) {
                    throw error("tensor '" + t.name() + "' offset", rel + " + " + t.byteSize()
                            + " bytes extends past the end of the data section (" + dataBytes + " bytes from offset "
                            + dataOffset + ")");
                }
                tensors.set(i, new TensorInfo(t.name(), t.dtype(), t.shape(), dataOffset + rel, t.byteSize()));
            }
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < tensors.size(); i++) {
                order.add(i);
            }
            order.sort(Comparator.comparingLong(i -> tensors.get(i).offset()));
            for (int k = 1; k < order.size(); k++) {
                TensorInfo prev = tensors.get(order.get(k - 1));
                TensorInfo cur = tensors.get(order.get(k));
                if (cur.offset() < prev.offset() + prev.byteSize()) {
                    throw error("tensor '" + cur.name() + "' offset", (cur.offset() - dataOffset)
                            + " overlaps tensor '" + prev.name() + "' (data bytes " + (prev.offset() - dataOffset)
                            + " to " + (prev.offset() - dataOffset + prev.byteSize()) + ")");
                }
            }
        }

        private Object scalarOrString(GgufType type, String field, long element) {
            return switch (type) {
                case UINT8 -> Byte.toUnsignedInt(i8(field, element));
                case INT8 -> (int) i8(field, element);
                case UINT16 -> Short.toUnsignedInt(i16(field, element));
                case INT16 -> (int) i16(field, element);
                case UINT32 -> Integer.toUnsignedLong(i32(elementField(field, element)));
                case INT32 -> i32(elementField(field, element));
                case FLOAT32 -> Float.intBitsToFloat(i32(elementField(field, element)));
                case BOOL -> bool(field, element);
                case STRING -> string(field, element, Integer.MAX_VALUE, false);
                case UINT64, INT64 -> u64(elementField(field, element));
                case FLOAT64 -> Double.longBitsToDouble(u64(elementField(field, element)));
                case ARRAY -> throw new IllegalStateException("arrays are read by arrayBody");
            };
        }

        private Object arrayBody(GgufType et, String field, int depth) {
            if (depth > MAX_ARRAY_DEPTH) {
                throw error(field, "arrays nested more than " + MAX_ARRAY_DEPTH + " deep");
            }
            long n = u64(field + " array length");
            long left = size - pos;
            if (n < 0 || n > left / et.minBytes() || n > MAX_JAVA_ARRAY) {
                throw error(field + " array length", Long.toUnsignedString(n) + " elements of type " + et
                        + " (at least " + et.minBytes() + " bytes each) cannot fit in the " + left
                        + " bytes left in the file");
            }
            int len = (int) n;
            switch (et) {
                case UINT8, INT8, UINT16, INT16 -> {
                    int[] a = new int[len];
                    for (int i = 0; i < len; i++) {
                        a[i] = (Integer) scalarOrString(et, field, i);
                    }
                    return a;
                }
                case INT32 -> {
                    int[] a = new int[len];
                    MemorySegment.copy(seg, LE_INT, pos, a, 0, len);
                    pos += 4L * len;
                    return a;
                }
                case UINT32 -> {
                    long[] a = new long[len];
                    for (int i = 0; i < len; i++) {
                        a[i] = Integer.toUnsignedLong(seg.get(LE_INT, pos + 4L * i));
                    }
                    pos += 4L * len;
                    return a;
                }
                case UINT64, INT64 -> {
                    long[] a = new long[len];
                    MemorySegment.copy(seg, LE_LONG, pos, a, 0, len);
                    pos += 8L * len;
                    return a;
                }
                case FLOAT32 -> {
                    float[] a = new float[len];
                    MemorySegment.copy(seg, LE_FLOAT, pos, a, 0, len);
                    pos += 4L * len;
                    return a;
                }
                case FLOAT64 -> {
                    double[] a = new double[len];
                    MemorySegment.copy(seg, LE_DOUBLE, pos, a, 0, len);
                    pos += 8L * len;
                    return a;
                }
                case BOOL -> {
                    boolean[] a = new boolean[len];
                    for (int i = 0; i < len; i++) {
                        a[i] = bool(field, i);
                    }
                    return a;
                }
                case STRING -> {
                    String[] a = new String[len];
                    for (int i = 0; i < len; i++) {
                        a[i] = (String) scalarOrString(et, field, i);
                    }
                    return a;
                }
                case ARRAY -> {
                    Object[] a = new Object[len];
                    for (int i = 0; i < len; i++) {
                        String f = field + " element #" + i;
                        a[i] = arrayBody(type(f + " array element type"), f, depth + 1);
                    }
                    return a;
                }
                default -> throw new IllegalStateException(et.toString());
            }
        }

        private static String elementField(String field, long element) {
            return element < 0 ? field : field + " element #" + element;
        }

        private GgufType type(String field) {
            long id = Integer.toUnsignedLong(i32(field));
            GgufType t = GgufType.fromId(id);
            if (t == null) {
                throw error(field, "unknown value type " + id);
            }
            return t;
        }

        private static DType dtype(long id) {
            if (id > Integer.MAX_VALUE) {
                return null;
            }
            try {
                return DType.fromGgmlId((int) id);
            } catch (IllegalArgumentException e) {
                return null;
            }
        }

        private boolean bool(String field, long element) {
            byte b = i8(field, element);
            if (b != 0 && b != 1) {
                throw error(elementField(field, element), "bool value " + Byte.toUnsignedInt(b) + " is neither 0 nor 1");
            }
            return b == 1;
        }

        /** Reads a string; {@code element} (or -1) only labels errors, so labels are built only on failure. */
        private String string(String field, long element, int maxBytes, boolean strict) {
            if (8 > size - pos) {
                need(8, elementField(field, element) + " length");
            }
            long n = seg.get(LE_LONG, pos);
            pos += 8;
            long left = size - pos;
            if (n < 0 || n > left) {
                throw error(elementField(field, element) + " length", Long.toUnsignedString(n)
                        + " bytes exceeds the " + left + " bytes left in the file");
            }
            if (n > maxBytes || n > MAX_JAVA_ARRAY) {
                throw error(elementField(field, element) + " length", n + " bytes exceeds the limit of "
                        + Math.min(maxBytes, MAX_JAVA_ARRAY));
            }
            if (n == 0) {
                // One shared instance: a hostile array of millions of empty strings costs only its references.
                return "";
            }
            byte[] b = new byte[(int) n];
            MemorySegment.copy(seg, ValueLayout.JAVA_BYTE, pos, b, 0, (int) n);
            long start = pos;
            pos += n;
            if (!strict) {
                // Values (e.g. vocabulary pieces) decode leniently: a stray byte must not make a model unusable.
                return new String(b, StandardCharsets.UTF_8);
            }
            try {
                return StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(b)).toString();
            } catch (CharacterCodingException e) {
                throw error(elementField(field, element), "invalid UTF-8 at offset " + start);
            }
        }

        private void need(long n, String field) {
            if (n > size - pos) {
                throw error(field, "truncated: needs " + n + " bytes at offset " + pos + " but the file ends at " + size);
            }
        }

        private byte i8(String field, long element) {
            if (1 > size - pos) {
                need(1, elementField(field, element));
            }
            return seg.get(ValueLayout.JAVA_BYTE, pos++);
        }

        private short i16(String field, long element) {
            if (2 > size - pos) {
                need(2, elementField(field, element));
            }
            short v = seg.get(LE_SHORT, pos);
            pos += 2;
            return v;
        }

        private int i32(String field) {
            need(4, field);
            int v = seg.get(LE_INT, pos);
            pos += 4;
            return v;
        }

        private long u64(String field) {
            need(8, field);
            long v = seg.get(LE_LONG, pos);
            pos += 8;
            return v;
        }

        private static long alignUp(long p, long alignment) {
            long r = p % alignment;
            return r == 0 ? p : p + (alignment - r);
        }

        private static String describeMagic(int magic) {
            StringBuilder sb = new StringBuilder("'");
            for (int i = 0; i < 4; i++) {
                int c = (magic >>> (8 * i)) & 0xFF;
                sb.append(c >= 0x20 && c < 0x7F ? String.valueOf((char) c) : String.format("\\x%02x", c));
            }
            return sb.append('\'').toString();
        }

        private ModelFormatException error(String field, String problem) {
            return ModelFormatException.of(path, field, problem);
        }
    }
}
