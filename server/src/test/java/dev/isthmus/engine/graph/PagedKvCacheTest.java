package dev.isthmus.engine.graph;

import dev.isthmus.api.DType;
import dev.isthmus.engine.serving.Stories;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The paged KV cache against stories260K: block tables, sharing, copy-on-write, eviction. */
class PagedKvCacheTest {
    private static Stories stories;
    private static Transformer model;
    private static final int[] PROMPT = {1, 403, 407, 261, 378, 1148 % 512, 260, 1577 % 512, 263, 900 % 512, 417, 352,
            284, 265, 373, 291, 394, 413, 260, 367};

    @BeforeAll
    static void open() {
        stories = new Stories();
        model = stories.model.transformer();
    }

    @AfterAll
    static void close() {
        stories.close();
    }

    /**
     * Same logits up to rounding: kernels may take other vector paths for other addresses, so equal inputs in
     * other slots need not give equal bits.
     */
    private static void assertArrayEquals(float[] expected, float[] actual) {
        assertArrayEquals(expected, actual, "");
    }

    private static void assertArrayEquals(float[] expected, float[] actual, String message) {
        assertEquals(expected.length, actual.length);
        int best = 0;
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 1e-4f * Math.max(1f, Math.abs(expected[i])), message + " logit " + i);
            if (expected[i] > expected[best]) {
                best = i;
            }
        }
        int bestActual = 0;
        for (int i = 0; i < actual.length; i++) {
            if (actual[i] > actual[bestActual]) {
                bestActual = i;
            }
        }
        assertEquals(best, bestActual, message + " argmax");
    }

    private static KvCache paged(int blockSize, int blocks, int sequences, boolean sharing) {
        return KvCache.paged(model, new KvCache.Options(blockSize, blocks, sequences, 2048, DType.F32, sharing));
    }

    /** Logits of the last token after feeding {@code tokens} one at a time from {@code start}. */
    private static float[] feed(KvCache cache, int seq, int start, int[] tokens) {
        float[] last = null;
        for (int i = 0; i < tokens.length; i++) {
            last = model.forward(Batch.ofSequence(seq, start + i, tokens[i]), cache).toFloatArray();
        }
        return last;
    }

    @Test
    void pagedBlocksGiveTheLogitsOfOneContiguousRegion() {
        float[] contiguous;
        try (KvCache c = model.newCache(1, PROMPT.length, DType.F32)) {
            contiguous = feed(c, 0, 0, PROMPT);
        }
        try (KvCache p = paged(4, 64, 3, false)) {
            // Interleave another sequence so the blocks of sequence 1 are not adjacent.
            for (int i = 0; i < PROMPT.length; i++) {
                model.forward(Batch.ofSequence(0, i, PROMPT[PROMPT.length - 1 - i]), p);
                model.forward(Batch.ofSequence(1, i, PROMPT[i]), p);
            }
            float[] paged = model.forward(Batch.ofSequence(1, PROMPT.length - 1, PROMPT[PROMPT.length - 1]), p)
                    .toFloatArray();
            assertArrayEquals(contiguous, paged);
            assertEquals(5, p.blocksOf(1));
            p.release(0);
            p.release(1);
            assertEquals(0, p.stats().used());
        }
    }

    @Test
    void reserveTakesAllOrNothing() {
        try (KvCache p = paged(4, 5, 2, false)) {
            assertTrue(p.reserve(0, 12));
            assertEquals(3, p.stats().used());
            assertFalse(p.reserve(1, 12), "3 blocks needed, 2 free");
            assertEquals(0, p.blocksOf(1));
            assertTrue(p.reserve(1, 8));
            assertThrows(IllegalStateException.class,
                    () -> model.forward(Batch.ofSequence(1, 8, 5), p), "the pool is empty");
            assertThrows(IllegalArgumentException.class, () -> p.reserve(0, 4096));
        }
    }

    @Test
    void sharedPrefixBlocksAreReusedAndGiveTheSameLogits() {
        try (KvCache p = paged(4, 64, 2, true)) {
            float[] first = model.forward(Batch.ofSequence(0, 0, PROMPT), p).toFloatArray();
            assertEquals(PROMPT.length / 4, p.stats().registered());
            p.release(0);
            assertEquals(0, p.stats().used());
            assertEquals(PROMPT.length / 4, p.stats().cached(), "released blocks stay findable");

            int reused = p.sharePrefix(1, PROMPT);
            assertEquals(16, reused, "whole blocks before the last token's block");
            float[] again = model.forward(Batch.ofSequence(1, reused,
                    java.util.Arrays.copyOfRange(PROMPT, reused, PROMPT.length)), p).toFloatArray();
            assertArrayEquals(first, again);
            assertEquals(4, p.stats().prefixHitBlocks());
        }
    }

    @Test
    void forkedSequencesCopyASharedBlockBeforeWriting() {
        int[] a = {1, 403, 407, 261, 378, 300};
        try (KvCache p = paged(4, 16, 3, false)) {
            model.forward(Batch.ofSequence(0, 0, java.util.Arrays.copyOf(a, 5)), p);
            p.fork(0, 1);
            assertEquals(2, p.stats().used(), "both blocks shared");
            float[] x = model.forward(Batch.ofSequence(0, 5, 300), p).toFloatArray();
            float[] y = model.forward(Batch.ofSequence(1, 5, 300), p).toFloatArray();
            assertArrayEquals(x, y);
            assertEquals(1, p.stats().copiesOnWrite(), "the partly filled block was copied once");
            assertEquals(3, p.stats().used());
            p.truncate(1, 2);
            assertEquals(1, p.blocksOf(1));
            float[] z = model.forward(Batch.ofSequence(1, 2, 407), p).toFloatArray();
            try (KvCache c = model.newCache(1, 5, DType.F32)) {
                model.forward(Batch.ofSequence(0, 0, java.util.Arrays.copyOf(a, 5)), c);
                c.truncate(0, 2);
                assertArrayEquals(model.forward(Batch.ofSequence(0, 2, 407), c).toFloatArray(), z,
                        "writing after a truncation into a shared block leaves the other sequence intact");
            }
            assertArrayEquals(x, model.forward(Batch.ofSequence(0, 5, 300), p).toFloatArray());
        }
    }

    @Test
    void aBlockCutByARollbackIsNoLongerOffered() {
        try (KvCache p = paged(4, 8, 2, true)) {
            // Positions 8..11 hold proposed tokens that fill the third block; the rollback keeps 8..9.
            model.forward(Batch.ofSequenceAllLogits(0, 0, java.util.Arrays.copyOf(PROMPT, 12)), p);
            assertEquals(3, p.stats().registered());
            p.truncate(0, 10);
            assertEquals(2, p.cachedPrefixBlocks(PROMPT), "the cut block cannot be taken before it is rewritten");
            assertEquals(8, p.sharePrefix(1, PROMPT));
            model.forward(Batch.ofSequence(0, 10, 300), p);
            assertEquals(0, p.stats().copiesOnWrite(), "the rewrite needs no block beyond the reservation");
        }
    }

    @Test
    void cachedBlocksAreEvictedOnlyWhenNothingElseIsFree() {
        try (KvCache p = paged(4, 6, 2, true)) {
            model.forward(Batch.ofSequence(0, 0, java.util.Arrays.copyOf(PROMPT, 9)), p);
            p.release(0);
            assertEquals(2, p.stats().cached());
            assertTrue(p.reserve(1, 12), "three never-used blocks first");
            assertEquals(0, p.stats().evictions());
            assertEquals(2, p.cachedPrefixBlocks(PROMPT));
            assertTrue(p.reserve(1, 20), "one more never-used block, then one cached block");
            assertEquals(1, p.stats().evictions());
            assertEquals(1, p.cachedPrefixBlocks(PROMPT), "the prefix's tail goes first, its head stays findable");
        }
    }
}
