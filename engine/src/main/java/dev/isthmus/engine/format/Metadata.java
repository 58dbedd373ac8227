package dev.isthmus.engine.format;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Metadata key/value pairs of a model file, in file order, with typed accessors.
 *
 * <p>Values use these Java types: integer scalars are {@link Integer} (u8, i8, u16, i16, i32) or
 * {@link Long} (u32, i64, u64 — a u64 above {@code Long.MAX_VALUE} reads as negative); f32 is
 * {@link Float}, f64 {@link Double}, bool {@link Boolean}, string {@link String}. Arrays are
 * {@code String[]}, {@code int[]} (i8, u8, i16, u16, i32), {@code long[]} (u32, i64, u64),
 * {@code float[]}, {@code double[]}, {@code boolean[]}; arrays of arrays are {@code Object[]} of those.
 *
 * <p>Accessors with a default return it when the key is absent; a present value of the wrong type
 * is a {@link ModelFormatException} naming the key, never a silent default.
 */
public final class Metadata {
    private final Map<String, Object> values;
    private final String source;

    public Metadata(LinkedHashMap<String, Object> values) {
        this(values, null);
    }

    /** @param source what the metadata came from (usually the file), used in error messages; may be null */
    public Metadata(LinkedHashMap<String, Object> values, String source) {
        for (Map.Entry<String, Object> e : values.entrySet()) {
            if (e.getKey() == null || e.getValue() == null) {
                throw new IllegalArgumentException("null metadata key or value: " + e.getKey());
            }
        }
        this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
        this.source = source;
    }

    /** The pairs in file order; unmodifiable (array values are shared, do not modify them). */
    public Map<String, Object> asMap() {
        return values;
    }

    public boolean has(String key) {
        return values.containsKey(key);
    }

    /** The raw value, or null if absent. */
    public Object get(String key) {
        return values.get(key);
    }

    public int size() {
        return values.size();
    }

    public String getString(String key, String def) {
        Object v = values.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof String s) {
            return s;
        }
        throw wrongType(key, "a string", v);
    }

    /** A required string. */
    public String require(String key) {
        if (!values.containsKey(key)) {
            throw error(key, "required key is missing");
        }
        return getString(key, null);
    }

    /** Any integer scalar. */
    public long getLong(String key, long def) {
        Object v = values.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Integer i) {
            return i;
        }
        if (v instanceof Long l) {
            return l;
        }
        throw wrongType(key, "an integer", v);
    }

    /** Any integer scalar that fits an int. */
    public int getInt(String key, int def) {
        if (!values.containsKey(key)) {
            return def;
        }
        long v = getLong(key, def);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
            throw error(key, "value " + v + " does not fit a 32-bit int");
        }
        return (int) v;
    }

    /** Any numeric scalar, converted to float. */
    public float getFloat(String key, float def) {
        return (float) getDouble(key, def);
    }

    /** Any numeric scalar, converted to double. */
    public double getDouble(String key, double def) {
        Object v = values.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Float || v instanceof Double || v instanceof Integer || v instanceof Long) {
            return ((Number) v).doubleValue();
        }
        throw wrongType(key, "a number", v);
    }

    public boolean getBool(String key, boolean def) {
        Object v = values.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        throw wrongType(key, "a bool", v);
    }

    /** A copy of a string array, or null if absent. */
    public String[] getStringArray(String key) {
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof String[] a) {
            return a.clone();
        }
        throw wrongType(key, "a string array", v);
    }

    /** Any numeric array converted to float, or null if absent. */
    public float[] getFloatArray(String key) {
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        switch (v) {
            case float[] a -> {
                return a.clone();
            }
            case double[] a -> {
                float[] out = new float[a.length];
                for (int i = 0; i < a.length; i++) {
                    out[i] = (float) a[i];
                }
                return out;
            }
            case int[] a -> {
                float[] out = new float[a.length];
                for (int i = 0; i < a.length; i++) {
                    out[i] = a[i];
                }
                return out;
            }
            case long[] a -> {
                float[] out = new float[a.length];
                for (int i = 0; i < a.length; i++) {
                    out[i] = a[i];
                }
                return out;
            }
            default -> throw wrongType(key, "a numeric array", v);
        }
    }

    /** Any integer array whose values fit an int, or null if absent. */
    public int[] getIntArray(String key) {
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof int[] a) {
            return a.clone();
        }
        if (v instanceof long[] a) {
            int[] out = new int[a.length];
            for (int i = 0; i < a.length; i++) {
                if (a[i] < Integer.MIN_VALUE || a[i] > Integer.MAX_VALUE) {
                    throw error(key, "element #" + i + " value " + a[i] + " does not fit a 32-bit int");
                }
                out[i] = (int) a[i];
            }
            return out;
        }
        throw wrongType(key, "an integer array", v);
    }

    /** Any integer array as longs, or null if absent. */
    public long[] getLongArray(String key) {
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof long[] a) {
            return a.clone();
        }
        if (v instanceof int[] a) {
            return Arrays.stream(a).asLongStream().toArray();
        }
        throw wrongType(key, "an integer array", v);
    }

    /** A short description of a value's type for messages, e.g. {@code String[32000]}. */
    public static String describe(Object v) {
        if (v == null) {
            return "null";
        }
        if (v.getClass().isArray()) {
            return v.getClass().getComponentType().getSimpleName() + "[" + java.lang.reflect.Array.getLength(v) + "]";
        }
        String s = String.valueOf(v);
        if (s.length() > 60) {
            s = s.substring(0, 60) + "...";
        }
        return v.getClass().getSimpleName() + (v instanceof String ? " \"" + s + "\"" : " " + s);
    }

    private ModelFormatException wrongType(String key, String expected, Object v) {
        return error(key, "expected " + expected + ", found " + describe(v));
    }

    private ModelFormatException error(String key, String problem) {
        return new ModelFormatException((source == null ? "" : source + ": ") + "metadata key '" + key + "': " + problem);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Metadata{");
        for (Map.Entry<String, Object> e : values.entrySet()) {
            if (sb.length() > 9) {
                sb.append(", ");
            }
            sb.append(e.getKey()).append('=').append(describe(e.getValue()));
        }
        return sb.append('}').toString();
    }
}
