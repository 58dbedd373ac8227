package dev.isthmus.engine.serving;

import dev.isthmus.engine.generation.StopMatcher;
import dev.isthmus.engine.generation.StopReason;
import dev.isthmus.engine.sampling.TokenHistory;
import dev.isthmus.engine.speculative.Drafter;
import dev.isthmus.engine.speculative.Verifier;
import dev.isthmus.engine.tokenizer.StreamingDecoder;
import dev.isthmus.engine.tokenizer.Tokenizer;

/** The engine's state of one request; confined to the engine thread. */
final class Sequence {
    final Submission submission;
    final Request request;
    final int promptLength;
    final long submitted;
    /** Picks each token (and judges proposals): the Sampler's choices without speculation. */
    final Verifier verifier;
    final StreamingDecoder decoder;
    final StopMatcher stops;
    final StringBuilder text = new StringBuilder();

    /** Prompt then generated tokens. */
    final TokenHistory context;
    /** Positions whose keys and values are in the cache; the next forward pass starts here. */
    int computed;
    /** The cache's sequence index while running, else -1. */
    int slot = -1;
    int generated;
    boolean countedInQueue = true;
    boolean admittedOnce;
    long admitted;
    long firstToken;
    int cachedPromptTokens;
    int preemptions;
    /** Chain hashes of the prompt's whole blocks (for deferring behind an in-flight identical prefix). */
    long[] prefixHashes;
    long order;
    long plannedStep;
    /** Proposes this sequence's next tokens; opened at its first proposal, closed when it ends. */
    Drafter drafter;
    int draftedTokens;
    int acceptedDraftTokens;
    /** Why it ends, once its last token is settled (it retires at the end of the step). */
    StopReason ending;

    Sequence(Submission submission, Tokenizer tokenizer, long now) {
        this.submission = submission;
        this.request = submission.request();
        int[] prompt = request.prompt();
        this.promptLength = prompt.length;
        this.context = new TokenHistory(prompt);
        this.submitted = now;
        this.verifier = new Verifier(request.sampling());
        this.decoder = new StreamingDecoder(tokenizer, prompt[prompt.length - 1] == tokenizer.bos());
        this.stops = new StopMatcher(request.stop());
    }

    int size() {
        return context.size();
    }

    /** Tokens still to run through the model before the next token can be sampled. */
    int pending() {
        return context.size() - computed;
    }

    int[] tokenArray() {
        return context.toArray();
    }

    int[] generatedTokens() {
        return context.range(promptLength, context.size());
    }

    /** Frees the drafter's state (a draft model's KV cache), when the sequence has ended. */
    void closeDrafter() {
        if (drafter != null) {
            drafter.close();
            drafter = null;
        }
    }
}
