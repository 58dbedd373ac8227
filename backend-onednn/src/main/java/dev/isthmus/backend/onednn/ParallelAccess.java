package dev.isthmus.backend.onednn;

import java.lang.foreign.MemorySegment;

/**
 * Whether Java work on memory may be split among the common fork/join pool's threads: not when a segment
 * belongs to a confined arena, which only its owner thread may touch (tests and callers may pass such memory).
 */
final class ParallelAccess {
    private ParallelAccess() {
    }

    /** Whether threads other than the caller may access every one of {@code segments}. */
    static boolean allowed(MemorySegment... segments) {
        Thread other = new Thread(() -> { });
        for (MemorySegment s : segments) {
            if (!s.isAccessibleBy(other)) {
                return false;
            }
        }
        return true;
    }
}
