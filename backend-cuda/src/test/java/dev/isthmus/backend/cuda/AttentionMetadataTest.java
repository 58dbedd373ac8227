package dev.isthmus.backend.cuda;

import dev.isthmus.api.Attention;
import dev.isthmus.api.KvLayout;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The flattened KV layout the attention kernel reads, and the bounds check it relies on. */
class AttentionMetadataTest {

    @Test
    void concatenatesBlockTablesWithOffsetsAndReproducesSlots() {
        KvLayout layout = new KvLayout(16, new int[][] {{5, 2}, {7}, {0, 1, 3}}, new int[] {20, 9, 40},
                new int[] {0, 2, 1, 2}, new int[] {19, 39, 8, 0});
        AttentionMetadata m = AttentionMetadata.of(layout, Attention.causal(64), 8 * 16);
        assertArrayEquals(new int[] {0, 2, 3}, m.tableOffsets());
        assertArrayEquals(new int[] {5, 2, 7, 0, 1, 3}, m.tables());
        // The kernel's slot formula over the flattened arrays equals KvLayout.slot.
        for (int s = 0; s < 3; s++) {
            for (int j = 0; j < layout.contextLengths()[s]; j++) {
                int slot = m.tables()[m.tableOffsets()[s] + j / 16] * 16 + j % 16;
                assertEquals(layout.slot(s, j), slot);
            }
        }
        assertEquals(40, m.maxKeys()); // row 1: seq 2 at position 39 sees 40 keys
    }

    @Test
    void maxKeysFollowsTheMasks() {
        KvLayout layout = KvLayout.contiguous(100, 90, 10);
        assertEquals(100, AttentionMetadata.of(layout, Attention.causal(64), 100).maxKeys());
        assertEquals(8, AttentionMetadata.of(layout, new Attention(1f, true, 8, null, 0f), 100).maxKeys());
        KvLayout early = KvLayout.contiguous(100, 0, 3);
        assertEquals(3, AttentionMetadata.of(early, new Attention(1f, false, 0, null, 0f), 100).maxKeys());
    }

    @Test
    void blocksOutsideTheCacheAreRejectedBeforeTheKernelReadsThem() {
        KvLayout layout = new KvLayout(16, new int[][] {{0, 9}}, new int[] {20}, new int[] {0}, new int[] {19});
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class,
                () -> AttentionMetadata.of(layout, Attention.causal(64), 8 * 16));
        assertTrue(e.getMessage().contains("sequence 0 block 1 is cache block 9"), e.getMessage());
        // Only the used part of the last block must exist: slots 144..147 of a 148-slot cache are enough.
        AttentionMetadata.of(layout, Attention.causal(64), 9 * 16 + 4);
        // Unused trailing table entries are not checked.
        KvLayout spare = new KvLayout(16, new int[][] {{0, 999}}, new int[] {16}, new int[] {0}, new int[] {15});
        AttentionMetadata.of(spare, Attention.causal(64), 16);
    }
}
