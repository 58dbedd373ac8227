package dev.isthmus.engine.gguf;

/** The metadata value types of GGUF, with their on-disk ids. */
public enum GgufType {
    UINT8(0, 1),
    INT8(1, 1),
    UINT16(2, 2),
    INT16(3, 2),
    UINT32(4, 4),
    INT32(5, 4),
    FLOAT32(6, 4),
    BOOL(7, 1),
    STRING(8, 8),
    ARRAY(9, 12),
    UINT64(10, 8),
    INT64(11, 8),
    FLOAT64(12, 8);

    private static final GgufType[] BY_ID = new GgufType[13];

    static {
        for (GgufType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    private final int id;
    private final int minBytes;

    GgufType(int id, int minBytes) {
        this.id = id;
        this.minBytes = minBytes;
    }

    /** The id stored in the file. */
    public int id() {
        return id;
    }

    /**
     * Fewest bytes one value of this type occupies: its size for scalars, the length prefix for a
     * string, element type plus count for an array. Bounds element counts before anything is allocated.
     */
    public int minBytes() {
        return minBytes;
    }

    /** True for the fixed-size numeric and bool types. */
    public boolean isScalar() {
        return this != STRING && this != ARRAY;
    }

    /** True for the integer types. */
    public boolean isInteger() {
        return isScalar() && this != FLOAT32 && this != FLOAT64 && this != BOOL;
    }

    /** The type with this id, or null if there is none (ids come from untrusted files). */
    public static GgufType fromId(long id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[(int) id] : null;
    }
}
