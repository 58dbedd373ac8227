package dev.isthmus.engine.serving;

/**
 * One item of a {@link Submission}'s stream: a generated token and the text it completes.
 *
 * <p>{@code text} is what is now safe to show: it may be empty (a UTF-8 character or a possible stop
 * string still held back) and may carry text of earlier tokens. End-of-generation tokens are not
 * streamed. Text held back until the end comes as a last item with {@code id == NONE}. Concatenating
 * the {@code text} of all items gives {@link Completion#text()}.
 *
 * @param index position among the generated tokens (0 for the first), or the token count for a
 *              {@code NONE} item
 * @param id    the token id, or {@link #NONE}
 * @param text  newly released text
 */
public record Token(int index, int id, String text) {
    /** The id of an item that only releases held-back text. */
    public static final int NONE = -1;
}
