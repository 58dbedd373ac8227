package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.SamplingTransform;
import dev.isthmus.engine.sampling.TokenHistory;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.IntPredicate;

/**
 * The target's side of speculative decoding for one generation: it picks the target's own tokens and judges
 * proposed ones, by the generation's sampling parameters. Greedy: a proposed token is accepted iff it is the
 * target's argmax (after bias and penalties) at its position. Sampling: {@link RejectionSampler}'s rule, with
 * {@code p} from a {@link SamplingTransform} and one random stream seeded by the generation's seed.
 *
 * <p>With no proposals it samples exactly as the {@link dev.isthmus.engine.sampling.Sampler} with the same
 * parameters (the transform is the Sampler's distribution, and each token takes one draw), so a generation can
 * use it for every token, speculating or not.
 */
public final class Verifier {
    private final SamplingTransform transform;
    private final RejectionSampler sampler;

    public Verifier(SamplingParams params) {
        this.transform = new SamplingTransform(params);
        this.sampler = new RejectionSampler(new SplittableRandom(params.seed()));
    }

    /** The target's token after {@code history} from its logits (modified): the argmax, or a draw from {@code p}. */
    public int pick(float[] logits, TokenHistory history) {
        if (transform.isGreedy()) {
            return transform.greedy(logits, history);
        }
        return sampler.sample(transform.distribution(logits, history));
    }

    /**
     * Walks a proposal through the target's logits at its positions: the longest acceptable prefix is kept, then
     * the target's own token (its correction at the first rejection, or its next token after the whole proposal).
     * Each settled token is appended to {@code context} and handed to {@code emit}, which answers whether the
     * generation goes on; the walk stops at the first {@code false}.
     *
     * @param logits   rows of {@code vocab} floats; row {@code first + i} holds the target's logits after the
     *                 context and the proposal's first {@code i} tokens ({@code draft.size() + 1} rows)
     * @param draft    the proposal, possibly empty
     * @param context  the prompt and the tokens generated so far; grows by each settled token
     * @return proposed tokens accepted
     */
    public int walk(float[] logits, int first, int vocab, Draft draft, TokenHistory context, IntPredicate emit) {
        for (int i = 0; ; i++) {
            int from = (first + i) * vocab;
            float[] row = Arrays.copyOfRange(logits, from, from + vocab);
            if (i == draft.size()) {
                settle(pick(row, context), context, emit);
                return i;
            }
            int proposed = draft.token(i);
            int token;
            boolean accepted;
            if (transform.isGreedy()) {
                token = transform.greedy(row, context);
                accepted = token == proposed;
            } else {
                RejectionSampler.Verdict v = sampler.verify(transform.distribution(row, context), draft.distribution(i),
                        proposed);
                token = v.token();
                accepted = v.accepted();
            }
            if (!settle(token, context, emit) || !accepted) {
                return accepted ? i + 1 : i;
            }
        }
    }

    private static boolean settle(int token, TokenHistory context, IntPredicate emit) {
        context.add(token);
        return emit.test(token);
    }
}
