package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.TokenHistory;

/**
 * Draft-free speculation by prompt lookup: find the most recent earlier occurrence of the context's last
 * {@code n} tokens and propose what followed it, trying {@code n = maxN} down to {@code minN} and taking the
 * longest n-gram that occurs. The copy may run into the tokens it is proposing (a repeating pattern keeps
 * repeating), up to the requested number. Useful when the output repeats the input (summaries, code edits,
 * extraction) or itself.
 *
 * <p>Deterministic: each proposal's {@code q} is all mass on the proposed token, so under sampling the
 * verifier accepts it with the target's probability {@code p(token)} and otherwise draws from {@code p}
 * without it.
 */
public final class NgramLookup implements DraftSource, Drafter {
    private final int minN;
    private final int maxN;

    /** Tries n-grams of {@code maxN} tokens down to 1. */
    public NgramLookup(int maxN) {
        this(1, maxN);
    }

    public NgramLookup(int minN, int maxN) {
        if (minN < 1 || maxN < minN) {
            throw new IllegalArgumentException("n-gram sizes must satisfy 1 ≤ min ≤ max, got min " + minN + ", max "
                    + maxN);
        }
        this.minN = minN;
        this.maxN = maxN;
    }

    @Override
    public Drafter open(int capacity, SamplingParams sampling) {
        return this;
    }

    @Override
    public String description() {
        return minN == maxN ? "n-gram lookup (n = " + maxN + ")" : "n-gram lookup (n = " + maxN + " .. " + minN + ")";
    }

    @Override
    public Draft propose(TokenHistory context, int max) {
        int size = context.size();
        int[] t = context.toArray();
        for (int n = Math.min(maxN, size - 1); n >= minN; n--) {
            int suffix = size - n;
            // The most recent earlier occurrence, followed by at least one token: start s < size - n.
            for (int s = suffix - 1; s >= 0; s--) {
                if (matches(t, s, suffix, n)) {
                    int[] proposal = new int[max];
                    int from = s + n;
                    for (int i = 0; i < max; i++) {
                        int src = from + i;
                        proposal[i] = src < size ? t[src] : proposal[src - size];
                    }
                    return Draft.of(proposal);
                }
            }
        }
        return Draft.EMPTY;
    }

    private static boolean matches(int[] t, int a, int b, int n) {
        for (int i = 0; i < n; i++) {
            if (t[a + i] != t[b + i]) {
                return false;
            }
        }
        return true;
    }
}
