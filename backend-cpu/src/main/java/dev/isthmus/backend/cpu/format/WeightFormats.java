package dev.isthmus.backend.cpu.format;

import dev.isthmus.api.DType;

import java.util.EnumMap;
import java.util.Map;

/** The {@link WeightFormat} of each supported dtype. */
public final class WeightFormats {
    private static final Map<DType, WeightFormat> FORMATS = new EnumMap<>(DType.class);

    static {
        register(new F32Format());
        register(new F16Format());
        register(new BF16Format());
        register(new Q8_0Format());
        register(new Q4_0Format());
        register(new Q4_1Format());
        register(new Q5_0Format());
        register(new Q5_1Format());
        register(new Q2_KFormat());
        register(new Q3_KFormat());
        register(new Q4_KFormat());
        register(new Q5_KFormat());
        register(new Q6_KFormat());
        register(new Q8_KFormat());
    }

    private WeightFormats() {
    }

    private static void register(WeightFormat format) {
        FORMATS.put(format.dtype(), format);
    }

    /** Whether rows of {@code dtype} can be decoded. */
    public static boolean supports(DType dtype) {
        return FORMATS.containsKey(dtype);
    }

    /** Whether {@code dtype} is a plain float format usable as a KV cache or COPY_ROWS destination. */
    public static boolean supportsFloat(DType dtype) {
        return FORMATS.get(dtype) instanceof FloatFormat;
    }

    /**
     * The format of {@code dtype}.
     *
     * @throws IllegalArgumentException if the dtype has none
     */
    public static WeightFormat of(DType dtype) {
        WeightFormat f = FORMATS.get(dtype);
        if (f == null) {
            throw new IllegalArgumentException("no CPU kernels for " + dtype);
        }
        return f;
    }

    /**
     * The float format of {@code dtype}.
     *
     * @throws IllegalArgumentException if the dtype is not F32, F16 or BF16
     */
    public static FloatFormat floatFormat(DType dtype) {
        if (FORMATS.get(dtype) instanceof FloatFormat f) {
            return f;
        }
        throw new IllegalArgumentException("no CPU float kernels for " + dtype);
    }
}
