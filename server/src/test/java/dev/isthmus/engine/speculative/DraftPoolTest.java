package dev.isthmus.engine.speculative;

import dev.isthmus.api.DType;
import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.TokenHistory;
import dev.isthmus.engine.serving.Stories;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A draft model's pool drafts for several generations in shared passes: each proposal must be what the
 * generation's drafter would propose alone, however the pool's sequences and blocks are passed around.
 */
class DraftPoolTest {
    private static Stories stories;
    private static DraftModel source;

    @BeforeAll
    static void open() {
        stories = new Stories();
        source = new DraftModel(stories.draft(), 0);
    }

    @AfterAll
    static void close() {
        stories.close();
    }

    private static TokenHistory context(String prompt) {
        return new TokenHistory(stories.model.tokenizer().encode(prompt, true, false));
    }

    private static Draft alone(TokenHistory context, int max) {
        try (Drafter d = source.open(256, SamplingParams.greedy())) {
            return d.propose(context, max);
        }
    }

    /** Accepts two proposed tokens and continues with one the draft did not propose, as a verifier may. */
    private static void diverge(TokenHistory context, Draft proposal) {
        context.add(proposal.token(0));
        context.add(proposal.token(1));
        context.add(proposal.token(2) == 42 ? 43 : 42);
    }

    @Test
    void pooledProposalsAreEachDrafterAlone() {
        List<TokenHistory> contexts = new ArrayList<>(List.of(context("Once upon a time"),
                context("Lily and Tom went to the park"), context("The little dog was sad")));
        // Two sequences for three drafters: each round, the drafter not asked may lose its state.
        try (DraftPool pool = source.openPool(2, 128, 256, DType.F32)) {
            List<Drafter> drafters = List.of(pool.open(SamplingParams.greedy()), pool.open(SamplingParams.greedy()),
                    pool.open(SamplingParams.greedy()));
            int[][] rounds = {{0, 1}, {1, 2}, {2, 0}, {0, 1}, {2}};
            for (int[] round : rounds) {
                List<Drafter> asked = new ArrayList<>();
                List<TokenHistory> ctx = new ArrayList<>();
                for (int i : round) {
                    asked.add(drafters.get(i));
                    ctx.add(contexts.get(i));
                }
                int[] max = new int[round.length];
                Arrays.fill(max, 6);
                Draft[] got = pool.propose(asked, ctx, max);
                for (int j = 0; j < round.length; j++) {
                    Draft expected = alone(ctx.get(j), 6);
                    assertEquals(6, expected.size());
                    assertArrayEquals(expected.tokens(), got[j].tokens(), "drafter " + round[j] + " in round "
                            + Arrays.toString(round));
                    diverge(ctx.get(j), got[j]);
                }
            }
        }
    }

    @Test
    void aPoolShortOfRoomProposesLessButNeverSomethingElse() {
        TokenHistory a = context("Once upon a time there was a little girl named Lily . She liked to play with her dog");
        TokenHistory b = context("One day the sun was shining and a");
        assertTrue(a.size() > 16 && a.size() + 5 <= 32 && b.size() > 11 && b.size() < 16, a + " / " + b);
        // Three blocks of 16 positions: a takes two for its context and draft positions, b finds one.
        try (DraftPool pool = source.openPool(2, 48, 48, DType.F32)) {
            Drafter da = pool.open(SamplingParams.greedy());
            Drafter db = pool.open(SamplingParams.greedy());
            Draft[] both = pool.propose(List.of(da, db), List.of(a, b), new int[] {6, 6});
            assertArrayEquals(alone(a, 6).tokens(), both[0].tokens());
            assertTrue(both[1].size() > 0 && both[1].size() < 6, "b drafts what its block holds: " + both[1]);
            assertArrayEquals(Arrays.copyOf(alone(b, 6).tokens(), both[1].size()), both[1].tokens());
            // Asked alone, each takes the other's blocks.
            assertArrayEquals(alone(b, 6).tokens(), db.propose(b, 6).tokens());
            assertArrayEquals(alone(a, 6).tokens(), da.propose(a, 6).tokens());
        }
    }

    @Test
    void foreignAndRepeatedDraftersAreRefused() {
        try (DraftPool pool = source.openPool(2, 64, 64, DType.F32);
             DraftPool other = source.openPool(1, 64, 64, DType.F32)) {
            Drafter d = pool.open(SamplingParams.greedy());
            TokenHistory c = context("Once upon a time");
            assertThrows(IllegalArgumentException.class,
                    () -> other.propose(List.of(d), List.of(c), new int[] {4}));
            assertThrows(IllegalArgumentException.class,
                    () -> pool.propose(List.of(d, d), List.of(c, c), new int[] {4, 4}));
        }
    }
}
