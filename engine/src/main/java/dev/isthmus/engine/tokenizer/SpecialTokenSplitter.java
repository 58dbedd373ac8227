package dev.isthmus.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Cuts the texts of special tokens out of input before the model's own tokenization, as llama.cpp
 * does: USER_DEFINED tokens always, CONTROL and UNKNOWN ones only when special tokens are parsed.
 * Tokens are tried longest first; each one splits every text fragment left by the ones before.
 */
final class SpecialTokenSplitter {
    /** A piece of input: a special token ({@code token >= 0}) or the text {@code [start, end)}. */
    record Fragment(int token, int start, int end) {
        boolean isText() {
            return token < 0;
        }
    }

    private final Vocabulary vocabulary;

    SpecialTokenSplitter(Vocabulary vocabulary) {
        this.vocabulary = vocabulary;
    }

    List<Fragment> split(String text, boolean parseSpecial) {
        List<Fragment> fragments = new ArrayList<>();
        if (text.isEmpty()) {
            return fragments;
        }
        fragments.add(new Fragment(-1, 0, text.length()));
        for (int id : vocabulary.specialTokens()) {
            if (!parseSpecial && vocabulary.has(id, Vocabulary.CONTROL | Vocabulary.UNKNOWN)) {
                continue;
            }
            String special = vocabulary.text(id);
            if (text.indexOf(special) < 0) {
                continue; // the common case: skip rebuilding the fragment list
            }
            List<Fragment> next = new ArrayList<>(fragments.size() + 2);
            for (Fragment fragment : fragments) {
                if (fragment.isText()) {
                    splitFragment(text, fragment, id, special, next);
                } else {
                    next.add(fragment);
                }
            }
            fragments = next;
        }
        return fragments;
    }

    private void splitFragment(String text, Fragment fragment, int id, String special, List<Fragment> out) {
        boolean lstrip = vocabulary.has(id, Vocabulary.LSTRIP);
        boolean rstrip = vocabulary.has(id, Vocabulary.RSTRIP);
        int position = fragment.start();
        int end = fragment.end();
        while (position < end) {
            int match = text.indexOf(special, position);
            if (match < 0 || match + special.length() > end) {
                break;
            }
            int leftEnd = match;
            if (lstrip) {
                while (leftEnd > position && isCSpace(text.charAt(leftEnd - 1))) {
                    leftEnd--;
                }
            }
            if (leftEnd > position) {
                out.add(new Fragment(-1, position, leftEnd));
            }
            out.add(new Fragment(id, match, match + special.length()));
            position = match + special.length();
            if (rstrip) {
                while (position < end && isCSpace(text.charAt(position))) {
                    position++;
                }
            }
        }
        if (position < end) {
            out.add(new Fragment(-1, position, end));
        }
    }

    /** C's isspace, which llama.cpp uses for lstrip/rstrip (ASCII whitespace only). */
    private static boolean isCSpace(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }
}
