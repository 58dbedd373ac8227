package dev.isthmus.engine.generation;

import dev.isthmus.engine.tokenizer.StreamingDecoder;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.util.Arrays;
import java.util.function.Consumer;

/**
 * What a single-prompt generation has produced: its tokens, the text streamed to the sink (decoded as tokens
 * arrive, cut before a stop string) and why it ended. Shared by the plain and the speculative generator, so
 * that both end and stream alike whichever way their tokens were chosen.
 */
public final class GenerationOutput {
    private final Tokenizer tokenizer;
    private final int[] prompt;
    private final StreamingDecoder decoder;
    private final StopMatcher stops;
    private final Consumer<String> sink;
    private final StringBuilder text = new StringBuilder();
    private final int[] generated;
    private int count;
    private StopReason reason = StopReason.MAX_TOKENS;
    private boolean over;

    /**
     * @param prompt the prompt's tokens (not empty)
     * @param sink   receives the new text as it is produced
     */
    public GenerationOutput(Tokenizer tokenizer, GenerationParams params, int[] prompt, Consumer<String> sink) {
        this.tokenizer = tokenizer;
        this.prompt = prompt;
        this.decoder = new StreamingDecoder(tokenizer, prompt[prompt.length - 1] == tokenizer.bos());
        this.stops = new StopMatcher(params.stop());
        this.sink = sink;
        this.generated = new int[params.maxTokens()];
        this.over = params.maxTokens() == 0;
    }

    /**
     * Records a generated token: an end-of-generation token ends the generation, any other is decoded and
     * streamed up to a stop string; the token budget ends it too.
     *
     * @return false once the generation is over
     */
    public boolean push(int token) {
        generated[count++] = token;
        if (tokenizer.isEndOfGeneration(token)) {
            reason = StopReason.END_OF_TEXT;
        } else {
            emit(stops.push(decoder.push(token)));
            if (stops.stopped()) {
                reason = StopReason.STOP_STRING;
            }
        }
        over = reason != StopReason.MAX_TOKENS || count == generated.length;
        return !over;
    }

    /** Ends the generation because the KV cache has no room for another token. */
    public void contextFull() {
        reason = StopReason.CONTEXT_FULL;
        over = true;
    }

    /** Whether the generation is over (end of text, a stop string, the token budget or a full context). */
    public boolean over() {
        return over;
    }

    /** Tokens generated so far. */
    public int count() {
        return count;
    }

    /** Streams what the decoder and the stop matcher still hold, once the generation is over. */
    public void finish() {
        if (!stops.stopped()) {
            emit(stops.push(decoder.flush()));
            emit(stops.flush());
        }
    }

    /** The outcome, after {@link #finish()}. */
    public GenerationResult result(long promptNanos, long generationNanos) {
        return new GenerationResult(text.toString(), prompt, Arrays.copyOf(generated, count), reason, promptNanos,
                generationNanos);
    }

    private void emit(String piece) {
        if (!piece.isEmpty()) {
            text.append(piece);
            sink.accept(piece);
        }
    }
}
