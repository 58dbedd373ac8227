package dev.isthmus.engine.gguf;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.format.Metadata;
import dev.isthmus.engine.format.ModelFile;
import dev.isthmus.engine.format.TensorInfo;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes GGUF version 3 files.
 *
 * <p>Collect metadata with {@code put} and declare tensors with {@code tensor}, then call
 * {@link #write(Path)}. Only the header (metadata and tensor infos) is serialized through a small
 * buffer; tensor data goes straight from its source into the memory-mapped output, one tensor at a
 * time, so files of many gigabytes can be written — a {@link TensorData} source produces its bytes
 * only when the writer reaches it (e.g. quantizing one tensor at a time). The file is written to a
 * temporary sibling and moved into place at the end, so a failed write never leaves a half file.
 *
 * <p>Metadata value types follow the {@link Metadata} representation. Without an explicit
 * {@link GgufType}: {@code Integer} → INT32, {@code Long} → UINT32 if it fits, else INT64,
 * {@code Float} → FLOAT32, {@code Double} → FLOAT64, {@code Boolean} → BOOL, {@code String} →
 * STRING; arrays likewise by element ({@code long[]} → UINT32 if every element fits, else INT64;
 * {@code Object[]} → an array of arrays). Reading back therefore yields the same Java values;
 * {@link #putAll(GgufFile)} keeps a GGUF file's exact types.
 */
public final class GgufWriter {
    /** Produces a tensor's bytes directly into the output. */
    @FunctionalInterface
    public interface TensorData {
        /**
         * Fills {@code target}, which is exactly the tensor's byte size, with the tensor's bytes. The region is
         * accessible from any thread until this method returns.
         */
        void writeTo(MemorySegment target) throws IOException;
    }

    private record Entry(Object value, GgufType type, GgufType elementType) {}

    private record PendingTensor(String name, DType dtype, long[] shape, long byteSize, TensorData data) {}

    private final LinkedHashMap<String, Entry> entries = new LinkedHashMap<>();
    private final List<PendingTensor> tensors = new ArrayList<>();
    private final Set<String> tensorNames = new HashSet<>();
    private long alignment = GgufFile.DEFAULT_ALIGNMENT;

    /**
     * A writer pre-filled with all metadata and tensors of {@code model} (a GGUF file's value types are
     * kept). Tensor data is read from the model while writing, so keep it open until {@link #write} returns.
     */
    public static GgufWriter copyOf(ModelFile model) {
        GgufWriter w = new GgufWriter();
        if (model instanceof GgufFile g) {
            w.putAll(g);
        } else {
            w.putAll(model.metadata());
        }
        for (TensorInfo t : model.tensorInfos()) {
            w.tensor(t.name(), model.tensor(t.name()));
        }
        return w;
    }

    /**
     * Sets the data alignment (also stored as {@code general.alignment}, UINT32).
     *
     * @throws IllegalArgumentException if it is not a power of two up to 2^30
     */
    public GgufWriter alignment(long alignment) {
        return put(GgufFile.ALIGNMENT_KEY, alignment, GgufType.UINT32);
    }

    /** Adds or replaces a metadata value, its GGUF type inferred from the Java type (see class doc). */
    public GgufWriter put(String key, Object value) {
        return put(key, value, null);
    }

    /**
     * Adds or replaces a metadata value with an explicit GGUF type: the scalar type, or for an array
     * value the element type ({@link GgufType#ARRAY} for arrays of arrays, whose inner types are inferred).
     * Null infers the type.
     *
     * @throws IllegalArgumentException if the value cannot be represented in that type
     */
    public GgufWriter put(String key, Object value, GgufType type) {
        checkKey(key);
        if (value == null) {
            throw new IllegalArgumentException("metadata key '" + key + "': null value");
        }
        Entry e = value.getClass().isArray()
                ? new Entry(value, GgufType.ARRAY, checkArray(key, value, type == null ? inferElement(value) : type))
                : new Entry(value, checkScalar(key, value, type == null ? inferScalar(key, value) : type), null);
        if (key.equals(GgufFile.ALIGNMENT_KEY)) {
            long a = e.type.isInteger() ? ((Number) value).longValue() : -1;
            if (a <= 0 || Long.bitCount(a) != 1 || a > GgufFile.MAX_ALIGNMENT) {
                throw new IllegalArgumentException(key + " must be a power of two up to 2^30, got " + value);
            }
            alignment = a;
        }
        entries.put(key, e);
        return this;
    }

    /** Adds every value of {@code metadata}, types inferred. */
    public GgufWriter putAll(Metadata metadata) {
        for (Map.Entry<String, Object> e : metadata.asMap().entrySet()) {
            put(e.getKey(), e.getValue());
        }
        return this;
    }

    /** Adds every value of a GGUF file with the types it has in that file. */
    public GgufWriter putAll(GgufFile file) {
        for (Map.Entry<String, Object> e : file.metadata().asMap().entrySet()) {
            GgufType t = file.valueType(e.getKey());
            put(e.getKey(), e.getValue(), t == GgufType.ARRAY ? file.arrayElementType(e.getKey()) : t);
        }
        return this;
    }

    public GgufWriter remove(String key) {
        entries.remove(key);
        if (key.equals(GgufFile.ALIGNMENT_KEY)) {
            alignment = GgufFile.DEFAULT_ALIGNMENT;
        }
        return this;
    }

    /**
     * Declares a tensor with the contents of a host tensor (any strides; rows are gathered). The
     * tensor's memory is read during {@link #write}.
     */
    public GgufWriter tensor(String name, Tensor t) {
        if (!t.device().hostAccessible()) {
            throw new IllegalArgumentException("tensor '" + name + "' is on " + t.device().name()
                    + "; copy it to the host first");
        }
        return tensor(name, t.dtype(), t.shape(), target -> copyRows(t, target));
    }

    /** Declares a tensor whose bytes (exactly the tensor's size) are {@code bytes}, read during {@link #write}. */
    public GgufWriter tensor(String name, DType dtype, long[] shape, MemorySegment bytes) {
        long need = byteSize(name, dtype, shape);
        if (bytes.byteSize() != need) {
            throw new IllegalArgumentException("tensor '" + name + "': " + bytes.byteSize() + " bytes given, "
                    + dtype + Arrays.toString(shape) + " needs " + need);
        }
        return tensor(name, dtype, shape, target -> MemorySegment.copy(bytes, 0, target, 0, need));
    }

    /** Declares a tensor whose bytes {@code data} produces when the writer reaches it. */
    public GgufWriter tensor(String name, DType dtype, long[] shape, TensorData data) {
        if (name == null || name.isEmpty() || name.getBytes(StandardCharsets.UTF_8).length > GgufFile.MAX_TENSOR_NAME_BYTES) {
            throw new IllegalArgumentException("tensor name must be 1 to " + GgufFile.MAX_TENSOR_NAME_BYTES
                    + " bytes: '" + name + "'");
        }
        if (!tensorNames.add(name)) {
            throw new IllegalArgumentException("duplicate tensor '" + name + "'");
        }
        try {
            tensors.add(new PendingTensor(name, dtype, shape.clone(), byteSize(name, dtype, shape), data));
        } catch (RuntimeException e) {
            tensorNames.remove(name);
            throw e;
        }
        return this;
    }

    /**
     * Writes the file: header, metadata, tensor infos, then each tensor's data at an aligned offset.
     * The output replaces any existing file only once it is complete.
     */
    public void write(Path out) throws IOException {
        Path abs = out.toAbsolutePath();
        // Not Files.createTempFile: its owner-only permissions would carry over to the model file.
        Path tmp = abs.resolveSibling("." + abs.getFileName() + "." + ProcessHandle.current().pid() + "."
                + System.nanoTime() + ".tmp");
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.READ, StandardOpenOption.WRITE,
                    StandardOpenOption.CREATE_NEW)) {
                writeTo(ch);
            }
            try {
                Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private void writeTo(FileChannel ch) throws IOException {
        Out o = new Out(ch);
        o.u32(GgufFile.MAGIC);
        o.u32(3);
        o.u64(tensors.size());
        o.u64(entries.size());
        for (Map.Entry<String, Entry> e : entries.entrySet()) {
            o.string(e.getKey());
            Entry v = e.getValue();
            o.u32(v.type.id());
            if (v.type == GgufType.ARRAY) {
                writeArray(o, v.value, v.elementType);
            } else {
                writeScalar(o, v.value, v.type);
            }
        }
        long[] offsets = new long[tensors.size()];
        long rel = 0;
        for (int i = 0; i < tensors.size(); i++) {
            PendingTensor t = tensors.get(i);
            o.string(t.name);
            o.u32(t.shape.length);
            for (int d = t.shape.length - 1; d >= 0; d--) {
                o.u64(t.shape[d]);
            }
            o.u32(t.dtype.ggmlId());
            o.u64(rel);
            offsets[i] = rel;
            rel = alignUp(Math.addExact(rel, t.byteSize), alignment);
        }
        // Like ggml, a file without tensors ends right after the header, unpadded.
        long dataStart = tensors.isEmpty() ? o.position() : alignUp(o.position(), alignment);
        o.zeros(dataStart - o.position());
        o.flush();
        for (int i = 0; i < tensors.size(); i++) {
            PendingTensor t = tensors.get(i);
            // Shared, not confined: a TensorData source may fill the region from several threads
            // (quantizing rows in parallel).
            try (Arena arena = Arena.ofShared()) {
                MemorySegment target = ch.map(FileChannel.MapMode.READ_WRITE, dataStart + offsets[i], t.byteSize, arena);
                t.data.writeTo(target);
            }
        }
        long end = dataStart + rel;
        if (ch.size() < end) {
            // The last tensor's padding: extend the file so it ends on an alignment boundary like ggml's files.
            ch.write(ByteBuffer.allocate(1), end - 1);
        }
    }

    private static void copyRows(Tensor t, MemorySegment target) {
        MemorySegment src = t.segment();
        if (t.isContiguous()) {
            MemorySegment.copy(src, 0, target, 0, target.byteSize());
            return;
        }
        long rowBytes = t.rowBytes();
        long rows = t.rows();
        for (long r = 0; r < rows; r++) {
            MemorySegment.copy(src, t.rowOffset(r), target, r * rowBytes, rowBytes);
        }
    }

    private static long byteSize(String name, DType dtype, long[] shape) {
        if (shape.length < 1 || shape.length > GgufFile.MAX_DIMS) {
            throw new IllegalArgumentException("tensor '" + name + "': rank " + shape.length + " is not 1 to "
                    + GgufFile.MAX_DIMS);
        }
        for (long d : shape) {
            if (d <= 0) {
                throw new IllegalArgumentException("tensor '" + name + "': non-positive dimension in "
                        + Arrays.toString(shape));
            }
        }
        try {
            return Tensor.byteSizeOf(dtype, shape);
        } catch (ArithmeticException | IllegalArgumentException e) {
            throw new IllegalArgumentException("tensor '" + name + "': " + dtype + Arrays.toString(shape) + ": "
                    + e.getMessage(), e);
        }
    }

    private static long alignUp(long p, long alignment) {
        long r = p % alignment;
        return r == 0 ? p : Math.addExact(p, alignment - r);
    }

    private static void checkKey(String key) {
        if (key == null || key.isEmpty() || key.getBytes(StandardCharsets.UTF_8).length > GgufFile.MAX_KEY_BYTES) {
            throw new IllegalArgumentException("metadata key must be 1 to " + GgufFile.MAX_KEY_BYTES + " bytes");
        }
    }

    private static GgufType inferScalar(String key, Object v) {
        return switch (v) {
            case String s -> GgufType.STRING;
            case Boolean b -> GgufType.BOOL;
            case Byte b -> GgufType.INT8;
            case Short s -> GgufType.INT16;
            case Integer i -> GgufType.INT32;
            case Long l -> l >= 0 && l <= 0xFFFF_FFFFL ? GgufType.UINT32 : GgufType.INT64;
            case Float f -> GgufType.FLOAT32;
            case Double d -> GgufType.FLOAT64;
            default -> throw new IllegalArgumentException("metadata key '" + key + "': unsupported value type "
                    + v.getClass().getName());
        };
    }

    private static GgufType inferElement(Object array) {
        return switch (array) {
            case String[] a -> GgufType.STRING;
            case boolean[] a -> GgufType.BOOL;
            case int[] a -> GgufType.INT32;
            case long[] a -> Arrays.stream(a).allMatch(x -> x >= 0 && x <= 0xFFFF_FFFFL) ? GgufType.UINT32 : GgufType.INT64;
            case float[] a -> GgufType.FLOAT32;
            case double[] a -> GgufType.FLOAT64;
            case Object[] a -> GgufType.ARRAY;
            default -> null;
        };
    }

    private static GgufType checkScalar(String key, Object v, GgufType type) {
        boolean ok = switch (type) {
            case STRING -> v instanceof String;
            case BOOL -> v instanceof Boolean;
            case FLOAT32, FLOAT64 -> v instanceof Number;
            case ARRAY -> false;
            default -> (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte)
                    && fits(((Number) v).longValue(), type);
        };
        if (!ok) {
            throw new IllegalArgumentException("metadata key '" + key + "': " + Metadata.describe(v)
                    + " cannot be stored as " + type);
        }
        return type;
    }

    private static GgufType checkArray(String key, Object array, GgufType et) {
        if (et == null) {
            throw new IllegalArgumentException("metadata key '" + key + "': unsupported array type "
                    + array.getClass().getSimpleName());
        }
        boolean ok = switch (array) {
            case String[] a -> et == GgufType.STRING && Arrays.stream(a).allMatch(s -> s != null);
            case boolean[] a -> et == GgufType.BOOL;
            case int[] a -> et.isInteger() && Arrays.stream(a).allMatch(x -> fits(x, et));
            case long[] a -> et.isInteger() && Arrays.stream(a).allMatch(x -> fits(x, et));
            case float[] a -> et == GgufType.FLOAT32 || et == GgufType.FLOAT64;
            case double[] a -> et == GgufType.FLOAT32 || et == GgufType.FLOAT64;
            case Object[] a -> et == GgufType.ARRAY && Arrays.stream(a).allMatch(
                    x -> x != null && x.getClass().isArray() && checkArray(key, x, inferElement(x)) != null);
            default -> false;
        };
        if (!ok) {
            throw new IllegalArgumentException("metadata key '" + key + "': " + Metadata.describe(array)
                    + " cannot be stored as an array of " + et);
        }
        return et;
    }

    private static boolean fits(long v, GgufType t) {
        return switch (t) {
            case UINT8 -> v >= 0 && v <= 0xFF;
            case INT8 -> v >= Byte.MIN_VALUE && v <= Byte.MAX_VALUE;
            case UINT16 -> v >= 0 && v <= 0xFFFF;
            case INT16 -> v >= Short.MIN_VALUE && v <= Short.MAX_VALUE;
            case UINT32 -> v >= 0 && v <= 0xFFFF_FFFFL;
            case INT32 -> v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE;
            // A u64 above 2^63 - 1 is held as a negative long (its bit pattern), as the reader returns it.
            case UINT64, INT64 -> true;
            default -> false;
        };
    }

    private static void writeScalar(Out o, Object v, GgufType t) throws IOException {
        switch (t) {
            case UINT8, INT8 -> o.u8((int) ((Number) v).longValue());
            case UINT16, INT16 -> o.u16((int) ((Number) v).longValue());
            case UINT32, INT32 -> o.u32((int) ((Number) v).longValue());
            case UINT64, INT64 -> o.u64(((Number) v).longValue());
            case FLOAT32 -> o.u32(Float.floatToRawIntBits(((Number) v).floatValue()));
            case FLOAT64 -> o.u64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
            case BOOL -> o.u8((Boolean) v ? 1 : 0);
            case STRING -> o.string((String) v);
            case ARRAY -> throw new IllegalStateException("array written as scalar");
        }
    }

    private static void writeArray(Out o, Object array, GgufType et) throws IOException {
        o.u32(et.id());
        switch (array) {
            case String[] a -> {
                o.u64(a.length);
                for (String s : a) {
                    o.string(s);
                }
            }
            case boolean[] a -> {
                o.u64(a.length);
                for (boolean b : a) {
                    o.u8(b ? 1 : 0);
                }
            }
            case int[] a -> {
                o.u64(a.length);
                for (int x : a) {
                    writeScalar(o, (long) x, et);
                }
            }
            case long[] a -> {
                o.u64(a.length);
                for (long x : a) {
                    writeScalar(o, x, et);
                }
            }
            case float[] a -> {
                o.u64(a.length);
                for (float x : a) {
                    writeScalar(o, x, et);
                }
            }
            case double[] a -> {
                o.u64(a.length);
                for (double x : a) {
                    writeScalar(o, x, et);
                }
            }
            case Object[] a -> {
                o.u64(a.length);
                for (Object x : a) {
                    writeArray(o, x, inferElement(x));
                }
            }
            default -> throw new IllegalStateException(array.getClass().toString());
        }
    }

    /** A little-endian buffered writer that knows its file position. */
    private static final class Out {
        private final FileChannel ch;
        private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        private long flushed;

        Out(FileChannel ch) {
            this.ch = ch;
        }

        long position() {
            return flushed + buf.position();
        }

        void u8(int v) throws IOException {
            room(1);
            buf.put((byte) v);
        }

        void u16(int v) throws IOException {
            room(2);
            buf.putShort((short) v);
        }

        void u32(int v) throws IOException {
            room(4);
            buf.putInt(v);
        }

        void u64(long v) throws IOException {
            room(8);
            buf.putLong(v);
        }

        void string(String s) throws IOException {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            if (b.length <= buf.remaining()) {
                buf.put(b);
                return;
            }
            flush();
            ByteBuffer w = ByteBuffer.wrap(b);
            while (w.hasRemaining()) {
                flushed += ch.write(w);
            }
        }

        void zeros(long n) throws IOException {
            for (long i = 0; i < n; i++) {
                u8(0);
            }
        }

        private void room(int n) throws IOException {
            if (buf.remaining() < n) {
                flush();
            }
        }

        void flush() throws IOException {
            buf.flip();
            while (buf.hasRemaining()) {
                flushed += ch.write(buf);
            }
            buf.clear();
        }
    }
}
