package dev.isthmus.engine.gptq;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.engine.format.ModelFormatException;
import dev.isthmus.engine.safetensors.HfJson;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * How a GPTQ checkpoint was quantized: {@code quantize_config.json}, or the {@code quantization_config} object
 * of {@code config.json} with {@code "quant_method": "gptq"}.
 *
 * @param bits       bits per weight; only 4 is supported
 * @param groupSize  input columns per group of scales and zeros ({@code -1} in the file: all of them)
 * @param descAct    act-order: columns were quantized in a permuted order, recorded in {@code g_idx}
 * @param sym        symmetric quantization (every zero point is 8)
 * @param zeroOffset added to stored zero points: 1 for the original AutoGPTQ format ({@code checkpoint_format}
 *                   {@code "gptq"}, which stores {@code zero - 1}), 0 for {@code "gptq_v2"}
 */
public record GptqConfig(int bits, int groupSize, boolean descAct, boolean sym, int zeroOffset) {
    public GptqConfig {
        if (bits != 4) {
            throw new IllegalArgumentException("only 4-bit GPTQ is supported, not " + bits + "-bit");
        }
        if (groupSize == 0 || groupSize < -1) {
            throw new IllegalArgumentException("group size " + groupSize);
        }
        if (zeroOffset != 0 && zeroOffset != 1) {
            throw new IllegalArgumentException("zero offset " + zeroOffset);
        }
    }

    /**
     * The config of a checkpoint directory: {@code quantize_config.json} if present, else {@code config.json}'s
     * {@code quantization_config} if it is GPTQ; null if neither says GPTQ.
     *
     * @param config the parsed config.json, or null
     * @throws ModelFormatException naming the file and field if the config is invalid or unsupported
     */
    public static GptqConfig find(Path dir, ObjectNode config) {
        Path q = dir.resolve("quantize_config.json");
        if (Files.isRegularFile(q)) {
            return parse(HfJson.readObject(q), q.toString());
        }
        if (config != null) {
            String where = dir.resolve("config.json") + ": quantization_config";
            ObjectNode qc = HfJson.optObject(config, "quantization_config", dir.resolve("config.json").toString());
            if (qc != null) {
                String method = HfJson.optString(qc, "quant_method", "gptq", where);
                if (!method.equals("gptq")) {
                    throw HfJson.error(where, "quant_method", "'" + method + "' is not supported (supported: gptq)");
                }
                return parse(qc, where);
            }
        }
        return null;
    }

    /** Interprets a GPTQ config object; {@code where} names it in errors. */
    public static GptqConfig parse(ObjectNode o, String where) {
        long bits = HfJson.optLong(o, "bits", -1, where);
        if (bits != 4) {
            throw HfJson.error(where, "bits", bits < 0 ? "required field is missing" : bits + " is not supported (supported: 4)");
        }
        long group = HfJson.optLong(o, "group_size", -1, where);
        if (group == 0 || group < -1 || group > Integer.MAX_VALUE) {
            throw HfJson.error(where, "group_size", group + " is not a positive size or -1");
        }
        String format = HfJson.optString(o, "checkpoint_format", HfJson.optString(o, "format", "gptq", where), where);
        int offset = switch (format) {
            case "gptq" -> 1;
            case "gptq_v2" -> 0;
            default -> throw HfJson.error(where, "checkpoint_format", "'" + format
                    + "' is not supported (supported: gptq, gptq_v2)");
        };
        return new GptqConfig(4, (int) group, HfJson.optBool(o, "desc_act", false, where),
                HfJson.optBool(o, "sym", true, where), offset);
    }
}
