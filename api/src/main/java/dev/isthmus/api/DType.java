package dev.isthmus.api;

/**
 * Element types of tensors, including the GGUF/ggml block-quantized formats.
 *
 * <p>Block formats store {@link #blockSize()} consecutive elements of the innermost dimension in
 * {@link #blockBytes()} bytes; plain types have a block size of 1. The ggml type id is the number
 * that GGUF files use for the type.
 */
public enum DType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q4_1(3, 32, 20),
    Q5_0(6, 32, 22),
    Q5_1(7, 32, 24),
    Q8_0(8, 32, 34),
    Q2_K(10, 256, 84),
    Q3_K(11, 256, 110),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    Q8_K(15, 256, 292),
    I8(24, 1, 1),
    I32(26, 1, 4),
    BF16(30, 1, 2);

    private final int ggmlId;
    private final int blockSize;
    private final int blockBytes;

    DType(int ggmlId, int blockSize, int blockBytes) {
        this.ggmlId = ggmlId;
        this.blockSize = blockSize;
        this.blockBytes = blockBytes;
    }

    /** The type id used by ggml and GGUF tensor infos. */
    public int ggmlId() {
        return ggmlId;
    }

    /** Elements per block (1 for plain types, 32 or 256 for quantized formats). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block (the element size for plain types). */
    public int blockBytes() {
        return blockBytes;
    }

    /** True for the block-quantized formats. */
    public boolean isQuantized() {
        return blockSize > 1;
    }

    /** True for F32, F16 and BF16. */
    public boolean isFloatingPoint() {
        return this == F32 || this == F16 || this == BF16;
    }

    /**
     * Bytes needed for a row of {@code elements} elements.
     *
     * @throws IllegalArgumentException if {@code elements} is negative or not a multiple of the block size
     */
    public long rowBytes(long elements) {
        if (elements < 0 || elements % blockSize != 0) {
            throw new IllegalArgumentException(
                    name() + " needs a multiple of " + blockSize + " elements per row, got " + elements);
        }
        return Math.multiplyExact(elements / blockSize, (long) blockBytes);
    }

    /**
     * The type with the given ggml id.
     *
     * @throws IllegalArgumentException naming the id if no supported type has it
     */
    public static DType fromGgmlId(int id) {
        for (DType t : values()) {
            if (t.ggmlId == id) {
                return t;
            }
        }
        throw new IllegalArgumentException("unsupported ggml type id " + id);
    }
}
