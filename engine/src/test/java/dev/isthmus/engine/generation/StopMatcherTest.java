package dev.isthmus.engine.generation;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StopMatcherTest {
    @Test
    void holdsBackAPossibleStopPrefixAndReleasesItWhenItIsNot() {
        StopMatcher m = new StopMatcher(List.of("</end>"));
        assertEquals("Hello ", m.push("Hello </"));
        assertEquals("</b", m.push("b"));
        assertFalse(m.stopped());
        assertEquals("", m.flush());
    }

    @Test
    void cutsBeforeAStopStringSplitAcrossPieces() {
        StopMatcher m = new StopMatcher(List.of("\n\n", "END"));
        StringBuilder out = new StringBuilder();
        for (String piece : new String[] {"one", " two", "\n", "\nthree"}) {
            out.append(m.push(piece));
        }
        assertTrue(m.stopped());
        assertEquals("one two", out.toString());
        assertEquals("", m.push("more"));
    }

    @Test
    void earliestStopStringWins() {
        StopMatcher m = new StopMatcher(List.of("c", "ab"));
        assertEquals("x", m.push("xabc"));
        assertTrue(m.stopped());
    }

    @Test
    void withoutStopStringsEverythingPassesStraightThrough() {
        StopMatcher m = new StopMatcher(List.of());
        assertEquals("abc", m.push("abc"));
        assertEquals("", m.flush());
    }

    @Test
    void heldTextIsFlushedAtTheEnd() {
        StopMatcher m = new StopMatcher(List.of("STOP"));
        assertEquals("go ", m.push("go ST"));
        assertEquals("ST", m.flush());
    }
}
