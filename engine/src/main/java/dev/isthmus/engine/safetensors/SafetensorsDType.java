package dev.isthmus.engine.safetensors;

import dev.isthmus.api.DType;

/** The element types a safetensors header may name ({@code "dtype"}), with their sizes. */
public enum SafetensorsDType {
    BOOL(1, null),
    U8(1, null),
    I8(1, DType.I8),
    F8_E4M3(1, null),
    F8_E5M2(1, null),
    F8_E8M0(1, null),
    I16(2, null),
    U16(2, null),
    F16(2, DType.F16),
    BF16(2, DType.BF16),
    I32(4, DType.I32),
    U32(4, null),
    F32(4, DType.F32),
    I64(8, null),
    U64(8, null),
    F64(8, null),
    C64(8, null);

    private final int bytes;
    private final DType engineType;

    SafetensorsDType(int bytes, DType engineType) {
        this.bytes = bytes;
        this.engineType = engineType;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** The engine's type with the same bytes, or null if the engine has none. */
    public DType engineType() {
        return engineType;
    }

    /** The type of a header's {@code "dtype"} string, or null if unknown. */
    public static SafetensorsDType parse(String name) {
        for (SafetensorsDType t : values()) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        return null;
    }
}
