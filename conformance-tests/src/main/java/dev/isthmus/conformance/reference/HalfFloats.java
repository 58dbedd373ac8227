package dev.isthmus.conformance.reference;

/**
 * IEEE 754 binary16 ("F16") and bfloat16 ("BF16") conversions, written from the bit-field definitions.
 *
 * <p>Decoding is exact (every half value is a double). Encoding rounds to nearest, ties to even, which is
 * what "the destination dtype's rounding of the value" means for {@code copyRows}.
 */
public final class HalfFloats {
    private HalfFloats() {
    }

    /**
     * The value of an F16 bit pattern: sign bit 15, 5-bit exponent (bias 15) in bits 10..14, 10-bit
     * mantissa. Exponent 0 is zero/subnormal ({@code mant · 2^-24}), exponent 31 is infinity/NaN.
     */
    public static double f16ToDouble(int bits) {
        int sign = (bits >>> 15) & 1;
        int exponent = (bits >>> 10) & 0x1F;
        int mantissa = bits & 0x3FF;
        double magnitude;
        if (exponent == 0) {
            magnitude = mantissa * 0x1p-24;
        } else if (exponent == 31) {
            magnitude = mantissa == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
        } else {
            // (1 + mantissa / 1024) * 2^(exponent - 15)
            magnitude = (1024 + mantissa) * Math.scalb(1.0, exponent - 15 - 10);
        }
        return sign == 1 ? -magnitude : magnitude;
    }

    /** The value of a BF16 bit pattern: the upper 16 bits of an IEEE binary32. */
    public static double bf16ToDouble(int bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** {@code v} rounded to F16 (nearest, ties to even; overflow to infinity), as its bit pattern. */
    public static short f16Bits(float v) {
        return Float.floatToFloat16(v);
    }

    /** {@code v} rounded to BF16 (nearest, ties to even; NaN stays NaN), as its bit pattern. */
    public static short bf16Bits(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        // Dropping the low 16 bits rounds toward zero; adding just under half an ulp, plus one when the kept
        // part is odd, turns that into round-half-to-even. A carry into the exponent is the correct result.
        int keptLsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + keptLsb) >>> 16);
    }

    /** {@code v} rounded to F16 and back. */
    public static double roundToF16(float v) {
        return f16ToDouble(f16Bits(v) & 0xFFFF);
    }

    /** {@code v} rounded to BF16 and back. */
    public static double roundToBf16(float v) {
        return bf16ToDouble(bf16Bits(v) & 0xFFFF);
    }
}
