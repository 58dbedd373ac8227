package dev.isthmus.engine.speculative;

import dev.isthmus.engine.sampling.SamplingParams;
import dev.isthmus.engine.sampling.TokenHistory;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NgramLookupTest {
    private static Draft propose(NgramLookup lookup, int max, int... context) {
        try (Drafter d = lookup.open(1000, SamplingParams.greedy())) {
            return d.propose(new TokenHistory(context), max);
        }
    }

    @Test
    void proposesWhatFollowedTheLastOccurrenceOfTheSuffix() {
        assertArrayEquals(new int[] {4, 9, 7}, propose(new NgramLookup(3), 3, 1, 2, 3, 4, 9, 7, 8, 1, 2, 3).tokens());
    }

    @Test
    void prefersTheLongestNgramThenTheMostRecentOccurrence() {
        // "2 3" occurs twice; the 3-gram "1 2 3" only at the start, so it wins over the more recent 2-gram.
        assertArrayEquals(new int[] {4, 5}, propose(new NgramLookup(3), 2, 1, 2, 3, 4, 5, 2, 3, 6, 1, 2, 3).tokens());
        // With 2-grams at most, the most recent "2 3" is followed by 6.
        assertArrayEquals(new int[] {6, 1}, propose(new NgramLookup(2), 2, 1, 2, 3, 4, 5, 2, 3, 6, 1, 2, 3).tokens());
    }

    @Test
    void aRepeatingPatternKeepsRepeatingPastTheContext() {
        assertArrayEquals(new int[] {7, 8, 9, 7, 8, 9, 7}, propose(new NgramLookup(2), 7, 7, 8, 9, 7, 8, 9).tokens());
        assertArrayEquals(new int[] {5, 5, 5, 5}, propose(new NgramLookup(1), 4, 5, 5).tokens());
    }

    @Test
    void noOccurrenceNoProposal() {
        assertTrue(propose(new NgramLookup(3), 4, 1, 2, 3, 4).isEmpty());
        assertTrue(propose(new NgramLookup(2, 3), 4, 1, 2, 3, 1).isEmpty());
        assertTrue(propose(new NgramLookup(1), 4, 1).isEmpty());
    }

    @Test
    void proposalsAreDeterministic() {
        assertNull(propose(new NgramLookup(2), 2, 1, 2, 1).distributions());
        assertTrue(propose(new NgramLookup(2), 2, 1, 2, 1).distribution(0).probabilityOf(2) == 1);
    }

    @Test
    void badSizesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new NgramLookup(0));
        assertThrows(IllegalArgumentException.class, () -> new NgramLookup(3, 2));
    }
}
