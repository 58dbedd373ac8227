package dev.isthmus.engine.synth;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A byte-level BPE vocabulary of any size, for files whose weights mean nothing but which must tokenize and
 * decode like real ones: ids 0-255 are the bytes (spelled with GPT-2's byte-to-character mapping), then
 * the tokens of merges learnt from a short built-in English text, then made-up words (" bako", " tesu", …)
 * up to two ids short of the size, then BOS {@code <|begin_of_text|>} and EOS {@code <|end_of_text|>}.
 *
 * <p>The made-up words are ordinary tokens with no merges leading to them, so random weights generate
 * readable gibberish and a tokenizer that looks whole words up (llama.cpp's {@code llama-bpe}) finds them.
 */
final class SyntheticVocabulary {
    static final int TYPE_NORMAL = 1;
    static final int TYPE_CONTROL = 3;
    static final String BOS = "<|begin_of_text|>";
    static final String EOS = "<|end_of_text|>";

    /** Training text for the merges; any English prose gives plausible first merges ("Ġt", "he", "in"...). */
    private static final String CORPUS = """
            The quick brown fox jumps over the lazy dog. In the morning the river was quiet, and the town on \
            its bank was still asleep. A small boat drifted in the mist, and the old man who rowed it sang a \
            song about the sea, the wind and the stars. When the sun came up, the children ran to the water \
            to see the boat, and they waved to the man, who waved back and laughed. There is nothing better \
            than a good story told by the fire in the evening, when the day is done and the work is over. \
            She said that the weather would be fine, but then it started to rain, and everyone went inside \
            to wait for the storm to pass. The model reads the text one token at a time and writes the next \
            one; it is not clever, it only counts what it has seen before. Numbers like 1, 2, 10, 100 and \
            2024 are tokens too, and so are the marks of punctuation: commas, stops, and questions? Yes!""";
    private static final Pattern WORDS = Pattern.compile(" ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+");
    private static final String CONSONANTS = "bcdfghjklmnprstvwz";
    private static final String VOWELS = "aeiou";

    final String[] tokens;
    final int[] types;
    final String[] merges;
    final int bos;
    final int eos;

    SyntheticVocabulary(int size) {
        if (size < 256 + 2) {
            throw new IllegalArgumentException("a byte-level vocabulary needs at least 258 tokens, got " + size);
        }
        List<String> list = new ArrayList<>(size);
        Set<String> seen = new HashSet<>();
        for (int b = 0; b < 256; b++) {
            String t = String.valueOf(byteChar(b));
            list.add(t);
            seen.add(t);
        }
        List<String> learnt = learnMerges(size - 2 - 256, list, seen);
        int syllables = CONSONANTS.length() * VOWELS.length();
        for (long k = syllables; list.size() < size - 2; k++) {
            // k in base `syllables`, one consonant-vowel pair per digit; starting at `syllables` gives two or more
            StringBuilder word = new StringBuilder().append(byteChar(' '));
            for (long v = k; v > 0; v /= syllables) {
                int s = (int) (v % syllables);
                word.append(CONSONANTS.charAt(s / VOWELS.length())).append(VOWELS.charAt(s % VOWELS.length()));
            }
            if (seen.add(word.toString())) {
                list.add(word.toString());
            }
        }
        bos = list.size();
        list.add(BOS);
        eos = list.size();
        list.add(EOS);
        tokens = list.toArray(String[]::new);
        types = new int[size];
        java.util.Arrays.fill(types, TYPE_NORMAL);
        types[bos] = TYPE_CONTROL;
        types[eos] = TYPE_CONTROL;
        merges = learnt.toArray(String[]::new);
    }

    /**
     * Learns up to {@code budget} merges from the corpus by plain BPE (most frequent adjacent pair first, ties by
     * text, until no pair occurs twice), adding each new token to {@code vocab}.
     */
    private static List<String> learnMerges(int budget, List<String> vocab, Set<String> seen) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        Matcher m = WORDS.matcher(CORPUS);
        while (m.find()) {
            counts.merge(encode(m.group()), 1, Integer::sum);
        }
        List<List<String>> words = new ArrayList<>();
        List<Integer> freq = new ArrayList<>();
        counts.forEach((w, c) -> {
            List<String> symbols = new ArrayList<>();
            w.codePoints().forEach(cp -> symbols.add(Character.toString(cp)));
            words.add(symbols);
            freq.add(c);
        });
        List<String> merges = new ArrayList<>();
        while (merges.size() < budget) {
            Map<String, Integer> pairs = new HashMap<>();
            for (int w = 0; w < words.size(); w++) {
                List<String> s = words.get(w);
                for (int i = 0; i + 1 < s.size(); i++) {
                    pairs.merge(s.get(i) + " " + s.get(i + 1), freq.get(w), Integer::sum);
                }
            }
            String best = null;
            int bestCount = 1;
            for (Map.Entry<String, Integer> e : pairs.entrySet()) {
                int c = e.getValue();
                if (c > bestCount || (c == bestCount && best != null && e.getKey().compareTo(best) < 0)) {
                    best = e.getKey();
                    bestCount = c;
                }
            }
            if (best == null) {
                break;
            }
            int space = best.indexOf(' ');
            String left = best.substring(0, space);
            String right = best.substring(space + 1);
            String joined = left + right;
            merges.add(best);
            if (seen.add(joined)) {
                vocab.add(joined);
            }
            for (List<String> s : words) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i).equals(left) && s.get(i + 1).equals(right)) {
                        s.set(i, joined);
                        s.remove(i + 1);
                    }
                }
            }
        }
        return merges;
    }

    private static String encode(String text) {
        StringBuilder sb = new StringBuilder();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            sb.append(byteChar(b & 0xFF));
        }
        return sb.toString();
    }

    /**
     * GPT-2's byte-to-character mapping (the tokenizer package keeps its own copy private): printable Latin-1
     * bytes stand for themselves, the other 68 map in byte order to U+0100 and up.
     */
    static char byteChar(int b) {
        if (printable(b)) {
            return (char) b;
        }
        int next = 256;
        for (int c = 0; c < b; c++) {
            if (!printable(c)) {
                next++;
            }
        }
        return (char) next;
    }

    private static boolean printable(int b) {
        return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    }
}
