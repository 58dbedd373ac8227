package dev.isthmus.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits text into the words BPE runs on, with the regular expressions llama.cpp uses for each
 * {@code tokenizer.ggml.pre} family. A family may have several expressions, applied one after the
 * other: each splits every piece the previous one left into its matches and the text between them
 * (Hugging Face's "isolated" split), so nothing is dropped.
 *
 * <p>{@code \s} means Unicode White_Space here, as in Hugging Face and llama.cpp, not Java's ASCII
 * default; {@code \p{L}}, {@code \p{N}} and {@code \p{P}} are the Unicode general categories.
 */
enum PreTokenizer {
    GPT2(Expressions.GPT2),
    LLAMA3("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
    QWEN2("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
    FALCON("[\\p{P}\\$\\+<=>\\^~\\|`]+", Expressions.GPT2, "[0-9][0-9][0-9]"),
    STARCODER("\\p{N}", Expressions.GPT2),
    DEEPSEEK_CODER("[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\\u4E00-\\u9FA5\\u0800-\\u4E00\\uAC00-\\uD7FF]+", "\\p{N}"),
    /** llama.cpp's choice for a BPE vocabulary that names no pre-tokenizer. */
    DEFAULT("[\\p{P}\\$\\+<=>\\^~\\|]+", Expressions.GPT2, "\\p{N}+", "[0-9][0-9][0-9]");

    private static final class Expressions {
        static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    }

    private final Pattern[] patterns;

    PreTokenizer(String... expressions) {
        patterns = new Pattern[expressions.length];
        for (int i = 0; i < expressions.length; i++) {
            patterns[i] = Pattern.compile(expressions[i], Pattern.UNICODE_CHARACTER_CLASS);
        }
    }

    List<String> split(String text) {
        int[] bounds = {0, text.length()};
        int count = text.isEmpty() ? 0 : 1;
        for (Pattern pattern : patterns) {
            int[] next = new int[Math.max(8, bounds.length * 2)];
            int nextCount = 0;
            Matcher matcher = pattern.matcher(text);
            for (int piece = 0; piece < count; piece++) {
                int start = bounds[2 * piece];
                int end = bounds[2 * piece + 1];
                // Default (opaque) region bounds: lookaheads see only this piece, as llama.cpp matches pieces.
                matcher.region(start, end);
                int last = start;
                while (matcher.find()) {
                    if (matcher.end() == matcher.start()) {
                        continue;
                    }
                    if (matcher.start() > last) {
                        next = add(next, nextCount++, last, matcher.start());
                    }
                    next = add(next, nextCount++, matcher.start(), matcher.end());
                    last = matcher.end();
                }
                if (last < end) {
                    next = add(next, nextCount++, last, end);
                }
            }
            bounds = next;
            count = nextCount;
        }
        List<String> words = new ArrayList<>(count);
        for (int piece = 0; piece < count; piece++) {
            words.add(text.substring(bounds[2 * piece], bounds[2 * piece + 1]));
        }
        return words;
    }

    private static int[] add(int[] bounds, int index, int start, int end) {
        if (2 * index + 1 >= bounds.length) {
            bounds = java.util.Arrays.copyOf(bounds, bounds.length * 2);
        }
        bounds[2 * index] = start;
        bounds[2 * index + 1] = end;
        return bounds;
    }
}
