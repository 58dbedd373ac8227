package dev.isthmus.conformance;

import java.util.SplittableRandom;

/** What one case does: make inputs, run the op through the workspace's backend, compare. */
@FunctionalInterface
interface CaseBody {
    /**
     * @param ws  where to create tensors on the backend under test (with guard regions)
     * @param rnd the case's random source, seeded from its name
     * @return the comparison with the reference
     * @throws CaseFailure when the backend broke a rule the comparison cannot express (guards, inputs)
     */
    Outcome run(Workspace ws, SplittableRandom rnd);
}
