package dev.isthmus.engine.quant;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/** Little-endian fields in byte arrays, and the half-precision encodings ggml stores scales in. */
final class Bits {
    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    private Bits() {
    }

    static void putShort(byte[] b, int o, int v) {
        SHORT.set(b, o, (short) v);
    }

    static int getShort(byte[] b, int o) {
        return (short) SHORT.get(b, o);
    }

    static void putInt(byte[] b, int o, int v) {
        INT.set(b, o, v);
    }

    static int getInt(byte[] b, int o) {
        return (int) INT.get(b, o);
    }

    static void putFloat(byte[] b, int o, float v) {
        INT.set(b, o, Float.floatToRawIntBits(v));
    }

    static float getFloat(byte[] b, int o) {
        return Float.intBitsToFloat((int) INT.get(b, o));
    }

    /** Writes {@code v} as IEEE binary16, rounded to nearest even, and returns the value actually stored. */
    static float putHalf(byte[] b, int o, float v) {
        short h = Float.floatToFloat16(v);
        SHORT.set(b, o, h);
        return Float.float16ToFloat(h);
    }

    static float getHalf(byte[] b, int o) {
        return Float.float16ToFloat((short) SHORT.get(b, o));
    }

    /** bfloat16 bits of {@code v}: the upper half of its binary32, rounded to nearest even; NaN stays NaN. */
    static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) {
            return (short) ((bits >>> 16) | 0x0040); // keep it a (quiet) NaN whatever the dropped bits were
        }
        // Adding just under half a unit of the kept part, plus one when that part is odd, turns the
        // truncation into round-half-to-even; a carry into the exponent is the correctly rounded result.
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    static float fromBf16(int bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * ggml's {@code nearest_int}: round half to even, for |v| &lt;= 2^22. Adding 1.5 · 2^23 leaves the rounded
     * integer in the low mantissa bits (f32 addition rounds to nearest even); cheaper than Math.rint plus a
     * checked double-to-int conversion in the K-quant searches, which round every element ~20 times.
     */
    static int nearestInt(float v) {
        return (Float.floatToRawIntBits(v + 12582912f) & 0x007FFFFF) - 0x00400000;
    }

    static int clamp(int v, int lo, int hi) {
        return v < lo ? lo : Math.min(v, hi);
    }
}
