package dev.isthmus.backend.cpu.parallel;

/** Work over a half-open range of item indices, run by one thread. */
@FunctionalInterface
public interface RangeBody {
    void run(int from, int to);
}
