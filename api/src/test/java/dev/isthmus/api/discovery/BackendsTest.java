package dev.isthmus.api.discovery;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BackendsTest {
    @AfterEach
    void clearProperty() {
        System.clearProperty(Backends.PROPERTY);
    }

    @Test
    void candidatesAreSortedByPriorityAndProbed() {
        List<Backends.Candidate> all = Backends.candidates();
        assertEquals(List.of("gpu", "crashing", "slow"), all.stream().map(Backends.Candidate::name).toList());
        assertFalse(all.get(1).availability().available());
        assertTrue(all.get(1).availability().detail().contains("libnothing.so"));
    }

    @Test
    void bestAvailableWinsWhenNothingIsNamed() {
        assertEquals("slow", Backends.select(null).name());
    }

    @Test
    void unknownNameListsKnownBackends() {
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class,
                () -> Backends.select("nope"));
        assertTrue(e.getMessage().contains("unknown backend 'nope'"), e.getMessage());
        assertTrue(e.getMessage().contains("gpu (unavailable: no device found)"), e.getMessage());
        assertTrue(e.getMessage().contains("slow (available)"), e.getMessage());
    }

    @Test
    void namedUnavailableBackendFailsWithItsReason() {
        System.setProperty(Backends.PROPERTY, "gpu");
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class, Backends::select);
        assertEquals("backend 'gpu' is unavailable: no device found", e.getMessage());
    }

    @Test
    void propertyOverridesPriority() {
        System.setProperty(Backends.PROPERTY, "SLOW");
        assertEquals("slow", Backends.select().name());
    }
}
