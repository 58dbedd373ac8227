package dev.isthmus.backend.cpu.kernel;

/** Scalar conversions between F32 and the 16-bit float formats (IEEE half and bfloat16). */
public final class HalfFloats {
    private HalfFloats() {
    }

    /** Float to IEEE half bits, round to nearest even. */
    public static short floatToHalf(float value) {
        return Float.floatToFloat16(value);
    }

    /** bfloat16 bits to float: they are the upper half of the float's bits. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }

    /** Float to bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
