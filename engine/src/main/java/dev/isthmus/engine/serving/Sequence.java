package dev.isthmus.engine.serving;

import dev.isthmus.engine.generation.StopMatcher;
import dev.isthmus.engine.sampling.Sampler;
import dev.isthmus.engine.tokenizer.StreamingDecoder;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.util.Arrays;

/** The engine's state of one request; confined to the engine thread. */
final class Sequence {
    final Submission submission;
    final Request request;
    final int promptLength;
    final long submitted;
    final Sampler sampler;
    final StreamingDecoder decoder;
    final StopMatcher stops;
    final StringBuilder text = new StringBuilder();

    /** Prompt then generated tokens. */
    int[] tokens;
    int size;
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

    Sequence(Submission submission, Tokenizer tokenizer, long now) {
        this.submission = submission;
        this.request = submission.request();
        int[] prompt = request.prompt();
        this.promptLength = prompt.length;
        this.tokens = Arrays.copyOf(prompt, prompt.length + Math.min(request.maxTokens(), 1 << 16));
        this.size = prompt.length;
        this.submitted = now;
        this.sampler = new Sampler(request.sampling());
        for (int t : prompt) {
            sampler.accept(t);
        }
        this.decoder = new StreamingDecoder(tokenizer, prompt[prompt.length - 1] == tokenizer.bos());
        this.stops = new StopMatcher(request.stop());
    }

    /** Tokens still to run through the model before the next token can be sampled. */
    int pending() {
        return size - computed;
    }

    void append(int token) {
        if (size == tokens.length) {
            tokens = Arrays.copyOf(tokens, tokens.length * 2);
        }
        tokens[size++] = token;
    }

    int[] tokenArray() {
        return Arrays.copyOf(tokens, size);
    }

    int[] generatedTokens() {
        return Arrays.copyOfRange(tokens, promptLength, size);
    }
}
