package dev.isthmus.server;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/** Typed reads of request fields, answering wrong types the way the OpenAI API does. */
final class Json {
    private Json() {
    }

    static boolean present(JsonNode body, String field) {
        JsonNode n = body.get(field);
        return n != null && !n.isNull();
    }

    static String string(JsonNode body, String field) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isTextual()) {
            throw wrongType(field, "a string", n);
        }
        return n.asText();
    }

    static Integer integer(JsonNode body, String field) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw wrongType(field, "an integer", n);
        }
        return n.asInt();
    }

    static Long longValue(JsonNode body, String field) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong()) {
            throw wrongType(field, "an integer", n);
        }
        return n.asLong();
    }

    static Double number(JsonNode body, String field, double min, double max) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isNumber()) {
            throw wrongType(field, "a number", n);
        }
        double v = n.asDouble();
        if (!(v >= min && v <= max)) {
            throw ApiError.invalid("Invalid '" + field + "': " + v + " is not in [" + min + ", " + max + "].", field);
        }
        return v;
    }

    static Boolean bool(JsonNode body, String field) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isBoolean()) {
            throw wrongType(field, "a boolean", n);
        }
        return n.asBoolean();
    }

    /** {@code stop}: a string or an array of up to four strings. */
    static List<String> stop(JsonNode body) {
        JsonNode n = body.get("stop");
        List<String> out = new ArrayList<>();
        if (n == null || n.isNull()) {
            return out;
        }
        if (n.isTextual()) {
            if (!n.asText().isEmpty()) {
                out.add(n.asText());
            }
            return out;
        }
        if (!n.isArray()) {
            throw wrongType("stop", "a string or an array of strings", n);
        }
        if (n.size() > 4) {
            throw ApiError.invalid("Invalid 'stop': at most 4 stop sequences, got " + n.size() + ".", "stop");
        }
        for (JsonNode s : n) {
            if (!s.isTextual()) {
                throw wrongType("stop", "a string or an array of strings", n);
            }
            if (!s.asText().isEmpty()) {
                out.add(s.asText());
            }
        }
        return out;
    }

    static ApiError wrongType(String field, String expected, JsonNode got) {
        return ApiError.invalid("Invalid type for '" + field + "': expected " + expected + ", but got "
                + describe(got) + " instead.", field);
    }

    private static String describe(JsonNode n) {
        if (n.isTextual()) {
            return "a string";
        }
        if (n.isNumber()) {
            return n.isIntegralNumber() ? "an integer" : "a decimal";
        }
        if (n.isBoolean()) {
            return "a boolean";
        }
        if (n.isArray()) {
            return "an array";
        }
        if (n.isObject()) {
            return "an object";
        }
        return "null";
    }
}
