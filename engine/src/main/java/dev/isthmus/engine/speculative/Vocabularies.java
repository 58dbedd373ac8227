package dev.isthmus.engine.speculative;

import dev.isthmus.engine.tokenizer.Tokenizer;

/** The check that a draft model's token ids mean what the target's mean. */
public final class Vocabularies {
    private static final String NEEDS = "; speculative decoding needs a draft model with the target's tokenizer";

    private Vocabularies() {
    }

    /**
     * Compares vocabulary sizes, logit widths, every token's piece, and the BOS and EOS tokens.
     *
     * @throws IncompatibleVocabularyException naming the first difference (and how many pieces differ)
     */
    public static void checkCompatible(Tokenizer target, int targetLogits, Tokenizer draft, int draftLogits) {
        if (target.vocabSize() != draft.vocabSize()) {
            throw new IncompatibleVocabularyException("draft vocabulary differs from the target's: the target has "
                    + target.vocabSize() + " tokens, the draft " + draft.vocabSize() + NEEDS);
        }
        if (targetLogits != draftLogits) {
            throw new IncompatibleVocabularyException("draft vocabulary differs from the target's: the target "
                    + "scores " + targetLogits + " token ids, the draft " + draftLogits + NEEDS);
        }
        int first = -1;
        int differing = 0;
        for (int id = 0; id < target.vocabSize(); id++) {
            if (!target.piece(id).equals(draft.piece(id))) {
                if (first < 0) {
                    first = id;
                }
                differing++;
            }
        }
        if (first >= 0) {
            throw new IncompatibleVocabularyException("draft vocabulary differs from the target's: token " + first
                    + " is " + quote(target.piece(first)) + " in the target but " + quote(draft.piece(first))
                    + " in the draft (" + differing + " of " + target.vocabSize() + " tokens differ)" + NEEDS);
        }
        if (target.bos() != draft.bos() || target.eos() != draft.eos()) {
            throw new IncompatibleVocabularyException("draft vocabulary differs from the target's: BOS/EOS are "
                    + target.bos() + "/" + target.eos() + " in the target but " + draft.bos() + "/" + draft.eos()
                    + " in the draft" + NEEDS);
        }
    }

    private static String quote(String piece) {
        StringBuilder b = new StringBuilder("\"");
        piece.codePoints().forEach(c -> {
            if (c < 0x20 || c == 0x7f) {
                b.append(String.format("\\u%04x", c));
            } else if (c == '"' || c == '\\') {
                b.append('\\').appendCodePoint(c);
            } else {
                b.appendCodePoint(c);
            }
        });
        return b.append('"').toString();
    }
}
