package dev.isthmus.engine.perplexity;

import dev.isthmus.api.DType;
import dev.isthmus.api.Tensor;
import dev.isthmus.engine.graph.Batch;
import dev.isthmus.engine.graph.KvCache;
import dev.isthmus.engine.graph.Transformer;
import dev.isthmus.engine.model.Model;
import dev.isthmus.engine.tokenizer.Tokenizer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.function.Consumer;

/**
 * Sliding-window perplexity of a model on a text, the quality meter of quantization (llama.cpp's
 * {@code llama-perplexity}, the strided variant).
 *
 * <p><b>Definition.</b> The text is tokenized once as a prompt is (with BOS when the tokenizer adds one), giving
 * {@code N} tokens {@code t[0..N)}. With context {@code C} and stride {@code S} (default {@code C/2}), window
 * {@code w = 0 .. W-1}, {@code W = (N - C) / S + 1}, holds tokens {@code [wS, wS + C)}, evaluated from an empty
 * KV cache, its first token replaced by BOS (when the tokenizer adds one) so that every window starts like a
 * document, as in llama.cpp. Only the last {@code S} tokens of each window are scored, each predicted from the
 * logits of the position before it: the token at position {@code p} contributes
 * {@code -ln softmax(logits[p-1])[t[p]]} (in double precision). Consecutive windows score consecutive ranges, so
 * every token from position {@code C - S} to {@code (W-1)S + C - 1} is scored exactly once, always with at least
 * {@code C - S - 1} tokens of context; the first {@code C - S} tokens are context only and tokens after the last
 * full window are not scored. The perplexity is {@code exp(mean NLL)}; its uncertainty is
 * {@code PPL · stderr(NLL)}, the standard error of the mean of the per-token NLLs (treating them as
 * independent, as llama.cpp does).
 *
 * <p>With {@code S = C/2} this is "context C, score the second half of each window"; llama.cpp's default
 * ({@code --ppl-stride 0}) instead uses non-overlapping windows ({@code S = C}) scoring their second half.
 */
public final class Perplexity {
    private Perplexity() {
    }

    /**
     * @param context   tokens per window ({@code --ctx})
     * @param stride    tokens between window starts, also the tokens scored per window
     * @param batchSize tokens per forward pass within a window
     */
    public record Options(int context, int stride, int batchSize) {
        public Options {
            if (context < 2) {
                throw new IllegalArgumentException("context must be at least 2 tokens, got " + context);
            }
            if (stride < 1 || stride >= context) {
                throw new IllegalArgumentException("stride must be between 1 and context - 1 = " + (context - 1)
                        + ", got " + stride);
            }
            if (batchSize < 1) {
                throw new IllegalArgumentException("batch size must be positive, got " + batchSize);
            }
        }

        /** Context {@code C}, stride {@code C/2}, batches of up to 512 tokens. */
        public static Options of(int context) {
            return new Options(context, Math.max(1, context / 2), Math.min(context, 512));
        }
    }

    /**
     * The result so far (after {@code windows} windows) or in the end.
     *
     * @param tokens        tokens of the text (with BOS if added)
     * @param windows       windows evaluated
     * @param totalWindows  windows of the whole evaluation
     * @param scored        tokens scored
     * @param nllSum        sum of the per-token negative log-likelihoods (nats)
     * @param nllSquares    sum of their squares
     * @param seconds       wall time so far
     */
    public record Result(Options options, int tokens, int windows, int totalWindows, long scored, double nllSum,
                         double nllSquares, double seconds) {
        /** Mean negative log-likelihood per scored token, in nats. */
        public double meanNll() {
            return nllSum / scored;
        }

        /** {@code exp(mean NLL)}. */
        public double perplexity() {
            return Math.exp(meanNll());
        }

        /** Standard error of the mean NLL. */
        public double nllStandardError() {
            if (scored < 2) {
                return Double.NaN;
            }
            double mean = meanNll();
            double variance = Math.max(0, nllSquares / scored - mean * mean);
            return Math.sqrt(variance / (scored - 1));
        }

        /** Uncertainty of the perplexity, {@code PPL · stderr(NLL)}. */
        public double perplexityError() {
            return perplexity() * nllStandardError();
        }
    }

    /** Windows of a text of {@code tokens} tokens: {@code (N - C) / S + 1}, or 0 if shorter than a window. */
    public static int windows(int tokens, Options o) {
        return tokens < o.context() ? 0 : (tokens - o.context()) / o.stride() + 1;
    }

    /**
     * Tokenizes {@code text} as a prompt and measures the model's perplexity on it.
     *
     * @param progress told after every window (may be null)
     * @throws IllegalArgumentException if the text is shorter than one window
     */
    public static Result evaluate(Model model, String text, Options options, Consumer<Result> progress) {
        Tokenizer tok = model.tokenizer();
        boolean addBos = tok.addBosByDefault() && tok.bos() >= 0;
        int[] tokens = tok.encode(text, addBos, false);
        return evaluate(model.transformer(), tokens, addBos ? tok.bos() : -1, options, progress);
    }

    /**
     * Measures the perplexity of {@code tokens} as defined in the class comment.
     *
     * @param bos      the token that replaces each window's first, or -1 to keep the text's token
     * @param progress told after every window (may be null)
     * @throws IllegalArgumentException if there are fewer tokens than one window
     */
    public static Result evaluate(Transformer model, int[] tokens, int bos, Options options, Consumer<Result> progress) {
        int c = options.context();
        int s = options.stride();
        int total = windows(tokens.length, options);
        if (total == 0) {
            throw new IllegalArgumentException("the text has " + tokens.length + " tokens, fewer than one window of "
                    + c + " (use a longer text or a smaller context)");
        }
        int vocab = model.config().vocabSize();
        int firstScored = c - s;
        long start = System.nanoTime();
        double sum = 0;
        double squares = 0;
        long scored = 0;
        Result result = null;
        try (KvCache cache = model.newCache(1, c, DType.F32); Arena arena = Arena.ofShared()) {
            Tensor host = Tensor.allocate(arena, DType.F32, Math.min(c, options.batchSize()), vocab);
            float[] row = new float[vocab];
            for (int w = 0; w < total; w++) {
                int[] window = Arrays.copyOfRange(tokens, w * s, w * s + c);
                if (bos >= 0) {
                    window[0] = bos;
                }
                cache.truncate(0, 0);
                for (int from = 0; from < c; from += options.batchSize()) {
                    int to = Math.min(c, from + options.batchSize());
                    // Logits of rows firstScored-1 .. c-2 predict the scored tokens; every batch asks for at
                    // least its last row (the graph needs one).
                    int lo = Math.max(from, firstScored - 1);
                    int hi = Math.min(to, c - 1);
                    int[] rows = lo < hi ? rangeOf(lo - from, hi - from) : new int[] {to - from - 1};
                    int n = to - from;
                    int[] seqs = new int[n];
                    int[] positions = new int[n];
                    for (int i = 0; i < n; i++) {
                        positions[i] = from + i;
                    }
                    Tensor logits = model.forward(new Batch(Arrays.copyOfRange(window, from, to), seqs, positions, rows),
                            cache);
                    if (lo >= hi) {
                        continue;
                    }
                    Tensor h = host.slice(0, rows.length);
                    model.backend().copy(logits, h);
                    for (int i = 0; i < rows.length; i++) {
                        int p = from + rows[i];
                        MemorySegment.copy(h.segment(), ValueLayout.JAVA_FLOAT_UNALIGNED,
                                h.rowOffset(i), row, 0, vocab);
                        double nll = negativeLogLikelihood(row, window[p + 1]);
                        sum += nll;
                        squares += nll * nll;
                        scored++;
                    }
                }
                result = new Result(options, tokens.length, w + 1, total, scored, sum, squares,
                        (System.nanoTime() - start) / 1e9);
                if (progress != null) {
                    progress.accept(result);
                }
            }
        }
        return result;
    }

    private static int[] rangeOf(int from, int to) {
        int[] r = new int[to - from];
        Arrays.setAll(r, i -> from + i);
        return r;
    }

    /** {@code -ln softmax(logits)[target]}, computed in double with the maximum subtracted. */
    public static double negativeLogLikelihood(float[] logits, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        return Math.log(sum) + max - logits[target];
    }
}
