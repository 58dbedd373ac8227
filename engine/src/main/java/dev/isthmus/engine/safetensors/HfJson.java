package dev.isthmus.engine.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.engine.format.ModelFormatException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * JSON of Hugging Face checkpoints (safetensors headers, {@code config.json}, {@code tokenizer.json},
 * {@code quantize_config.json}) read defensively: duplicate keys, trailing content, nesting deeper than 64 and files beyond
 * {@link #MAX_FILE_BYTES} are errors, and every typed accessor names the file and the field it reads.
 */
public final class HfJson {
    /** Largest JSON file read (tokenizer.json of a 256k vocabulary is about 20 MB). */
    public static final long MAX_FILE_BYTES = 512L << 20;

    private static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(64)
                    .maxStringLength(100_000_000)
                    .maxNumberLength(100)
                    .build())
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build());

    static {
        MAPPER.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        MAPPER.enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    }

    private HfJson() {
    }

    /**
     * Parses {@code bytes} as one JSON object.
     *
     * @param where names the file (and part of it) in error messages
     * @throws ModelFormatException if the bytes are not a JSON object
     */
    public static ObjectNode parseObject(byte[] bytes, String where) {
        JsonNode n;
        try {
            n = MAPPER.readTree(bytes);
        } catch (IOException e) {
            throw new ModelFormatException(where + ": invalid JSON: " + firstLine(e.getMessage()), e);
        }
        if (!(n instanceof ObjectNode o)) {
            throw new ModelFormatException(where + ": expected a JSON object, found "
                    + (n == null || n.isMissingNode() ? "nothing" : n.getNodeType().name().toLowerCase(java.util.Locale.ROOT)));
        }
        return o;
    }

    /** Reads and parses a JSON object file. */
    public static ObjectNode readObject(Path file) {
        try {
            long size = Files.size(file);
            if (size > MAX_FILE_BYTES) {
                throw new ModelFormatException(file + ": " + size + " bytes is more than the " + MAX_FILE_BYTES
                        + " bytes a JSON file of a model may have");
            }
            return parseObject(Files.readAllBytes(file), file.toString());
        } catch (NoSuchFileException e) {
            throw new UncheckedIOException(e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** Jackson's messages end with a source excerpt on further lines; keep the first. */
    private static String firstLine(String m) {
        if (m == null) {
            return "";
        }
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }

    public static ModelFormatException error(String where, String field, String problem) {
        return new ModelFormatException(where + ": " + field + ": " + problem);
    }

    /** A short description of a JSON value for messages. */
    public static String describe(JsonNode n) {
        if (n == null || n.isMissingNode()) {
            return "nothing";
        }
        String s = n.toString();
        return s.length() > 60 ? s.substring(0, 60) + "..." : s;
    }

    /** A non-negative integer that fits a long. */
    public static long nonNegativeLong(JsonNode n, String where, String field) {
        if (n == null || !n.isIntegralNumber() || !n.canConvertToLong() || n.longValue() < 0) {
            throw error(where, field, "expected a non-negative integer, found " + describe(n));
        }
        return n.longValue();
    }

    /** An optional integer field of an object; {@code def} when absent or null. */
    public static long optLong(JsonNode o, String key, long def, String where) {
        JsonNode n = o.get(key);
        if (n == null || n.isNull()) {
            return def;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong()) {
            throw error(where, key, "expected an integer, found " + describe(n));
        }
        return n.longValue();
    }

    /** A required integer field of an object that must be positive and fit an int. */
    public static int positiveInt(JsonNode o, String key, String where) {
        JsonNode n = o.get(key);
        if (n == null || n.isNull()) {
            throw error(where, key, "required field is missing");
        }
        long v = optLong(o, key, 0, where);
        if (v <= 0 || v > Integer.MAX_VALUE) {
            throw error(where, key, v + " is not a positive 32-bit integer");
        }
        return (int) v;
    }

    /** An optional number field; {@code def} when absent or null. */
    public static double optDouble(JsonNode o, String key, double def, String where) {
        JsonNode n = o.get(key);
        if (n == null || n.isNull()) {
            return def;
        }
        if (!n.isNumber()) {
            throw error(where, key, "expected a number, found " + describe(n));
        }
        return n.doubleValue();
    }

    /** An optional boolean field; {@code def} when absent or null. */
    public static boolean optBool(JsonNode o, String key, boolean def, String where) {
        JsonNode n = o.get(key);
        if (n == null || n.isNull()) {
            return def;
        }
        if (!n.isBoolean()) {
            throw error(where, key, "expected true or false, found " + describe(n));
        }
        return n.booleanValue();
    }

    /** An optional string field; {@code def} when absent or null. */
    public static String optString(JsonNode o, String key, String def, String where) {
        JsonNode n = o.get(key);
        if (n == null || n.isNull()) {
            return def;
        }
        if (!n.isTextual()) {
            throw error(where, key, "expected a string, found " + describe(n));
        }
        return n.textValue();
    }

    /** An optional object field; null when absent or null. */
    public static ObjectNode optObject(JsonNode o, String key, String where) {
        JsonNode n = o.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!(n instanceof ObjectNode obj)) {
            throw error(where, key, "expected an object, found " + describe(n));
        }
        return obj;
    }
}
